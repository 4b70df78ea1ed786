//! Per-partition idempotent producer state (KIP-98 with KIP-360 semantics): for each producer
//! id its epoch and the sequence and offset ranges of its last five batches, the checks a
//! client append must pass, duplicate detection, expiry, and the `.snapshot` files recovery
//! starts from. `Partition` owns one `ProducerStateManager` inside its log lock, so the check
//! and the append are one atomic step per partition.
//!
//! Rules (Kafka 4.x `ProducerAppendInfo`, client origin):
//! - a batch whose (epoch, first sequence, last sequence) matches one of the last five batches
//!   of its producer is a duplicate: it is not appended and is answered with the original
//!   offsets (Kafka answers NONE with the original base offset; the client sees success);
//! - epoch below the stored one: INVALID_PRODUCER_EPOCH;
//! - a higher epoch must start at sequence 0 (KIP-360 client-side bump), else
//!   OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - same epoch: first sequence must be last sequence + 1 (wrapping at i32::MAX to 0), else
//!   OUT_OF_ORDER_SEQUENCE_NUMBER; a retry older than the five-batch window gets this too;
//! - a producer id with no state (new, expired, or evicted) is accepted at any sequence: since
//!   KIP-360 the broker no longer answers UNKNOWN_PRODUCER_ID.
//!
//! Snapshot file `<offset padded to 20>.snapshot` (Kafka's layout, version 1): `version:i16`,
//! `crc:u32` (CRC-32C of everything after it), `count:i32`, then per producer
//! `producer_id:i64, epoch:i16, last_sequence:i32, last_offset:i64, offset_delta:i32,
//! timestamp:i64, coordinator_epoch:i32, current_txn_first_offset:i64`. Kafka writes one entry
//! per producer (its last batch), so after a restart it finds duplicates only of that batch and
//! of what it replays. Sluice writes one entry per retained batch, oldest first, so retries of
//! any of the last five batches are still recognised after a restart; the layout is unchanged
//! (a reader keeping the last entry per producer id gets Kafka's view).

use std::collections::{BTreeMap, VecDeque};

use crate::error::{Error, Result};
use crate::protocol::record_batch::BatchHeader;

/// Batches remembered per producer for duplicate detection (Kafka's NUM_BATCHES_TO_RETAIN);
/// it matches the Java client's cap of five in-flight requests with idempotence.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// RecordBatch.NO_PRODUCER_EPOCH.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Version of the snapshot layout (Kafka's ProducerSnapshotVersion 1).
const SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_ENTRY_BYTES: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
const SNAPSHOT_HEADER_BYTES: usize = 2 + 4 + 4;
/// Suffix of producer state snapshot files in a partition directory.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// Offsets and sequences of one appended batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp (the append time for LogAppendTime topics).
    pub timestamp_ms: i64,
}

/// What the partition knows about one producer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_epoch: i16,
    /// Oldest first, at most [`NUM_BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    /// Timestamp of the newest batch; expiry (`producer.id.expiration.ms`) counts from it, as
    /// Kafka's `lastTimestamp` does.
    pub last_timestamp_ms: i64,
}

impl ProducerStateEntry {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.producer_epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }

    fn push(&mut self, batch: BatchMetadata) {
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.last_timestamp_ms = self.last_timestamp_ms.max(batch.timestamp_ms);
        self.batches.push_back(batch);
    }
}

/// The last sequence of a batch: `first + delta`, wrapping past i32::MAX to 0 as Kafka's
/// `DefaultRecordBatch.incrementSequence` does.
pub fn last_sequence(first_seq: i32, last_offset_delta: i32) -> i32 {
    let sum = i64::from(first_seq) + i64::from(last_offset_delta);
    if sum > i64::from(i32::MAX) {
        (sum - i64::from(i32::MAX) - 1) as i32
    } else {
        sum as i32
    }
}

/// Whether `next` follows `last` (i32::MAX is followed by 0).
fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// The answer to a client append's producer checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendCheck {
    /// Append; afterwards record the batches with [`ProducerStateManager::record_appended`].
    Append,
    /// A retry of a batch already in the log: answer with its offsets, append nothing.
    Duplicate(BatchMetadata),
}

