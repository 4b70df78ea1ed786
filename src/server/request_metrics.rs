//! Per-request metrics and logs around dispatch: request counts, error codes found in typed
//! responses, bytes and records in and out per topic, latency, and the slow-request WARN line.
//!
//! Error codes are read from the typed response through [`ErrorCodes`], which dispatch
//! requires of every response type: an API added to the registry cannot skip
//! `sluice_server_request_errors_total`. Records are counted from batch headers (the record
//! count field at byte 57 of a v2 batch); nothing here looks at individual records.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    AlterConfigsResponse, ApiKey, ApiVersionsResponse, ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatResponse, CreatePartitionsResponse, CreateTopicsResponse,
    DeleteGroupsResponse, DeleteRecordsResponse, DeleteTopicsResponse, DescribeClusterResponse,
    DescribeConfigsResponse, DescribeGroupsResponse, DescribeLogDirsResponse,
    DescribeTopicPartitionsResponse, FetchResponse, FindCoordinatorResponse, HeartbeatResponse,
    IncrementalAlterConfigsResponse, InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse,
    ListGroupsResponse, ListOffsetsResponse, MetadataResponse, OffsetCommitResponse,
    OffsetDeleteResponse, OffsetFetchResponse, OffsetForLeaderEpochResponse, ProduceRequest,
    ProduceResponse, SyncGroupResponse,
};
use uuid::Uuid;

use crate::broker::Broker;
use crate::protocol::record_batch::LOG_OVERHEAD;
use crate::server::dispatch::RequestContext;

/// Offset of `recordsCount` in a v2 record batch header.
const RECORDS_COUNT_OFFSET: usize = 57;

pub use crate::metrics::api_label as api_name;

/// Counts a request in `sluice_server_inflight_requests` until dropped (also when the request's
/// future is dropped half-way).
pub struct InflightGuard(prometheus::IntGauge);

impl InflightGuard {
    pub fn new(broker: &Broker, api_key: ApiKey) -> Self {
        let gauge = broker.metrics.api(api_key).inflight_requests;
        gauge.inc();
        InflightGuard(gauge)
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Bytes and records of each partition of a Produce request, taken before the handler
/// consumes the request so that only appends that succeeded are counted afterwards. Keyed by
/// (topic name, topic id, partition): v13 requests carry only the id, older ones the name.
pub struct ProduceSizes(HashMap<(String, Uuid, i32), (u64, u64)>);

/// Measures a Produce request's record sets (batch headers only).
pub fn produce_sizes(request: &ProduceRequest) -> ProduceSizes {
    let mut sizes = HashMap::new();
    for topic in &request.topic_data {
        for partition in &topic.partition_data {
            let Some(records) = &partition.records else {
                continue;
            };
            let key = (topic.name.to_string(), topic.topic_id, partition.index);
            sizes.insert(key, batch_totals(records));
        }
    }
    ProduceSizes(sizes)
}

/// Adds the bytes and records of the partitions the response reports as appended.
pub fn observe_produce(broker: &Broker, mut sizes: ProduceSizes, response: &ProduceResponse) {
    for t in &response.responses {
        for p in &t.partition_responses {
            if p.error_code != 0 {
                continue;
            }
            let key = (t.name.to_string(), t.topic_id, p.index);
            let Some((bytes, records)) = sizes.0.remove(&key) else {
                continue;
            };
            let Some(topic) = topic_name(broker, &key.0, key.1) else {
                continue;
            };
            let counters = broker.metrics.topic(&topic);
            counters.bytes_in_total.inc_by(bytes);
            counters.records_in_total.inc_by(records);
        }
    }
}

/// The error codes a response carries, top-level and per topic, partition, group or member.
pub trait ErrorCodes {
    fn error_codes(&self, out: &mut Vec<i16>);
}

/// Responses whose only error code is the top-level one.
macro_rules! top_level_error_code {
    ($($response:ty),*) => {$(
        impl ErrorCodes for $response {
            fn error_codes(&self, out: &mut Vec<i16>) {
                out.push(self.error_code);
            }
        }
    )*};
}

top_level_error_code!(
    ApiVersionsResponse,
    DescribeClusterResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    ListGroupsResponse,
    ConsumerGroupHeartbeatResponse
);

/// Responses whose error codes sit in one list of per-resource results.
macro_rules! per_result_error_code {
    ($($response:ty => $results:ident),*) => {$(
        impl ErrorCodes for $response {
            fn error_codes(&self, out: &mut Vec<i16>) {
                out.extend(self.$results.iter().map(|r| r.error_code));
            }
        }
    )*};
}

per_result_error_code!(
    DescribeConfigsResponse => results,
    AlterConfigsResponse => responses,
    IncrementalAlterConfigsResponse => responses,
    CreatePartitionsResponse => results,
    ConsumerGroupDescribeResponse => groups
);

impl ErrorCodes for DeleteRecordsResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
    }
}

