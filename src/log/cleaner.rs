//! The log cleaner (Kafka's LogCleaner, "log compaction"): a background pass that keeps, in
//! partitions with `cleanup.policy=compact`, only the latest record of each key, removes
//! tombstones `delete.retention.ms` after they were first cleaned (KIP-534), and remembers how
//! far each partition is clean in `cleaner-offset-checkpoint`. It reads non-active segments
//! through `PartitionLog::cleaner_view` and swaps cleaned copies in with `PartitionLog::replace_segment`.
//!
//! One pass (Kafka's Cleaner.doClean): pick the dirtiest compacted log, build an offset map
//! (key hash -> latest offset) over its dirty section `[first dirty, first uncleanable)`, as much
//! as fits in `log.cleaner.dedupe.buffer.size`, then rewrite every non-active segment that
//! starts below the mapped end, oldest first, one segment at a time:
//! - a record stays when its key's latest offset in the map is not later than its own, and
//!   when it is a tombstone whose batch's delete horizon has not passed; keyless records go;
//! - kept records keep their offsets: a rewritten batch has the same base offset, last offset
//!   delta, producer id, epoch and base sequence (Kafka's buildRetainedRecordsInto); only the
//!   records count, timestamps bounds, length and CRC change. Compressed batches are
//!   decompressed and recompressed with their own codec;
//! - a batch left empty goes, except the last batch of an idempotent producer (its sequence
//!   must survive, Kafka's RETAIN_EMPTY) and the last batch of a group: both stay as empty
//!   batch headers. Keeping the group's last batch keeps every segment ending where the next
//!   one starts, which recovery checks;
//! - segments are cleaned in groups (Kafka's groupSegmentsBySize): adjacent segments whose
//!   sizes add up to at most `segment.bytes` (and whose index entries and offset span fit one
//!   segment) become one cleaned segment, so repeated cleaning does not leave many tiny ones;
//! - a stored batch whose records would decompress past `sluice.decompressed.batch.max.bytes`
//!   is kept as it is (and its keys are not mapped), never decompressed past that bound;
//! - reads and writes are throttled to `log.cleaner.io.max.bytes.per.second` (Kafka's
//!   Throttler), and decompression, filtering and recompression of each chunk run off the
//!   request runtime's worker threads when the server asks for it
//!   ([`LogCleaner::set_offload_cpu`]).
//!
//! Crash safety: the copy is written to `<base>.log.cleaned` and fsynced. A group of one is
//! then renamed over `<base>.log` under the partition lock (one atomic rename: the log holds
//! either the old or the new segment, never a mix). A larger group is Kafka's replaceSegments:
//! under the partition lock the copy becomes `<base>.log.swap` and the directory is fsynced,
//! then the group's other segments are deleted and the swap renamed over `<base>.log`; a crash
//! after the swap is durable completes it at the next open ([`remove_leftovers`]: segments
//! inside the swap's offset range go, the swap becomes the segment). Groups are cleaned oldest
//! first, so a crash between two swaps never leaves a removed tombstone's older value behind.
//! Recovery deletes `.cleaned` leftovers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, BytesMut};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::log::disk::{Disk, DiskFile};
use crate::log::partition::{CleanerView, PartitionLog};
use crate::log::segment::{remove_index_files, segment_paths, Segment};
use crate::log::LogConfig;
use crate::metrics::Metrics;
use crate::protocol::compression::{decompress_within, Codec};
use crate::protocol::record_batch::{
    compute_crc, parse_header, BatchHeader, BatchIter, BATCH_HEADER_LEN, LOG_OVERHEAD,
};

/// Kafka's name of the per-log-dir file of cleaned offsets.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Suffix of a cleaned segment copy before its swap (Kafka's CleanedFileSuffix).
pub const CLEANED_FILE_SUFFIX: &str = ".cleaned";
/// Suffix of a merged cleaned segment whose swap is committed (Kafka's SwapFileSuffix).
pub const SWAP_FILE_SUFFIX: &str = ".swap";
/// How often the throttler compares the observed rate with the allowed one (Kafka's
/// LogCleaner builds its Throttler with a 300 ms check interval).
const THROTTLE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(300);
/// Bytes of offset index per entry (relative offset and position), for grouping.
const OFFSET_INDEX_ENTRY_BYTES: u64 = 8;
/// Bytes Kafka's SkimpyOffsetMap counts per entry: a 16-byte key hash and an 8-byte offset.
const OFFSET_MAP_ENTRY_BYTES: u64 = 24;
/// Bytes of segment read at a time.
const READ_CHUNK_BYTES: u64 = 1 << 20;
/// Bytes of cleaned batches buffered before an append to the `.cleaned` file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Batch attribute bit 6: baseTimestamp holds the delete horizon (KIP-534).
const DELETE_HORIZON_FLAG: i16 = 0x40;
const COMPRESSION_MASK: i16 = 0x07;
/// Field positions in a v2 batch header (see `protocol::record_batch`).
const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORDS_COUNT_AT: usize = 57;

/// The broker-wide cleaner settings (`log.cleaner.*`).
#[derive(Debug, Clone)]
pub struct CleanerConfig {
    /// `log.cleaner.dedupe.buffer.size`: memory for the offset maps of all cleaner threads.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.buffer.load.factor`: how full an offset map may get.
    pub io_buffer_load_factor: f64,
    /// `log.cleaner.threads`: the dedupe buffer is shared by this many (one pass runs at a
    /// time here, but the per-pass share follows Kafka's division).
    pub threads: u64,
    /// `log.cleaner.io.max.bytes.per.second`: the cleaner's read plus write rate;
    /// `f64::MAX` (Kafka's Double.MaxValue default) is unthrottled.
    pub io_max_bytes_per_second: f64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_size: 134_217_728,
            io_buffer_load_factor: 0.9,
            threads: 1,
            io_max_bytes_per_second: f64::MAX,
        }
    }
}

/// Kafka's Throttler: counts the cleaner's I/O bytes and, once per check interval, says how
/// long to pause so that the bytes of the interval divided by its length (pause included)
/// stay at most the allowed rate. Pure arithmetic over the instants it is given, so tests
/// drive it with their own clock.
#[derive(Debug)]
pub struct Throttler {
    check_interval: std::time::Duration,
    period_start: Option<tokio::time::Instant>,
    observed_bytes: f64,
}

impl Throttler {
    pub fn new(check_interval: std::time::Duration) -> Self {
        Throttler {
            check_interval,
            period_start: None,
            observed_bytes: 0.0,
        }
    }

    /// Counts `bytes` of I/O done by `now` against `rate_bytes_per_second`; returns the pause
    /// to take now (zero while the interval is not over or the rate is respected). A rate of
    /// zero or less, not finite, or `f64::MAX` is unthrottled.
    pub fn observe(
        &mut self,
        bytes: u64,
        rate_bytes_per_second: f64,
        now: tokio::time::Instant,
    ) -> std::time::Duration {
        let zero = std::time::Duration::ZERO;
        let start = *self.period_start.get_or_insert(now);
        self.observed_bytes += bytes as f64;
        let elapsed = now.saturating_duration_since(start);
        if elapsed < self.check_interval || self.observed_bytes <= 0.0 {
            return zero;
        }
        let throttled = rate_bytes_per_second.is_finite()
            && rate_bytes_per_second > 0.0
            && rate_bytes_per_second < f64::MAX;
        let mut pause = zero;
        if throttled && self.observed_bytes / elapsed.as_secs_f64() > rate_bytes_per_second {
            // The time these bytes should have taken at the allowed rate, less the time they
            // took (Kafka's sleepTime = observed / desiredRate - elapsed).
            let needed = self.observed_bytes / rate_bytes_per_second - elapsed.as_secs_f64();
            pause = std::time::Duration::try_from_secs_f64(needed).unwrap_or(zero);
        }
        self.period_start = Some(now + pause);
        self.observed_bytes = 0.0;
        pause
    }
}

impl CleanerConfig {
    /// Keys one pass may map: Kafka's slots (memory / 24 bytes) times the load factor.
    pub fn offset_map_entries_max(&self) -> usize {
        let memory = self.dedupe_buffer_size / self.threads.max(1);
        let slots = memory / OFFSET_MAP_ENTRY_BYTES;
        usize::try_from((slots as f64 * self.io_buffer_load_factor) as u64).unwrap_or(usize::MAX)
    }
}

/// Key hash -> latest offset of the dirty section, bounded (Kafka's SkimpyOffsetMap).
#[derive(Debug)]
pub struct OffsetMap {
    entries: HashMap<[u8; 16], i64>,
    entries_max: usize,
    /// Largest offset put, -1 when empty.
    latest_offset: i64,
}

fn key_hash(key: &[u8]) -> [u8; 16] {
    // 128 bits from two SipHash runs (Kafka uses MD5): collisions, which would drop a live
    // key, are as unlikely as Kafka's. Only looked up, never iterated.
    let mut out = [0u8; 16];
    for (i, salt) in [0x5u8, 0xa].into_iter().enumerate() {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        key.hash(&mut h);
        out[i * 8..i * 8 + 8].copy_from_slice(&h.finish().to_be_bytes());
    }
    out
}

impl OffsetMap {
    pub fn new(entries_max: usize) -> Self {
        OffsetMap {
            entries: HashMap::new(),
            entries_max,
            latest_offset: -1,
        }
    }

    /// Records `offset` as the latest of `key`; false (nothing changed) when a new key
    /// does not fit.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = key_hash(key);
        if self.entries.len() >= self.entries_max && !self.entries.contains_key(&hash) {
            return false;
        }
        self.entries.insert(hash, offset);
        self.latest_offset = self.latest_offset.max(offset);
        true
    }

    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.entries.get(&key_hash(key)).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
    /// Cleaned segments swapped in (each replaces a group of one or more segments).
    pub segments_swapped: u64,
    /// Segments those swaps replaced.
    pub segments_replaced: u64,
    /// Batches kept as they are because they decompress past the bound.
    pub oversized_batches: u64,
    /// The partition is clean below this offset now.
    pub end_offset: i64,
}