/// Producer states of one partition, keyed by producer id (a BTreeMap: eviction and snapshot
/// order never depend on hashing).
#[derive(Debug, Clone, Default)]
pub struct ProducerStateManager {
    producers: BTreeMap<i64, ProducerStateEntry>,
}

impl ProducerStateManager {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Each producer's last batch's last offset: the log cleaner keeps that batch (empty if
    /// need be) so that its sequence survives compaction (Kafka's lastRecordsOfActiveProducers).
    pub fn last_batch_offsets(&self) -> BTreeMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset)))
            .collect()
    }

    /// Checks the batches of one client append, in order, as if each earlier one had been
    /// appended. A batch without producer id is not checked. The first duplicate found makes
    /// the whole append a duplicate (Kafka returns early the same way); clients send one batch
    /// per partition per request.
    pub fn check_client_append(&self, headers: &[BatchHeader]) -> Result<AppendCheck> {
        // Sequences already accepted in this append, per producer: (epoch, last sequence).
        let mut pending: BTreeMap<i64, (i16, i32)> = BTreeMap::new();
        for h in headers.iter().filter(|h| h.has_producer_id()) {
            let first_seq = h.base_sequence;
            let last_seq = last_sequence(first_seq, h.last_offset_delta);
            let current = self.producers.get(&h.producer_id);
            if !pending.contains_key(&h.producer_id) {
                if let Some(dup) =
                    current.and_then(|e| e.find_duplicate(h.producer_epoch, first_seq, last_seq))
                {
                    return Ok(AppendCheck::Duplicate(dup));
                }
            }
            let (stored_epoch, stored_last) = match pending.get(&h.producer_id) {
                Some(&(epoch, last)) => (epoch, Some(last)),
                None => match current {
                    Some(e) => (e.producer_epoch, e.last_seq()),
                    None => (NO_PRODUCER_EPOCH, None),
                },
            };
            check_batch(h, stored_epoch, stored_last)?;
            pending.insert(h.producer_id, (h.producer_epoch, last_seq));
        }
        Ok(AppendCheck::Append)
    }

    /// Records appended batches (headers carrying their assigned offsets): from a client
    /// append after [`Self::check_client_append`], or replayed from the log at recovery.
    /// When a new producer id would exceed `max_producer_ids`, the producer idle longest is
    /// forgotten first (its next batch is then accepted at any sequence, as after expiry).
    pub fn record_appended(&mut self, headers: &[BatchHeader], max_producer_ids: usize) {
        for h in headers
            .iter()
            .filter(|h| h.has_producer_id() && !h.is_control())
        {
            if !self.producers.contains_key(&h.producer_id) {
                self.evict_to(max_producer_ids.saturating_sub(1));
            }
            let entry = self
                .producers
                .entry(h.producer_id)
                .or_insert_with(|| ProducerStateEntry {
                    producer_epoch: h.producer_epoch,
                    batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
                    last_timestamp_ms: -1,
                });
            if h.producer_epoch != entry.producer_epoch {
                // A new epoch starts a new sequence space: older batches cannot be retried.
                entry.producer_epoch = h.producer_epoch;
                entry.batches.clear();
            }
            entry.push(BatchMetadata {
                first_seq: h.base_sequence,
                last_seq: last_sequence(h.base_sequence, h.last_offset_delta),
                first_offset: h.base_offset,
                last_offset: h.last_offset(),
                timestamp_ms: h.max_timestamp,
            });
        }
    }

    /// Forgets producers idle longest until at most `keep` remain.
    fn evict_to(&mut self, keep: usize) {
        while self.producers.len() > keep {
            let oldest = self
                .producers
                .iter()
                .min_by_key(|(id, e)| (e.last_timestamp_ms, **id))
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => {
                    self.producers.remove(&id);
                }
                None => break,
            }
        }
    }

    /// Removes producers whose newest batch is `expiration_ms` or more older than `now_ms`
    /// (`producer.id.expiration.ms`, KIP-854). Returns how many were removed.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp_ms) < expiration_ms);
        before - self.producers.len()
    }

    /// Drops every batch at or after `offset` (log truncation); producers left without a batch
    /// are forgotten.
    pub fn truncate_to(&mut self, offset: i64) {
        self.producers.retain(|_, e| {
            e.batches.retain(|b| b.last_offset < offset);
            !e.batches.is_empty()
        });
    }

    /// The snapshot file's bytes (see the module doc).
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * SNAPSHOT_ENTRY_BYTES);
        let count: usize = self.producers.values().map(|e| e.batches.len()).sum();
        body.extend_from_slice(&(count as i32).to_be_bytes());
        for (id, e) in &self.producers {
            for last in &e.batches {
                let offset_delta = (last.last_offset - last.first_offset) as i32;
                body.extend_from_slice(&id.to_be_bytes());
                body.extend_from_slice(&e.producer_epoch.to_be_bytes());
                body.extend_from_slice(&last.last_seq.to_be_bytes());
                body.extend_from_slice(&last.last_offset.to_be_bytes());
                body.extend_from_slice(&offset_delta.to_be_bytes());
                body.extend_from_slice(&last.timestamp_ms.to_be_bytes());
                body.extend_from_slice(&(-1i32).to_be_bytes()); // coordinator epoch: no transactions
                body.extend_from_slice(&(-1i64).to_be_bytes()); // no open transaction
            }
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses a snapshot; a torn or corrupt file is an error (recovery then falls back to an
    /// older snapshot or a full scan of the log).
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self> {
        let corrupt = |why: &str| Error::CorruptMessage(format!("producer snapshot: {why}"));
        if bytes.len() < SNAPSHOT_HEADER_BYTES {
            return Err(corrupt("too short"));
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != SNAPSHOT_VERSION {
            return Err(corrupt("unknown version"));
        }
        let crc = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        let body = &bytes[6..];
        if crc32c::crc32c(body) != crc {
            return Err(corrupt("CRC mismatch"));
        }
        let count = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let entries = &body[4..];
        if count < 0 || entries.len() != count as usize * SNAPSHOT_ENTRY_BYTES {
            return Err(corrupt("entry count does not match the size"));
        }
        let mut producers = BTreeMap::new();
        for e in entries.chunks_exact(SNAPSHOT_ENTRY_BYTES) {
            let i64_at = |at: usize| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&e[at..at + 8]);
                i64::from_be_bytes(a)
            };
            let i32_at = |at: usize| i32::from_be_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]);
            let producer_id = i64_at(0);
            let producer_epoch = i16::from_be_bytes([e[8], e[9]]);
            let last_seq = i32_at(10);
            let last_offset = i64_at(14);
            let offset_delta = i32_at(22);
            let timestamp_ms = i64_at(26);
            if offset_delta < 0 {
                return Err(corrupt("negative offset delta"));
            }
            let first_seq = if last_seq >= offset_delta {
                last_seq - offset_delta
            } else {
                // The batch wrapped past i32::MAX.
                (i64::from(i32::MAX) + 1 - i64::from(offset_delta - last_seq)) as i32
            };
            let batch = BatchMetadata {
                first_seq,
                last_seq,
                first_offset: last_offset - i64::from(offset_delta),
                last_offset,
                timestamp_ms,
            };
            let entry = producers
                .entry(producer_id)
                .or_insert_with(|| ProducerStateEntry {
                    producer_epoch,
                    batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
                    last_timestamp_ms: timestamp_ms,
                });
            if entry.producer_epoch != producer_epoch {
                entry.producer_epoch = producer_epoch;
                entry.batches.clear();
            }
            entry.push(batch);
        }
        Ok(ProducerStateManager { producers })
    }
}

