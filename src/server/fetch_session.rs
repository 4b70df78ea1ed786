//! Incremental fetch sessions (KIP-227): the partitions a client fetches are remembered by the
//! broker so that each later Fetch names only what changed, and each response carries only
//! partitions with news.
//!
//! The cache holds at most `max.incremental.fetch.session.cache.slots` sessions; when full the
//! least recently used one is evicted, and its client gets FETCH_SESSION_ID_NOT_FOUND and starts
//! a new session with a full fetch, as with Kafka.
//!
//! The one cache of a broker is `Server::fetch_sessions`, which every broker listener's
//! connections share and hand to each request in its context: sessions are the server's
//! state, so the broker below it does not import the server back.

use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

/// A fetched partition: by topic id from Fetch v13 (KIP-516), by name before.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionPartition {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

/// What the session remembers of one partition: what the client asked, and what it was last
/// told, so unchanged partitions can be left out of incremental responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedPartition {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    /// The client's view of the leader epoch (KIP-320), -1 when it does not know it.
    pub current_leader_epoch: i32,
    /// A follower's epoch of its last fetched batch (Fetch v12+), -1 when none.
    pub last_fetched_epoch: i32,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

impl CachedPartition {
    /// A partition the client just added; -1s make the first response include it.
    pub fn new(fetch_offset: i64, partition_max_bytes: i32) -> Self {
        CachedPartition {
            fetch_offset,
            partition_max_bytes,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
        }
    }
}

#[derive(Debug)]
struct FetchSession {
    /// The epoch the next request of this session must carry.
    next_epoch: i32,
    partitions: IndexMap<SessionPartition, CachedPartition>,
    /// Logical use counter for least-recently-used eviction (no clock needed).
    last_used: u64,
}

/// Sessions by id.
#[derive(Debug)]
pub struct FetchSessionCache {
    slots: usize,
    sessions: IndexMap<i32, FetchSession>,
    next_session_id: i32,
    uses: u64,
}

/// KIP-227's reserved epochs.
pub const INITIAL_EPOCH: i32 = 0;
pub const FINAL_EPOCH: i32 = -1;

/// How one Fetch request relates to sessions, decided before any data is read.
#[derive(Debug)]
pub enum FetchContext {
    /// No session: fetch what the request lists; the response has session id 0.
    Sessionless(Vec<(SessionPartition, CachedPartition)>),
    /// A full fetch that opens session `session_id` (0 if the cache had no room).
    Full {
        session_id: i32,
        partitions: Vec<(SessionPartition, CachedPartition)>,
    },
    /// An incremental fetch of session `session_id`: `partitions` is the whole session.
    Incremental {
        session_id: i32,
        partitions: Vec<(SessionPartition, CachedPartition)>,
    },
}

