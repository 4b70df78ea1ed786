//! Durable raft log of the metadata quorum (openraft `RaftLogStorage` + `RaftLogReader`).
//!
//! Files in the store directory:
//! - `metadata.log`: entries appended as frames `[len u32 BE][crc32c u32 BE][entry JSON]`,
//!   fsynced before openraft's append callback; a torn or corrupt tail is cut on open.
//! - `vote.json` (fsynced), `purged.json` (fsynced, written before the log is rewritten),
//!   `committed.json` (not fsynced: a stale committed id only makes openraft re-apply less at
//!   start, and the rest is re-committed after election).
//!
//! The metadata log is small (openraft snapshots and purges it), so all live entries are also
//! kept in memory; reads never touch the file.

// openraft's traits fix the error type (StorageError, ~224 bytes); its examples allow this too.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};

use crate::metadata::files;
use crate::metadata::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const LOG_FILE: &str = "metadata.log";
const VOTE_FILE: &str = "vote.json";
const PURGED_FILE: &str = "purged.json";
const COMMITTED_FILE: &str = "committed.json";
/// Frame header: length and CRC-32C.
const FRAME_HEADER_BYTES: usize = 8;
/// Bigger frames are treated as corruption on read (a metadata batch is far smaller).
const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The raft log store; clones share one log (the clone is also the log reader).
#[derive(Clone, Debug)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

#[derive(Debug)]
struct LogInner {
    dir: PathBuf,
    file: File,
    /// Live entries by index, with the file position of their frame.
    entries: BTreeMap<u64, (Entry, u64)>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

fn io_err(subject: ErrorSubject<u64>, verb: ErrorVerb, e: &io::Error) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(e)).into()
}