/// The epoch and sequence rules for one batch against the stored epoch and last sequence.
fn check_batch(h: &BatchHeader, stored_epoch: i16, stored_last: Option<i32>) -> Result<()> {
    let pid = h.producer_id;
    let epoch = h.producer_epoch;
    let first_seq = h.base_sequence;
    if epoch < stored_epoch {
        return Err(Error::InvalidProducerEpoch(format!(
            "epoch {epoch} of producer {pid} is older than the current epoch {stored_epoch}"
        )));
    }
    if stored_epoch == NO_PRODUCER_EPOCH {
        // No state for this producer: any sequence is accepted (KIP-360).
        return Ok(());
    }
    if epoch != stored_epoch {
        if first_seq != 0 {
            return Err(Error::OutOfOrderSequence(format!(
                "new epoch {epoch} of producer {pid} must start at sequence 0, not {first_seq} \
                 (current epoch {stored_epoch})"
            )));
        }
        return Ok(());
    }
    match stored_last {
        Some(last) if !in_sequence(last, first_seq) => Err(Error::OutOfOrderSequence(format!(
            "out of order sequence number for producer {pid} at epoch {epoch}: \
             {first_seq} (incoming seq. number), {last} (current end sequence number)"
        ))),
        _ => Ok(()),
    }
}

