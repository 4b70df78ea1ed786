//! KIP-848 online migration between the classic and the consumer group protocol: converting
//! a classic group into a consumer group and back, and serving classic members (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup) inside a consumer group (Kafka's
//! GroupMetadataManager.classicGroup*ToConsumerGroup, ConsumerGroup.fromClassicGroup and
//! ClassicGroup.fromConsumerGroup), with the embedded consumer protocol they carry.
//!
//! Pure and synchronous like classic.rs and consumer.rs; group/mod.rs decides when a
//! conversion happens (`group.consumer.migration.policy`), stores its records and answers.
//! A classic member of a consumer group gets its partitions from the server-side assignor:
//! its JoinGroup is answered at once with its member epoch as the generation, SyncGroup hands
//! it its current assignment, and Heartbeat answers REBALANCE_IN_PROGRESS whenever it must
//! rejoin to move on (a new group epoch, partitions to revoke, freed partitions to take).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;

use crate::group::assignor::Assignment;
use crate::group::classic::{
    Group, JoinRequest, JoinResult, MigratedMember, SyncRequest, SyncResult,
};
use crate::group::consumer::{ConsumerGroup, ConsumerMember, MemberState, Settings, Topics};
use crate::group::records::ClassicMemberMetadata;

/// The protocol type of the consumer protocol embedded in the classic one.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// The newest ConsumerProtocolSubscription/Assignment version (KIP-881 rack ids).
const CONSUMER_PROTOCOL_VERSION_MAX: i16 = 3;
/// JoinGroup v4+ makes a dynamic member without an id fetch one first (KIP-394).
const JOIN_MEMBER_ID_REQUIRED_VERSION: i16 = 4;

/// A decoded ConsumerProtocolSubscription (the classic JoinGroup metadata of a consumer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// v1+: the partitions the member owns as it joins (cooperative rebalancing).
    pub owned_partitions: Vec<(String, Vec<i32>)>,
    /// v3+ (KIP-881).
    pub rack_id: Option<String>,
}

/// Decodes a ConsumerProtocolSubscription of any version (later versions only add fields at
/// the end, so a newer one is read as far as v3); `None` if it is malformed.
pub fn parse_subscription(metadata: &[u8]) -> Option<Subscription> {
    let mut b = metadata;
    let version = get_i16(&mut b)?;
    if version < 0 {
        return None;
    }
    let mut sub = Subscription {
        version,
        topics: get_string_array(&mut b)?,
        ..Default::default()
    };
    get_nullable_bytes(&mut b)?; // user data
    if version >= 1 {
        sub.owned_partitions = get_topic_partitions(&mut b)?;
    }
    if version >= 2 {
        get_i32(&mut b)?; // generation id
    }
    if version >= 3 {
        sub.rack_id = get_nullable_string(&mut b)?;
    }
    Some(sub)
}

/// Decodes a ConsumerProtocolAssignment (every version starts alike); empty bytes (a member
/// that never synced) are no partitions.
pub fn parse_assignment(assignment: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    if assignment.is_empty() {
        return Some(Vec::new());
    }
    let mut b = assignment;
    let _version = get_i16(&mut b)?;
    get_topic_partitions(&mut b)
}

/// Encodes a ConsumerProtocolAssignment in `version` (capped at the newest this broker
/// knows), as Kafka serializes it for the version the member's subscription used.
pub fn encode_assignment(version: i16, partitions: &[(String, Vec<i32>)]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(version.clamp(0, CONSUMER_PROTOCOL_VERSION_MAX));
    b.put_i32(partitions.len() as i32);
    for (topic, ps) in partitions {
        put_string(&mut b, topic);
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(*p);
        }
    }
    b.put_i32(-1); // null user data
    b.freeze()
}

/// The version of a subscription (what the assignment sent back is encoded in).
fn subscription_version(metadata: &[u8]) -> i16 {
    let mut b = metadata;
    get_i16(&mut b).unwrap_or(0).max(0)
}

