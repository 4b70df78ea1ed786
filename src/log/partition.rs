//! One partition's durable log: ordered appends with in-place offsets, reads of stored batches,
//! group-committed fsync, offset lookup by timestamp, and recovery of the segments at open.
//! Handlers reach it through `LogManager`; it sits at the bottom of Produce and Fetch.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::log::cleaner::record_offsets_and_timestamps;
use crate::log::disk::{Disk, DiskFile};
use crate::log::leader_epoch::{LeaderEpochCache, LEADER_EPOCH_CHECKPOINT};
use crate::log::producer_state::{
    snapshot_file_name, snapshot_offset, AppendCheck, ProducerStateEntry, ProducerStateManager,
};
use crate::log::segment::{remove_index_files, segment_paths, Segment};
use crate::log::validator::apply_topic_policies;
use crate::log::{LogConfig, TimestampType};
use crate::metrics::Metrics;
use crate::protocol::compression::{decompress_within, Codec};
use crate::protocol::record_batch::{
    assign_offsets, parse_header, set_log_append_time_all, BatchHeader, BatchIter, BatchIterStop,
    ValidatedRecords,
};

/// What an append did, for the Produce response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's timestamp when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

/// Where to find a partition and what it is.
#[derive(Debug, Clone)]
pub struct PartitionId {
    pub topic: String,
    pub partition: i32,
    pub topic_id: Uuid,
}

/// Mutable log state, behind a std mutex held only for short, await-free sections.
#[derive(Debug)]
struct LogState {
    config: LogConfig,
    /// Sorted by base offset; the last one is active. Never empty.
    segments: Vec<Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    /// Kafka's high watermark: every offset below it is on every in-sync replica, and only
    /// those are served to consumers. The replica layer moves it (replication/partition.rs);
    /// it starts at the log start and never exceeds the log end.
    high_watermark: i64,
    /// Files written outside the active segment (rolled segments, their indexes) that the next
    /// flush must sync too.
    pending_file_syncs: Vec<Arc<dyn DiskFile>>,
    /// Directories with entries created since the last flush.
    pending_dir_syncs: BTreeSet<PathBuf>,
    last_flush_ms: i64,
    /// Set when the log can no longer be trusted to match its state (failed fsync or failed
    /// rollback of a partial write); every later write returns KAFKA_STORAGE_ERROR.
    offline: Option<String>,
    /// Idempotent producers' epochs and last batches (KIP-98); checked and updated under this
    /// lock together with the append, so check-then-append is atomic per partition.
    producers: ProducerStateManager,
    /// First offset of each leader epoch (leader-epoch-checkpoint), for OffsetForLeaderEpoch.
    leader_epochs: LeaderEpochCache,
}

impl LogState {
    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a partition always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a partition always has an active segment")
    }

    fn check_online(&self) -> Result<()> {
        match &self.offline {
            Some(why) => Err(Error::Storage(std::io::Error::other(format!(
                "log is offline after an earlier I/O error: {why}"
            )))),
            None => Ok(()),
        }
    }

    fn active_first_base(&self) -> i64 {
        self.segments[0].base_offset
    }

    /// The segment holding `offset` (the last one whose base is <= offset).
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }
}

fn lock(m: &Mutex<LogState>) -> MutexGuard<'_, LogState> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One partition's log. Shared as `Arc<PartitionLog>`; every method takes `&self`.
#[derive(Debug)]
pub struct PartitionLog {
    id: PartitionId,
    dir: PathBuf,
    disk: Arc<dyn Disk>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    state: Mutex<LogState>,
    /// Every offset below this is on disk.
    flushed_offset: AtomicI64,
    /// At most one fsync per partition at a time; waiters queue here and most find their
    /// offsets covered by the fsync they waited behind (group commit).
    flush_lock: tokio::sync::Mutex<()>,
}

impl PartitionLog {
    /// Opens (or creates, when `dir` holds no segment) the log in `dir`, recovering it: the
    /// last segment is scanned and truncated at its first torn or invalid batch, earlier ones
    /// are checked through their indexes, and a gap or corruption in an earlier segment ends
    /// the log there (later segments are deleted) so that the log stays a prefix of what was
    /// appended. With `clean_shutdown` (the log dir's marker was found) the active segment is
    /// loaded through its index files too. Blocking; runs at startup or topic creation.
    pub fn open(
        id: PartitionId,
        dir: PathBuf,
        config: LogConfig,
        disk: Arc<dyn Disk>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        clean_shutdown: bool,
    ) -> Result<PartitionLog> {
        disk.create_dir_all(&dir)?;
        let now_ms = clock.wall_ms();
        let mut pending_dir_syncs = BTreeSet::new();
        // A clean interrupted before its swap leaves a `.cleaned` copy; the segment it was
        // made from is intact, so the copy goes.
        crate::log::cleaner::remove_leftovers(disk.as_ref(), &dir)?;
        let bases = segment_bases(disk.as_ref(), &dir)?;
        let segments = if bases.is_empty() {
            let (log_path, _, _) = segment_paths(&dir, 0);
            let log = disk.open(&log_path, true)?;
            pending_dir_syncs.insert(dir.clone());
            if let Some(parent) = dir.parent() {
                pending_dir_syncs.insert(parent.to_path_buf());
            }
            vec![Segment::new(0, log, config.segment_index_bytes, now_ms)]
        } else {
            recover_segments(
                &id,
                disk.as_ref(),
                &dir,
                &bases,
                &config,
                clean_shutdown,
                now_ms,
            )?
        };
        let log_start_offset = segments[0].base_offset;
        let log_end_offset = segments
            .last()
            .expect("recovery returns at least one segment")
            .next_offset;
        // What is in the files may still sit in the page cache after a process crash: sync
        // everything with the first flush before claiming anything new durable.
        let pending_file_syncs = segments.iter().map(|s| Arc::clone(&s.log)).collect();
        let producers = load_producer_state(&id, disk.as_ref(), &dir, &segments, &config)?;
        let (leader_epochs, epochs_changed) = load_leader_epochs(disk.as_ref(), &dir, &segments)?;
        let partition = PartitionLog {
            id,
            dir,
            disk,
            clock,
            metrics,
            state: Mutex::new(LogState {
                config,
                segments,
                log_start_offset,
                log_end_offset,
                high_watermark: log_start_offset,
                pending_file_syncs,
                pending_dir_syncs,
                last_flush_ms: now_ms,
                offline: None,
                producers,
                leader_epochs,
            }),
            flushed_offset: AtomicI64::new(log_end_offset),
            flush_lock: tokio::sync::Mutex::new(()),
        };
        if epochs_changed {
            let mut st = lock(&partition.state);
            partition.write_leader_epochs(&mut st)?;
        }
        Ok(partition)
    }

    pub fn topic(&self) -> &str {
        &self.id.topic
    }

    pub fn partition(&self) -> i32 {
        self.id.partition
    }

    pub fn topic_id(&self) -> Uuid {
        self.id.topic_id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        lock(&self.state).config.clone()
    }

    /// Applies new topic configs; they take effect on the next append or roll.
    pub fn set_config(&self, config: LogConfig) {
        lock(&self.state).config = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        lock(&self.state).log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        lock(&self.state).log_end_offset
    }

    /// The high watermark (see `LogState::high_watermark`).
    pub fn high_watermark(&self) -> i64 {
        lock(&self.state).high_watermark
    }

    /// Raises the high watermark to `offset`, capped at the log end; never lowers it (only a
    /// truncation does). Returns whether it moved.
    pub fn advance_high_watermark(&self, offset: i64) -> bool {
        let mut st = lock(&self.state);
        let target = offset.min(st.log_end_offset);
        if target > st.high_watermark {
            st.high_watermark = target;
            true
        } else {
            false
        }
    }

    /// The newest leader epoch in the log's epoch cache, for a follower's `last_fetched_epoch`
    /// (KIP-595's diverging-epoch check, Fetch v12+).
    pub fn latest_epoch(&self) -> Option<i32> {
        lock(&self.state).leader_epochs.latest_epoch()
    }

    /// (epoch, end offset) of `requested` as the epoch cache knows it now, without assigning
    /// anything: what a leader compares a follower's last fetched epoch with, and what a
    /// follower truncates by.
    pub fn epoch_end_offset(&self, requested: i32) -> (i32, i64) {
        let st = lock(&self.state);
        st.leader_epochs
            .end_offset_for(requested, st.log_end_offset)
    }

    /// A new leader's epoch starts at its log end (Kafka assigns it on becoming leader), so
    /// followers that fetched an older epoch learn where it ended. Returns that start offset.
    pub fn assign_leader_epoch(&self, epoch: i32) -> Result<i64> {
        let mut st = lock(&self.state);
        let end = st.log_end_offset;
        if st.leader_epochs.assign(epoch, end) {
            self.write_leader_epochs(&mut st)?;
        }
        Ok(end)
    }

