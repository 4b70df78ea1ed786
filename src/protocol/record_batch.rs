//! Kafka v2 record batches as bytes: header parsing, Produce-time validation without
//! decompressing, in-place offset assignment and LogAppendTime, and a batch iterator used by
//! recovery and reads. Sits between the Produce handler and `log::PartitionLog::append`.
//!
//! Layout of a v2 batch (Kafka's `DefaultRecordBatch`), all big endian:
//! ```text
//!  0 baseOffset i64        8 batchLength i32       12 partitionLeaderEpoch i32
//! 16 magic i8             17 crc u32 (CRC-32C of bytes 21..end)
//! 21 attributes i16       23 lastOffsetDelta i32  27 baseTimestamp i64
//! 35 maxTimestamp i64     43 producerId i64       51 producerEpoch i16
//! 53 baseSequence i32     57 recordsCount i32     61 records...
//! ```

use crate::error::{Error, Result};

/// Bytes before `batchLength` counts: baseOffset and batchLength (Kafka's LOG_OVERHEAD).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the v2 batch header, up to and including recordsCount.
pub const BATCH_HEADER_LEN: usize = 61;
/// The only message format this broker stores (KIP-98 record batches).
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

/// Attribute bits (Kafka's DefaultRecordBatch).
const COMPRESSION_CODEC_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_MASK: i16 = 0x08;
const TRANSACTIONAL_FLAG_MASK: i16 = 0x10;
const CONTROL_FLAG_MASK: i16 = 0x20;

/// The fixed header of one v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after the batchLength field; the whole batch is `LOG_OVERHEAD + batch_length`.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Size of the whole batch in bytes, header included (0 when batch_length is negative).
    pub fn size_bytes(&self) -> usize {
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// Offset of the last record: baseOffset + lastOffsetDelta.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression_codec(&self) -> i16 {
        self.attributes & COMPRESSION_CODEC_MASK
    }

    /// True when the batch's timestamps are LogAppendTime (attribute bit 3).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_MASK != 0
    }

    /// True for batches written inside a transaction (KIP-98).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG_MASK != 0
    }

    /// True for control batches (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG_MASK != 0
    }

    /// True when the batch carries a producer id (idempotent or transactional producer).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Parses the 61-byte header at the start of `buf`. Checks only that the bytes are there; the
/// CRC, magic and sizes are checked by [`check_batch`].
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader> {
    if buf.len() < BATCH_HEADER_LEN {
        return Err(Error::CorruptMessage(format!(
            "record batch header needs {BATCH_HEADER_LEN} bytes, got {}",
            buf.len()
        )));
    }
    Ok(BatchHeader {
        base_offset: i64_at(buf, BASE_OFFSET_AT),
        batch_length: i32_at(buf, BATCH_LENGTH_AT),
        partition_leader_epoch: i32_at(buf, PARTITION_LEADER_EPOCH_AT),
        magic: buf[MAGIC_AT] as i8,
        crc: i32_at(buf, CRC_AT) as u32,
        attributes: i16_at(buf, ATTRIBUTES_AT),
        last_offset_delta: i32_at(buf, LAST_OFFSET_DELTA_AT),
        base_timestamp: i64_at(buf, BASE_TIMESTAMP_AT),
        max_timestamp: i64_at(buf, MAX_TIMESTAMP_AT),
        producer_id: i64_at(buf, PRODUCER_ID_AT),
        producer_epoch: i16_at(buf, PRODUCER_EPOCH_AT),
        base_sequence: i32_at(buf, BASE_SEQUENCE_AT),
        records_count: i32_at(buf, RECORDS_COUNT_AT),
    })
}

/// The CRC-32C a batch should carry: over attributes to the end of the batch.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_AT..])
}

/// Checks the framing of the batch at the start of `buf` (header present, batchLength sane and
/// complete, magic 2) and its CRC. Returns the header; the batch is `buf[..header.size_bytes()]`.
/// A batch that is merely incomplete is reported as `CorruptMessage` too; [`BatchIter`]
/// distinguishes the two for recovery.
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader> {
    match inspect(buf, true) {
        Inspect::Batch(h) => Ok(h),
        Inspect::Incomplete { needed } => Err(Error::CorruptMessage(format!(
            "truncated record batch: {needed} bytes needed, {} present",
            buf.len()
        ))),
        Inspect::Invalid(e) => Err(e),
    }
}