/// Where a compacted log stands, for choosing which to clean (Kafka's LogToClean).
#[derive(Debug)]
struct LogToClean {
    partition: Arc<PartitionLog>,
    view: CleanerView,
    first_dirty_offset: i64,
    first_uncleanable_offset: i64,
    cleanable_ratio: f64,
    cleanable_bytes: u64,
    need_compaction_now: bool,
}

type PartitionKey = (String, i32);

/// The cleaner's state: cleaned offsets per log dir and partition, tombstone horizons, and
/// partitions given up on after an error (Kafka's LogCleanerManager).
#[derive(Debug)]
pub struct LogCleaner {
    disk: Arc<dyn Disk>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    state: Mutex<CleanerState>,
    /// Shared by every pass, as Kafka's one Throttler is shared by its cleaner threads.
    throttler: Mutex<Throttler>,
    /// Run each chunk's decompression, filtering and recompression on tokio's blocking pool
    /// (set by the server; tests and a simulation keep it inline on the calling task).
    offload_cpu: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct CleanerState {
    /// Log dir -> partition -> first dirty offset, as in each dir's checkpoint file.
    checkpoints: BTreeMap<PathBuf, BTreeMap<PartitionKey, i64>>,
    /// Latest delete horizon of kept tombstones, per partition: when it passes, the log is
    /// cleaned even if not dirty enough (KIP-534; Kafka's UnifiedLog.latestDeleteHorizon).
    /// Kafka keeps it in memory only; here it is rebuilt after a restart from the batch
    /// headers of each compacted log the first time the cleaner looks at it.
    delete_horizons: BTreeMap<PartitionKey, i64>,
    /// Partitions whose horizons were rebuilt from their headers since the cleaner started.
    horizons_loaded: BTreeSet<PartitionKey>,
    /// Partitions whose clean failed; skipped until restart (Kafka's uncleanable partitions).
    uncleanable: BTreeSet<PartitionKey>,
}

fn lock(m: &Mutex<CleanerState>) -> MutexGuard<'_, CleanerState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_throttler(m: &Mutex<Throttler>) -> MutexGuard<'_, Throttler> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// At partition open: deletes `.cleaned` copies a crash left (their segments are intact) and
/// completes the swaps a crash interrupted (Kafka's LogLoader does both).
pub fn remove_leftovers(disk: &dyn Disk, dir: &Path) -> Result<()> {
    let mut swapped = false;
    for entry in disk.list_dir(dir)? {
        if entry.is_dir {
            continue;
        }
        if entry.name.ends_with(CLEANED_FILE_SUFFIX) {
            tracing::info!(dir = %dir.display(), file = entry.name, "removing unfinished log cleaner copy");
            disk.remove_file(&dir.join(&entry.name))?;
        } else if let Some(stem) = entry.name.strip_suffix(&format!(".log{SWAP_FILE_SUFFIX}")) {
            complete_swap(disk, dir, stem, &entry.name)?;
            swapped = true;
        }
    }
    if swapped {
        disk.sync_dir_blocking(dir)?;
    }
    Ok(())
}

/// Finishes replacing a group of segments by the merged copy `<stem>.log.swap`: the swap was
/// made durable before any segment of the group was touched, so every `.log` whose base is
/// inside the copy's offset range is a superseded group member.
fn complete_swap(disk: &dyn Disk, dir: &Path, stem: &str, name: &str) -> Result<()> {
    let swap_path = dir.join(name);
    let Ok(base) = stem.parse::<i64>() else {
        tracing::warn!(dir = %dir.display(), file = name, "ignoring a swap file not named by an offset");
        return Ok(());
    };
    let file = disk.open(&swap_path, false)?;
    let (segment, end) = Segment::scan_file(file, base, 1, u64::MAX, 0)?;
    if end.torn.is_some() || segment.next_offset <= base {
        // It was fsynced before it was named .swap; a bad one is not ours to apply.
        tracing::warn!(dir = %dir.display(), file = name, torn = ?end.torn, "removing unreadable swap file");
        disk.remove_file(&swap_path)?;
        return Ok(());
    }
    for entry in disk.list_dir(dir)? {
        let Some(other) = entry.name.strip_suffix(".log") else {
            continue;
        };
        let Ok(other_base) = other.parse::<i64>() else {
            continue;
        };
        if !entry.is_dir && other_base >= base && other_base < segment.next_offset {
            disk.remove_file(&dir.join(&entry.name))?;
            remove_index_files(disk, dir, other_base)?;
        }
    }
    remove_index_files(disk, dir, base)?;
    let (log_path, _, _) = segment_paths(dir, base);
    disk.rename(&swap_path, &log_path)?;
    tracing::info!(dir = %dir.display(), file = name, next_offset = segment.next_offset,
        "completed a log cleaner swap interrupted by a restart");
    Ok(())
}

fn partition_key(p: &PartitionLog) -> PartitionKey {
    (p.topic().to_string(), p.partition())
}

fn log_dir_of(p: &PartitionLog) -> PathBuf {
    p.dir().parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Kafka's offset checkpoint text: version 0, the entry count, then `topic partition offset`.
fn parse_checkpoint(text: &str) -> Option<BTreeMap<PartitionKey, i64>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = BTreeMap::new();
    for line in lines.take(count) {
        let mut parts = line.split_whitespace();
        let topic = parts.next()?.to_string();
        let partition: i32 = parts.next()?.parse().ok()?;
        let offset: i64 = parts.next()?.parse().ok()?;
        out.insert((topic, partition), offset);
    }
    (out.len() == count).then_some(out)
}

fn format_checkpoint(entries: &BTreeMap<PartitionKey, i64>) -> String {
    let mut s = format!("0\n{}\n", entries.len());
    for ((topic, partition), offset) in entries {
        s.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    s
}

impl LogCleaner {
    /// Loads each log dir's `cleaner-offset-checkpoint`; an unreadable one is ignored with a
    /// WARN (the logs are then cleaned from their start again).
    pub fn open(
        disk: Arc<dyn Disk>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        log_dirs: &[PathBuf],
    ) -> Self {
        let mut checkpoints = BTreeMap::new();
        for dir in log_dirs {
            let path = dir.join(CLEANER_OFFSET_CHECKPOINT);
            let mut entries = BTreeMap::new();
            if disk.exists(&path) {
                match disk
                    .read_file(&path)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok().and_then(|t| parse_checkpoint(&t)))
                {
                    Some(e) => entries = e,
                    None => {
                        tracing::warn!(path = %path.display(), "ignoring unreadable cleaner offset checkpoint")
                    }
                }
            }
            checkpoints.insert(dir.clone(), entries);
        }
        LogCleaner {
            disk,
            clock,
            metrics,
            state: Mutex::new(CleanerState {
                checkpoints,
                ..CleanerState::default()
            }),
            throttler: Mutex::new(Throttler::new(THROTTLE_CHECK_INTERVAL)),
            offload_cpu: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Runs the CPU-heavy part of cleaning (decompress, filter, recompress each chunk) on
    /// tokio's blocking pool from now on, so a pass never holds a runtime worker that produce
    /// and fetch need for longer than a read (Kafka runs the cleaner on its own threads).
    pub fn set_offload_cpu(&self, offload: bool) {
        self.offload_cpu
            .store(offload, std::sync::atomic::Ordering::Relaxed);
    }

    /// `f` on the blocking pool when offloading, else right here.
    async fn run_cpu<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        if !self.offload_cpu.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(f());
        }
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::Storage(std::io::Error::other(e)))
    }

    /// Counts `bytes` of cleaner I/O and pauses when the pass runs faster than
    /// `log.cleaner.io.max.bytes.per.second`.
    async fn throttle(&self, bytes: u64, config: &CleanerConfig) {
        let pause = lock_throttler(&self.throttler).observe(
            bytes,
            config.io_max_bytes_per_second,
            self.clock.now(),
        );
        if !pause.is_zero() {
            tracing::trace!(?pause, "log cleaner throttled");
            tokio::time::sleep(pause).await;
        }
    }

    /// The latest delete horizon among the batch headers of a compacted log's non-active
    /// segments (KIP-534 bit 6 with records left), read once per partition after start, so a
    /// restart does not forget tombstones waiting to go. Reads headers only (61 bytes a
    /// batch), off the request workers when offloading.
    async fn load_horizons(&self, p: &PartitionLog) {
        let key = partition_key(p);
        if !p.config().cleanup_compact || lock(&self.state).horizons_loaded.contains(&key) {
            return;
        }
        let view = p.cleaner_view();
        if !view.config.cleanup_compact || !view.online {
            return;
        }
        let segments = view.segments;
        let scanned = self
            .run_cpu(move || -> Result<Option<i64>> {
                let mut latest: Option<i64> = None;
                for seg in &segments {
                    seg.scan_headers(0, seg.size, |h| {
                        if h.attributes & DELETE_HORIZON_FLAG != 0 && h.records_count > 0 {
                            latest =
                                Some(latest.map_or(h.base_timestamp, |l| l.max(h.base_timestamp)));
                        }
                        false
                    })?;
                }
                Ok(latest)
            })
            .await
            .and_then(|r| r);
        let mut st = lock(&self.state);
        // Marked loaded even on an error: one WARN, not one a pass; the next clean of the
        // partition sets its horizons anyway.
        st.horizons_loaded.insert(key.clone());
        match scanned {
            Ok(Some(h)) => {
                let entry = st.delete_horizons.entry(key).or_insert(h);
                *entry = (*entry).max(h);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(topic = key.0, partition = key.1, error = %e, "could not read delete horizons");
            }
        }
    }

    /// The checkpointed first dirty offset of a partition (tests, tools).
    pub fn checkpointed_offset(&self, p: &PartitionLog) -> Option<i64> {
        lock(&self.state)
            .checkpoints
            .get(&log_dir_of(p))
            .and_then(|m| m.get(&partition_key(p)).copied())
    }