    /// No transactions yet: nothing is pending, so LSO == high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        self.high_watermark()
    }

    /// Every offset below this is durable on disk.
    pub fn flushed_offset(&self) -> i64 {
        self.flushed_offset.load(Ordering::SeqCst)
    }

    /// Base offset of the segment appends go to.
    pub fn active_segment_base_offset(&self) -> i64 {
        let st = lock(&self.state);
        // Only a failed truncation (which took the log offline) can leave no segment.
        st.segments
            .last()
            .map_or(st.log_end_offset, |s| s.base_offset)
    }

    /// Number of segments (tests and metrics).
    pub fn segment_count(&self) -> usize {
        lock(&self.state).segments.len()
    }

    /// Bytes of all segment files (Kafka's `Size` log metric; indexes not counted).
    pub fn size_bytes(&self) -> u64 {
        lock(&self.state).segments.iter().map(|s| s.size).sum()
    }

    /// Makes the next flush also sync `file` and the directory `dir` (files the log manager
    /// writes next to the segments, such as `partition.metadata`).
    pub(crate) fn add_pending_sync(&self, file: Arc<dyn DiskFile>, dir: PathBuf) {
        let mut st = lock(&self.state);
        st.pending_file_syncs.push(file);
        st.pending_dir_syncs.insert(dir);
    }

    /// Takes the log offline for good (its topic was deleted): later appends and flushes fail
    /// with KAFKA_STORAGE_ERROR instead of writing into removed files.
    pub(crate) fn mark_deleted(&self) {
        lock(&self.state).offline = Some("partition deleted".into());
    }

    /// Appends a Produce request's `records`, which the caller validated with
    /// [`validate_records`](crate::protocol::record_batch::validate_records) (sizes, magic, CRC, counts; `validated` is its answer), assigning
    /// offsets from the log end and stamping `leader_epoch`; with LogAppendTime the batches get
    /// the broker's time. The topic's record-level policies (CreateTime bounds, keys on
    /// compacted topics, recompression; log/validator.rs) are applied first, outside the
    /// partition lock. Appends of one partition reach the log in
    /// call order. When `flush.messages` unflushed messages have accumulated, waits for the
    /// fsync. On an I/O error nothing is acknowledged and the log end offset does not move.
    pub async fn append(
        &self,
        records: BytesMut,
        validated: &ValidatedRecords,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        let mut records = apply_topic_policies(
            records,
            &self.config(),
            self.clock.wall_ms(),
            &self.id.topic,
            self.id.partition,
        )?;
        let (info, flush_through) =
            self.append_in_memory_order(&mut records, validated, leader_epoch)?;
        if let Some(offset) = flush_through {
            self.flush_to(offset).await?;
        }
        Ok(info)
    }

    fn append_in_memory_order(
        &self,
        records: &mut [u8],
        validated: &ValidatedRecords,
        leader_epoch: i32,
    ) -> Result<(AppendInfo, Option<i64>)> {
        // The CRC was checked by validate_records; re-check only the framing that offset
        // assignment relies on, so a caller mix-up is an error and never a panic.
        let framed = check_framing(records)?;
        if framed.len() != validated.batch_count {
            return Err(Error::CorruptMessage(format!(
                "records hold {} batches, validation saw {}",
                framed.len(),
                validated.batch_count
            )));
        }
        let mut st = lock(&self.state);
        st.check_online()?;
        let config = st.config.clone();
        let now_ms = self.clock.wall_ms();
        if let AppendCheck::Duplicate(batch) = st.producers.check_client_append(&framed)? {
            // A retry of a batch already in the log: answered with its original offsets and
            // not appended again (Kafka answers NONE with the original base offset).
            let log_append_time_ms = match config.message_timestamp_type {
                TimestampType::LogAppendTime => batch.timestamp_ms,
                TimestampType::CreateTime => -1,
            };
            let info = AppendInfo {
                base_offset: batch.first_offset,
                last_offset: batch.last_offset,
                log_append_time_ms,
                log_start_offset: st.log_start_offset,
            };
            return Ok((info, None));
        }
        let base_offset = st.log_end_offset;
        let next_offset = assign_offsets(records, base_offset, leader_epoch);
        let log_append_time_ms = match config.message_timestamp_type {
            TimestampType::LogAppendTime => {
                set_log_append_time_all(records, now_ms);
                now_ms
            }
            TimestampType::CreateTime => -1,
        };
        let headers: Vec<BatchHeader> = BatchIter::new(records, false).map(|(_, h, _)| h).collect();
        let flush = self.write_locked(&mut st, &config, records, &headers, next_offset, now_ms)?;
        st.producers
            .record_appended(&headers, config.producer_ids_max);
        self.record_leader_epochs(&mut st, &headers)?;
        let info = AppendInfo {
            base_offset,
            last_offset: next_offset - 1,
            log_append_time_ms,
            log_start_offset: st.log_start_offset,
        };
        Ok((info, flush))
    }

    /// Appends batches that already carry their offsets, as a follower copies them from the
    /// leader: CRCs are verified and offsets must increase from the log end offset (gaps are
    /// allowed, as compaction leaves them). Nothing in the batches is rewritten.
    pub async fn append_replicated(&self, records: BytesMut) -> Result<AppendInfo> {
        let (info, flush_through) = self.append_replicated_in_order(&records)?;
        if let Some(offset) = flush_through {
            self.flush_to(offset).await?;
        }
        Ok(info)
    }

    fn append_replicated_in_order(&self, records: &[u8]) -> Result<(AppendInfo, Option<i64>)> {
        let mut iter = BatchIter::new(records, true);
        let headers: Vec<BatchHeader> = iter.by_ref().map(|(_, h, _)| h).collect();
        match iter.stopped() {
            Some(BatchIterStop::End) => {}
            Some(BatchIterStop::Invalid(e)) => {
                return Err(Error::CorruptMessage(format!("replicated batch: {e}")))
            }
            _ => {
                return Err(Error::CorruptMessage(
                    "replicated records end with a partial batch".into(),
                ))
            }
        }
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Err(Error::InvalidRecord("no record batch to append".into()));
        };
        let monotonic = headers
            .windows(2)
            .all(|w| w[1].base_offset > w[0].last_offset())
            && headers.iter().all(|h| h.last_offset_delta >= 0);
        if !monotonic {
            return Err(Error::CorruptMessage(
                "replicated batches have out of order offsets".into(),
            ));
        }
        let mut st = lock(&self.state);
        st.check_online()?;
        if first.base_offset < st.log_end_offset {
            return Err(Error::CorruptMessage(format!(
                "replicated batch at offset {} is below the log end offset {}",
                first.base_offset, st.log_end_offset
            )));
        }
        let config = st.config.clone();
        let now_ms = self.clock.wall_ms();
        let next_offset = last.last_offset() + 1;
        let flush = self.write_locked(&mut st, &config, records, &headers, next_offset, now_ms)?;
        st.producers
            .record_appended(&headers, config.producer_ids_max);
        self.record_leader_epochs(&mut st, &headers)?;
        let info = AppendInfo {
            base_offset: first.base_offset,
            last_offset: last.last_offset(),
            log_append_time_ms: -1,
            log_start_offset: st.log_start_offset,
        };
        Ok((info, flush))
    }

    /// Rolls when due, writes `records` at the end of the active segment, updates indexes and
    /// the log end offset. Returns the offset to flush to when `flush.messages` is reached.
    /// On an I/O error the log is unchanged (a partial write is cut off again).
    fn write_locked(
        &self,
        st: &mut LogState,
        config: &LogConfig,
        records: &[u8],
        headers: &[BatchHeader],
        next_offset: i64,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let max_timestamp = headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1);
        let len = records.len() as u64;
        if self.should_roll(st, config, len, max_timestamp, next_offset - 1, now_ms) {
            self.roll(st, config, now_ms)?;
        }
        let position = st.active().size;
        if let Err(e) = st.active().log.append(records) {
            self.roll_back_partial_write(st, position, &e);
            return Err(Error::Storage(e));
        }
        st.active_mut()
            .on_appended(position, len, headers, config.index_interval_bytes);
        st.log_end_offset = next_offset;
        self.metrics
            .log_appended_batches_total
            .inc_by(headers.len() as u64);
        let unflushed = next_offset - self.flushed_offset();
        let flush = config
            .flush_interval_messages
            .is_some_and(|n| u64::try_from(unflushed).unwrap_or(0) >= n);
        Ok(flush.then_some(next_offset - 1))
    }

    /// A failed write may have left part of the batch in the file: cut it off so the next
    /// append lands on a batch boundary. If even that fails the file no longer matches the
    /// in-memory state and the log goes offline (Kafka marks the log dir offline).
    fn roll_back_partial_write(&self, st: &mut LogState, position: u64, e: &std::io::Error) {
        tracing::warn!(topic = %self.id.topic, partition = self.id.partition, error = %e, "append failed");
        let truncated = st.active().log.truncate(position);
        if let Err(te) = truncated {
            tracing::error!(topic = %self.id.topic, partition = self.id.partition, error = %te, "cannot undo a partial append; log offline");
            st.offline = Some(format!("append failed ({e}) and rollback failed ({te})"));
        }
    }

    /// Kafka's LogSegment.shouldRoll: size, age (segment.ms from the first batch's timestamp,
    /// or creation time when it has none), full indexes, or offsets beyond u32 relative range.
    fn should_roll(
        &self,
        st: &LogState,
        config: &LogConfig,
        len: u64,
        max_timestamp: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> bool {
        let seg = st.active();
        if seg.is_empty() {
            return false;
        }
        let too_big = seg.size + len > config.segment_bytes || seg.size + len > u64::from(u32::MAX);
        let waited_ms = match seg.first_batch_timestamp {
            Some(first) if first >= 0 => max_timestamp - first,
            _ => now_ms - seg.created_ms,
        };
        too_big
            || waited_ms > config.segment_ms
            || seg.offset_index.is_full()
            || seg.time_index.is_full()
            || !seg.can_hold_offset(last_offset)
    }

    /// Closes the active segment (its indexes are written now and synced by the next flush)
    /// and starts a new one at the log end offset.
    fn roll(&self, st: &mut LogState, config: &LogConfig, now_ms: i64) -> Result<()> {
        let new_base = st.log_end_offset;
        let dir = self.dir.clone();
        st.active_mut().write_indexes(self.disk.as_ref(), &dir)?;
        let (log_path, _, _) = segment_paths(&dir, new_base);
        let log = self.disk.open(&log_path, true)?;
        if log.len()? > 0 {
            // A leftover from before a recovery truncation: the new segment starts empty.
            log.truncate(0)?;
        }
        let old_base = st.active().base_offset;
        let (old_log, old_index, old_time_index) = segment_paths(&dir, old_base);
        for path in [old_log, old_index, old_time_index] {
            let file = self.disk.open(&path, false)?;
            st.pending_file_syncs.push(file);
        }
        st.pending_dir_syncs.insert(dir);
        // Producer state as of the new segment's base, so recovery replays one segment only
        // (Kafka snapshots on roll too).
        self.write_producer_snapshot(st, new_base)?;
        st.segments.push(Segment::new(
            new_base,
            log,
            config.segment_index_bytes,
            now_ms,
        ));
        tracing::debug!(topic = %self.id.topic, partition = self.id.partition, new_base, "rolled segment");
        Ok(())
    }

    /// Makes every offset up to and including `offset` durable (capped at the log end).
    /// Returns at once when it already is. Otherwise at most one fsync per partition runs at a
    /// time and it covers every append made before it started, so concurrent callers share it
    /// (group commit).
    pub async fn flush_to(&self, offset: i64) -> Result<()> {
        self.sync_until(offset.saturating_add(1), false).await
    }

    /// Whether files or directories wait for their first fsync.
    fn has_pending_syncs(&self) -> bool {
        let st = lock(&self.state);
        !st.pending_file_syncs.is_empty() || !st.pending_dir_syncs.is_empty()
    }

    /// Syncs so that every offset below `end_offset` is durable; `even_if_flushed` also syncs
    /// pending files and directories when no offset needs it (shutdown, new partitions).
    async fn sync_until(&self, end_offset: i64, even_if_flushed: bool) -> Result<()> {
        let covered = || {
            self.flushed_offset() >= end_offset && !(even_if_flushed && self.has_pending_syncs())
        };
        if covered() {
            return Ok(());
        }
        let _one_fsync_at_a_time = self.flush_lock.lock().await;
        if covered() {
            return Ok(());
        }
        let (target, files, dirs) = {
            let mut st = lock(&self.state);
            st.check_online()?;
            let mut files = std::mem::take(&mut st.pending_file_syncs);
            files.push(Arc::clone(&st.active().log));
            let dirs = std::mem::take(&mut st.pending_dir_syncs);
            (st.log_end_offset, files, dirs)
        };
        for file in files {
            let synced = file.sync().await;
            self.after_fsync(synced)?;
        }
        for dir in dirs {
            let synced = self.disk.sync_dir(&dir).await;
            self.after_fsync(synced)?;
        }
        let mut st = lock(&self.state);
        st.last_flush_ms = self.clock.wall_ms();
        self.flushed_offset.fetch_max(target, Ordering::SeqCst);
        Ok(())
    }

    /// Counts an fsync; a failed one takes the log offline: after a failed fsync the kernel may
    /// have dropped the dirty pages, so retrying could report success for lost data.
    fn after_fsync(&self, synced: std::io::Result<()>) -> Result<()> {
        match synced {
            Ok(()) => {
                self.metrics.log_fsyncs_total.inc();
                Ok(())
            }
            Err(e) => {
                tracing::error!(topic = %self.id.topic, partition = self.id.partition, error = %e, "fsync failed; log offline");
                lock(&self.state).offline = Some(format!("fsync failed: {e}"));
                Err(Error::Storage(e))
            }
        }
    }

    /// Flushes everything appended so far, and files not yet synced (clean shutdown, tests).
    pub async fn flush(&self) -> Result<()> {
        let end = self.log_end_offset();
        self.sync_until(end, true).await
    }

    /// Clean shutdown: flushes everything, then writes and syncs the active segment's index
    /// files so that the next open need not rescan it (with the log dir's clean-shutdown
    /// marker, which `LogManager::flush_all` writes after this).
    pub async fn checkpoint(&self) -> Result<()> {
        self.flush().await?;
        let files = {
            let mut st = lock(&self.state);
            st.check_online()?;
            let end = st.log_end_offset;
            self.write_producer_snapshot(&mut st, end)?;
            let active = st.active();
            active.write_index_snapshot(self.disk.as_ref(), &self.dir)?;
            let (_, index_path, time_index_path) = segment_paths(&self.dir, active.base_offset);
            [
                self.disk.open(&index_path, false)?,
                self.disk.open(&time_index_path, false)?,
            ]
        };
        for file in files {
            let synced = file.sync().await;
            self.after_fsync(synced)?;
        }
        let synced = self.disk.sync_dir(&self.dir).await;
        self.after_fsync(synced)
    }

    /// `flush.ms`: flushes when the last flush is older than the interval and something is
    /// unflushed. The broker calls this from a timer.
    pub async fn flush_if_due(&self, now_ms: i64) -> Result<()> {
        let due = {
            let st = lock(&self.state);
            let interval = st.config.flush_interval_ms;
            interval.is_some_and(|ms| now_ms - st.last_flush_ms >= ms)
                && self.flushed_offset() < st.log_end_offset
        };
        if due {
            self.flush().await?;
        }
        Ok(())
    }

    /// Kafka's retention pass: deletes whole non-active segments whose records are all older
    /// than `retention.ms`, the oldest ones while the log is over `retention.bytes`, and those
    /// wholly below the log start offset (DeleteRecords). The log start offset moves to the
    /// first remaining segment. Returns how many segments were deleted.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize> {
        let removed: Vec<Segment> = {
            let mut st = lock(&self.state);
            st.check_online()?;
            let config = st.config.clone();
            let mut remaining_bytes: u64 = st.segments.iter().map(|s| s.size).sum();
            let mut n = 0;
            while n + 1 < st.segments.len() {
                let seg = &st.segments[n];
                let newest_ms = if seg.max_timestamp >= 0 {
                    seg.max_timestamp
                } else {
                    seg.created_ms
                };
                // Time and size retention belong to cleanup.policy=delete (Kafka's
                // deleteOldSegments); a compact-only log loses segments only below its start.
                let expired = config.cleanup_delete
                    && config.retention_ms >= 0
                    && now_ms - newest_ms > config.retention_ms;
                let over_size = config.cleanup_delete
                    && u64::try_from(config.retention_bytes)
                        .is_ok_and(|limit| remaining_bytes - seg.size >= limit);
                let below_start = seg.next_offset <= st.log_start_offset;
                if !(expired || over_size || below_start) {
                    break;
                }
                // Kafka deletes only what every in-sync replica has (deleteOldSegments stops at
                // the high watermark), so retention never removes unreplicated records.
                if st.segments[n + 1].base_offset > st.high_watermark && !below_start {
                    break;
                }
                remaining_bytes -= seg.size;
                n += 1;
            }
            let removed: Vec<Segment> = st.segments.drain(..n).collect();
            st.log_start_offset = st.log_start_offset.max(st.active_first_base());
            st.high_watermark = st.high_watermark.max(st.log_start_offset);
            if n > 0 {
                st.pending_dir_syncs.insert(self.dir.clone());
            }
            let start = st.log_start_offset;
            if st.leader_epochs.truncate_from_start(start) {
                self.write_leader_epochs(&mut st)?;
            }
            removed
        };
        for seg in &removed {
            let (log, index, time_index) = segment_paths(&self.dir, seg.base_offset);
            for path in [log, index, time_index] {
                if self.disk.exists(&path) {
                    self.disk.remove_file(&path)?;
                }
            }
            tracing::info!(topic = %self.id.topic, partition = self.id.partition,
                segment = seg.base_offset, "deleted segment by retention");
        }
        Ok(removed.len())
    }

    /// What the log cleaner works from, taken under the lock: the config, the log start
    /// offset, read-only copies of the non-active segments (oldest first), the active
    /// segment's base, and each producer's last batch offset.
    pub(crate) fn cleaner_view(&self) -> CleanerView {
        let st = lock(&self.state);
        let n = st.segments.len();
        let segments = st.segments[..n.saturating_sub(1)]
            .iter()
            .map(|s| Segment {
                size: s.size,
                next_offset: s.next_offset,
                max_timestamp: s.max_timestamp,
                first_batch_timestamp: s.first_batch_timestamp,
                ..Segment::new(s.base_offset, Arc::clone(&s.log), 1, s.created_ms)
            })
            .collect();
        CleanerView {
            config: st.config.clone(),
            log_start_offset: st.log_start_offset,
            active_base_offset: st
                .segments
                .last()
                .map_or(st.log_end_offset, |s| s.base_offset),
            segments,
            producer_last_offsets: st.producers.last_batch_offsets(),
            online: st.offline.is_none(),
        }
    }

    /// Swaps the log cleaner's copy (synced, at `cleaned_path`, scanned into `segment`) in
    /// for the adjacent non-active segments `old` (base offset and the file each still has),
    /// under the partition lock, so readers and writers wait no longer than that. Readers
    /// holding an old file keep reading it. Returns false, changing nothing, when one of
    /// them is gone or changed meanwhile (retention, truncation, deletion); the caller then
    /// discards the copy. The directory sync that makes the swap durable is the caller's.
    ///
    /// One segment: one atomic rename over its `.log`. Several (Kafka's replaceSegments): the
    /// copy is renamed to `<base>.log.swap` and the directory synced before any old segment
    /// goes, so that a crash from then on finds the swap and completes it at open
    /// (`cleaner::remove_leftovers`); then the others are deleted and the swap renamed over
    /// the first, with a second directory sync between the removals and that rename. Both
    /// syncs are taken under the lock, as Kafka flushes the directory under the log's lock:
    /// the swap must never be durable for segments already changed.
    pub(crate) fn replace_segments(
        &self,
        old: &[(i64, Arc<dyn DiskFile>)],
        cleaned_path: &Path,
        mut segment: Segment,
    ) -> Result<bool> {
        let mut st = lock(&self.state);
        let base = segment.base_offset;
        let n = st.segments.len();
        let Some(i) = st.segments.iter().position(|s| s.base_offset == base) else {
            return Ok(false);
        };
        let k = old.len();
        let same = |(j, (b, log)): (usize, &(i64, Arc<dyn DiskFile>))| {
            st.segments
                .get(i + j)
                .is_some_and(|s| s.base_offset == *b && Arc::ptr_eq(&s.log, log))
        };
        if st.offline.is_some() || k == 0 || i + k >= n || !old.iter().enumerate().all(same) {
            return Ok(false);
        }
        let (log_path, index_path, time_index_path) = segment_paths(&self.dir, base);
        if k == 1 {
            // Index files of the old bytes must not outlive them: recovery rebuilds them.
            remove_index_files(self.disk.as_ref(), &self.dir, base)?;
            self.disk.rename(cleaned_path, &log_path)?;
        } else {
            let swap_path = PathBuf::from(format!(
                "{}{}",
                log_path.display(),
                crate::log::cleaner::SWAP_FILE_SUFFIX
            ));
            self.disk.rename(cleaned_path, &swap_path)?;
            if let Err(e) = self.disk.sync_dir_blocking(&self.dir) {
                // Not committed: put the copy back where the cleaner discards it.
                let _ = self.disk.rename(&swap_path, cleaned_path);
                return Err(e.into());
            }
            for (b, _) in &old[1..] {
                let (other_log, _, _) = segment_paths(&self.dir, *b);
                self.disk.remove_file(&other_log)?;
                remove_index_files(self.disk.as_ref(), &self.dir, *b)?;
            }
            remove_index_files(self.disk.as_ref(), &self.dir, base)?;
            // The removals are durable before the rename: a file system free to reorder
            // directory updates must never keep the merged `.log` next to old segments it
            // covers (with the swap still there, the next open completes it).
            self.disk.sync_dir_blocking(&self.dir)?;
            self.disk.rename(&swap_path, &log_path)?;
        }
        segment.created_ms = st.segments[i].created_ms;
        st.segments.splice(i..i + k, std::iter::once(segment));
        st.pending_dir_syncs.insert(self.dir.clone());
        st.segments[i].write_indexes(self.disk.as_ref(), &self.dir)?;
        for path in [index_path, time_index_path] {
            let file = self.disk.open(&path, false)?;
            st.pending_file_syncs.push(file);
        }
        Ok(true)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1 = the high watermark).
    /// Returns the new log start offset (the low watermark). Held in memory here; the caller
    /// (`LogManager::delete_records`) checkpoints it, and segments wholly below it go at the
    /// next retention pass.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        let mut st = lock(&self.state);
        let high_watermark = st.high_watermark;
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start_offset: st.log_start_offset,
                log_end_offset: high_watermark,
            });
        }
        st.log_start_offset = st.log_start_offset.max(target);
        let start = st.log_start_offset;
        if st.leader_epochs.truncate_from_start(start) {
            self.write_leader_epochs(&mut st)?;
        }
        Ok(st.log_start_offset)
    }

    /// OffsetForLeaderEpoch (KIP-101, KIP-320): (epoch, end offset) of `requested` as Kafka's
    /// LeaderEpochFileCache.endOffsetFor answers it; (-1, -1) when unknown. A leader has its
    /// current epoch in the cache even before it wrote a batch in it (Kafka assigns it on
    /// becoming leader), so `current_leader_epoch` is assigned at the log end first.
    pub fn end_offset_for_epoch(
        &self,
        requested: i32,
        current_leader_epoch: i32,
    ) -> Result<(i32, i64)> {
        let mut st = lock(&self.state);
        let end = st.log_end_offset;
        if st.leader_epochs.assign(current_leader_epoch, end) {
            self.write_leader_epochs(&mut st)?;
        }
        Ok(st.leader_epochs.end_offset_for(requested, end))
    }

    /// Notes the epoch of each appended batch; a new epoch rewrites the checkpoint.
    fn record_leader_epochs(&self, st: &mut LogState, headers: &[BatchHeader]) -> Result<()> {
        let mut changed = false;
        for h in headers {
            changed |= st
                .leader_epochs
                .assign(h.partition_leader_epoch, h.base_offset);
        }
        if changed {
            self.write_leader_epochs(st)?;
        }
        Ok(())
    }

    /// Rewrites `leader-epoch-checkpoint` and queues it for the next fsync, with the batches
    /// it describes.
    fn write_leader_epochs(&self, st: &mut LogState) -> Result<()> {
        st.leader_epochs.write(self.disk.as_ref(), &self.dir)?;
        let path = self.dir.join(LEADER_EPOCH_CHECKPOINT);
        st.pending_file_syncs.push(self.disk.open(&path, false)?);
        st.pending_dir_syncs.insert(self.dir.clone());
        Ok(())
    }

    /// At load: the log start offset from the log dir's `log-start-offset-checkpoint`, which
    /// can only be above the first segment's base (DeleteRecords). Capped at the log end: what
    /// a crash took from the tail cannot be below the start.
    pub fn restore_log_start_offset(&self, offset: i64) {
        let mut st = lock(&self.state);
        let restored = offset.min(st.log_end_offset);
        st.log_start_offset = st.log_start_offset.max(restored);
        let start = st.log_start_offset;
        st.high_watermark = st.high_watermark.max(start);
        st.leader_epochs.truncate_from_start(start);
    }

    /// A follower's truncation (Kafka's truncateTo): drops every batch from the one holding
    /// `offset` onwards; below the log start offset the log restarts empty at `offset`. The
    /// log end offset becomes the base of the first dropped batch. Blocking (rescans the
    /// segment that is cut); runs on leader changes only.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        self.truncate(offset, false)
    }

    /// Kafka's truncateFullyAndStartAt: drops the whole log and restarts it empty at `offset`,
    /// as a follower does when the leader's log starts past its own log end.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<()> {
        self.truncate(offset, true)
    }

    fn truncate(&self, offset: i64, fully: bool) -> Result<()> {
        let mut st = lock(&self.state);
        st.check_online()?;
        if offset >= st.log_end_offset && !fully {
            return Ok(());
        }
        let truncated = self.truncate_locked(&mut st, offset, fully);
        if let Err(e) = &truncated {
            // Files and state may now disagree: stop serving writes, as Kafka offlines the dir.
            tracing::error!(topic = %self.id.topic, partition = self.id.partition, error = %e,
                "truncation failed; log offline");
            st.offline = Some(format!("truncation to {offset} failed: {e}"));
        }
        truncated
    }

    fn truncate_locked(&self, st: &mut LogState, offset: i64, fully: bool) -> Result<()> {
        let now_ms = self.clock.wall_ms();
        let config = st.config.clone();
        let keep = if fully || offset < st.log_start_offset || offset <= st.segments[0].base_offset
        {
            0
        } else {
            st.segment_index_for(offset) + 1
        };
        let dropped: Vec<i64> = st.segments.drain(keep..).map(|s| s.base_offset).collect();
        let truncated = if keep > 0 {
            let seg = st.active_mut();
            let cut = seg
                .find_batch(offset, seg.size)?
                .map_or(seg.size, |(position, _)| position);
            seg.log.truncate(cut)?;
            remove_index_files(self.disk.as_ref(), &self.dir, seg.base_offset)?;
            let (reloaded, _) = Segment::load(
                self.disk.as_ref(),
                &self.dir,
                seg.base_offset,
                config.segment_index_bytes,
                config.index_interval_bytes,
                false,
                now_ms,
            )?;
            *seg = reloaded;
            true
        } else {
            false
        };
        delete_segments(self.disk.as_ref(), &self.dir, &dropped)?;
        if !truncated {
            // Nothing kept: start afresh at `offset`.
            let (log_path, _, _) = segment_paths(&self.dir, offset);
            let log = self.disk.open(&log_path, true)?;
            log.truncate(0)?;
            st.segments.push(Segment::new(
                offset,
                log,
                config.segment_index_bytes,
                now_ms,
            ));
            st.log_start_offset = offset;
            st.pending_dir_syncs.insert(self.dir.clone());
        }
        st.log_end_offset = st.active().next_offset;
        let end = st.log_end_offset;
        st.log_start_offset = st.log_start_offset.min(end);
        st.high_watermark = st.high_watermark.clamp(st.log_start_offset, end);
        st.producers.truncate_to(end);
        let mut epochs_changed = st.leader_epochs.truncate_from_end(end);
        if fully {
            epochs_changed |= st.leader_epochs.truncate_from_start(end);
        }
        if epochs_changed {
            self.write_leader_epochs(st)?;
        }
        remove_snapshots(self.disk.as_ref(), &self.dir, |offset| offset > end)?;
        self.flushed_offset.fetch_min(end, Ordering::SeqCst);
        // The cut file must reach the disk before anything appended after it.
        let active = Arc::clone(&st.active().log);
        st.pending_file_syncs.push(active);
        tracing::info!(topic = %self.id.topic, partition = self.id.partition, offset,
            log_end_offset = end, "truncated log");
        Ok(())
    }

    /// Writes the producer state snapshot for `offset` (the state covers the log below it),
    /// queues it for the next fsync, and keeps only the two newest snapshots.
    fn write_producer_snapshot(&self, st: &mut LogState, offset: i64) -> Result<()> {
        let path = self.dir.join(snapshot_file_name(offset));
        self.disk.write_file(&path, &st.producers.to_snapshot())?;
        st.pending_file_syncs.push(self.disk.open(&path, false)?);
        st.pending_dir_syncs.insert(self.dir.clone());
        let mut offsets = snapshot_offsets(self.disk.as_ref(), &self.dir)?;
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let keep_from = offsets.get(1).copied().unwrap_or(i64::MIN);
        remove_snapshots(self.disk.as_ref(), &self.dir, |o| o < keep_from)
    }

    /// `producer.id.expiration.ms` (KIP-854): forgets producers idle that long. The broker
    /// calls this every `producer.id.expiration.check.interval.ms`. Returns how many went.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        let mut st = lock(&self.state);
        let expiration_ms = st.config.producer_id_expiration_ms;
        st.producers.expire(now_ms, expiration_ms)
    }

    /// The state this partition keeps for `producer_id` (tests, DescribeProducers later).
    pub fn producer_state(&self, producer_id: i64) -> Option<ProducerStateEntry> {
        lock(&self.state).producers.get(producer_id).cloned()
    }

    /// How many producer ids this partition keeps state for.
    pub fn producer_count(&self) -> usize {
        lock(&self.state).producers.len()
    }

    /// Stored batches from the one holding `fetch_offset`, whole, in order, from one segment,
    /// stopping before any batch at or past `max_offset_exclusive` (the high watermark) and
    /// within `max_bytes`, except that with `min_one_batch` the first batch is returned even
    /// when larger (KIP-74). OffsetOutOfRange outside [log start, log end].
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset_exclusive: i64,
    ) -> Result<Bytes> {
        // Normally one segment holds the offset; after an offset gap (left by compaction or a
        // leader's log) the next batch may be in a later one. Segments are named by base offset
        // so that a concurrent retention pass cannot shift what is read.
        let mut after_base: Option<i64> = None;
        let (probe, position, first) = loop {
            let view = {
                let st = lock(&self.state);
                if fetch_offset < st.log_start_offset || fetch_offset > st.log_end_offset {
                    return Err(Error::OffsetOutOfRange {
                        offset: fetch_offset,
                        log_start_offset: st.log_start_offset,
                        log_end_offset: st.log_end_offset,
                    });
                }
                if fetch_offset >= st.log_end_offset || fetch_offset >= max_offset_exclusive {
                    return Ok(Bytes::new());
                }
                let seg = match after_base {
                    None => st.segments.get(st.segment_index_for(fetch_offset)),
                    Some(base) => st.segments.iter().find(|s| s.base_offset > base),
                };
                seg.map(|seg| {
                    let start = seg.offset_index.lookup(seg.relative(fetch_offset));
                    (probe_of(seg), u64::from(start))
                })
            };
            let Some((probe, start)) = view else {
                return Ok(Bytes::new());
            };
            match probe.scan_headers(start, probe.size, |h| h.last_offset() >= fetch_offset)? {
                Some((position, first)) => break (probe, position, first),
                None => after_base = Some(probe.base_offset),
            }
        };
        let size = probe.size;
        if first.base_offset >= max_offset_exclusive {
            return Ok(Bytes::new());
        }
        let first_size = first.size_bytes();
        let want = if first_size > max_bytes {
            if !min_one_batch {
                return Ok(Bytes::new());
            }
            first_size
        } else {
            max_bytes
        };
        let len =
            usize::try_from((size - position).min(want as u64)).map_err(std::io::Error::other)?;
        let mut buf = BytesMut::zeroed(len);
        probe.log.read_at(position, &mut buf)?;
        let keep = whole_batches_below(&buf, max_offset_exclusive);
        let mut rest_taken = keep == len && position + len as u64 == size;
        buf.truncate(keep);
        // Fill the rest of `max_bytes` from the following segments. A compacted segment may be
        // left with one empty batch, and librdkafka does not move past a response holding only
        // empty batches (it grows its fetch size instead), so never stop at one.
        let mut base = probe.base_offset;
        while rest_taken && buf.len() + crate::protocol::record_batch::BATCH_HEADER_LEN <= want {
            let next = {
                let st = lock(&self.state);
                st.segments
                    .iter()
                    .find(|s| s.base_offset > base)
                    .map(probe_of)
            };
            let Some(seg) = next else {
                break;
            };
            base = seg.base_offset;
            let n = usize::try_from(seg.size.min((want - buf.len()) as u64))
                .map_err(std::io::Error::other)?;
            let mut more = vec![0u8; n];
            seg.log.read_at(0, &mut more)?;
            let keep = whole_batches_below(&more, max_offset_exclusive);
            rest_taken = keep == n && n as u64 == seg.size;
            buf.extend_from_slice(&more[..keep]);
        }
        Ok(buf.freeze())
    }

    /// ListOffsets by timestamp: the earliest offset whose record timestamp is >= `timestamp`,
    /// with that record's timestamp and its batch's leader epoch; None when no record is that
    /// recent. The time index narrows the search to a segment position; the one batch found is
    /// decompressed to pick the exact record.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64, i32)>> {
        let (max, candidates): (usize, Vec<(Segment, u64, i64)>) = {
            let st = lock(&self.state);
            let max = st.config.decompressed_batch_max_bytes;
            let candidates = st
                .segments
                .iter()
                .filter(|s| s.max_timestamp >= timestamp)
                .map(|s| {
                    let start = match s.time_index.lookup(timestamp) {
                        Some((_, rel)) => s.offset_index.lookup(rel),
                        None => 0,
                    };
                    (probe_of(s), u64::from(start), st.log_start_offset)
                })
                .collect();
            (max, candidates)
        };
        for (seg, start, log_start_offset) in candidates {
            let found = seg.scan_headers(start, seg.size, |h| {
                h.max_timestamp >= timestamp && h.last_offset() >= log_start_offset
            })?;
            let Some((position, header)) = found else {
                continue;
            };
            let hit = first_record_at_or_after(&seg, position, &header, max, |offset, ts| {
                offset >= log_start_offset && ts >= timestamp
            })?;
            if hit.is_some() {
                return Ok(hit);
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (-3, KIP-734): the offset of the first record carrying the
    /// largest timestamp in the log, with that timestamp and its leader epoch.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64, i32)>> {
        let (max, found) = {
            let st = lock(&self.state);
            let max = st.config.decompressed_batch_max_bytes;
            let mut best: Option<&Segment> = None;
            for s in &st.segments {
                if s.max_timestamp >= 0 && best.is_none_or(|b| s.max_timestamp > b.max_timestamp) {
                    best = Some(s);
                }
            }
            let found = best.map(|s| {
                let start = s.offset_index.lookup(s.relative(s.offset_of_max_timestamp));
                (probe_of(s), u64::from(start), s.max_timestamp)
            });
            (max, found)
        };
        let Some((seg, start, max_timestamp)) = found else {
            return Ok(None);
        };
        let Some((position, header)) =
            seg.scan_headers(start, seg.size, |h| h.max_timestamp == max_timestamp)?
        else {
            return Ok(None);
        };
        first_record_at_or_after(&seg, position, &header, max, |_, ts| ts == max_timestamp)
    }
}

