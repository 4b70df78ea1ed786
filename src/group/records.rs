//! The key and value schemas of records in `__consumer_offsets`, as Kafka writes them, so
//! tools that read the topic (kafka-console-consumer's formatters, kcat) make sense of it and a
//! restarted coordinator rebuilds every group from it.
//!
//! Kafka defines them in group-coordinator/src/main/resources/common/message/. The key's
//! leading int16 (the key version, since Kafka 4.0 the coordinator record type) says which
//! schema the record holds; each key identifies what the log cleaner keeps one of:
//!
//! | type | key (group, ...) | value |
//! | --- | --- | --- |
//! | 0, 1 | OffsetCommitKey (group, topic, partition) | OffsetCommitValue v3 (0-3 read) |
//! | 2 | GroupMetadataKey (group) | GroupMetadataValue v3 (0-3 read) |
//! | 3 | ConsumerGroupMetadataKey (group) | ConsumerGroupMetadataValue v0: group epoch, tagged MetadataHash (KIP-1101) |
//! | 4 | ConsumerGroupPartitionMetadataKey (group) | deprecated by KIP-1101: Kafka 4.1 stops writing it and deletes it; never written here, skipped on replay |
//! | 5 | ConsumerGroupMemberMetadataKey (group, member) | ConsumerGroupMemberMetadataValue v0: instance id, rack, client, subscription, rebalance timeout, assignor |
//! | 6 | ConsumerGroupTargetAssignmentMetadataKey (group) | ConsumerGroupTargetAssignmentMetadataValue v0: assignment epoch |
//! | 7 | ConsumerGroupTargetAssignmentMemberKey (group, member) | ConsumerGroupTargetAssignmentMemberValue v0: the member's target partitions |
//! | 8 | ConsumerGroupCurrentMemberAssignmentKey (group, member) | ConsumerGroupCurrentMemberAssignmentValue v0: member epochs, state, assigned and pending-revocation partitions |
//!
//! Keys are never flexible (int16-length strings). The classic values are written in their
//! newest non-flexible version; the KIP-848 values (types 3-8) are flexible version 0: compact
//! strings and arrays, uuids as 16 bytes, and a tagged-field section after every struct, of
//! which unknown tags are skipped. A null value is a tombstone: the cleaner keeps it for
//! `delete.retention.ms` and then drops it, so a removed member or group leaves no record.
//! [`decode`] returns `None` for a key type this broker does not know (a newer Kafka's share
//! or streams groups) and for truncated or garbled bytes; it never panics.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::group::assignor::Assignment;

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
    /// ConsumerGroupMetadataKey (KIP-848), `None` for a tombstone (consumer group deleted).
    ConsumerGroupMetadata {
        group_id: String,
        value: Option<ConsumerGroupMetadataValue>,
    },
    /// ConsumerGroupPartitionMetadataKey: deprecated by KIP-1101 (Kafka 4.1 keeps a hash of
    /// the subscribed topics in ConsumerGroupMetadataValue instead); its value is not read.
    ConsumerGroupPartitionMetadata { group_id: String },
    /// ConsumerGroupMemberMetadataKey, `None` for a tombstone (member removed).
    ConsumerGroupMemberMetadata {
        group_id: String,
        member_id: String,
        value: Option<ConsumerGroupMemberMetadataValue>,
    },
    /// ConsumerGroupTargetAssignmentMetadataKey with the assignment epoch, `None` for a
    /// tombstone (group deleted).
    ConsumerGroupTargetAssignmentMetadata {
        group_id: String,
        assignment_epoch: Option<i32>,
    },
    /// ConsumerGroupTargetAssignmentMemberKey with the member's target partitions, `None` for
    /// a tombstone (member removed).
    ConsumerGroupTargetAssignmentMember {
        group_id: String,
        member_id: String,
        partitions: Option<Assignment>,
    },
    /// ConsumerGroupCurrentMemberAssignmentKey, `None` for a tombstone (member removed).
    ConsumerGroupCurrentMemberAssignment {
        group_id: String,
        member_id: String,
        value: Option<ConsumerGroupCurrentMemberAssignmentValue>,
    },
}

