//! The server-side partition assignors of KIP-848 consumer groups (`group.consumer.assignors`):
//! `uniform` (balanced and sticky, Kafka's UniformAssignor) and `range` (per topic ranges,
//! Kafka's RangeAssignor layout).
//!
//! Pure functions from the members' subscriptions and current target assignment to the next
//! target assignment; the group state machine (consumer.rs) decides when to run them.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id, as the ConsumerGroupHeartbeat response carries them.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// One member as an assignor sees it.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    pub member_id: String,
    /// Topic ids the member is subscribed to (names and regex already resolved).
    pub subscribed: BTreeSet<Uuid>,
    /// The member's partitions in the previous target assignment (stickiness).
    pub current: Assignment,
}

/// The server assignors Kafka ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignor {
    Uniform,
    Range,
}

impl Assignor {
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name {
            "uniform" => Some(Assignor::Uniform),
            "range" => Some(Assignor::Range),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }

    /// The next target assignment of every member. `topics` maps each subscribed topic id to
    /// its partition count; a topic that no longer exists is simply absent.
    pub fn assign(
        self,
        members: &[MemberSpec],
        topics: &BTreeMap<Uuid, i32>,
    ) -> BTreeMap<String, Assignment> {
        match self {
            Assignor::Uniform => uniform(members, topics),
            Assignor::Range => range(members, topics),
        }
    }
}

/// Number of partitions in an assignment.
pub fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// Kafka's UniformAssignor goals, in order: every subscribed partition assigned to exactly one
/// subscribed member, counts as even as the subscriptions allow, and as few partitions moved
/// as possible. Members keep what they still may own; free partitions go to the least loaded
/// eligible member; then partitions move from the most to the least loaded eligible member
/// while the difference is more than one.
fn uniform(members: &[MemberSpec], topics: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut sorted: Vec<&MemberSpec> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let mut out: BTreeMap<String, Assignment> = sorted
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    let mut owner: BTreeMap<(Uuid, i32), String> = BTreeMap::new();
    // Homogeneous groups get a hard quota so stickiness never leaves one member above it.
    let total: usize = topics
        .iter()
        .filter(|(t, _)| sorted.iter().any(|m| m.subscribed.contains(t)))
        .map(|(_, n)| (*n).max(0) as usize)
        .sum();
    let homogeneous = sorted
        .windows(2)
        .all(|w| w[0].subscribed == w[1].subscribed);
    let quota = if homogeneous && !sorted.is_empty() {
        total.div_ceil(sorted.len())
    } else {
        usize::MAX
    };
    // 1. Stickiness: keep partitions that still exist and are still subscribed.
    for m in &sorted {
        for (topic, partitions) in &m.current {
            let Some(&n) = topics.get(topic) else {
                continue;
            };
            if !m.subscribed.contains(topic) {
                continue;
            }
            for &p in partitions {
                let key = (*topic, p);
                if p < 0 || p >= n || owner.contains_key(&key) {
                    continue;
                }
                let mine = out.entry(m.member_id.clone()).or_default();
                if count(mine) >= quota {
                    continue;
                }
                mine.entry(*topic).or_default().insert(p);
                owner.insert(key, m.member_id.clone());
            }
        }
    }
    // 2. Free partitions to the least loaded eligible member (ties: smallest member id).
    for (topic, &n) in topics {
        let eligible: Vec<&str> = sorted
            .iter()
            .filter(|m| m.subscribed.contains(topic))
            .map(|m| m.member_id.as_str())
            .collect();
        if eligible.is_empty() {
            continue;
        }
        for p in 0..n.max(0) {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            let Some(to) = eligible
                .iter()
                .min_by_key(|id| out.get(**id).map(count).unwrap_or(0))
            else {
                continue;
            };
            out.entry(to.to_string())
                .or_default()
                .entry(*topic)
                .or_default()
                .insert(p);
            owner.insert((*topic, p), to.to_string());
        }
    }
    // 3. Balance: move one partition at a time; each move lowers the spread, so the loop
    // ends; the bound is a guard, not the expected exit.
    let bound = total.saturating_mul(sorted.len().max(1)).max(1);
    for _ in 0..bound {
        if !move_one(&sorted, &mut out) {
            break;
        }
    }
    out
}

/// Moves one partition from a member to an eligible member holding at least two fewer.
fn move_one(sorted: &[&MemberSpec], out: &mut BTreeMap<String, Assignment>) -> bool {
    let load = |out: &BTreeMap<String, Assignment>, id: &str| out.get(id).map(count).unwrap_or(0);
    let mut by_load: Vec<&MemberSpec> = sorted.to_vec();
    by_load.sort_by_key(|m| std::cmp::Reverse(load(out, &m.member_id)));
    for from in &by_load {
        let from_load = load(out, &from.member_id);
        let Some(owned) = out.get(&from.member_id) else {
            continue;
        };
        // Last partitions first so a member keeps its lowest ones.
        let candidates: Vec<(Uuid, i32)> = owned
            .iter()
            .flat_map(|(t, ps)| ps.iter().rev().map(move |p| (*t, *p)))
            .collect();
        for (topic, p) in candidates {
            let to = sorted
                .iter()
                .filter(|m| m.member_id != from.member_id && m.subscribed.contains(&topic))
                .min_by_key(|m| load(out, &m.member_id));
            if let Some(to) = to {
                if load(out, &to.member_id) + 1 < from_load {
                    if let Some(ps) = out.get_mut(&from.member_id).and_then(|a| a.get_mut(&topic)) {
                        ps.remove(&p);
                        if ps.is_empty() {
                            out.get_mut(&from.member_id).map(|a| a.remove(&topic));
                        }
                    }
                    out.entry(to.member_id.clone())
                        .or_default()
                        .entry(topic)
                        .or_default()
                        .insert(p);
                    return true;
                }
            }
        }
    }
    false
}

