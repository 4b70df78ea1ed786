//! One classic-protocol group: Kafka's state machine (Empty, PreparingRebalance,
//! CompletingRebalance, Stable, Dead), members, protocol selection, timers and the offsets
//! committed for it.
//!
//! Pure and synchronous: the coordinator (group/mod.rs) owns the lock, the clock and the log;
//! joins and syncs that must wait for the rest of the group hold a oneshot sender in their
//! member, fired when the rebalance moves on. Deadlines are monotonic milliseconds.

use std::collections::BTreeSet;

use bytes::{Buf, Bytes};
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use crate::group::records::{GroupMetadataValue, MemberMetadataValue};

/// Kafka's classic group states (ClassicGroupState), named as DescribeGroups reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Now in both clocks: monotonic for deadlines, wall for timestamps that are stored.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono_ms: i64,
    pub wall_ms: i64,
}

/// Broker limits a join is checked against.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `group.max.size`.
    pub group_max_size: usize,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i64,
}

/// A JoinGroup as the state machine sees it.
#[derive(Clone, Debug, Default)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub api_version: i16,
    /// The id a new member gets (the coordinator draws it).
    pub new_member_id: String,
}

/// What a JoinGroup is answered.
#[derive(Clone, Debug, Default)]
pub struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub skip_assignment: bool,
    /// (member id, group instance id, metadata of the selected protocol); the leader only.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(error: ResponseError, member_id: String) -> Self {
        JoinResult {
            error: Some(error),
            generation_id: -1,
            member_id,
            ..Default::default()
        }
    }
}

/// What a SyncGroup is answered.
#[derive(Clone, Debug, Default)]
pub struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: ResponseError) -> Self {
        SyncResult {
            error: Some(error),
            ..Default::default()
        }
    }
}

pub enum JoinOutcome {
    Now(JoinResult),
    Wait(oneshot::Receiver<JoinResult>),
}

pub enum SyncOutcome {
    Now(SyncResult),
    Wait(oneshot::Receiver<SyncResult>),
    /// The leader's assignment for `generation_id`: store the group, then call
    /// [`Group::complete_sync`].
    LeaderAssigned {
        rx: oneshot::Receiver<SyncResult>,
        generation_id: i32,
    },
}

/// A SyncGroup as the state machine sees it.
#[derive(Clone, Debug, Default)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// One committed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub api_version: i16,
    awaiting_join: Option<oneshot::Sender<JoinResult>>,
    awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    heartbeat_deadline_ms: i64,
}

impl Member {
    fn from_join(req: &JoinRequest, member_id: String, now: Now) -> Member {
        Member {
            member_id,
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            api_version: req.api_version,
            awaiting_join: None,
            awaiting_sync: None,
            heartbeat_deadline_ms: now.mono_ms + req.session_timeout_ms as i64,
        }
    }

    fn update(&mut self, req: &JoinRequest) {
        self.session_timeout_ms = req.session_timeout_ms;
        self.rebalance_timeout_ms = req.rebalance_timeout_ms;
        self.protocol_type = req.protocol_type.clone();
        self.protocols = req.protocols.clone();
        self.client_id = req.client_id.clone();
        self.client_host = req.client_host.clone();
        self.api_version = req.api_version;
    }

    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn refresh(&mut self, now: Now) {
        self.heartbeat_deadline_ms = now.mono_ms + self.session_timeout_ms as i64;
    }

    fn fail(&mut self, error: ResponseError) {
        if let Some(tx) = self.awaiting_join.take() {
            let _ = tx.send(JoinResult::error(error, self.member_id.clone()));
        }
        if let Some(tx) = self.awaiting_sync.take() {
            let _ = tx.send(SyncResult::error(error));
        }
    }
}

/// An initial rebalance (of a group that was Empty) waits group.initial.rebalance.delay.ms
/// and again while new members keep coming, up to the rebalance timeout (Kafka's
/// InitialDelayedJoin), so that consumers starting together land in one generation.
#[derive(Debug, Clone, Copy)]
struct InitialDelay {
    delay_ms: i64,
    remaining_ms: i64,
    new_members: bool,
}

#[derive(Debug)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: IndexMap<String, Member>,
    /// group.instance.id -> member id (KIP-345).
    pub static_members: IndexMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) -> deadline to join with them.
    pub pending_members: IndexMap<String, i64>,
    /// Members of a CompletingRebalance generation that have not sent SyncGroup.
    pending_sync: BTreeSet<String>,
    rebalance_deadline_ms: i64,
    initial_delay: Option<InitialDelay>,
    sync_deadline_ms: i64,
    /// Wall time of the last state change (GroupMetadataValue's current_state_timestamp);
    /// offsets of an Empty group expire counting from it.
    pub state_timestamp_ms: i64,
    pub offsets: IndexMap<(String, i32), CommittedOffset>,
    /// Group metadata changed in a way that must be written to __consumer_offsets.
    pub metadata_dirty: bool,
}

impl Group {
    pub fn new(group_id: String, now: Now) -> Group {
        Group {
            group_id,
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: IndexMap::new(),
            static_members: IndexMap::new(),
            pending_members: IndexMap::new(),
            pending_sync: BTreeSet::new(),
            rebalance_deadline_ms: 0,
            initial_delay: None,
            sync_deadline_ms: 0,
            state_timestamp_ms: now.wall_ms,
            offsets: IndexMap::new(),
            metadata_dirty: false,
        }
    }

