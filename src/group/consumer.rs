//! One KIP-848 consumer-protocol group: members, the group epoch, the target assignment and
//! each member's incremental reconciliation towards it (Kafka's ConsumerGroup,
//! GroupMetadataManager.consumerGroupHeartbeat and CurrentAssignmentBuilder).
//!
//! Pure and synchronous like classic.rs: the coordinator (group/mod.rs) owns the lock, the clock
//! and the metadata image, and passes the topics in. Epochs, as KIP-848 names them:
//! - group epoch: bumped when a member joins or leaves or a subscription or the subscribed
//!   topics' metadata changes;
//! - assignment epoch: the group epoch the target assignment was computed for (computed at
//!   once here, so "Assigning" only lasts inside one heartbeat);
//! - member epoch: the epoch of the target assignment the member has reconciled to.
//!
//! A member is given a partition only once no other member owns it any more (revocation
//! first), which is what lets the protocol move partitions without a stop-the-world rebalance.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::group::assignor::{Assignment, Assignor, MemberSpec};
use crate::group::records::{
    ClassicMemberMetadata, ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataValue, ConsumerGroupMetadataValue, OffsetsRecord,
};

/// ConsumerGroupHeartbeat's member epoch of a leaving member.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// ... of a static member leaving temporarily (it keeps its assignment for the session).
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;
/// The longest subscribed regex accepted, and the compiled size it may take.
const REGEX_MAX_LEN: usize = 1024;
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Kafka's internal topics, never matched by a subscribed regex (Topic.isInternal).
const INTERNAL_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// The broker settings a consumer group follows (`group.consumer.*`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub heartbeat_interval_ms: i32,
    pub session_timeout_ms: i32,
    pub max_size: usize,
    /// `group.consumer.assignors`; the first is the default.
    pub assignors: Vec<Assignor>,
}

/// The topics of the metadata image a subscription can resolve to.
#[derive(Clone, Debug, Default)]
pub struct Topics {
    /// name -> (topic id, partition count)
    pub by_name: BTreeMap<String, (Uuid, i32)>,
}

impl Topics {
    pub fn name_of(&self, id: &Uuid) -> Option<&str> {
        self.by_name
            .iter()
            .find(|(_, (t, _))| t == id)
            .map(|(n, _)| n.as_str())
    }
}

/// Kafka's ConsumerGroup.ConsumerGroupState, named as ListGroups and ConsumerGroupDescribe
/// report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// Kafka's MemberState of the CurrentAssignmentBuilder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Reconciled to the member epoch.
    Stable,
    /// Must revoke `pending_revocation` (and say so in a heartbeat) before it moves on.
    UnrevokedPartitions,
    /// Has the new epoch, but waits for partitions other members still own.
    UnreleasedPartitions,
}

/// A ConsumerGroupHeartbeat as the state machine sees it (validated by [`validate`]).
#[derive(Clone, Debug, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns (topic_partitions); `None` when not sent.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// What a heartbeat is answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatResult {
    pub error: Option<ResponseError>,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when the member's assignment or epoch changed or it needs the full state.
    pub assignment: Option<Assignment>,
}

impl HeartbeatResult {
    pub fn error(error: ResponseError, message: impl Into<String>) -> Self {
        HeartbeatResult {
            error: Some(error),
            message: Some(message.into()),
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub(super) regex: Option<regex::Regex>,
    /// Kafka resolves a new regex asynchronously, so the heartbeat that sets it is answered
    /// with the literal names only and the matches count from the next heartbeat of the group
    /// (librdkafka's 0045 test expects exactly that order).
    pub(super) regex_resolved: bool,
    pub server_assignor: Option<String>,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    /// Partitions the member owns now (what its last response told it).
    pub assigned: Assignment,
    /// Partitions it was told to give up and has not confirmed yet; still its own until then.
    pub pending_revocation: Assignment,
    /// Set for a member that uses the classic protocol (JoinGroup, SyncGroup, Heartbeat)
    /// inside this group, as KIP-848's online migration lets it: its session timeout and the
    /// protocols it joined with.
    pub classic: Option<ClassicMemberMetadata>,
    pub(super) session_deadline_ms: i64,
    revocation_deadline_ms: i64,
}

impl ConsumerMember {
    pub(super) fn new(member_id: String, now_ms: i64, settings: &Settings) -> Self {
        ConsumerMember {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 0,
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            regex: None,
            regex_resolved: false,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            classic: None,
            session_deadline_ms: now_ms + settings.session_timeout_ms as i64,
            revocation_deadline_ms: i64::MAX,
        }
    }

    /// Whether the member speaks the classic protocol (KIP-848 migration).
    pub fn uses_classic_protocol(&self) -> bool {
        self.classic.is_some()
    }

    /// A classic member's session is its JoinGroup's session timeout; a consumer-protocol
    /// member's is the group's `group.consumer.session.timeout.ms`.
    pub(super) fn session_timeout_ms(&self, settings: &Settings) -> i64 {
        match &self.classic {
            Some(c) => c.session_timeout_ms.max(0) as i64,
            None => settings.session_timeout_ms as i64,
        }
    }

    pub(super) fn owns(&self, topic: &Uuid, partition: i32) -> bool {
        let has = |a: &Assignment| a.get(topic).is_some_and(|ps| ps.contains(&partition));
        has(&self.assigned) || has(&self.pending_revocation)
    }

    /// Topic ids the member's names and regex resolve to now.
    pub(super) fn subscribed_ids(&self, topics: &Topics) -> BTreeSet<Uuid> {
        let mut ids: BTreeSet<Uuid> = self
            .subscribed_topic_names
            .iter()
            .filter_map(|n| topics.by_name.get(n).map(|(id, _)| *id))
            .collect();
        if let Some(re) = self.regex.as_ref().filter(|_| self.regex_resolved) {
            ids.extend(
                topics
                    .by_name
                    .iter()
                    .filter(|(n, _)| !INTERNAL_TOPICS.contains(&n.as_str()) && re.is_match(n))
                    .map(|(_, (id, _))| *id),
            );
        }
        ids
    }
}

/// Compiles a subscribed regex as Kafka's RE2/J `Pattern.matcher(topic).matches()` does (the
/// whole name must match). The `regex` crate is RE2's family: the same linear-time engine
/// without backreferences or lookaround; syntax differences are minor (e.g. `\Q...\E`).
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > REGEX_MAX_LEN {
        return Err(format!(
            "SubscribedTopicRegex is longer than {REGEX_MAX_LEN} bytes."
        ));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            format!("SubscribedTopicRegex `{pattern}` is not a valid regular expression: {e}")
        })
}

/// Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid, in its order (Kafka 4.x): INVALID_REQUEST
/// for malformed requests, UNSUPPORTED_ASSIGNOR for an assignor not in group.consumer.assignors.
pub fn validate(
    group_id: &str,
    req: &Heartbeat,
    api_version: i16,
    settings: &Settings,
) -> Result<(), HeartbeatResult> {
    let invalid = |m: &str| Err(HeartbeatResult::error(ResponseError::InvalidRequest, m));
    let blank = |s: Option<&str>| s.is_some_and(|s| s.trim().is_empty());
    // v1 (KIP-1082): the client generates its member id, so it is always required; v0 lets
    // a joining member leave it empty and the broker picks one.
    if (api_version >= 1 || req.member_epoch != 0) && req.member_id.trim().is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if group_id.trim().is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if blank(req.instance_id.as_deref()) {
        return invalid("InstanceId can't be empty.");
    }
    if blank(req.rack_id.as_deref()) {
        return invalid("RackId can't be empty.");
    }
    if req.member_epoch == 0 {
        if req.rebalance_timeout_ms == -1 {
            return invalid("RebalanceTimeoutMs must be provided in first request.");
        }
        if req.owned.as_ref().is_none_or(|o| !o.is_empty()) {
            return invalid("TopicPartitions must be empty when (re-)joining.");
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
            );
        }
    } else if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        if req.instance_id.is_none() {
            return invalid("InstanceId can't be null.");
        }
    } else if req.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return invalid("MemberEpoch is invalid.");
    }
    if let Some(name) = &req.server_assignor {
        if !settings.assignors.iter().any(|a| a.name() == name) {
            let names: Vec<&str> = settings.assignors.iter().map(|a| a.name()).collect();
            return Err(HeartbeatResult::error(
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: {}.",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: IndexMap<String, ConsumerMember>,
    /// The target assignment of `assignment_epoch`, by member id.
    pub target: BTreeMap<String, Assignment>,
    /// The assignor that computed the target.
    pub assignor: Assignor,
    /// Subscribed topics and their partition counts as of the last heartbeat (what the
    /// assignor is given).
    subscribed_metadata: BTreeMap<Uuid, i32>,
    /// [`metadata_hash`] of the subscribed topics when the group epoch last moved: a change
    /// (a topic created, deleted or grown) bumps the group epoch. Stored with the epoch
    /// (KIP-1101's MetadataHash), so a restarted coordinator tells a change from a restart.
    pub metadata_hash: i64,
}

impl ConsumerGroup {
    /// Re-resolves the subscribed topics; true (a group epoch bump is due) if their metadata
    /// hash changed.
    pub(super) fn refresh_subscribed_metadata(&mut self, topics: &Topics) -> bool {
        self.subscribed_metadata = self.resolve_metadata(topics);
        let hash = metadata_hash(&self.subscribed_metadata);
        if hash == self.metadata_hash {
            return false;
        }
        self.metadata_hash = hash;
        true
    }
}

impl ConsumerGroup {
    pub fn new(group_id: String, settings: &Settings) -> Self {
        ConsumerGroup {
            group_id,
            group_epoch: 0,
            assignment_epoch: 0,
            members: IndexMap::new(),
            target: BTreeMap::new(),
            assignor: settings
                .assignors
                .first()
                .copied()
                .unwrap_or(Assignor::Uniform),
            subscribed_metadata: BTreeMap::new(),
            metadata_hash: 0,
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    fn static_member(&self, instance_id: &str) -> Option<&ConsumerMember> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// One ConsumerGroupHeartbeat (already [`validate`]d).
    pub fn heartbeat(
        &mut self,
        req: Heartbeat,
        topics: &Topics,
        settings: &Settings,
        now_ms: i64,
    ) -> HeartbeatResult {
        if req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
        {
            return self.leave(&req, settings);
        }
        // An invalid regex is refused before the group changes.
        let regex = match req.subscribed_topic_regex.as_deref() {
            Some(p) if !p.is_empty() => match compile_regex(p) {
                Ok(re) => Some(Some(re)),
                Err(m) => {
                    return HeartbeatResult::error(ResponseError::InvalidRegularExpression, m)
                }
            },
            Some(_) => Some(None),
            None => None,
        };
        let (member_id, joined) = match self.member_for(&req, settings, now_ms) {
            Ok(found) => found,
            Err(e) => return e,
        };
        let before_epoch = self.members.get(&member_id).map(|m| m.member_epoch);
        let before_assigned = self.members.get(&member_id).map(|m| m.assigned.clone());
        // Regexes set by earlier heartbeats are resolved now (a group epoch bump each).
        let mut bump = false;
        for m in self.members.values_mut() {
            if m.regex.is_some() && !m.regex_resolved {
                m.regex_resolved = true;
                bump = true;
            }
        }
        // One bump for whatever changed: a member, a subscription, or the subscribed topics.
        bump |= self.update_member(&member_id, &req, regex, settings, now_ms) || joined;
        bump |= self.refresh_subscribed_metadata(topics);
        if bump {
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(topics, settings);
        }
        self.reconcile(&member_id, req.owned.as_ref(), now_ms);
        let Some(m) = self.members.get(&member_id) else {
            return HeartbeatResult::error(ResponseError::UnknownMemberId, "member left");
        };
        let send = req.member_epoch == 0
            || before_epoch != Some(m.member_epoch)
            || before_assigned.as_ref() != Some(&m.assigned)
            || req.owned.as_ref().is_some_and(|o| !same(o, &m.assigned));
        HeartbeatResult {
            error: None,
            message: None,
            member_id: member_id.clone(),
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: settings.heartbeat_interval_ms,
            assignment: send.then(|| m.assigned.clone()),
        }
    }

    /// The member a heartbeat is for: joined (epoch 0), or looked up and its epoch checked
    /// (Kafka's throwIfMemberEpochIsInvalid).
    fn member_for(
        &mut self,
        req: &Heartbeat,
        settings: &Settings,
        now_ms: i64,
    ) -> Result<(String, bool), HeartbeatResult> {
        if req.member_epoch == 0 {
            return self.join(req, settings, now_ms);
        }
        let Some(member) = self.members.get(&req.member_id) else {
            return Err(HeartbeatResult::error(
                ResponseError::UnknownMemberId,
                format!(
                    "Member {} is not a member of group {}.",
                    req.member_id, self.group_id
                ),
            ));
        };
        if let Some(instance) = &req.instance_id {
            if member.instance_id.as_deref() != Some(instance) {
                return Err(HeartbeatResult::error(
                    ResponseError::FencedInstanceId,
                    format!("Static member {instance} was fenced by another member."),
                ));
            }
        }
        let fenced = || {
            Err(HeartbeatResult::error(
                ResponseError::FencedMemberEpoch,
                format!(
                    "The consumer group member has a member epoch ({}) different from the one known \
                     by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                    req.member_epoch, member.member_epoch
                ),
            ))
        };
        if req.member_epoch > member.member_epoch {
            return fenced();
        }
        if req.member_epoch < member.member_epoch {
            // The response with the new epoch may have been lost: the previous epoch is
            // accepted while the member owns no more than it is assigned now.
            let subset = req
                .owned
                .as_ref()
                .is_some_and(|o| is_subset(o, &member.assigned));
            if req.member_epoch != member.previous_member_epoch || !subset {
                return fenced();
            }
        }
        Ok((member.member_id.clone(), false))
    }

    /// The joining member's id, and whether it is new to the group (a group epoch bump).
    fn join(
        &mut self,
        req: &Heartbeat,
        settings: &Settings,
        now_ms: i64,
    ) -> Result<(String, bool), HeartbeatResult> {
        if let Some(instance) = &req.instance_id {
            if let Some(old) = self.static_member(instance) {
                if old.member_id != req.member_id {
                    if old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                        return Err(HeartbeatResult::error(
                            ResponseError::UnreleasedInstanceId,
                            format!(
                                "Static member {} with instance id {instance} is not released yet.",
                                old.member_id
                            ),
                        ));
                    }
                    // KIP-848 static membership: the new member id takes over the old one's
                    // assignment and epoch without a group epoch bump.
                    let old_id = old.member_id.clone();
                    if let Some(mut m) = self.members.shift_remove(&old_id) {
                        m.member_id = req.member_id.clone();
                        m.member_epoch = m.previous_member_epoch;
                        m.session_deadline_ms = now_ms + settings.session_timeout_ms as i64;
                        if let Some(t) = self.target.remove(&old_id) {
                            self.target.insert(req.member_id.clone(), t);
                        }
                        self.members.insert(req.member_id.clone(), m);
                    }
                    return Ok((req.member_id.clone(), false));
                }
            }
        }
        let joined = match self.members.get_mut(&req.member_id) {
            Some(m) => {
                // A known member rejoining with epoch 0 has given up everything it owned.
                m.assigned.clear();
                m.pending_revocation.clear();
                m.state = MemberState::Stable;
                m.previous_member_epoch = m.member_epoch;
                m.member_epoch = 0;
                false
            }
            None => {
                if self.members.len() >= settings.max_size {
                    return Err(HeartbeatResult::error(
                        ResponseError::GroupMaxSizeReached,
                        format!(
                            "The consumer group has reached its maximum capacity of {} members.",
                            settings.max_size
                        ),
                    ));
                }
                self.members.insert(
                    req.member_id.clone(),
                    ConsumerMember::new(req.member_id.clone(), now_ms, settings),
                );
                true
            }
        };
        Ok((req.member_id.clone(), joined))
    }

    /// Applies what the heartbeat sets; true if the subscription changed (group epoch bump).
    fn update_member(
        &mut self,
        member_id: &str,
        req: &Heartbeat,
        regex: Option<Option<regex::Regex>>,
        settings: &Settings,
        now_ms: i64,
    ) -> bool {
        let Some(m) = self.members.get_mut(member_id) else {
            return false;
        };
        m.session_deadline_ms = now_ms + settings.session_timeout_ms as i64;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        if req.instance_id.is_some() {
            m.instance_id = req.instance_id.clone();
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id.clone();
        }
        if req.rebalance_timeout_ms != -1 {
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        let mut changed = false;
        if req.server_assignor.is_some() && req.server_assignor != m.server_assignor {
            m.server_assignor = req.server_assignor.clone();
            changed = true;
        }
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            if names != m.subscribed_topic_names {
                m.subscribed_topic_names = names;
                changed = true;
            }
        }
        if let Some(re) = regex {
            let pattern = req.subscribed_topic_regex.clone().filter(|p| !p.is_empty());
            if pattern != m.subscribed_topic_regex {
                m.subscribed_topic_regex = pattern;
                m.regex = re;
                m.regex_resolved = false;
                changed = true;
            }
        }
        changed
    }

    fn resolve_metadata(&self, topics: &Topics) -> BTreeMap<Uuid, i32> {
        let mut ids = BTreeSet::new();
        for m in self.members.values() {
            ids.extend(m.subscribed_ids(topics));
        }
        topics
            .by_name
            .values()
            .filter(|(id, _)| ids.contains(id))
            .map(|(id, n)| (*id, *n))
            .collect()
    }

    /// The assignor most members ask for (Kafka's ConsumerGroup.computePreferredServerAssignor),
    /// else the first of `group.consumer.assignors`.
    pub(super) fn preferred_assignor(&self, settings: &Settings) -> Assignor {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.server_assignor.as_deref() {
                *votes.entry(a).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .and_then(|(name, _)| Assignor::from_name(name))
            .or_else(|| settings.assignors.first().copied())
            .unwrap_or(Assignor::Uniform)
    }

    pub(super) fn compute_target(&mut self, topics: &Topics, settings: &Settings) {
        self.assignor = self.preferred_assignor(settings);
        let specs: Vec<MemberSpec> = self
            .members
            .values()
            .map(|m| MemberSpec {
                member_id: m.member_id.clone(),
                subscribed: m.subscribed_ids(topics),
                current: self.target.get(&m.member_id).cloned().unwrap_or_default(),
            })
            .collect();
        self.target = self.assignor.assign(&specs, &self.subscribed_metadata);
        self.assignment_epoch = self.group_epoch;
    }

    pub(super) fn owned_by_other(&self, member_id: &str, topic: &Uuid, partition: i32) -> bool {
        self.members
            .values()
            .any(|m| m.member_id != member_id && m.owns(topic, partition))
    }

    /// Kafka's CurrentAssignmentBuilder: moves the member one step towards its target.
    pub(super) fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now_ms: i64) {
        let Some(m) = self.members.get(member_id) else {
            return;
        };
        let step = match m.state {
            MemberState::Stable => m.member_epoch != self.assignment_epoch,
            // Revocation is confirmed by a heartbeat owning no more than it was left with.
            MemberState::UnrevokedPartitions => owned.is_some_and(|o| is_subset(o, &m.assigned)),
            MemberState::UnreleasedPartitions => true,
        };
        if !step {
            return;
        }
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let mut kept = Assignment::new();
        let mut revoke = Assignment::new();
        let mut addable = Assignment::new();
        let mut unreleased = false;
        let current = if m.state == MemberState::UnrevokedPartitions {
            m.assigned.clone()
        } else {
            let mut c = m.assigned.clone();
            for (t, ps) in &m.pending_revocation {
                c.entry(*t).or_default().extend(ps);
            }
            c
        };
        for (t, ps) in &current {
            for p in ps {
                let into = if target.get(t).is_some_and(|tp| tp.contains(p)) {
                    &mut kept
                } else {
                    &mut revoke
                };
                into.entry(*t).or_default().insert(*p);
            }
        }
        for (t, ps) in &target {
            for p in ps {
                if current.get(t).is_some_and(|c| c.contains(p)) {
                    continue;
                }
                if self.owned_by_other(member_id, t, *p) {
                    unreleased = true;
                } else {
                    addable.entry(*t).or_default().insert(*p);
                }
            }
        }
        let target_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        if !revoke.is_empty() {
            // Revocation first: the member keeps only what stays its own, at its old epoch.
            m.state = MemberState::UnrevokedPartitions;
            m.assigned = kept;
            m.pending_revocation = revoke;
            m.revocation_deadline_ms = now_ms + m.rebalance_timeout_ms.max(0) as i64;
            return;
        }
        m.pending_revocation.clear();
        m.revocation_deadline_ms = i64::MAX;
        for (t, ps) in addable {
            kept.entry(t).or_default().extend(ps);
        }
        m.assigned = kept;
        if m.member_epoch != target_epoch {
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = target_epoch;
        }
        m.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }

    fn leave(&mut self, req: &Heartbeat, settings: &Settings) -> HeartbeatResult {
        let member_id = match &req.instance_id {
            Some(instance) => match self.static_member(instance) {
                None => {
                    return HeartbeatResult::error(
                        ResponseError::UnknownMemberId,
                        format!("Instance id {instance} is unknown."),
                    )
                }
                Some(m) if m.member_id != req.member_id => {
                    return HeartbeatResult::error(
                        ResponseError::FencedInstanceId,
                        format!("Static member {instance} was fenced by another member."),
                    )
                }
                Some(m) => m.member_id.clone(),
            },
            None => match self.members.get(&req.member_id) {
                None => {
                    return HeartbeatResult::error(
                        ResponseError::UnknownMemberId,
                        format!(
                            "Member {} is not a member of group {}.",
                            req.member_id, self.group_id
                        ),
                    )
                }
                Some(m) => m.member_id.clone(),
            },
        };
        if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            // The static member keeps its assignment until its session expires or its
            // instance id rejoins.
            if let Some(m) = self.members.get_mut(&member_id) {
                if m.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    m.previous_member_epoch = m.member_epoch;
                }
                m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            }
        } else {
            self.remove_member(&member_id);
        }
        HeartbeatResult {
            member_id,
            member_epoch: req.member_epoch,
            heartbeat_interval_ms: settings.heartbeat_interval_ms,
            ..Default::default()
        }
    }

    /// Removes a member; its partitions are free at once and the group epoch moves on.
    pub fn remove_member(&mut self, member_id: &str) {
        if self.members.shift_remove(member_id).is_some() {
            self.target.remove(member_id);
            self.group_epoch += 1;
        }
    }

    /// Members whose session expired or who did not revoke within their rebalance timeout.
    pub fn expired_members(&self, now_ms: i64) -> Vec<String> {
        self.members
            .values()
            .filter(|m| {
                now_ms > m.session_deadline_ms
                    || (m.state == MemberState::UnrevokedPartitions
                        && now_ms > m.revocation_deadline_ms)
            })
            .map(|m| m.member_id.clone())
            .collect()
    }

    /// Removes the [`expired_members`](Self::expired_members) (Kafka fences them). Returns
    /// the ids removed.
    pub fn tick(&mut self, now_ms: i64) -> Vec<String> {
        let expired = self.expired_members(now_ms);
        for id in &expired {
            self.remove_member(id);
        }
        expired
    }

    /// KIP-848 OffsetCommit check (Kafka's ConsumerGroup.validateOffsetCommit).
    pub fn validate_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        api_version: i16,
    ) -> Result<(), ResponseError> {
        // Admin tools and assign()-only consumers commit with epoch -1 to an empty group.
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if api_version < 9 && !member.uses_classic_protocol() {
            // Members of the consumer protocol must use OffsetCommit v9+; classic members
            // of a migrated group commit as they always did (their generation is the epoch).
            return Err(ResponseError::UnsupportedVersion);
        }
        member.check_epoch(member_epoch)
    }

    /// Kafka's validateMemberEpoch: a classic member's generation is its member epoch
    /// (ILLEGAL_GENERATION), a consumer member's epoch must match (STALE_MEMBER_EPOCH).
    fn check_epoch_of(member: &ConsumerMember, member_epoch: i32) -> Result<(), ResponseError> {
        if member_epoch == member.member_epoch {
            Ok(())
        } else if member.uses_classic_protocol() {
            Err(ResponseError::IllegalGeneration)
        } else {
            Err(ResponseError::StaleMemberEpoch)
        }
    }

    /// KIP-848 OffsetFetch v9 check (Kafka's ConsumerGroup.validateOffsetFetch).
    pub fn validate_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        let Some(member_id) = member_id else {
            if member_epoch < 0 {
                return Ok(());
            }
            return Err(ResponseError::UnknownMemberId);
        };
        if member_id.is_empty() && member_epoch < 0 {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        member.check_epoch(member_epoch)
    }

    /// Topic names any member is subscribed to now (OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC).
    pub fn subscribed_topic_names(&self, topics: &Topics) -> BTreeSet<String> {
        let ids: BTreeSet<Uuid> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_ids(topics))
            .collect();
        ids.iter()
            .filter_map(|id| topics.name_of(id).map(str::to_string))
            .collect()
    }
}

