//! What `/metrics` serves, in Prometheus' text format (prometheus-client). Requests are
//! counted by `http`, deliveries by `outbox`; the queue and the pool are read when scraped.
//! One `Metrics` per application, so two bridges in one process (tests) count apart.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

/// How one delivery attempt to a target ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// The target took it.
    Ok,
    /// It failed and will be tried again.
    Retry,
    /// It failed for good: the job is dead.
    Failed,
    /// The connector does not do this operation: nothing was sent.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    connector: String,
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    connector: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorLabels {
    connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    connector: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[derive(Clone)]
struct Buckets(fn() -> Histogram);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        (self.0)()
    }
}

/// Latency from 0.5 ms to about 16 s.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Delivery latency, from 1 ms to about 9 hours.
fn long_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 16))
}

fn attempts() -> Histogram {
    Histogram::new([1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0])
}

/// The label for a request's method: the methods HTTP defines, else `other`.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

/// A queue's state when scraped, per connector.
#[derive(Debug, Clone, Default)]
pub struct QueueGauges {
    pub connector: String,
    pub pending: i64,
    pub dead: i64,
    pub held: i64,
    /// Pending, but held back by an earlier dead job of the same resource (not in `pending`).
    pub blocked: i64,
    pub oldest_pending_age: Option<Duration>,
}

/// The database pool when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolGauges {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, Buckets>,
    calls: Family<CallLabels, Counter>,
    call_seconds: Family<OperationLabels, Histogram, Buckets>,
    delivery_seconds: Family<ConnectorLabels, Histogram, Buckets>,
    delivery_attempts: Family<ConnectorLabels, Histogram, Buckets>,
    jobs: Family<JobLabels, Gauge>,
    oldest_pending: Family<ConnectorLabels, Gauge<f64, AtomicU64>>,
    pool: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
    write_conflicts: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("scim_bridge");
        let m = Metrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(Buckets(seconds)),
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(Buckets(seconds)),
            delivery_seconds: Family::new_with_constructor(Buckets(long_seconds)),
            delivery_attempts: Family::new_with_constructor(Buckets(attempts)),
            jobs: Family::default(),
            oldest_pending: Family::default(),
            pool: Family::default(),
            pool_max: Gauge::default(),
            write_conflicts: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route and method",
            m.request_seconds.clone(),
        );
        registry.register(
            "target_calls",
            "Delivery attempts to a target, by connector, operation and outcome",
            m.calls.clone(),
        );
        registry.register(
            "target_call_duration_seconds",
            "Time a delivery attempt to a target took, by connector and operation",
            m.call_seconds.clone(),
        );
        registry.register(
            "outbox_delivery_latency_seconds",
            "Time from a change being accepted to its delivery, by connector",
            m.delivery_seconds.clone(),
        );
        registry.register(
            "outbox_delivery_attempts",
            "Attempts a delivered job took, by connector",
            m.delivery_attempts.clone(),
        );
        registry.register(
            "outbox_jobs",
            "Outbox jobs by connector and state (pending, dead, held), when scraped",
            m.jobs.clone(),
        );
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending job, by connector (0 when none)",
            m.oldest_pending.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state (in_use, idle)",
            m.pool.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Largest size of the database pool",
            m.pool_max.clone(),
        );
        registry.register(
            "write_conflicts",
            "Writes without If-Match tried again because another write changed the resource under them",
            m.write_conflicts.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A write without If-Match found the resource changed under it and tries again.
    pub fn write_conflict(&self) {
        self.write_conflicts.inc();
    }

    /// One answered request; `route` is the matched pattern, never the raw path (ids would
    /// make a series each), and `method` one of HTTP's own or `other` (a made-up method
    /// per request would make a series each, from anyone, without credentials).
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.into(),
                method: method.into(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.into(),
                method: method.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// One delivery attempt to a target.
    pub fn call(&self, connector: &str, operation: &str, outcome: Outcome, took: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                connector: connector.into(),
                operation: operation.into(),
                outcome: outcome.as_str(),
            })
            .inc();
        if outcome != Outcome::Skipped {
            self.call_seconds
                .get_or_create(&OperationLabels {
                    connector: connector.into(),
                    operation: operation.into(),
                })
                .observe(took.as_secs_f64());
        }
    }

    /// A job delivered: how long after the change was accepted, in how many attempts.
    pub fn delivered(&self, connector: &str, latency: Duration, attempts: i32) {
        let labels = ConnectorLabels {
            connector: connector.into(),
        };
        self.delivery_seconds
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
        self.delivery_attempts
            .get_or_create(&labels)
            .observe(f64::from(attempts.max(1)));
    }

    /// Sets the queue and pool gauges and writes everything in the text format.
    pub fn render(&self, queues: &[QueueGauges], pool: PoolGauges) -> String {
        self.jobs.clear();
        self.oldest_pending.clear();
        for q in queues {
            for (state, n) in [
                ("pending", q.pending),
                ("dead", q.dead),
                ("held", q.held),
                ("blocked", q.blocked),
            ] {
                self.jobs
                    .get_or_create(&JobLabels {
                        connector: q.connector.clone(),
                        state: state.into(),
                    })
                    .set(n);
            }
            self.oldest_pending
                .get_or_create(&ConnectorLabels {
                    connector: q.connector.clone(),
                })
                .set(q.oldest_pending_age.unwrap_or_default().as_secs_f64());
        }
        for (state, n) in [("in_use", pool.in_use), ("idle", pool.idle)] {
            self.pool.get_or_create(&PoolLabels { state }).set(n.into());
        }
        self.pool_max.set(pool.max.into());
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_holds_requests_calls_queues_and_the_pool() {
        let m = Metrics::new();
        m.request("/scim/v2/Users/{id}", "GET", 200, Duration::from_millis(3));
        m.call("hr", "user.created", Outcome::Ok, Duration::from_millis(20));
        m.delivered("hr", Duration::from_millis(40), 1);
        let text = m.render(
            &[QueueGauges {
                connector: "hr".into(),
                pending: 2,
                dead: 1,
                held: 0,
                blocked: 0,
                oldest_pending_age: Some(Duration::from_secs(5)),
            }],
            PoolGauges {
                in_use: 1,
                idle: 3,
                max: 8,
            },
        );
        for needle in [
            "scim_bridge_http_requests_total{route=\"/scim/v2/Users/{id}\",method=\"GET\",status=\"200\"} 1",
            "scim_bridge_target_calls_total{connector=\"hr\",operation=\"user.created\",outcome=\"ok\"} 1",
            "scim_bridge_outbox_jobs{connector=\"hr\",state=\"dead\"} 1",
            "scim_bridge_outbox_oldest_pending_age_seconds{connector=\"hr\"} 5.0",
            "scim_bridge_db_pool_connections{state=\"idle\"} 3",
            "scim_bridge_db_pool_max_connections 8",
            "scim_bridge_http_request_duration_seconds_bucket",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }

    #[test]
    fn made_up_methods_share_one_series_whatever_their_number() {
        let m = Metrics::new();
        for i in 0..1000 {
            m.request(
                "unmatched",
                &format!("FOO{i}"),
                405,
                Duration::from_millis(1),
            );
        }
        let text = m.render(&[], PoolGauges::default());
        assert!(
            text.contains("route=\"unmatched\",method=\"other\",status=\"405\"} 1000"),
            "{text}"
        );
        assert!(!text.contains("FOO"), "{text}");
    }
}