fn to_ids(partitions: &[(String, Vec<i32>)], topics: &Topics) -> Assignment {
    let mut out = Assignment::new();
    for (name, ps) in partitions {
        if let Some((id, _)) = topics.by_name.get(name) {
            out.entry(*id).or_default().extend(ps.iter().copied());
        }
    }
    out
}

fn to_names(assignment: &Assignment, topics: &Topics) -> Vec<(String, Vec<i32>)> {
    assignment
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .filter_map(|(id, ps)| {
            let name = topics.name_of(id)?;
            Some((name.to_string(), ps.iter().copied().collect()))
        })
        .collect()
}

/// Kafka's validateOnlineUpgrade (past the policy, which the caller checks): the group
/// must use the embedded consumer protocol and fit in `group.consumer.max.size`.
pub fn can_upgrade(classic: &Group, settings: &Settings) -> bool {
    classic.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
        && classic.members.len() <= settings.max_size
}

/// Kafka's ConsumerGroup.fromClassicGroup: every classic member becomes a classic member of a
/// consumer group at epoch = the generation, Stable, its last assignment both its current
/// and its target assignment; the group epoch and assignment epoch are the generation. A
/// member whose embedded protocol does not parse fails the upgrade.
pub fn consumer_group_from_classic(
    classic: &Group,
    topics: &Topics,
    settings: &Settings,
    now_ms: i64,
) -> Result<ConsumerGroup, String> {
    let mut group = ConsumerGroup::new(classic.group_id.clone(), settings);
    let generation = classic.generation_id;
    group.group_epoch = generation;
    group.assignment_epoch = generation;
    for m in classic.members.values() {
        let metadata = match &classic.protocol_name {
            Some(_) => classic.member_metadata(&m.member_id),
            None => m
                .protocols
                .first()
                .map(|(_, b)| b.clone())
                .unwrap_or_default(),
        };
        let subscription = parse_subscription(&metadata)
            .ok_or_else(|| format!("member {} has a malformed subscription", m.member_id))?;
        let assigned = parse_assignment(&m.assignment)
            .ok_or_else(|| format!("member {} has a malformed assignment", m.member_id))?;
        let assigned = to_ids(&assigned, topics);
        let mut member = ConsumerMember::new(m.member_id.clone(), now_ms, settings);
        member.member_epoch = generation;
        member.previous_member_epoch = generation;
        member.state = MemberState::Stable;
        member.instance_id = m.group_instance_id.clone();
        member.rack_id = subscription.rack_id.clone();
        member.rebalance_timeout_ms = m.rebalance_timeout_ms;
        member.client_id = m.client_id.clone();
        member.client_host = m.client_host.clone();
        member.subscribed_topic_names = sorted(subscription.topics);
        member.assigned = assigned.clone();
        member.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: m.session_timeout_ms,
            supported_protocols: m.protocols.clone(),
        });
        member.session_deadline_ms = now_ms + m.session_timeout_ms.max(0) as i64;
        group.target.insert(m.member_id.clone(), assigned);
        group.members.insert(m.member_id.clone(), member);
    }
    group.assignor = group.preferred_assignor(settings);
    // The subscribed topics as of the conversion; the joining member's heartbeat bumps the
    // group epoch anyway (its subscription is new), which starts the first reconciliation.
    group.refresh_subscribed_metadata(topics);
    Ok(group)
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.dedup();
    names
}

