//! What a run measured and how it is reported. Each connection records into its own
//! [`Recorder`] (an HDR histogram of latencies in microseconds, counts by HTTP status, errors),
//! so recording takes no lock; the recorders are merged once at the end into a [`Report`], which
//! prints as a table for a person or as one JSON line for `bench/run.sh`.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The slowest latency the histogram tells apart, in microseconds (one minute); slower ones are
/// recorded as this.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Latencies and outcomes of the requests one connection sent in the measured period.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency of every answered request, in microseconds, 3 significant digits.
    latencies: Histogram<u64>,
    /// Answered requests by HTTP status code.
    statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer because the connection could not be made or broke.
    connection_errors: u64,
    /// Requests that got no answer within `--timeout`.
    timeouts: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self {
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("1 us to 60 s at 3 significant digits is a valid histogram"),
            statuses: BTreeMap::new(),
            connection_errors: 0,
            timeouts: 0,
        }
    }

    /// Records an answered request.
    pub fn answered(&mut self, status: u16, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies.saturating_record(us.max(1));
        *self.statuses.entry(status).or_insert(0) += 1;
    }

    /// Records a request lost to a connection error.
    pub fn connection_error(&mut self) {
        self.connection_errors += 1;
    }

    /// Records a request that timed out.
    pub fn timeout(&mut self) {
        self.timeouts += 1;
    }

    /// Adds `other`'s requests to this one's.
    pub fn merge(&mut self, other: &Recorder) {
        self.latencies
            .add(&other.latencies)
            .expect("recorders share their bounds, so adding cannot fail");
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_insert(0) += count;
        }
        self.connection_errors += other.connection_errors;
        self.timeouts += other.timeouts;
    }

    /// Answered requests.
    pub fn answered_count(&self) -> u64 {
        self.statuses.values().sum()
    }
}

/// How the load was applied, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Shape {
    /// Closed loop: `concurrency` connections, each sending its next request when the last is
    /// answered.
    Closed {
        /// Connections.
        concurrency: u32,
    },
    /// Open loop: requests scheduled at `rate` a second over `concurrency` connections;
    /// latency counts from the scheduled time.
    Open {
        /// Requests a second.
        rate: f64,
        /// Connections.
        concurrency: u32,
    },
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Half the answers came faster than this.
    pub p50: f64,
    /// Nine in ten came faster than this.
    pub p90: f64,
    /// 99 in 100 came faster than this.
    pub p99: f64,
    /// The slowest answer.
    pub max: f64,
    /// The average.
    pub mean: f64,
}

/// The result of one run: what `hookgate-load run` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// How the load was applied.
    #[serde(flatten)]
    pub shape: Shape,
    /// The URLs connections were spread over.
    pub urls: Vec<String>,
    /// Answered requests in the measured period (connection errors and timeouts not included).
    pub requests: u64,
    /// The measured period in seconds: from its start to the last answer.
    pub duration_s: f64,
    /// Answered requests a second.
    pub throughput_rps: f64,
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// 2xx answers a second.
    pub ok_rps: f64,
    /// Latency of answered requests.
    pub latency_ms: Latency,
    /// Answered requests by status code.
    pub status: BTreeMap<u16, u64>,
    /// Requests lost to connection errors.
    pub connection_errors: u64,
    /// Requests that timed out.
    pub timeouts: u64,
}

impl Report {
    /// The report of `recorder` (all connections merged) over a measured period of `elapsed`.
    pub fn new(shape: Shape, urls: Vec<String>, recorder: &Recorder, elapsed: Duration) -> Self {
        let requests = recorder.answered_count();
        let ok = recorder
            .statuses
            .iter()
            .filter(|(status, _)| (200..300).contains(*status))
            .map(|(_, count)| count)
            .sum();
        let seconds = elapsed.as_secs_f64();
        let per_second = |count: u64| {
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        let h = &recorder.latencies;
        let ms = |us: u64| {
            if h.is_empty() {
                0.0
            } else {
                us as f64 / 1000.0
            }
        };
        Self {
            shape,
            urls,
            requests,
            duration_s: seconds,
            throughput_rps: per_second(requests),
            ok,
            ok_rps: per_second(ok),
            latency_ms: Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
                mean: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            },
            status: recorder.statuses.clone(),
            connection_errors: recorder.connection_errors,
            timeouts: recorder.timeouts,
        }
    }

