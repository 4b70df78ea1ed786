//! The key and value schemas of records in `__consumer_offsets`, as Kafka writes them, so
//! tools that read the topic (kafka-console-consumer's formatters, kcat) make sense of it.
//!
//! Kafka defines them in group-coordinator/src/main/resources/common/message/
//! (OffsetCommitKey/Value, GroupMetadataKey/Value). The key's leading int16 says which schema
//! the record holds: 0 and 1 an offset commit, 2 group metadata, 3 a KIP-848 consumer group's
//! epoch (ConsumerGroupMetadataKey/Value; the other KIP-848 records are not written, see
//! consumer.rs). Values are written in the
//! newest non-flexible version (OffsetCommitValue v3, GroupMetadataValue v3); a null value is
//! a tombstone. Decoding accepts every version 0-3 of either value.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A decoded `__consumer_offsets` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OffsetsRecord {
    /// OffsetCommitKey with its value, or `None` for a tombstone (offset deleted or expired).
    Offset {
        group_id: String,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    },
    /// GroupMetadataKey with its value, or `None` for a tombstone (group deleted).
    Group {
        group_id: String,
        value: Option<GroupMetadataValue>,
    },
    /// ConsumerGroupMetadataKey (KIP-848) with the group epoch of ConsumerGroupMetadataValue,
    /// or `None` for a tombstone (consumer group deleted).
    ConsumerGroup {
        group_id: String,
        epoch: Option<i32>,
    },
}

/// OffsetCommitValue (v3 written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// GroupMetadataValue (v3 written).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadataValue>,
}

/// One member inside GroupMetadataValue.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// OffsetCommitKey version 1 (what Kafka 4 writes; 0 is the same layout).
const OFFSET_KEY_VERSION: i16 = 1;
/// GroupMetadataKey version 2.
const GROUP_KEY_VERSION: i16 = 2;
/// ConsumerGroupMetadataKey version 3 (KIP-848; its value is flexible version 0).
const CONSUMER_GROUP_KEY_VERSION: i16 = 3;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

