//! Owns every partition log of this broker across `log.dirs`: locks each directory against a
//! second process, keeps Kafka's `meta.properties` (cluster and node identity) and per-partition
//! `partition.metadata` (topic id), loads existing partitions at start, creates and deletes.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

use crate::clock::Clock;
use crate::error::{DirError, Error, Result};
use crate::log::cleaner::{CleanStats, CleanerConfig, LogCleaner};
use crate::log::disk::Disk;
use crate::log::partition::{PartitionId, PartitionLog};
use crate::log::LogConfig;
use crate::metrics::Metrics;

/// Kafka's name for the per-directory identity file.
pub const META_PROPERTIES: &str = "meta.properties";
/// Kafka's name for the per-partition topic id file (KIP-516).
pub const PARTITION_METADATA: &str = "partition.metadata";
/// Kafka's marker of a clean shutdown: every log was flushed and its indexes written.
pub const CLEAN_SHUTDOWN: &str = ".kafka_cleanshutdown";
/// Kafka's per-log-dir checkpoint of log start offsets moved by DeleteRecords (KIP-107).
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Version line of Kafka's checkpoint files.
const CHECKPOINT_VERSION: &str = "0";
/// Advisory lock file held while the broker runs.
pub const LOCK_FILE: &str = ".lock";
/// Written and removed at start to prove a directory writable (see [`prepare_dir`]).
const WRITE_CHECK_FILE: &str = ".sluice-write-check";
/// Kafka's longest legal topic name.
const TOPIC_NAME_MAX_LEN: usize = 249;

type PartitionMap = BTreeMap<(String, i32), Arc<PartitionLog>>;

/// All partition logs of this broker.
#[derive(Debug)]
pub struct LogManager {
    log_dirs: Vec<PathBuf>,
    disk: Arc<dyn Disk>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    node_id: i32,
    cluster_id: String,
    /// BTreeMap: iteration order (flush_all, partitions) is by name, never by hash.
    partitions: Mutex<PartitionMap>,
    /// The log cleaner's state (checkpoints of cleaned offsets per log dir).
    cleaner: LogCleaner,
    /// Open lock files; the advisory locks last as long as these handles.
    _dir_locks: Vec<File>,
    /// One writer of `log-start-offset-checkpoint` at a time (DeleteRecords).
    checkpoint_lock: tokio::sync::Mutex<()>,
}

fn lock_map(m: &Mutex<PartitionMap>) -> MutexGuard<'_, PartitionMap> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn storage_error(msg: String) -> Error {
    Error::Storage(std::io::Error::other(msg))
}

impl LogManager {
    /// Opens every log dir: creates it, locks `<dir>/.lock` (a second broker on the same dir
    /// fails here), checks or writes `meta.properties` (a node.id or cluster.id mismatch
    /// refuses to start) and loads and recovers every partition found. Without a cluster id
    /// in the config or on disk, a new one is generated.
    pub fn open(
        log_dirs: Vec<PathBuf>,
        disk: Arc<dyn Disk>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        node_id: i32,
        cluster_id: Option<String>,
    ) -> Result<LogManager> {
        if log_dirs.is_empty() {
            return Err(Error::InvalidConfig("log.dirs is empty".into()));
        }
        let mut dir_locks = Vec::with_capacity(log_dirs.len());
        let mut metas = Vec::with_capacity(log_dirs.len());
        for dir in &log_dirs {
            let in_dir = |source| Error::LogDir {
                dir: dir.clone(),
                source,
            };
            prepare_dir(dir).map_err(in_dir)?;
            dir_locks.push(lock_dir(dir).map_err(in_dir)?);
            metas.push(read_meta_properties(dir)?);
            disk.create_dir_all(dir).map_err(|source| {
                in_dir(DirError::Create {
                    path: dir.clone(),
                    source,
                })
            })?;
        }
        let cluster_id = decide_cluster_id(&log_dirs, &metas, node_id, cluster_id)?;
        for (dir, meta) in log_dirs.iter().zip(&metas) {
            if meta.is_none() {
                write_meta_properties(dir, &cluster_id, node_id, Uuid::new_v4())?;
            }
        }
        let cleaner = LogCleaner::open(
            Arc::clone(&disk),
            Arc::clone(&clock),
            metrics.clone(),
            &log_dirs,
        );
        let manager = LogManager {
            cleaner,
            log_dirs,
            disk,
            clock,
            metrics,
            node_id,
            cluster_id,
            partitions: Mutex::new(BTreeMap::new()),
            _dir_locks: dir_locks,
            checkpoint_lock: tokio::sync::Mutex::new(()),
        };
        manager.load_partitions()?;
        Ok(manager)
    }