    /// One line of JSON, for scripts.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a report always serialises")
    }

    /// The table a person reads.
    pub fn table(&self) -> String {
        let shape = match &self.shape {
            Shape::Closed { concurrency } => format!("closed loop, {concurrency} connections"),
            Shape::Open { rate, concurrency } => {
                format!("open loop at {rate} req/s, {concurrency} connections")
            }
        };
        let statuses = if self.status.is_empty() {
            "none".to_owned()
        } else {
            self.status
                .iter()
                .map(|(status, count)| format!("{status}: {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let l = &self.latency_ms;
        format!(
            "{shape}, {} URL(s), {:.2} s measured\n\
             requests     {} ({:.1} req/s); 2xx {} ({:.1}/s)\n\
             latency ms   p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}\n\
             status       {statuses}\n\
             errors       connection {}, timeout {}\n",
            self.urls.len(),
            self.duration_s,
            self.requests,
            self.throughput_rps,
            self.ok,
            self.ok_rps,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            l.mean,
            self.connection_errors,
            self.timeouts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn report(recorder: &Recorder, elapsed: Duration) -> Report {
        Report::new(
            Shape::Closed { concurrency: 1 },
            vec!["http://127.0.0.1:1/".into()],
            recorder,
            elapsed,
        )
    }

    /// Whether `value` is within the histogram's 3 significant digits of `expected`.
    fn close(value: f64, expected: f64) -> bool {
        (value - expected).abs() <= expected * 0.001 + 0.001
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_milliseconds_are_where_they_belong() {
        let mut r = Recorder::new();
        for n in 1..=1000 {
            r.answered(202, ms(n));
        }
        let l = report(&r, Duration::from_secs(10)).latency_ms;
        assert!(close(l.p50, 500.0), "p50 {}", l.p50);
        assert!(close(l.p90, 900.0), "p90 {}", l.p90);
        assert!(close(l.p99, 990.0), "p99 {}", l.p99);
        assert!(close(l.max, 1000.0), "max {}", l.max);
        assert!(close(l.mean, 500.5), "mean {}", l.mean);
    }

    #[test]
    fn a_single_slow_request_shows_in_p99_only_when_it_is_over_one_percent() {
        let mut r = Recorder::new();
        for _ in 0..99 {
            r.answered(202, ms(1));
        }
        r.answered(202, ms(100));
        let l = report(&r, Duration::from_secs(1)).latency_ms;
        assert!(close(l.p99, 1.0), "p99 {}", l.p99);
        assert!(close(l.max, 100.0), "max {}", l.max);
        r.answered(202, ms(100));
        let l = report(&r, Duration::from_secs(1)).latency_ms;
        assert!(close(l.p99, 100.0), "p99 {}", l.p99);
    }

    #[test]
    fn throughput_is_answers_over_the_measured_seconds_and_ok_counts_only_2xx() {
        let mut r = Recorder::new();
        for _ in 0..300 {
            r.answered(202, ms(1));
        }
        for _ in 0..100 {
            r.answered(401, ms(1));
        }
        r.answered(503, ms(1));
        r.connection_error();
        r.timeout();
        let report = report(&r, Duration::from_secs(2));
        assert_eq!(report.requests, 401);
        assert_eq!(report.ok, 300);
        assert!(close(report.throughput_rps, 200.5));
        assert!(close(report.ok_rps, 150.0));
        assert_eq!(report.status[&202], 300);
        assert_eq!(report.status[&401], 100);
        assert_eq!(report.status[&503], 1);
        assert_eq!((report.connection_errors, report.timeouts), (1, 1));
    }

    #[test]
    fn merging_recorders_adds_their_counts_and_latencies() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for _ in 0..50 {
            a.answered(202, ms(1));
            b.answered(202, ms(3));
        }
        b.answered(429, ms(2));
        b.connection_error();
        a.merge(&b);
        let report = report(&a, Duration::from_secs(1));
        assert_eq!(report.requests, 101);
        assert_eq!(report.status[&202], 100);
        assert_eq!(report.status[&429], 1);
        assert_eq!(report.connection_errors, 1);
        assert!(close(report.latency_ms.max, 3.0));
        assert!(close(report.latency_ms.p50, 2.0) || close(report.latency_ms.p50, 1.0));
    }

    #[test]
    fn an_empty_run_reports_zeros_not_garbage() {
        let report = report(&Recorder::new(), Duration::ZERO);
        assert_eq!(report.requests, 0);
        assert_eq!(report.throughput_rps, 0.0);
        assert_eq!(report.latency_ms.max, 0.0);
        assert_eq!(report.latency_ms.mean, 0.0);
    }

    #[test]
    fn latencies_beyond_a_minute_saturate_instead_of_failing() {
        let mut r = Recorder::new();
        r.answered(200, Duration::from_secs(3600));
        assert!(report(&r, Duration::from_secs(1)).latency_ms.max <= 60_100.0);
    }

    #[test]
    fn the_json_line_has_every_field_the_script_reads() {
        let mut r = Recorder::new();
        r.answered(202, ms(2));
        let report = Report::new(
            Shape::Open {
                rate: 1000.0,
                concurrency: 16,
            },
            vec!["http://127.0.0.1:1/".into()],
            &r,
            Duration::from_secs(1),
        );
        let json: serde_json::Value = serde_json::from_str(&report.json()).expect("JSON");
        assert_eq!(json["mode"], "open");
        assert_eq!(json["rate"], 1000.0);
        assert_eq!(json["concurrency"], 16);
        assert_eq!(json["requests"], 1);
        assert_eq!(json["ok"], 1);
        assert_eq!(json["status"]["202"], 1);
        for field in ["p50", "p90", "p99", "max", "mean"] {
            assert!(json["latency_ms"][field].is_number(), "{field}");
        }
        for field in [
            "duration_s",
            "throughput_rps",
            "ok_rps",
            "connection_errors",
            "timeouts",
        ] {
            assert!(json[field].is_number(), "{field}");
        }
        assert!(!report.json().contains('\n'));
    }
}
