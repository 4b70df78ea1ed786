//! What `/metrics` reads from the broker at each scrape: partitions, the metadata quorum,
//! fetch sessions and consumer groups, gathered into a [`Scrape`] of plain values for
//! [`Metrics::render`](crate::metrics::Metrics::render).
//!
//! It lives in the server, the top of the import graph, so that `metrics.rs` can stay a leaf
//! that every module records into without importing the broker back.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::broker::Broker;
use crate::metrics::{GroupSample, LagSample, PartitionSample, RaftSample, Scrape};
use crate::server::dispatch::REGISTRY;
use crate::server::fetch_session::FetchSessionCache;

/// Reads the scrape-time state of `broker` and its server's fetch sessions, and renders every
/// metric of the broker in the Prometheus text format.
pub fn render(broker: &Broker, fetch_sessions: &Mutex<FetchSessionCache>) -> String {
    let partitions = broker.logs.partitions();
    let lags = broker.groups.lag(broker);
    let listings = broker.groups.list_groups();
    let (term, last_log_index, applied_index, leader_id) = broker.metadata.raft_status();
    let mut lags_by_group: HashMap<&str, Vec<LagSample<'_>>> = HashMap::new();
    for lag in &lags {
        lags_by_group
            .entry(lag.group_id.as_str())
            .or_default()
            .push(LagSample {
                topic: &lag.topic,
                partition: lag.partition,
                lag: lag.lag,
            });
    }
    let scrape = Scrape {
        served_apis: REGISTRY.iter().map(|(api_key, _)| *api_key).collect(),
        partitions: partitions
            .iter()
            .map(|p| PartitionSample {
                topic: p.topic(),
                partition: p.partition(),
                log_end_offset: p.log_end_offset(),
                log_start_offset: p.log_start_offset(),
                high_watermark: p.high_watermark(),
                size_bytes: p.size_bytes(),
                segments: p.segment_count(),
            })
            .collect(),
        raft: RaftSample {
            term,
            last_log_index,
            applied_index,
            leader_id,
        },
        topics: broker.image().topics.len(),
        // A poisoned lock still holds a usable count (as the fetch handler reads it).
        fetch_sessions: fetch_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len(),
        groups: listings
            .iter()
            .map(|listing| GroupSample {
                group: &listing.group_id,
                state: listing.state,
                lags: lags_by_group
                    .remove(listing.group_id.as_str())
                    .unwrap_or_default(),
            })
            .collect(),
    };
    broker.metrics.render(&scrape)
}