    /// The log cleaner (checkpoints; tests).
    pub fn cleaner(&self) -> &LogCleaner {
        &self.cleaner
    }

    /// One log cleaner pass over the dirtiest compacted partition, if any needs it.
    pub async fn clean_once(
        &self,
        config: &CleanerConfig,
    ) -> Result<Option<(Arc<PartitionLog>, CleanStats)>> {
        let partitions = self.partitions();
        self.cleaner.retain_partitions(&partitions);
        self.cleaner
            .clean_filthiest(&partitions, config, self.clock.wall_ms())
            .await
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }

    /// Every loaded partition, ordered by topic then partition.
    pub fn partitions(&self) -> Vec<Arc<PartitionLog>> {
        lock_map(&self.partitions).values().cloned().collect()
    }

    /// Each topic with logs here and its topic id (nil when its partition.metadata is missing),
    /// ordered by name; the broker drops the logs of topics the metadata no longer has.
    pub fn topics(&self) -> Vec<(String, Uuid)> {
        let mut out: Vec<(String, Uuid)> = Vec::new();
        for ((topic, _), log) in lock_map(&self.partitions).iter() {
            if out.last().is_none_or(|(t, _)| t != topic) {
                out.push((topic.clone(), log.topic_id()));
            }
        }
        out
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        lock_map(&self.partitions)
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// The partition's log, created when missing. An existing log of the same name but another
    /// topic id belongs to a deleted topic: it is removed and the new log starts empty. An
    /// existing log gets `config`. Blocking file creation; called on topic creation.
    pub fn get_or_create(
        &self,
        topic: &str,
        topic_id: Uuid,
        partition: i32,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>> {
        validate_topic_name(topic)?;
        if partition < 0 {
            return Err(Error::InvalidPartitions(format!(
                "partition {partition} of topic '{topic}' is negative"
            )));
        }
        let mut map = lock_map(&self.partitions);
        let key = (topic.to_string(), partition);
        if let Some(existing) = map.get(&key) {
            if existing.topic_id() == topic_id {
                existing.set_config(config);
                return Ok(Arc::clone(existing));
            }
            if existing.topic_id().is_nil() {
                // partition.metadata was lost (or predates topic ids): adopt the log, as Kafka
                // does, rather than throwing away data.
                let log = self.adopt(existing, topic, partition, topic_id, config)?;
                map.insert(key, Arc::clone(&log));
                return Ok(log);
            }
            tracing::warn!(topic, partition, old_topic_id = %existing.topic_id(), new_topic_id = %topic_id,
                "log belongs to an older topic of the same name; deleting it");
            existing.mark_deleted();
            self.disk.remove_dir_all(existing.dir())?;
            map.remove(&key);
        }
        let log_dir = self.dir_for_new_partition(&map);
        let dir = log_dir.join(format!("{topic}-{partition}"));
        if self.disk.exists(&dir) {
            // Left over from a deletion that did not reach the disk before a crash.
            self.disk.remove_dir_all(&dir)?;
        }
        self.disk.create_dir_all(&dir)?;
        let log = self.open_with_topic_id(dir, topic, partition, topic_id, config)?;
        map.insert(key, Arc::clone(&log));
        Ok(log)
    }

    /// Writes `partition.metadata` with `topic_id` into `dir` and opens the log there under
    /// that id; the metadata file is synced with the log's next flush (PartitionLog::open already
    /// queued the directory and its parent).
    fn open_with_topic_id(
        &self,
        dir: PathBuf,
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>> {
        let metadata_path = dir.join(PARTITION_METADATA);
        self.disk
            .write_file(&metadata_path, partition_metadata(topic_id).as_bytes())?;
        let id = PartitionId {
            topic: topic.to_string(),
            partition,
            topic_id,
        };
        let log = PartitionLog::open(
            id,
            dir.clone(),
            config,
            Arc::clone(&self.disk),
            Arc::clone(&self.clock),
            self.metrics.clone(),
            false,
        )?;
        log.add_pending_sync(self.disk.open(&metadata_path, false)?, dir);
        Ok(Arc::new(log))
    }

    /// Gives a log without a topic id the one the metadata knows, reopening it under that id.
    fn adopt(
        &self,
        existing: &Arc<PartitionLog>,
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>> {
        existing.mark_deleted();
        self.open_with_topic_id(
            existing.dir().to_path_buf(),
            topic,
            partition,
            topic_id,
            config,
        )
    }

    /// Removes every partition of `topic` and its directory. Partitions still held elsewhere go
    /// offline (their writes fail) instead of writing into removed files.
    pub fn delete_topic(&self, topic: &str) -> Result<()> {
        self.delete_where(|(t, _)| t == topic)
    }

    /// Removes one partition's log (this broker no longer hosts it), as [`Self::delete_topic`].
    pub fn delete_partition(&self, topic: &str, partition: i32) -> Result<()> {
        self.delete_where(|(t, p)| t == topic && *p == partition)
    }

    fn delete_where(&self, doomed: impl Fn(&(String, i32)) -> bool) -> Result<()> {
        let removed: Vec<Arc<PartitionLog>> = {
            let mut map = lock_map(&self.partitions);
            let keys: Vec<(String, i32)> = map.keys().filter(|k| doomed(k)).cloned().collect();
            keys.iter().filter_map(|k| map.remove(k)).collect()
        };
        let mut parents = Vec::new();
        for log in &removed {
            if let Some(parent) = log.dir().parent() {
                if !parents.iter().any(|p: &PathBuf| p == parent) {
                    parents.push(parent.to_path_buf());
                }
            }
        }
        // The checkpoint goes first: a crash before the directories are gone leaves logs the
        // next start removes, never a start offset a new topic of the same name would inherit.
        for parent in &parents {
            self.write_log_start_checkpoint_blocking(parent)?;
        }
        for log in &removed {
            log.mark_deleted();
            self.disk.remove_dir_all(log.dir())?;
        }
        for parent in parents {
            self.disk.sync_dir_blocking(&parent)?;
        }
        Ok(())
    }

    /// DeleteRecords (KIP-107): moves `log`'s start offset to `offset` (-1 = the high
    /// watermark) and makes it durable before answering: the log up to the new start is
    /// flushed (so a crash cannot leave the start above the end) and the log dir's
    /// `log-start-offset-checkpoint` rewritten. Kafka checkpoints it every
    /// `log.flush.start.offset.checkpoint.interval.ms`; doing it at once costs two fsyncs per
    /// request and means a restart never serves deleted records again. Returns the new start.
    pub async fn delete_records(&self, log: &Arc<PartitionLog>, offset: i64) -> Result<i64> {
        let _one_writer = self.checkpoint_lock.lock().await;
        let before = log.log_start_offset();
        let low_watermark = log.delete_records_before(offset)?;
        if low_watermark == before {
            return Ok(low_watermark);
        }
        log.flush_to(low_watermark - 1).await?;
        let dir = log
            .dir()
            .parent()
            .ok_or_else(|| storage_error(format!("{} has no log dir", log.dir().display())))?;
        let tmp = self.write_log_start_checkpoint_tmp(dir)?;
        self.disk.open(&tmp, false)?.sync().await?;
        self.disk
            .rename(&tmp, &dir.join(LOG_START_OFFSET_CHECKPOINT))?;
        self.disk.sync_dir(dir).await?;
        Ok(low_watermark)
    }

    /// Writes the checkpoint of `dir` (from the partitions now loaded) to a temporary file,
    /// in Kafka's checkpoint format: version, count, then `topic partition offset` lines.
    fn write_log_start_checkpoint_tmp(&self, dir: &Path) -> Result<PathBuf> {
        let entries: Vec<String> = self
            .partitions()
            .iter()
            .filter(|p| p.dir().parent() == Some(dir) && p.log_start_offset() > 0)
            .map(|p| format!("{} {} {}", p.topic(), p.partition(), p.log_start_offset()))
            .collect();
        let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", entries.len());
        for line in entries {
            text.push_str(&line);
            text.push('\n');
        }
        let tmp = dir.join(format!("{LOG_START_OFFSET_CHECKPOINT}.tmp"));
        self.disk.write_file(&tmp, text.as_bytes())?;
        Ok(tmp)
    }

    /// [`LogManager::delete_records`]'s checkpoint write for topic deletion (not async).
    fn write_log_start_checkpoint_blocking(&self, dir: &Path) -> Result<()> {
        if !self.disk.exists(&dir.join(LOG_START_OFFSET_CHECKPOINT)) {
            return Ok(());
        }
        let tmp = self.write_log_start_checkpoint_tmp(dir)?;
        self.disk.open(&tmp, false)?.sync_blocking()?;
        self.disk
            .rename(&tmp, &dir.join(LOG_START_OFFSET_CHECKPOINT))?;
        self.disk.sync_dir_blocking(dir)?;
        Ok(())
    }

    /// The log dir's checkpointed start offsets; a missing or unreadable file is empty (the
    /// logs then start at their first segment, as before any DeleteRecords).
    fn read_log_start_checkpoint(&self, dir: &Path) -> BTreeMap<(String, i32), i64> {
        let path = dir.join(LOG_START_OFFSET_CHECKPOINT);
        let Ok(bytes) = self.disk.read_file(&path) else {
            return BTreeMap::new();
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        if lines.next() != Some(CHECKPOINT_VERSION) {
            tracing::warn!(path = %path.display(), "unknown checkpoint version; ignored");
            return BTreeMap::new();
        }
        lines
            .skip(1)
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let topic = fields.next()?;
                let partition = fields.next()?.parse().ok()?;
                let offset = fields.next()?.parse().ok()?;
                Some(((topic.to_string(), partition), offset))
            })
            .collect()
    }

    /// Clean shutdown, called last: flushes every partition, writes and syncs the index files
    /// of active segments, then leaves Kafka's clean-shutdown marker in each log dir so that
    /// the next start trusts those indexes instead of rescanning the active segments.
    pub async fn flush_all(&self) -> Result<()> {
        let mut first_error = None;
        for log in self.partitions() {
            if let Err(e) = log.checkpoint().await {
                tracing::warn!(topic = log.topic(), partition = log.partition(), error = %e,
                    "could not flush log at shutdown");
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            // No marker: the next start recovers every active segment by scanning it.
            return Err(e);
        }
        for log_dir in &self.log_dirs {
            let marker = log_dir.join(CLEAN_SHUTDOWN);
            self.disk.write_file(&marker, b"")?;
            self.disk.open(&marker, false)?.sync().await?;
            self.disk.sync_dir(log_dir).await?;
        }
        Ok(())
    }

    /// New partitions go to the log dir holding the fewest (Kafka's placement), first on ties.
    fn dir_for_new_partition(&self, map: &PartitionMap) -> PathBuf {
        let count = |d: &Path| map.values().filter(|p| p.dir().parent() == Some(d)).count();
        self.log_dirs
            .iter()
            .min_by_key(|d| count(d))
            .cloned()
            .expect("open() refuses an empty log.dirs")
    }

    fn load_partitions(&self) -> Result<()> {
        let mut map = lock_map(&self.partitions);
        for log_dir in &self.log_dirs {
            let marker = log_dir.join(CLEAN_SHUTDOWN);
            let clean_shutdown = self.disk.exists(&marker);
            let log_starts = self.read_log_start_checkpoint(log_dir);
            for entry in self.disk.list_dir(log_dir)? {
                if !entry.is_dir {
                    continue;
                }
                let Some((topic, partition)) = parse_partition_dir(&entry.name) else {
                    continue;
                };
                let dir = log_dir.join(&entry.name);
                let key = (topic.to_string(), partition);
                if let Some(other) = map.get(&key) {
                    return Err(storage_error(format!(
                        "partition {topic}-{partition} is in two log dirs: {} and {}",
                        other.dir().display(),
                        dir.display()
                    )));
                }
                let topic_id = self.read_partition_metadata(&dir);
                let id = PartitionId {
                    topic: topic.to_string(),
                    partition,
                    topic_id,
                };
                let log = PartitionLog::open(
                    id,
                    dir,
                    LogConfig::default(),
                    Arc::clone(&self.disk),
                    Arc::clone(&self.clock),
                    self.metrics.clone(),
                    clean_shutdown,
                )?;
                if let Some(&offset) = log_starts.get(&key) {
                    log.restore_log_start_offset(offset);
                }
                map.insert(key, Arc::new(log));
            }
            if clean_shutdown {
                // From now on the active segments change: a crash must not find the marker.
                self.disk.remove_file(&marker)?;
                self.disk.sync_dir_blocking(log_dir)?;
            }
        }
        Ok(())
    }

    /// The topic id in `partition.metadata`, nil when missing or unreadable (then the next
    /// get_or_create treats the log as belonging to another topic).
    fn read_partition_metadata(&self, dir: &Path) -> Uuid {
        let path = dir.join(PARTITION_METADATA);
        let text = match self.disk.read_file(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => return Uuid::nil(),
        };
        text.lines()
            .find_map(|l| l.strip_prefix("topic_id:"))
            .and_then(|v| uuid_from_base64(v.trim()))
            .unwrap_or_else(Uuid::nil)
    }
}

/// Kafka's legal topic names: 1..=249 chars of [a-zA-Z0-9._-], not "." or "..". Also keeps
/// partition directory names inside the log dir.
fn validate_topic_name(topic: &str) -> Result<()> {
    let legal = topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if topic.is_empty()
        || topic.len() > TOPIC_NAME_MAX_LEN
        || !legal
        || topic == "."
        || topic == ".."
    {
        return Err(Error::InvalidTopic(topic.to_string()));
    }
    Ok(())
}

/// `<topic>-<partition>`; None for other directories (such as Kafka's `-delete` ones).
fn parse_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    let partition: i32 = partition.parse().ok()?;
    // The metadata log lives in `__cluster_metadata-0` of metadata.log.dir, which defaults to
    // the first log dir (as in Kafka): it is not a partition log, and must never be opened or
    // removed as one (it was removed at start as the log of a "deleted topic").
    if topic == METADATA_TOPIC {
        return None;
    }
    (partition >= 0 && validate_topic_name(topic).is_ok()).then_some((topic, partition))
}

/// Directory stem of the KRaft metadata log (Kafka's `__cluster_metadata-0`).
const METADATA_TOPIC: &str = "__cluster_metadata";

fn partition_metadata(topic_id: Uuid) -> String {
    format!("version: 0\ntopic_id: {}\n", uuid_to_base64(topic_id))
}

/// Makes `dir` usable as a log or metadata directory, as Kafka's
/// `LogManager.createAndValidateLogDirs`: creates it with its parents when missing and proves
/// it a directory this process can write in, so that a bad path fails the start naming itself
/// rather than the first append. Root passes permission bits; a read-only mount still fails.
pub fn prepare_dir(dir: &Path) -> Result<(), DirError> {
    if let Err(source) = std::fs::create_dir_all(dir) {
        return Err(match std::fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => DirError::NotADirectory(dir.to_path_buf()),
            _ => DirError::Create {
                path: dir.to_path_buf(),
                source,
            },
        });
    }
    let probe = dir.join(WRITE_CHECK_FILE);
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| DirError::Unwritable {
            path: dir.to_path_buf(),
            source,
        })
}

fn lock_dir(dir: &Path) -> Result<File, DirError> {
    let path = dir.join(LOCK_FILE);
    let io = |action, source| DirError::Io {
        action,
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io("open", e))?;
    match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(DirError::Locked { lock_file: path }),
        Err(e) => Err(io("lock", e)),
    }
}