fn encode_frame(entry: &Entry, out: &mut Vec<u8>) -> io::Result<()> {
    let payload = serde_json::to_vec(entry).map_err(io::Error::other)?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| (*l as usize) <= FRAME_BYTES_MAX)
        .ok_or_else(|| io::Error::other("metadata log entry too large"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// Decodes the frames of `bytes`; returns the entries with their positions and the length of
/// the valid prefix (everything after it is a torn or corrupt tail).
fn decode_frames(bytes: &[u8]) -> io::Result<(Vec<(Entry, u64)>, usize)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= FRAME_HEADER_BYTES {
        let header = &bytes[pos..pos + FRAME_HEADER_BYTES];
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let start = pos + FRAME_HEADER_BYTES;
        if len > FRAME_BYTES_MAX || bytes.len() - start < len {
            break;
        }
        let payload = &bytes[start..start + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        // A frame with a good CRC that does not decode is not a torn write: refuse to guess.
        let entry: Entry = serde_json::from_slice(payload).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{LOG_FILE} at position {pos}: {e}"),
            )
        })?;
        out.push((entry, pos as u64));
        pos = start + len;
    }
    Ok((out, pos))
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, cutting a torn tail.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let vote = files::read_json(dir, VOTE_FILE)?;
        let last_purged: Option<LogId> = files::read_json(dir, PURGED_FILE)?;
        // committed.json is written without fsync: an unreadable one is as good as none.
        let committed = files::read_json(dir, COMMITTED_FILE).unwrap_or(None);
        let path = dir.join(LOG_FILE);
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        if created {
            files::sync_dir(dir)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (decoded, valid) = decode_frames(&bytes)?;
        if valid < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                valid_bytes = valid,
                file_bytes = bytes.len(),
                "metadata log has a torn or corrupt tail; truncating it"
            );
            file.set_len(valid as u64)?;
            file.sync_all()?;
        }
        let purged_index = last_purged.map(|l: LogId| l.index);
        let mut entries = BTreeMap::new();
        for (entry, pos) in decoded {
            let index = entry.log_id.index;
            if purged_index.is_some_and(|p| index <= p) {
                continue;
            }
            // A later frame for an index replaces it and everything after it (see append).
            entries.split_off(&index);
            entries.insert(index, (entry, pos));
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(LogInner {
                dir: dir.to_path_buf(),
                file,
                entries,
                last_purged,
                vote,
                committed,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        // A panic while holding the lock leaves no half-applied state worth refusing: every
        // mutation updates memory only after its file write succeeded.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogInner {
    fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .last_key_value()
            .map(|(_, (e, _))| e.log_id)
            .or(self.last_purged)
    }

    fn append(&mut self, entries: Vec<Entry>) -> Result<(), StorageError> {
        let write_err = |e: &io::Error| io_err(ErrorSubject::Logs, ErrorVerb::Write, e);
        let Some(first) = entries.first().map(|e| e.log_id) else {
            return Ok(());
        };
        // openraft truncates conflicting entries before appending; should an append still
        // overlap the log, the new entries replace the old ones from that index on.
        self.truncate(first)?;
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(entries.len());
        let file_len = self.file.metadata().map_err(|e| write_err(&e))?.len();
        let mut previous: Option<u64> = None;
        for entry in &entries {
            let index = entry.log_id.index;
            if previous.is_some_and(|p| index <= p) {
                let e =
                    io::Error::other(format!("append of entry {index} after entry {previous:?}"));
                return Err(write_err(&e));
            }
            previous = Some(index);
            positions.push(file_len + buf.len() as u64);
            encode_frame(entry, &mut buf).map_err(|e| write_err(&e))?;
        }
        self.file.write_all(&buf).map_err(|e| write_err(&e))?;
        self.file.sync_data().map_err(|e| write_err(&e))?;
        for (entry, pos) in entries.into_iter().zip(positions) {
            self.entries.insert(entry.log_id.index, (entry, pos));
        }
        Ok(())
    }

    fn truncate(&mut self, since: LogId) -> Result<(), StorageError> {
        let Some(pos) = self
            .entries
            .range(since.index..)
            .next()
            .map(|(_, (_, pos))| *pos)
        else {
            return Ok(());
        };
        let err = |e: &io::Error| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e);
        self.file.set_len(pos).map_err(|e| err(&e))?;
        self.file.sync_all().map_err(|e| err(&e))?;
        self.entries.split_off(&since.index);
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> Result<(), StorageError> {
        let err = |e: &io::Error| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e);
        // Record the purge point first: after a crash, open() skips entries up to it.
        files::write_json(&self.dir, PURGED_FILE, &upto, true).map_err(|e| err(&e))?;
        self.last_purged = Some(upto);
        self.entries = self.entries.split_off(&(upto.index + 1));
        self.rewrite_file().map_err(|e| err(&e))
    }

    /// Rewrites the log file with the live entries only (after a purge).
    fn rewrite_file(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(self.entries.len());
        for (entry, _) in self.entries.values() {
            positions.push(buf.len() as u64);
            encode_frame(entry, &mut buf)?;
        }
        files::write_atomic(&self.dir, LOG_FILE, &buf, true)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(self.dir.join(LOG_FILE))?;
        for ((_, pos), new_pos) in self.entries.values_mut().zip(positions) {
            *pos = new_pos;
        }
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let inner = self.lock();
        Ok(inner
            .entries
            .range(range)
            .map(|(_, (e, _))| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.lock();
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: inner.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut inner = self.lock();
        files::write_json(&inner.dir, VOTE_FILE, vote, true)
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, &e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        files::write_json(&inner.dir, COMMITTED_FILE, &committed, false)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, &e))?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = self.lock().append(entries.into_iter().collect());
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock().truncate(log_id)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock().purge(log_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::{blank_ent, log_id};

    fn blanks(term: u64, range: std::ops::Range<u64>) -> Vec<Entry> {
        range.map(|i| blank_ent::<TypeConfig>(term, 1, i)).collect()
    }

    #[tokio::test]
    async fn appended_entries_and_vote_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path()).expect("open");
            store
                .blocking_append(blanks(1, 0..5))
                .await
                .expect("append");
            store.save_vote(&Vote::new(3, 1)).await.expect("vote");
        }
        let mut store = LogStore::open(dir.path()).expect("reopen");
        let entries = store.try_get_log_entries(0..).await.expect("read");
        assert_eq!(entries.len(), 5);
        assert_eq!(
            store.read_vote().await.expect("vote"),
            Some(Vote::new(3, 1))
        );
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 4)));
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_appends_continue_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path()).expect("open");
            store
                .blocking_append(blanks(1, 0..3))
                .await
                .expect("append");
        }
        let path = dir.path().join(LOG_FILE);
        let len = std::fs::metadata(&path).expect("meta").len();
        // Simulate a crash in the middle of the last frame.
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open file");
        f.set_len(len - 3).expect("tear");
        drop(f);
        let mut store = LogStore::open(dir.path()).expect("reopen");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 1)));
        store
            .blocking_append(blanks(2, 2..4))
            .await
            .expect("append");
        drop(store);
        let mut store = LogStore::open(dir.path()).expect("reopen again");
        let entries = store.try_get_log_entries(0..).await.expect("read");
        let ids: Vec<_> = entries.iter().map(|e| e.log_id).collect();
        assert_eq!(
            ids,
            vec![
                log_id(1, 1, 0),
                log_id(1, 1, 1),
                log_id(2, 1, 2),
                log_id(2, 1, 3)
            ]
        );
    }

    #[tokio::test]
    async fn truncate_and_purge_persist_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path()).expect("open");
            store
                .blocking_append(blanks(1, 0..10))
                .await
                .expect("append");
            store.truncate(log_id(1, 1, 7)).await.expect("truncate");
            store.purge(log_id(1, 1, 2)).await.expect("purge");
            store
                .blocking_append(blanks(2, 7..9))
                .await
                .expect("append");
        }
        let mut store = LogStore::open(dir.path()).expect("reopen");
        let entries = store.try_get_log_entries(0..).await.expect("read");
        let indexes: Vec<_> = entries.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, vec![3, 4, 5, 6, 7, 8]);
        assert_eq!(entries[4].log_id, log_id(2, 1, 7));
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 2)));
    }

    #[tokio::test]
    async fn overlapping_append_replaces_the_tail_also_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path()).expect("open");
            store
                .blocking_append(blanks(1, 0..5))
                .await
                .expect("append");
            store
                .blocking_append(blanks(2, 2..3))
                .await
                .expect("overlap");
            let ids: Vec<_> = store
                .try_get_log_entries(0..)
                .await
                .expect("read")
                .iter()
                .map(|e| e.log_id)
                .collect();
            assert_eq!(ids, vec![log_id(1, 1, 0), log_id(1, 1, 1), log_id(2, 1, 2)]);
        }
        let mut store = LogStore::open(dir.path()).expect("reopen");
        let ids: Vec<_> = store
            .try_get_log_entries(0..)
            .await
            .expect("read")
            .iter()
            .map(|e| e.log_id)
            .collect();
        assert_eq!(ids, vec![log_id(1, 1, 0), log_id(1, 1, 1), log_id(2, 1, 2)]);
    }
}