/// The durable form of a group: the KIP-848 records Kafka keeps in `__consumer_offsets`
/// (records.rs), written before a heartbeat is answered and replayed at start.
impl ConsumerGroup {
    /// The records that take the stored group from `before` (None: nothing stored yet) to
    /// `self`: tombstones for removed members (current assignment, target, metadata, as
    /// Kafka orders them), then what changed of member metadata, group epoch, target
    /// assignment and current assignments. Each key is one member's or the group's, so the
    /// log cleaner keeps exactly the latest of each.
    pub fn records_since(&self, before: Option<&ConsumerGroup>) -> Vec<OffsetsRecord> {
        let group_id = &self.group_id;
        let mut out = Vec::new();
        let old_member = |id: &str| before.and_then(|b| b.members.get(id));
        for id in before.iter().flat_map(|b| b.members.keys()) {
            if !self.members.contains_key(id) {
                out.extend(member_tombstones(group_id, id));
            }
        }
        for id in before.iter().flat_map(|b| b.target.keys()) {
            if self.members.contains_key(id) && !self.target.contains_key(id) {
                out.push(OffsetsRecord::ConsumerGroupTargetAssignmentMember {
                    group_id: group_id.clone(),
                    member_id: id.clone(),
                    partitions: Some(Assignment::new()),
                });
            }
        }
        for m in self.members.values() {
            let value = m.metadata_value();
            if old_member(&m.member_id).map(|o| o.metadata_value()) != Some(value.clone()) {
                out.push(OffsetsRecord::ConsumerGroupMemberMetadata {
                    group_id: group_id.clone(),
                    member_id: m.member_id.clone(),
                    value: Some(value),
                });
            }
        }
        let epoch = |g: &ConsumerGroup| (g.group_epoch, g.metadata_hash);
        if before.map(epoch) != Some(epoch(self)) {
            out.push(OffsetsRecord::ConsumerGroupMetadata {
                group_id: group_id.clone(),
                value: Some(ConsumerGroupMetadataValue {
                    epoch: self.group_epoch,
                    metadata_hash: self.metadata_hash,
                }),
            });
        }
        for (id, target) in &self.target {
            if before.and_then(|b| b.target.get(id)) != Some(target) {
                out.push(OffsetsRecord::ConsumerGroupTargetAssignmentMember {
                    group_id: group_id.clone(),
                    member_id: id.clone(),
                    partitions: Some(target.clone()),
                });
            }
        }
        if before.map(|b| b.assignment_epoch) != Some(self.assignment_epoch) {
            out.push(OffsetsRecord::ConsumerGroupTargetAssignmentMetadata {
                group_id: group_id.clone(),
                assignment_epoch: Some(self.assignment_epoch),
            });
        }
        for m in self.members.values() {
            let value = m.current_value();
            if old_member(&m.member_id).map(|o| o.current_value()) != Some(value.clone()) {
                out.push(OffsetsRecord::ConsumerGroupCurrentMemberAssignment {
                    group_id: group_id.clone(),
                    member_id: m.member_id.clone(),
                    value: Some(value),
                });
            }
        }
        out
    }