/// The identity fields of `meta.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaProperties {
    pub(crate) cluster_id: Option<String>,
    pub(crate) node_id: Option<i32>,
}

/// `dir/meta.properties`, `None` when the directory is not formatted (no such file).
pub(crate) fn read_meta_properties(dir: &Path) -> Result<Option<MetaProperties>> {
    let path = dir.join(META_PROPERTIES);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::LogDir {
                dir: dir.to_path_buf(),
                source: DirError::Io {
                    action: "read",
                    path,
                    source,
                },
            })
        }
    };
    let mut meta = MetaProperties {
        cluster_id: None,
        node_id: None,
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key.trim() {
            "cluster.id" => meta.cluster_id = Some(value.trim().to_string()),
            "node.id" | "broker.id" => {
                meta.node_id = Some(value.trim().parse().map_err(|_| {
                    Error::InvalidConfig(format!("bad node.id '{value}' in {}", path.display()))
                })?)
            }
            _ => {}
        }
    }
    Ok(Some(meta))
}

fn decide_cluster_id(
    log_dirs: &[PathBuf],
    metas: &[Option<MetaProperties>],
    node_id: i32,
    configured: Option<String>,
) -> Result<String> {
    let mut cluster_id = configured;
    for (dir, meta) in log_dirs.iter().zip(metas) {
        let Some(meta) = meta else { continue };
        if let Some(found) = meta.node_id.filter(|&n| n != node_id) {
            return Err(Error::InvalidConfig(format!(
                "node.id {node_id} does not match node.id {found} in {}",
                dir.join(META_PROPERTIES).display()
            )));
        }
        match (&cluster_id, &meta.cluster_id) {
            (Some(want), Some(found)) if want != found => {
                return Err(Error::InvalidConfig(format!(
                    "cluster.id {want} does not match cluster.id {found} in {}",
                    dir.join(META_PROPERTIES).display()
                )));
            }
            (None, Some(found)) => cluster_id = Some(found.clone()),
            _ => {}
        }
    }
    Ok(cluster_id.unwrap_or_else(|| uuid_to_base64(Uuid::new_v4())))
}