impl ConsumerGroup {
    /// Members using the classic protocol.
    pub fn classic_member_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.uses_classic_protocol())
            .count()
    }

    /// Kafka's allMembersUseClassicProtocolExcept with validateOnlineDowngradeWithFencedMember's
    /// size checks (past the policy, which the caller checks): `member_id` is the last
    /// consumer-protocol member, at least one classic member stays, and they fit in
    /// `group.max.size`.
    pub fn can_downgrade_without(&self, member_id: &str, classic_max_size: usize) -> bool {
        let Some(leaving) = self.members.get(member_id) else {
            return false;
        };
        let others = self.members.len() - 1;
        !leaving.uses_classic_protocol()
            && self.classic_member_count() == others
            && others >= 1
            && others <= classic_max_size
    }

    /// Kafka's ClassicGroup.fromConsumerGroup: the classic members (all but `leaving`) move
    /// into `classic` (the entry holding the group's offsets), Stable at the group epoch, each
    /// with its target assignment in its own consumer protocol version. Returns the
    /// GroupMetadataValue to store; the caller rebalances the classic group once stored.
    pub fn downgrade_into(
        &self,
        leaving: &str,
        classic: &mut Group,
        topics: &Topics,
        now: crate::group::classic::Now,
    ) -> crate::group::records::GroupMetadataValue {
        let members: Vec<MigratedMember> = self
            .members
            .values()
            .filter(|m| m.member_id != leaving)
            .map(|m| {
                let c = m.classic.clone().unwrap_or_default();
                MigratedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: c.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: c.supported_protocols,
                }
            })
            .collect();
        classic.take_over_members(self.group_epoch, members, now);
        for id in self.members.keys().filter(|id| *id != leaving) {
            let target = self.target.get(id).cloned().unwrap_or_default();
            let version = subscription_version(&classic.member_metadata(id));
            classic.set_assignment(id, encode_assignment(version, &to_names(&target, topics)));
        }
        classic.to_metadata_value()
    }

    /// A classic member's JoinGroup (Kafka's classicGroupJoinToConsumerGroup): joins or
    /// updates the member, bumps the group epoch if its subscription changed, recomputes the
    /// target, reconciles the member with the partitions its subscription says it owns, and
    /// answers at once with its member epoch as the generation. No leader: the assignment
    /// comes from the server-side assignor through SyncGroup.
    pub fn classic_join(
        &mut self,
        req: &JoinRequest,
        topics: &Topics,
        settings: &Settings,
        now_ms: i64,
    ) -> JoinResult {
        let unknown = req.member_id.is_empty();
        let member_id = if unknown {
            req.new_member_id.clone()
        } else {
            req.member_id.clone()
        };
        let fail = |e: ResponseError| JoinResult::error(e, req.member_id.clone());
        if !self.members.contains_key(&member_id)
            && req.group_instance_id.is_none()
            && self.members.len() >= settings.max_size
        {
            return fail(ResponseError::GroupMaxSizeReached);
        }
        if !self.supports_classic_protocols(&req.protocol_type, &req.protocols) {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        if unknown
            && req.group_instance_id.is_none()
            && req.api_version >= JOIN_MEMBER_ID_REQUIRED_VERSION
        {
            return JoinResult::error(ResponseError::MemberIdRequired, member_id);
        }
        let Some(subscription) = req
            .protocols
            .first()
            .and_then(|(_, metadata)| parse_subscription(metadata))
        else {
            return fail(ResponseError::InconsistentGroupProtocol);
        };
        let mut bump = match self.classic_member_for(req, &member_id, unknown, settings, now_ms) {
            Ok(joined) => joined,
            Err(e) => return fail(e),
        };
        let Some(m) = self.members.get_mut(&member_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        if req.group_instance_id.is_some() {
            m.instance_id = req.group_instance_id.clone();
        }
        if subscription.rack_id.is_some() {
            m.rack_id = subscription.rack_id.clone();
        }
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: req.session_timeout_ms,
            supported_protocols: req.protocols.clone(),
        });
        m.session_deadline_ms = now_ms + req.session_timeout_ms.max(0) as i64;
        let names = sorted(subscription.topics.clone());
        if names != m.subscribed_topic_names {
            m.subscribed_topic_names = names;
            bump = true;
        }
        bump |= self.refresh_subscribed_metadata(topics);
        if bump {
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(topics, settings);
        }
        let owned = to_ids(&subscription.owned_partitions, topics);
        self.reconcile(&member_id, Some(&owned), now_ms);
        if self
            .members
            .get(&member_id)
            .is_some_and(|m| m.state == MemberState::UnrevokedPartitions)
        {
            // The JoinGroup itself tells what the member still owns: an eager member has
            // given up everything before rejoining, so its revocation is complete now and
            // it moves on in this same round instead of rejoining once more.
            self.reconcile(&member_id, Some(&owned), now_ms);
        }
        let Some(m) = self.members.get(&member_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        JoinResult {
            error: None,
            generation_id: m.member_epoch,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name: req.protocols.first().map(|(n, _)| n.clone()),
            leader: String::new(),
            member_id,
            skip_assignment: false,
            members: Vec::new(),
        }
    }

    /// Kafka's supportsClassicProtocols: the embedded consumer protocol, and one protocol
    /// name every classic member supports (any, when there are none yet).
    fn supports_classic_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if protocol_type != CONSUMER_PROTOCOL_TYPE || protocols.is_empty() {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .filter_map(|m| m.classic.as_ref())
                .all(|c| c.supported_protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// Finds or adds the joining classic member; true if it is new (a group epoch bump). A
    /// static member joining without a member id takes over its instance's place, assignment
    /// and epoch (KIP-345 as Kafka applies it to a consumer group); one with another member's
    /// id is fenced.
    fn classic_member_for(
        &mut self,
        req: &JoinRequest,
        member_id: &str,
        unknown: bool,
        settings: &Settings,
        now_ms: i64,
    ) -> Result<bool, ResponseError> {
        if let Some(instance) = &req.group_instance_id {
            let existing = self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance))
                .map(|m| m.member_id.clone());
            if let Some(old_id) = existing {
                if old_id == member_id {
                    return Ok(false);
                }
                if !unknown {
                    return Err(ResponseError::FencedInstanceId);
                }
                if let Some(mut m) = self.members.shift_remove(&old_id) {
                    m.member_id = member_id.to_string();
                    if m.member_epoch < 0 {
                        m.member_epoch = m.previous_member_epoch;
                    }
                    if let Some(t) = self.target.remove(&old_id) {
                        self.target.insert(member_id.to_string(), t);
                    }
                    self.members.insert(member_id.to_string(), m);
                }
                return Ok(false);
            }
        }
        if self.members.contains_key(member_id) {
            return Ok(false);
        }
        // A member id the group does not know yet joins too: the one MEMBER_ID_REQUIRED
        // handed out (a consumer group keeps no pending ids, as Kafka's).
        self.members.insert(
            member_id.to_string(),
            ConsumerMember::new(member_id.to_string(), now_ms, settings),
        );
        Ok(true)
    }

    /// The classic member a SyncGroup, Heartbeat or LeaveGroup names (Kafka's
    /// validateConsumerGroupMember and throwIfMemberDoesNotUseClassicProtocol).
    fn classic_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&ConsumerMember, ResponseError> {
        let member = match instance_id {
            None => self.members.get(member_id),
            Some(instance) => {
                let m = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(instance))
                    .ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && m.member_id != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                Some(m)
            }
        };
        member
            .filter(|m| m.uses_classic_protocol())
            .ok_or(ResponseError::UnknownMemberId)
    }

    /// A classic member's SyncGroup (Kafka's classicGroupSyncToConsumerGroup): its current
    /// assignment, unless the group moved on and it must rejoin first.
    pub fn classic_sync(&mut self, req: &SyncRequest, topics: &Topics, now_ms: i64) -> SyncResult {
        let member = match self.classic_member(&req.member_id, req.group_instance_id.as_deref()) {
            Ok(m) => m,
            Err(e) => return SyncResult::error(e),
        };
        if req.generation_id != member.member_epoch {
            return SyncResult::error(ResponseError::IllegalGeneration);
        }
        let protocols = member
            .classic
            .as_ref()
            .map(|c| c.supported_protocols.clone())
            .unwrap_or_default();
        let Some((protocol_name, metadata)) = protocols.first() else {
            return SyncResult::error(ResponseError::InconsistentGroupProtocol);
        };
        let type_differs = req
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE);
        let name_differs = req
            .protocol_name
            .as_deref()
            .is_some_and(|n| n != protocol_name);
        if type_differs || name_differs {
            return SyncResult::error(ResponseError::InconsistentGroupProtocol);
        }
        // A member still revoking has rejoined already; it finishes that first.
        if self.group_epoch > member.member_epoch
            && member.state != MemberState::UnrevokedPartitions
        {
            return SyncResult::error(ResponseError::RebalanceInProgress);
        }
        let assignment = encode_assignment(
            subscription_version(metadata),
            &to_names(&member.assigned, topics),
        );
        let member_id = member.member_id.clone();
        self.refresh_classic_session(&member_id, now_ms);
        SyncResult {
            error: None,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name: Some(protocol_name.clone()),
            assignment,
        }
    }

    /// A classic member's Heartbeat (Kafka's classicGroupHeartbeatToConsumerGroup):
    /// REBALANCE_IN_PROGRESS when it must rejoin: the group epoch moved past its epoch, it has
    /// partitions to revoke, or the partitions it waits for are all free now.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Option<ResponseError> {
        let member = match self.classic_member(member_id, instance_id) {
            Ok(m) => m,
            Err(e) => return Some(e),
        };
        if generation_id != member.member_epoch {
            return Some(ResponseError::IllegalGeneration);
        }
        let rejoin = member.member_epoch < self.group_epoch
            || member.state == MemberState::UnrevokedPartitions
            || (member.state == MemberState::UnreleasedPartitions
                && !self.waiting_on_unreleased_partition(member));
        let member_id = member.member_id.clone();
        self.refresh_classic_session(&member_id, now_ms);
        rejoin.then_some(ResponseError::RebalanceInProgress)
    }

    /// A classic member's LeaveGroup (one member of the request): removed at once, its
    /// partitions free, the group epoch bumped (Kafka's classicGroupLeaveToConsumerGroup).
    pub fn classic_leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<String, ResponseError> {
        let id = self
            .classic_member(member_id, instance_id)?
            .member_id
            .clone();
        self.remove_member(&id);
        Ok(id)
    }

    /// Kafka's waitingOnUnreleasedPartition: a partition of its target it does not have yet
    /// is still owned by another member.
    fn waiting_on_unreleased_partition(&self, member: &ConsumerMember) -> bool {
        let Some(target) = self.target.get(&member.member_id) else {
            return false;
        };
        target.iter().any(|(t, ps)| {
            ps.iter().any(|p| {
                !member.assigned.get(t).is_some_and(|a| a.contains(p))
                    && self.owned_by_other(&member.member_id, t, *p)
            })
        })
    }

    fn refresh_classic_session(&mut self, member_id: &str, now_ms: i64) {
        if let Some(m) = self.members.get_mut(member_id) {
            let timeout = m
                .classic
                .as_ref()
                .map_or(0, |c| c.session_timeout_ms.max(0));
            m.session_deadline_ms = now_ms + timeout as i64;
        }
    }
}