/// File name of the snapshot taken at `offset` (the exclusive end of what it covers).
pub fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// The offset a snapshot file name stands for, if it is one.
pub fn snapshot_offset(file_name: &str) -> Option<i64> {
    let stem = file_name.strip_suffix(SNAPSHOT_SUFFIX)?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000 + base_offset,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: records,
        }
    }

    /// Checks and records one batch at `offset`; returns the check's answer.
    fn append(
        m: &mut ProducerStateManager,
        pid: i64,
        epoch: i16,
        seq: i32,
        records: i32,
        offset: i64,
    ) -> Result<AppendCheck> {
        let h = header(pid, epoch, seq, records, offset);
        let check = m.check_client_append(&[h])?;
        if check == AppendCheck::Append {
            m.record_appended(&[h], 100);
        }
        Ok(check)
    }

    fn code(r: Result<AppendCheck>) -> i16 {
        match r {
            Ok(_) => 0,
            Err(e) => e.error_code(),
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_in_the_window_are_duplicates() {
        let mut m = ProducerStateManager::new();
        for i in 0..6 {
            assert_eq!(
                append(&mut m, 7, 0, i * 2, 2, i64::from(i) * 2).ok(),
                Some(AppendCheck::Append)
            );
        }
        // Window holds sequences 2..11 (batches 1..5); batch 1 (n-4) is the oldest retained.
        let dup = append(&mut m, 7, 0, 2, 2, 99).expect("duplicate");
        assert!(
            matches!(dup, AppendCheck::Duplicate(b) if b.first_offset == 2 && b.last_offset == 3)
        );
        let dup = append(&mut m, 7, 0, 10, 2, 99).expect("duplicate");
        assert!(matches!(dup, AppendCheck::Duplicate(b) if b.first_offset == 10));
        // Batch 0 fell out of the window: out of order.
        assert_eq!(code(append(&mut m, 7, 0, 0, 2, 99)), 45);
    }

    #[test]
    fn sequence_gap_returns_out_of_order_sequence_number() {
        let mut m = ProducerStateManager::new();
        append(&mut m, 1, 0, 0, 1, 0).expect("first");
        assert_eq!(code(append(&mut m, 1, 0, 2, 1, 1)), 45);
        assert_eq!(
            append(&mut m, 1, 0, 1, 1, 1).ok(),
            Some(AppendCheck::Append)
        );
    }

    #[test]
    fn produce_with_stale_epoch_returns_invalid_producer_epoch() {
        let mut m = ProducerStateManager::new();
        append(&mut m, 1, 3, 0, 1, 0).expect("first");
        assert_eq!(code(append(&mut m, 1, 2, 1, 1, 1)), 47);
    }

    #[test]
    fn new_epoch_must_start_at_sequence_zero_kip_360() {
        let mut m = ProducerStateManager::new();
        append(&mut m, 1, 0, 0, 5, 0).expect("first");
        assert_eq!(code(append(&mut m, 1, 1, 5, 1, 5)), 45);
        assert_eq!(
            append(&mut m, 1, 1, 0, 1, 5).ok(),
            Some(AppendCheck::Append)
        );
        assert_eq!(m.get(1).map(|e| e.producer_epoch), Some(1));
        // The old epoch is fenced now.
        assert_eq!(code(append(&mut m, 1, 0, 5, 1, 6)), 47);
    }

    #[test]
    fn unknown_producer_is_accepted_at_any_sequence() {
        let mut m = ProducerStateManager::new();
        assert_eq!(
            append(&mut m, 9, 4, 1234, 3, 0).ok(),
            Some(AppendCheck::Append)
        );
        assert_eq!(
            append(&mut m, 9, 4, 1237, 1, 3).ok(),
            Some(AppendCheck::Append)
        );
    }

    #[test]
    fn sequences_wrap_past_i32_max_to_zero() {
        assert_eq!(last_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 1), 0);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        let mut m = ProducerStateManager::new();
        append(&mut m, 1, 0, i32::MAX - 1, 2, 0).expect("first");
        assert_eq!(
            append(&mut m, 1, 0, 0, 1, 2).ok(),
            Some(AppendCheck::Append)
        );
    }

    #[test]
    fn two_batches_of_one_request_are_checked_against_each_other() {
        let m = ProducerStateManager::new();
        let ok = [header(1, 0, 0, 2, 0), header(1, 0, 2, 1, 2)];
        assert_eq!(m.check_client_append(&ok).ok(), Some(AppendCheck::Append));
        let gap = [header(1, 0, 0, 2, 0), header(1, 0, 3, 1, 2)];
        assert_eq!(
            m.check_client_append(&gap).map_err(|e| e.error_code()),
            Err(45)
        );
    }

    #[test]
    fn expiry_forgets_idle_producers() {
        let mut m = ProducerStateManager::new();
        append(&mut m, 1, 0, 0, 1, 0).expect("a"); // timestamp 1000
        append(&mut m, 2, 0, 0, 1, 5000).expect("b"); // timestamp 6000
        assert_eq!(m.expire(7_000, 5_000), 1);
        assert!(m.get(1).is_none() && m.get(2).is_some());
    }

    #[test]
    fn producer_id_limit_evicts_the_producer_idle_longest() {
        let mut m = ProducerStateManager::new();
        for pid in 0..5 {
            m.record_appended(&[header(pid, 0, 0, 1, pid * 10)], 3);
        }
        assert_eq!(m.len(), 3);
        assert!(m.get(0).is_none() && m.get(1).is_none() && m.get(4).is_some());
    }

    #[test]
    fn snapshot_round_trips_every_retained_batch_and_rejects_corruption() {
        let mut m = ProducerStateManager::new();
        append(&mut m, 1, 2, 10, 3, 100).expect("a");
        append(&mut m, 1, 2, 13, 2, 103).expect("b");
        append(&mut m, 5, 0, i32::MAX, 2, 105).expect("wrapping batch");
        let bytes = m.to_snapshot();
        let back = ProducerStateManager::from_snapshot(&bytes).expect("parse");
        let e = back.get(1).expect("pid 1");
        assert_eq!(
            e,
            m.get(1).expect("pid 1"),
            "every retained batch comes back"
        );
        assert_eq!(back.get(5).expect("pid 5").batches[0].first_seq, i32::MAX);
        let mut torn = bytes.clone();
        torn.truncate(bytes.len() - 3);
        assert!(ProducerStateManager::from_snapshot(&torn).is_err());
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(ProducerStateManager::from_snapshot(&flipped).is_err());
    }

    #[test]
    fn truncation_drops_batches_at_and_after_the_offset() {
        let mut m = ProducerStateManager::new();
        append(&mut m, 1, 0, 0, 1, 0).expect("a");
        append(&mut m, 1, 0, 1, 1, 1).expect("b");
        append(&mut m, 2, 0, 0, 1, 2).expect("c");
        m.truncate_to(1);
        assert_eq!(m.get(1).map(|e| e.batches.len()), Some(1));
        assert!(m.get(2).is_none());
    }

    #[test]
    fn snapshot_file_names_are_padded_offsets() {
        assert_eq!(snapshot_file_name(42), "00000000000000000042.snapshot");
        assert_eq!(snapshot_offset("00000000000000000042.snapshot"), Some(42));
        assert_eq!(snapshot_offset("42.snapshot"), None);
    }
}