enum Inspect {
    Batch(BatchHeader),
    /// The buffer ends inside this batch; `needed` is its full size when known.
    Incomplete {
        needed: usize,
    },
    Invalid(Error),
}

fn inspect(buf: &[u8], verify_crc: bool) -> Inspect {
    // The magic byte sits before the rest of the header: check it as soon as it is there so
    // that an old-format message set is reported as such, not as a torn batch.
    if buf.len() > MAGIC_AT && buf[MAGIC_AT] as i8 != MAGIC_V2 {
        return Inspect::Invalid(Error::UnsupportedForMessageFormat {
            magic: buf[MAGIC_AT] as i8,
        });
    }
    let header = match parse_header(buf) {
        Ok(h) => h,
        Err(_) => {
            return Inspect::Incomplete {
                needed: BATCH_HEADER_LEN,
            }
        }
    };
    if (header.batch_length as i64) < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i64 {
        return Inspect::Invalid(Error::CorruptMessage(format!(
            "record batch length {} is smaller than the v2 header",
            header.batch_length
        )));
    }
    let size = header.size_bytes();
    if buf.len() < size {
        return Inspect::Incomplete { needed: size };
    }
    if verify_crc {
        let actual = compute_crc(&buf[..size]);
        if actual != header.crc {
            return Inspect::Invalid(Error::CorruptMessage(format!(
                "record batch CRC mismatch: stored {:#010x}, computed {actual:#010x}",
                header.crc
            )));
        }
    }
    Inspect::Batch(header)
}

/// What validation of a Produce request's `records` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedRecords {
    pub batch_count: usize,
    pub record_count: i64,
    /// Largest maxTimestamp over the batches (-1 when none carries one).
    pub max_timestamp: i64,
    /// Any batch has the transactional attribute.
    pub transactional: bool,
    /// Any batch carries a producer id (idempotent or transactional producer).
    pub has_producer_id: bool,
    /// Sum of lastOffsetDelta+1 over the batches: how many offsets the append consumes.
    pub offset_count: i64,
}

/// Validates a Produce request's `records` field without decompressing, as Kafka's
/// `LogValidator`/`analyzeAndValidateRecords` do on the batch level:
/// - at least one batch, every batch complete (a partial tail is `CorruptMessage`),
/// - magic 2 (`UnsupportedForMessageFormat` otherwise), CRC-32C (`CorruptMessage`),
/// - batch size <= `max_message_bytes` (`MessageTooLarge`),
/// - recordsCount >= 1 and lastOffsetDelta == recordsCount - 1 (`InvalidRecord`),
/// - baseOffset 0 and no control batches, as clients must send (`InvalidRecord`).
pub fn validate_records(records: &[u8], max_message_bytes: usize) -> Result<ValidatedRecords> {
    let mut v = ValidatedRecords {
        batch_count: 0,
        record_count: 0,
        max_timestamp: -1,
        transactional: false,
        has_producer_id: false,
        offset_count: 0,
    };
    let mut pos = 0;
    while pos < records.len() {
        let rest = &records[pos..];
        // Size first, as Kafka does, so an oversized batch is MessageTooLarge even when the
        // request is also cut short.
        if rest.len() >= LOG_OVERHEAD {
            let batch_length = i32_at(rest, BATCH_LENGTH_AT);
            let size = LOG_OVERHEAD as i64 + i64::from(batch_length);
            if size > max_message_bytes as i64 {
                return Err(Error::MessageTooLarge {
                    size: usize::try_from(size).unwrap_or(usize::MAX),
                    max: max_message_bytes,
                });
            }
        }
        let header = check_batch(rest)?;
        validate_batch_header(&header)?;
        v.batch_count += 1;
        v.record_count += i64::from(header.records_count);
        v.offset_count += i64::from(header.last_offset_delta) + 1;
        v.max_timestamp = v.max_timestamp.max(header.max_timestamp);
        v.transactional |= header.is_transactional();
        v.has_producer_id |= header.has_producer_id();
        pos += header.size_bytes();
    }
    if v.batch_count == 0 {
        return Err(Error::InvalidRecord(
            "produce request must have at least one record batch per partition".into(),
        ));
    }
    Ok(v)
}

