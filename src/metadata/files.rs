//! Small durable-file helpers of the metadata stores (vote, committed, snapshot files).
//!
//! Metadata writes are rare and small, so they are plain synchronous file calls made from the
//! raft task; the partition log's `Disk` seam is where simulated disks come in later.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Fsyncs a directory so that a created, renamed or removed entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `dir/name` with `bytes` atomically: write a temporary file, rename it over the old
/// one. With `durable` the data and the rename are fsynced before returning.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, dir.join(name))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes `value` as JSON with [`write_atomic`].
pub fn write_json<T: Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
    durable: bool,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomic(dir, name, &bytes, durable)
}

/// Reads a JSON file written by [`write_json`]; `None` if it does not exist.
pub fn read_json<T: DeserializeOwned>(dir: &Path, name: &str) -> io::Result<Option<T>> {
    match fs::read(dir.join(name)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_json_then_read_json_returns_value_and_missing_file_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_json::<u32>(dir.path(), "x.json").expect("read"), None);
        write_json(dir.path(), "x.json", &7u32, true).expect("write");
        write_json(dir.path(), "x.json", &8u32, false).expect("overwrite");
        assert_eq!(
            read_json::<u32>(dir.path(), "x.json").expect("read"),
            Some(8)
        );
        assert!(!dir.path().join("x.json.tmp").exists());
    }
}
