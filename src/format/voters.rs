//! The initial voter set of KIP-853's dynamic quorum: `--initial-controllers` parsed as Kafka's
//! `DynamicVoters`, and the small file `sluice format` records it in, read again at start.
//!
//! Kafka writes the set as a VotersRecord (with a KRaftVersionRecord, kraft.version=1) into
//! the bootstrap snapshot `__cluster_metadata-0/00000000000000000000-0000000000.checkpoint`.
//! Sluice's metadata log is not Kafka's record format, so it keeps the same facts (each voter's
//! id, directory id and controller endpoint) in `__cluster_metadata-0/initial-voters.json`
//! ([`INITIAL_VOTERS_FILE`]), next to where Kafka's checkpoint would be.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::host_port;
use crate::log::log_manager::{uuid_from_base64, uuid_to_base64};

/// The metadata log's directory inside `metadata.log.dir` (Kafka's `__cluster_metadata-0`).
pub const METADATA_PARTITION_DIR: &str = "__cluster_metadata-0";

/// Where `sluice format` records the initial voter set, inside [`METADATA_PARTITION_DIR`].
pub const INITIAL_VOTERS_FILE: &str = "initial-voters.json";

/// The file's layout version; a newer one is refused rather than misread.
const FILE_VERSION: u32 = 1;

/// One `--initial-controllers` entry, `id@host:port:directoryid` (Kafka's `DynamicVoter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicVoter {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    /// The `directory.id` of the voter's metadata log dir (KIP-853 tells a voter that lost
    /// its disk from the one the set names by it).
    pub directory_id: Uuid,
}

impl DynamicVoter {
    /// `host:port` of the voter's controller listener, as `controller.quorum.voters` gives it.
    pub fn address(&self) -> String {
        host_port(&self.host, self.port)
    }

    /// Parses one entry with the checks and messages of Kafka's `DynamicVoter.parse`.
    pub fn parse(input: &str) -> Result<DynamicVoter, String> {
        let input = input.trim();
        let at = input
            .find('@')
            .ok_or("No @ found in dynamic voter string.")?;
        if at == 0 {
            return Err("Invalid @ at beginning of dynamic voter string.".into());
        }
        let node_id: i32 = input[..at]
            .parse()
            .map_err(|_| "Failed to parse node id in dynamic voter string.")?;
        if node_id < 0 {
            return Err(format!(
                "Invalid negative node id {node_id} in dynamic voter string."
            ));
        }
        let rest = &input[at + 1..];
        if rest.is_empty() {
            return Err("No hostname found after node id.".into());
        }
        // An IPv6 host is bracketed, since its colons would end the host part.
        let (host, rest) = if let Some(bracketed) = rest.strip_prefix('[') {
            let end = bracketed
                .find(']')
                .ok_or("Hostname began with left bracket, but no right bracket was found.")?;
            (&bracketed[..end], &bracketed[end + 1..])
        } else {
            let end = rest
                .find(':')
                .ok_or("No colon following hostname could be found.")?;
            (&rest[..end], &rest[end..])
        };
        let rest = rest
            .strip_prefix(':')
            .ok_or("Port section must start with a colon.")?;
        let end = rest
            .find(':')
            .ok_or("No colon following port could be found.")?;
        let port: i64 = rest[..end]
            .parse()
            .map_err(|_| "Failed to parse port in dynamic voter string.")?;
        let port = u16::try_from(port)
            .map_err(|_| format!("Invalid port {port} in dynamic voter string."))?;
        let directory_id = uuid_from_base64(&rest[end + 1..])
            .ok_or("Failed to parse directory ID in dynamic voter string.")?;
        Ok(DynamicVoter {
            node_id,
            host: host.to_string(),
            port,
            directory_id,
        })
    }
}

impl std::fmt::Display for DynamicVoter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}:{}",
            self.node_id,
            self.address(),
            uuid_to_base64(self.directory_id)
        )
    }
}