/// ConsumerGroupMetadataValue (flexible v0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConsumerGroupMetadataValue {
    pub epoch: i32,
    /// Tagged field 0 (KIP-1101, Kafka 4.1): a hash of the subscribed topics' metadata; a
    /// change bumps the group epoch. 0 (the default, not written) means no topics. Sluice's
    /// hash is its own (consumer.rs), not Kafka's XXH3: a Kafka broker reading it would see a
    /// change and bump the epoch once.
    pub metadata_hash: i64,
}

/// ConsumerGroupMemberMetadataValue (flexible v0).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConsumerGroupMemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// Tagged field 0: set for a member that uses the classic protocol inside a consumer
    /// group (KIP-848 online migration), so a restarted coordinator can still answer its
    /// JoinGroup, SyncGroup and Heartbeat, and convert the group back.
    pub classic_member_metadata: Option<ClassicMemberMetadata>,
}

/// ConsumerGroupMemberMetadataValue's ClassicMemberMetadata: the classic member's session
/// timeout and the protocols (name, embedded consumer protocol subscription) it joined with.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ClassicMemberMetadata {
    pub session_timeout_ms: i32,
    pub supported_protocols: Vec<(String, Bytes)>,
}

/// ConsumerGroupCurrentMemberAssignmentValue (flexible v0).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConsumerGroupCurrentMemberAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's MemberState: 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: i8,
    pub assigned_partitions: Assignment,
    pub partitions_pending_revocation: Assignment,
}