/// Writes Kafka's v1 `meta.properties` into `dir` (temporary file, fsync, rename, fsync of the
/// directory). `sluice format` gives a voter's metadata dir the directory id of its
/// `--initial-controllers` entry, as Kafka's Formatter does; every other dir gets a new one.
pub(crate) fn write_meta_properties(
    dir: &Path,
    cluster_id: &str,
    node_id: i32,
    directory_id: Uuid,
) -> Result<()> {
    let text = format!(
        "#\n#Written by sluice\nnode.id={node_id}\ndirectory.id={}\nversion=1\ncluster.id={cluster_id}\n",
        uuid_to_base64(directory_id)
    );
    let path = dir.join(META_PROPERTIES);
    let tmp = dir.join(format!("{META_PROPERTIES}.tmp"));
    let write = || -> std::io::Result<()> {
        std::fs::write(&tmp, text.as_bytes())?;
        File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|source| Error::LogDir {
        dir: dir.to_path_buf(),
        source: DirError::Io {
            action: "write",
            path,
            source,
        },
    })
}

const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka's textual UUID: URL-safe base64 of the 16 bytes without padding (22 chars).
pub fn uuid_to_base64(id: Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(BASE64_URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Parses [`uuid_to_base64`]'s format; None when it is not 22 valid characters.
pub fn uuid_from_base64(text: &str) -> Option<Uuid> {
    if text.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(16);
    for c in text.bytes() {
        let v = BASE64_URL.iter().position(|&b| b == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    let bytes: [u8; 16] = out.try_into().ok()?;
    Some(Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::{FsDisk, SimDisk};
    use crate::log::partition::tests::{append_checked, test_clock};
    use crate::protocol::record_batch::tests::batch_with;
    use kafka_protocol::records::Compression;

    fn open(
        dirs: &[PathBuf],
        disk: Arc<dyn Disk>,
        node_id: i32,
        cluster: Option<&str>,
    ) -> Result<LogManager> {
        LogManager::open(
            dirs.to_vec(),
            disk,
            test_clock(1_000),
            Metrics::new(),
            node_id,
            cluster.map(str::to_string),
        )
    }

    #[test]
    fn uuid_base64_round_trips_as_kafka_prints_it() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        let text = uuid_to_base64(id);
        assert_eq!(text.len(), 22);
        assert_eq!(text, "ASNFZ4mrze_-3LqYdlQyEA");
        assert_eq!(uuid_from_base64(&text), Some(id));
        assert_eq!(uuid_from_base64("not a uuid"), None);
        assert_eq!(uuid_to_base64(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn second_manager_on_same_dir_fails_on_the_lock() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("logs")];
        let first = open(&dirs, Arc::new(FsDisk), 1, None).expect("first");
        let err = open(&dirs, Arc::new(FsDisk), 1, None).expect_err("second must fail");
        assert!(err.to_string().contains("locked"), "{err}");
        drop(first);
        open(&dirs, Arc::new(FsDisk), 1, None).expect("lock released with the first manager");
    }

    #[test]
    fn meta_properties_keeps_cluster_id_and_refuses_other_node_or_cluster() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("logs")];
        let generated = {
            let m = open(&dirs, Arc::new(FsDisk), 3, None).expect("open");
            m.cluster_id().to_string()
        };
        assert_eq!(generated.len(), 22);
        let text = std::fs::read_to_string(dirs[0].join(META_PROPERTIES)).expect("meta");
        assert!(text.contains("version=1") && text.contains("node.id=3"));
        assert!(text.contains(&format!("cluster.id={generated}")));
        assert!(text.contains("directory.id="));
        let again = open(&dirs, Arc::new(FsDisk), 3, None).expect("reopen");
        assert_eq!(again.cluster_id(), generated);
        drop(again);
        assert!(matches!(
            open(&dirs, Arc::new(FsDisk), 4, None),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            open(&dirs, Arc::new(FsDisk), 3, Some("someOtherCluster00000A")),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[tokio::test]
    async fn partitions_are_loaded_at_open_with_their_topic_id() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("a"), tmp.path().join("b")];
        let disk: Arc<dyn Disk> = Arc::new(FsDisk);
        let topic_id = Uuid::from_u128(42);
        {
            let m = open(&dirs, Arc::clone(&disk), 1, Some("c1")).expect("open");
            for p in 0..3 {
                let log = m
                    .get_or_create("orders", topic_id, p, LogConfig::default())
                    .expect("create");
                append_checked(&log, batch_with(2, 10, Compression::Snappy), 0)
                    .await
                    .expect("append");
            }
            m.flush_all().await.expect("flush");
            // Spread over both dirs.
            let in_a = m
                .partitions()
                .iter()
                .filter(|p| p.dir().starts_with(&dirs[0]))
                .count();
            assert_eq!(in_a, 2);
        }
        let m = open(&dirs, disk, 1, Some("c1")).expect("reopen");
        assert_eq!(m.partitions().len(), 3);
        let log = m.get("orders", 2).expect("loaded");
        assert_eq!(log.topic_id(), topic_id);
        assert_eq!(log.log_end_offset(), 2);
        let same = m
            .get_or_create("orders", topic_id, 2, LogConfig::default())
            .expect("get");
        assert!(Arc::ptr_eq(&log, &same));
        assert!(m.get("orders", 3).is_none());
        assert_eq!(m.topics(), vec![("orders".to_string(), topic_id)]);
    }

    #[tokio::test]
    async fn recreated_topic_with_new_id_starts_with_an_empty_log() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("logs")];
        let disk: Arc<dyn Disk> = Arc::new(FsDisk);
        {
            let m = open(&dirs, Arc::clone(&disk), 1, None).expect("open");
            let old = m
                .get_or_create("t", Uuid::from_u128(1), 0, LogConfig::default())
                .expect("create");
            append_checked(&old, batch_with(3, 10, Compression::None), 0)
                .await
                .expect("append");
            old.flush().await.expect("flush");
        }
        let m = open(&dirs, disk, 1, None).expect("reopen");
        let new = m
            .get_or_create("t", Uuid::from_u128(2), 0, LogConfig::default())
            .expect("recreate");
        assert_eq!(new.log_end_offset(), 0);
        assert_eq!(new.topic_id(), Uuid::from_u128(2));
        let info = append_checked(&new, batch_with(1, 10, Compression::None), 0)
            .await
            .expect("append");
        assert_eq!(info.base_offset, 0);
    }

    #[tokio::test]
    async fn delete_topic_removes_logs_and_offlines_held_partitions() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("logs")];
        let sim = SimDisk::new();
        let m = open(&dirs, Arc::new(sim.clone()), 1, None).expect("open");
        let held = m
            .get_or_create("gone", Uuid::from_u128(5), 0, LogConfig::default())
            .expect("create");
        m.get_or_create("kept", Uuid::from_u128(6), 0, LogConfig::default())
            .expect("create");
        m.delete_topic("gone").expect("delete");
        assert!(m.get("gone", 0).is_none());
        assert!(!sim.exists(&dirs[0].join("gone-0")));
        assert!(m.get("kept", 0).is_some());
        let err = append_checked(&held, batch_with(1, 1, Compression::None), 0).await;
        assert!(matches!(err, Err(Error::Storage(_))));
    }

    #[test]
    fn illegal_topic_names_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("logs")];
        let m = open(&dirs, Arc::new(SimDisk::new()), 1, None).expect("open");
        for bad in ["", ".", "..", "a/b", "../x", &"x".repeat(250)] {
            assert!(matches!(
                m.get_or_create(bad, Uuid::from_u128(1), 0, LogConfig::default()),
                Err(Error::InvalidTopic(_))
            ));
        }
    }

    #[tokio::test]
    async fn created_partition_survives_crash_after_first_flush() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("logs")];
        let sim = SimDisk::new();
        let config = LogConfig {
            flush_interval_messages: Some(1),
            ..LogConfig::default()
        };
        {
            let m = open(&dirs, Arc::new(sim.clone()), 1, None).expect("open");
            let log = m
                .get_or_create("t", Uuid::from_u128(9), 0, config.clone())
                .expect("create");
            append_checked(&log, batch_with(2, 1, Compression::None), 0)
                .await
                .expect("append");
        }
        sim.crash();
        let m = open(&dirs, Arc::new(sim), 1, None).expect("reopen");
        let log = m.get("t", 0).expect("partition dir and files survived");
        assert_eq!(log.topic_id(), Uuid::from_u128(9));
        assert_eq!(log.log_end_offset(), 2);
    }

    #[tokio::test]
    async fn log_without_partition_metadata_is_adopted_not_wiped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("logs")];
        let disk: Arc<dyn Disk> = Arc::new(FsDisk);
        {
            let m = open(&dirs, Arc::clone(&disk), 1, None).expect("open");
            let log = m
                .get_or_create("t", Uuid::from_u128(1), 0, LogConfig::default())
                .expect("create");
            append_checked(&log, batch_with(3, 10, Compression::None), 0)
                .await
                .expect("append");
            log.flush().await.expect("flush");
        }
        std::fs::remove_file(dirs[0].join("t-0").join(PARTITION_METADATA)).expect("rm");
        let m = open(&dirs, Arc::clone(&disk), 1, None).expect("reopen");
        assert!(m.get("t", 0).expect("loaded").topic_id().is_nil());
        let log = m
            .get_or_create("t", Uuid::from_u128(1), 0, LogConfig::default())
            .expect("adopt");
        assert_eq!(log.log_end_offset(), 3);
        drop(m);
        let m = open(&dirs, disk, 1, None).expect("reopen");
        assert_eq!(
            m.get("t", 0).expect("loaded").topic_id(),
            Uuid::from_u128(1)
        );
    }

    #[tokio::test]
    async fn clean_shutdown_marker_is_written_and_consumed_and_state_survives() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("logs")];
        let disk: Arc<dyn Disk> = Arc::new(FsDisk::new());
        let config = LogConfig {
            segment_ms: 1_000,
            index_interval_bytes: 150,
            ..LogConfig::default()
        };
        let marker = dirs[0].join(CLEAN_SHUTDOWN);
        {
            let m = open(&dirs, Arc::clone(&disk), 1, None).expect("open");
            let log = m
                .get_or_create("t", Uuid::from_u128(1), 0, config.clone())
                .expect("create");
            // 100 ms apart: segment.ms rolls every 11 batches.
            for i in 0..25 {
                let b = batch_with(3, 10_000 + 100 * i, Compression::Gzip);
                append_checked(&log, b, 0).await.expect("append");
            }
            m.flush_all().await.expect("flush all");
            assert!(disk.exists(&marker));
        }
        let m = open(&dirs, Arc::clone(&disk), 1, None).expect("reopen");
        assert!(!disk.exists(&marker), "marker consumed at open");
        let log = m
            .get_or_create("t", Uuid::from_u128(1), 0, config)
            .expect("get");
        assert_eq!(log.log_end_offset(), 75);
        assert_eq!(
            log.offset_for_timestamp(10_000 + 100 * 20).expect("ts"),
            Some((60, 12_000, 0))
        );
        let segments = log.segment_count();
        // segment.ms measures from the active segment's first batch, which the index-based
        // load must recover (not the last indexed batch).
        let base = log.active_segment_base_offset();
        let first = log.read(base, 1, true, 75).expect("read");
        let first_max_timestamp = crate::protocol::record_batch::parse_header(&first)
            .expect("header")
            .max_timestamp;
        append_checked(
            &log,
            batch_with(1, first_max_timestamp + 1_001, Compression::None),
            0,
        )
        .await
        .expect("append");
        assert_eq!(log.segment_count(), segments + 1);
    }

    #[tokio::test]
    async fn crash_after_a_clean_restart_still_recovers_the_torn_tail() {
        use rand::SeedableRng;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("logs")];
        let sim = SimDisk::new();
        let config = LogConfig {
            index_interval_bytes: 150,
            ..LogConfig::default()
        };
        {
            let m = open(&dirs, Arc::new(sim.clone()), 1, None).expect("open");
            let log = m
                .get_or_create("t", Uuid::from_u128(1), 0, config.clone())
                .expect("create");
            for i in 0..10 {
                append_checked(&log, batch_with(3, 1_000 + i, Compression::None), 0)
                    .await
                    .expect("append");
            }
            m.flush_all().await.expect("clean shutdown");
        }
        {
            let m = open(&dirs, Arc::new(sim.clone()), 1, None).expect("clean restart");
            let log = m.get("t", 0).expect("loaded");
            for i in 0..10 {
                append_checked(&log, batch_with(3, 2_000 + i, Compression::Lz4), 0)
                    .await
                    .expect("append");
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        sim.crash_tearing(&mut rng);
        let m = open(&dirs, Arc::new(sim.clone()), 1, None).expect("reopen after crash");
        let log = m.get("t", 0).expect("loaded");
        let end = log.log_end_offset();
        assert!((30..=60).contains(&end), "log end {end}");
        let mut next = 0;
        while next < end {
            let bytes = log.read(next, 1 << 20, true, end).expect("read");
            let mut buf = bytes.clone();
            let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)
                .expect("every kept batch decodes");
            for r in sets.iter().flat_map(|s| s.records.iter()) {
                assert_eq!(r.offset, next);
                next += 1;
            }
        }
    }
}
