//! Every Prometheus metric of the broker, defined in one place (DESIGN.md conventions).
//!
//! Names are `sluice_<subsystem>_<name>_<base unit>` with `_total` on counters, as promtool's
//! lint expects. Hot-path metrics (requests, bytes, records) are updated where they happen;
//! per-partition state (offsets, sizes, segments), fetch sessions, the metadata quorum and the
//! consumer groups are read at scrape time (server/metrics_scrape.rs) and handed to
//! [`Metrics::render`] as a [`Scrape`], so serving clients pays nothing for them. This file
//! holds plain values only and imports nothing of the broker: every module may record metrics
//! without an import circle.
//!
//! Label sets a client can grow (topics, partitions, groups) are capped by
//! `sluice.metrics.series.max`: per-topic counters past the cap are summed into the series
//! labelled `topic="_other"`; per-partition and per-group gauges past the cap are left out and
//! counted in `sluice_metrics_series_dropped`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kafka_protocol::messages::ApiKey;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Kafka's name of an API for labels and logs (`Produce`, `Fetch`, ...).
pub fn api_label(api_key: ApiKey) -> String {
    format!("{api_key:?}")
}

/// The label value that collects topics past `sluice.metrics.series.max`.
pub const OTHER_TOPIC: &str = "_other";

/// Latency buckets in seconds: 100 µs to 30 s (a long-polling Fetch may wait its max_wait_ms).
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// The per-topic counters of one topic, resolved once so the hot path does no label lookup.
#[derive(Clone, Debug)]
pub struct TopicCounters {
    pub bytes_in_total: IntCounter,
    pub records_in_total: IntCounter,
    pub bytes_out_total: IntCounter,
    pub records_out_total: IntCounter,
}

/// The per-API request series of one API, resolved once so a request does no label lookup.
#[derive(Clone, Debug)]
pub struct ApiSeries {
    pub processing_seconds: Histogram,
    pub response_send_seconds: Histogram,
    pub slow_requests_total: IntCounter,
    pub inflight_requests: IntGauge,
}

