//! A response buffer that splices known record bytes in instead of copying them.
//!
//! kafka-protocol encodes a Fetch response's records with `put_slice`, copying every stored
//! batch into the response buffer. [`SplicingBuf`] is handed the records it will meet; when
//! `put_slice` is called with exactly one of them (same pointer and length), it closes the
//! encoded head so far as one part and appends the record `Bytes` itself as the next, so the
//! connection writes the stored bytes straight from the log's buffer (DESIGN.md: fetch serves
//! stored bytes without re-encoding or extra copies).

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Smallest slice worth a part of its own: below this a copy is cheaper than an iovec.
const SPLICE_MIN_BYTES: usize = 1024;

/// An encoding buffer made of parts: encoded bytes and spliced-in record bytes.
#[derive(Debug, Default)]
pub struct SplicingBuf {
    head: BytesMut,
    parts: Vec<Bytes>,
    /// Bytes already moved into `parts`; offsets the encoder sees count them.
    flushed: usize,
    /// Record buffers that may be spliced rather than copied.
    candidates: Vec<Bytes>,
}

impl SplicingBuf {
    pub fn new(candidates: Vec<Bytes>) -> Self {
        SplicingBuf {
            candidates: candidates
                .into_iter()
                .filter(|b| b.len() >= SPLICE_MIN_BYTES)
                .collect(),
            ..Default::default()
        }
    }

    /// Appends already-encoded bytes (a response header) as they are.
    pub fn put_encoded(&mut self, encoded: &[u8]) {
        self.head.extend_from_slice(encoded);
    }

    /// The encoded frame body as parts to write back to back.
    pub fn into_parts(mut self) -> Vec<Bytes> {
        if !self.head.is_empty() {
            self.parts.push(self.head.freeze());
        }
        self.parts
    }

    fn splice(&mut self, src: &[u8]) -> bool {
        let Some(index) = self
            .candidates
            .iter()
            .position(|c| c.as_ptr() == src.as_ptr() && c.len() == src.len())
        else {
            return false;
        };
        let record_bytes = self.candidates.swap_remove(index);
        if !self.head.is_empty() {
            let head = self.head.split().freeze();
            self.flushed += head.len();
            self.parts.push(head);
        }
        self.flushed += record_bytes.len();
        self.parts.push(record_bytes);
        true
    }
}

// SAFETY: every method delegates to the inner `BytesMut`, whose contract this inherits;
// `put_slice` either splices (touching no uninitialised memory) or delegates.
unsafe impl BufMut for SplicingBuf {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of `chunk_mut`, which is the head's.
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= SPLICE_MIN_BYTES && self.splice(src) {
            return;
        }
        self.head.extend_from_slice(src);
    }
}

impl ByteBufMut for SplicingBuf {
    fn offset(&self) -> usize {
        self.flushed + self.head.len()
    }

    fn seek(&mut self, offset: usize) {
        assert!(
            offset >= self.flushed,
            "an encoder seeked back into spliced bytes"
        );
        self.head.resize(offset - self.flushed, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        assert!(
            r.start >= self.flushed,
            "an encoder wrote back into spliced bytes"
        );
        &mut self.head[r.start - self.flushed..r.end - self.flushed]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Encodable;

    fn response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_records(Some(r.clone()))
            })
            .collect();
        FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default().with_partitions(partitions)
        ])
    }

    #[test]
    fn spliced_encoding_equals_plain_encoding_for_every_version() {
        let records = vec![
            Bytes::from(vec![7u8; 5000]),
            Bytes::from(vec![9u8; 10]),
            Bytes::from(vec![3u8; 2048]),
        ];
        for version in 4..=13 {
            let response = response(&records);
            let mut plain = BytesMut::new();
            response.encode(&mut plain, version).unwrap();
            let mut spliced = SplicingBuf::new(records.clone());
            response.encode(&mut spliced, version).unwrap();
            let parts = spliced.into_parts();
            assert!(
                parts.len() >= 4,
                "large records became parts: {}",
                parts.len()
            );
            let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(&joined[..], &plain[..], "v{version}");
        }
    }

    #[test]
    fn spliced_parts_share_the_record_buffers() {
        let record = Bytes::from(vec![1u8; 4096]);
        let response = response(std::slice::from_ref(&record));
        let mut spliced = SplicingBuf::new(vec![record.clone()]);
        response.encode(&mut spliced, 12).unwrap();
        let parts = spliced.into_parts();
        assert!(parts.iter().any(|p| p.as_ptr() == record.as_ptr()));
    }
}