/// Parses `--initial-controllers` (comma-separated; Kafka's `DynamicVoters.parse`): at least
/// one voter, each node id once. Voters come back ordered by node id, as Kafka's map has them.
pub fn parse_dynamic_voters(input: &str) -> Result<Vec<DynamicVoter>, String> {
    let mut voters = Vec::new();
    for entry in input.trim().split(',').filter(|e| !e.is_empty()) {
        voters.push(DynamicVoter::parse(entry)?);
    }
    if voters.is_empty() {
        return Err("No voters given.".into());
    }
    voters.sort_by_key(|v| v.node_id);
    if let Some(pair) = voters.windows(2).find(|w| w[0].node_id == w[1].node_id) {
        return Err(format!(
            "Node id {} was specified more than once.",
            pair[0].node_id
        ));
    }
    Ok(voters)
}

/// What `sluice format` recorded about the dynamic quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitialVoters {
    /// `--standalone` or `--initial-controllers`: the quorum's first voters.
    Voters(Vec<DynamicVoter>),
    /// `--no-initial-controllers`: this node joins a running quorum as an observer. Kafka
    /// writes nothing for it; Sluice records it so that the start can tell this node from a
    /// single node that formatted itself, and refuse it until AddRaftVoter is served.
    NoInitialControllers,
}

/// [`INITIAL_VOTERS_FILE`]'s JSON: the fields of Kafka's VotersRecord.
#[derive(Debug, Serialize, Deserialize)]
struct VotersFile {
    version: u32,
    /// The `kraft.version` feature the quorum was formatted with (1: KIP-853's dynamic quorum).
    kraft_version: u16,
    /// Empty for `--no-initial-controllers`.
    voters: Vec<VoterEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct VoterEntry {
    voter_id: i32,
    voter_directory_id: String,
    endpoints: Vec<VoterEndpoint>,
}

#[derive(Debug, Serialize, Deserialize)]
struct VoterEndpoint {
    /// The controller listener's name (`controller.listener.names`' first, as Kafka).
    name: String,
    host: String,
    port: u16,
}

/// `metadata_log_dir/__cluster_metadata-0/initial-voters.json`.
pub fn initial_voters_path(metadata_log_dir: &Path) -> PathBuf {
    metadata_log_dir
        .join(METADATA_PARTITION_DIR)
        .join(INITIAL_VOTERS_FILE)
}

/// Writes the initial voter set durably (temporary file, fsync, rename, fsync of the dir).
pub fn write_initial_voters(
    metadata_log_dir: &Path,
    voters: &InitialVoters,
    listener_name: &str,
) -> std::io::Result<()> {
    let entries = match voters {
        InitialVoters::Voters(voters) => voters
            .iter()
            .map(|v| VoterEntry {
                voter_id: v.node_id,
                voter_directory_id: uuid_to_base64(v.directory_id),
                endpoints: vec![VoterEndpoint {
                    name: listener_name.to_string(),
                    host: v.host.clone(),
                    port: v.port,
                }],
            })
            .collect(),
        InitialVoters::NoInitialControllers => Vec::new(),
    };
    let file = VotersFile {
        version: FILE_VERSION,
        kraft_version: 1,
        voters: entries,
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    let dir = metadata_log_dir.join(METADATA_PARTITION_DIR);
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!("{INITIAL_VOTERS_FILE}.tmp"));
    std::fs::write(&tmp, &bytes)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(INITIAL_VOTERS_FILE))?;
    File::open(&dir)?.sync_all()?;
    File::open(metadata_log_dir)?.sync_all()
}