/// The broker's metrics; one instance per broker, registered in its own registry so that
/// several brokers in one test process do not collide.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub registry: Registry,
    /// Most label sets per capped family (`sluice.metrics.series.max`).
    series_max: usize,
    /// fsync calls on partition logs; group commit makes this grow slower than appends.
    pub log_fsyncs_total: IntCounter,
    /// Record batches appended to partition logs.
    pub log_appended_batches_total: IntCounter,
    /// Log cleaner passes that cleaned a partition (Kafka's LogCleaner, compaction).
    pub log_cleaner_passes_total: IntCounter,
    /// Segment bytes the log cleaner read (offset map building and cleaning).
    pub log_cleaner_read_bytes_total: IntCounter,
    /// Bytes of cleaned segments the log cleaner wrote.
    pub log_cleaner_written_bytes_total: IntCounter,
    /// Records the log cleaner removed (superseded, expired tombstones, keyless).
    pub log_cleaner_removed_records_total: IntCounter,
    /// Stored batches the log cleaner kept as they are because their records would
    /// decompress past `sluice.decompressed.batch.max.bytes` (counted once per pass).
    pub log_cleaner_oversized_batches_total: IntCounter,
    /// Open client connections per listener.
    pub server_active_connections: IntGaugeVec,
    /// Connections accepted per listener (its rate is the connection rate).
    pub server_connections_accepted_total: IntCounterVec,
    /// Connections closed at accept by max.connections or max.connections.per.ip.
    pub server_connections_rejected_total: IntCounterVec,
    /// Requests per API and version.
    pub server_requests_total: IntCounterVec,
    /// Error codes other than NONE in responses, per API, version and error code (one count per
    /// occurrence, as Kafka's ErrorsPerSec counts a response's errorCounts).
    pub server_request_errors_total: IntCounterVec,
    /// Requests that closed the connection (undecodable, unsupported version, unknown API).
    pub server_request_failures_total: IntCounterVec,
    /// Time from a request's frame being read to its response being encoded, per API.
    pub server_request_processing_seconds: HistogramVec,
    /// Time writing a response to the connection's buffer and socket, per API.
    pub server_response_send_seconds: HistogramVec,
    /// Requests being handled, per API: for Fetch the long polls parked waiting for data, for
    /// Produce the acks=all appends waiting for their fsync (what Kafka's purgatories hold).
    pub server_inflight_requests: IntGaugeVec,
    /// Requests slower than sluice.request.slow.ms, per API.
    pub server_slow_requests_total: IntCounterVec,
    /// Open incremental fetch sessions (KIP-227), read at scrape time.
    pub server_fetch_sessions: IntGauge,
    topic_bytes_in_total: IntCounterVec,
    topic_records_in_total: IntCounterVec,
    topic_bytes_out_total: IntCounterVec,
    topic_records_out_total: IntCounterVec,
    topics: Arc<Mutex<HashMap<String, TopicCounters>>>,
    /// Resolved per-API series; keys are `ApiKey`s, a closed set.
    apis: Arc<Mutex<HashMap<ApiKey, ApiSeries>>>,
    /// Resolved request counters; only served (api, version) pairs reach it (dispatch checks
    /// the version against the registry first), so it is bounded by the registry.
    requests: Arc<Mutex<HashMap<(ApiKey, i16), IntCounter>>>,
    partition_log_end_offset: IntGaugeVec,
    partition_log_start_offset: IntGaugeVec,
    partition_high_watermark: IntGaugeVec,
    partition_size_bytes: IntGaugeVec,
    partition_segments: IntGaugeVec,
    group_lag_records: IntGaugeVec,
    group_state: IntGaugeVec,
    metrics_series_dropped: IntGauge,
    metadata_raft_term: IntGauge,
    metadata_raft_last_log_index: IntGauge,
    metadata_raft_applied_index: IntGauge,
    metadata_raft_leader_id: IntGauge,
    metadata_topics: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::with_opts(Opts::new(name, help)).expect("valid metric");
    register(registry, c.clone());
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::with_opts(Opts::new(name, help)).expect("valid metric");
    register(registry, g.clone());
    g
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(registry, c.clone());
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(registry, g.clone());
    g
}

fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS_SECONDS.to_vec());
    let h = HistogramVec::new(opts, labels).expect("valid metric");
    register(registry, h.clone());
    h
}

fn register<C: Collector + 'static>(registry: &Registry, collector: C) {
    registry
        .register(Box::new(collector))
        .expect("metric registered once");
}

impl Metrics {
    /// Metrics with the default series cap.
    pub fn new() -> Self {
        Self::with_series_max(10_000)
    }