/// A partition as the log cleaner sees it (see [`PartitionLog::cleaner_view`]).
#[derive(Debug)]
pub(crate) struct CleanerView {
    pub config: LogConfig,
    pub log_start_offset: i64,
    pub active_base_offset: i64,
    /// Non-active segments, oldest first: copies sharing the file handle.
    pub segments: Vec<Segment>,
    pub producer_last_offsets: std::collections::BTreeMap<i64, i64>,
    pub online: bool,
}

/// Headers of complete v2 batches covering all of `records`; CorruptMessage otherwise.
fn check_framing(records: &[u8]) -> Result<Vec<BatchHeader>> {
    let mut iter = BatchIter::new(records, false);
    let headers: Vec<BatchHeader> = iter.by_ref().map(|(_, h, _)| h).collect();
    let complete = matches!(iter.stopped(), Some(BatchIterStop::End));
    if !complete || headers.is_empty() || headers.iter().any(|h| h.last_offset_delta < 0) {
        return Err(Error::CorruptMessage(
            "records are not a sequence of complete record batches".into(),
        ));
    }
    Ok(headers)
}

/// Length of the leading whole batches of `buf` that start below `max_offset_exclusive` (the
/// high watermark).
fn whole_batches_below(buf: &[u8], max_offset_exclusive: i64) -> usize {
    let mut keep = 0;
    for (at, header, batch) in BatchIter::new(buf, false) {
        if header.base_offset >= max_offset_exclusive {
            break;
        }
        keep = at + batch.len();
    }
    keep
}

