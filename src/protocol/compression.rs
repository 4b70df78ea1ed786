//! The record codecs of v2 batches (attribute bits 0-2) as Kafka frames them: bounded
//! decompression of a batch's records section and compression at a KIP-390 level. Used only
//! where a feature needs the records (log::validator for topic policies, the log cleaner,
//! ListOffsets by timestamp); the produce hot path never calls it.
//!
//! Framing follows Kafka's own streams so every client can read what the broker writes:
//! gzip is a gzip stream, snappy uses xerial's block framing (Kafka's SnappyOutputStream; raw
//! snappy is accepted on input, as librdkafka writes it), lz4 is an LZ4 frame of independent
//! 64 KiB blocks without checksums (Kafka's Lz4BlockOutputStream), zstd is one zstd frame.

use std::borrow::Cow;
use std::io::{Read, Write};

use crate::error::{Error, Result};

/// Compression codec ids of the batch attributes (Kafka's `CompressionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    /// The codec of attribute bits 0-2; `None` for the unused ids 5-7.
    pub fn from_id(id: i16) -> Option<Codec> {
        match id {
            0 => Some(Codec::None),
            1 => Some(Codec::Gzip),
            2 => Some(Codec::Snappy),
            3 => Some(Codec::Lz4),
            4 => Some(Codec::Zstd),
            _ => None,
        }
    }

    pub fn id(self) -> i16 {
        self as i16
    }
}

/// What the broker compresses to when `compression.type` names a codec, with that codec's
/// `compression.<codec>.level` (KIP-390); the level is ignored for `None` and snappy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetCompression {
    pub codec: Codec,
    pub level: i32,
}

/// xerial snappy framing (Kafka's SnappyOutputStream): magic, version 1, compatible version 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Kafka's SnappyOutputStream block size.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

fn corrupt(codec: Codec, e: impl std::fmt::Display) -> Error {
    Error::CorruptMessage(format!("{codec:?} records do not decompress: {e}"))
}

fn too_large(max: usize) -> Error {
    Error::CorruptMessage(format!(
        "decompressed records exceed sluice.decompressed.batch.max.bytes {max}"
    ))
}

/// Reads `r` to its end; None once more than `max` bytes come out (a small compressed batch
/// can expand to gigabytes; neither a client nor a stored batch may make the broker allocate
/// that).
fn read_bounded(r: impl Read, codec: Codec, max: usize) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    r.take(limit)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    Ok((out.len() <= max).then_some(out))
}

/// The records section of a batch (the bytes after its 61-byte header) as plain records.
/// Uncompressed data is borrowed, not copied. At most `max` bytes are produced: more is
/// CorruptMessage (`sluice.decompressed.batch.max.bytes`).
pub fn decompress(codec: Codec, data: &[u8], max: usize) -> Result<Cow<'_, [u8]>> {
    decompress_within(codec, data, max)?.ok_or_else(|| too_large(max))
}

/// As [`decompress`], but a records section larger than `max` is `Ok(None)`, so that callers
/// reading stored batches (the log cleaner, ListOffsets) can fall back to the batch header
/// instead of failing. Decompression stops as soon as the bound is passed.
pub fn decompress_within(codec: Codec, data: &[u8], max: usize) -> Result<Option<Cow<'_, [u8]>>> {
    let out = match codec {
        Codec::None => return Ok(Some(Cow::Borrowed(data))),
        Codec::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(data), codec, max)?,
        Codec::Snappy => snappy_decompress(data, max)?,
        Codec::Lz4 => {
            let decoder = lz4::Decoder::new(data).map_err(|e| corrupt(codec, e))?;
            read_bounded(decoder, codec, max)?
        }
        Codec::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| corrupt(codec, e))?;
            read_bounded(decoder, codec, max)?
        }
    };
    Ok(out.map(Cow::Owned))
}

