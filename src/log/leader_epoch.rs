//! A partition's leader epoch cache (Kafka's LeaderEpochFileCache, KIP-101/KIP-279): the first
//! offset written in each leader epoch, kept in the partition directory's
//! `leader-epoch-checkpoint`; OffsetForLeaderEpoch answers from it.

use std::path::Path;

use crate::error::Result;
use crate::log::disk::Disk;

/// Kafka's file name, in the partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Kafka's checkpoint file version line.
const CHECKPOINT_VERSION: &str = "0";
/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One epoch and the offset of its first batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Epochs in increasing order, start offsets increasing too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`; an epoch not above the latest is
    /// ignored (Kafka's assign). Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        // A new epoch cannot start below an earlier one: drop what it supersedes.
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Truncation of the log to `end_offset`: epochs starting at or after it are gone.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        before != self.entries.len()
    }

    /// The log start moved to `start_offset`: epochs wholly below it go, and the one holding it
    /// now starts there (Kafka's truncateFromStart).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if below == 0 || (below == 1 && self.entries[0].start_offset == start_offset) {
            return false;
        }
        let mut holder = self.entries[below - 1];
        holder.start_offset = start_offset;
        self.entries.drain(..below);
        self.entries.insert(0, holder);
        true
    }

    /// Kafka's endOffsetFor: (epoch, end offset) of `requested`, the log end offset for the
    /// latest epoch, the start of the next known epoch otherwise; undefined when unknown.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        let undefined = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested == UNDEFINED_EPOCH {
            return undefined;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return undefined;
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }

    /// Kafka's checkpoint format: version, count, then `epoch start_offset` lines.
    pub fn to_checkpoint(&self) -> String {
        let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        text
    }

    /// Parses [`LeaderEpochCache::to_checkpoint`]; None when the file is not one.
    pub fn from_checkpoint(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != CHECKPOINT_VERSION {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut cache = LeaderEpochCache::default();
        for line in lines.take(count) {
            let (epoch, offset) = line.split_once(' ')?;
            let entry = EpochEntry {
                epoch: epoch.parse().ok()?,
                start_offset: offset.trim().parse().ok()?,
            };
            let ordered = cache
                .entries
                .last()
                .is_none_or(|l| l.epoch < entry.epoch && l.start_offset <= entry.start_offset);
            if !ordered {
                return None;
            }
            cache.entries.push(entry);
        }
        (cache.entries.len() == count).then_some(cache)
    }

    /// Reads the partition's checkpoint; None when missing or unreadable.
    pub fn read(disk: &dyn Disk, dir: &Path) -> Option<Self> {
        let bytes = disk.read_file(&dir.join(LEADER_EPOCH_CHECKPOINT)).ok()?;
        Self::from_checkpoint(&String::from_utf8_lossy(&bytes))
    }

    /// Replaces the partition's checkpoint (temporary file, then rename); the caller queues
    /// the file and directory for the next fsync, which the data it describes also waits for.
    pub fn write(&self, disk: &dyn Disk, dir: &Path) -> Result<()> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let tmp = dir.join(format!("{LEADER_EPOCH_CHECKPOINT}.tmp"));
        disk.write_file(&tmp, self.to_checkpoint().as_bytes())?;
        disk.rename(&tmp, &path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(epoch, offset) in entries {
            assert!(c.assign(epoch, offset));
        }
        c
    }

    #[test]
    fn end_offset_is_the_log_end_for_the_latest_epoch_and_the_next_start_before() {
        let c = cache(&[(1, 0), (3, 10), (5, 25)]);
        assert_eq!(c.end_offset_for(5, 40), (5, 40));
        assert_eq!(c.end_offset_for(3, 40), (3, 25));
        assert_eq!(c.end_offset_for(4, 40), (3, 25));
        assert_eq!(c.end_offset_for(0, 40), (0, 0));
        assert_eq!(c.end_offset_for(6, 40), (-1, -1));
        assert_eq!(c.end_offset_for(-1, 40), (-1, -1));
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 5), (-1, -1));
    }

    #[test]
    fn assign_ignores_older_epochs_and_truncation_drops_entries() {
        let mut c = cache(&[(0, 0), (2, 5)]);
        assert!(!c.assign(1, 9));
        assert!(!c.assign(2, 9));
        assert!(c.truncate_from_end(5));
        assert_eq!(c.latest_epoch(), Some(0));
        let mut c = cache(&[(0, 0), (2, 5), (4, 9)]);
        assert!(c.truncate_from_start(7));
        assert_eq!(c.end_offset_for(1, 20), (1, 7));
        assert_eq!(c.end_offset_for(2, 20), (2, 9));
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_garbage() {
        let c = cache(&[(0, 0), (7, 100)]);
        assert_eq!(c.to_checkpoint(), "0\n2\n0 0\n7 100\n");
        assert_eq!(
            LeaderEpochCache::from_checkpoint(&c.to_checkpoint()),
            Some(c)
        );
        for bad in [
            "",
            "1\n0\n",
            "0\n2\n0 0\n",
            "0\n2\n5 0\n3 9\n",
            "0\n1\nx y\n",
        ] {
            assert_eq!(LeaderEpochCache::from_checkpoint(bad), None, "{bad:?}");
        }
    }
}