    /// Kafka's grabFilthiestCompactedLog: among compacted, cleanable partitions, the one with
    /// the highest dirty ratio above its `min.cleanable.dirty.ratio` (or any with a record
    /// past `max.compaction.lag.ms`); failing that, one whose tombstones' delete horizon has
    /// passed. Then cleans it. Returns the partition and what was done, None when nothing
    /// needed cleaning.
    pub async fn clean_filthiest(
        &self,
        partitions: &[Arc<PartitionLog>],
        config: &CleanerConfig,
        now_ms: i64,
    ) -> Result<Option<(Arc<PartitionLog>, CleanStats)>> {
        let mut best: Option<LogToClean> = None;
        let mut horizon_due: Option<LogToClean> = None;
        for p in partitions {
            self.load_horizons(p).await;
            let Some(ltc) = self.log_to_clean(p, now_ms) else {
                continue;
            };
            let min_ratio = ltc.view.config.min_cleanable_dirty_ratio;
            let dirty_enough = ltc.cleanable_bytes > 0
                && (ltc.need_compaction_now || ltc.cleanable_ratio > min_ratio);
            if dirty_enough {
                if best
                    .as_ref()
                    .is_none_or(|b| ltc.cleanable_ratio > b.cleanable_ratio)
                {
                    best = Some(ltc);
                }
            } else if horizon_due.is_none() {
                let due = lock(&self.state)
                    .delete_horizons
                    .get(&partition_key(p))
                    .is_some_and(|&h| h <= now_ms);
                if due {
                    horizon_due = Some(ltc);
                }
            }
        }
        let Some(ltc) = best.or(horizon_due) else {
            return Ok(None);
        };
        let partition = Arc::clone(&ltc.partition);
        match self.clean(ltc, config, now_ms).await {
            Ok(stats) => Ok(Some((partition, stats))),
            Err(e) => {
                lock(&self.state)
                    .uncleanable
                    .insert(partition_key(&partition));
                Err(e)
            }
        }
    }

    fn log_to_clean(&self, p: &Arc<PartitionLog>, now_ms: i64) -> Option<LogToClean> {
        let key = partition_key(p);
        if lock(&self.state).uncleanable.contains(&key) {
            return None;
        }
        let view = p.cleaner_view();
        if !view.config.cleanup_compact || !view.online || view.segments.is_empty() {
            return None;
        }
        let log_end = view.active_base_offset;
        let checkpoint = self.checkpointed_offset(p).unwrap_or(view.log_start_offset);
        // Kafka resets a checkpoint outside the log (truncated or recreated) to the log start.
        let first_dirty_offset = if checkpoint < view.log_start_offset || checkpoint > log_end {
            view.log_start_offset
        } else {
            checkpoint
        };
        // Records newer than min.compaction.lag.ms stay dirty (KIP-354): the log is cleanable
        // up to the first segment holding one, and never into the active segment.
        let lag = view.config.min_compaction_lag_ms;
        let first_uncleanable_offset = view
            .segments
            .iter()
            .filter(|s| s.next_offset > first_dirty_offset)
            .find(|s| lag > 0 && s.max_timestamp > now_ms.saturating_sub(lag))
            .map_or(view.active_base_offset, |s| s.base_offset)
            .max(first_dirty_offset);
        let mut clean_bytes = 0;
        let mut cleanable_bytes = 0;
        let mut earliest_dirty_ts = i64::MAX;
        for s in &view.segments {
            if s.next_offset <= first_dirty_offset {
                clean_bytes += s.size;
            } else if s.base_offset < first_uncleanable_offset {
                cleanable_bytes += s.size;
            }
            if s.next_offset > first_dirty_offset {
                if let Some(ts) = s.first_batch_timestamp.filter(|&t| t >= 0) {
                    earliest_dirty_ts = earliest_dirty_ts.min(ts);
                }
            }
        }
        let total = clean_bytes + cleanable_bytes;
        let cleanable_ratio = if total == 0 {
            0.0
        } else {
            cleanable_bytes as f64 / total as f64
        };
        let max_lag = view.config.max_compaction_lag_ms;
        let need_compaction_now =
            earliest_dirty_ts != i64::MAX && now_ms.saturating_sub(earliest_dirty_ts) > max_lag;
        Some(LogToClean {
            partition: Arc::clone(p),
            view,
            first_dirty_offset,
            first_uncleanable_offset,
            cleanable_ratio,
            cleanable_bytes,
            need_compaction_now,
        })
    }

    /// Cleans one log: offset map over the dirty section, then the segments below the mapped
    /// end rewritten and swapped group by group, then the checkpoint moved to that end.
    async fn clean(
        &self,
        ltc: LogToClean,
        config: &CleanerConfig,
        now_ms: i64,
    ) -> Result<CleanStats> {
        let p = &ltc.partition;
        let view = &ltc.view;
        let mut stats = CleanStats::default();
        let map = OffsetMap::new(config.offset_map_entries_max());
        let (map, end_offset) = self
            .build_offset_map(
                view,
                ltc.first_dirty_offset,
                ltc.first_uncleanable_offset,
                map,
                config,
                &mut stats,
            )
            .await?;
        if end_offset <= ltc.first_dirty_offset && ltc.first_uncleanable_offset > end_offset {
            // Not one key fits: cleaning would never advance (Kafka refuses such a buffer).
            return Err(Error::InvalidConfig(format!(
                "log.cleaner.dedupe.buffer.size leaves room for {} keys: nothing can be cleaned",
                config.offset_map_entries_max()
            )));
        }
        let keys = map.len();
        let ctx = PassContext {
            map: Arc::new(map),
            producer_last_offsets: Arc::new(view.producer_last_offsets.clone()),
            now_ms,
            delete_retention_ms: view.config.delete_retention_ms,
            decompressed_max: view.config.decompressed_batch_max_bytes,
        };
        let below: Vec<&Segment> = view
            .segments
            .iter()
            .filter(|s| s.base_offset < end_offset)
            .collect();
        let mut latest_horizon: Option<i64> = None;
        for group in group_segments_by_size(&below, &view.config) {
            let outcome = self
                .clean_group(p, &group, &ctx, &view.config, config, &mut stats)
                .await?;
            if let Some(h) = outcome {
                latest_horizon = Some(latest_horizon.map_or(h, |l: i64| l.max(h)));
            }
        }
        stats.end_offset = end_offset;
        self.finish(p, end_offset, latest_horizon).await?;
        self.count(&stats);
        if stats.oversized_batches > 0 {
            tracing::warn!(
                topic = p.topic(),
                partition = p.partition(),
                batches = stats.oversized_batches,
                "log cleaner kept batches that decompress past sluice.decompressed.batch.max.bytes as they are"
            );
        }
        tracing::info!(
            topic = p.topic(),
            partition = p.partition(),
            first_dirty_offset = ltc.first_dirty_offset,
            end_offset,
            keys,
            bytes_read = stats.bytes_read,
            bytes_written = stats.bytes_written,
            records_removed = stats.records_removed,
            segments_swapped = stats.segments_swapped,
            segments_replaced = stats.segments_replaced,
            "cleaned log"
        );
        Ok(stats)
    }

    fn count(&self, stats: &CleanStats) {
        let m = &self.metrics;
        m.log_cleaner_passes_total.inc();
        m.log_cleaner_read_bytes_total.inc_by(stats.bytes_read);
        m.log_cleaner_written_bytes_total
            .inc_by(stats.bytes_written);
        m.log_cleaner_removed_records_total
            .inc_by(stats.records_removed);
        m.log_cleaner_oversized_batches_total
            .inc_by(stats.oversized_batches);
    }

    /// Kafka's buildOffsetMap: puts every keyed record of the dirty section `[first_dirty,
    /// first_uncleanable)` into `map` until it is full. Returns the map and the end of what
    /// was mapped: the first uncleanable offset, or the offset after the last record that fit.
    async fn build_offset_map(
        &self,
        view: &CleanerView,
        first_dirty: i64,
        first_uncleanable: i64,
        mut map: OffsetMap,
        config: &CleanerConfig,
        stats: &mut CleanStats,
    ) -> Result<(OffsetMap, i64)> {
        let max = view.config.decompressed_batch_max_bytes;
        let dirty = view
            .segments
            .iter()
            .filter(|s| s.next_offset > first_dirty && s.base_offset < first_uncleanable);
        for seg in dirty {
            let mut reader = SegmentReader::new(seg);
            while let Some(chunk) = reader.next_chunk()? {
                stats.bytes_read += chunk.len() as u64;
                self.throttle(chunk.len() as u64, config).await;
                let (back, full) = self
                    .run_cpu(move || {
                        let full = map_chunk(&chunk, &mut map, first_dirty, first_uncleanable, max);
                        (map, full)
                    })
                    .await?;
                map = back;
                if full? {
                    tracing::debug!(keys = map.len(), "offset map full");
                    let end = map.latest_offset + 1;
                    return Ok((map, end));
                }
                tokio::task::yield_now().await;
            }
        }
        Ok((map, first_uncleanable))
    }