fn snappy_decompress(data: &[u8], max: usize) -> Result<Option<Vec<u8>>> {
    // Ok(false): the block would take the output past `max`.
    let raw = |block: &[u8], out: &mut Vec<u8>| -> Result<bool> {
        let len = snap::raw::decompress_len(block).map_err(|e| corrupt(Codec::Snappy, e))?;
        if out.len().saturating_add(len) > max {
            return Ok(false);
        }
        let start = out.len();
        out.resize(start + len, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|e| corrupt(Codec::Snappy, e))?;
        Ok(true)
    };
    let mut out = Vec::new();
    let Some(mut rest) = data.strip_prefix(&XERIAL_HEADER[..8]) else {
        return Ok(raw(data, &mut out)?.then_some(out));
    };
    // Version and compatible version (8 bytes) follow the magic; then length-prefixed blocks.
    rest = rest
        .get(8..)
        .ok_or_else(|| corrupt(Codec::Snappy, "truncated xerial header"))?;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(Codec::Snappy, "truncated block length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail
            .get(..len)
            .ok_or_else(|| corrupt(Codec::Snappy, "truncated block"))?;
        if !raw(block, &mut out)? {
            return Ok(None);
        }
        rest = &tail[len..];
    }
    Ok(Some(out))
}

/// Compresses plain records with `target`'s codec and level, appending to `out`.
pub fn compress(target: TargetCompression, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let io = |e: std::io::Error| Error::Storage(e);
    match target.codec {
        Codec::None => out.extend_from_slice(data),
        Codec::Gzip => {
            // -1 is the codec's default (6), as java.util.zip.Deflater's DEFAULT_COMPRESSION.
            let level = match u32::try_from(target.level) {
                Ok(l @ 1..=9) => flate2::Compression::new(l),
                _ => flate2::Compression::default(),
            };
            let mut e = flate2::write::GzEncoder::new(out, level);
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)?;
        }
        Codec::Snappy => {
            out.extend_from_slice(XERIAL_HEADER);
            let mut encoder = snap::raw::Encoder::new();
            for block in data.chunks(XERIAL_BLOCK_BYTES) {
                let compressed = encoder
                    .compress_vec(block)
                    .map_err(|e| Error::Storage(std::io::Error::other(e)))?;
                out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
        }
        Codec::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .level(u32::try_from(target.level).unwrap_or(9))
                .build(out)
                .map_err(io)?;
            e.write_all(data).map_err(io)?;
            let (_, result) = e.finish();
            result.map_err(io)?;
        }
        Codec::Zstd => {
            let compressed = zstd::bulk::compress(data, target.level).map_err(io)?;
            out.extend_from_slice(&compressed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips_at_its_default_level() {
        let data = sample();
        for (codec, level) in CODECS.into_iter().zip([0, -1, 0, 9, 3]) {
            let mut out = Vec::new();
            compress(TargetCompression { codec, level }, &data, &mut out).expect("compress");
            let back = decompress(codec, &out, 1 << 30).expect("decompress");
            assert_eq!(back.as_ref(), &data[..], "{codec:?}");
        }
    }

    #[test]
    fn decompression_past_the_bound_fails_instead_of_allocating() {
        let data = vec![0u8; 1 << 20];
        for codec in &CODECS[1..] {
            let mut out = Vec::new();
            let target = TargetCompression {
                codec: *codec,
                level: 1,
            };
            compress(target, &data, &mut out).expect("compress");
            assert!(
                matches!(
                    decompress(*codec, &out, 1000),
                    Err(Error::CorruptMessage(_))
                ),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn decompress_within_says_none_past_the_bound_and_some_within_it() {
        let data = vec![7u8; 100_000];
        for codec in CODECS {
            let mut out = Vec::new();
            compress(TargetCompression { codec, level: 1 }, &data, &mut out).expect("compress");
            let over = decompress_within(codec, &out, 99_999).expect("not corrupt");
            assert!(over.is_none() || codec == Codec::None, "{codec:?}");
            let within = decompress_within(codec, &out, 100_000).expect("not corrupt");
            assert_eq!(within.as_deref(), Some(&data[..]), "{codec:?}");
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it_decompresses() {
        let data = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&data).expect("raw");
        let back = decompress(Codec::Snappy, &raw, 1 << 30).expect("decompress");
        assert_eq!(back.as_ref(), &data[..]);
    }

    #[test]
    fn garbage_is_corrupt_message_never_a_panic() {
        for codec in &CODECS[1..] {
            for data in [
                &b""[..],
                b"\x82SNAPPY\x00\x00",
                b"garbage bytes here",
                &[0xff; 64],
            ] {
                let _ = decompress(*codec, data, 1 << 20);
            }
        }
    }
}