/// Kafka's range layout: per topic, the subscribed members in member id order each take a
/// contiguous range; the first `partitions % members` take one more. Topics with the same
/// partition count and subscribers are co-partitioned (same ranges to the same member).
fn range(members: &[MemberSpec], topics: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for (topic, &n) in topics {
        let mut subscribed: Vec<&str> = members
            .iter()
            .filter(|m| m.subscribed.contains(topic))
            .map(|m| m.member_id.as_str())
            .collect();
        if subscribed.is_empty() || n <= 0 {
            continue;
        }
        subscribed.sort_unstable();
        let per = n as usize / subscribed.len();
        let extra = n as usize % subscribed.len();
        let mut next = 0i32;
        for (i, id) in subscribed.iter().enumerate() {
            let take = per + usize::from(i < extra);
            if take == 0 {
                continue;
            }
            let ps: BTreeSet<i32> = (next..next + take as i32).collect();
            next += take as i32;
            out.entry(id.to_string()).or_default().insert(*topic, ps);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[Uuid], current: Assignment) -> MemberSpec {
        MemberSpec {
            member_id: id.to_string(),
            subscribed: topics.iter().copied().collect(),
            current,
        }
    }

    fn every_partition_once(out: &BTreeMap<String, Assignment>, topics: &BTreeMap<Uuid, i32>) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for (t, ps) in a {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "partition {t}-{p} assigned twice");
                }
            }
        }
        let expected: usize = topics.values().map(|n| *n as usize).sum();
        assert_eq!(seen.len(), expected);
    }

    #[test]
    fn uniform_splits_evenly_and_keeps_partitions_when_a_member_joins() {
        let t = Uuid::from_u128(1);
        let topics = BTreeMap::from([(t, 6)]);
        let first = Assignor::Uniform.assign(&[member("a", &[t], Assignment::new())], &topics);
        assert_eq!(count(&first["a"]), 6);
        let second = Assignor::Uniform.assign(
            &[
                member("a", &[t], first["a"].clone()),
                member("b", &[t], Assignment::new()),
            ],
            &topics,
        );
        every_partition_once(&second, &topics);
        assert_eq!(count(&second["a"]), 3);
        assert_eq!(count(&second["b"]), 3);
        // Sticky: everything a still has it had before.
        assert!(second["a"][&t].is_subset(&first["a"][&t]));
    }

    #[test]
    fn uniform_gives_everything_to_the_remaining_member_after_a_leave() {
        let t = Uuid::from_u128(1);
        let topics = BTreeMap::from([(t, 4)]);
        let a = Assignment::from([(t, BTreeSet::from([0, 1]))]);
        let out = Assignor::Uniform.assign(&[member("a", &[t], a)], &topics);
        assert_eq!(out["a"][&t], BTreeSet::from([0, 1, 2, 3]));
    }

    #[test]
    fn uniform_respects_heterogeneous_subscriptions() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let topics = BTreeMap::from([(t1, 3), (t2, 3)]);
        let out = Assignor::Uniform.assign(
            &[
                member("a", &[t1], Assignment::new()),
                member("b", &[t1, t2], Assignment::new()),
            ],
            &topics,
        );
        every_partition_once(&out, &topics);
        assert!(!out["a"].contains_key(&t2), "a is not subscribed to t2");
        assert_eq!(count(&out["a"]), 3);
        assert_eq!(count(&out["b"]), 3);
    }

    #[test]
    fn uniform_drops_partitions_of_deleted_or_unsubscribed_topics() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let topics = BTreeMap::from([(t1, 2)]);
        let current = Assignment::from([(t1, BTreeSet::from([0, 1])), (t2, BTreeSet::from([0]))]);
        let out = Assignor::Uniform.assign(&[member("a", &[t1, t2], current)], &topics);
        assert_eq!(out["a"], Assignment::from([(t1, BTreeSet::from([0, 1]))]));
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_id_order() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let topics = BTreeMap::from([(t1, 5), (t2, 5)]);
        let out = Assignor::Range.assign(
            &[
                member("b", &[t1, t2], Assignment::new()),
                member("a", &[t1, t2], Assignment::new()),
            ],
            &topics,
        );
        every_partition_once(&out, &topics);
        assert_eq!(out["a"][&t1], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&t1], BTreeSet::from([3, 4]));
        assert_eq!(out["a"][&t2], out["a"][&t1], "co-partitioned");
    }

    #[test]
    fn more_members_than_partitions_leaves_some_empty() {
        let t = Uuid::from_u128(1);
        let topics = BTreeMap::from([(t, 1)]);
        for assignor in [Assignor::Uniform, Assignor::Range] {
            let out = assignor.assign(
                &[
                    member("a", &[t], Assignment::new()),
                    member("b", &[t], Assignment::new()),
                ],
                &topics,
            );
            every_partition_once(&out, &topics);
            assert_eq!(out.len(), 2);
        }
    }
}
