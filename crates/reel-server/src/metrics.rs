//! What `GET /metrics` reports, in Prometheus' text format: request counts and latency by
//! route kind, records and bytes in and out, open live streams, and at scrape time each
//! open store's next seq and each reader's lag.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Counters shared by every request.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by status class (2xx, 3xx, 4xx, 5xx).
    pub(crate) requests: [AtomicU64; 4],
    /// Latency histogram: one count per bucket, then +Inf.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
    /// Records appended through the server.
    pub(crate) appended: AtomicU64,
    /// Records sent to clients (reads, follows, reader `next`).
    pub(crate) sent: AtomicU64,
    /// Request body bytes received.
    pub(crate) bytes_in: AtomicU64,
    /// Response body bytes of records sent.
    pub(crate) bytes_out: AtomicU64,
    /// Live streams (follows and watches) open now.
    pub(crate) open_streams: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, status: u16, took: Duration) {
        let class = usize::from((status / 100).clamp(2, 5) - 2);
        self.requests[class].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The text exposition of the counters, then `extra` (per-store gauges).
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str("# HELP reel_requests_total HTTP requests answered, by status class.\n");
        out.push_str("# TYPE reel_requests_total counter\n");
        for (i, class) in ["2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let _ = writeln!(
                out,
                "reel_requests_total{{class=\"{class}\"}} {}",
                get(&self.requests[i])
            );
        }
        out.push_str("# HELP reel_request_seconds Time to answer a request (to the first byte of a stream).\n");
        out.push_str("# TYPE reel_request_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += get(&self.latency[i]);
            let _ = writeln!(
                out,
                "reel_request_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        cumulative += get(&self.latency[BUCKETS.len()]);
        let _ = writeln!(
            out,
            "reel_request_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "reel_request_seconds_sum {}",
            get(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "reel_request_seconds_count {cumulative}");
        for (name, help, kind, v) in [
            (
                "reel_records_appended_total",
                "Records appended through the server.",
                "counter",
                &self.appended,
            ),
            (
                "reel_records_sent_total",
                "Records sent to clients.",
                "counter",
                &self.sent,
            ),
            (
                "reel_request_body_bytes_total",
                "Request body bytes received.",
                "counter",
                &self.bytes_in,
            ),
            (
                "reel_record_bytes_sent_total",
                "Bytes of records sent to clients.",
                "counter",
                &self.bytes_out,
            ),
            (
                "reel_open_streams",
                "Live streams (follows, watches) open now.",
                "gauge",
                &self.open_streams,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                get(v)
            );
        }
        out.push_str(extra);
        out
    }
}

/// Counts an open live stream while it lives.
#[derive(Debug)]
pub(crate) struct StreamGauge(pub(crate) std::sync::Arc<Metrics>);

impl StreamGauge {
    pub(crate) fn new(m: &std::sync::Arc<Metrics>) -> StreamGauge {
        m.open_streams.fetch_add(1, Ordering::Relaxed);
        StreamGauge(m.clone())
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}