    /// Rewrites a group of adjacent segments into `<first base>.log.cleaned` and swaps it in
    /// for them when anything changed (a group of several always changes: it merges).
    /// Returns the latest future delete horizon of the tombstones it keeps.
    async fn clean_group(
        &self,
        p: &PartitionLog,
        group: &[&Segment],
        ctx: &PassContext,
        log_config: &LogConfig,
        config: &CleanerConfig,
        stats: &mut CleanStats,
    ) -> Result<Option<i64>> {
        let (first, last) = match group {
            [first, .., last] => (*first, *last),
            [only] => (*only, *only),
            [] => return Ok(None),
        };
        let dir = p.dir();
        let (log_path, _, _) = segment_paths(dir, first.base_offset);
        let cleaned_path = PathBuf::from(format!("{}{CLEANED_FILE_SUFFIX}", log_path.display()));
        let mut out: Option<Arc<dyn DiskFile>> = None;
        let mut pending = Vec::new();
        let mut written = 0u64;
        let mut changed = group.len() > 1;
        let mut horizon: Option<i64> = None;
        for seg in group {
            let mut reader = SegmentReader::new(seg);
            while let Some(chunk) = reader.next_chunk()? {
                stats.bytes_read += chunk.len() as u64;
                self.throttle(chunk.len() as u64, config).await;
                let ctx = ctx.clone();
                let group_next_offset = last.next_offset;
                let outcome = self
                    .run_cpu(move || clean_chunk(&chunk, &ctx, group_next_offset))
                    .await??;
                stats.records_removed += outcome.removed;
                stats.oversized_batches += outcome.oversized;
                changed |= outcome.changed;
                if let Some(h) = outcome.horizon {
                    horizon = Some(horizon.map_or(h, |x: i64| x.max(h)));
                }
                pending.extend_from_slice(&outcome.bytes);
                if pending.len() >= WRITE_BUFFER_BYTES {
                    let file = self.cleaned_file(&mut out, &cleaned_path)?;
                    file.append(&pending)?;
                    written += pending.len() as u64;
                    self.throttle(pending.len() as u64, config).await;
                    pending.clear();
                }
                // The cleaner shares the runtime with requests: let them in between chunks.
                tokio::task::yield_now().await;
            }
        }
        if !changed {
            if out.is_some() {
                self.disk.remove_file(&cleaned_path)?;
            }
            return Ok(horizon);
        }
        let file = self.cleaned_file(&mut out, &cleaned_path)?;
        file.append(&pending)?;
        written += pending.len() as u64;
        self.throttle(pending.len() as u64, config).await;
        // Durable before the rename: a crash must never swap in a copy that is not all there.
        file.sync().await?;
        let (segment, end) = Segment::scan_file(
            Arc::clone(&file),
            first.base_offset,
            log_config.segment_index_bytes,
            log_config.index_interval_bytes,
            first.created_ms,
        )?;
        if end.torn.is_some()
            || end.valid_bytes != written
            || segment.next_offset != last.next_offset
        {
            self.disk.remove_file(&cleaned_path)?;
            return Err(Error::CorruptMessage(format!(
                "cleaned copy of segments {}..{} does not scan back ({:?})",
                first.base_offset, last.next_offset, end.torn
            )));
        }
        let olds: Vec<(i64, Arc<dyn DiskFile>)> = group
            .iter()
            .map(|s| (s.base_offset, Arc::clone(&s.log)))
            .collect();
        if !p.replace_segments(&olds, &cleaned_path, segment)? {
            self.disk.remove_file(&cleaned_path)?;
            return Ok(None);
        }
        self.disk.sync_dir(dir).await?;
        stats.bytes_written += written;
        stats.segments_swapped += 1;
        stats.segments_replaced += group.len() as u64;
        Ok(horizon)
    }

    fn cleaned_file(
        &self,
        out: &mut Option<Arc<dyn DiskFile>>,
        path: &Path,
    ) -> Result<Arc<dyn DiskFile>> {
        if let Some(f) = out {
            return Ok(Arc::clone(f));
        }
        let f = self.disk.open(path, true)?;
        f.truncate(0)?;
        *out = Some(Arc::clone(&f));
        Ok(f)
    }

    /// Moves the partition's checkpoint to `end_offset` and writes its log dir's checkpoint
    /// file (temp file, fsync, rename, directory fsync, as Kafka's CheckpointFile).
    async fn finish(&self, p: &PartitionLog, end_offset: i64, horizon: Option<i64>) -> Result<()> {
        let dir = log_dir_of(p);
        let key = partition_key(p);
        let text = {
            let mut st = lock(&self.state);
            match horizon {
                Some(h) => st.delete_horizons.insert(key.clone(), h),
                None => st.delete_horizons.remove(&key),
            };
            let entries = st.checkpoints.entry(dir.clone()).or_default();
            entries.insert(key, end_offset);
            format_checkpoint(entries)
        };
        let tmp = dir.join(format!("{CLEANER_OFFSET_CHECKPOINT}.tmp"));
        self.disk.write_file(&tmp, text.as_bytes())?;
        self.disk.open(&tmp, false)?.sync().await?;
        self.disk
            .rename(&tmp, &dir.join(CLEANER_OFFSET_CHECKPOINT))?;
        self.disk.sync_dir(&dir).await?;
        Ok(())
    }

    /// Forgets partitions that no longer exist (deleted topics), so their checkpoints go.
    pub fn retain_partitions(&self, partitions: &[Arc<PartitionLog>]) {
        let live: BTreeSet<(PathBuf, PartitionKey)> = partitions
            .iter()
            .map(|p| (log_dir_of(p), partition_key(p)))
            .collect();
        let mut st = lock(&self.state);
        for (dir, entries) in st.checkpoints.iter_mut() {
            entries.retain(|k, _| live.contains(&(dir.clone(), k.clone())));
        }
        st.delete_horizons
            .retain(|k, _| live.iter().any(|(_, lk)| lk == k));
        st.horizons_loaded
            .retain(|k| live.iter().any(|(_, lk)| lk == k));
    }
}

/// Reads a segment's batches a chunk of whole batches at a time, up to its size at the view.
struct SegmentReader<'a> {
    seg: &'a Segment,
    position: u64,
}

impl<'a> SegmentReader<'a> {
    fn new(seg: &'a Segment) -> Self {
        SegmentReader { seg, position: 0 }
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        let size = self.seg.size;
        if self.position + BATCH_HEADER_LEN as u64 > size {
            return Ok(None);
        }
        let want = (size - self.position).min(READ_CHUNK_BYTES);
        let mut buf = vec![0u8; usize::try_from(want).map_err(std::io::Error::other)?];
        self.seg.log.read_at(self.position, &mut buf)?;
        let mut iter = BatchIter::new(&buf, false);
        let whole = iter.by_ref().count();
        let mut consumed = iter.position();
        if whole == 0 {
            // One batch larger than a chunk: read exactly it.
            let header = parse_header(&buf)?;
            let len = header.size_bytes() as u64;
            if len < BATCH_HEADER_LEN as u64 || self.position + len > size {
                return Err(Error::CorruptMessage(format!(
                    "segment {} has a bad batch at position {}",
                    self.seg.base_offset, self.position
                )));
            }
            buf = vec![0u8; len as usize];
            self.seg.log.read_at(self.position, &mut buf)?;
            consumed = buf.len();
        }
        buf.truncate(consumed);
        self.position += consumed as u64;
        Ok(Some(buf))
    }
}

/// Settings and state of one pass that the per-chunk work needs (moved to a blocking thread).
#[derive(Debug, Clone)]
struct PassContext {
    map: Arc<OffsetMap>,
    producer_last_offsets: Arc<BTreeMap<i64, i64>>,
    now_ms: i64,
    delete_retention_ms: i64,
    decompressed_max: usize,
}

