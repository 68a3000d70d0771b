//! Runs of the load tool against the ceiling, in-process on port 0: the ceiling accepts what the
//! tool signs and refuses what it signs with another secret, and the tool counts what came back,
//! in both loop shapes and over several URLs.

use std::time::Duration;

use hookgate_load::bodies::{Deliveries, read_fixture};
use hookgate_load::ceiling::Ceiling;
use hookgate_load::hosts::Host;
use hookgate_load::run::{Plan, Target, run};
use hookgate_load::stats::Report;
use tokio::sync::oneshot;

const SECRET: &str = "ceiling-test-secret";

/// A ceiling serving on a free port until the returned sender is dropped or fired.
async fn spawn_ceiling() -> (Ceiling, String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!(
        "http://{}/.api/webhooks/7d9f3c2a-1b4e-4a6d-8c0f-2e5b7a9d1c3f",
        listener.local_addr().expect("an address")
    );
    let ceiling = Ceiling::new(SECRET);
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = ceiling.clone();
    tokio::spawn(async move {
        serving
            .serve(listener, async {
                stopped.await.ok();
            })
            .await
            .expect("the ceiling serves");
    });
    (ceiling, url, stop)
}

/// A plan posting GitHub's default delivery, signed with `secret`, to `urls`.
fn plan(urls: &[&str], secret: &str) -> Plan {
    let host = Host::GitHub;
    let fixture = read_fixture(host.default_fixture().as_ref()).expect("fixture");
    Plan {
        targets: urls
            .iter()
            .map(|url| Target::parse(url).expect("a URL"))
            .collect(),
        deliveries: Deliveries::prepare(host, &fixture, host.default_event(), secret, 5)
            .expect("prepared"),
        concurrency: 4,
        rate: None,
        duration: None,
        requests: Some(200),
        warmup: Duration::ZERO,
        timeout: Duration::from_secs(10),
    }
}

/// The count of `status` in `report`.
fn count(report: &Report, status: u16) -> u64 {
    report.status.get(&status).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_run_against_the_ceiling_counts_exactly_its_202s() {
    let (ceiling, url, _stop) = spawn_ceiling().await;
    let report = run(plan(&[&url], SECRET)).await;
    assert_eq!(report.requests, 200, "{report:?}");
    assert_eq!(count(&report, 202), 200, "{report:?}");
    assert_eq!(report.ok, 200);
    assert_eq!((report.connection_errors, report.timeouts), (0, 0));
    assert_eq!(ceiling.accepted(), 200, "the tool and the server agree");
    assert!(report.throughput_rps > 0.0);
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p50 <= report.latency_ms.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_the_wrong_secret_counts_401s_and_nothing_succeeds() {
    let (ceiling, url, _stop) = spawn_ceiling().await;
    let report = run(plan(&[&url], "some-other-secret")).await;
    assert_eq!(count(&report, 401), 200, "{report:?}");
    assert_eq!(report.ok, 0);
    assert_eq!(ceiling.accepted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_run_sends_about_rate_times_duration_requests() {
    let (_ceiling, url, _stop) = spawn_ceiling().await;
    let mut plan = plan(&[&url], SECRET);
    plan.requests = None;
    plan.rate = Some(200.0);
    plan.duration = Some(Duration::from_secs(1));
    plan.warmup = Duration::from_millis(250);
    let report = run(plan).await;
    // Slots are due at 0, 5 ms, ... up to the deadline: 200 in the measured second, none of
    // the 50 warmup ones counted.
    assert_eq!(report.requests, 200, "{report:?}");
    assert_eq!(count(&report, 202), 200);
    assert!(report.duration_s >= 0.99, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_spread_round_robin_over_the_urls() {
    let (first, first_url, _stop_first) = spawn_ceiling().await;
    let (second, second_url, _stop_second) = spawn_ceiling().await;
    let mut plan = plan(&[&first_url, &second_url], SECRET);
    plan.requests = None;
    plan.duration = Some(Duration::from_millis(500));
    let report = run(plan).await;
    assert_eq!(report.ok, first.accepted() + second.accepted());
    assert!(first.accepted() > 0 && second.accepted() > 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_counts_connection_errors_not_answers() {
    // Bind and drop, so the port is (very likely) closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("an address").port()
    };
    let url = format!("http://127.0.0.1:{port}/.api/webhooks/x");
    let mut plan = plan(&[&url], SECRET);
    plan.requests = Some(20);
    let report = run(plan).await;
    assert_eq!(report.requests, 0);
    assert_eq!(report.connection_errors, 20, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ceiling_refuses_a_missing_signature() {
    let (_ceiling, url, _stop) = spawn_ceiling().await;
    let mut plan = plan(&[&url], SECRET);
    for variant in &mut plan.deliveries.variants {
        variant.headers.remove("x-hub-signature-256");
    }
    plan.requests = Some(10);
    let report = run(plan).await;
    assert_eq!(count(&report, 401), 10, "{report:?}");
}