impl ErrorCodes for OffsetForLeaderEpochResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
    }
}

impl ErrorCodes for DescribeLogDirsResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        out.push(self.error_code);
        out.extend(self.results.iter().map(|r| r.error_code));
    }
}

impl ErrorCodes for DescribeTopicPartitionsResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            out.push(t.error_code);
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
    }
}

impl ErrorCodes for ProduceResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        for t in &self.responses {
            out.extend(t.partition_responses.iter().map(|p| p.error_code));
        }
    }
}

impl ErrorCodes for FetchResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        out.push(self.error_code);
        for t in &self.responses {
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
    }
}

impl ErrorCodes for ListOffsetsResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
    }
}

impl ErrorCodes for MetadataResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            out.push(t.error_code);
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
    }
}

impl ErrorCodes for CreateTopicsResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        out.extend(self.topics.iter().map(|t| t.error_code));
    }
}

impl ErrorCodes for DeleteTopicsResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        out.extend(self.responses.iter().map(|t| t.error_code));
    }
}

impl ErrorCodes for FindCoordinatorResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        // v0-v3 answer one key at the top level, v4+ one entry per key (KIP-699).
        out.push(self.error_code);
        out.extend(self.coordinators.iter().map(|c| c.error_code));
    }
}

impl ErrorCodes for LeaveGroupResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        out.push(self.error_code);
        out.extend(self.members.iter().map(|m| m.error_code));
    }
}

impl ErrorCodes for OffsetCommitResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        for t in &self.topics {
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
    }
}

impl ErrorCodes for OffsetFetchResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        // v0-v7 answer one group at the top level, v8+ a list of groups.
        out.push(self.error_code);
        for t in &self.topics {
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
        for g in &self.groups {
            out.push(g.error_code);
            for t in &g.topics {
                out.extend(t.partitions.iter().map(|p| p.error_code));
            }
        }
    }
}

impl ErrorCodes for DescribeGroupsResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        out.extend(self.groups.iter().map(|g| g.error_code));
    }
}

impl ErrorCodes for DeleteGroupsResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        out.extend(self.results.iter().map(|g| g.error_code));
    }
}