impl FetchSessionCache {
    pub fn new(slots: usize) -> Self {
        FetchSessionCache {
            slots,
            sessions: IndexMap::new(),
            next_session_id: 1,
            uses: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Decides the context of a request (Kafka's FetchManager.newContext).
    pub fn new_context(
        &mut self,
        session_id: i32,
        epoch: i32,
        requested: Vec<(SessionPartition, CachedPartition)>,
        forgotten: &[SessionPartition],
    ) -> Result<FetchContext, ResponseError> {
        if epoch == FINAL_EPOCH {
            self.sessions.shift_remove(&session_id);
            return Ok(FetchContext::Sessionless(requested));
        }
        if epoch == INITIAL_EPOCH {
            if session_id != 0 {
                self.sessions.shift_remove(&session_id);
            }
            let session_id = self.create(&requested);
            return Ok(FetchContext::Full {
                session_id,
                partitions: requested,
            });
        }
        self.uses += 1;
        let uses = self.uses;
        let session = self
            .sessions
            .get_mut(&session_id)
            .ok_or(ResponseError::FetchSessionIdNotFound)?;
        if session.next_epoch != epoch {
            return Err(ResponseError::InvalidFetchSessionEpoch);
        }
        for key in forgotten {
            session.partitions.shift_remove(key);
        }
        for (key, asked) in requested {
            match session.partitions.get_mut(&key) {
                Some(cached) => {
                    cached.fetch_offset = asked.fetch_offset;
                    cached.partition_max_bytes = asked.partition_max_bytes;
                    cached.current_leader_epoch = asked.current_leader_epoch;
                    cached.last_fetched_epoch = asked.last_fetched_epoch;
                }
                None => {
                    session.partitions.insert(key, asked);
                }
            }
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used = uses;
        Ok(FetchContext::Incremental {
            session_id,
            partitions: session
                .partitions
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// Records what a response told the client, so the next incremental response can leave
    /// unchanged partitions out.
    pub fn update(&mut self, session_id: i32, sent: &[(SessionPartition, CachedPartition)]) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            for (key, told) in sent {
                if let Some(cached) = session.partitions.get_mut(key) {
                    cached.high_watermark = told.high_watermark;
                    cached.last_stable_offset = told.last_stable_offset;
                    cached.log_start_offset = told.log_start_offset;
                }
            }
        }
    }

    fn create(&mut self, partitions: &[(SessionPartition, CachedPartition)]) -> i32 {
        if self.slots == 0 {
            return 0;
        }
        if self.sessions.len() >= self.slots {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.sessions.shift_remove(&id);
            }
        }
        let session_id = self.allocate_id();
        self.uses += 1;
        self.sessions.insert(
            session_id,
            FetchSession {
                next_epoch: next_epoch(INITIAL_EPOCH),
                partitions: partitions.iter().cloned().collect(),
                last_used: self.uses,
            },
        );
        session_id
    }

    /// Session ids are positive and unique among live sessions.
    fn allocate_id(&mut self) -> i32 {
        loop {
            let id = self.next_session_id;
            self.next_session_id = if id == i32::MAX { 1 } else { id + 1 };
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Epochs count up from 1 and wrap past i32::MAX back to 1 (0 and -1 are reserved).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> SessionPartition {
        SessionPartition {
            topic: "t".into(),
            topic_id: Uuid::nil(),
            partition: p,
        }
    }

    fn ask(p: i32, offset: i64) -> (SessionPartition, CachedPartition) {
        (key(p), CachedPartition::new(offset, 1024))
    }

    #[test]
    fn full_fetch_opens_session_and_incremental_keeps_partitions() {
        let mut cache = FetchSessionCache::new(10);
        let FetchContext::Full { session_id, .. } = cache
            .new_context(0, INITIAL_EPOCH, vec![ask(0, 0), ask(1, 0)], &[])
            .unwrap()
        else {
            panic!("expected a full context");
        };
        assert!(session_id > 0);
        let FetchContext::Incremental { partitions, .. } = cache
            .new_context(session_id, 1, vec![ask(1, 5)], &[key(0)])
            .unwrap()
        else {
            panic!("expected an incremental context");
        };
        assert_eq!(partitions.len(), 1);
        assert_eq!(partitions[0].1.fetch_offset, 5);
    }

    #[test]
    fn wrong_epoch_returns_invalid_fetch_session_epoch() {
        let mut cache = FetchSessionCache::new(10);
        let FetchContext::Full { session_id, .. } = cache
            .new_context(0, INITIAL_EPOCH, vec![ask(0, 0)], &[])
            .unwrap()
        else {
            panic!("expected a full context");
        };
        assert_eq!(
            cache.new_context(session_id, 7, vec![], &[]).unwrap_err(),
            ResponseError::InvalidFetchSessionEpoch
        );
    }

    #[test]
    fn unknown_session_returns_fetch_session_id_not_found() {
        let mut cache = FetchSessionCache::new(10);
        assert_eq!(
            cache.new_context(42, 1, vec![], &[]).unwrap_err(),
            ResponseError::FetchSessionIdNotFound
        );
    }

    #[test]
    fn full_cache_evicts_least_recently_used_session() {
        let mut cache = FetchSessionCache::new(2);
        let mut ids = Vec::new();
        for _ in 0..2 {
            if let FetchContext::Full { session_id, .. } = cache
                .new_context(0, INITIAL_EPOCH, vec![ask(0, 0)], &[])
                .unwrap()
            {
                ids.push(session_id);
            }
        }
        // Use the first session so the second is the least recently used.
        cache.new_context(ids[0], 1, vec![], &[]).unwrap();
        cache
            .new_context(0, INITIAL_EPOCH, vec![ask(0, 0)], &[])
            .unwrap();
        assert_eq!(cache.len(), 2);
        assert!(cache.new_context(ids[1], 1, vec![], &[]).is_err());
        assert!(cache.new_context(ids[0], 2, vec![], &[]).is_ok());
    }

    #[test]
    fn final_epoch_closes_session() {
        let mut cache = FetchSessionCache::new(2);
        let FetchContext::Full { session_id, .. } = cache
            .new_context(0, INITIAL_EPOCH, vec![ask(0, 0)], &[])
            .unwrap()
        else {
            panic!("expected a full context");
        };
        assert!(matches!(
            cache
                .new_context(session_id, FINAL_EPOCH, vec![], &[])
                .unwrap(),
            FetchContext::Sessionless(_)
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn zero_slots_gives_sessionless_id_zero() {
        let mut cache = FetchSessionCache::new(0);
        let FetchContext::Full { session_id, .. } = cache
            .new_context(0, INITIAL_EPOCH, vec![ask(0, 0)], &[])
            .unwrap()
        else {
            panic!("expected a full context");
        };
        assert_eq!(session_id, 0);
    }
}
