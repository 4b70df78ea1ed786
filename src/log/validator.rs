//! Kafka's LogValidator for client appends, the part that needs the records inside a batch:
//! CreateTime bounds per record (`message.timestamp.{before,after}.max.ms`, KIP-937), keys on
//! compacted topics, the LogAppendTime attribute set by a client, the declared record count
//! against the records section, and broker-side recompression (`compression.type`, KIP-390).
//! `Partition::append` runs it before taking the partition lock.
//!
//! Cost: the common case (CreateTime with the batch header's first and max timestamps in bounds
//! and `message.timestamp.before.max.ms` at its default, the producer's codec kept, a topic that
//! is not compacted) is decided from the 61-byte headers alone: nothing is decompressed or
//! copied. Only a policy that needs the records reads them, as Kafka does: compacted topics
//! (keys), a finite `message.timestamp.before.max.ms` (a record may be older than the batch's
//! first timestamp, which the header cannot tell), a header timestamp out of bounds (to name
//! the offending records), and a codec other than the topic's `compression.type`.

use bytes::BytesMut;

use crate::error::{Error, RecordError, Result};
use crate::log::{LogConfig, TimestampType};
use crate::protocol::compression::{compress, decompress, Codec, TargetCompression};
use crate::protocol::record_batch::{
    set_compression_codec, BatchHeader, BatchIter, BATCH_HEADER_LEN,
};

/// Applies the topic's produce-side policies to validated `records` (see the module doc).
/// Returns the records to append: the same buffer unless a batch was recompressed. Per-record
/// failures are `Error::RecordValidation` with each failing record's index.
pub fn apply_topic_policies(
    records: BytesMut,
    config: &LogConfig,
    now_ms: i64,
    topic: &str,
    partition: i32,
) -> Result<BytesMut> {
    let mut rebuilt: Option<Vec<u8>> = None;
    for (at, header, batch) in BatchIter::new(&records, false) {
        let target = recompress_to(&header, config);
        if !needs_records(&header, config, now_ms, target.is_some()) {
            if let Some(out) = rebuilt.as_mut() {
                out.extend_from_slice(batch);
            }
            continue;
        }
        let codec = Codec::from_id(header.compression_codec()).ok_or_else(|| {
            Error::CorruptMessage(format!(
                "unknown compression codec id {}",
                header.compression_codec()
            ))
        })?;
        let body = decompress(
            codec,
            &batch[BATCH_HEADER_LEN..],
            config.decompressed_batch_max_bytes,
        )?;
        check_records(&header, &body, config, now_ms, topic, partition)?;
        if let Some(target) = target {
            let out = rebuilt.get_or_insert_with(|| records[..at].to_vec());
            let start = out.len();
            out.extend_from_slice(&batch[..BATCH_HEADER_LEN]);
            compress(target, &body, out)?;
            set_compression_codec(&mut out[start..], target.codec.id());
            // Kafka re-checks the size after recompression (UnifiedLog.append).
            let size = out.len() - start;
            if size > config.max_message_bytes {
                return Err(Error::MessageTooLarge {
                    size,
                    max: config.max_message_bytes,
                });
            }
        } else if let Some(out) = rebuilt.as_mut() {
            out.extend_from_slice(batch);
        }
    }
    Ok(match rebuilt {
        Some(out) => BytesMut::from(&out[..]),
        None => records,
    })
}

/// The codec to rewrite the batch with, when the topic names one and the batch has another
/// (Kafka recompresses only then; a batch already in the target codec is kept as is).
fn recompress_to(h: &BatchHeader, config: &LogConfig) -> Option<TargetCompression> {
    config
        .compression
        .filter(|t| t.codec.id() != h.compression_codec())
}

fn needs_records(h: &BatchHeader, config: &LogConfig, now_ms: i64, recompress: bool) -> bool {
    let create_time_needs_records = config.message_timestamp_type == TimestampType::CreateTime
        && (config.message_timestamp_before_max_ms != i64::MAX
            || !timestamp_in_bounds(h.base_timestamp, config, now_ms)
            || !timestamp_in_bounds(h.max_timestamp, config, now_ms));
    recompress || config.cleanup_compact || h.is_log_append_time() || create_time_needs_records
}

/// Kafka's `recordHasInvalidTimestamp`; -1 (no timestamp) is always accepted.
fn timestamp_in_bounds(ts: i64, config: &LogConfig, now_ms: i64) -> bool {
    ts == -1
        || (now_ms.saturating_sub(ts) <= config.message_timestamp_before_max_ms
            && ts.saturating_sub(now_ms) <= config.message_timestamp_after_max_ms)
}