impl ErrorCodes for OffsetDeleteResponse {
    fn error_codes(&self, out: &mut Vec<i16>) {
        out.push(self.error_code);
        for t in &self.topics {
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
    }
}

/// Counts the non-zero error codes of a typed response in `sluice_server_request_errors_total`.
pub fn observe_response<R: ErrorCodes>(broker: &Broker, ctx: &RequestContext, response: &R) {
    let mut codes = Vec::new();
    response.error_codes(&mut codes);
    codes.retain(|&c| c != 0);
    if codes.is_empty() {
        return;
    }
    codes.sort_unstable();
    let api = api_name(ctx.api_key);
    let version = ctx.api_version.to_string();
    for chunk in codes.chunk_by(|a, b| a == b) {
        let code = chunk[0].to_string();
        broker
            .metrics
            .server_request_errors_total
            .with_label_values(&[api.as_str(), version.as_str(), code.as_str()])
            .inc_by(chunk.len() as u64);
    }
}

/// Bytes and records out per topic of a Fetch response.
pub fn observe_fetch_out(broker: &Broker, response: &FetchResponse) {
    for t in &response.responses {
        let (mut bytes, mut records) = (0, 0);
        for p in &t.partitions {
            if let Some(set) = &p.records {
                let (b, r) = batch_totals(set);
                bytes += b;
                records += r;
            }
        }
        if bytes == 0 {
            continue;
        }
        let Some(topic) = topic_name(broker, t.topic.as_str(), t.topic_id) else {
            continue;
        };
        let counters = broker.metrics.topic(&topic);
        counters.bytes_out_total.inc_by(bytes);
        counters.records_out_total.inc_by(records);
    }
}

/// The topic's name: as sent, or looked up by id for versions that carry only the id.
fn topic_name(broker: &Broker, name: &str, topic_id: Uuid) -> Option<String> {
    if !name.is_empty() {
        return Some(name.to_string());
    }
    broker
        .image()
        .topic_by_id(&topic_id)
        .map(|t| t.name.to_string())
}

/// Bytes and record count of the whole batches in `records` (a trailing partial batch, which
/// a fetch may end with, counts its bytes but no records).
fn batch_totals(records: &Bytes) -> (u64, u64) {
    let mut position = 0;
    let mut count = 0u64;
    while position + RECORDS_COUNT_OFFSET + 4 <= records.len() {
        let length = i32::from_be_bytes([
            records[position + 8],
            records[position + 9],
            records[position + 10],
            records[position + 11],
        ]);
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        let end = position + LOG_OVERHEAD + length;
        if end > records.len() {
            break;
        }
        let at = position + RECORDS_COUNT_OFFSET;
        let n = i32::from_be_bytes([
            records[at],
            records[at + 1],
            records[at + 2],
            records[at + 3],
        ]);
        count += u64::try_from(n).unwrap_or(0);
        position = end;
    }
    (records.len() as u64, count)
}

/// A Fetch's max_wait_ms read from the body ahead of decoding, so a long poll's asked-for wait
/// is not reported as slowness: it is the first field from v15 on and follows the i32
/// replica_id before that (tagged fields come last in flexible versions).
pub fn fetch_max_wait(api_version: i16, body: &[u8]) -> Duration {
    let at = if api_version >= 15 { 0 } else { 4 };
    let ms = body
        .get(at..at + 4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Counts a finished request, observes its processing time and logs it at WARN when it took
/// longer than `sluice.request.slow.ms` beyond what the client asked to wait.
pub fn finish(broker: &Broker, ctx: &RequestContext, elapsed: Duration, allowed_wait: Duration) {
    let m = &broker.metrics;
    m.requests_total(ctx.api_key, ctx.api_version).inc();
    let series = m.api(ctx.api_key);
    series.processing_seconds.observe(elapsed.as_secs_f64());
    let Ok(slow_ms) = u64::try_from(broker.config.request_slow_ms) else {
        return;
    };
    if elapsed > allowed_wait + Duration::from_millis(slow_ms) {
        series.slow_requests_total.inc();
        // The request's identity is repeated here: its span is at DEBUG (free at the default
        // level), and this line must say which request was slow on its own.
        tracing::warn!(
            api = ?ctx.api_key,
            version = ctx.api_version,
            correlation_id = ctx.correlation_id,
            client_id = ctx.client_id.as_deref().unwrap_or(""),
            listener = &*ctx.listener.name,
            peer = %ctx.peer,
            elapsed_ms = elapsed.as_millis() as u64,
            threshold_ms = slow_ms,
            "slow request"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: i32, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[8..12].copy_from_slice(&((len - LOG_OVERHEAD) as i32).to_be_bytes());
        b[57..61].copy_from_slice(&records.to_be_bytes());
        b
    }

    #[test]
    fn batch_totals_counts_whole_batches_and_all_bytes() {
        let mut buf = batch(3, 70);
        buf.extend(batch(5, 100));
        buf.extend(&batch(7, 90)[..40]);
        assert_eq!(batch_totals(&Bytes::from(buf)), (210, 8));
    }

    #[test]
    fn batch_totals_stops_at_a_negative_length() {
        let mut buf = batch(3, 70);
        buf[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(batch_totals(&Bytes::from(buf)), (70, 0));
    }

    #[test]
    fn fetch_max_wait_reads_the_field_of_each_version_layout() {
        let mut v14 = (-1i32).to_be_bytes().to_vec();
        v14.extend(500i32.to_be_bytes());
        assert_eq!(fetch_max_wait(14, &v14), Duration::from_millis(500));
        assert_eq!(
            fetch_max_wait(15, &250i32.to_be_bytes()),
            Duration::from_millis(250)
        );
        assert_eq!(fetch_max_wait(15, &[1]), Duration::ZERO);
    }
}