    /// Tombstones for every record of the group (DeleteGroups, which needs it Empty; its
    /// members' records, if any, go first), the group epoch last as Kafka does.
    pub fn tombstones(&self) -> Vec<OffsetsRecord> {
        let group_id = &self.group_id;
        let mut out: Vec<OffsetsRecord> = self
            .members
            .keys()
            .flat_map(|id| member_tombstones(group_id, id))
            .collect();
        out.push(OffsetsRecord::ConsumerGroupTargetAssignmentMetadata {
            group_id: group_id.clone(),
            assignment_epoch: None,
        });
        out.push(OffsetsRecord::ConsumerGroupMetadata {
            group_id: group_id.clone(),
            value: None,
        });
        out
    }

    /// The group the replayed records describe. Members come back with their epochs and
    /// assignments and a fresh session (Kafka's onLoaded schedules every loaded member's
    /// session timeout, and the rebalance timeout of one still revoking), so a member that
    /// heartbeats again carries on and one that does not expires as it would have.
    pub fn from_loaded(
        group_id: String,
        loaded: LoadedGroup,
        settings: &Settings,
        now_ms: i64,
    ) -> ConsumerGroup {
        let mut g = ConsumerGroup::new(group_id, settings);
        g.group_epoch = loaded.metadata.epoch;
        g.metadata_hash = loaded.metadata.metadata_hash;
        g.assignment_epoch = loaded.assignment_epoch;
        for (member_id, value) in loaded.members {
            let mut m = ConsumerMember::new(member_id.clone(), now_ms, settings);
            m.instance_id = value.instance_id;
            m.rack_id = value.rack_id;
            m.client_id = value.client_id;
            m.client_host = value.client_host;
            m.rebalance_timeout_ms = value.rebalance_timeout_ms;
            m.subscribed_topic_names = value.subscribed_topic_names;
            m.server_assignor = value.server_assignor;
            m.classic = value.classic_member_metadata;
            m.session_deadline_ms = now_ms + m.session_timeout_ms(settings);
            if let Some(pattern) = value.subscribed_topic_regex {
                match compile_regex(&pattern) {
                    Ok(re) => {
                        m.regex = Some(re);
                        // Resolved already or not, the metadata hash tells at the next
                        // heartbeat whether the matches changed the group.
                        m.regex_resolved = true;
                        m.subscribed_topic_regex = Some(pattern);
                    }
                    Err(e) => {
                        tracing::warn!(group = %g.group_id, member = %member_id, error = %e, "stored regex dropped")
                    }
                }
            }
            if let Some(current) = loaded.current.get(&member_id) {
                m.member_epoch = current.member_epoch;
                m.previous_member_epoch = current.previous_member_epoch;
                m.state = MemberState::from_stored(current.state);
                m.assigned = current.assigned_partitions.clone();
                m.pending_revocation = current.partitions_pending_revocation.clone();
                if m.state == MemberState::UnrevokedPartitions {
                    m.revocation_deadline_ms = now_ms + m.rebalance_timeout_ms.max(0) as i64;
                }
            }
            if let Some(target) = loaded.target.get(&member_id) {
                g.target.insert(member_id.clone(), target.clone());
            }
            g.members.insert(member_id, m);
        }
        g.assignor = g.preferred_assignor(settings);
        g
    }
}