/// A read-only copy of what a reader needs from a segment, taken under the lock.
fn probe_of(s: &Segment) -> Segment {
    Segment {
        size: s.size,
        next_offset: s.next_offset,
        ..Segment::new(s.base_offset, Arc::clone(&s.log), 1, 0)
    }
}

/// Decodes the batch at `position` and returns the first record matching `pred(offset, ts)`.
/// LogAppendTime batches need no decoding: every record's timestamp is the batch max. A
/// batch whose records would decompress past `decompressed_max`
/// (`sluice.decompressed.batch.max.bytes`) is not decoded either: it is answered as Kafka's
/// time index answers, with the batch's max timestamp and its first offset the predicate
/// accepts, which is never later than the exact record, so a consumer seeking there misses
/// nothing.
fn first_record_at_or_after(
    seg: &Segment,
    position: u64,
    header: &BatchHeader,
    decompressed_max: usize,
    pred: impl Fn(i64, i64) -> bool,
) -> Result<Option<(i64, i64, i32)>> {
    let by_header = || {
        let offset =
            (header.base_offset..=header.last_offset()).find(|&o| pred(o, header.max_timestamp));
        Ok(offset.map(|o| (o, header.max_timestamp, header.partition_leader_epoch)))
    };
    if header.is_log_append_time() {
        return by_header();
    }
    let mut buf = vec![0u8; header.size_bytes()];
    seg.log.read_at(position, &mut buf)?;
    let codec = Codec::from_id(header.compression_codec()).ok_or_else(|| {
        Error::CorruptMessage(format!(
            "stored batch has unknown codec {}",
            header.compression_codec()
        ))
    })?;
    let Some(records) = decompress_within(
        codec,
        &buf[crate::protocol::record_batch::BATCH_HEADER_LEN..],
        decompressed_max,
    )?
    else {
        tracing::debug!(
            base_offset = header.base_offset,
            "ListOffsets answered from the header of a batch over the decompression bound"
        );
        return by_header();
    };
    Ok(record_offsets_and_timestamps(&records, header)?
        .into_iter()
        .find(|&(offset, ts)| pred(offset, ts))
        .map(|(offset, ts)| (offset, ts, header.partition_leader_epoch)))
}