fn get_i16(b: &mut &[u8]) -> Option<i16> {
    (b.remaining() >= 2).then(|| b.get_i16())
}

fn get_i32(b: &mut &[u8]) -> Option<i32> {
    (b.remaining() >= 4).then(|| b.get_i32())
}

fn get_string(b: &mut &[u8]) -> Option<String> {
    get_nullable_string(b)?
}

/// `Some(None)` for a null string, `None` if malformed.
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

fn get_nullable_bytes(b: &mut &[u8]) -> Option<()> {
    let len = get_i32(b)?;
    if len < 0 {
        return Some(());
    }
    let len = len as usize;
    if b.remaining() < len {
        return None;
    }
    b.advance(len);
    Some(())
}

/// An array count from the input: never allocated by, each element fails on its own when the
/// bytes run out.
fn get_count(b: &mut &[u8]) -> Option<usize> {
    let n = get_i32(b)?;
    Some(n.max(0) as usize)
}

fn get_string_array(b: &mut &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for _ in 0..get_count(b)? {
        out.push(get_string(b)?);
    }
    Some(out)
}

fn get_topic_partitions(b: &mut &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    let mut out = Vec::new();
    for _ in 0..get_count(b)? {
        let topic = get_string(b)?;
        let mut partitions = Vec::new();
        for _ in 0..get_count(b)? {
            partitions.push(get_i32(b)?);
        }
        out.push((topic, partitions));
    }
    Some(out)
}