/// One consumer group's records as replay finds them, latest per key: order-independent, as
/// a compacted log only keeps the order of each key's last record.
#[derive(Clone, Debug, Default)]
pub struct LoadedGroup {
    pub metadata: ConsumerGroupMetadataValue,
    pub assignment_epoch: i32,
    /// Members are those with metadata; a current or target assignment without it (a
    /// half-removed member) is dropped.
    pub members: IndexMap<String, ConsumerGroupMemberMetadataValue>,
    pub current: BTreeMap<String, ConsumerGroupCurrentMemberAssignmentValue>,
    pub target: BTreeMap<String, Assignment>,
}

impl LoadedGroup {
    /// Applies one record of this group (ConsumerGroupMetadata tombstones are the caller's:
    /// they remove the whole entry).
    pub fn apply(&mut self, record: OffsetsRecord) {
        match record {
            OffsetsRecord::ConsumerGroupMetadata {
                value: Some(value), ..
            } => self.metadata = value,
            OffsetsRecord::ConsumerGroupMemberMetadata {
                member_id, value, ..
            } => match value {
                Some(v) => {
                    self.members.insert(member_id, v);
                }
                None => {
                    self.members.shift_remove(&member_id);
                }
            },
            OffsetsRecord::ConsumerGroupTargetAssignmentMetadata {
                assignment_epoch, ..
            } => self.assignment_epoch = assignment_epoch.unwrap_or(0),
            OffsetsRecord::ConsumerGroupTargetAssignmentMember {
                member_id,
                partitions,
                ..
            } => keep_latest(&mut self.target, member_id, partitions),
            OffsetsRecord::ConsumerGroupCurrentMemberAssignment {
                member_id, value, ..
            } => keep_latest(&mut self.current, member_id, value),
            _ => {}
        }
    }
}