/// Kafka's groupSegmentsBySize: splits `segments` (adjacent, oldest first) into runs whose
/// sizes add up to at most `segment.bytes`, whose estimated offset index entries fit
/// `segment.index.bytes`, and whose offsets stay within a relative (32-bit) offset of the
/// run's base, so that each run can become one cleaned segment.
fn group_segments_by_size<'a>(
    segments: &[&'a Segment],
    config: &LogConfig,
) -> Vec<Vec<&'a Segment>> {
    let index_entries = |s: &Segment| s.size / config.index_interval_bytes.max(1) + 1;
    let index_entries_max = config.segment_index_bytes / OFFSET_INDEX_ENTRY_BYTES;
    let mut groups: Vec<Vec<&Segment>> = Vec::new();
    let mut current: Vec<&Segment> = Vec::new();
    let (mut size, mut entries) = (0u64, 0u64);
    for &seg in segments {
        let fits = current.first().is_some_and(|head| {
            size + seg.size <= config.segment_bytes
                && entries + index_entries(seg) <= index_entries_max
                && seg.next_offset - 1 - head.base_offset <= i64::from(i32::MAX)
        });
        if !fits && !current.is_empty() {
            groups.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            (size, entries) = (0, 0);
        }
        size += seg.size;
        entries += index_entries(seg);
        current.push(seg);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Puts the keyed records of one chunk's dirty batches into `map`; true when the map filled
/// up (what fit stays in). Batches that decompress past `max` are not mapped: their records
/// are then kept wherever they are, which only makes cleaning less thorough.
fn map_chunk(
    chunk: &[u8],
    map: &mut OffsetMap,
    first_dirty: i64,
    first_uncleanable: i64,
    max: usize,
) -> Result<bool> {
    for (_, header, batch) in BatchIter::new(chunk, false) {
        if header.is_control()
            || header.last_offset() < first_dirty
            || header.base_offset >= first_uncleanable
        {
            continue;
        }
        let Some(records) = decompress_records(batch, &header, max)? else {
            continue;
        };
        for r in parse_records(&records, &header)? {
            let offset = header.base_offset + i64::from(r.offset_delta);
            if offset < first_dirty || offset >= first_uncleanable {
                continue;
            }
            let Some(key) = r.key(&records) else {
                continue;
            };
            if !map.put(key, offset) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// What cleaning one chunk of whole batches gives.
#[derive(Debug, Default)]
struct ChunkOutcome {
    bytes: Vec<u8>,
    changed: bool,
    removed: u64,
    oversized: u64,
    /// Latest future delete horizon of the kept tombstones.
    horizon: Option<i64>,
}

/// Cleans the batches of one chunk of a group whose segments end at `group_next_offset`.
fn clean_chunk(chunk: &[u8], ctx: &PassContext, group_next_offset: i64) -> Result<ChunkOutcome> {
    let mut o = ChunkOutcome::default();
    for (_, header, batch) in BatchIter::new(chunk, false) {
        let retain_empty = header.last_offset() + 1 >= group_next_offset
            || (header.has_producer_id()
                && ctx.producer_last_offsets.get(&header.producer_id)
                    == Some(&header.last_offset()));
        let decision = clean_batch(batch, &header, ctx, retain_empty)?;
        o.removed += decision.removed;
        o.oversized += u64::from(decision.oversized);
        if let Some(h) = decision.horizon.filter(|&h| h > ctx.now_ms) {
            o.horizon = Some(o.horizon.map_or(h, |x| x.max(h)));
        }
        match &decision.rewrite {
            Rewrite::Keep => o.bytes.extend_from_slice(batch),
            Rewrite::Drop => o.changed = true,
            Rewrite::Replace(b) => {
                o.changed = true;
                o.bytes.extend_from_slice(b);
            }
        }
    }
    Ok(o)
}

/// What to do with one batch.
#[derive(Debug)]
enum Rewrite {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

#[derive(Debug)]
struct BatchDecision {
    rewrite: Rewrite,
    removed: u64,
    /// The batch's delete horizon after cleaning, when it keeps tombstones.
    horizon: Option<i64>,
    /// Kept as it is: its records decompress past the bound.
    oversized: bool,
}

/// One record inside a batch's (decompressed) records section, as byte ranges.
#[derive(Debug, Clone)]
struct RawRecord {
    /// The whole record, length prefix included.
    start: usize,
    end: usize,
    /// Where the bytes after the timestamp delta (offset delta .. headers) start.
    after_timestamp: usize,
    attributes: u8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<(usize, usize)>,
    has_value: bool,
}

impl RawRecord {
    fn key<'a>(&self, records: &'a [u8]) -> Option<&'a [u8]> {
        self.key.map(|(s, e)| &records[s..e])
    }
}

/// The decision of Kafka's Cleaner.shouldRetainRecord and MemoryRecords.filterTo for a batch.
fn clean_batch(
    batch: &[u8],
    header: &BatchHeader,
    ctx: &PassContext,
    retain_empty: bool,
) -> Result<BatchDecision> {
    let (map, now_ms) = (ctx.map.as_ref(), ctx.now_ms);
    // No transactions exist on this broker; markers are kept as they are.
    let existing_horizon =
        (header.attributes & DELETE_HORIZON_FLAG != 0).then_some(header.base_timestamp);
    if header.is_control() {
        return Ok(BatchDecision {
            rewrite: Rewrite::Keep,
            removed: 0,
            horizon: None,
            oversized: false,
        });
    }
    let Some(records) = decompress_records(batch, header, ctx.decompressed_max)? else {
        return Ok(BatchDecision {
            rewrite: Rewrite::Keep,
            removed: 0,
            horizon: None,
            oversized: true,
        });
    };
    let parsed = parse_records(&records, header)?;
    let drop_tombstones = existing_horizon.is_some_and(|h| now_ms >= h);
    let retained: Vec<&RawRecord> = parsed
        .iter()
        .filter(|r| {
            let offset = header.base_offset + i64::from(r.offset_delta);
            match r.key(&records) {
                // Kafka discards keyless records in compacted logs.
                None => false,
                Some(key) => {
                    offset >= map.get(key).unwrap_or(-1) && (r.has_value || !drop_tombstones)
                }
            }
        })
        .collect();
    let removed = (parsed.len() - retained.len()) as u64;
    let has_tombstones = retained.iter().any(|r| !r.has_value);
    let set_horizon = has_tombstones && existing_horizon.is_none();
    let horizon = if set_horizon {
        Some(now_ms.saturating_add(ctx.delete_retention_ms))
    } else {
        existing_horizon.filter(|_| has_tombstones)
    };
    // An empty batch header kept by an earlier clean goes too once it no longer ends a
    // segment or carries a producer's last sequence (Kafka's DELETE_EMPTY retention).
    let rewrite = if retained.is_empty() && !retain_empty {
        Rewrite::Drop
    } else if removed == 0 && !set_horizon {
        Rewrite::Keep
    } else if retained.is_empty() {
        Rewrite::Replace(empty_batch(batch, header))
    } else {
        Rewrite::Replace(rebuild_batch(batch, header, &records, &retained, horizon)?)
    };
    Ok(BatchDecision {
        rewrite,
        removed,
        horizon,
        oversized: false,
    })
}

/// The header of `batch` with no records (Kafka's writeEmptyHeader): same offsets, producer
/// id, epoch and sequence; no compression and no first timestamp.
fn empty_batch(batch: &[u8], header: &BatchHeader) -> Vec<u8> {
    let mut out = batch[..BATCH_HEADER_LEN].to_vec();
    let attributes = header.attributes & !(COMPRESSION_MASK | DELETE_HORIZON_FLAG);
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    out[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&(-1i64).to_be_bytes());
    finish_header(&mut out, 0);
    out
}

/// Sets records count, batch length and CRC of a batch whose other fields are final.
fn finish_header(out: &mut [u8], records_count: i32) {
    out[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&records_count.to_be_bytes());
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let crc = compute_crc(out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// `batch` with only `retained` records, recompressed with its codec. Record bytes are kept
/// as they are unless a new delete horizon becomes the base timestamp, which rebases every
/// record's timestamp delta (KIP-534).
fn rebuild_batch(
    batch: &[u8],
    header: &BatchHeader,
    records: &[u8],
    retained: &[&RawRecord],
    horizon: Option<i64>,
) -> Result<Vec<u8>> {
    let base_timestamp = horizon.unwrap_or(header.base_timestamp);
    let mut body = Vec::with_capacity(records.len());
    let mut max_timestamp = i64::MIN;
    for r in retained {
        let ts = header.base_timestamp.wrapping_add(r.timestamp_delta);
        max_timestamp = max_timestamp.max(ts);
        if base_timestamp == header.base_timestamp {
            body.extend_from_slice(&records[r.start..r.end]);
        } else {
            let mut inner = Vec::with_capacity(r.end - r.start);
            inner.push(r.attributes);
            put_varlong(&mut inner, ts.wrapping_sub(base_timestamp));
            inner.extend_from_slice(&records[r.after_timestamp..r.end]);
            put_varlong(&mut body, inner.len() as i64);
            body.extend_from_slice(&inner);
        }
    }
    if header.is_log_append_time() {
        max_timestamp = header.max_timestamp;
    }
    let mut out = batch[..BATCH_HEADER_LEN].to_vec();
    let mut attributes = header.attributes;
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_FLAG;
    }
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    out[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    compress_into(header.compression_codec(), &body, &mut out)?;
    finish_header(&mut out, retained.len() as i32);
    Ok(out)
}

fn codec_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::CorruptMessage(format!("stored batch {what}: {e}"))
}

/// The records section of a batch, decompressed; None when it would pass `max` bytes
/// (`sluice.decompressed.batch.max.bytes`), which is never decompressed further.
fn decompress_records<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    max: usize,
) -> Result<Option<std::borrow::Cow<'a, [u8]>>> {
    let codec = Codec::from_id(header.compression_codec()).ok_or_else(|| {
        codec_error(
            "decompression",
            format!("unknown codec {}", header.compression_codec()),
        )
    })?;
    decompress_within(codec, &batch[BATCH_HEADER_LEN..], max)
}

/// Appends `body` to `out` compressed with `codec`.
fn compress_into(codec: i16, body: &[u8], out: &mut Vec<u8>) -> Result<()> {
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
    if codec == 0 {
        out.extend_from_slice(body);
        return Ok(());
    }
    let mut buf = BytesMut::new();
    let put = |b: &mut BytesMut| {
        b.put_slice(body);
        Ok(())
    };
    let done = match codec {
        1 => Gzip::compress(&mut buf, put),
        2 => Snappy::compress(&mut buf, put),
        3 => Lz4::compress(&mut buf, put),
        4 => Zstd::compress(&mut buf, put),
        c => return Err(codec_error("compression", format!("unknown codec {c}"))),
    };
    done.map_err(|e| codec_error("compression", e))?;
    out.extend_from_slice(&buf);
    Ok(())
}

/// Reads a zigzag varint of at most `max_bytes` bytes at `*pos`.
fn get_varlong(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<i64> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let Some(&b) = buf.get(*pos) else {
            break;
        };
        *pos += 1;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(Error::CorruptMessage(
        "stored record has a bad varint".into(),
    ))
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// A length-prefixed byte field (key or value); None for length -1.
fn get_field(buf: &[u8], pos: &mut usize) -> Result<Option<(usize, usize)>> {
    let len = get_varlong(buf, pos, 5)?;
    if len < 0 {
        return Ok(None);
    }
    let start = *pos;
    let end = start
        .checked_add(usize::try_from(len).map_err(std::io::Error::other)?)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| Error::CorruptMessage("stored record field overruns its record".into()))?;
    *pos = end;
    Ok(Some((start, end)))
}

/// (offset, timestamp) of each record of a batch's plain records section (timestamp delta
/// over the base timestamp, which after KIP-534 may be the delete horizon: the cleaner
/// rebases deltas when it sets one).
pub(crate) fn record_offsets_and_timestamps(
    records: &[u8],
    header: &BatchHeader,
) -> Result<Vec<(i64, i64)>> {
    Ok(parse_records(records, header)?
        .iter()
        .map(|r| {
            (
                header.base_offset + i64::from(r.offset_delta),
                header.base_timestamp.wrapping_add(r.timestamp_delta),
            )
        })
        .collect())
}

/// Splits a records section into its records (Kafka's DefaultRecord layout: length varint,
/// attributes, timestamp delta varlong, offset delta varint, key, value, headers).
fn parse_records(records: &[u8], header: &BatchHeader) -> Result<Vec<RawRecord>> {
    let count = usize::try_from(header.records_count).unwrap_or(0);
    // Each record takes at least 7 bytes: the count cannot make this allocation large.
    let mut out = Vec::with_capacity(count.min(records.len() / 7 + 1));
    let mut pos = 0;
    for _ in 0..count {
        let start = pos;
        let len = get_varlong(records, &mut pos, 5)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|&e| e <= records.len())
            .ok_or_else(|| Error::CorruptMessage("stored record overruns its batch".into()))?;
        let body = &records[..end];
        let attributes = *body
            .get(pos)
            .ok_or_else(|| Error::CorruptMessage("empty stored record".into()))?;
        pos += 1;
        let timestamp_delta = get_varlong(body, &mut pos, 10)?;
        let after_timestamp = pos;
        let offset_delta = i32::try_from(get_varlong(body, &mut pos, 5)?)
            .map_err(|e| Error::CorruptMessage(format!("stored record offset delta: {e}")))?;
        let key = get_field(body, &mut pos)?;
        let has_value = get_field(body, &mut pos)?.is_some();
        out.push(RawRecord {
            start,
            end,
            after_timestamp,
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            has_value,
        });
        pos = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::SimDisk;
    use crate::log::partition::tests::{append_checked, test_clock, TestClock};
    use crate::log::partition::PartitionId;
    use crate::protocol::record_batch::check_batch;
    use bytes::Bytes;
    use indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };
    use std::sync::atomic::Ordering;

    const DIR: &str = "/logs/compacted-0";

    fn compact_config() -> LogConfig {
        LogConfig {
            segment_bytes: 1_000,
            index_interval_bytes: 100,
            cleanup_compact: true,
            cleanup_delete: false,
            delete_retention_ms: 10_000,
            min_cleanable_dirty_ratio: 0.0,
            ..LogConfig::default()
        }
    }

    struct Fixture {
        disk: SimDisk,
        clock: Arc<TestClock>,
        metrics: Metrics,
        log: Arc<PartitionLog>,
        cleaner: LogCleaner,
    }

    impl Fixture {
        fn new(config: LogConfig) -> Self {
            let disk = SimDisk::new();
            let clock = test_clock(1_000_000);
            let metrics = Metrics::new();
            let log = Self::open_log(&disk, &clock, &metrics, config);
            let cleaner = Self::open_cleaner(&disk, &metrics);
            Fixture {
                disk,
                clock,
                metrics,
                log,
                cleaner,
            }
        }

        fn open_log(
            disk: &SimDisk,
            clock: &Arc<TestClock>,
            metrics: &Metrics,
            config: LogConfig,
        ) -> Arc<PartitionLog> {
            let id = PartitionId {
                topic: "compacted".into(),
                partition: 0,
                topic_id: uuid::Uuid::from_u128(9),
            };
            let clock: Arc<dyn crate::clock::Clock> = clock.clone();
            Arc::new(
                PartitionLog::open(
                    id,
                    PathBuf::from(DIR),
                    config,
                    Arc::new(disk.clone()),
                    clock,
                    metrics.clone(),
                    false,
                )
                .expect("open"),
            )
        }

        fn open_cleaner(disk: &SimDisk, metrics: &Metrics) -> LogCleaner {
            // The throttler reads only the monotonic clock, which TestClock leaves real.
            LogCleaner::open(
                Arc::new(disk.clone()),
                test_clock(0),
                metrics.clone(),
                &[PathBuf::from("/logs")],
            )
        }

        fn now(&self) -> i64 {
            self.clock.0.load(Ordering::SeqCst)
        }

        fn advance(&self, ms: i64) {
            self.clock.0.fetch_add(ms, Ordering::SeqCst);
        }

        async fn clean(&self, config: &CleanerConfig) -> Option<CleanStats> {
            self.cleaner
                .clean_filthiest(std::slice::from_ref(&self.log), config, self.now())
                .await
                .expect("clean")
                .map(|(_, stats)| stats)
        }
    }

    /// One batch of `(key, value)` records (value None = tombstone); `producer` = (id, epoch,
    /// first sequence) for an idempotent batch.
    fn batch(
        records: &[(&str, Option<&str>)],
        ts: i64,
        compression: Compression,
        producer: Option<(i64, i16, i32)>,
    ) -> BytesMut {
        let (pid, epoch, seq0) = producer.unwrap_or((-1, -1, -1));
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if pid >= 0 {
                    seq0 + i as i32
                } else {
                    i as i32 - 1
                },
                timestamp: ts + i as i64,
                key: Some(Bytes::from(k.to_string())),
                value: v.map(|v| Bytes::from(v.to_string())),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode");
        buf
    }

    async fn put(
        log: &PartitionLog,
        records: &[(&str, Option<&str>)],
        ts: i64,
        compression: Compression,
    ) -> i64 {
        append_checked(log, batch(records, ts, compression, None), 0)
            .await
            .expect("append")
            .base_offset
    }

    /// (offset, key, value) of every record from the log start, plus each batch's header.
    type Read = (Vec<(i64, String, Option<String>)>, Vec<BatchHeader>);

    fn read_all(log: &PartitionLog) -> Read {
        let mut records = Vec::new();
        let mut headers = Vec::new();
        let mut next = log.log_start_offset();
        while next < log.log_end_offset() {
            let bytes = log
                .read(next, 1 << 20, true, log.log_end_offset())
                .expect("read");
            assert!(!bytes.is_empty(), "a read below the end returns data");
            for (_, h, b) in BatchIter::new(&bytes, true) {
                check_batch(b).expect("stored batch has a valid CRC");
                headers.push(h);
                next = h.last_offset() + 1;
                let mut one = Bytes::copy_from_slice(b);
                let set = RecordBatchDecoder::decode(&mut one).expect("decodes");
                for r in set.records {
                    let s = |b: Option<Bytes>| b.map(|b| String::from_utf8_lossy(&b).to_string());
                    records.push((r.offset, s(r.key).unwrap_or_default(), s(r.value)));
                }
            }
        }
        (records, headers)
    }

    fn keys(records: &[(i64, String, Option<String>)]) -> Vec<&str> {
        records.iter().map(|(_, k, _)| k.as_str()).collect()
    }

    /// Appends `rounds` updates of keys k0..k{keys-1}, then one batch with key "last" that
    /// lands in a new active segment. Returns the offset of each (round, key).
    async fn fill(
        log: &PartitionLog,
        keys: usize,
        rounds: usize,
        compression: Compression,
    ) -> Vec<Vec<i64>> {
        let mut offsets = Vec::new();
        for round in 0..rounds {
            let mut row = Vec::new();
            for k in 0..keys {
                let key = format!("k{k}");
                let value = format!("v{round}-{k}");
                row.push(put(log, &[(&key, Some(&value))], 1_000_000, compression).await);
            }
            offsets.push(row);
        }
        offsets
    }

    #[tokio::test]
    async fn clean_keeps_latest_record_per_key_at_its_original_offset() {
        let f = Fixture::new(compact_config());
        let offsets = fill(&f.log, 4, 30, Compression::None).await;
        let end = f.log.log_end_offset();
        let active = f.log.active_segment_base_offset();
        assert!(f.log.segment_count() > 3, "the test needs several segments");
        let before = read_all(&f.log).0;
        let stats = f.clean(&CleanerConfig::default()).await.expect("cleaned");
        assert_eq!(stats.end_offset, active, "cleaned up to the active segment");
        assert!(stats.records_removed > 0 && stats.segments_swapped > 0);
        let (after, _) = read_all(&f.log);
        assert_eq!(f.log.log_end_offset(), end, "log end unchanged");
        // Below the active segment each key appears once, with its latest value there.
        let cleaned: Vec<_> = after.iter().filter(|r| r.0 < active).cloned().collect();
        let mut seen = BTreeSet::new();
        for (offset, key, value) in &cleaned {
            assert!(
                seen.insert(key.clone()),
                "{key} kept twice below the active segment"
            );
            // Kept records are exactly the records at those offsets before the clean.
            let original = before.iter().find(|r| r.0 == *offset).expect("same offset");
            assert_eq!((key, value), (&original.1, &original.2));
            let newer_before_active = before
                .iter()
                .any(|r| r.1 == *key && r.0 > *offset && r.0 < active);
            assert!(!newer_before_active, "{key}@{offset} is not the latest");
        }
        // Records of the active segment are untouched; offsets keep increasing.
        let tail_before: Vec<_> = before.iter().filter(|r| r.0 >= active).collect();
        let tail_after: Vec<_> = after.iter().filter(|r| r.0 >= active).collect();
        assert_eq!(tail_before, tail_after);
        assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
        // The latest offset of every key survives.
        for (k, &last) in offsets[29].iter().enumerate() {
            assert!(after.iter().any(|r| r.0 == last), "k{k}@{last} kept");
        }
        assert!(f.metrics.log_cleaner_removed_records_total.get() >= stats.records_removed);
        assert_eq!(f.metrics.log_cleaner_passes_total.get(), 1);
        assert_eq!(f.cleaner.checkpointed_offset(&f.log), Some(active));
        // Nothing dirty is left: no second pass.
        assert!(f.clean(&CleanerConfig::default()).await.is_none());
    }

    #[tokio::test]
    async fn segments_keep_ending_where_the_next_begins_so_a_restart_loads_them_all() {
        let f = Fixture::new(compact_config());
        fill(&f.log, 2, 40, Compression::None).await;
        f.clean(&CleanerConfig::default()).await.expect("cleaned");
        let (after, _) = read_all(&f.log);
        let end = f.log.log_end_offset();
        f.log.flush().await.expect("flush");
        f.disk.crash();
        let reopened = Fixture::open_log(&f.disk, &f.clock, &f.metrics, compact_config());
        assert_eq!(reopened.log_end_offset(), end);
        assert_eq!(
            read_all(&reopened).0,
            after,
            "the cleaned log survives a crash"
        );
        let cleaner = Fixture::open_cleaner(&f.disk, &f.metrics);
        assert_eq!(
            cleaner.checkpointed_offset(&reopened),
            f.cleaner.checkpointed_offset(&f.log),
            "the checkpoint survives a crash"
        );
    }

    #[tokio::test]
    async fn fetch_from_a_segment_left_with_an_empty_batch_goes_on_into_later_segments() {
        let f = Fixture::new(compact_config());
        fill(&f.log, 2, 40, Compression::None).await;
        f.clean(&CleanerConfig::default()).await.expect("cleaned");
        let (_, headers) = read_all(&f.log);
        let empty = headers
            .iter()
            .find(|h| h.records_count == 0)
            .expect("a segment keeps only its last batch, empty");
        let bytes = f
            .log
            .read(empty.base_offset, 1 << 20, true, f.log.log_end_offset())
            .expect("read");
        let batches: Vec<BatchHeader> = BatchIter::new(&bytes, true).map(|(_, h, _)| h).collect();
        assert_eq!(batches[0].base_offset, empty.base_offset);
        assert!(
            batches.iter().any(|h| h.records_count > 0),
            "the response carries records, not only empty batches: {batches:?}"
        );
    }

    #[tokio::test]
    async fn tombstone_is_kept_for_delete_retention_then_removed() {
        let f = Fixture::new(compact_config());
        put(
            &f.log,
            &[("gone", Some("v1"))],
            1_000_000,
            Compression::None,
        )
        .await;
        put(
            &f.log,
            &[("stay", Some("s1"))],
            1_000_000,
            Compression::None,
        )
        .await;
        let tombstone = put(&f.log, &[("gone", None)], 1_000_000, Compression::None).await;
        fill(&f.log, 2, 20, Compression::None).await;
        let first = f.clean(&CleanerConfig::default()).await.expect("cleaned");
        assert!(first.records_removed > 0);
        let (records, headers) = read_all(&f.log);
        let gone: Vec<_> = records.iter().filter(|r| r.1 == "gone").collect();
        assert_eq!(gone, vec![&(tombstone, "gone".to_string(), None)]);
        let h = headers
            .iter()
            .find(|h| h.base_offset <= tombstone && h.last_offset() >= tombstone)
            .expect("batch");
        assert_ne!(h.attributes & DELETE_HORIZON_FLAG, 0, "delete horizon set");
        assert_eq!(h.base_timestamp, f.now() + 10_000);
        // Before the horizon the log is not cleaned again and the tombstone stays.
        f.advance(9_999);
        assert!(f.clean(&CleanerConfig::default()).await.is_none());
        assert!(keys(&read_all(&f.log).0).contains(&"gone"));
        // Past it the cleaner picks the log up by itself and the tombstone goes.
        f.advance(2);
        let second = f
            .clean(&CleanerConfig::default())
            .await
            .expect("horizon due");
        assert!(second.records_removed >= 1);
        let (records, _) = read_all(&f.log);
        assert!(!keys(&records).contains(&"gone"), "tombstone removed");
        assert!(keys(&records).contains(&"stay"));
    }

    #[tokio::test]
    async fn offset_map_too_small_cleans_the_part_that_fits_then_the_rest() {
        let f = Fixture::new(compact_config());
        fill(&f.log, 8, 12, Compression::None).await;
        let active = f.log.active_segment_base_offset();
        // Room for 4 keys: the map fills inside the dirty section.
        let small = CleanerConfig {
            dedupe_buffer_size: 4 * OFFSET_MAP_ENTRY_BYTES,
            io_buffer_load_factor: 1.0,
            threads: 1,
            ..CleanerConfig::default()
        };
        let first = f.clean(&small).await.expect("cleaned");
        assert!(
            first.end_offset < active,
            "only part of the dirty section fits"
        );
        assert_eq!(
            first.end_offset, 4,
            "k0..k3 of the first round fill the map"
        );
        assert_eq!(
            f.cleaner.checkpointed_offset(&f.log),
            Some(first.end_offset)
        );
        let mut ends = vec![first.end_offset];
        while let Some(stats) = f.clean(&small).await {
            assert!(stats.end_offset > *ends.last().expect("one"));
            ends.push(stats.end_offset);
        }
        assert_eq!(*ends.last().expect("some"), active);
        // Each key's latest offset was in one pass's map, which removed its older records.
        let records = read_all(&f.log).0;
        let below: Vec<_> = records.iter().filter(|r| r.0 < active).collect();
        let distinct: BTreeSet<_> = below.iter().map(|r| r.1.clone()).collect();
        assert_eq!(below.len(), distinct.len(), "{below:?}");
    }

    #[tokio::test]
    async fn offset_map_without_room_for_one_key_fails_instead_of_spinning() {
        let f = Fixture::new(compact_config());
        fill(&f.log, 2, 40, Compression::None).await;
        let none = CleanerConfig {
            dedupe_buffer_size: 0,
            ..CleanerConfig::default()
        };
        let r = f
            .cleaner
            .clean_filthiest(std::slice::from_ref(&f.log), &none, f.now())
            .await;
        assert!(r.is_err());
        // The partition is then skipped rather than retried in a loop.
        assert!(f.clean(&CleanerConfig::default()).await.is_none());
    }

    #[tokio::test]
    async fn compressed_batches_are_recompressed_with_their_codec() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let f = Fixture::new(compact_config());
            let mut expected = BTreeMap::new();
            for round in 0..25 {
                let a = format!("a{round}");
                let b = format!("b{round}");
                let base = put(
                    &f.log,
                    &[("a", Some(&a)), ("b", Some(&b)), ("c", Some("c"))],
                    1_000_000,
                    codec,
                )
                .await;
                expected.insert("a", (base, a));
                expected.insert("b", (base + 1, b));
            }
            let active = f.log.active_segment_base_offset();
            f.clean(&CleanerConfig::default()).await.expect("cleaned");
            let (records, headers) = read_all(&f.log);
            for h in headers
                .iter()
                .filter(|h| h.base_offset < active && h.records_count > 0)
            {
                assert_eq!(h.compression_codec(), codec as i16, "{codec:?}");
                assert_eq!(h.last_offset_delta, 2, "last offset delta preserved");
            }
            let below: Vec<_> = records.iter().filter(|r| r.0 < active).collect();
            assert!(below.len() <= 3, "{codec:?}: {below:?}");
            let a_last = records.iter().rfind(|r| r.1 == "a").expect("a");
            if expected["a"].0 < active {
                assert_eq!(
                    (a_last.0, a_last.2.clone()),
                    (expected["a"].0, Some(expected["a"].1.clone()))
                );
            }
        }
    }

    #[tokio::test]
    async fn idempotent_producer_last_batch_stays_as_an_empty_batch() {
        let f = Fixture::new(compact_config());
        // Producer 7's only batch is superseded by plain records of the same key.
        let pid_batch = batch(
            &[("p", Some("old"))],
            1_000_000,
            Compression::None,
            Some((7, 0, 0)),
        );
        let at = append_checked(&f.log, pid_batch, 0)
            .await
            .expect("append")
            .base_offset;
        fill(&f.log, 1, 3, Compression::None).await;
        put(&f.log, &[("p", Some("new"))], 1_000_000, Compression::None).await;
        fill(&f.log, 2, 30, Compression::None).await;
        f.clean(&CleanerConfig::default()).await.expect("cleaned");
        let (records, headers) = read_all(&f.log);
        assert!(!records.iter().any(|r| r.0 == at), "the record is gone");
        let h = headers
            .iter()
            .find(|h| h.base_offset == at)
            .expect("batch header kept");
        assert_eq!(
            (
                h.records_count,
                h.producer_id,
                h.producer_epoch,
                h.base_sequence
            ),
            (0, 7, 0, 0)
        );
        assert_eq!(f.log.producer_state(7).expect("state").producer_epoch, 0);
    }

    #[tokio::test]
    async fn min_compaction_lag_keeps_young_segments_dirty() {
        let config = LogConfig {
            min_compaction_lag_ms: 60_000,
            ..compact_config()
        };
        let f = Fixture::new(config);
        let now = f.now();
        // Old records, then records younger than the lag.
        for i in 0..20 {
            put(
                &f.log,
                &[("k", Some(&format!("old{i}")))],
                now - 120_000,
                Compression::None,
            )
            .await;
        }
        let young_from = f.log.log_end_offset();
        for i in 0..20 {
            put(
                &f.log,
                &[("k", Some(&format!("new{i}")))],
                now,
                Compression::None,
            )
            .await;
        }
        let stats = f.clean(&CleanerConfig::default()).await.expect("cleaned");
        assert!(stats.end_offset <= young_from + 1, "{stats:?}");
        let records = read_all(&f.log).0;
        let young = records.iter().filter(|r| r.0 >= young_from).count();
        assert_eq!(young, 20, "records within the lag are all kept");
    }

    #[tokio::test]
    async fn failed_fsync_before_the_swap_leaves_the_old_segments_and_a_crash_recovers() {
        let f = Fixture::new(compact_config());
        fill(&f.log, 3, 30, Compression::Lz4).await;
        f.log.flush().await.expect("flush");
        let before = read_all(&f.log).0;
        f.disk.fail_syncs(true);
        let failed = f
            .cleaner
            .clean_filthiest(
                std::slice::from_ref(&f.log),
                &CleanerConfig::default(),
                f.now(),
            )
            .await;
        assert!(failed.is_err(), "the copy cannot be made durable");
        assert_eq!(read_all(&f.log).0, before, "nothing swapped");
        f.disk.fail_syncs(false);
        // A copy left behind, as a crash mid-clean leaves one, goes at the next open.
        let leftover = PathBuf::from(format!("{DIR}/00000000000000000000.log.cleaned"));
        f.disk.write_file(&leftover, b"half a copy").expect("write");
        f.disk.sync_dir_blocking(Path::new(DIR)).expect("sync");
        f.disk.crash();
        let reopened = Fixture::open_log(&f.disk, &f.clock, &f.metrics, compact_config());
        assert!(!f.disk.exists(&leftover));
        assert_eq!(
            read_all(&reopened).0,
            before,
            "no record lost or duplicated"
        );
    }

    #[tokio::test]
    async fn crash_after_swaps_keeps_old_or_new_segments_never_a_mix() {
        let f = Fixture::new(compact_config());
        fill(&f.log, 3, 30, Compression::None).await;
        f.log.flush().await.expect("flush");
        let before = read_all(&f.log).0;
        let latest: BTreeMap<String, (i64, Option<String>)> = before
            .iter()
            .map(|r| (r.1.clone(), (r.0, r.2.clone())))
            .collect();
        f.clean(&CleanerConfig::default()).await.expect("cleaned");
        // Crash before the index files of the swapped segments were synced.
        f.disk.crash();
        let reopened = Fixture::open_log(&f.disk, &f.clock, &f.metrics, compact_config());
        let after = read_all(&reopened).0;
        assert_eq!(reopened.log_end_offset(), f.log.log_end_offset());
        for r in &after {
            assert!(before.contains(r), "{r:?} was in the log at its offset");
        }
        let latest_after: BTreeMap<String, (i64, Option<String>)> = after
            .iter()
            .map(|r| (r.1.clone(), (r.0, r.2.clone())))
            .collect();
        assert_eq!(
            latest, latest_after,
            "the latest record of every key survives"
        );
    }

    #[test]
    fn throttler_pauses_so_the_rate_stays_at_the_limit() {
        let t0 = tokio::time::Instant::now();
        let ms = |n: u64| t0 + std::time::Duration::from_millis(n);
        let mut t = Throttler::new(THROTTLE_CHECK_INTERVAL);
        assert!(
            t.observe(1_000, 1_000.0, t0).is_zero(),
            "first bytes start the period"
        );
        assert!(
            t.observe(1_000, 1_000.0, ms(100)).is_zero(),
            "within the interval"
        );
        // 3000 bytes in 400 ms at 1000 B/s should have taken 3 s: pause the other 2.6 s.
        let pause = t.observe(1_000, 1_000.0, ms(400));
        assert_eq!(pause.as_millis(), 2_600);
        // The next period starts after the pause: 500 bytes in 500 ms is within the rate.
        assert!(t.observe(500, 1_000.0, ms(3_000)).is_zero());
        assert!(t.observe(0, 1_000.0, ms(3_500)).is_zero());
        // Kafka's default Double.MaxValue (and a nonsensical rate) never throttle.
        let mut free = Throttler::new(THROTTLE_CHECK_INTERVAL);
        free.observe(1 << 30, f64::MAX, t0);
        assert!(free.observe(1 << 30, f64::MAX, ms(301)).is_zero());
        assert!(free.observe(1 << 30, 0.0, ms(700)).is_zero());
    }

    #[tokio::test]
    async fn repeated_cleaning_merges_small_segments_up_to_segment_bytes() {
        let f = Fixture::new(compact_config());
        let mut counts = Vec::new();
        for _ in 0..6 {
            fill(&f.log, 3, 40, Compression::None).await;
            f.clean(&CleanerConfig::default()).await.expect("cleaned");
            counts.push(f.log.segment_count());
        }
        let view = f.log.cleaner_view();
        let sizes: Vec<u64> = view.segments.iter().map(|s| s.size).collect();
        assert!(
            sizes.iter().all(|&s| s <= 1_000),
            "cleaned segments stay within segment.bytes: {sizes:?}"
        );
        // Each round appends 120 single-record batches (about 9 segments). As in Kafka,
        // groups are formed from the sizes before cleaning, so a round's segments shrink in
        // its own clean and merge in the next: the count stays at about one round's worth
        // instead of growing by 9 a round (it was 50+ without grouping).
        assert!(
            counts[5] <= counts[1] + 1 && counts[5] <= 12,
            "segment counts after each round: {counts:?} ({sizes:?})"
        );
        let groups =
            group_segments_by_size(&view.segments.iter().collect::<Vec<_>>(), &compact_config());
        for g in &groups {
            assert!(g.iter().map(|s| s.size).sum::<u64>() <= 1_000);
        }
        // Segments still chain: each ends where the next begins, and a restart loads them.
        for w in view.segments.windows(2) {
            assert_eq!(w[0].next_offset, w[1].base_offset);
        }
        let (records, _) = read_all(&f.log);
        f.log.flush().await.expect("flush");
        f.disk.crash();
        let reopened = Fixture::open_log(&f.disk, &f.clock, &f.metrics, compact_config());
        assert_eq!(read_all(&reopened).0, records);
        assert!(f
            .disk
            .list_dir(Path::new(DIR))
            .expect("list")
            .iter()
            .all(|e| !e.name.ends_with(SWAP_FILE_SUFFIX)));
        assert!(
            f.metrics.log_cleaner_passes_total.get() == 6,
            "one pass a round"
        );
    }

    #[test]
    fn grouping_respects_size_index_and_offset_span() {
        let disk = SimDisk::new();
        disk.create_dir_all(Path::new("/g")).expect("dir");
        let file = disk.open(Path::new("/g/x"), true).expect("file");
        let seg = |base: i64, next: i64, size: u64| Segment {
            size,
            next_offset: next,
            ..Segment::new(base, Arc::clone(&file), 1, 0)
        };
        let segs = [
            seg(0, 10, 400),
            seg(10, 20, 500),
            seg(20, 30, 200),
            seg(30, 40, 900),
            seg(40, 41, 0),
            seg(41, i64::from(i32::MAX) + 50, 10),
        ];
        let refs: Vec<&Segment> = segs.iter().collect();
        let config = LogConfig {
            segment_bytes: 1_000,
            segment_index_bytes: 10 * 1024,
            index_interval_bytes: 4096,
            ..LogConfig::default()
        };
        let bases = |groups: Vec<Vec<&Segment>>| -> Vec<Vec<i64>> {
            groups
                .iter()
                .map(|g| g.iter().map(|s| s.base_offset).collect())
                .collect()
        };
        assert_eq!(
            bases(group_segments_by_size(&refs, &config)),
            vec![vec![0, 10], vec![20], vec![30, 40], vec![41]],
            "size first, then the 32-bit relative offset span"
        );
        // An offset index of two entries: each segment counts at least one.
        let tiny_index = LogConfig {
            segment_index_bytes: 2 * OFFSET_INDEX_ENTRY_BYTES,
            ..config
        };
        assert_eq!(
            bases(group_segments_by_size(&refs[..3], &tiny_index)),
            vec![vec![0, 10], vec![20]]
        );
    }

    #[tokio::test]
    async fn swap_left_by_a_crash_is_completed_at_open() {
        let f = Fixture::new(compact_config());
        fill(&f.log, 2, 40, Compression::None).await;
        f.log.flush().await.expect("flush");
        let before = read_all(&f.log).0;
        let view = f.log.cleaner_view();
        let (a, b) = (&view.segments[0], &view.segments[1]);
        // The merged copy of the first two segments, committed as a swap: the state a crash
        // leaves between the swap's directory sync and the removal of the old segments.
        let mut merged = vec![0u8; (a.size + b.size) as usize];
        a.log
            .read_at(0, &mut merged[..a.size as usize])
            .expect("read");
        b.log
            .read_at(0, &mut merged[a.size as usize..])
            .expect("read");
        let swap = PathBuf::from(format!("{DIR}/00000000000000000000.log{SWAP_FILE_SUFFIX}"));
        f.disk.write_file(&swap, &merged).expect("write");
        f.disk
            .open(&swap, false)
            .expect("open")
            .sync()
            .await
            .expect("sync");
        f.disk.sync_dir_blocking(Path::new(DIR)).expect("sync");
        let count = f.log.segment_count();
        f.disk.crash();
        let reopened = Fixture::open_log(&f.disk, &f.clock, &f.metrics, compact_config());
        assert!(!f.disk.exists(&swap), "the swap became the segment");
        assert_eq!(
            reopened.segment_count(),
            count - 1,
            "the second segment went"
        );
        assert_eq!(
            read_all(&reopened).0,
            before,
            "no record lost or duplicated"
        );
    }

    #[tokio::test]
    async fn batch_over_the_decompression_bound_is_kept_as_it_is() {
        let config = LogConfig {
            decompressed_batch_max_bytes: 200,
            ..compact_config()
        };
        let f = Fixture::new(compact_config());
        // One gzip batch of 10 records (over 200 bytes decompressed), then plain updates of
        // the same keys, which would supersede all of it.
        let big: Vec<(String, String)> = (0..10)
            .map(|i| (format!("k{i}"), format!("old-value-{i:020}")))
            .collect();
        let big_refs: Vec<(&str, Option<&str>)> = big
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        let at = put(&f.log, &big_refs, 1_000_000, Compression::Gzip).await;
        fill(&f.log, 10, 8, Compression::None).await;
        // The bound is lowered after the batch was stored (produce checks it too).
        f.log.set_config(config);
        let stats = f
            .clean(&CleanerConfig::default())
            .await
            .expect("no failure");
        assert_eq!(stats.oversized_batches, 1, "{stats:?}");
        assert_eq!(f.metrics.log_cleaner_oversized_batches_total.get(), 1);
        let (records, headers) = read_all(&f.log);
        let kept = headers.iter().find(|h| h.base_offset == at).expect("kept");
        assert_eq!((kept.records_count, kept.compression_codec()), (10, 1));
        assert_eq!(records.iter().filter(|r| r.0 < at + 10).count(), 10);
        assert!(
            records
                .iter()
                .filter(|r| r.0 >= at + 10 && r.0 < f.log.active_segment_base_offset())
                .count()
                <= 10,
            "the rest is cleaned"
        );
        // The partition is not given up on: it is cleaned again when dirty.
        fill(&f.log, 10, 8, Compression::None).await;
        assert!(f.clean(&CleanerConfig::default()).await.is_some());
    }

    #[tokio::test]
    async fn delete_horizon_survives_a_restart_and_triggers_the_clean() {
        let f = Fixture::new(compact_config());
        put(
            &f.log,
            &[("gone", Some("v1"))],
            1_000_000,
            Compression::None,
        )
        .await;
        put(&f.log, &[("gone", None)], 1_000_000, Compression::None).await;
        fill(&f.log, 2, 20, Compression::None).await;
        f.clean(&CleanerConfig::default()).await.expect("cleaned");
        assert!(
            keys(&read_all(&f.log).0).contains(&"gone"),
            "tombstone kept"
        );
        f.log.flush().await.expect("flush");
        // Restart: a new log and a new cleaner, whose horizon map starts empty.
        f.disk.crash();
        let log = Fixture::open_log(&f.disk, &f.clock, &f.metrics, compact_config());
        let cleaner = Fixture::open_cleaner(&f.disk, &f.metrics);
        let logs = [Arc::clone(&log)];
        let config = CleanerConfig::default();
        let early = cleaner
            .clean_filthiest(&logs, &config, f.now() + 9_000)
            .await;
        assert!(
            early.expect("clean").is_none(),
            "nothing dirty, horizon ahead"
        );
        let done = cleaner
            .clean_filthiest(&logs, &config, f.now() + 10_001)
            .await
            .expect("clean")
            .expect("the horizon is due");
        assert!(done.1.records_removed >= 1);
        assert!(
            !keys(&read_all(&log).0).contains(&"gone"),
            "tombstone removed"
        );
    }

    #[test]
    fn checkpoint_text_round_trips_in_kafka_format() {
        let mut m = BTreeMap::new();
        m.insert(("t".to_string(), 0), 42);
        m.insert(("__consumer_offsets".to_string(), 7), 9);
        let text = format_checkpoint(&m);
        assert_eq!(text, "0\n2\n__consumer_offsets 7 9\nt 0 42\n");
        assert_eq!(parse_checkpoint(&text), Some(m));
        assert_eq!(parse_checkpoint("0\n3\nt 0 1\n"), None);
    }

    #[test]
    fn varlong_round_trips() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, -300, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            let mut pos = 0;
            assert_eq!(get_varlong(&b, &mut pos, 10).expect("decodes"), v);
            assert_eq!(pos, b.len());
        }
    }
}