/// Reads the recorded set; `Ok(None)` when `sluice format` recorded none (a static quorum, or
/// storage that formatted itself on first start).
pub fn read_initial_voters(metadata_log_dir: &Path) -> Result<Option<InitialVoters>, String> {
    let path = initial_voters_path(metadata_log_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let bad = |why: String| {
        format!(
            "{} is not a voter set sluice format wrote: {why}",
            path.display()
        )
    };
    let file: VotersFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if file.version != FILE_VERSION {
        return Err(bad(format!("unknown version {}", file.version)));
    }
    if file.voters.is_empty() {
        return Ok(Some(InitialVoters::NoInitialControllers));
    }
    let mut voters = Vec::with_capacity(file.voters.len());
    for entry in file.voters {
        let endpoint = entry
            .endpoints
            .into_iter()
            .next()
            .ok_or_else(|| bad(format!("voter {} has no endpoint", entry.voter_id)))?;
        let directory_id = uuid_from_base64(&entry.voter_directory_id).ok_or_else(|| {
            bad(format!(
                "voter {} has directory id '{}'",
                entry.voter_id, entry.voter_directory_id
            ))
        })?;
        voters.push(DynamicVoter {
            node_id: entry.voter_id,
            host: endpoint.host,
            port: endpoint.port,
            directory_id,
        });
    }
    Ok(Some(InitialVoters::Voters(voters)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR_ID: &str = "JEXY6aqzQY-32P5TStzaFg";

    #[test]
    fn kafkas_documented_initial_controllers_parse_in_node_id_order() {
        let voters = parse_dynamic_voters(
            "2@example.com:8084:07R5amHmR32VDA6jHkGbTA,0@example.com:8082:JEXY6aqzQY-32P5TStzaFg,\
             1@[::1]:8083:MvDxzVmcRsaTz33bUuRU6A",
        )
        .expect("Kafka's example");
        let ids: Vec<i32> = voters.iter().map(|v| v.node_id).collect();
        assert_eq!(ids, [0, 1, 2]);
        assert_eq!(voters[0].address(), "example.com:8082");
        assert_eq!(voters[1].host, "::1");
        assert_eq!(voters[1].address(), "[::1]:8083");
        assert_eq!(uuid_to_base64(voters[0].directory_id), DIR_ID);
        assert_eq!(
            voters[0].to_string(),
            format!("0@example.com:8082:{DIR_ID}")
        );
    }

    #[test]
    fn malformed_voters_get_kafkas_messages() {
        let cases = [
            ("1", "No @ found in dynamic voter string."),
            ("@h:1:x", "Invalid @ at beginning of dynamic voter string."),
            (
                "x@h:1:x",
                "Failed to parse node id in dynamic voter string.",
            ),
            (
                "-1@h:1:x",
                "Invalid negative node id -1 in dynamic voter string.",
            ),
            ("1@", "No hostname found after node id."),
            (
                "1@[::1:9093:x",
                "Hostname began with left bracket, but no right bracket was found.",
            ),
            ("1@host", "No colon following hostname could be found."),
            ("1@[::1]9093", "Port section must start with a colon."),
            ("1@h:9093", "No colon following port could be found."),
            ("1@h:p:x", "Failed to parse port in dynamic voter string."),
            ("1@h:70000:x", "Invalid port 70000 in dynamic voter string."),
            (
                "1@h:9093:not-a-uuid",
                "Failed to parse directory ID in dynamic voter string.",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse_dynamic_voters(input).unwrap_err(), message, "{input}");
        }
        assert_eq!(parse_dynamic_voters(" , ").unwrap_err(), "No voters given.");
        let twice = format!("1@a:1:{DIR_ID},1@b:2:{DIR_ID}");
        assert_eq!(
            parse_dynamic_voters(&twice).unwrap_err(),
            "Node id 1 was specified more than once."
        );
    }

    #[test]
    fn the_recorded_set_reads_back_and_an_absent_file_is_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read_initial_voters(dir.path()), Ok(None));
        let voters = parse_dynamic_voters(&format!("1@localhost:9093:{DIR_ID}")).expect("voter");
        write_initial_voters(
            dir.path(),
            &InitialVoters::Voters(voters.clone()),
            "CONTROLLER",
        )
        .expect("write");
        assert_eq!(
            read_initial_voters(dir.path()),
            Ok(Some(InitialVoters::Voters(voters)))
        );
        write_initial_voters(
            dir.path(),
            &InitialVoters::NoInitialControllers,
            "CONTROLLER",
        )
        .expect("write");
        assert_eq!(
            read_initial_voters(dir.path()),
            Ok(Some(InitialVoters::NoInitialControllers))
        );
        std::fs::write(initial_voters_path(dir.path()), b"{").expect("write");
        let error = read_initial_voters(dir.path()).unwrap_err();
        assert!(
            error.contains("is not a voter set sluice format wrote"),
            "{error}"
        );
    }
}
