//! One log segment: a `.log` file of record batches named by its base offset, with its sparse
//! offset and time indexes held in memory (written to `.index`/`.timeindex` when the segment is
//! rolled). Owns batch scanning for recovery and reads; `partition` decides what to do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::log::disk::{Disk, DiskFile};
use crate::log::index::{OffsetIndex, TimeIndex};
use crate::log::segment_file_stem;
use crate::protocol::record_batch::{BatchHeader, BatchIter, BatchIterStop};

/// Bytes read at a time when scanning a segment.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// Paths of a segment's three files.
pub fn segment_paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
    let stem = segment_file_stem(base_offset);
    (
        dir.join(format!("{stem}.log")),
        dir.join(format!("{stem}.index")),
        dir.join(format!("{stem}.timeindex")),
    )
}

/// Removes a segment's index files, which must go whenever its log is cut: recovery may
/// trust index files only while they describe a prefix of the log.
pub fn remove_index_files(disk: &dyn Disk, dir: &Path, base_offset: i64) -> Result<()> {
    let (_, index_path, time_index_path) = segment_paths(dir, base_offset);
    for path in [index_path, time_index_path] {
        if disk.exists(&path) {
            disk.remove_file(&path)?;
        }
    }
    Ok(())
}

/// One segment's file handle and the in-memory state derived from its batches.
#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    pub log: Arc<dyn DiskFile>,
    /// Bytes of valid batches in the file.
    pub size: u64,
    /// Offset after the last batch (== base_offset while empty).
    pub next_offset: i64,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    pub bytes_since_last_index_entry: u64,
    /// Largest batch maxTimestamp in the segment, -1 when none.
    pub max_timestamp: i64,
    /// Last offset of the first batch that reached `max_timestamp` (Kafka's shallow offset).
    pub offset_of_max_timestamp: i64,
    /// maxTimestamp of the first batch, for segment.ms rolling (Kafka's rollingBasedTimestamp).
    pub first_batch_timestamp: Option<i64>,
    /// Wall time the segment was created or loaded, the segment.ms fallback.
    pub created_ms: i64,
}

/// What a scan of a segment's batches found.
#[derive(Debug)]
pub struct ScanEnd {
    /// Where valid batches end.
    pub valid_bytes: u64,
    /// Why the scan stopped before the end of the file, when it did.
    pub torn: Option<String>,
}

impl Segment {
    pub fn new(
        base_offset: i64,
        log: Arc<dyn DiskFile>,
        segment_index_bytes: u64,
        created_ms: i64,
    ) -> Self {
        Segment {
            base_offset,
            log,
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::new(segment_index_bytes),
            time_index: TimeIndex::new(segment_index_bytes),
            bytes_since_last_index_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_batch_timestamp: None,
            created_ms,
        }
    }