    /// Metrics whose topic, partition and group label sets are capped at `series_max`.
    pub fn with_series_max(series_max: usize) -> Self {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        {
            // CPU seconds, resident memory, open and max fds, start time, from /proc/self.
            let pid = std::process::id() as i32;
            register(
                &r,
                prometheus::process_collector::ProcessCollector::new(pid, "sluice"),
            );
        }
        let listener = &["listener"];
        Metrics {
            series_max,
            log_fsyncs_total: counter(
                &r,
                "sluice_log_fsyncs_total",
                "fsync calls on partition log segments",
            ),
            log_appended_batches_total: counter(
                &r,
                "sluice_log_appended_batches_total",
                "record batches appended to partition logs",
            ),
            log_cleaner_passes_total: counter(
                &r,
                "sluice_log_cleaner_passes_total",
                "log cleaner passes that cleaned a compacted partition",
            ),
            log_cleaner_read_bytes_total: counter(
                &r,
                "sluice_log_cleaner_read_bytes_total",
                "segment bytes read by the log cleaner",
            ),
            log_cleaner_written_bytes_total: counter(
                &r,
                "sluice_log_cleaner_written_bytes_total",
                "bytes of cleaned segments written by the log cleaner",
            ),
            log_cleaner_removed_records_total: counter(
                &r,
                "sluice_log_cleaner_removed_records_total",
                "records removed by the log cleaner",
            ),
            log_cleaner_oversized_batches_total: counter(
                &r,
                "sluice_log_cleaner_oversized_batches_total",
                "stored batches kept uncleaned because they decompress past sluice.decompressed.batch.max.bytes",
            ),
            server_active_connections: gauge_vec(
                &r,
                "sluice_server_active_connections",
                "open client connections per listener",
                listener,
            ),
            server_connections_accepted_total: counter_vec(
                &r,
                "sluice_server_connections_accepted_total",
                "client connections accepted per listener",
                listener,
            ),
            server_connections_rejected_total: counter_vec(
                &r,
                "sluice_server_connections_rejected_total",
                "client connections closed at accept by max.connections or max.connections.per.ip",
                &["listener", "reason"],
            ),
            server_requests_total: counter_vec(
                &r,
                "sluice_server_requests_total",
                "requests per API and version",
                &["api", "version"],
            ),
            server_request_errors_total: counter_vec(
                &r,
                "sluice_server_request_errors_total",
                "error codes in responses per API, version and Kafka error code",
                &["api", "version", "error_code"],
            ),
            server_request_failures_total: counter_vec(
                &r,
                "sluice_server_request_failures_total",
                "requests that closed their connection (undecodable, unsupported)",
                &["reason"],
            ),
            server_request_processing_seconds: histogram_vec(
                &r,
                "sluice_server_request_processing_seconds",
                "time from reading a request to its encoded response, per API",
                &["api"],
            ),
            server_response_send_seconds: histogram_vec(
                &r,
                "sluice_server_response_send_seconds",
                "time writing a response to the connection, per API",
                &["api"],
            ),
            server_inflight_requests: gauge_vec(
                &r,
                "sluice_server_inflight_requests",
                "requests being handled per API (parked long-poll fetches, acks=all produces)",
                &["api"],
            ),
            server_slow_requests_total: counter_vec(
                &r,
                "sluice_server_slow_requests_total",
                "requests slower than sluice.request.slow.ms, per API",
                &["api"],
            ),
            server_fetch_sessions: gauge(
                &r,
                "sluice_server_fetch_sessions",
                "open incremental fetch sessions (KIP-227)",
            ),
            topic_bytes_in_total: counter_vec(
                &r,
                "sluice_topic_bytes_in_total",
                "record batch bytes appended by produce requests, per topic",
                &["topic"],
            ),
            topic_records_in_total: counter_vec(
                &r,
                "sluice_topic_records_in_total",
                "records appended by produce requests, per topic",
                &["topic"],
            ),
            topic_bytes_out_total: counter_vec(
                &r,
                "sluice_topic_bytes_out_total",
                "record batch bytes returned by fetch responses, per topic",
                &["topic"],
            ),
            topic_records_out_total: counter_vec(
                &r,
                "sluice_topic_records_out_total",
                "records returned by fetch responses, per topic",
                &["topic"],
            ),
            topics: Arc::default(),
            apis: Arc::default(),
            requests: Arc::default(),
            partition_log_end_offset: gauge_vec(
                &r,
                "sluice_partition_log_end_offset",
                "next offset to be appended, per partition",
                &["topic", "partition"],
            ),
            partition_log_start_offset: gauge_vec(
                &r,
                "sluice_partition_log_start_offset",
                "first offset still in the log, per partition",
                &["topic", "partition"],
            ),
            partition_high_watermark: gauge_vec(
                &r,
                "sluice_partition_high_watermark",
                "high watermark, per partition",
                &["topic", "partition"],
            ),
            partition_size_bytes: gauge_vec(
                &r,
                "sluice_partition_size_bytes",
                "bytes of the partition's segment files",
                &["topic", "partition"],
            ),
            partition_segments: gauge_vec(
                &r,
                "sluice_partition_segments",
                "segments of the partition's log",
                &["topic", "partition"],
            ),
            group_lag_records: gauge_vec(
                &r,
                "sluice_group_lag_records",
                "log end offset minus committed offset, per group and partition",
                &["group", "topic", "partition"],
            ),
            group_state: gauge_vec(
                &r,
                "sluice_group_state",
                "1 for the group's current state",
                &["group", "state"],
            ),
            metrics_series_dropped: gauge(
                &r,
                "sluice_metrics_series_dropped",
                "per-partition and per-group series left out by sluice.metrics.series.max",
            ),
            metadata_raft_term: gauge(
                &r,
                "sluice_metadata_raft_term",
                "current term of the metadata quorum",
            ),
            metadata_raft_last_log_index: gauge(
                &r,
                "sluice_metadata_raft_last_log_index",
                "index of the last entry in the metadata log (-1 when empty)",
            ),
            metadata_raft_applied_index: gauge(
                &r,
                "sluice_metadata_raft_applied_index",
                "index of the last metadata log entry applied to the image (-1 when none)",
            ),
            metadata_raft_leader_id: gauge(
                &r,
                "sluice_metadata_raft_leader_id",
                "node id of the metadata quorum's leader (-1 when none)",
            ),
            metadata_topics: gauge(&r, "sluice_metadata_topics", "topics in the metadata image"),
            registry: r,
        }
    }