    fn transition(&mut self, state: GroupState, now: Now) {
        self.state = state;
        self.state_timestamp_ms = now.wall_ms;
    }

    /// Members plus ids handed out and not yet used: what group.max.size bounds.
    pub fn size(&self) -> usize {
        self.members.len() + self.pending_members.len()
    }

    /// Kafka's supportsProtocols: the first member sets the type; later ones must share it
    /// and support at least one protocol every current member supports.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// The selected protocol: among those every member supports, each member votes for the
    /// first of its own list; most votes wins, ties going to the leader's preference.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut best: Option<(&String, usize)> = None;
        for candidate in &candidates {
            let votes = self
                .members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n)
                        .find(|n| candidates.contains(n))
                        == Some(*candidate)
                })
                .count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((candidate, votes));
            }
        }
        best.map(|(name, _)| name.clone())
    }

    /// KIP-345: a known group.instance.id presented with another member id is a zombie.
    fn is_static_member_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(current) => current != member_id,
            None => false,
        }
    }

    pub fn join(&mut self, req: JoinRequest, limits: Limits, now: Now) -> JoinOutcome {
        if self.state == GroupState::Dead {
            return JoinOutcome::Now(JoinResult::error(
                ResponseError::CoordinatorNotAvailable,
                req.member_id,
            ));
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return JoinOutcome::Now(JoinResult::error(
                ResponseError::InconsistentGroupProtocol,
                req.member_id,
            ));
        }
        if req.member_id.is_empty() {
            self.join_unknown_member(req, limits, now)
        } else {
            self.join_known_member(req, limits, now)
        }
    }

    fn join_unknown_member(&mut self, req: JoinRequest, limits: Limits, now: Now) -> JoinOutcome {
        let known_instance = req
            .group_instance_id
            .as_ref()
            .and_then(|i| self.static_members.get(i))
            .cloned();
        if let Some(old_id) = known_instance {
            return self.replace_static_member(req, &old_id, limits, now);
        }
        if self.size() >= limits.group_max_size {
            return JoinOutcome::Now(JoinResult::error(
                ResponseError::GroupMaxSizeReached,
                String::new(),
            ));
        }
        let member_id = req.new_member_id.clone();
        // KIP-394: from v4 a dynamic member first learns its id and joins again with it, so
        // a client that times out mid-join does not leave an orphan member behind.
        if req.group_instance_id.is_none() && req.api_version >= 4 {
            self.pending_members.insert(
                member_id.clone(),
                now.mono_ms + req.session_timeout_ms as i64,
            );
            return JoinOutcome::Now(JoinResult::error(
                ResponseError::MemberIdRequired,
                member_id,
            ));
        }
        let member = Member::from_join(&req, member_id, now);
        self.add_member_and_rebalance(member, limits, now)
    }

    fn join_known_member(&mut self, req: JoinRequest, limits: Limits, now: Now) -> JoinOutcome {
        let member_id = req.member_id.clone();
        if self.pending_members.shift_remove(&member_id).is_some() {
            let member = Member::from_join(&req, member_id, now);
            return self.add_member_and_rebalance(member, limits, now);
        }
        if self.is_static_member_fenced(req.group_instance_id.as_deref(), &member_id) {
            return JoinOutcome::Now(JoinResult::error(
                ResponseError::FencedInstanceId,
                member_id,
            ));
        }
        let Some(member) = self.members.get(&member_id) else {
            return JoinOutcome::Now(JoinResult::error(ResponseError::UnknownMemberId, member_id));
        };
        let unchanged = member.protocols == req.protocols;
        let is_leader = self.leader_id.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                JoinOutcome::Now(JoinResult::error(ResponseError::UnknownMemberId, member_id))
            }
            GroupState::PreparingRebalance => {
                let rx = self.await_join(&member_id, &req, now);
                self.try_complete_join(now);
                rx
            }
            GroupState::CompletingRebalance if unchanged => {
                // The member missed its JoinGroup response: answer it again.
                let result = self.join_result_for(&member_id, is_leader);
                if let Some(m) = self.members.get_mut(&member_id) {
                    m.refresh(now);
                }
                JoinOutcome::Now(result)
            }
            GroupState::Stable if unchanged && !is_leader => {
                // A follower rejoining with the same metadata gets the current generation
                // and syncs again, without disturbing the group.
                let result = self.join_result_for(&member_id, false);
                if let Some(m) = self.members.get_mut(&member_id) {
                    m.refresh(now);
                }
                JoinOutcome::Now(result)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let rx = self.await_join(&member_id, &req, now);
                self.prepare_rebalance(limits, now);
                rx
            }
        }
    }

    fn await_join(&mut self, member_id: &str, req: &JoinRequest, now: Now) -> JoinOutcome {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(member_id) {
            m.update(req);
            m.refresh(now);
            // A duplicate join replaces the earlier one, whose response is dropped.
            m.awaiting_join = Some(tx);
        }
        JoinOutcome::Wait(rx)
    }

    /// KIP-345: a static member restarting joins with its instance id and no member id. It
    /// takes over the old member's place under a new id (fencing the old one); in a Stable
    /// group with unchanged protocols it gets the current generation without a rebalance.
    fn replace_static_member(
        &mut self,
        req: JoinRequest,
        old_id: &str,
        limits: Limits,
        now: Now,
    ) -> JoinOutcome {
        let new_id = req.new_member_id.clone();
        let Some(index) = self.members.get_index_of(old_id) else {
            return JoinOutcome::Now(JoinResult::error(ResponseError::UnknownMemberId, new_id));
        };
        let Some((_, mut member)) = self.members.shift_remove_index(index) else {
            return JoinOutcome::Now(JoinResult::error(ResponseError::UnknownMemberId, new_id));
        };
        member.fail(ResponseError::FencedInstanceId);
        let unchanged = member.protocols == req.protocols;
        member.member_id = new_id.clone();
        member.update(&req);
        member.refresh(now);
        self.members.insert(new_id.clone(), member);
        self.members.move_index(self.members.len() - 1, index);
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader_id.as_deref() == Some(old_id) {
            self.leader_id = Some(new_id.clone());
        }
        match self.state {
            GroupState::Stable if unchanged => {
                let is_leader = self.leader_id.as_deref() == Some(new_id.as_str());
                // KIP-814: from v9 a static leader gets the members back with
                // skip_assignment, so it learns metadata without reassigning.
                let skip = is_leader && req.api_version >= 9;
                let mut result = self.join_result_for(&new_id, skip);
                result.skip_assignment = skip;
                self.metadata_dirty = true;
                JoinOutcome::Now(result)
            }
            GroupState::PreparingRebalance => {
                let rx = self.await_join(&new_id, &req, now);
                self.try_complete_join(now);
                rx
            }
            _ => {
                let rx = self.await_join(&new_id, &req, now);
                self.prepare_rebalance(limits, now);
                rx
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member: Member,
        limits: Limits,
        now: Now,
    ) -> JoinOutcome {
        let member_id = member.member_id.clone();
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        let (tx, rx) = oneshot::channel();
        let mut member = member;
        member.awaiting_join = Some(tx);
        self.members.insert(member_id, member);
        if let Some(delay) = self.initial_delay.as_mut() {
            delay.new_members = true;
        }
        if self.state == GroupState::PreparingRebalance {
            self.try_complete_join(now);
        } else {
            self.prepare_rebalance(limits, now);
        }
        JoinOutcome::Wait(rx)
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    /// Starts a rebalance: members must rejoin within the largest rebalance timeout.
    fn prepare_rebalance(&mut self, limits: Limits, now: Now) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(SyncResult::error(ResponseError::RebalanceInProgress));
                }
            }
            self.pending_sync.clear();
        }
        let rebalance_ms = self.max_rebalance_timeout_ms();
        if self.state == GroupState::Empty && limits.initial_rebalance_delay_ms > 0 {
            let delay_ms = limits.initial_rebalance_delay_ms.min(rebalance_ms.max(0));
            self.initial_delay = Some(InitialDelay {
                delay_ms,
                remaining_ms: (rebalance_ms - delay_ms).max(0),
                new_members: false,
            });
            self.rebalance_deadline_ms = now.mono_ms + delay_ms;
        } else {
            self.initial_delay = None;
            self.rebalance_deadline_ms = now.mono_ms + rebalance_ms;
        }
        self.transition(GroupState::PreparingRebalance, now);
        self.try_complete_join(now);
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    fn try_complete_join(&mut self, now: Now) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.all_members_joined()
        {
            self.complete_join(now);
        }
    }

    /// The join phase ends: members that did not rejoin are dropped (static ones stay, as
    /// KIP-345 wants a restarting static member to keep its place), the generation advances,
    /// and every waiting member gets its JoinGroup response; the leader gets the members.
    fn complete_join(&mut self, now: Now) {
        self.initial_delay = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.transition(GroupState::Empty, now);
            self.metadata_dirty = true;
            return;
        }
        self.protocol_name = self.select_protocol();
        let leader_ok = self.leader_id.as_ref().is_some_and(|l| {
            self.members
                .get(l)
                .is_some_and(|m| m.awaiting_join.is_some())
        });
        if !leader_ok {
            self.leader_id = self
                .members
                .values()
                .find(|m| m.awaiting_join.is_some())
                .or_else(|| self.members.values().next())
                .map(|m| m.member_id.clone());
        }
        self.transition(GroupState::CompletingRebalance, now);
        self.sync_deadline_ms = now.mono_ms + self.max_rebalance_timeout_ms();
        self.pending_sync = self.members.keys().cloned().collect();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let is_leader = self.leader_id.as_deref() == Some(id.as_str());
            let result = self.join_result_for(&id, is_leader);
            if let Some(m) = self.members.get_mut(&id) {
                m.refresh(now);
                if let Some(tx) = m.awaiting_join.take() {
                    let _ = tx.send(result);
                }
            }
        }
    }

    fn join_result_for(&self, member_id: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if with_members {
            self.members
                .values()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone(),
                        m.metadata_for(&protocol),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            skip_assignment: false,
            members,
        }
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(mut m) = self.members.shift_remove(member_id) {
            m.fail(ResponseError::UnknownMemberId);
            if let Some(instance) = &m.group_instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                    self.static_members.shift_remove(instance);
                }
            }
        }
        self.pending_sync.remove(member_id);
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
    }

    /// After removing members: rebalance a settled group, or see whether the join phase is
    /// now complete.
    fn after_members_left(&mut self, limits: Limits, now: Now) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(limits, now)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// The common checks of SyncGroup, Heartbeat and OffsetCommit, in Kafka's order.
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if self.is_static_member_fenced(instance_id, member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    pub fn sync(&mut self, req: SyncRequest, now: Now) -> SyncOutcome {
        if let Err(e) = self.check_member(
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        ) {
            return SyncOutcome::Now(SyncResult::error(e));
        }
        // v5: the client says which protocol it synced for; a mismatch is a broken client.
        let type_mismatch = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_mismatch = req
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != self.protocol_name.as_ref());
        if type_mismatch || name_mismatch {
            return SyncOutcome::Now(SyncResult::error(ResponseError::InconsistentGroupProtocol));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                SyncOutcome::Now(SyncResult::error(ResponseError::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                SyncOutcome::Now(SyncResult::error(ResponseError::RebalanceInProgress))
            }
            GroupState::Stable => {
                let result = self.sync_result_for(&req.member_id);
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.refresh(now);
                }
                SyncOutcome::Now(result)
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                self.pending_sync.remove(&req.member_id);
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.refresh(now);
                    m.awaiting_sync = Some(tx);
                }
                if self.leader_id.as_deref() != Some(req.member_id.as_str()) {
                    return SyncOutcome::Wait(rx);
                }
                for m in self.members.values_mut() {
                    m.assignment = Bytes::new();
                }
                for (member_id, assignment) in req.assignments {
                    if let Some(m) = self.members.get_mut(&member_id) {
                        m.assignment = assignment;
                    }
                }
                SyncOutcome::LeaderAssigned {
                    rx,
                    generation_id: self.generation_id,
                }
            }
        }
    }

    /// The leader's assignment of `generation_id` is stored: the group is Stable and every
    /// member waiting in SyncGroup gets its assignment.
    pub fn complete_sync(&mut self, generation_id: i32, now: Now) {
        if self.state != GroupState::CompletingRebalance || self.generation_id != generation_id {
            return;
        }
        self.transition(GroupState::Stable, now);
        self.pending_sync.clear();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.sync_result_for(&id);
            if let Some(tx) = self
                .members
                .get_mut(&id)
                .and_then(|m| m.awaiting_sync.take())
            {
                let _ = tx.send(result);
            }
        }
    }

    /// Storing the leader's assignment failed: the members are told and rebalance again.
    pub fn fail_sync(
        &mut self,
        generation_id: i32,
        error: ResponseError,
        limits: Limits,
        now: Now,
    ) {
        if self.state != GroupState::CompletingRebalance || self.generation_id != generation_id {
            return;
        }
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(tx) = m.awaiting_sync.take() {
                let _ = tx.send(SyncResult::error(error));
            }
        }
        self.prepare_rebalance(limits, now);
    }

    fn sync_result_for(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now: Now,
    ) -> Option<ResponseError> {
        if let Err(e) = self.check_member(member_id, instance_id, generation_id) {
            return Some(e);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.refresh(now);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Some(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => None,
        }
    }

    /// One member of a LeaveGroup (v3+ batches them); by instance id when given.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        limits: Limits,
        now: Now,
    ) -> Option<ResponseError> {
        if self.state == GroupState::Dead {
            return Some(ResponseError::CoordinatorNotAvailable);
        }
        let target = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => return Some(ResponseError::UnknownMemberId),
                Some(current) if !member_id.is_empty() && current != member_id => {
                    return Some(ResponseError::FencedInstanceId)
                }
                Some(current) => current.clone(),
            },
            None => member_id.to_string(),
        };
        if self.pending_members.shift_remove(&target).is_some() {
            self.try_complete_join(now);
            return None;
        }
        if !self.members.contains_key(&target) {
            return Some(ResponseError::UnknownMemberId);
        }
        self.remove_member(&target);
        self.after_members_left(limits, now);
        None
    }

    /// Kafka's ClassicGroup.validateOffsetCommit.
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            // Admin tools and consumers that only assign() commit with generation -1 to a
            // group that has no members.
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if let Some(instance) = instance_id {
                match self.static_members.get(instance) {
                    None => return Err(ResponseError::UnknownMemberId),
                    Some(current) if current != member_id => {
                        return Err(ResponseError::FencedInstanceId)
                    }
                    Some(_) => {}
                }
            }
            if !self.members.contains_key(member_id) {
                return Err(ResponseError::UnknownMemberId);
            }
            if generation_id != self.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if self.state != GroupState::Empty {
            return Err(ResponseError::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Expires members whose session ran out and pending member ids never used, and moves a
    /// rebalance on when its deadline passed.
    pub fn tick(&mut self, limits: Limits, now: Now) {
        let expired_pending: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now.mono_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired_pending {
            self.pending_members.shift_remove(id);
        }
        let completing = self.state == GroupState::CompletingRebalance;
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                // Kafka's shouldKeepAlive: a member waiting in JoinGroup or (while the
                // leader assigns) in SyncGroup is alive.
                let waiting =
                    m.awaiting_join.is_some() || (completing && m.awaiting_sync.is_some());
                !waiting && m.heartbeat_deadline_ms <= now.mono_ms
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.group_id, member = %id, "member session expired");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.after_members_left(limits, now);
        } else if !expired_pending.is_empty() {
            self.try_complete_join(now);
        }
        if self.state == GroupState::PreparingRebalance && now.mono_ms >= self.rebalance_deadline_ms
        {
            match self.initial_delay {
                Some(d) if d.new_members && d.remaining_ms > 0 => {
                    let step = d.delay_ms.min(d.remaining_ms).max(1);
                    self.initial_delay = Some(InitialDelay {
                        delay_ms: d.delay_ms,
                        remaining_ms: d.remaining_ms - step,
                        new_members: false,
                    });
                    self.rebalance_deadline_ms = now.mono_ms + step;
                }
                _ => self.complete_join(now),
            }
        }
        if self.state == GroupState::CompletingRebalance && now.mono_ms >= self.sync_deadline_ms {
            // The leader never sent its assignment (or members never synced): those that did
            // not sync are dropped and the group rebalances (Kafka's pending sync timeout).
            let unsynced: Vec<String> = self.pending_sync.iter().cloned().collect();
            for id in &unsynced {
                self.remove_member(id);
            }
            self.prepare_rebalance(limits, now);
        }
    }

    /// The topics the members subscribe to, when the group uses the consumer protocol and
    /// every subscription parses; `None` means "unknown, assume any".
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.state == GroupState::Empty {
            return Some(BTreeSet::new());
        }
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(parse_subscription_topics(&m.metadata_for(protocol))?);
        }
        Some(topics)
    }

    /// The GroupMetadataValue Kafka would store for this group now.
    pub fn to_metadata_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if self.state == GroupState::Empty {
            Vec::new()
        } else {
            self.members
                .values()
                .map(|m| MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect()
        };
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members,
        }
    }

    /// Restores a group from its stored metadata: with members it is Stable again and each
    /// member's session starts now, as Kafka does when it loads a partition.
    /// Puts back a member as it was (from a stored record, or from a consumer group being
    /// downgraded), its static instance id registered.
    fn restore_member(&mut self, member: Member) {
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        self.members.insert(member.member_id.clone(), member);
    }

    pub fn apply_metadata_value(&mut self, v: GroupMetadataValue, now: Now) {
        self.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
        self.generation_id = v.generation;
        self.protocol_name = v.protocol.clone();
        self.leader_id = v.leader;
        self.state_timestamp_ms = if v.current_state_timestamp_ms >= 0 {
            v.current_state_timestamp_ms
        } else {
            now.wall_ms
        };
        self.members.clear();
        self.static_members.clear();
        let protocol = v.protocol.unwrap_or_default();
        for m in v.members {
            self.restore_member(Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                api_version: 0,
                awaiting_join: None,
                awaiting_sync: None,
                heartbeat_deadline_ms: now.mono_ms + m.session_timeout_ms as i64,
            });
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }

    /// offsets.retention.minutes: the offsets of an Empty group whose retention ran out,
    /// counted from the later of their commit and the group becoming Empty. In a Stable group
    /// of the consumer protocol, offsets of topics no member subscribes to any more expire
    /// that long after their commit (KIP-496); other offsets of a group with members never do.
    pub fn expired_offsets(&self, now_wall_ms: i64, retention_ms: i64) -> Vec<(String, i32)> {
        let expired = |base: i64| base.saturating_add(retention_ms) <= now_wall_ms;
        let unsubscribed = match self.state {
            GroupState::Empty => None,
            GroupState::Stable => match self.subscribed_topics() {
                Some(topics) => Some(topics),
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        self.offsets
            .iter()
            .filter(|((topic, _), c)| match &unsubscribed {
                None => expired(c.commit_timestamp_ms.max(self.state_timestamp_ms)),
                Some(subscribed) => !subscribed.contains(topic) && expired(c.commit_timestamp_ms),
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Fails every waiting request and marks the group Dead (DeleteGroups).
    pub fn mark_dead(&mut self, now: Now) {
        for m in self.members.values_mut() {
            m.fail(ResponseError::CoordinatorNotAvailable);
        }
        self.members.clear();
        self.transition(GroupState::Dead, now);
    }
}

/// The two ends of KIP-848's online migration (migration.rs drives them): the classic group
/// hands its members over to a consumer group, or takes them back from one.
impl Group {
    /// Upgrade: the members move to the consumer group. Joins and syncs still waiting are
    /// told REBALANCE_IN_PROGRESS so they rejoin, now into the consumer group (Kafka's
    /// convertToConsumerGroup). What stays is an Empty entry holding the offsets.
    pub fn hand_over_members(&mut self, now: Now) {
        for m in self.members.values_mut() {
            m.fail(ResponseError::RebalanceInProgress);
        }
        self.members.clear();
        self.static_members.clear();
        self.pending_members.clear();
        self.pending_sync.clear();
        self.initial_delay = None;
        self.protocol_name = None;
        self.leader_id = None;
        self.metadata_dirty = false;
        self.transition(GroupState::Empty, now);
    }

    /// Downgrade: the classic members of a consumer group become this group's, Stable at
    /// `generation_id` (the consumer group's epoch) with their target assignments, as Kafka's
    /// ClassicGroup.fromConsumerGroup. The caller sets their assignments, stores the group
    /// and then starts the rebalance with [`Group::rebalance_after_downgrade`].
    pub fn take_over_members(
        &mut self,
        generation_id: i32,
        members: Vec<MigratedMember>,
        now: Now,
    ) {
        self.hand_over_members(now);
        self.protocol_type = Some("consumer".to_string());
        self.generation_id = generation_id;
        for m in members {
            self.restore_member(Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: "consumer".to_string(),
                protocols: m.protocols,
                assignment: Bytes::new(),
                api_version: 0,
                awaiting_join: None,
                awaiting_sync: None,
                heartbeat_deadline_ms: now.mono_ms + m.session_timeout_ms as i64,
            });
        }
        self.leader_id = self.members.keys().next().cloned();
        self.protocol_name = self.select_protocol();
        self.transition(GroupState::Stable, now);
    }

    /// Sets a migrated member's assignment (the consumer protocol's bytes for the selected
    /// protocol's version).
    pub fn set_assignment(&mut self, member_id: &str, assignment: Bytes) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.assignment = assignment;
        }
    }

    /// The metadata a member sent for the selected protocol.
    pub fn member_metadata(&self, member_id: &str) -> Bytes {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .get(member_id)
            .map(|m| m.metadata_for(&protocol))
            .unwrap_or_default()
    }

    /// Kafka rebalances a group downgraded because a member left: the classic members are
    /// told REBALANCE_IN_PROGRESS on their next heartbeat and rejoin.
    pub fn rebalance_after_downgrade(&mut self, limits: Limits, now: Now) {
        self.prepare_rebalance(limits, now);
    }
}

/// A classic member of a consumer group as the downgrade hands it to the classic group.
#[derive(Clone, Debug)]
pub struct MigratedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
}