fn validate_batch_header(h: &BatchHeader) -> Result<()> {
    // Clients leave offsets to the broker: Kafka rejects a v2 batch whose baseOffset is not 0.
    if h.base_offset != 0 {
        return Err(Error::InvalidRecord(format!(
            "the baseOffset of the record batch should be 0, but it is {}",
            h.base_offset
        )));
    }
    if h.records_count <= 0 {
        return Err(Error::InvalidRecord(format!(
            "invalid reported count for record batch: {}",
            h.records_count
        )));
    }
    if i64::from(h.last_offset_delta) + 1 != i64::from(h.records_count) {
        return Err(Error::InvalidRecord(format!(
            "inconsistent batch offset range: lastOffsetDelta {} with {} records",
            h.last_offset_delta, h.records_count
        )));
    }
    if h.is_control() {
        return Err(Error::InvalidRecord(
            "clients are not allowed to write control records".into(),
        ));
    }
    if h.is_transactional() && !h.has_producer_id() {
        return Err(Error::InvalidRecord(
            "transactional record batch without a producer id".into(),
        ));
    }
    Ok(())
}

/// Writes baseOffset and partitionLeaderEpoch in place into each batch of `records` (which
/// must have passed [`validate_records`]); neither field is CRC-covered, so no CRC work.
/// Returns the next offset after the last record.
pub fn assign_offsets(records: &mut [u8], base_offset: i64, partition_leader_epoch: i32) -> i64 {
    let mut next_offset = base_offset;
    let mut pos = 0;
    while pos + BATCH_HEADER_LEN <= records.len() {
        let batch = &mut records[pos..];
        let batch_length = i32_at(batch, BATCH_LENGTH_AT);
        let last_offset_delta = i32_at(batch, LAST_OFFSET_DELTA_AT);
        assert!(
            batch_length >= (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 && last_offset_delta >= 0,
            "assign_offsets called on records that were not validated"
        );
        batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&next_offset.to_be_bytes());
        batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
            .copy_from_slice(&partition_leader_epoch.to_be_bytes());
        next_offset += i64::from(last_offset_delta) + 1;
        pos += LOG_OVERHEAD + batch_length as usize;
    }
    next_offset
}