/// Per-record checks in Kafka's order (`validateKey`, then `validateTimestamp`): at most one
/// error per record, all of them reported.
fn check_records(
    h: &BatchHeader,
    body: &[u8],
    config: &LogConfig,
    now_ms: i64,
    topic: &str,
    partition: i32,
) -> Result<()> {
    let mut errors = Vec::new();
    let mut invalid_timestamp = false;
    for_each_record(body, h.records_count, |index, record| {
        if config.cleanup_compact && !record.has_key {
            errors.push(RecordError {
                batch_index: index,
                message: format!(
                    "Compacted topic cannot accept message without key in topic partition \
                     {topic}-{partition}"
                ),
            });
            return;
        }
        // A LogAppendTime batch's records all read as its max timestamp (DefaultRecordBatch).
        let ts = if h.is_log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(record.timestamp_delta)
        };
        let message = if config.message_timestamp_type == TimestampType::CreateTime && ts != -1 {
            (!timestamp_in_bounds(ts, config, now_ms)).then(|| {
                format!(
                    "Timestamp {ts} of message with offset {} is out of range. The timestamp \
                     should be within [{}, {}]",
                    record.offset_delta,
                    now_ms.saturating_sub(config.message_timestamp_before_max_ms),
                    now_ms.saturating_add(config.message_timestamp_after_max_ms)
                )
            })
        } else {
            h.is_log_append_time().then(|| {
                "Invalid timestamp type in message. Producer should not set timestamp type to \
                 LogAppendTime."
                    .to_string()
            })
        };
        if let Some(message) = message {
            invalid_timestamp = true;
            errors.push(RecordError {
                batch_index: index,
                message,
            });
        }
    })
    .map_err(|why| Error::InvalidRecord(format!("{why} in topic partition {topic}-{partition}")))?;
    if errors.is_empty() {
        return Ok(());
    }
    // Kafka's processRecordErrors messages.
    let message = if invalid_timestamp {
        "One or more records have been rejected due to invalid timestamp".to_string()
    } else {
        let shown: Vec<String> = errors
            .iter()
            .take(3)
            .map(|e| format!("{} ({})", e.batch_index, e.message))
            .collect();
        format!(
            "One or more records have been rejected due to {} record errors in total, and only \
             showing the first three errors at most: [{}]",
            errors.len(),
            shown.join(", ")
        )
    };
    Err(Error::RecordValidation {
        invalid_timestamp,
        message,
        record_errors: errors,
    })
}

/// What the checks need from one v2 record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordView {
    timestamp_delta: i64,
    offset_delta: i32,
    has_key: bool,
}

/// Walks the `count` records of a plain records section without copying, calling `f` with
/// each record's index. Every record must be well formed and fill its declared length, and
/// the section must hold exactly `count` records (Kafka's "declared count of records must
/// match"). Each step consumes input, so client-chosen counts cannot make it loop for long.
fn for_each_record(
    body: &[u8],
    count: i32,
    mut f: impl FnMut(i32, RecordView),
) -> std::result::Result<(), String> {
    let mut pos = 0;
    for index in 0..count {
        let len = read_varint(body, &mut pos)
            .filter(|l| *l >= 0)
            .ok_or_else(|| format!("record {index}: bad record length"))?;
        let end = pos
            .checked_add(len as usize)
            .filter(|e| *e <= body.len())
            .ok_or_else(|| {
                format!(
                    "found {index} records where the batch declares {count} (records end early)"
                )
            })?;
        let record = parse_record(&body[pos..end])
            .ok_or_else(|| format!("record {index} is malformed or does not fill its length"))?;
        f(index, record);
        pos = end;
    }
    if pos != body.len() {
        return Err(format!(
            "Incorrect declared batch size, records still remaining after {count} records"
        ));
    }
    Ok(())
}

/// attributes, timestampDelta, offsetDelta, key, value, headers; None unless the fields end
/// exactly at the end of `r`.
fn parse_record(r: &[u8]) -> Option<RecordView> {
    let mut p = 1; // attributes (unused in v2)
    if r.is_empty() {
        return None;
    }
    let timestamp_delta = read_varlong(r, &mut p)?;
    let offset_delta = read_varint(r, &mut p)?;
    let key_len = read_varint(r, &mut p)?;
    skip_nullable(r, &mut p, key_len)?;
    let value_len = read_varint(r, &mut p)?;
    skip_nullable(r, &mut p, value_len)?;
    let headers = read_varint(r, &mut p).filter(|n| *n >= 0)?;
    for _ in 0..headers {
        let key_len = read_varint(r, &mut p).filter(|l| *l >= 0)?;
        skip_nullable(r, &mut p, key_len)?;
        let value_len = read_varint(r, &mut p)?;
        skip_nullable(r, &mut p, value_len)?;
    }
    (p == r.len()).then_some(RecordView {
        timestamp_delta,
        offset_delta,
        has_key: key_len >= 0,
    })
}