/// The topics of a ConsumerProtocolSubscription (any version: they come first).
fn parse_subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut b = metadata;
    if b.remaining() < 6 {
        return None;
    }
    let _version = b.get_i16();
    let count = b.get_i32();
    let mut topics = Vec::new();
    for _ in 0..count.max(0) {
        if b.remaining() < 2 {
            return None;
        }
        let len = b.get_i16();
        if len < 0 || b.remaining() < len as usize {
            return None;
        }
        topics.push(String::from_utf8_lossy(&b[..len as usize]).into_owned());
        b.advance(len as usize);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        group_max_size: 3,
        initial_rebalance_delay_ms: 0,
    };

    fn at(ms: i64) -> Now {
        Now {
            mono_ms: ms,
            wall_ms: 1_000_000 + ms,
        }
    }

    fn join_req(member_id: &str, new_id: &str, version: i16) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            api_version: version,
            new_member_id: new_id.into(),
            ..Default::default()
        }
    }

    fn now_result(o: JoinOutcome) -> JoinResult {
        match o {
            JoinOutcome::Now(r) => r,
            JoinOutcome::Wait(_) => panic!("expected an immediate answer"),
        }
    }

    fn waited(o: JoinOutcome) -> JoinResult {
        match o {
            JoinOutcome::Wait(mut rx) => rx.try_recv().expect("join completed"),
            JoinOutcome::Now(r) => r,
        }
    }

    /// Joins a dynamic member with the v4 two-step and returns its id.
    fn join_two_step(g: &mut Group, id: &str, now: Now) -> JoinOutcome {
        let first = now_result(g.join(join_req("", id, 5), LIMITS, now));
        assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
        assert_eq!(first.member_id, id);
        g.join(join_req(id, "unused", 5), LIMITS, now)
    }

    fn stable_group_of_one() -> Group {
        let mut g = Group::new("g".into(), at(0));
        let r = waited(join_two_step(&mut g, "m1", at(0)));
        assert_eq!(r.generation_id, 1);
        assert_eq!(g.state, GroupState::CompletingRebalance);
        let sync = g.sync(
            SyncRequest {
                member_id: "m1".into(),
                generation_id: 1,
                assignments: vec![("m1".into(), Bytes::from_static(b"a1"))],
                ..Default::default()
            },
            at(1),
        );
        let SyncOutcome::LeaderAssigned {
            mut rx,
            generation_id,
        } = sync
        else {
            panic!("leader sync")
        };
        g.complete_sync(generation_id, at(1));
        assert_eq!(rx.try_recv().expect("assigned").assignment, &b"a1"[..]);
        assert_eq!(g.state, GroupState::Stable);
        g
    }

    #[test]
    fn join_from_v4_requires_member_id_and_older_versions_join_in_one_round() {
        let mut g = Group::new("g".into(), at(0));
        let r = now_result(g.join(join_req("", "m1", 4), LIMITS, at(0)));
        assert_eq!(r.error, Some(ResponseError::MemberIdRequired));
        assert_eq!(g.pending_members.len(), 1);
        let mut g = Group::new("g".into(), at(0));
        let r = waited(g.join(join_req("", "m1", 3), LIMITS, at(0)));
        assert_eq!(r.error, None);
        assert_eq!(r.leader, "m1");
        assert_eq!(r.members.len(), 1);
    }

    #[test]
    fn single_member_goes_empty_to_stable_and_gets_its_assignment() {
        let g = stable_group_of_one();
        assert_eq!(g.generation_id, 1);
        assert_eq!(g.protocol_name.as_deref(), Some("range"));
    }

    #[test]
    fn second_member_triggers_rebalance_and_waits_for_the_first() {
        let mut g = stable_group_of_one();
        let second = join_two_step(&mut g, "m2", at(2));
        assert!(matches!(second, JoinOutcome::Wait(_)));
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert_eq!(
            g.heartbeat("m1", None, 1, at(3)),
            Some(ResponseError::RebalanceInProgress)
        );
        let first = g.join(join_req("m1", "x", 5), LIMITS, at(4));
        let r1 = waited(first);
        let r2 = waited(second);
        assert_eq!(r1.generation_id, 2);
        assert_eq!(r2.generation_id, 2);
        assert_eq!(r1.members.len(), 2, "the leader gets every member");
        assert!(r2.members.is_empty());
    }

    #[test]
    fn member_that_does_not_rejoin_is_dropped_at_the_rebalance_deadline() {
        let mut g = stable_group_of_one();
        let second = join_two_step(&mut g, "m2", at(2));
        g.tick(LIMITS, at(2 + 30_000));
        let r2 = waited(second);
        assert_eq!(r2.error, None);
        assert_eq!(r2.leader, "m2");
        assert!(!g.members.contains_key("m1"));
    }

    #[test]
    fn session_timeout_removes_a_silent_member_and_rebalances() {
        let mut g = stable_group_of_one();
        assert_eq!(g.heartbeat("m1", None, 1, at(5_000)), None);
        g.tick(LIMITS, at(14_000));
        assert_eq!(g.state, GroupState::Stable);
        g.tick(LIMITS, at(15_001));
        assert!(g.members.is_empty());
        assert_eq!(g.state, GroupState::Empty);
        assert_eq!(g.generation_id, 2);
        assert!(g.metadata_dirty);
    }

    #[test]
    fn commit_checks_generation_member_and_rebalance_as_kafka() {
        let mut g = stable_group_of_one();
        assert_eq!(g.validate_commit("m1", None, 1), Ok(()));
        assert_eq!(
            g.validate_commit("m1", None, 0),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            g.validate_commit("nobody", None, 1),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(
            g.validate_commit("", None, -1),
            Err(ResponseError::UnknownMemberId),
            "admin commits only to an Empty group"
        );
        let _second = join_two_step(&mut g, "m2", at(2));
        assert_eq!(
            g.validate_commit("m1", None, 1),
            Ok(()),
            "allowed while preparing"
        );
        let _first = g.join(join_req("m1", "x", 5), LIMITS, at(3));
        assert_eq!(g.state, GroupState::CompletingRebalance);
        assert_eq!(
            g.validate_commit("m1", None, 2),
            Err(ResponseError::RebalanceInProgress)
        );
        let empty = Group::new("e".into(), at(0));
        assert_eq!(empty.validate_commit("", None, -1), Ok(()));
    }

    #[test]
    fn static_member_rejoining_a_stable_group_takes_over_without_rebalance_and_fences_old() {
        let mut g = Group::new("g".into(), at(0));
        let mut req = join_req("", "old", 5);
        req.group_instance_id = Some("i1".into());
        let r = waited(g.join(req.clone(), LIMITS, at(0)));
        assert_eq!(r.error, None, "static members join in one round");
        let SyncOutcome::LeaderAssigned { generation_id, .. } = g.sync(
            SyncRequest {
                member_id: "old".into(),
                group_instance_id: Some("i1".into()),
                generation_id: 1,
                assignments: vec![("old".into(), Bytes::from_static(b"a"))],
                ..Default::default()
            },
            at(1),
        ) else {
            panic!("leader sync")
        };
        g.complete_sync(generation_id, at(1));
        req.new_member_id = "new".into();
        let r = now_result(g.join(req, LIMITS, at(2)));
        assert_eq!(r.error, None);
        assert_eq!(r.member_id, "new");
        assert_eq!(r.generation_id, 1);
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(
            g.heartbeat("old", Some("i1"), 1, at(3)),
            Some(ResponseError::FencedInstanceId)
        );
        assert_eq!(g.heartbeat("new", Some("i1"), 1, at(3)), None);
        let SyncOutcome::Now(s) = g.sync(
            SyncRequest {
                member_id: "new".into(),
                group_instance_id: Some("i1".into()),
                generation_id: 1,
                ..Default::default()
            },
            at(3),
        ) else {
            panic!("stable sync answers at once")
        };
        assert_eq!(s.assignment, &b"a"[..], "keeps its assignment");
    }

    #[test]
    fn group_max_size_and_inconsistent_protocols_are_refused() {
        let mut g = Group::new("g".into(), at(0));
        for id in ["a", "b", "c"] {
            let _ = g.join(join_req("", id, 3), LIMITS, at(0));
        }
        let r = now_result(g.join(join_req("", "d", 3), LIMITS, at(0)));
        assert_eq!(r.error, Some(ResponseError::GroupMaxSizeReached));
        let mut other = join_req("", "e", 3);
        other.protocols = vec![("roundrobin".into(), Bytes::new())];
        let mut g2 = stable_group_of_one();
        let r = now_result(g2.join(other, LIMITS, at(0)));
        assert_eq!(r.error, Some(ResponseError::InconsistentGroupProtocol));
    }

    #[test]
    fn leave_by_instance_id_with_wrong_member_is_fenced_and_leave_empties_group() {
        let mut g = stable_group_of_one();
        assert_eq!(
            g.leave("", Some("nope"), LIMITS, at(1)),
            Some(ResponseError::UnknownMemberId)
        );
        assert_eq!(g.leave("m1", None, LIMITS, at(1)), None);
        assert_eq!(g.state, GroupState::Empty);
        assert_eq!(g.generation_id, 2);
    }

    #[test]
    fn initial_delay_holds_the_first_rebalance_until_it_passes() {
        let limits = Limits {
            group_max_size: 10,
            initial_rebalance_delay_ms: 3000,
        };
        let mut g = Group::new("g".into(), at(0));
        let a = g.join(join_req("", "a", 3), limits, at(0));
        assert_eq!(g.state, GroupState::PreparingRebalance);
        g.tick(limits, at(1000));
        let b = g.join(join_req("", "b", 3), limits, at(1000));
        g.tick(limits, at(3000));
        assert_eq!(g.state, GroupState::PreparingRebalance, "extended: b came");
        g.tick(limits, at(6000));
        assert_eq!(g.state, GroupState::CompletingRebalance);
        assert_eq!(waited(a).generation_id, 1);
        assert_eq!(waited(b).generation_id, 1);
    }

    #[test]
    fn leader_never_syncing_drops_unsynced_members_and_rebalances() {
        let mut g = Group::new("g".into(), at(0));
        let _ = waited(g.join(join_req("", "a", 3), LIMITS, at(0)));
        assert_eq!(g.state, GroupState::CompletingRebalance);
        g.tick(LIMITS, at(30_001));
        assert_eq!(g.state, GroupState::Empty);
    }

    #[test]
    fn metadata_value_restores_a_stable_group() {
        let g = stable_group_of_one();
        let v = g.to_metadata_value();
        let mut restored = Group::new("g".into(), at(0));
        restored.apply_metadata_value(v, at(100));
        assert_eq!(restored.state, GroupState::Stable);
        assert_eq!(restored.generation_id, 1);
        assert_eq!(restored.heartbeat("m1", None, 1, at(200)), None);
        assert_eq!(restored.members["m1"].assignment, &b"a1"[..]);
    }

    #[test]
    fn offsets_of_an_empty_group_expire_after_retention_and_never_while_it_has_members() {
        let mut g = stable_group_of_one();
        let committed = |ts| CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: ts,
        };
        g.offsets.insert(("t".into(), 0), committed(1_000_000));
        g.offsets.insert(("t".into(), 1), committed(1_050_000));
        assert!(g.expired_offsets(i64::MAX / 2, 1000).is_empty(), "Stable");
        assert_eq!(g.leave("m1", None, LIMITS, at(100_000)), None);
        assert_eq!(g.state, GroupState::Empty);
        // Empty since wall 1_100_000: that, not the older commit, starts the clock.
        assert!(g.expired_offsets(1_100_000 + 999, 1000).is_empty());
        assert_eq!(g.expired_offsets(1_100_000 + 1000, 1000).len(), 2);
    }

    #[test]
    fn offsets_of_topics_a_stable_group_no_longer_subscribes_to_expire_kip_496() {
        let mut subscription = bytes::BytesMut::new();
        use bytes::BufMut;
        subscription.put_i16(0);
        subscription.put_i32(1);
        subscription.put_i16(1);
        subscription.put_slice(b"t");
        subscription.put_i32(-1);
        let mut g = Group::new("g".into(), at(0));
        let mut req = join_req("", "m1", 3);
        req.protocols = vec![("range".into(), subscription.freeze())];
        let r = waited(g.join(req, LIMITS, at(0)));
        let sync = g.sync(
            SyncRequest {
                member_id: r.member_id.clone(),
                generation_id: r.generation_id,
                assignments: vec![(r.member_id.clone(), Bytes::new())],
                ..Default::default()
            },
            at(1),
        );
        let SyncOutcome::LeaderAssigned { generation_id, .. } = sync else {
            panic!("leader sync")
        };
        g.complete_sync(generation_id, at(1));
        assert_eq!(g.state, GroupState::Stable);
        let committed = CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 1_000_000,
        };
        g.offsets.insert(("t".into(), 0), committed.clone());
        g.offsets.insert(("gone".into(), 0), committed);
        assert!(g.expired_offsets(1_000_999, 1000).is_empty());
        assert_eq!(
            g.expired_offsets(1_001_000, 1000),
            vec![("gone".to_string(), 0)],
            "only the topic no member subscribes to"
        );
    }

    #[test]
    fn subscription_topics_parse_from_consumer_protocol_metadata() {
        let mut m = bytes::BytesMut::new();
        use bytes::BufMut;
        m.put_i16(1);
        m.put_i32(2);
        for t in ["x", "yz"] {
            m.put_i16(t.len() as i16);
            m.put_slice(t.as_bytes());
        }
        assert_eq!(
            parse_subscription_topics(&m),
            Some(vec!["x".to_string(), "yz".to_string()])
        );
        assert_eq!(parse_subscription_topics(&m[..7]), None);
    }
}