    /// Offset relative to the base, as stored in the indexes. Callers roll the segment before an
    /// offset could overflow u32, so the clamp never bites.
    pub fn relative(&self, offset: i64) -> u32 {
        u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX)
    }

    /// True when `offset` is representable relative to this segment's base.
    pub fn can_hold_offset(&self, offset: i64) -> bool {
        offset >= self.base_offset && offset - self.base_offset <= i64::from(u32::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Updates timestamps after one batch at `position` (appended or scanned).
    fn observe_batch(&mut self, header: &BatchHeader) {
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(header.max_timestamp);
        }
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
    }

    /// Records that `len` bytes of batches (already written at `position`) were appended, as
    /// Kafka's LogSegment.append does: one index entry per append once more than
    /// `index_interval_bytes` were written since the last entry.
    pub fn on_appended(
        &mut self,
        position: u64,
        len: u64,
        headers: &[BatchHeader],
        index_interval_bytes: u64,
    ) {
        let Some(last) = headers.last() else {
            return;
        };
        for h in headers {
            self.observe_batch(h);
        }
        if self.bytes_since_last_index_entry > index_interval_bytes {
            self.offset_index
                .append(self.relative(last.last_offset()), position as u32);
            self.time_index.maybe_append(
                self.max_timestamp,
                self.relative(self.offset_of_max_timestamp),
            );
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += len;
        self.size = position + len;
        self.next_offset = last.last_offset() + 1;
    }

    /// Writes both index files as they are now, adding the final time index entry Kafka adds
    /// when a segment stops being active. Not synced here.
    pub fn write_indexes(&mut self, disk: &dyn Disk, dir: &Path) -> Result<()> {
        if self.max_timestamp >= 0 {
            let rel = self.relative(self.offset_of_max_timestamp);
            self.time_index.maybe_append(self.max_timestamp, rel);
        }
        let (_, index_path, time_index_path) = segment_paths(dir, self.base_offset);
        disk.write_file(&index_path, &self.offset_index.to_bytes())?;
        disk.write_file(&time_index_path, &self.time_index.to_bytes())?;
        Ok(())
    }

    /// Writes both index files for a segment that stays active (clean shutdown), leaving the
    /// in-memory indexes as they are. Not synced here.
    pub fn write_index_snapshot(&self, disk: &dyn Disk, dir: &Path) -> Result<()> {
        let mut time_index = self.time_index.clone();
        if self.max_timestamp >= 0 {
            time_index.maybe_append(
                self.max_timestamp,
                self.relative(self.offset_of_max_timestamp),
            );
        }
        let (_, index_path, time_index_path) = segment_paths(dir, self.base_offset);
        disk.write_file(&index_path, &self.offset_index.to_bytes())?;
        disk.write_file(&time_index_path, &time_index.to_bytes())?;
        Ok(())
    }

    /// Loads the state of a segment from its file: trusts index files when they are sane (and
    /// `trust_indexes`), then scans batches from the last indexed position to the end,
    /// verifying CRCs and offsets. Without usable indexes the whole file is scanned and the
    /// indexes are rebuilt. Returns where valid data ends; the caller truncates torn bytes.
    pub fn load(
        disk: &dyn Disk,
        dir: &Path,
        base_offset: i64,
        segment_index_bytes: u64,
        index_interval_bytes: u64,
        trust_indexes: bool,
        now_ms: i64,
    ) -> Result<(Segment, ScanEnd)> {
        let (log_path, index_path, time_index_path) = segment_paths(dir, base_offset);
        let log = disk.open(&log_path, false)?;
        let file_len = log.len()?;
        let mut seg = Segment::new(base_offset, Arc::clone(&log), segment_index_bytes, now_ms);
        if trust_indexes {
            if let Some(end) = seg.try_load_indexes(
                disk,
                &index_path,
                &time_index_path,
                file_len,
                segment_index_bytes,
                index_interval_bytes,
            )? {
                return Ok((seg, end));
            }
            seg = Segment::new(base_offset, log, segment_index_bytes, now_ms);
        }
        let end = seg.scan_from(0, base_offset, file_len, index_interval_bytes)?;
        Ok((seg, end))
    }

    /// Builds a segment's state by scanning an open file whole with CRC checks: the log
    /// cleaner's `.cleaned` copy, before it is swapped in under the segment's name.
    pub fn scan_file(
        log: Arc<dyn DiskFile>,
        base_offset: i64,
        segment_index_bytes: u64,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<(Segment, ScanEnd)> {
        let file_len = log.len()?;
        let mut seg = Segment::new(base_offset, log, segment_index_bytes, now_ms);
        let end = seg.scan_from(0, base_offset, file_len, index_interval_bytes)?;
        Ok((seg, end))
    }

    /// Index-assisted load; None when the index files are missing or inconsistent.
    fn try_load_indexes(
        &mut self,
        disk: &dyn Disk,
        index_path: &Path,
        time_index_path: &Path,
        file_len: u64,
        segment_index_bytes: u64,
        index_interval_bytes: u64,
    ) -> Result<Option<ScanEnd>> {
        if file_len == 0 || !disk.exists(index_path) || !disk.exists(time_index_path) {
            return Ok(None);
        }
        let Some(offset_index) =
            OffsetIndex::from_bytes(&disk.read_file(index_path)?, segment_index_bytes, file_len)
        else {
            return Ok(None);
        };
        let Some(time_index) = TimeIndex::from_bytes(
            &disk.read_file(time_index_path)?,
            segment_index_bytes,
            u64::from(u32::MAX),
        ) else {
            return Ok(None);
        };
        // Without any time index entry the segment's max timestamp is unknown: rescan.
        let Some((max_timestamp, rel_of_max)) = time_index.last() else {
            return Ok(None);
        };
        let (start_rel, start_position) = offset_index.last().unwrap_or((0, 0));
        self.offset_index = offset_index;
        self.time_index = time_index;
        self.max_timestamp = max_timestamp;
        self.offset_of_max_timestamp = self.base_offset + i64::from(rel_of_max);
        let expected_first = self.base_offset;
        let end = self.scan_from(
            u64::from(start_position),
            expected_first,
            file_len,
            index_interval_bytes,
        )?;
        // The indexed batch must be the one the index says; otherwise rebuild from scratch.
        let indexed_ok = (start_position == 0 && self.offset_index.is_empty())
            || self.first_batch_last_offset_at(u64::from(start_position))?
                == Some(self.base_offset + i64::from(start_rel));
        if !indexed_ok
            || end.valid_bytes < u64::from(start_position)
            || self.offset_of_max_timestamp >= self.next_offset
        {
            return Ok(None);
        }
        // The scan started at the last indexed batch: segment.ms needs the real first one.
        self.first_batch_timestamp = self.first_batch_max_timestamp()?;
        Ok(Some(end))
    }

    fn first_batch_max_timestamp(&self) -> Result<Option<i64>> {
        let mut header = [0u8; crate::protocol::record_batch::BATCH_HEADER_LEN];
        if (header.len() as u64) > self.size {
            return Ok(None);
        }
        self.log.read_at(0, &mut header)?;
        Ok(crate::protocol::record_batch::parse_header(&header)
            .ok()
            .map(|h| h.max_timestamp))
    }

    fn first_batch_last_offset_at(&self, position: u64) -> Result<Option<i64>> {
        let mut header = [0u8; crate::protocol::record_batch::BATCH_HEADER_LEN];
        if position + header.len() as u64 > self.size {
            return Ok(None);
        }
        self.log.read_at(position, &mut header)?;
        Ok(crate::protocol::record_batch::parse_header(&header)
            .ok()
            .map(|h| h.last_offset()))
    }

    /// Scans batches from `position` to `file_len` with CRC checks, feeding each valid batch
    /// into the segment's state as an append would. Stops at the first torn or invalid batch,
    /// including one whose offsets go backwards or do not fit this segment.
    fn scan_from(
        &mut self,
        position: u64,
        expected_min_offset: i64,
        file_len: u64,
        index_interval_bytes: u64,
    ) -> Result<ScanEnd> {
        let mut pos = position;
        let mut min_offset = expected_min_offset;
        self.size = position;
        while pos < file_len {
            let want = usize::try_from((file_len - pos).min(SCAN_CHUNK_BYTES as u64))
                .map_err(std::io::Error::other)?;
            let mut chunk = vec![0u8; want];
            self.log.read_at(pos, &mut chunk)?;
            let mut iter = BatchIter::new(&chunk, true);
            let mut accepted = Vec::new();
            for (at, header, _) in iter.by_ref() {
                if let Some(reason) = self.offset_problem(&header, min_offset) {
                    self.apply_scanned(&accepted, index_interval_bytes);
                    return Ok(ScanEnd {
                        valid_bytes: pos + at as u64,
                        torn: Some(reason),
                    });
                }
                min_offset = header.last_offset() + 1;
                accepted.push((pos + at as u64, header));
            }
            let consumed = iter.position() as u64;
            let stop = iter.stopped();
            self.apply_scanned(&accepted, index_interval_bytes);
            match stop {
                Some(BatchIterStop::End) | None => {}
                Some(BatchIterStop::Incomplete { needed }) => {
                    let batch_end = pos + consumed + *needed as u64;
                    if batch_end > file_len {
                        return Ok(ScanEnd {
                            valid_bytes: pos + consumed,
                            torn: Some(format!(
                                "batch at position {} needs {needed} bytes, file ends at {file_len}",
                                pos + consumed
                            )),
                        });
                    }
                    if consumed == 0 {
                        // One batch larger than the chunk: read exactly it.
                        let len = *needed;
                        let mut big = vec![0u8; len];
                        self.log.read_at(pos, &mut big)?;
                        match BatchIter::new(&big, true).next() {
                            Some((_, header, _)) => {
                                if let Some(reason) = self.offset_problem(&header, min_offset) {
                                    return Ok(ScanEnd {
                                        valid_bytes: pos,
                                        torn: Some(reason),
                                    });
                                }
                                min_offset = header.last_offset() + 1;
                                self.apply_scanned(&[(pos, header)], index_interval_bytes);
                                pos += len as u64;
                                continue;
                            }
                            None => {
                                return Ok(ScanEnd {
                                    valid_bytes: pos,
                                    torn: Some(format!("invalid batch at position {pos}")),
                                })
                            }
                        }
                    }
                }
                Some(BatchIterStop::Invalid(e)) => {
                    return Ok(ScanEnd {
                        valid_bytes: pos + consumed,
                        torn: Some(format!("batch at position {}: {e}", pos + consumed)),
                    });
                }
            }
            pos += consumed;
        }
        Ok(ScanEnd {
            valid_bytes: pos,
            torn: None,
        })
    }

    fn offset_problem(&self, header: &BatchHeader, min_offset: i64) -> Option<String> {
        if header.base_offset < min_offset {
            return Some(format!(
                "batch base offset {} is below the expected {min_offset}",
                header.base_offset
            ));
        }
        if header.last_offset_delta < 0 || !self.can_hold_offset(header.last_offset()) {
            return Some(format!(
                "batch offsets {}..={} do not fit segment {}",
                header.base_offset,
                header.last_offset(),
                self.base_offset
            ));
        }
        None
    }

    fn apply_scanned(&mut self, batches: &[(u64, BatchHeader)], index_interval_bytes: u64) {
        for (position, header) in batches {
            self.on_appended(
                *position,
                header.size_bytes() as u64,
                std::slice::from_ref(header),
                index_interval_bytes,
            );
        }
    }

    /// Position of the first batch whose last offset is >= `offset`, scanning from the index
    /// position; None when no batch in the segment reaches `offset`. Also returns its header.
    pub fn find_batch(&self, offset: i64, size: u64) -> Result<Option<(u64, BatchHeader)>> {
        let start = u64::from(
            self.offset_index
                .lookup(self.relative(offset.max(self.base_offset))),
        );
        self.scan_headers(start, size, |h| h.last_offset() >= offset)
    }

    /// Reads headers from `position` until `pred` holds; returns that batch's position and
    /// header. Framing only (no CRC): the data was verified on append or at recovery.
    pub fn scan_headers(
        &self,
        mut position: u64,
        size: u64,
        mut pred: impl FnMut(&BatchHeader) -> bool,
    ) -> Result<Option<(u64, BatchHeader)>> {
        use crate::protocol::record_batch::{parse_header, BATCH_HEADER_LEN};
        let mut buf = [0u8; BATCH_HEADER_LEN];
        while position + BATCH_HEADER_LEN as u64 <= size {
            self.log.read_at(position, &mut buf)?;
            let header = parse_header(&buf)?;
            if header.size_bytes() < BATCH_HEADER_LEN {
                return Err(Error::CorruptMessage(format!(
                    "stored batch at position {position} of segment {} has length {}",
                    self.base_offset, header.batch_length
                )));
            }
            if pred(&header) {
                return Ok(Some((position, header)));
            }
            position += header.size_bytes() as u64;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::SimDisk;
    use crate::protocol::record_batch::tests::batch_with;
    use crate::protocol::record_batch::{assign_offsets, check_batch};
    use kafka_protocol::records::Compression;

    fn write_segment(disk: &SimDisk, dir: &Path, batches: usize) -> Vec<u8> {
        disk.create_dir_all(dir).expect("mkdir");
        let (log_path, _, _) = segment_paths(dir, 0);
        let mut all = Vec::new();
        let mut next = 0;
        for i in 0..batches {
            let mut b = batch_with(3, 1_000 + i as i64, Compression::None);
            next = assign_offsets(&mut b, next, 0);
            all.extend_from_slice(&b);
        }
        disk.write_file(&log_path, &all).expect("write");
        all
    }

    #[test]
    fn full_scan_rebuilds_state_and_index() {
        let disk = SimDisk::new();
        let dir = PathBuf::from("/logs/t-0");
        let bytes = write_segment(&disk, &dir, 50);
        let (seg, end) = Segment::load(&disk, &dir, 0, 1 << 20, 1024, false, 0).expect("load");
        assert!(end.torn.is_none());
        assert_eq!(end.valid_bytes, bytes.len() as u64);
        assert_eq!(seg.next_offset, 150);
        assert_eq!(seg.max_timestamp, 1_000 + 49 + 2);
        assert!(!seg.offset_index.is_empty());
        let (pos, h) = seg.find_batch(100, seg.size).expect("find").expect("some");
        assert!(h.base_offset <= 100 && h.last_offset() >= 100);
        check_batch(&bytes[pos as usize..]).expect("a batch starts there");
    }

    #[test]
    fn scan_stops_at_half_written_batch() {
        let disk = SimDisk::new();
        let dir = PathBuf::from("/logs/t-0");
        let bytes = write_segment(&disk, &dir, 4);
        let one = bytes.len() / 4;
        let (log_path, _, _) = segment_paths(&dir, 0);
        disk.write_file(&log_path, &bytes[..3 * one + one / 2])
            .expect("tear");
        let (seg, end) = Segment::load(&disk, &dir, 0, 1 << 20, 1024, false, 0).expect("load");
        assert_eq!(end.valid_bytes, 3 * one as u64);
        assert!(end.torn.is_some());
        assert_eq!(seg.next_offset, 9);
    }

    #[test]
    fn sane_index_files_are_trusted_and_insane_ones_rebuilt() {
        let disk = SimDisk::new();
        let dir = PathBuf::from("/logs/t-0");
        write_segment(&disk, &dir, 50);
        let (mut seg, _) = Segment::load(&disk, &dir, 0, 1 << 20, 1024, false, 0).expect("load");
        seg.write_indexes(&disk, &dir).expect("write indexes");
        let (again, end) = Segment::load(&disk, &dir, 0, 1 << 20, 1024, true, 0).expect("load");
        assert!(end.torn.is_none());
        assert_eq!(again.next_offset, 150);
        assert_eq!(again.offset_index, seg.offset_index);
        assert_eq!(again.max_timestamp, seg.max_timestamp);
        // An index entry pointing into the middle of a batch is detected and rebuilt.
        let (_, index_path, _) = segment_paths(&dir, 0);
        let mut bad = seg.offset_index.to_bytes();
        let n = bad.len();
        bad[n - 1] = bad[n - 1].wrapping_add(1);
        disk.write_file(&index_path, &bad).expect("corrupt index");
        let (rebuilt, end) = Segment::load(&disk, &dir, 0, 1 << 20, 1024, true, 0).expect("load");
        assert!(end.torn.is_none());
        assert_eq!(rebuilt.offset_index.last(), seg.offset_index.last());
        assert_eq!(rebuilt.next_offset, 150);
    }
}