pub fn offset_key(group_id: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(OFFSET_KEY_VERSION);
    put_string(&mut b, group_id);
    put_string(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

pub fn offset_value(v: &OffsetCommitValue) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(OFFSET_VALUE_VERSION);
    b.put_i64(v.offset);
    b.put_i32(v.leader_epoch);
    put_string(&mut b, &v.metadata);
    b.put_i64(v.commit_timestamp_ms);
    b.freeze()
}

pub fn group_key(group_id: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(GROUP_KEY_VERSION);
    put_string(&mut b, group_id);
    b.freeze()
}

pub fn group_value(v: &GroupMetadataValue) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(GROUP_VALUE_VERSION);
    put_string(&mut b, &v.protocol_type);
    b.put_i32(v.generation);
    put_nullable_string(&mut b, v.protocol.as_deref());
    put_nullable_string(&mut b, v.leader.as_deref());
    b.put_i64(v.current_state_timestamp_ms);
    b.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_string(&mut b, &m.member_id);
        put_nullable_string(&mut b, m.group_instance_id.as_deref());
        put_string(&mut b, &m.client_id);
        put_string(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

pub fn consumer_group_key(group_id: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(CONSUMER_GROUP_KEY_VERSION);
    put_string(&mut b, group_id);
    b.freeze()
}

/// ConsumerGroupMetadataValue v0: the group epoch, then an empty tagged-field section.
pub fn consumer_group_value(epoch: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(epoch);
    b.put_u8(0);
    b.freeze()
}

/// Decodes a record of the topic; `None` for a key this broker does not know (a newer Kafka's
/// record types), which replay skips.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<OffsetsRecord> {
    let mut k = key;
    let version = get_i16(&mut k)?;
    match version {
        0 | 1 => {
            let group_id = get_string(&mut k)?;
            let topic = get_string(&mut k)?;
            let partition = get_i32(&mut k)?;
            let value = match value {
                None => None,
                Some(v) => Some(decode_offset_value(v)?),
            };
            Some(OffsetsRecord::Offset {
                group_id,
                topic,
                partition,
                value,
            })
        }
        2 => {
            let group_id = get_string(&mut k)?;
            let value = match value {
                None => None,
                Some(v) => Some(decode_group_value(v)?),
            };
            Some(OffsetsRecord::Group { group_id, value })
        }
        CONSUMER_GROUP_KEY_VERSION => {
            let group_id = get_string(&mut k)?;
            let epoch = match value {
                None => None,
                Some(mut v) => {
                    get_i16(&mut v)?;
                    Some(get_i32(&mut v)?)
                }
            };
            Some(OffsetsRecord::ConsumerGroup { group_id, epoch })
        }
        _ => None,
    }
}

fn decode_offset_value(mut v: &[u8]) -> Option<OffsetCommitValue> {
    let version = get_i16(&mut v)?;
    let offset = get_i64(&mut v)?;
    let leader_epoch = if version >= 3 { get_i32(&mut v)? } else { -1 };
    let metadata = get_string(&mut v)?;
    let commit_timestamp_ms = get_i64(&mut v)?;
    Some(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn decode_group_value(mut v: &[u8]) -> Option<GroupMetadataValue> {
    let version = get_i16(&mut v)?;
    if version > 3 {
        return None;
    }
    let protocol_type = get_string(&mut v)?;
    let generation = get_i32(&mut v)?;
    let protocol = get_nullable_string(&mut v)?;
    let leader = get_nullable_string(&mut v)?;
    let current_state_timestamp_ms = if version >= 2 { get_i64(&mut v)? } else { -1 };
    let count = get_i32(&mut v)?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = get_string(&mut v)?;
        let group_instance_id = if version >= 3 {
            get_nullable_string(&mut v)?
        } else {
            None
        };
        let client_id = get_string(&mut v)?;
        let client_host = get_string(&mut v)?;
        let session_timeout_first = get_i32(&mut v)?;
        // v0 has only the session timeout; v1+ puts the rebalance timeout before it.
        let (rebalance_timeout_ms, session_timeout_ms) = if version >= 1 {
            (session_timeout_first, get_i32(&mut v)?)
        } else {
            (session_timeout_first, session_timeout_first)
        };
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(MemberMetadataValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

fn put_string(b: &mut BytesMut, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    b.put_i16(bytes.len() as i16);
    b.put_slice(bytes);
}

fn put_nullable_string(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, bytes: &[u8]) {
    b.put_i32(bytes.len() as i32);
    b.put_slice(bytes);
}

fn get_i16(b: &mut &[u8]) -> Option<i16> {
    (b.remaining() >= 2).then(|| b.get_i16())
}

fn get_i32(b: &mut &[u8]) -> Option<i32> {
    (b.remaining() >= 4).then(|| b.get_i32())
}

fn get_i64(b: &mut &[u8]) -> Option<i64> {
    (b.remaining() >= 8).then(|| b.get_i64())
}

fn get_nullable_string(b: &mut &[u8]) -> Option<Option<String>> {
    let len = get_i16(b)?;
    if len < 0 {
        return Some(None);
    }
    let len = len as usize;
    if b.remaining() < len {
        return None;
    }
    let s = String::from_utf8_lossy(&b[..len]).into_owned();
    b.advance(len);
    Some(Some(s))
}

fn get_string(b: &mut &[u8]) -> Option<String> {
    get_nullable_string(b)?
}

fn get_bytes(b: &mut &[u8]) -> Option<Bytes> {
    let len = get_i32(b)?;
    if len < 0 {
        return Some(Bytes::new());
    }
    let len = len as usize;
    if b.remaining() < len {
        return None;
    }
    let out = Bytes::copy_from_slice(&b[..len]);
    b.advance(len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_commit_round_trips_with_metadata_and_leader_epoch() {
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp_ms: 1234,
        };
        let key = offset_key("g", "t", 3);
        let decoded = decode(&key, Some(&offset_value(&value)));
        assert_eq!(
            decoded,
            Some(OffsetsRecord::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(value)
            })
        );
    }

    #[test]
    fn group_metadata_round_trips_and_tombstone_is_none() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 99,
            members: vec![MemberMetadataValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300000,
                session_timeout_ms: 45000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let key = group_key("g");
        assert_eq!(
            decode(&key, Some(&group_value(&value))),
            Some(OffsetsRecord::Group {
                group_id: "g".into(),
                value: Some(value)
            })
        );
        assert_eq!(
            decode(&key, None),
            Some(OffsetsRecord::Group {
                group_id: "g".into(),
                value: None
            })
        );
    }

    #[test]
    fn consumer_group_epoch_round_trips_in_kafkas_layout() {
        let key = consumer_group_key("g");
        assert_eq!(&key[..], &[0, 3, 0, 1, b'g']);
        assert_eq!(&consumer_group_value(7)[..], &[0, 0, 0, 0, 0, 7, 0]);
        assert_eq!(
            decode(&key, Some(&consumer_group_value(7))),
            Some(OffsetsRecord::ConsumerGroup {
                group_id: "g".into(),
                epoch: Some(7)
            })
        );
        assert_eq!(
            decode(&key, None),
            Some(OffsetsRecord::ConsumerGroup {
                group_id: "g".into(),
                epoch: None
            })
        );
    }

    #[test]
    fn truncated_or_unknown_records_decode_to_none() {
        assert_eq!(decode(&[0, 9], None), None);
        assert_eq!(decode(&[0], None), None);
        let key = offset_key("g", "t", 0);
        assert_eq!(decode(&key[..key.len() - 1], None), None);
        assert_eq!(decode(&key, Some(&[0, 3, 0])), None);
    }
}