    /// The counters of `topic`, or of [`OTHER_TOPIC`] once `series_max` topics have series.
    pub fn topic(&self, topic: &str) -> TopicCounters {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(counters) = topics.get(topic) {
            return counters.clone();
        }
        let within_cap = topics.len() < self.series_max;
        let label = if within_cap { topic } else { OTHER_TOPIC };
        let counters = TopicCounters {
            bytes_in_total: self.topic_bytes_in_total.with_label_values(&[label]),
            records_in_total: self.topic_records_in_total.with_label_values(&[label]),
            bytes_out_total: self.topic_bytes_out_total.with_label_values(&[label]),
            records_out_total: self.topic_records_out_total.with_label_values(&[label]),
        };
        // Past the cap, remembering more topics would grow the map the cap is there to bound.
        if within_cap {
            topics.insert(topic.to_string(), counters.clone());
        }
        counters
    }

    /// The request series of `api_key`.
    pub fn api(&self, api_key: ApiKey) -> ApiSeries {
        let mut apis = self.apis.lock().unwrap_or_else(|e| e.into_inner());
        apis.entry(api_key)
            .or_insert_with(|| {
                let label = [api_label(api_key)];
                let label = [label[0].as_str()];
                ApiSeries {
                    processing_seconds: self
                        .server_request_processing_seconds
                        .with_label_values(&label),
                    response_send_seconds: self
                        .server_response_send_seconds
                        .with_label_values(&label),
                    slow_requests_total: self.server_slow_requests_total.with_label_values(&label),
                    inflight_requests: self.server_inflight_requests.with_label_values(&label),
                }
            })
            .clone()
    }

    /// `sluice_server_requests_total` of one served API version.
    pub fn requests_total(&self, api_key: ApiKey, version: i16) -> IntCounter {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests
            .entry((api_key, version))
            .or_insert_with(|| {
                let api = api_label(api_key);
                let version = version.to_string();
                self.server_requests_total
                    .with_label_values(&[api.as_str(), version.as_str()])
            })
            .clone()
    }