/// A replayed member record: its value replaces the one before, a tombstone removes it.
fn keep_latest<V>(map: &mut BTreeMap<String, V>, member_id: String, value: Option<V>) {
    match value {
        Some(v) => {
            map.insert(member_id, v);
        }
        None => {
            map.remove(&member_id);
        }
    }
}

fn member_tombstones(group_id: &str, member_id: &str) -> [OffsetsRecord; 3] {
    [
        OffsetsRecord::ConsumerGroupCurrentMemberAssignment {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
            value: None,
        },
        OffsetsRecord::ConsumerGroupTargetAssignmentMember {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
            partitions: None,
        },
        OffsetsRecord::ConsumerGroupMemberMetadata {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
            value: None,
        },
    ]
}

impl ConsumerMember {
    fn check_epoch(&self, member_epoch: i32) -> Result<(), ResponseError> {
        ConsumerGroup::check_epoch_of(self, member_epoch)
    }

    fn metadata_value(&self) -> ConsumerGroupMemberMetadataValue {
        ConsumerGroupMemberMetadataValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
            classic_member_metadata: self.classic.clone(),
        }
    }

    fn current_value(&self) -> ConsumerGroupCurrentMemberAssignmentValue {
        ConsumerGroupCurrentMemberAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.stored(),
            assigned_partitions: self.assigned.clone(),
            partitions_pending_revocation: self.pending_revocation.clone(),
        }
    }
}

impl MemberState {
    /// Kafka's MemberState byte.
    fn stored(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }

    /// An unknown byte (a newer Kafka's state) is read as UnreleasedPartitions, the state
    /// from which the next heartbeat recomputes the member's step from its target.
    fn from_stored(b: i8) -> Self {
        match b {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            _ => MemberState::UnreleasedPartitions,
        }
    }
}