/// Skips a length-prefixed field whose length was `len` (-1 is null).
fn skip_nullable(r: &[u8], p: &mut usize, len: i32) -> Option<()> {
    if len < -1 {
        return None;
    }
    if len > 0 {
        *p = p.checked_add(len as usize).filter(|e| *e <= r.len())?;
    }
    Some(())
}

/// Kafka's zig-zag varlong (at most 10 bytes).
fn read_varlong(b: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// Kafka's zig-zag varint.
fn read_varint(b: &[u8], pos: &mut usize) -> Option<i32> {
    read_varlong(b, pos).and_then(|v| i32::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::tests::{batch_with, batch_with_timestamps};
    use crate::protocol::record_batch::{check_batch, parse_header};
    use bytes::Bytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    };

    const NOW: i64 = 1_700_000_000_000;

    /// The plain records section of a batch.
    fn records_of(batch: &[u8], max: usize) -> Result<std::borrow::Cow<'_, [u8]>> {
        let h = parse_header(batch)?;
        let codec = Codec::from_id(h.compression_codec()).expect("test codec");
        decompress(codec, &batch[BATCH_HEADER_LEN..], max)
    }

    fn decode(records: &[u8]) -> Vec<Record> {
        RecordBatchDecoder::decode_all(&mut Bytes::copy_from_slice(records))
            .expect("decodes")
            .into_iter()
            .flat_map(|s| s.records)
            .collect()
    }

    fn keyless(n: usize, keyed_every: usize, compression: Compression) -> BytesMut {
        let mut b = batch_with(n, NOW, compression);
        let mut records = decode(&b);
        for (i, r) in records.iter_mut().enumerate() {
            if keyed_every == 0 || i % keyed_every != 0 {
                r.key = None;
            }
        }
        b.clear();
        RecordBatchEncoder::encode(
            &mut b,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode");
        b
    }

    fn apply(records: BytesMut, config: &LogConfig) -> Result<BytesMut> {
        apply_topic_policies(records, config, NOW, "t", 0)
    }

    #[test]
    fn common_case_returns_the_same_buffer_untouched() {
        let b = batch_with(5, NOW, Compression::Lz4);
        let expected = b.clone();
        let ptr = b.as_ptr();
        let out = apply(b, &LogConfig::default()).expect("ok");
        assert_eq!(out.as_ptr(), ptr, "no copy");
        assert_eq!(out, expected);
    }

    #[test]
    fn keyless_records_on_a_compacted_topic_are_invalid_record_with_their_indexes() {
        let config = LogConfig {
            cleanup_compact: true,
            ..LogConfig::default()
        };
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let err = apply(keyless(5, 2, codec), &config).expect_err("keyless");
            assert_eq!(err.error_code(), 87, "{codec:?}");
            let Error::RecordValidation { record_errors, .. } = err else {
                panic!("expected record errors");
            };
            let indexes: Vec<i32> = record_errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indexes, vec![1, 3]);
            assert!(record_errors[0].message.contains("Compacted topic"));
        }
        assert!(apply(batch_with(5, NOW, Compression::Snappy), &config).is_ok());
    }

    #[test]
    fn out_of_bounds_timestamps_name_each_record() {
        let config = LogConfig {
            message_timestamp_before_max_ms: 60_000,
            message_timestamp_after_max_ms: 60_000,
            ..LogConfig::default()
        };
        // Out of order inside the batch: record 1 is older than the first one, which only a
        // per-record check sees; record 3 is too far ahead.
        let ts = [NOW, NOW - 120_000, NOW + 1, NOW + 120_000];
        for codec in [Compression::None, Compression::Lz4] {
            let err = apply(batch_with_timestamps(&ts, codec), &config).expect_err("bad ts");
            assert_eq!(err.error_code(), 32, "{codec:?}");
            let Error::RecordValidation { record_errors, .. } = err else {
                panic!("expected record errors");
            };
            let indexes: Vec<i32> = record_errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indexes, vec![1, 3]);
        }
        let ok = [NOW, NOW - 59_000, NOW + 59_000];
        assert!(apply(batch_with_timestamps(&ok, Compression::None), &config).is_ok());
    }

    #[test]
    fn default_after_max_rejects_future_batches_from_the_header() {
        let b = batch_with(2, NOW + 3_600_001, Compression::None);
        let err = apply(b, &LogConfig::default()).expect_err("future");
        assert_eq!(err.error_code(), 32);
        assert!(apply(
            batch_with(2, NOW + 3_500_000, Compression::None),
            &LogConfig::default()
        )
        .is_ok());
        // Timestamps are not checked for LogAppendTime topics.
        let lat = LogConfig {
            message_timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        assert!(apply(batch_with(2, 0, Compression::None), &lat).is_ok());
    }

    #[test]
    fn recompression_to_each_codec_keeps_records_and_batch_fields() {
        for target in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let config = LogConfig {
                compression: Some(TargetCompression {
                    codec: target,
                    level: if target == Codec::Zstd { 3 } else { -1 },
                }),
                ..LogConfig::default()
            };
            for source in [Compression::None, Compression::Gzip, Compression::Zstd] {
                let mut input = batch_with(20, NOW, source);
                // Producer metadata as an idempotent producer sends it.
                input[43..51].copy_from_slice(&77i64.to_be_bytes());
                input[51..53].copy_from_slice(&3i16.to_be_bytes());
                input[53..57].copy_from_slice(&40i32.to_be_bytes());
                let crc = crate::protocol::record_batch::compute_crc(&input);
                input[17..21].copy_from_slice(&crc.to_be_bytes());
                let before = parse_header(&input).expect("header");
                let out = apply(input.clone(), &config).expect("recompress");
                let after = check_batch(&out).expect("valid batch with its CRC");
                assert_eq!(after.size_bytes(), out.len());
                assert_eq!(
                    after.compression_codec(),
                    target.id(),
                    "{source:?}->{target:?}"
                );
                assert_eq!(
                    (after.base_timestamp, after.max_timestamp, after.producer_id),
                    (before.base_timestamp, before.max_timestamp, 77)
                );
                assert_eq!(
                    (
                        after.producer_epoch,
                        after.base_sequence,
                        after.records_count
                    ),
                    (3, 40, 20)
                );
                assert_eq!(after.last_offset_delta, before.last_offset_delta);
                let (a, b) = (decode(&input), decode(&out));
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(&b) {
                    assert_eq!(
                        (x.offset, x.timestamp, &x.key, &x.value),
                        (y.offset, y.timestamp, &y.key, &y.value)
                    );
                    assert_eq!(x.headers, y.headers);
                }
                let plain_in = records_of(&input, 1 << 20).expect("in");
                let plain_out = records_of(&out, 1 << 20).expect("out");
                assert_eq!(plain_in, plain_out, "records section is byte-identical");
            }
        }
    }

    #[test]
    fn batch_already_in_the_target_codec_is_not_rewritten() {
        let config = LogConfig {
            compression: Some(TargetCompression {
                codec: Codec::Gzip,
                level: 9,
            }),
            ..LogConfig::default()
        };
        let b = batch_with(5, NOW, Compression::Gzip);
        let ptr = b.as_ptr();
        assert_eq!(apply(b, &config).expect("ok").as_ptr(), ptr);
    }

    #[test]
    fn recompressed_batch_over_max_message_bytes_is_message_too_large() {
        let b = batch_with(50, NOW, Compression::Zstd);
        let config = LogConfig {
            compression: Some(TargetCompression {
                codec: Codec::None,
                level: 0,
            }),
            max_message_bytes: b.len() + 10,
            ..LogConfig::default()
        };
        let err = apply(b, &config).expect_err("grows past the limit");
        assert_eq!(err.error_code(), 10);
    }

    #[test]
    fn declared_count_must_match_the_records() {
        let config = LogConfig {
            cleanup_compact: true,
            ..LogConfig::default()
        };
        let mut b = batch_with(3, NOW, Compression::None);
        for count in [2i32, 4] {
            b[57..61].copy_from_slice(&count.to_be_bytes());
            let err = apply(b.clone(), &config).expect_err("count mismatch");
            assert!(matches!(err, Error::InvalidRecord(_)), "{count}: {err:?}");
        }
    }

    #[test]
    fn client_set_log_append_time_is_invalid_timestamp_without_a_timestamp() {
        let mut b = batch_with_timestamps(&[-1, -1], Compression::None);
        crate::protocol::record_batch::set_log_append_time(&mut b, -1);
        let err = apply(b, &LogConfig::default()).expect_err("LAT from client");
        assert_eq!(err.error_code(), 32);
    }

    #[test]
    fn garbage_records_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let config = LogConfig {
            cleanup_compact: true,
            ..LogConfig::default()
        };
        let valid = batch_with(4, NOW, Compression::None);
        for _ in 0..3_000 {
            let mut v = valid.clone();
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(BATCH_HEADER_LEN..v.len());
                v[i] = rng.gen();
            }
            let _ = apply(v, &config);
        }
    }
}