impl OffsetsRecord {
    /// Whether the record deletes its key (a null value).
    pub fn is_tombstone(&self) -> bool {
        match self {
            OffsetsRecord::Offset { value, .. } => value.is_none(),
            OffsetsRecord::Group { value, .. } => value.is_none(),
            OffsetsRecord::ConsumerGroupMetadata { value, .. } => value.is_none(),
            // Never read: treated as deleted.
            OffsetsRecord::ConsumerGroupPartitionMetadata { .. } => true,
            OffsetsRecord::ConsumerGroupMemberMetadata { value, .. } => value.is_none(),
            OffsetsRecord::ConsumerGroupTargetAssignmentMetadata {
                assignment_epoch, ..
            } => assignment_epoch.is_none(),
            OffsetsRecord::ConsumerGroupTargetAssignmentMember { partitions, .. } => {
                partitions.is_none()
            }
            OffsetsRecord::ConsumerGroupCurrentMemberAssignment { value, .. } => value.is_none(),
        }
    }
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
/// The KIP-848 consumer group key versions (record types); their values are flexible v0.
const CONSUMER_GROUP_METADATA: i16 = 3;
const CONSUMER_GROUP_PARTITION_METADATA: i16 = 4;
const CONSUMER_GROUP_MEMBER_METADATA: i16 = 5;
const CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA: i16 = 6;
const CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER: i16 = 7;
const CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT: i16 = 8;
/// The one value version of each KIP-848 record; a newer one is not guessed at.
const CONSUMER_GROUP_VALUE_VERSION: i16 = 0;
/// ConsumerGroupMetadataValue's tag of MetadataHash (KIP-1101).
const METADATA_HASH_TAG: u32 = 0;
/// ConsumerGroupMemberMetadataValue's tag of ClassicMemberMetadata.
const CLASSIC_MEMBER_METADATA_TAG: u32 = 0;
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

/// The key and value (None: a tombstone) of a record.
pub fn encode(record: &OffsetsRecord) -> (Bytes, Option<Bytes>) {
    match record {
        OffsetsRecord::Offset {
            group_id,
            topic,
            partition,
            value,
        } => (
            offset_key(group_id, topic, *partition),
            value.as_ref().map(offset_value),
        ),
        OffsetsRecord::Group { group_id, value } => {
            (group_key(group_id), value.as_ref().map(group_value))
        }
        OffsetsRecord::ConsumerGroupMetadata { group_id, value } => (
            group_only_key(CONSUMER_GROUP_METADATA, group_id),
            value.map(|v| {
                flexible_value(
                    |b| b.put_i32(v.epoch),
                    |tags| {
                        if v.metadata_hash != 0 {
                            tags.push((METADATA_HASH_TAG, v.metadata_hash.to_be_bytes().to_vec()));
                        }
                    },
                )
            }),
        ),
        OffsetsRecord::ConsumerGroupPartitionMetadata { group_id } => (
            group_only_key(CONSUMER_GROUP_PARTITION_METADATA, group_id),
            None,
        ),
        OffsetsRecord::ConsumerGroupMemberMetadata {
            group_id,
            member_id,
            value,
        } => (
            member_key(CONSUMER_GROUP_MEMBER_METADATA, group_id, member_id),
            value.as_ref().map(|v| {
                flexible_value(
                    |b| {
                        put_compact_nullable_string(b, v.instance_id.as_deref());
                        put_compact_nullable_string(b, v.rack_id.as_deref());
                        put_compact_string(b, &v.client_id);
                        put_compact_string(b, &v.client_host);
                        put_uvarint(b, v.subscribed_topic_names.len() as u32 + 1);
                        for name in &v.subscribed_topic_names {
                            put_compact_string(b, name);
                        }
                        put_compact_nullable_string(b, v.subscribed_topic_regex.as_deref());
                        b.put_i32(v.rebalance_timeout_ms);
                        put_compact_nullable_string(b, v.server_assignor.as_deref());
                    },
                    |tags| {
                        if let Some(classic) = &v.classic_member_metadata {
                            tags.push((
                                CLASSIC_MEMBER_METADATA_TAG,
                                classic_member_metadata(classic),
                            ));
                        }
                    },
                )
            }),
        ),
        OffsetsRecord::ConsumerGroupTargetAssignmentMetadata {
            group_id,
            assignment_epoch,
        } => (
            group_only_key(CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA, group_id),
            assignment_epoch.map(|e| flexible_value(|b| b.put_i32(e), |_| {})),
        ),
        OffsetsRecord::ConsumerGroupTargetAssignmentMember {
            group_id,
            member_id,
            partitions,
        } => (
            member_key(CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER, group_id, member_id),
            partitions
                .as_ref()
                .map(|p| flexible_value(|b| put_topic_partitions(b, p), |_| {})),
        ),
        OffsetsRecord::ConsumerGroupCurrentMemberAssignment {
            group_id,
            member_id,
            value,
        } => (
            member_key(
                CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
                group_id,
                member_id,
            ),
            value.as_ref().map(|v| {
                flexible_value(
                    |b| {
                        b.put_i32(v.member_epoch);
                        b.put_i32(v.previous_member_epoch);
                        b.put_i8(v.state);
                        put_topic_partitions(b, &v.assigned_partitions);
                        put_topic_partitions(b, &v.partitions_pending_revocation);
                    },
                    |_| {},
                )
            }),
        ),
    }
}

/// ClassicMemberMetadata as a flexible struct: SessionTimeoutMs, then SupportedProtocols
/// (name, metadata bytes, tagged fields each), then its own tagged fields.
fn classic_member_metadata(c: &ClassicMemberMetadata) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i32(c.session_timeout_ms);
    put_uvarint(&mut b, c.supported_protocols.len() as u32 + 1);
    for (name, metadata) in &c.supported_protocols {
        put_compact_string(&mut b, name);
        put_uvarint(&mut b, metadata.len() as u32 + 1);
        b.put_slice(metadata);
        put_uvarint(&mut b, 0);
    }
    put_uvarint(&mut b, 0);
    b.to_vec()
}

fn decode_classic_member_metadata(mut v: &[u8]) -> Option<ClassicMemberMetadata> {
    let v = &mut v;
    let session_timeout_ms = get_i32(v)?;
    let mut supported_protocols = Vec::new();
    for _ in 0..get_compact_array_len(v)? {
        let name = get_compact_nullable_string(v)??;
        let len = get_compact_array_len(v)? as usize;
        if v.remaining() < len {
            return None;
        }
        let metadata = Bytes::copy_from_slice(&v[..len]);
        v.advance(len);
        skip_tagged_fields(v)?;
        supported_protocols.push((name, metadata));
    }
    skip_tagged_fields(v)?;
    Some(ClassicMemberMetadata {
        session_timeout_ms,
        supported_protocols,
    })
}

fn group_only_key(version: i16, group_id: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(version);
    put_string(&mut b, group_id);
    b.freeze()
}