/// A 64-bit FNV-1a hash of the subscribed topics (id and partition count, in id order); 0
/// for none, as Kafka's group metadata hash (KIP-1101). Only this broker compares it.
pub fn metadata_hash(topics: &BTreeMap<Uuid, i32>) -> i64 {
    if topics.is_empty() {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (id, partitions) in topics {
        for byte in id.as_bytes().iter().chain(&partitions.to_be_bytes()) {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h as i64
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .all(|(t, ps)| ps.is_empty() || b.get(t).is_some_and(|bp| ps.is_subset(bp)))
}

/// Equal as sets of partitions (an empty topic entry means nothing).
fn same(a: &Assignment, b: &Assignment) -> bool {
    is_subset(a, b) && is_subset(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Uuid = Uuid::from_u128(7);

    fn settings() -> Settings {
        Settings {
            heartbeat_interval_ms: 5000,
            session_timeout_ms: 45000,
            max_size: 3,
            assignors: vec![Assignor::Uniform, Assignor::Range],
        }
    }

    fn topics(partitions: i32) -> Topics {
        Topics {
            by_name: BTreeMap::from([("t".to_string(), (T, partitions))]),
        }
    }

    fn join(id: &str) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..Default::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: &Assignment) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: Some(owned.clone()),
            ..Default::default()
        }
    }

    fn ps(a: &Option<Assignment>) -> BTreeSet<i32> {
        a.as_ref()
            .and_then(|a| a.get(&T).cloned())
            .unwrap_or_default()
    }

    #[test]
    fn first_member_gets_everything_at_epoch_one() {
        let mut g = ConsumerGroup::new("g".into(), &settings());
        let r = g.heartbeat(join("a"), &topics(4), &settings(), 0);
        assert_eq!(r.error, None);
        assert_eq!(r.member_epoch, 1);
        assert_eq!(ps(&r.assignment), BTreeSet::from([0, 1, 2, 3]));
        assert_eq!(g.state(), ConsumerGroupState::Stable);
    }

    #[test]
    fn second_member_waits_until_the_first_revokes() {
        let s = settings();
        let t = topics(4);
        let mut g = ConsumerGroup::new("g".into(), &s);
        let a1 = g.heartbeat(join("a"), &t, &s, 0).assignment.unwrap();
        // b joins: target splits 2/2, but a still owns everything, so b gets nothing yet.
        let b = g.heartbeat(join("b"), &t, &s, 0);
        assert_eq!(b.member_epoch, 2);
        assert!(ps(&b.assignment).is_empty());
        assert_eq!(g.state(), ConsumerGroupState::Reconciling);
        // a is told to keep only its half, still at epoch 1.
        let a = g.heartbeat(beat("a", 1, &a1), &t, &s, 0);
        assert_eq!(a.member_epoch, 1);
        let kept = a.assignment.clone().unwrap();
        assert_eq!(ps(&a.assignment).len(), 2);
        // Until a confirms, b still gets nothing.
        let b = g.heartbeat(beat("b", 2, &Assignment::new()), &t, &s, 0);
        assert!(b.assignment.is_none() || ps(&b.assignment).is_empty());
        // a confirms the revocation and moves to epoch 2.
        let a = g.heartbeat(beat("a", 1, &kept), &t, &s, 0);
        assert_eq!(a.member_epoch, 2);
        // Now b gets the released half.
        let b = g.heartbeat(beat("b", 2, &Assignment::new()), &t, &s, 0);
        let got = ps(&b.assignment);
        assert_eq!(got.len(), 2);
        assert!(got.is_disjoint(&ps(&Some(kept))));
        assert_eq!(g.state(), ConsumerGroupState::Stable);
    }

    #[test]
    fn leave_frees_partitions_for_the_rest() {
        let s = settings();
        let t = topics(2);
        let mut g = ConsumerGroup::new("g".into(), &s);
        g.heartbeat(join("a"), &t, &s, 0);
        g.heartbeat(join("b"), &t, &s, 0);
        let r = g.heartbeat(beat("b", -1, &Assignment::new()), &t, &s, 0);
        assert_eq!(r.member_epoch, -1);
        assert_eq!(r.error, None);
        let a = g.heartbeat(beat("a", 1, &Assignment::new()), &t, &s, 0);
        assert_eq!(ps(&a.assignment), BTreeSet::from([0, 1]));
    }

    #[test]
    fn wrong_epochs_and_unknown_members_are_fenced() {
        let s = settings();
        let t = topics(2);
        let mut g = ConsumerGroup::new("g".into(), &s);
        g.heartbeat(join("a"), &t, &s, 0);
        let r = g.heartbeat(beat("a", 5, &Assignment::new()), &t, &s, 0);
        assert_eq!(r.error, Some(ResponseError::FencedMemberEpoch));
        let r = g.heartbeat(beat("x", 1, &Assignment::new()), &t, &s, 0);
        assert_eq!(r.error, Some(ResponseError::UnknownMemberId));
    }

    #[test]
    fn previous_epoch_with_owned_subset_is_accepted() {
        let s = settings();
        let t = topics(2);
        let mut g = ConsumerGroup::new("g".into(), &s);
        g.heartbeat(join("a"), &t, &s, 0);
        g.heartbeat(join("b"), &t, &s, 0);
        // a at epoch 1 owns both: revoke one.
        let all = Assignment::from([(T, BTreeSet::from([0, 1]))]);
        let a = g.heartbeat(beat("a", 1, &all), &t, &s, 0);
        let kept = a.assignment.unwrap();
        let a = g.heartbeat(beat("a", 1, &kept), &t, &s, 0);
        assert_eq!(a.member_epoch, 2);
        // Response lost: a comes back with epoch 1 owning its subset.
        let r = g.heartbeat(beat("a", 1, &kept), &t, &s, 0);
        assert_eq!(r.error, None);
        assert_eq!(r.member_epoch, 2);
        // ... but not owning more than it has.
        let r = g.heartbeat(beat("a", 1, &all), &t, &s, 0);
        assert_eq!(r.error, Some(ResponseError::FencedMemberEpoch));
    }

    #[test]
    fn session_expiry_removes_the_member() {
        let s = settings();
        let t = topics(2);
        let mut g = ConsumerGroup::new("g".into(), &s);
        g.heartbeat(join("a"), &t, &s, 0);
        assert!(g.tick(45_000).is_empty());
        assert_eq!(g.tick(45_001), vec!["a".to_string()]);
        assert_eq!(g.state(), ConsumerGroupState::Empty);
    }

    #[test]
    fn unrevoked_partitions_past_the_rebalance_timeout_fence_the_member() {
        let s = settings();
        let t = topics(2);
        let mut g = ConsumerGroup::new("g".into(), &s);
        let a1 = g.heartbeat(join("a"), &t, &s, 0).assignment.unwrap();
        g.heartbeat(join("b"), &t, &s, 0);
        g.heartbeat(beat("a", 1, &a1), &t, &s, 1000);
        assert!(g.tick(30_000).is_empty());
        g.heartbeat(beat("b", 2, &Assignment::new()), &t, &s, 30_000);
        assert_eq!(g.tick(31_001), vec!["a".to_string()]);
    }

    #[test]
    fn static_member_rejoining_takes_over_its_assignment() {
        let s = settings();
        let t = topics(2);
        let mut g = ConsumerGroup::new("g".into(), &s);
        let mut a = join("a");
        a.instance_id = Some("i".into());
        let first = g.heartbeat(a, &t, &s, 0);
        let mut other = join("a2");
        other.instance_id = Some("i".into());
        let r = g.heartbeat(other.clone(), &t, &s, 0);
        assert_eq!(r.error, Some(ResponseError::UnreleasedInstanceId));
        let mut leave = beat("a", -2, &Assignment::new());
        leave.instance_id = Some("i".into());
        assert_eq!(g.heartbeat(leave, &t, &s, 0).member_epoch, -2);
        let epoch = g.group_epoch;
        let r = g.heartbeat(other, &t, &s, 0);
        assert_eq!(r.error, None);
        assert_eq!(r.member_epoch, first.member_epoch);
        assert_eq!(r.assignment, first.assignment);
        assert_eq!(g.group_epoch, epoch, "no rebalance for a static rejoin");
    }

    #[test]
    fn group_max_size_and_invalid_requests_are_refused() {
        let s = settings();
        let t = topics(2);
        let mut g = ConsumerGroup::new("g".into(), &s);
        for id in ["a", "b", "c"] {
            assert_eq!(g.heartbeat(join(id), &t, &s, 0).error, None);
        }
        let r = g.heartbeat(join("d"), &t, &s, 0);
        assert_eq!(r.error, Some(ResponseError::GroupMaxSizeReached));
        let mut bad = join("e");
        bad.server_assignor = Some("sticky".into());
        let r = validate("g", &bad, 0, &s).unwrap_err();
        assert_eq!(r.error, Some(ResponseError::UnsupportedAssignor));
        let mut bad = join("e");
        bad.rebalance_timeout_ms = -1;
        assert_eq!(
            validate("g", &bad, 0, &s).unwrap_err().error,
            Some(ResponseError::InvalidRequest)
        );
        assert!(
            validate("g", &join(""), 0, &s).is_ok(),
            "v0 may leave the id to the broker"
        );
        assert!(validate("g", &join(""), 1, &s).is_err(), "v1 must send one");
    }

    #[test]
    fn regex_subscription_matches_whole_names_and_skips_internal_topics() {
        let s = settings();
        let mut t = topics(1);
        t.by_name.insert("t-other".into(), (Uuid::from_u128(8), 1));
        t.by_name
            .insert("__consumer_offsets".into(), (Uuid::from_u128(9), 50));
        let mut g = ConsumerGroup::new("g".into(), &s);
        let mut j = join("a");
        j.subscribed_topic_names = None;
        j.subscribed_topic_regex = Some("t|__.*".into());
        let r = g.heartbeat(j, &t, &s, 0);
        assert_eq!(
            r.assignment,
            Some(Assignment::new()),
            "resolved after this heartbeat"
        );
        let r = g.heartbeat(beat("a", r.member_epoch, &Assignment::new()), &t, &s, 0);
        assert_eq!(
            r.assignment.unwrap().keys().copied().collect::<Vec<_>>(),
            vec![T]
        );
        let mut j = join("b");
        j.subscribed_topic_regex = Some("(".into());
        let r = g.heartbeat(j, &t, &s, 0);
        assert_eq!(r.error, Some(ResponseError::InvalidRegularExpression));
        assert!(!g.members.contains_key("b"));
    }

    #[test]
    fn a_new_partition_bumps_the_group_epoch() {
        let s = settings();
        let mut g = ConsumerGroup::new("g".into(), &s);
        g.heartbeat(join("a"), &topics(1), &s, 0);
        let owned = Assignment::from([(T, BTreeSet::from([0]))]);
        let r = g.heartbeat(beat("a", 1, &owned), &topics(2), &s, 0);
        assert_eq!(r.member_epoch, 2);
        assert_eq!(ps(&r.assignment), BTreeSet::from([0, 1]));
    }

    #[test]
    fn commit_and_fetch_check_the_member_epoch() {
        let s = settings();
        let mut g = ConsumerGroup::new("g".into(), &s);
        g.heartbeat(join("a"), &topics(1), &s, 0);
        assert_eq!(g.validate_commit("a", 1, 9), Ok(()));
        assert_eq!(
            g.validate_commit("a", 0, 9),
            Err(ResponseError::StaleMemberEpoch)
        );
        assert_eq!(
            g.validate_commit("x", 1, 9),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(
            g.validate_commit("a", 1, 8),
            Err(ResponseError::UnsupportedVersion)
        );
        assert_eq!(
            g.validate_commit("", -1, 9),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(g.validate_fetch(Some("a"), 1), Ok(()));
        assert_eq!(
            g.validate_fetch(Some("a"), 2),
            Err(ResponseError::StaleMemberEpoch)
        );
        assert_eq!(g.validate_fetch(None, -1), Ok(()));
    }

    /// Replays records as a restarted coordinator does (through their encoded bytes).
    fn reload(records: &[OffsetsRecord], s: &Settings, now_ms: i64) -> ConsumerGroup {
        let mut loaded = LoadedGroup::default();
        for r in records {
            let (key, value) = crate::group::records::encode(r);
            let decoded = crate::group::records::decode(&key, value.as_deref()).unwrap();
            loaded.apply(decoded);
        }
        ConsumerGroup::from_loaded("g".into(), loaded, s, now_ms)
    }

    #[test]
    fn stored_records_rebuild_members_epochs_and_assignments() {
        let s = settings();
        let t = topics(4);
        let mut g = ConsumerGroup::new("g".into(), &s);
        let mut log = Vec::new();
        let mut step = |g: &mut ConsumerGroup, hb: Heartbeat| {
            let before = g.clone();
            let r = g.heartbeat(hb, &t, &s, 0);
            log.extend(g.records_since(Some(&before)));
            r
        };
        let a1 = step(&mut g, join("a")).assignment.unwrap();
        let mut b = join("b");
        b.instance_id = Some("ib".into());
        step(&mut g, b);
        // a is revoking half: the restart happens mid-reconciliation.
        let a = step(&mut g, beat("a", 1, &a1));
        let kept = a.assignment.unwrap();
        assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
        let mut back = reload(&log, &s, 1000);
        assert_eq!(back.group_epoch, g.group_epoch);
        assert_eq!(back.assignment_epoch, g.assignment_epoch);
        assert_eq!(back.metadata_hash, g.metadata_hash);
        assert_eq!(back.target, g.target);
        for (id, m) in &g.members {
            let n = &back.members[id];
            assert_eq!(n.current_value(), m.current_value());
            assert_eq!(n.metadata_value(), m.metadata_value());
        }
        assert_eq!(back.members["b"].instance_id.as_deref(), Some("ib"));
        // a carries on where it was: no fencing, no new group epoch.
        let epoch = back.group_epoch;
        let r = back.heartbeat(beat("a", 1, &kept), &t, &s, 1000);
        assert_eq!(r.error, None);
        assert_eq!(r.member_epoch, 2);
        assert_eq!(back.group_epoch, epoch, "a restart is no rebalance");
        // Sessions restart at the load; b, silent, expires a session after it.
        assert!(back.expired_members(1000 + 45_000).is_empty());
        assert!(back
            .expired_members(1000 + 45_001)
            .contains(&"b".to_string()));
    }

    #[test]
    fn removed_members_and_deleted_groups_leave_only_tombstones() {
        let s = settings();
        let t = topics(2);
        let mut g = ConsumerGroup::new("g".into(), &s);
        let mut log = g.records_since(None);
        let before = g.clone();
        g.heartbeat(join("a"), &t, &s, 0);
        g.heartbeat(join("b"), &t, &s, 0);
        log.extend(g.records_since(Some(&before)));
        let before = g.clone();
        g.heartbeat(beat("b", -1, &Assignment::new()), &t, &s, 0);
        let leave = g.records_since(Some(&before));
        let tombstoned: Vec<&OffsetsRecord> = leave.iter().filter(|r| r.is_tombstone()).collect();
        assert_eq!(tombstoned.len(), 3, "current, target and metadata of b");
        log.extend(leave);
        let back = reload(&log, &s, 0);
        assert_eq!(back.members.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(!back.target.contains_key("b"));
        let before = g.clone();
        g.heartbeat(beat("a", -1, &Assignment::new()), &t, &s, 0);
        log.extend(g.records_since(Some(&before)));
        let deleted = g.tombstones();
        assert!(deleted.iter().all(|r| r.is_tombstone()));
        assert!(matches!(
            deleted.last(),
            Some(OffsetsRecord::ConsumerGroupMetadata { value: None, .. })
        ));
    }
}