/// Turns one batch into a LogAppendTime batch: sets attribute bit 3 and maxTimestamp to `ts`,
/// then recomputes the CRC (both fields are CRC-covered). Consumers then read every record's
/// timestamp as `ts` (KIP-32).
pub fn set_log_append_time(batch: &mut [u8], ts: i64) {
    assert!(
        batch.len() >= BATCH_HEADER_LEN,
        "set_log_append_time needs a whole batch"
    );
    let attributes = i16_at(batch, ATTRIBUTES_AT) | TIMESTAMP_TYPE_MASK;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&ts.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// After the records section of `batch` was replaced (broker recompression): sets the codec
/// bits of the attributes to `codec`, batchLength to the new size, and recomputes the CRC.
pub fn set_compression_codec(batch: &mut [u8], codec: i16) {
    assert!(
        batch.len() >= BATCH_HEADER_LEN,
        "set_compression_codec needs a whole batch"
    );
    let attributes = (i16_at(batch, ATTRIBUTES_AT) & !COMPRESSION_CODEC_MASK) | codec;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let batch_length = i32::try_from(batch.len() - LOG_OVERHEAD).unwrap_or(i32::MAX);
    batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Applies [`set_log_append_time`] to every batch of validated `records`.
pub fn set_log_append_time_all(records: &mut [u8], ts: i64) {
    let mut pos = 0;
    while pos + BATCH_HEADER_LEN <= records.len() {
        let size = LOG_OVERHEAD + i32_at(&records[pos..], BATCH_LENGTH_AT).max(0) as usize;
        let end = (pos + size).min(records.len());
        set_log_append_time(&mut records[pos..end], ts);
        pos = end;
    }
}

/// Why a [`BatchIter`] stopped.
#[derive(Debug)]
pub enum BatchIterStop {
    /// The buffer ended exactly at a batch boundary.
    End,
    /// The buffer ends inside a batch that needs `needed` bytes from `position`.
    Incomplete { needed: usize },
    /// The batch at `position` is invalid (bad size, magic or CRC).
    Invalid(Error),
}

/// Iterates complete batches of a buffer, yielding `(position, header, batch bytes)`, and
/// stops at the first torn or invalid batch; [`BatchIter::stopped`] then tells where and why.
/// Used by recovery (with CRC checks) and by reads (framing only).
#[derive(Debug)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    position: usize,
    verify_crc: bool,
    stop: Option<BatchIterStop>,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8], verify_crc: bool) -> Self {
        BatchIter {
            buf,
            position: 0,
            verify_crc,
            stop: None,
        }
    }

    /// Bytes consumed by the batches yielded so far; the stop position.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Why iteration stopped, once `next` returned `None`.
    pub fn stopped(&self) -> Option<&BatchIterStop> {
        self.stop.as_ref()
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = (usize, BatchHeader, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.stop.is_some() {
            return None;
        }
        let rest = &self.buf[self.position..];
        if rest.is_empty() {
            self.stop = Some(BatchIterStop::End);
            return None;
        }
        match inspect(rest, self.verify_crc) {
            Inspect::Batch(h) => {
                let at = self.position;
                let size = h.size_bytes();
                self.position += size;
                Some((at, h, &rest[..size]))
            }
            Inspect::Incomplete { needed } => {
                self.stop = Some(BatchIterStop::Incomplete { needed });
                None
            }
            Inspect::Invalid(e) => {
                self.stop = Some(BatchIterStop::Invalid(e));
                None
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };
    use rand::{Rng, SeedableRng};

    /// Encodes one batch of `n` records with timestamps `ts0, ts0+1, ...`.
    pub(crate) fn batch_with(n: usize, ts0: i64, compression: Compression) -> BytesMut {
        batch_with_timestamps(
            &(0..n as i64).map(|i| ts0 + i).collect::<Vec<_>>(),
            compression,
        )
    }

    pub(crate) fn batch_with_timestamps(timestamps: &[i64], compression: Compression) -> BytesMut {
        let records: Vec<Record> = timestamps
            .iter()
            .enumerate()
            .map(|(i, ts)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder keeps records in one batch while offset - sequence is constant;
                // base sequence -1 as a non-idempotent producer sends.
                sequence: i as i32 - 1,
                timestamp: *ts,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(vec![b'v'; 50 + i % 7])),
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
        .expect("encode test batch");
        buf
    }

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn valid_batches_of_every_codec_validate() {
        for codec in CODECS {
            let b = batch_with(5, 1_000, codec);
            let v = validate_records(&b, 1 << 20).expect("valid");
            assert_eq!(v.batch_count, 1, "{codec:?}");
            assert_eq!(v.record_count, 5);
            assert_eq!(v.offset_count, 5);
            assert_eq!(v.max_timestamp, 1_004);
            assert!(!v.transactional && !v.has_producer_id);
            let h = parse_header(&b).expect("header");
            assert_eq!(h.compression_codec(), codec as i16);
            assert_eq!(h.size_bytes(), b.len());
        }
    }

    #[test]
    fn two_concatenated_batches_count_both() {
        let mut b = batch_with(3, 10, Compression::None);
        b.extend_from_slice(&batch_with(4, 20, Compression::Lz4));
        let v = validate_records(&b, 1 << 20).expect("valid");
        assert_eq!((v.batch_count, v.record_count, v.max_timestamp), (2, 7, 23));
    }

    #[test]
    fn flipped_payload_byte_is_corrupt_message() {
        let mut b = batch_with(3, 10, Compression::Gzip);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(
            validate_records(&b, 1 << 20),
            Err(Error::CorruptMessage(_))
        ));
    }

    #[test]
    fn truncated_batch_is_corrupt_message() {
        let b = batch_with(3, 10, Compression::None);
        for cut in [1, 11, 12, 30, 60, 61, b.len() - 1] {
            assert!(
                matches!(
                    validate_records(&b[..cut], 1 << 20),
                    Err(Error::CorruptMessage(_))
                ),
                "cut at {cut}"
            );
        }
        let mut two = b.clone();
        two.extend_from_slice(&b[..20]);
        assert!(matches!(
            validate_records(&two, 1 << 20),
            Err(Error::CorruptMessage(_))
        ));
    }

    #[test]
    fn magic_one_is_unsupported_for_message_format() {
        let mut b = batch_with(1, 10, Compression::None);
        b[MAGIC_AT] = 1;
        assert!(matches!(
            validate_records(&b, 1 << 20),
            Err(Error::UnsupportedForMessageFormat { magic: 1 })
        ));
    }

    #[test]
    fn batch_over_max_message_bytes_is_message_too_large() {
        let b = batch_with(20, 10, Compression::None);
        let err = validate_records(&b, b.len() - 1).expect_err("too large");
        assert!(matches!(err, Error::MessageTooLarge { size, .. } if size == b.len()));
        assert!(validate_records(&b, b.len()).is_ok());
    }

    #[test]
    fn empty_records_is_invalid_record() {
        assert!(matches!(
            validate_records(&[], 1 << 20),
            Err(Error::InvalidRecord(_))
        ));
    }

    #[test]
    fn inconsistent_last_offset_delta_is_invalid_record() {
        let mut b = batch_with(3, 10, Compression::None);
        b[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&5i32.to_be_bytes());
        let crc = compute_crc(&b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_records(&b, 1 << 20),
            Err(Error::InvalidRecord(_))
        ));
    }

    #[test]
    fn nonzero_base_offset_from_client_is_invalid_record() {
        let mut b = batch_with(2, 10, Compression::None);
        assign_offsets(&mut b, 5, 0);
        assert!(matches!(
            validate_records(&b, 1 << 20),
            Err(Error::InvalidRecord(_))
        ));
    }

    #[test]
    fn control_batch_from_client_is_invalid_record() {
        let mut b = batch_with(1, 10, Compression::None);
        let attrs = i16_at(&b, ATTRIBUTES_AT) | CONTROL_FLAG_MASK;
        b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
        let crc = compute_crc(&b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_records(&b, 1 << 20),
            Err(Error::InvalidRecord(_))
        ));
    }

    #[test]
    fn assign_offsets_writes_offsets_and_epoch_and_keeps_crc_valid() {
        let mut b = batch_with(3, 10, Compression::Snappy);
        b.extend_from_slice(&batch_with(2, 20, Compression::None));
        let next = assign_offsets(&mut b, 100, 7);
        assert_eq!(next, 105);
        let headers: Vec<_> = BatchIter::new(&b, true).map(|(_, h, _)| h).collect();
        assert_eq!(headers.len(), 2);
        assert_eq!(
            (headers[0].base_offset, headers[0].partition_leader_epoch),
            (100, 7)
        );
        assert_eq!(headers[1].base_offset, 103);
        let decoded = RecordBatchDecoder::decode_all(&mut Bytes::from(b.to_vec())).expect("dec");
        let offsets: Vec<i64> = decoded
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect();
        assert_eq!(offsets, vec![100, 101, 102, 103, 104]);
    }

    #[test]
    fn set_log_append_time_sets_bit_and_max_timestamp_with_valid_crc() {
        for codec in CODECS {
            let mut b = batch_with(3, 10, codec);
            set_log_append_time(&mut b, 99_999);
            let h = check_batch(&b).expect("crc still valid");
            assert!(h.is_log_append_time());
            assert_eq!(h.max_timestamp, 99_999);
            assert_eq!(h.compression_codec(), codec as i16);
        }
    }

    #[test]
    fn batch_iter_stops_at_torn_tail_and_reports_position() {
        let a = batch_with(2, 10, Compression::None);
        let mut buf = a.clone();
        buf.extend_from_slice(&a);
        buf.extend_from_slice(&a[..a.len() / 2]);
        let mut it = BatchIter::new(&buf, true);
        assert_eq!(it.by_ref().count(), 2);
        assert_eq!(it.position(), 2 * a.len());
        assert!(matches!(
            it.stopped(),
            Some(BatchIterStop::Incomplete { needed }) if *needed == a.len()
        ));
    }

    #[test]
    fn batch_iter_stops_at_bad_crc() {
        let a = batch_with(2, 10, Compression::None);
        let mut buf = a.clone();
        let mut bad = a.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        buf.extend_from_slice(&bad);
        let mut it = BatchIter::new(&buf, true);
        assert_eq!(it.by_ref().count(), 1);
        assert_eq!(it.position(), a.len());
        assert!(matches!(it.stopped(), Some(BatchIterStop::Invalid(_))));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let valid = batch_with(4, 10, Compression::None);
        for round in 0..5_000 {
            let mut buf: Vec<u8> = if round % 2 == 0 {
                let len = rng.gen_range(0..200);
                (0..len).map(|_| rng.gen()).collect()
            } else {
                // Mutate a valid batch so that headers look plausible.
                let mut v = valid.to_vec();
                for _ in 0..rng.gen_range(1..4) {
                    let i = rng.gen_range(0..v.len());
                    v[i] = rng.gen();
                }
                v.truncate(rng.gen_range(0..=v.len()));
                v
            };
            let _ = validate_records(&buf, 1 << 20);
            let _ = parse_header(&buf);
            for _ in BatchIter::new(&buf, true) {}
            for _ in BatchIter::new(&buf, false) {}
            if validate_records(&buf, 1 << 20).is_ok() {
                assign_offsets(&mut buf, 5, 1);
                set_log_append_time_all(&mut buf, 1);
            }
        }
    }
}