fn member_key(version: i16, group_id: &str, member_id: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(version);
    put_string(&mut b, group_id);
    put_string(&mut b, member_id);
    b.freeze()
}

/// A flexible v0 value: version, fields, then the tagged fields (tag, bytes) in tag order.
fn flexible_value(
    fields: impl FnOnce(&mut BytesMut),
    tagged: impl FnOnce(&mut Vec<(u32, Vec<u8>)>),
) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(CONSUMER_GROUP_VALUE_VERSION);
    fields(&mut b);
    let mut tags = Vec::new();
    tagged(&mut tags);
    put_uvarint(&mut b, tags.len() as u32);
    for (tag, data) in tags {
        put_uvarint(&mut b, tag);
        put_uvarint(&mut b, data.len() as u32);
        b.put_slice(&data);
    }
    b.freeze()
}

/// `[]TopicPartitions`: per topic its id and partitions, each entry with its own (empty)
/// tagged-field section.
fn put_topic_partitions(b: &mut BytesMut, a: &Assignment) {
    put_uvarint(b, a.len() as u32 + 1);
    for (topic_id, partitions) in a {
        b.put_slice(topic_id.as_bytes());
        put_uvarint(b, partitions.len() as u32 + 1);
        for p in partitions {
            b.put_i32(*p);
        }
        put_uvarint(b, 0);
    }
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
        CONSUMER_GROUP_METADATA..=CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT => {
            decode_consumer_group(version, k, value)
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

fn decode_consumer_group(
    version: i16,
    mut k: &[u8],
    value: Option<&[u8]>,
) -> Option<OffsetsRecord> {
    let group_id = get_string(&mut k)?;
    let member_id = match version {
        CONSUMER_GROUP_MEMBER_METADATA
        | CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER
        | CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT => get_string(&mut k)?,
        _ => String::new(),
    };
    // The value, past its version; None for a tombstone, Some(None) for one not understood.
    let mut v: Option<&[u8]> = match value {
        None => None,
        Some(mut v) => {
            if get_i16(&mut v)? != CONSUMER_GROUP_VALUE_VERSION {
                return None;
            }
            Some(v)
        }
    };
    Some(match version {
        CONSUMER_GROUP_METADATA => OffsetsRecord::ConsumerGroupMetadata {
            group_id,
            value: match v.as_mut() {
                None => None,
                Some(v) => Some(decode_consumer_group_metadata(v)?),
            },
        },
        CONSUMER_GROUP_PARTITION_METADATA => {
            OffsetsRecord::ConsumerGroupPartitionMetadata { group_id }
        }
        CONSUMER_GROUP_MEMBER_METADATA => OffsetsRecord::ConsumerGroupMemberMetadata {
            group_id,
            member_id,
            value: match v.as_mut() {
                None => None,
                Some(v) => Some(decode_member_metadata(v)?),
            },
        },
        CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA => {
            OffsetsRecord::ConsumerGroupTargetAssignmentMetadata {
                group_id,
                assignment_epoch: match v.as_mut() {
                    None => None,
                    Some(v) => {
                        let epoch = get_i32(v)?;
                        skip_tagged_fields(v)?;
                        Some(epoch)
                    }
                },
            }
        }
        CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER => {
            OffsetsRecord::ConsumerGroupTargetAssignmentMember {
                group_id,
                member_id,
                partitions: match v.as_mut() {
                    None => None,
                    Some(v) => {
                        let partitions = get_topic_partitions(v)?;
                        skip_tagged_fields(v)?;
                        Some(partitions)
                    }
                },
            }
        }
        CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT => {
            OffsetsRecord::ConsumerGroupCurrentMemberAssignment {
                group_id,
                member_id,
                value: match v.as_mut() {
                    None => None,
                    Some(v) => Some(decode_current_assignment(v)?),
                },
            }
        }
        _ => return None,
    })
}

fn decode_consumer_group_metadata(v: &mut &[u8]) -> Option<ConsumerGroupMetadataValue> {
    let epoch = get_i32(v)?;
    let mut metadata_hash = 0;
    for_each_tagged_field(v, |tag, mut data| {
        if tag == METADATA_HASH_TAG {
            metadata_hash = get_i64(&mut data)?;
        }
        Some(())
    })?;
    Some(ConsumerGroupMetadataValue {
        epoch,
        metadata_hash,
    })
}

fn decode_member_metadata(v: &mut &[u8]) -> Option<ConsumerGroupMemberMetadataValue> {
    let instance_id = get_compact_nullable_string(v)?;
    let rack_id = get_compact_nullable_string(v)?;
    let client_id = get_compact_nullable_string(v)??;
    let client_host = get_compact_nullable_string(v)??;
    let mut subscribed_topic_names = Vec::new();
    for _ in 0..get_compact_array_len(v)? {
        subscribed_topic_names.push(get_compact_nullable_string(v)??);
    }
    let subscribed_topic_regex = get_compact_nullable_string(v)?;
    let rebalance_timeout_ms = get_i32(v)?;
    let server_assignor = get_compact_nullable_string(v)?;
    let mut classic_member_metadata = None;
    for_each_tagged_field(v, |tag, data| {
        if tag == CLASSIC_MEMBER_METADATA_TAG {
            classic_member_metadata = Some(decode_classic_member_metadata(data)?);
        }
        Some(())
    })?;
    Some(ConsumerGroupMemberMetadataValue {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
        classic_member_metadata,
    })
}

fn decode_current_assignment(v: &mut &[u8]) -> Option<ConsumerGroupCurrentMemberAssignmentValue> {
    let member_epoch = get_i32(v)?;
    let previous_member_epoch = get_i32(v)?;
    let state = get_i8(v)?;
    let assigned_partitions = get_topic_partitions(v)?;
    let partitions_pending_revocation = get_topic_partitions(v)?;
    skip_tagged_fields(v)?;
    Some(ConsumerGroupCurrentMemberAssignmentValue {
        member_epoch,
        previous_member_epoch,
        state,
        assigned_partitions,
        partitions_pending_revocation,
    })
}

fn get_topic_partitions(v: &mut &[u8]) -> Option<Assignment> {
    let mut out = Assignment::new();
    for _ in 0..get_compact_array_len(v)? {
        if v.remaining() < 16 {
            return None;
        }
        let topic_id = Uuid::from_slice(&v[..16]).ok()?;
        v.advance(16);
        let partitions = out.entry(topic_id).or_default();
        for _ in 0..get_compact_array_len(v)? {
            partitions.insert(get_i32(v)?);
        }
        skip_tagged_fields(v)?;
    }
    Some(out)
}

/// A compact array's length; a null array (length 0 on the wire) reads as empty. The count
/// comes from the input, so callers never allocate by it: each element fails on its own
/// when the bytes run out.
fn get_compact_array_len(v: &mut &[u8]) -> Option<u32> {
    Some(get_uvarint(v)?.saturating_sub(1))
}

fn for_each_tagged_field(
    v: &mut &[u8],
    mut field: impl FnMut(u32, &[u8]) -> Option<()>,
) -> Option<()> {
    for _ in 0..get_uvarint(v)? {
        let tag = get_uvarint(v)?;
        let size = get_uvarint(v)? as usize;
        if v.remaining() < size {
            return None;
        }
        field(tag, &v[..size])?;
        v.advance(size);
    }
    Some(())
}

fn skip_tagged_fields(v: &mut &[u8]) -> Option<()> {
    for_each_tagged_field(v, |_, _| Some(()))
}

fn put_uvarint(b: &mut BytesMut, mut n: u32) {
    while n >= 0x80 {
        b.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    b.put_u8(n as u8);
}

fn get_uvarint(b: &mut &[u8]) -> Option<u32> {
    let mut n: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *b.first()?;
        b.advance(1);
        n |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn put_compact_string(b: &mut BytesMut, s: &str) {
    put_uvarint(b, s.len() as u32 + 1);
    b.put_slice(s.as_bytes());
}

fn put_compact_nullable_string(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_compact_string(b, s),
        None => put_uvarint(b, 0),
    }
}

/// `Some(None)` for a null string.
fn get_compact_nullable_string(b: &mut &[u8]) -> Option<Option<String>> {
    let len = get_uvarint(b)? as usize;
    if len == 0 {
        return Some(None);
    }
    let len = len - 1;
    if b.remaining() < len {
        return None;
    }
    let s = String::from_utf8_lossy(&b[..len]).into_owned();
    b.advance(len);
    Some(Some(s))
}

fn get_i8(b: &mut &[u8]) -> Option<i8> {
    (b.remaining() >= 1).then(|| b.get_i8())
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

    fn round_trip(record: OffsetsRecord) {
        let (key, value) = encode(&record);
        assert_eq!(decode(&key, value.as_deref()), Some(record));
    }

    const TOPIC: Uuid = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);

    fn assignment(partitions: &[i32]) -> Assignment {
        Assignment::from([(TOPIC, partitions.iter().copied().collect())])
    }

    #[test]
    fn consumer_group_metadata_is_kafkas_layout_with_the_hash_tagged() {
        let record = OffsetsRecord::ConsumerGroupMetadata {
            group_id: "g".into(),
            value: Some(ConsumerGroupMetadataValue {
                epoch: 7,
                metadata_hash: 0,
            }),
        };
        let (key, value) = encode(&record);
        assert_eq!(&key[..], &[0, 3, 0, 1, b'g']);
        // Version 0, epoch, no tagged fields (a zero hash is the default, not written).
        assert_eq!(value.as_deref(), Some(&[0, 0, 0, 0, 0, 7, 0][..]));
        round_trip(record);
        let hashed = OffsetsRecord::ConsumerGroupMetadata {
            group_id: "g".into(),
            value: Some(ConsumerGroupMetadataValue {
                epoch: 7,
                metadata_hash: 0x0102_0304_0506_0708,
            }),
        };
        let (_, value) = encode(&hashed);
        // One tagged field: tag 0, 8 bytes, the int64.
        assert_eq!(
            value.as_deref(),
            Some(&[0, 0, 0, 0, 0, 7, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8][..])
        );
        round_trip(hashed);
        round_trip(OffsetsRecord::ConsumerGroupMetadata {
            group_id: "g".into(),
            value: None,
        });
    }

    #[test]
    fn member_metadata_round_trips_and_skips_unknown_tagged_fields() {
        let value = ConsumerGroupMemberMetadataValue {
            instance_id: Some("i".into()),
            rack_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: Some("t.*".into()),
            rebalance_timeout_ms: 30_000,
            server_assignor: Some("uniform".into()),
            classic_member_metadata: None,
        };
        let record = OffsetsRecord::ConsumerGroupMemberMetadata {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(value.clone()),
        };
        let (key, bytes) = encode(&record);
        assert_eq!(&key[..], &[0, 5, 0, 1, b'g', 0, 1, b'm']);
        round_trip(record);
        // A tag this broker does not know (a newer Kafka's) is skipped.
        let mut with_tag = bytes.unwrap().to_vec();
        assert_eq!(with_tag.pop(), Some(0));
        with_tag.extend_from_slice(&[1, 5, 3, 9, 9, 9]);
        assert_eq!(
            decode(&key, Some(&with_tag)),
            Some(OffsetsRecord::ConsumerGroupMemberMetadata {
                group_id: "g".into(),
                member_id: "m".into(),
                value: Some(value),
            })
        );
        round_trip(OffsetsRecord::ConsumerGroupMemberMetadata {
            group_id: "g".into(),
            member_id: "m".into(),
            value: None,
        });
    }

    #[test]
    fn classic_member_metadata_is_tagged_field_zero_and_round_trips() {
        let value = ConsumerGroupMemberMetadataValue {
            client_id: "c".into(),
            classic_member_metadata: Some(ClassicMemberMetadata {
                session_timeout_ms: 45_000,
                supported_protocols: vec![("range".into(), Bytes::from_static(&[0, 3]))],
            }),
            ..Default::default()
        };
        let record = OffsetsRecord::ConsumerGroupMemberMetadata {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(value),
        };
        let (_, bytes) = encode(&record);
        let bytes = bytes.unwrap();
        // One tagged field, tag 0, 16 bytes: session timeout, one protocol ("range", two
        // metadata bytes, no tags), no tags.
        let tail = [
            1, 0, 16, 0, 0, 0xaf, 0xc8, 2, 6, b'r', b'a', b'n', b'g', b'e', 3, 0, 3, 0, 0,
        ];
        assert_eq!(&bytes[bytes.len() - tail.len()..], &tail);
        round_trip(record);
    }

    #[test]
    fn target_assignment_records_are_kafkas_layout() {
        let record = OffsetsRecord::ConsumerGroupTargetAssignmentMember {
            group_id: "g".into(),
            member_id: "m".into(),
            partitions: Some(assignment(&[0, 2])),
        };
        let (key, value) = encode(&record);
        assert_eq!(&key[..], &[0, 7, 0, 1, b'g', 0, 1, b'm']);
        let mut expected = vec![0, 0, 2];
        expected.extend_from_slice(TOPIC.as_bytes());
        expected.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0]);
        assert_eq!(value.as_deref(), Some(&expected[..]));
        round_trip(record);
        let epoch = OffsetsRecord::ConsumerGroupTargetAssignmentMetadata {
            group_id: "g".into(),
            assignment_epoch: Some(4),
        };
        assert_eq!(
            encode(&epoch).1.as_deref(),
            Some(&[0, 0, 0, 0, 0, 4, 0][..])
        );
        round_trip(epoch);
        round_trip(OffsetsRecord::ConsumerGroupTargetAssignmentMember {
            group_id: "g".into(),
            member_id: "m".into(),
            partitions: None,
        });
    }

    #[test]
    fn current_member_assignment_round_trips() {
        let record = OffsetsRecord::ConsumerGroupCurrentMemberAssignment {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(ConsumerGroupCurrentMemberAssignmentValue {
                member_epoch: 5,
                previous_member_epoch: 4,
                state: 1,
                assigned_partitions: assignment(&[1]),
                partitions_pending_revocation: assignment(&[2, 3]),
            }),
        };
        let (key, _) = encode(&record);
        assert_eq!(&key[..], &[0, 8, 0, 1, b'g', 0, 1, b'm']);
        round_trip(record);
        round_trip(OffsetsRecord::ConsumerGroupCurrentMemberAssignment {
            group_id: "g".into(),
            member_id: "m".into(),
            value: None,
        });
    }

    #[test]
    fn deprecated_partition_metadata_is_recognised_and_not_read() {
        let key = group_only_key(4, "g");
        assert_eq!(
            decode(&key, Some(&[0, 0, 1, 0])),
            Some(OffsetsRecord::ConsumerGroupPartitionMetadata {
                group_id: "g".into()
            })
        );
    }

    #[test]
    fn every_truncation_of_a_consumer_group_value_decodes_to_none() {
        let records = [
            OffsetsRecord::ConsumerGroupMemberMetadata {
                group_id: "g".into(),
                member_id: "m".into(),
                value: Some(ConsumerGroupMemberMetadataValue {
                    client_id: "c".into(),
                    subscribed_topic_names: vec!["t".into()],
                    ..Default::default()
                }),
            },
            OffsetsRecord::ConsumerGroupCurrentMemberAssignment {
                group_id: "g".into(),
                member_id: "m".into(),
                value: Some(ConsumerGroupCurrentMemberAssignmentValue {
                    assigned_partitions: assignment(&[0]),
                    ..Default::default()
                }),
            },
            OffsetsRecord::ConsumerGroupMetadata {
                group_id: "g".into(),
                value: Some(ConsumerGroupMetadataValue {
                    epoch: 1,
                    metadata_hash: 9,
                }),
            },
        ];
        for record in records {
            let (key, value) = encode(&record);
            let value = value.unwrap();
            for cut in 0..value.len() {
                assert_eq!(decode(&key, Some(&value[..cut])), None, "cut at {cut}");
            }
            for cut in 0..key.len() {
                assert_eq!(decode(&key[..cut], Some(&value)), None, "key cut at {cut}");
            }
        }
        // A newer value version is not guessed at; huge counts fail without allocating.
        let key = member_key(5, "g", "m");
        assert_eq!(decode(&key, Some(&[0, 1, 0])), None);
        let key = member_key(7, "g", "m");
        assert_eq!(
            decode(&key, Some(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f])),
            None
        );
        assert_eq!(
            decode(&key, Some(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
            None
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