fn put_string(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use uuid::Uuid;

    use super::*;
    use crate::group::assignor::Assignor;
    use crate::group::classic::{GroupState, Limits, Now};
    use crate::group::consumer::Heartbeat;
    use crate::group::records::{GroupMetadataValue, MemberMetadataValue};

    const T: Uuid = Uuid::from_u128(7);
    const LIMITS: Limits = Limits {
        group_max_size: 10,
        initial_rebalance_delay_ms: 0,
    };

    fn settings() -> Settings {
        Settings {
            heartbeat_interval_ms: 5000,
            session_timeout_ms: 45000,
            max_size: 10,
            assignors: vec![Assignor::Uniform, Assignor::Range],
        }
    }

    fn topics() -> Topics {
        Topics {
            by_name: BTreeMap::from([("t".to_string(), (T, 4))]),
        }
    }

    fn at(ms: i64) -> Now {
        Now {
            mono_ms: ms,
            wall_ms: 1_000_000 + ms,
        }
    }

    /// A ConsumerProtocolSubscription v3 of topic "t" owning `owned`.
    fn subscription(owned: &[i32]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(3);
        b.put_i32(1);
        put_string(&mut b, "t");
        b.put_i32(-1);
        b.put_i32(if owned.is_empty() { 0 } else { 1 });
        if !owned.is_empty() {
            put_string(&mut b, "t");
            b.put_i32(owned.len() as i32);
            for p in owned {
                b.put_i32(*p);
            }
        }
        b.put_i32(-1);
        b.put_i16(-1);
        b.freeze()
    }

    fn assigned(partitions: &[i32]) -> Bytes {
        encode_assignment(3, &[("t".to_string(), partitions.to_vec())])
    }

    /// A Stable classic group of generation 5: c1 owns 0 and 1, c2 owns 2 and 3.
    fn stable_classic_group() -> Group {
        let mut g = Group::new("g".into(), at(0));
        let member = |id: &str, ps: &[i32]| MemberMetadataValue {
            member_id: id.into(),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 30_000,
            session_timeout_ms: 10_000,
            subscription: subscription(&[]),
            assignment: assigned(ps),
            ..Default::default()
        };
        g.apply_metadata_value(
            GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation: 5,
                protocol: Some("range".into()),
                leader: Some("c1".into()),
                current_state_timestamp_ms: 0,
                members: vec![member("c1", &[0, 1]), member("c2", &[2, 3])],
            },
            at(0),
        );
        g
    }

    fn classic_join(member_id: &str, owned: &[i32]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            client_id: "client".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(owned))],
            api_version: 9,
            new_member_id: format!("{member_id}-new"),
            ..Default::default()
        }
    }

    fn consumer_join(id: &str) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..Default::default()
        }
    }

    fn partitions_of(sync: &SyncResult) -> BTreeSet<i32> {
        parse_assignment(&sync.assignment)
            .unwrap()
            .into_iter()
            .flat_map(|(_, ps)| ps)
            .collect()
    }

    fn sync(member_id: &str, generation_id: i32) -> SyncRequest {
        SyncRequest {
            member_id: member_id.into(),
            generation_id,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            ..Default::default()
        }
    }

    #[test]
    fn subscriptions_of_every_version_parse_and_malformed_ones_do_not() {
        let v3 = parse_subscription(&subscription(&[1, 2])).unwrap();
        assert_eq!(v3.version, 3);
        assert_eq!(v3.topics, vec!["t".to_string()]);
        assert_eq!(v3.owned_partitions, vec![("t".to_string(), vec![1, 2])]);
        assert_eq!(v3.rack_id, None);
        let mut v0 = BytesMut::new();
        v0.put_i16(0);
        v0.put_i32(1);
        put_string(&mut v0, "a");
        v0.put_i32(2);
        v0.put_slice(b"ud");
        let v0 = parse_subscription(&v0).unwrap();
        assert_eq!((v0.version, v0.topics), (0, vec!["a".to_string()]));
        assert!(v0.owned_partitions.is_empty());
        let full = subscription(&[1, 2]);
        for cut in 0..full.len() {
            assert_eq!(parse_subscription(&full[..cut]), None, "cut at {cut}");
        }
        assert_eq!(parse_subscription(b"x"), None);
        let encoded = assigned(&[3, 1]);
        assert_eq!(
            parse_assignment(&encoded),
            Some(vec![("t".to_string(), vec![3, 1])])
        );
        assert_eq!(parse_assignment(b""), Some(vec![]));
        assert_eq!(parse_assignment(&encoded[..5]), None);
    }

    #[test]
    fn upgrade_keeps_generation_members_and_assignments() {
        let classic = stable_classic_group();
        assert!(can_upgrade(&classic, &settings()));
        let g = consumer_group_from_classic(&classic, &topics(), &settings(), 0).unwrap();
        assert_eq!((g.group_epoch, g.assignment_epoch), (5, 5));
        assert_eq!(g.members.len(), 2);
        let c1 = &g.members["c1"];
        assert_eq!((c1.member_epoch, c1.previous_member_epoch), (5, 5));
        assert_eq!(c1.state, MemberState::Stable);
        assert_eq!(c1.subscribed_topic_names, vec!["t".to_string()]);
        assert_eq!(c1.assigned[&T], BTreeSet::from([0, 1]));
        assert_eq!(g.target["c2"][&T], BTreeSet::from([2, 3]));
        let classic_metadata = c1.classic.as_ref().expect("a classic member");
        assert_eq!(classic_metadata.session_timeout_ms, 10_000);
        assert_eq!(classic_metadata.supported_protocols[0].0, "range");
        assert_eq!(g.classic_member_count(), 2);
    }

    #[test]
    fn upgrade_is_refused_for_other_protocol_types_and_oversized_groups() {
        let mut classic = stable_classic_group();
        let small = Settings {
            max_size: 1,
            ..settings()
        };
        assert!(!can_upgrade(&classic, &small));
        classic.protocol_type = Some("connect".into());
        assert!(!can_upgrade(&classic, &settings()));
    }

    #[test]
    fn classic_members_rejoin_and_hand_partitions_to_a_consumer_member() {
        let s = settings();
        let t = topics();
        let mut g = consumer_group_from_classic(&stable_classic_group(), &t, &s, 0).unwrap();
        let r = g.heartbeat(consumer_join("m"), &t, &s, 0);
        assert_eq!(r.member_epoch, 6);
        assert!(
            r.assignment.unwrap().is_empty(),
            "its partitions are still owned"
        );
        // The classic members are told to rejoin; their generation still commits.
        assert_eq!(
            g.classic_heartbeat("c1", None, 5, 0),
            Some(ResponseError::RebalanceInProgress)
        );
        assert_eq!(g.validate_commit("c1", 5, 7), Ok(()));
        assert_eq!(
            g.validate_commit("c1", 4, 7),
            Err(ResponseError::IllegalGeneration)
        );
        // An eager member rejoins owning nothing: revocation and the new epoch in one round.
        let j = g.classic_join(&classic_join("c1", &[]), &t, &s, 0);
        assert_eq!(j.error, None);
        assert_eq!(j.generation_id, 6);
        assert_eq!(j.leader, "");
        assert_eq!(j.protocol_name.as_deref(), Some("range"));
        let kept = partitions_of(&g.classic_sync(&sync("c1", 6), &t, 0));
        assert!(kept.len() < 2, "c1 gave something up: {kept:?}");
        assert_eq!(g.classic_heartbeat("c1", None, 6, 0), None);
        let j = g.classic_join(&classic_join("c2", &[]), &t, &s, 0);
        assert_eq!(j.generation_id, 6);
        let r = g.heartbeat(
            Heartbeat {
                member_id: "m".into(),
                member_epoch: 6,
                rebalance_timeout_ms: -1,
                owned: Some(Assignment::new()),
                ..Default::default()
            },
            &t,
            &s,
            0,
        );
        let got = r.assignment.unwrap();
        assert!(!got[&T].is_empty(), "the consumer member got partitions");
        let mut all: Vec<i32> = got[&T].iter().copied().collect();
        all.extend(partitions_of(&g.classic_sync(&sync("c1", 6), &t, 0)));
        all.extend(partitions_of(&g.classic_sync(&sync("c2", 6), &t, 0)));
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3], "every partition exactly once");
    }

    #[test]
    fn classic_requests_are_checked_as_kafka() {
        let s = settings();
        let t = topics();
        let mut g = consumer_group_from_classic(&stable_classic_group(), &t, &s, 0).unwrap();
        g.heartbeat(consumer_join("m"), &t, &s, 0);
        assert_eq!(
            g.classic_heartbeat("m", None, 6, 0),
            Some(ResponseError::UnknownMemberId),
            "a consumer-protocol member cannot use Heartbeat"
        );
        assert_eq!(
            g.classic_heartbeat("c1", None, 4, 0),
            Some(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            g.classic_sync(&sync("c1", 5), &t, 0).error,
            Some(ResponseError::RebalanceInProgress)
        );
        let mut other = classic_join("", &[]);
        other.protocols = vec![("roundrobin".into(), subscription(&[]))];
        assert_eq!(
            g.classic_join(&other, &t, &s, 0).error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
        let mut bad = classic_join("", &[]);
        bad.protocols = vec![("range".into(), Bytes::from_static(b"x"))];
        bad.api_version = 3;
        assert_eq!(
            g.classic_join(&bad, &t, &s, 0).error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
        let fresh = g.classic_join(&classic_join("", &[]), &t, &s, 0);
        assert_eq!(fresh.error, Some(ResponseError::MemberIdRequired));
        assert_eq!(fresh.member_id, "-new");
        // It joins with the id it was handed.
        let joined = g.classic_join(&classic_join("-new", &[]), &t, &s, 0);
        assert_eq!(joined.error, None);
        assert!(g.members["-new"].uses_classic_protocol());
        assert_eq!(g.classic_leave("c2", None), Ok("c2".to_string()));
        assert!(!g.members.contains_key("c2"));
    }

    #[test]
    fn downgrade_gives_classic_members_their_targets_at_the_group_epoch() {
        let s = settings();
        let t = topics();
        let mut g = consumer_group_from_classic(&stable_classic_group(), &t, &s, 0).unwrap();
        g.heartbeat(consumer_join("m"), &t, &s, 0);
        assert!(g.can_downgrade_without("m", 10));
        assert!(!g.can_downgrade_without("m", 1), "over group.max.size");
        assert!(!g.can_downgrade_without("c1", 10), "a classic member");
        let mut classic = Group::new("g".into(), at(0));
        let value = g.downgrade_into("m", &mut classic, &t, at(0));
        assert_eq!(classic.state, GroupState::Stable);
        assert_eq!(classic.generation_id, g.group_epoch);
        assert_eq!(classic.protocol_name.as_deref(), Some("range"));
        assert_eq!(classic.members.len(), 2);
        assert!(!classic.members.contains_key("m"));
        assert_eq!(value.members.len(), 2);
        for m in &value.members {
            let target: BTreeSet<i32> = g.target[&m.member_id][&T].iter().copied().collect();
            let stored: BTreeSet<i32> = parse_assignment(&m.assignment)
                .unwrap()
                .into_iter()
                .flat_map(|(_, ps)| ps)
                .collect();
            assert_eq!(stored, target, "{}", m.member_id);
            assert_eq!(m.session_timeout_ms, 10_000);
        }
        classic.rebalance_after_downgrade(LIMITS, at(0));
        assert_eq!(classic.state, GroupState::PreparingRebalance);
        assert_eq!(
            classic.heartbeat("c1", None, g.group_epoch, at(1)),
            Some(ResponseError::RebalanceInProgress)
        );
    }

    #[test]
    fn a_group_with_consumer_members_left_is_not_downgraded() {
        let s = settings();
        let t = topics();
        let mut g = consumer_group_from_classic(&stable_classic_group(), &t, &s, 0).unwrap();
        g.heartbeat(consumer_join("m"), &t, &s, 0);
        g.heartbeat(consumer_join("n"), &t, &s, 0);
        assert!(!g.can_downgrade_without("m", 10));
        g.classic_leave("c1", None).unwrap();
        g.classic_leave("c2", None).unwrap();
        assert!(!g.can_downgrade_without("m", 10), "no classic member stays");
    }
}