/// Base offsets of the `.log` files in `dir`, sorted.
fn segment_bases(disk: &dyn Disk, dir: &Path) -> Result<Vec<i64>> {
    let mut bases: Vec<i64> = disk
        .list_dir(dir)?
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| {
            let stem = e.name.strip_suffix(".log")?;
            (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
                .then(|| stem.parse::<i64>().ok())
                .flatten()
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Offsets of the producer state snapshots in `dir`.
fn snapshot_offsets(disk: &dyn Disk, dir: &Path) -> Result<Vec<i64>> {
    Ok(disk
        .list_dir(dir)?
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| snapshot_offset(&e.name))
        .collect())
}

/// Removes the snapshots whose offset matches `pred`.
fn remove_snapshots(disk: &dyn Disk, dir: &Path, pred: impl Fn(i64) -> bool) -> Result<()> {
    for offset in snapshot_offsets(disk, dir)? {
        if pred(offset) {
            disk.remove_file(&dir.join(snapshot_file_name(offset)))?;
        }
    }
    Ok(())
}

/// Rebuilds producer state at open: the newest readable snapshot at or below the log end
/// (snapshots past it describe data recovery cut off, and go), then the batch headers of the
/// log from the snapshot's offset on (no decompression: producer id, epoch, sequence and
/// offsets are all in the 61-byte header). Without a snapshot the whole log is scanned.
/// The leader epoch cache at open: the checkpoint, cut at the recovered log end (a crash can
/// take batches the checkpoint already counted), or, when the file is missing or unreadable,
/// rebuilt from the batch headers. Returns whether it differs from the file.
fn load_leader_epochs(
    disk: &dyn Disk,
    dir: &Path,
    segments: &[Segment],
) -> Result<(LeaderEpochCache, bool)> {
    let log_end = segments.last().map_or(0, |s| s.next_offset);
    if let Some(mut cache) = LeaderEpochCache::read(disk, dir) {
        let cut = cache.truncate_from_end(log_end);
        return Ok((cache, cut));
    }
    let mut cache = LeaderEpochCache::default();
    for seg in segments {
        seg.scan_headers(0, seg.size, |h| {
            cache.assign(h.partition_leader_epoch, h.base_offset);
            false
        })?;
    }
    let changed = cache.latest_epoch().is_some();
    Ok((cache, changed))
}

fn load_producer_state(
    id: &PartitionId,
    disk: &dyn Disk,
    dir: &Path,
    segments: &[Segment],
    config: &LogConfig,
) -> Result<ProducerStateManager> {
    let log_end = segments.last().map_or(0, |s| s.next_offset);
    let mut offsets = snapshot_offsets(disk, dir)?;
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    let mut loaded: Option<(i64, ProducerStateManager)> = None;
    for offset in offsets {
        let path = dir.join(snapshot_file_name(offset));
        if offset > log_end {
            disk.remove_file(&path)?;
            continue;
        }
        if loaded.is_some() {
            continue;
        }
        let parsed = disk
            .read_file(&path)
            .map_err(Error::from)
            .and_then(|bytes| ProducerStateManager::from_snapshot(&bytes));
        match parsed {
            Ok(m) => loaded = Some((offset, m)),
            Err(e) => tracing::warn!(topic = %id.topic, partition = id.partition, offset,
                error = %e, "ignoring unreadable producer state snapshot"),
        }
    }
    let (from, mut producers) = loaded.unwrap_or((i64::MIN, ProducerStateManager::new()));
    for seg in segments.iter().filter(|s| s.next_offset > from) {
        let start = if from > seg.base_offset {
            seg.find_batch(from, seg.size)?.map_or(seg.size, |(p, _)| p)
        } else {
            0
        };
        seg.scan_headers(start, seg.size, |h| {
            producers.record_appended(std::slice::from_ref(h), config.producer_ids_max);
            false
        })?;
    }
    Ok(producers)
}

/// Loads every segment, truncating the log at the first torn or inconsistent point.
fn recover_segments(
    id: &PartitionId,
    disk: &dyn Disk,
    dir: &Path,
    bases: &[i64],
    config: &LogConfig,
    clean_shutdown: bool,
    now_ms: i64,
) -> Result<Vec<Segment>> {
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
    for (i, &base) in bases.iter().enumerate() {
        let is_last = i + 1 == bases.len();
        // A segment must start where the previous one ends; a gap means data of the previous
        // segment was lost, and keeping later data would break the prefix property.
        if let Some(prev) = segments.last() {
            if prev.next_offset != base {
                tracing::warn!(topic = %id.topic, partition = id.partition, segment = base,
                    expected = prev.next_offset, "segment does not follow its predecessor; dropping it and later segments");
                delete_segments(disk, dir, &bases[i..])?;
                break;
            }
        }
        // After a crash the active segment is scanned whole; after a clean shutdown its index
        // files (written and synced then) are as trustworthy as those of older segments.
        let (seg, end) = Segment::load(
            disk,
            dir,
            base,
            config.segment_index_bytes,
            config.index_interval_bytes,
            !is_last || clean_shutdown,
            now_ms,
        )?;
        let file_len = seg.log.len()?;
        if let Some(reason) = end.torn.as_ref().filter(|_| end.valid_bytes < file_len) {
            tracing::warn!(topic = %id.topic, partition = id.partition, segment = base,
                valid_bytes = end.valid_bytes, file_bytes = file_len, %reason,
                "truncating torn log tail");
            seg.log.truncate(end.valid_bytes)?;
            seg.log.sync_blocking()?;
            // The scan kept exactly the valid batches in memory; the index files on disk may
            // describe the cut bytes, so they go until the next roll writes them again.
            remove_index_files(disk, dir, base)?;
            // Later segments follow lost data: drop them.
            delete_segments(disk, dir, &bases[i + 1..])?;
            segments.push(seg);
            break;
        }
        segments.push(seg);
    }
    if segments.is_empty() {
        let (log_path, _, _) = segment_paths(dir, 0);
        let log = disk.open(&log_path, true)?;
        segments.push(Segment::new(0, log, config.segment_index_bytes, now_ms));
    }
    Ok(segments)
}

fn delete_segments(disk: &dyn Disk, dir: &Path, bases: &[i64]) -> Result<()> {
    for &base in bases {
        let (log, index, time_index) = segment_paths(dir, base);
        for path in [log, index, time_index] {
            if disk.exists(&path) {
                disk.remove_file(&path)?;
            }
        }
    }
    if !bases.is_empty() {
        disk.sync_dir_blocking(dir)?;
    }
    Ok(())
}

/// Reads just the header of the batch at `position` (tests and tools).
pub fn read_header_at(file: &dyn DiskFile, position: u64) -> Result<BatchHeader> {
    let mut buf = [0u8; crate::protocol::record_batch::BATCH_HEADER_LEN];
    file.read_at(position, &mut buf)?;
    parse_header(&buf)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::disk::{FsDisk, SimDisk};
    use crate::protocol::record_batch::tests::{batch_with, batch_with_timestamps};
    use crate::protocol::record_batch::{check_batch, validate_records};
    use kafka_protocol::records::Compression;
    use kafka_protocol::records::RecordBatchDecoder;
    use std::sync::atomic::AtomicI64;

    /// Wall clock the test sets; monotonic time is tokio's.
    #[derive(Debug)]
    pub(crate) struct TestClock(pub AtomicI64);

    impl Clock for TestClock {
        fn now(&self) -> tokio::time::Instant {
            tokio::time::Instant::now()
        }
        fn wall_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Validates as the Produce handler does, then appends.
    pub(crate) async fn append_checked(
        log: &PartitionLog,
        records: BytesMut,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        let validated = validate_records(&records, log.config().max_message_bytes)?;
        let info = log.append(records, &validated, leader_epoch).await?;
        // As a leader alone in its ISR: what it appended is committed.
        log.advance_high_watermark(info.last_offset + 1);
        Ok(info)
    }

    pub(crate) fn test_clock(ms: i64) -> Arc<TestClock> {
        Arc::new(TestClock(AtomicI64::new(ms)))
    }

    fn id() -> PartitionId {
        PartitionId {
            topic: "t".into(),
            partition: 0,
            topic_id: Uuid::from_u128(1),
        }
    }

    fn open_with(
        disk: Arc<dyn Disk>,
        dir: &Path,
        config: LogConfig,
        metrics: &Metrics,
    ) -> PartitionLog {
        PartitionLog::open(
            id(),
            dir.to_path_buf(),
            config,
            disk,
            test_clock(1_000),
            metrics.clone(),
            false,
        )
        .expect("open partition")
    }

    fn small_segments() -> LogConfig {
        LogConfig {
            segment_bytes: 2_000,
            index_interval_bytes: 300,
            ..LogConfig::default()
        }
    }

    /// Every record offset in `bytes`, decoding all batches.
    fn offsets_in(bytes: &Bytes) -> Vec<i64> {
        let mut b = bytes.clone();
        RecordBatchDecoder::decode_all(&mut b)
            .expect("decodes")
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset).collect::<Vec<_>>())
            .collect()
    }

    /// Reads the whole log batch by batch with `max_bytes` per read.
    fn read_all(log: &PartitionLog, max_bytes: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut next = log.log_start_offset();
        while next < log.log_end_offset() {
            let bytes = log
                .read(next, max_bytes, true, log.log_end_offset())
                .expect("read");
            let offsets = offsets_in(&bytes);
            let last = *offsets.last().expect("a read below the end returns data");
            out.extend(offsets.into_iter().filter(|&o| o >= next));
            next = last + 1;
        }
        out
    }

    async fn append_n(
        log: &PartitionLog,
        batches: usize,
        records: usize,
        ts0: i64,
    ) -> Vec<AppendInfo> {
        let mut infos = Vec::new();
        for i in 0..batches {
            let codec = [Compression::None, Compression::Lz4][i % 2];
            let b = batch_with(records, ts0 + i as i64, codec);
            infos.push(append_checked(log, b, 3).await.expect("append"));
        }
        infos
    }

    #[tokio::test]
    async fn append_then_read_round_trips_across_segment_rolls() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let metrics = Metrics::new();
        let log = open_with(disk, Path::new("/l/t-0"), small_segments(), &metrics);
        let infos = append_n(&log, 40, 3, 1_000).await;
        assert_eq!(infos[0].base_offset, 0);
        assert_eq!(infos[39].last_offset, 119);
        assert_eq!(log.log_end_offset(), 120);
        assert!(log.segment_count() > 3, "segments: {}", log.segment_count());
        assert_eq!(metrics.log_appended_batches_total.get(), 40);
        assert_eq!(read_all(&log, 1 << 20), (0..120).collect::<Vec<_>>());
        // A fetch in the middle of a batch returns that batch, epoch stamped.
        let bytes = log.read(58, 1 << 20, true, 120).expect("read");
        let h = check_batch(&bytes).expect("whole batch with valid crc");
        assert_eq!((h.base_offset, h.partition_leader_epoch), (57, 3));
    }

    #[tokio::test]
    async fn read_honours_max_bytes_and_returns_first_batch_when_larger_kip_74() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let log = open_with(
            disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        for i in 0..5 {
            let b = batch_with(4, 1_000 + i, Compression::None);
            append_checked(&log, b, 0).await.expect("append");
        }
        let one = log.read(0, 1 << 20, true, 20).expect("read");
        let first_len = check_batch(&one).expect("batch").size_bytes();
        let tiny = log.read(0, 10, true, 20).expect("read");
        assert_eq!(
            tiny.len(),
            first_len,
            "min_one_batch returns the whole first batch"
        );
        assert!(log.read(0, 10, false, 20).expect("read").is_empty());
        let two = log
            .read(0, 2 * first_len + first_len / 2, false, 20)
            .expect("read");
        assert_eq!(offsets_in(&two), (0..8).collect::<Vec<_>>());
        // The high watermark cuts whole batches.
        let below_hw = log.read(0, 1 << 20, true, 8).expect("read");
        assert_eq!(offsets_in(&below_hw), (0..8).collect::<Vec<_>>());
        assert!(log.read(8, 1 << 20, true, 8).expect("read").is_empty());
    }

    #[tokio::test]
    async fn read_outside_log_is_offset_out_of_range_and_at_end_is_empty() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let log = open_with(
            disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        append_n(&log, 2, 2, 1_000).await;
        assert!(matches!(
            log.read(5, 100, true, 4),
            Err(Error::OffsetOutOfRange {
                offset: 5,
                log_start_offset: 0,
                log_end_offset: 4
            })
        ));
        assert!(matches!(
            log.read(-1, 100, true, 4),
            Err(Error::OffsetOutOfRange { .. })
        ));
        assert!(log.read(4, 100, true, 4).expect("at end").is_empty());
    }

    #[tokio::test]
    async fn torn_tail_is_truncated_at_open_and_appends_continue() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let disk: Arc<dyn Disk> = Arc::new(FsDisk);
        let metrics = Metrics::new();
        {
            let log = open_with(Arc::clone(&disk), &dir, small_segments(), &metrics);
            append_n(&log, 30, 3, 1_000).await;
            log.flush().await.expect("flush");
        }
        let bases = segment_bases(disk.as_ref(), &dir).expect("list");
        let (active, _, _) = segment_paths(&dir, *bases.last().expect("segments"));
        let half = batch_with(3, 5, Compression::None);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&active)
            .expect("open");
        std::io::Write::write_all(&mut f, &half[..half.len() / 2]).expect("tear");
        drop(f);
        let log = open_with(Arc::clone(&disk), &dir, small_segments(), &metrics);
        assert_eq!(log.log_end_offset(), 90);
        assert_eq!(read_all(&log, 1 << 20), (0..90).collect::<Vec<_>>());
        let info = append_checked(&log, batch_with(2, 9, Compression::Zstd), 4)
            .await
            .expect("append");
        assert_eq!(info.base_offset, 90);
        drop(log);
        // Garbage (not even a header) is cut the same way.
        let bases = segment_bases(disk.as_ref(), &dir).expect("list");
        let (active, _, _) = segment_paths(&dir, *bases.last().expect("segments"));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&active)
            .expect("open");
        std::io::Write::write_all(&mut f, &[0xAB; 100]).expect("garbage");
        drop(f);
        let log = open_with(disk, &dir, small_segments(), &metrics);
        assert_eq!(log.log_end_offset(), 92);
        assert_eq!(read_all(&log, 1 << 20), (0..92).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn missing_or_corrupt_index_files_are_rebuilt() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let disk: Arc<dyn Disk> = Arc::new(FsDisk);
        let metrics = Metrics::new();
        {
            let log = open_with(Arc::clone(&disk), &dir, small_segments(), &metrics);
            append_n(&log, 30, 3, 1_000).await;
        }
        let bases = segment_bases(disk.as_ref(), &dir).expect("list");
        assert!(bases.len() > 2);
        let (_, index0, time0) = segment_paths(&dir, bases[0]);
        let (_, index1, _) = segment_paths(&dir, bases[1]);
        std::fs::remove_file(&index0).expect("rm index");
        std::fs::remove_file(&time0).expect("rm timeindex");
        std::fs::write(&index1, [1u8, 2, 3]).expect("corrupt index");
        let log = open_with(disk, &dir, small_segments(), &metrics);
        assert_eq!(log.log_end_offset(), 90);
        assert_eq!(read_all(&log, 200), (0..90).collect::<Vec<_>>());
        // Batch 18 holds offsets 54..=56 with timestamps 1018..=1020.
        assert_eq!(
            log.offset_for_timestamp(1_000 + 20)
                .expect("ts")
                .map(|r| r.0),
            Some(56)
        );
    }

    #[tokio::test]
    async fn with_flush_per_message_every_acknowledged_append_survives_crash() {
        let sim = SimDisk::new();
        let disk: Arc<dyn Disk> = Arc::new(sim.clone());
        let config = LogConfig {
            flush_interval_messages: Some(1),
            ..small_segments()
        };
        let metrics = Metrics::new();
        let dir = Path::new("/l/t-0");
        let log = open_with(Arc::clone(&disk), dir, config.clone(), &metrics);
        let acked = append_n(&log, 25, 3, 1_000).await;
        let last = acked.last().expect("acked").last_offset;
        sim.crash();
        drop(log);
        let log = open_with(disk, dir, config, &metrics);
        assert_eq!(log.log_end_offset(), last + 1);
        assert_eq!(read_all(&log, 1 << 20), (0..=last).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn without_flush_unflushed_appends_are_lost_but_log_stays_consistent() {
        let sim = SimDisk::new();
        let disk: Arc<dyn Disk> = Arc::new(sim.clone());
        let metrics = Metrics::new();
        let dir = Path::new("/l/t-0");
        let log = open_with(Arc::clone(&disk), dir, small_segments(), &metrics);
        append_n(&log, 10, 3, 1_000).await;
        log.flush().await.expect("flush");
        append_n(&log, 15, 3, 2_000).await; // rolls at least once, never flushed
        assert!(log.log_end_offset() > 30);
        sim.crash();
        drop(log);
        let log = open_with(disk, dir, small_segments(), &metrics);
        assert_eq!(log.log_end_offset(), 30);
        assert_eq!(read_all(&log, 1 << 20), (0..30).collect::<Vec<_>>());
        let info = append_checked(&log, batch_with(1, 5, Compression::None), 0)
            .await
            .expect("append");
        assert_eq!(info.base_offset, 30);
    }

    #[tokio::test]
    async fn concurrent_appenders_share_fsyncs_group_commit() {
        let sim = SimDisk::new();
        sim.set_sync_delay(std::time::Duration::from_millis(5));
        let disk: Arc<dyn Disk> = Arc::new(sim.clone());
        let metrics = Metrics::new();
        let log = Arc::new(open_with(
            disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &metrics,
        ));
        const APPENDERS: usize = 64;
        let mut tasks = Vec::new();
        for i in 0..APPENDERS {
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(async move {
                let info = append_checked(&log, batch_with(2, i as i64, Compression::None), 0)
                    .await
                    .expect("append");
                log.flush_to(info.last_offset).await.expect("flush");
                info.last_offset
            }));
        }
        for t in tasks {
            let last = t.await.expect("task");
            assert!(log.flushed_offset() > last);
        }
        let fsyncs = metrics.log_fsyncs_total.get();
        assert!(fsyncs >= 1);
        assert!(fsyncs <= 8, "{APPENDERS} appenders needed {fsyncs} fsyncs");
        assert_eq!(log.flushed_offset(), 2 * APPENDERS as i64);
    }

    #[tokio::test]
    async fn failing_disk_returns_storage_error_and_acknowledges_nothing() {
        let sim = SimDisk::new();
        let disk: Arc<dyn Disk> = Arc::new(sim.clone());
        let log = open_with(
            disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        append_n(&log, 2, 2, 1_000).await;
        sim.fail_writes(true);
        let err = append_checked(&log, batch_with(3, 5, Compression::None), 0)
            .await
            .expect_err("disk full");
        assert!(matches!(err, Error::Storage(_)));
        assert_eq!(err.error_code(), 56);
        assert_eq!(log.log_end_offset(), 4);
        assert!(log
            .read(4, 1 << 20, true, i64::MAX)
            .expect("read")
            .is_empty());
        sim.fail_writes(false);
        let info = append_checked(&log, batch_with(3, 5, Compression::None), 0)
            .await
            .expect("retry");
        assert_eq!(info.base_offset, 4);
        assert_eq!(read_all(&log, 1 << 20), (0..7).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn failed_fsync_takes_the_log_offline() {
        let sim = SimDisk::new();
        let disk: Arc<dyn Disk> = Arc::new(sim.clone());
        let config = LogConfig {
            flush_interval_messages: Some(1),
            ..LogConfig::default()
        };
        let log = open_with(disk, Path::new("/l/t-0"), config, &Metrics::new());
        append_n(&log, 1, 2, 1_000).await;
        sim.fail_syncs(true);
        let err = append_checked(&log, batch_with(1, 5, Compression::None), 0).await;
        assert!(matches!(err, Err(Error::Storage(_))));
        sim.fail_syncs(false);
        let err = append_checked(&log, batch_with(1, 5, Compression::None), 0).await;
        assert!(
            matches!(err, Err(Error::Storage(_))),
            "offline after a failed fsync"
        );
    }

    #[tokio::test]
    async fn offset_for_timestamp_finds_exact_record_in_compressed_batches() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let config = LogConfig {
            segment_bytes: 1_500,
            index_interval_bytes: 100,
            ..LogConfig::default()
        };
        let log = open_with(disk, Path::new("/l/t-0"), config, &Metrics::new());
        let codecs = [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
            Compression::None,
        ];
        // Batch i holds offsets 3i..3i+2 with timestamps 100i+[20, 10, 30]: out of order inside.
        for i in 0..20i64 {
            let ts = [100 * i + 20, 100 * i + 10, 100 * i + 30];
            let b = batch_with_timestamps(&ts, codecs[i as usize % codecs.len()]);
            append_checked(&log, b, 7).await.expect("append");
        }
        assert!(log.segment_count() > 1);
        assert_eq!(log.offset_for_timestamp(0).expect("ts"), Some((0, 20, 7)));
        // 515: batch 5 has [520, 510, 530]; the earliest offset with ts >= 515 is 15 (520).
        assert_eq!(
            log.offset_for_timestamp(515).expect("ts"),
            Some((15, 520, 7))
        );
        // 521: offset 15 (520) and 16 (510) are older; 17 (530) is the first.
        assert_eq!(
            log.offset_for_timestamp(521).expect("ts"),
            Some((17, 530, 7))
        );
        assert_eq!(
            log.offset_for_timestamp(1_235).expect("ts"),
            Some((39, 1_320, 7))
        );
        assert_eq!(log.offset_for_timestamp(1_931).expect("ts"), None);
        assert_eq!(
            log.max_timestamp_offset().expect("max"),
            Some((59, 1_930, 7))
        );
    }

    #[tokio::test]
    async fn offset_for_timestamp_answers_a_batch_over_the_decompression_bound_by_its_header() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let config = LogConfig {
            segment_bytes: 1_500,
            index_interval_bytes: 100,
            decompressed_batch_max_bytes: 8,
            ..LogConfig::default()
        };
        let log = open_with(disk, Path::new("/l/t-0"), config, &Metrics::new());
        for i in 0..4i64 {
            let codec = if i % 2 == 0 {
                Compression::Zstd
            } else {
                Compression::None
            };
            let b = batch_with_timestamps(&[100 * i + 20, 100 * i + 10, 100 * i + 30], codec);
            append_checked(&log, b, 7).await.expect("append");
        }
        // Batch 2 (zstd, offsets 6..8, max 230) is over the bound: its first offset and max
        // timestamp, never a later offset than the exact answer (7 would be 210 < 215).
        assert_eq!(
            log.offset_for_timestamp(215).expect("ts"),
            Some((6, 230, 7))
        );
        // Batch 3 is uncompressed: exact.
        assert_eq!(
            log.offset_for_timestamp(321).expect("ts"),
            Some((11, 330, 7))
        );
        assert_eq!(log.max_timestamp_offset().expect("max"), Some((11, 330, 7)));
    }

    #[tokio::test]
    async fn log_append_time_overwrites_timestamps_with_valid_crc() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let config = LogConfig {
            message_timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        let log = open_with(disk, Path::new("/l/t-0"), config, &Metrics::new());
        let info = append_checked(&log, batch_with(3, 5, Compression::Gzip), 0)
            .await
            .expect("append");
        assert_eq!(info.log_append_time_ms, 1_000);
        let bytes = log.read(0, 1 << 20, true, 3).expect("read");
        let h = check_batch(&bytes).expect("valid crc");
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 1_000);
        assert_eq!(
            log.offset_for_timestamp(999).expect("ts"),
            Some((0, 1_000, 0))
        );
        assert_eq!(
            log.max_timestamp_offset().expect("max"),
            Some((0, 1_000, 0))
        );
    }

    #[tokio::test]
    async fn segment_older_than_segment_ms_rolls() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let config = LogConfig {
            segment_ms: 1_000,
            ..LogConfig::default()
        };
        let log = open_with(disk, Path::new("/l/t-0"), config, &Metrics::new());
        append_checked(&log, batch_with(1, 10_000, Compression::None), 0)
            .await
            .expect("append");
        append_checked(&log, batch_with(1, 10_900, Compression::None), 0)
            .await
            .expect("append");
        assert_eq!(log.segment_count(), 1);
        append_checked(&log, batch_with(1, 11_001, Compression::None), 0)
            .await
            .expect("append");
        assert_eq!(log.segment_count(), 2);
    }

    #[tokio::test]
    async fn invalid_records_are_rejected_before_touching_the_log() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let log = open_with(
            disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        let mut bad = batch_with(2, 5, Compression::None);
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(matches!(
            append_checked(&log, bad, 0).await,
            Err(Error::CorruptMessage(_))
        ));
        assert_eq!(log.log_end_offset(), 0);
    }

    #[tokio::test]
    async fn flush_if_due_flushes_after_flush_ms() {
        let sim = SimDisk::new();
        let disk: Arc<dyn Disk> = Arc::new(sim.clone());
        let config = LogConfig {
            flush_interval_ms: Some(500),
            ..LogConfig::default()
        };
        let log = open_with(disk, Path::new("/l/t-0"), config, &Metrics::new());
        append_n(&log, 1, 2, 1_000).await;
        log.flush_if_due(1_400).await.expect("not due");
        assert_eq!(log.flushed_offset(), 0);
        log.flush_if_due(1_500).await.expect("due");
        assert_eq!(log.flushed_offset(), 2);
    }

    #[tokio::test]
    async fn retention_deletes_old_segments_and_moves_log_start() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let config = LogConfig {
            retention_ms: 10_000,
            ..small_segments()
        };
        let log = open_with(
            Arc::clone(&disk),
            Path::new("/l/t-0"),
            config,
            &Metrics::new(),
        );
        append_n(&log, 20, 3, 1_000).await; // old timestamps
        append_n(&log, 20, 3, 50_000).await; // recent timestamps
        let before = log.segment_count();
        let deleted = log.apply_retention(55_000).expect("retention");
        assert!(
            deleted > 0 && deleted < before,
            "deleted {deleted} of {before}"
        );
        let start = log.log_start_offset();
        assert!(start > 0 && start <= 60, "log start {start}");
        assert!(matches!(
            log.read(0, 100, true, 120),
            Err(Error::OffsetOutOfRange { .. })
        ));
        assert_eq!(read_all(&log, 1 << 20), (start..120).collect::<Vec<_>>());
        let files = disk.list_dir(Path::new("/l/t-0")).expect("list");
        assert!(!files.iter().any(|f| f.name == "00000000000000000000.log"));
        // Survives a reopen with the same start.
        drop(log);
        let log = open_with(disk, Path::new("/l/t-0"), small_segments(), &Metrics::new());
        assert_eq!(log.log_start_offset(), start);
        assert_eq!(log.log_end_offset(), 120);
    }

    #[tokio::test]
    async fn retention_bytes_keeps_the_newest_segments_within_the_limit() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let config = LogConfig {
            retention_ms: -1,
            retention_bytes: 4_000,
            ..small_segments()
        };
        let log = open_with(disk, Path::new("/l/t-0"), config, &Metrics::new());
        append_n(&log, 40, 3, 1_000).await;
        log.apply_retention(1_000).expect("retention");
        let total: u64 = lock(&log.state).segments.iter().map(|s| s.size).sum();
        assert!(total <= 4_000 + 2_000, "total {total}");
        assert!(log.log_start_offset() > 0);
    }

    #[tokio::test]
    async fn delete_records_moves_log_start_and_rejects_beyond_high_watermark() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let log = open_with(
            disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        append_n(&log, 4, 3, 1_000).await;
        assert_eq!(log.delete_records_before(5).expect("delete"), 5);
        assert!(matches!(
            log.read(4, 100, true, 12),
            Err(Error::OffsetOutOfRange { .. })
        ));
        // Fetch at the new start returns the batch holding it.
        let bytes = log.read(5, 1 << 20, true, 12).expect("read");
        assert_eq!(offsets_in(&bytes)[0], 3);
        assert!(matches!(
            log.delete_records_before(13),
            Err(Error::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.delete_records_before(-1).expect("to hw"), 12);
    }

    #[tokio::test]
    async fn truncate_to_drops_the_batch_holding_the_offset_and_later_segments() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let log = open_with(disk, Path::new("/l/t-0"), small_segments(), &Metrics::new());
        append_n(&log, 30, 3, 1_000).await;
        let segments = log.segment_count();
        log.truncate_to(31).expect("truncate");
        assert_eq!(log.log_end_offset(), 30);
        assert!(log.segment_count() < segments);
        assert_eq!(read_all(&log, 1 << 20), (0..30).collect::<Vec<_>>());
        let info = append_checked(&log, batch_with(2, 5, Compression::None), 9)
            .await
            .expect("append");
        assert_eq!(info.base_offset, 30);
        log.truncate_to(0).expect("truncate all");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        assert_eq!(log.segment_count(), 1);
    }

    #[tokio::test]
    async fn append_replicated_keeps_leader_offsets_and_rejects_going_backwards() {
        let leader_disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let leader = open_with(
            leader_disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        append_n(&leader, 5, 2, 1_000).await;
        let fetched = leader.read(0, 1 << 20, true, 10).expect("read");
        let follower_disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let follower = open_with(
            follower_disk,
            Path::new("/f/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        let info = follower
            .append_replicated(BytesMut::from(&fetched[..]))
            .await
            .expect("replicate");
        assert_eq!((info.base_offset, info.last_offset), (0, 9));
        assert_eq!(follower.read(0, 1 << 20, true, 10).expect("read"), fetched);
        let again = follower
            .append_replicated(BytesMut::from(&fetched[..]))
            .await;
        assert!(matches!(again, Err(Error::CorruptMessage(_))));
        let mut torn = BytesMut::from(&fetched[..]);
        torn.truncate(fetched.len() - 1);
        assert!(follower.append_replicated(torn).await.is_err());
        assert_eq!(follower.log_end_offset(), 10);
    }

    #[tokio::test]
    async fn torn_crashes_at_random_points_keep_flushed_data_and_a_consistent_log() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for round in 0..30 {
            let sim = SimDisk::new();
            let disk: Arc<dyn Disk> = Arc::new(sim.clone());
            let dir = Path::new("/l/t-0");
            let config = small_segments();
            let mut flushed = 0;
            let mut ts = 1_000;
            for _crash in 0..3 {
                let log = open_with(Arc::clone(&disk), dir, config.clone(), &Metrics::new());
                assert!(
                    log.log_end_offset() >= flushed,
                    "round {round}: lost flushed data"
                );
                let have = read_all(&log, 1 << 20);
                assert_eq!(
                    have,
                    (0..log.log_end_offset()).collect::<Vec<_>>(),
                    "round {round}"
                );
                for _ in 0..rng.gen_range(1..25) {
                    let n = rng.gen_range(1..5);
                    ts += 1;
                    append_checked(&log, batch_with(n, ts, Compression::None), 0)
                        .await
                        .expect("append");
                    if rng.gen_bool(0.2) {
                        log.flush().await.expect("flush");
                        flushed = log.log_end_offset();
                    }
                }
                drop(log);
                sim.crash_tearing(&mut rng);
            }
        }
    }

    #[tokio::test]
    async fn fetch_inside_an_offset_gap_returns_the_next_batch() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let log = open_with(
            disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        let mut a = batch_with(2, 5, Compression::None);
        assign_offsets(&mut a, 0, 0);
        let mut b = batch_with(2, 6, Compression::None);
        assign_offsets(&mut b, 20, 0);
        log.append_replicated(a).await.expect("a");
        log.append_replicated(b).await.expect("b");
        assert_eq!(log.log_end_offset(), 22);
        let bytes = log.read(5, 1 << 20, true, 22).expect("read");
        assert_eq!(offsets_in(&bytes), vec![20, 21]);
    }

    #[tokio::test]
    async fn create_time_outside_timestamp_bounds_is_invalid_timestamp() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let config = LogConfig {
            message_timestamp_before_max_ms: 500,
            message_timestamp_after_max_ms: 100,
            ..LogConfig::default()
        };
        // The test clock says 1_000.
        let log = open_with(disk, Path::new("/l/t-0"), config, &Metrics::new());
        let too_new = append_checked(&log, batch_with(1, 1_101, Compression::None), 0).await;
        assert!(matches!(too_new, Err(ref e) if e.error_code() == 32));
        let too_old = append_checked(&log, batch_with(1, 499, Compression::Lz4), 0).await;
        assert!(matches!(too_old, Err(ref e) if e.error_code() == 32));
        append_checked(&log, batch_with(2, 500, Compression::None), 0)
            .await
            .expect("within bounds");
        assert_eq!(log.log_end_offset(), 2);
    }

    #[tokio::test]
    async fn records_that_do_not_match_their_validation_are_refused_without_panic() {
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let log = open_with(
            disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        let good = batch_with(2, 1_000, Compression::None);
        let validated = validate_records(&good, 1 << 20).expect("valid");
        let mut torn = good.clone();
        torn.truncate(good.len() - 3);
        assert!(matches!(
            log.append(torn, &validated, 0).await,
            Err(Error::CorruptMessage(_))
        ));
        let mut two = good.clone();
        two.extend_from_slice(&good);
        assert!(matches!(
            log.append(two, &validated, 0).await,
            Err(Error::CorruptMessage(_))
        ));
        assert_eq!(log.log_end_offset(), 0);
    }

    #[tokio::test]
    async fn flush_to_makes_the_given_offset_itself_durable() {
        let sim = SimDisk::new();
        let disk: Arc<dyn Disk> = Arc::new(sim.clone());
        let dir = Path::new("/l/t-0");
        let log = open_with(
            Arc::clone(&disk),
            dir,
            LogConfig::default(),
            &Metrics::new(),
        );
        let info = append_checked(&log, batch_with(3, 1_000, Compression::None), 0)
            .await
            .expect("append");
        log.flush_to(info.last_offset).await.expect("flush");
        assert_eq!(log.flushed_offset(), 3);
        sim.crash();
        drop(log);
        let log = open_with(disk, dir, LogConfig::default(), &Metrics::new());
        assert_eq!(log.log_end_offset(), 3);
    }

    #[test]
    fn append_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        let log = open_with(
            disk,
            Path::new("/l/t-0"),
            LogConfig::default(),
            &Metrics::new(),
        );
        let validated =
            validate_records(&batch_with(1, 1, Compression::None), 1 << 20).expect("valid");
        let append = log.append(batch_with(1, 1, Compression::None), &validated, 0);
        assert_send(&append);
        let flush = log.flush_to(0);
        assert_send(&flush);
    }

    #[tokio::test]
    async fn corruption_in_an_earlier_segment_ends_the_log_there() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let disk: Arc<dyn Disk> = Arc::new(FsDisk::new());
        let metrics = Metrics::new();
        {
            let log = open_with(Arc::clone(&disk), &dir, small_segments(), &metrics);
            append_n(&log, 60, 3, 1_000).await;
            log.flush().await.expect("flush");
        }
        let bases = segment_bases(disk.as_ref(), &dir).expect("list");
        assert!(bases.len() >= 4);
        // Flip the last byte of the second segment: its last batch fails its CRC.
        let (second, _, _) = segment_paths(&dir, bases[1]);
        let mut bytes = std::fs::read(&second).expect("read");
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        std::fs::write(&second, &bytes).expect("write");
        let log = open_with(Arc::clone(&disk), &dir, small_segments(), &metrics);
        let end = log.log_end_offset();
        assert!(
            end > bases[1] && end < bases[2],
            "log end {end}, segments {bases:?}"
        );
        assert_eq!(log.segment_count(), 2);
        assert_eq!(read_all(&log, 1 << 20), (0..end).collect::<Vec<_>>());
        assert_eq!(
            segment_bases(disk.as_ref(), &dir).expect("list"),
            bases[..2].to_vec()
        );
        let info = append_checked(&log, batch_with(1, 5, Compression::None), 0)
            .await
            .expect("append");
        assert_eq!(info.base_offset, end);
    }

    /// A batch of `n` records of producer `pid` at `epoch` from sequence `seq` (the header
    /// fields are patched into a plain batch and the CRC recomputed).
    fn idempotent_batch(n: usize, pid: i64, epoch: i16, seq: i32) -> BytesMut {
        let mut b = batch_with(n, 1_000, Compression::None);
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = crate::protocol::record_batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[tokio::test]
    async fn producer_state_is_rebuilt_from_an_older_snapshot_when_the_newest_is_corrupt() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let disk: Arc<dyn Disk> = Arc::new(FsDisk);
        let metrics = Metrics::new();
        let before = {
            let log = open_with(Arc::clone(&disk), &dir, small_segments(), &metrics);
            for i in 0..40 {
                let info = append_checked(&log, idempotent_batch(3, 7, 0, i * 3), 0)
                    .await
                    .expect("append");
                assert_eq!(info.base_offset, i64::from(i) * 3);
            }
            // A retry of the newest batch is a duplicate, appended nowhere.
            let dup = append_checked(&log, idempotent_batch(3, 7, 0, 117), 0)
                .await
                .expect("duplicate");
            assert_eq!((dup.base_offset, log.log_end_offset()), (117, 120));
            log.flush().await.expect("flush");
            log.producer_state(7).expect("producer 7")
        };
        assert_eq!(before.batches.len(), 5);
        let mut snapshots = snapshot_offsets(disk.as_ref(), &dir).expect("list");
        snapshots.sort_unstable();
        assert_eq!(
            snapshots.len(),
            2,
            "two newest snapshots kept: {snapshots:?}"
        );
        let newest = dir.join(snapshot_file_name(snapshots[1]));
        let mut bytes = std::fs::read(&newest).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&newest, bytes).expect("corrupt");
        let log = open_with(Arc::clone(&disk), &dir, small_segments(), &metrics);
        assert_eq!(log.producer_state(7), Some(before));
        let err = append_checked(&log, idempotent_batch(1, 7, 0, 121), 0)
            .await
            .expect_err("gap");
        assert_eq!(err.error_code(), 45);
        let next = append_checked(&log, idempotent_batch(1, 7, 0, 120), 0)
            .await
            .expect("next in sequence");
        assert_eq!(next.base_offset, 120);
    }
}