    /// Sets the scrape-time gauges from `scrape` and renders every metric in the Prometheus
    /// text exposition format (version 0.0.4).
    pub fn render(&self, scrape: &Scrape<'_>) -> String {
        // Every served API has its per-API series from the first scrape (at zero), so
        // dashboards and alerts see a rate of 0 rather than no data.
        for api_key in &scrape.served_apis {
            let api = api_label(*api_key);
            self.server_slow_requests_total
                .with_label_values(&[api.as_str()]);
        }
        self.collect_partitions(&scrape.partitions);
        self.collect_metadata(&scrape.raft, scrape.topics);
        self.server_fetch_sessions
            .set(i64::try_from(scrape.fetch_sessions).unwrap_or(i64::MAX));
        self.group_state.reset();
        self.group_lag_records.reset();
        let mut groups = GroupScrape {
            metrics: self,
            series: 0,
            dropped: 0,
        };
        for group in &scrape.groups {
            groups.group(group);
        }
        let dropped = self.metrics_series_dropped.get() + groups.dropped as i64;
        self.metrics_series_dropped.set(dropped);
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "could not encode metrics");
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Per-partition offsets, size and segments, in topic and partition order up to the
    /// series cap; the gauges are rebuilt so deleted partitions disappear from the next scrape.
    fn collect_partitions(&self, partitions: &[PartitionSample<'_>]) {
        let mut partitions: Vec<&PartitionSample<'_>> = partitions.iter().collect();
        partitions.sort_by(|a, b| (a.topic, a.partition).cmp(&(b.topic, b.partition)));
        for family in [
            &self.partition_log_end_offset,
            &self.partition_log_start_offset,
            &self.partition_high_watermark,
            &self.partition_size_bytes,
            &self.partition_segments,
        ] {
            family.reset();
        }
        let kept = partitions.len().min(self.series_max);
        self.metrics_series_dropped
            .set((partitions.len() - kept) as i64);
        for p in &partitions[..kept] {
            let number = p.partition.to_string();
            let labels = [p.topic, number.as_str()];
            self.partition_log_end_offset
                .with_label_values(&labels)
                .set(p.log_end_offset);
            self.partition_log_start_offset
                .with_label_values(&labels)
                .set(p.log_start_offset);
            self.partition_high_watermark
                .with_label_values(&labels)
                .set(p.high_watermark);
            self.partition_size_bytes
                .with_label_values(&labels)
                .set(i64::try_from(p.size_bytes).unwrap_or(i64::MAX));
            self.partition_segments
                .with_label_values(&labels)
                .set(i64::try_from(p.segments).unwrap_or(i64::MAX));
        }
    }

    fn collect_metadata(&self, raft: &RaftSample, topics: usize) {
        let as_gauge = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        self.metadata_raft_term
            .set(i64::try_from(raft.term).unwrap_or(i64::MAX));
        self.metadata_raft_last_log_index
            .set(as_gauge(raft.last_log_index));
        self.metadata_raft_applied_index
            .set(as_gauge(raft.applied_index));
        self.metadata_raft_leader_id.set(as_gauge(raft.leader_id));
        self.metadata_topics
            .set(i64::try_from(topics).unwrap_or(i64::MAX));
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What `/metrics` reads at scrape time, in plain values: the server gathers it
/// (server/metrics_scrape.rs) and [`Metrics::render`] publishes it.
#[derive(Clone, Debug, Default)]
pub struct Scrape<'a> {
    /// The APIs served, whose per-API series exist from the first scrape.
    pub served_apis: Vec<ApiKey>,
    /// Every loaded partition; the first `sluice.metrics.series.max` in topic and partition
    /// order are published.
    pub partitions: Vec<PartitionSample<'a>>,
    pub raft: RaftSample,
    /// Topics in the metadata image.
    pub topics: usize,
    /// Open incremental fetch sessions (KIP-227).
    pub fetch_sessions: usize,
    /// Every live group, in the order they are published under the series cap.
    pub groups: Vec<GroupSample<'a>>,
}

/// One partition's log at scrape time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSample<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub log_end_offset: i64,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub size_bytes: u64,
    pub segments: usize,
}

/// The metadata quorum's status as openraft reports it; `None` is published as -1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftSample {
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub leader_id: Option<u64>,
}

