//! Sparse segment indexes, kept in memory and written as Kafka lays them out: `.index` entries
//! are (relative offset u32, position u32) and `.timeindex` entries are (timestamp i64,
//! relative offset u32), big endian. Used by `segment` for appends, reads and recovery.

/// Bytes per `.index` entry.
pub const OFFSET_INDEX_ENTRY_BYTES: u64 = 8;
/// Bytes per `.timeindex` entry.
pub const TIME_INDEX_ENTRY_BYTES: u64 = 12;

/// Offset index: the last offset of an appended record set -> its position in the segment.
/// Relative offsets and positions both strictly increase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
    max_entries: usize,
}

impl OffsetIndex {
    /// An empty index that holds `segment_index_bytes / 8` entries before it is full.
    pub fn new(segment_index_bytes: u64) -> Self {
        OffsetIndex {
            entries: Vec::new(),
            max_entries: entries_for(segment_index_bytes, OFFSET_INDEX_ENTRY_BYTES),
        }
    }

    /// Adds an entry; ignored unless both fields are past the last entry (Kafka would throw;
    /// for an in-memory sparse index skipping is always safe).
    pub fn append(&mut self, relative_offset: u32, position: u32) {
        if self.is_full() {
            return;
        }
        match self.entries.last() {
            Some(&(o, p)) if relative_offset <= o || position <= p => {}
            _ => self.entries.push((relative_offset, position)),
        }
    }

    /// Position of the largest entry whose offset is <= `relative_offset`, or 0: scanning from
    /// there finds the batch holding that offset.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let n = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        if n == 0 {
            0
        } else {
            self.entries[n - 1].1
        }
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn last(&self) -> Option<(u32, u32)> {
        self.entries.last().copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_INDEX_ENTRY_BYTES as usize);
        for &(o, p) in &self.entries {
            out.extend_from_slice(&o.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// Parses an index file; None when it is not a whole number of entries, not strictly
    /// increasing, or points at or past `log_size` (then the caller rebuilds it).
    pub fn from_bytes(bytes: &[u8], segment_index_bytes: u64, log_size: u64) -> Option<Self> {
        if !(bytes.len() as u64).is_multiple_of(OFFSET_INDEX_ENTRY_BYTES) {
            return None;
        }
        let mut index = OffsetIndex::new(segment_index_bytes);
        for chunk in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES as usize) {
            let o = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let p = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if u64::from(p) >= log_size {
                return None;
            }
            if let Some(&(lo, lp)) = index.entries.last() {
                if o <= lo || p <= lp {
                    return None;
                }
            }
            index.entries.push((o, p));
        }
        Some(index)
    }
}

/// Time index: the largest timestamp seen so far -> relative offset of the batch where it was
/// first reached. Timestamps strictly increase, so every record before an entry's offset has a
/// smaller timestamp than the entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
    max_entries: usize,
}

impl TimeIndex {
    pub fn new(segment_index_bytes: u64) -> Self {
        TimeIndex {
            entries: Vec::new(),
            max_entries: entries_for(segment_index_bytes, TIME_INDEX_ENTRY_BYTES),
        }
    }

    /// Adds an entry when `timestamp` is larger than the last one (Kafka's maybeAppend).
    pub fn maybe_append(&mut self, timestamp: i64, relative_offset: u32) {
        if self.is_full() || timestamp < 0 {
            return;
        }
        match self.entries.last() {
            Some(&(t, o)) if timestamp <= t || relative_offset < o => {}
            _ => self.entries.push((timestamp, relative_offset)),
        }
    }

    /// The largest entry whose timestamp is <= `timestamp`: records before its offset are all
    /// older than `timestamp`, so a search may start there.
    pub fn lookup(&self, timestamp: i64) -> Option<(i64, u32)> {
        let n = self.entries.partition_point(|&(t, _)| t <= timestamp);
        n.checked_sub(1).map(|i| self.entries[i])
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_INDEX_ENTRY_BYTES as usize);
        for &(t, o) in &self.entries {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&o.to_be_bytes());
        }
        out
    }

    /// Parses a time index file; None when it is malformed or not increasing, or when an
    /// offset is at or past `next_relative_offset` (the segment's end).
    pub fn from_bytes(
        bytes: &[u8],
        segment_index_bytes: u64,
        next_relative_offset: u64,
    ) -> Option<Self> {
        if !(bytes.len() as u64).is_multiple_of(TIME_INDEX_ENTRY_BYTES) {
            return None;
        }
        let mut index = TimeIndex::new(segment_index_bytes);
        for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES as usize) {
            let mut t = [0u8; 8];
            t.copy_from_slice(&chunk[..8]);
            let t = i64::from_be_bytes(t);
            let o = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if t < 0 || u64::from(o) >= next_relative_offset {
                return None;
            }
            if let Some(&(lt, lo)) = index.entries.last() {
                if t <= lt || o < lo {
                    return None;
                }
            }
            index.entries.push((t, o));
        }
        Some(index)
    }
}

fn entries_for(segment_index_bytes: u64, entry_bytes: u64) -> usize {
    // At least one entry, so a tiny configured size still indexes something.
    usize::try_from((segment_index_bytes / entry_bytes).max(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_largest_entry_at_or_below_target() {
        let mut idx = OffsetIndex::new(1024);
        idx.append(9, 100);
        idx.append(19, 200);
        idx.append(29, 300);
        assert_eq!(idx.lookup(0), 0);
        assert_eq!(idx.lookup(9), 100);
        assert_eq!(idx.lookup(18), 100);
        assert_eq!(idx.lookup(19), 200);
        assert_eq!(idx.lookup(1000), 300);
    }

    #[test]
    fn offset_index_round_trips_and_rejects_bad_files() {
        let mut idx = OffsetIndex::new(1024);
        idx.append(3, 10);
        idx.append(7, 90);
        let bytes = idx.to_bytes();
        assert_eq!(OffsetIndex::from_bytes(&bytes, 1024, 100), Some(idx));
        assert_eq!(OffsetIndex::from_bytes(&bytes[..5], 1024, 100), None);
        assert_eq!(OffsetIndex::from_bytes(&bytes, 1024, 90), None);
        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        assert_eq!(OffsetIndex::from_bytes(&swapped, 1024, 100), None);
    }

    #[test]
    fn offset_index_is_full_after_segment_index_bytes() {
        let mut idx = OffsetIndex::new(16);
        idx.append(1, 1);
        assert!(!idx.is_full());
        idx.append(2, 2);
        assert!(idx.is_full());
        idx.append(3, 3);
        assert_eq!(idx.len(), 2);
    }

    #[test]
    fn time_index_keeps_only_increasing_timestamps() {
        let mut idx = TimeIndex::new(1024);
        idx.maybe_append(100, 0);
        idx.maybe_append(100, 5);
        idx.maybe_append(90, 6);
        idx.maybe_append(200, 7);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.lookup(99), None);
        assert_eq!(idx.lookup(150), Some((100, 0)));
        assert_eq!(idx.lookup(200), Some((200, 7)));
        let bytes = idx.to_bytes();
        assert_eq!(TimeIndex::from_bytes(&bytes, 1024, 8), Some(idx));
        assert_eq!(TimeIndex::from_bytes(&bytes, 1024, 7), None);
    }
}