/// One consumer group at scrape time: its state and the lag of each partition it committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSample<'a> {
    pub group: &'a str,
    /// Kafka's state name (`Stable`, `Empty`, `PreparingRebalance`, ...).
    pub state: &'a str,
    pub lags: Vec<LagSample<'a>>,
}

/// One committed partition's lag as the group coordinator computed it (high watermark minus
/// committed offset); -1 when unknown (the topic is gone), and then not published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagSample<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub lag: i64,
}

/// The group series of one scrape, counted against the series cap.
struct GroupScrape<'a> {
    metrics: &'a Metrics,
    series: usize,
    dropped: usize,
}

impl GroupScrape<'_> {
    /// Records a group's state and the lag of each of its partitions whose lag is known,
    /// while the cap allows; what does not fit is counted as dropped.
    fn group(&mut self, group: &GroupSample<'_>) {
        if self.series >= self.metrics.series_max {
            self.dropped += 1 + group.lags.len();
            return;
        }
        self.series += 1;
        self.metrics
            .group_state
            .with_label_values(&[group.group, group.state])
            .set(1);
        for lag in group.lags.iter().filter(|l| l.lag >= 0) {
            if self.series >= self.metrics.series_max {
                self.dropped += 1;
                continue;
            }
            self.series += 1;
            let number = lag.partition.to_string();
            self.metrics
                .group_lag_records
                .with_label_values(&[group.group, lag.topic, number.as_str()])
                .set(lag.lag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_past_the_cap_are_summed_into_other() {
        let metrics = Metrics::with_series_max(2);
        metrics.topic("a").bytes_in_total.inc_by(1);
        metrics.topic("b").bytes_in_total.inc_by(2);
        metrics.topic("c").bytes_in_total.inc_by(3);
        metrics.topic("d").bytes_in_total.inc_by(4);
        assert_eq!(metrics.topic("a").bytes_in_total.get(), 1);
        assert_eq!(metrics.topic(OTHER_TOPIC).bytes_in_total.get(), 7);
        assert_eq!(metrics.topics.lock().unwrap().len(), 2);
    }

    #[test]
    fn group_lag_is_published_per_partition_under_the_cap() {
        let metrics = Metrics::with_series_max(3);
        let lag = |topic, partition, lag| LagSample {
            topic,
            partition,
            lag,
        };
        let (t0, t1, gone, t2) = (
            lag("t", 0, 60),
            lag("t", 1, 0),
            lag("gone", 0, -1),
            lag("t", 2, 5),
        );
        let mut scrape = GroupScrape {
            metrics: &metrics,
            series: 0,
            dropped: 0,
        };
        scrape.group(&GroupSample {
            group: "g",
            state: "Stable",
            lags: vec![t0.clone(), t1, gone, t2],
        });
        scrape.group(&GroupSample {
            group: "h",
            state: "Empty",
            lags: vec![t0],
        });
        let lag = |p: &str| {
            metrics
                .group_lag_records
                .with_label_values(&["g", "t", p])
                .get()
        };
        assert_eq!(lag("0"), 60);
        assert_eq!(lag("1"), 0);
        assert_eq!(
            metrics
                .group_state
                .with_label_values(&["g", "Stable"])
                .get(),
            1
        );
        // Cap 3: the group, t-0 and t-1; t-2 and group h are dropped.
        assert_eq!(scrape.dropped, 3);
    }

    #[test]
    fn metric_names_follow_the_conventions() {
        let metrics = Metrics::new();
        metrics.topic("t");
        metrics
            .server_requests_total
            .with_label_values(&["Produce", "9"])
            .inc();
        for family in metrics.registry.gather() {
            let name = family.name();
            assert!(name.starts_with("sluice_"), "{name}");
            let is_counter = family.get_field_type() == prometheus::proto::MetricType::COUNTER;
            assert_eq!(is_counter, name.ends_with("_total"), "{name}");
        }
    }
}
