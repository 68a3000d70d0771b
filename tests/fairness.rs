//! One client cannot deny service to others: while one client (127.0.0.1) floods the built
//! binary, another (127.0.0.2, also loopback) keeps delivering. Three floods, each held for the
//! whole probe run and replenished as the service closes its connections: idle connections,
//! bodies trickled a byte at a time, and requests that declare a 25 MiB body and send nothing.
//! During each, at least 99 % of the prober's valid, signed deliveries must be answered 202
//! within 1 s.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::binary::Served;
use common::{Engine, TestDatabase, fixture, host_headers, raw_http};
use hookgate::admin::proto::CodeHostKind::Github as Gh;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// The flooding client's address.
const FLOODER: &str = "127.0.0.1";
/// The probing client's address.
const PROBER: &str = "127.0.0.2";
/// Connections the flooder keeps trying to hold open at once.
const FLOOD_CONNECTIONS: usize = 512;
/// How long a flood connection waits before it replaces one the service closed: bounds the
/// flood's rate of new connections (at most 512 a second), which a loaded 2-core machine keeps up
/// with: past what it can accept, connections wait in the kernel's queue whoever sent them.
const REOPEN_PAUSE: Duration = Duration::from_secs(1);
/// Probes sent during each flood, one at a time, each on a new connection.
const PROBES: usize = 100;
/// The most one flood's probing may take, whatever the service does.
const PROBING_LIMIT: Duration = Duration::from_secs(40);
/// A probe succeeds when it is answered 202 within this.
const PROBE_DEADLINE: Duration = Duration::from_secs(1);
/// The declared body of the third flood: GitHub's cap, which is also the service's default.
const DECLARED: usize = 25 * 1024 * 1024;

/// What the flooder does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    /// Opens it and sends nothing.
    IdleConnections,
    /// Sends a delivery's head, then its body one byte every 200 ms.
    SlowBodies,
    /// Sends a delivery's head declaring a 25 MiB body, then nothing.
    DeclaredButUnsent,
}

on_both_engines!(one_flooding_client_does_not_keep_another_from_delivering);

/// One flood at a time on this machine: the engines' tests would otherwise flood together and
/// measure each other's load.
static ONE_FLOOD_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn one_flooding_client_does_not_keep_another_from_delivering(engine: Engine) {
    let _turn = ONE_FLOOD_AT_A_TIME.lock().await;
    let db = TestDatabase::new(engine).await;
    // Small limits, so that the floods reach them quickly on a 2-core machine: the flooder's
    // 512 connections are over both connection caps. The body budget is one body at the cap: on
    // a declared length alone, one request would hold all of it.
    let served = Served::start_with(
        &db,
        &[
            "--max-connections",
            "256",
            "--max-connections-per-address",
            "64",
            "--max-inflight-requests",
            "64",
            "--max-inflight-requests-per-address",
            "16",
            "--max-buffered-body-bytes",
            &DECLARED.to_string(),
            "--max-buffered-body-bytes-per-address",
            &DECLARED.to_string(),
        ],
    );
    let (id, secret) = served
        .create_receiver("probed", Gh, "https://github.com", 0)
        .await;
    let server: SocketAddr = served.http_addr.parse().expect("a socket address");

    let mut rates = Vec::new();
    for flood in [
        Flood::IdleConnections,
        Flood::SlowBodies,
        Flood::DeclaredButUnsent,
    ] {
        let stop = CancellationToken::new();
        let flooder = start_flood(flood, server, id.clone(), stop.clone());
        // Let the flood take what it can before the first probe.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (answered, sent) = probe(server, &id, &secret).await;
        stop.cancel();
        tokio::task::spawn_blocking(move || flooder.join())
            .await
            .expect("the flood's thread is joined")
            .expect("the flood ends cleanly");
        let rate = answered as f64 / sent as f64;
        eprintln!(
            "{engine:?}, flood {flood:?} from {FLOODER}: {answered}/{sent} probes from {PROBER} answered 202 within {PROBE_DEADLINE:?} ({:.1} %)",
            rate * 100.0
        );
        rates.push((flood, answered, sent));
        // The service lets go of what the flood held before the next one starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (flood, answered, sent) in rates {
        assert!(
            sent == PROBES && answered * 100 >= sent * 99,
            "during the {flood:?} flood only {answered} of {sent} probes were answered 202 within {PROBE_DEADLINE:?}; the log:\n{}",
            served.log()
        );
    }
    drop(served);
    db.drop_database().await;
}

/// Starts [`FLOOD_CONNECTIONS`] flood connections on a thread of their own, as another process
/// would be, so that the flooder's work does not delay the prober's; they end at `stop`.
fn start_flood(
    flood: Flood,
    server: SocketAddr,
    id: String,
    stop: CancellationToken,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the flood");
        runtime.block_on(async {
            // Started evenly over one pause, so that the flood is a steady stream of new
            // connections rather than 512 at the same instant each second.
            let connections: Vec<_> = (0..FLOOD_CONNECTIONS)
                .map(|i| {
                    let offset = REOPEN_PAUSE * i as u32 / FLOOD_CONNECTIONS as u32;
                    let connection = flood_connection(flood, server, id.clone(), stop.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(offset).await;
                        connection.await
                    })
                })
                .collect();
            for connection in connections {
                connection.await.expect("a flood connection ends cleanly");
            }
        });
    })
}

/// One of the flooder's connections, opened again each time the service closes or answers it,
/// until `stop`.
async fn flood_connection(flood: Flood, server: SocketAddr, id: String, stop: CancellationToken) {
    let path = format!("/.api/webhooks/{id}");
    let flooder: IpAddr = FLOODER.parse().expect("a loopback address");
    while !stop.is_cancelled() {
        if let Ok(mut stream) = raw_http::connect_from(flooder, &server.to_string()).await {
            let sent = match flood {
                Flood::IdleConnections => true,
                Flood::SlowBodies => {
                    let headers =
                        host_headers(Gh, "push", &uuid::Uuid::new_v4().to_string(), None, b"");
                    raw_http::send(&mut stream, &raw_http::post_head(&path, &headers, 4096)).await
                }
                Flood::DeclaredButUnsent => {
                    let headers =
                        host_headers(Gh, "push", &uuid::Uuid::new_v4().to_string(), None, b"");
                    raw_http::send(&mut stream, &raw_http::post_head(&path, &headers, DECLARED))
                        .await
                }
            };
            if sent {
                hold(flood, &mut stream, &stop).await;
            }
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(REOPEN_PAUSE) => {}
        }
    }
}

/// Holds a flood connection until the service answers or closes it, or `stop`; a slow body
/// goes on trickling meanwhile.
async fn hold(flood: Flood, stream: &mut tokio::net::TcpStream, stop: &CancellationToken) {
    let mut trickle = tokio::time::interval(Duration::from_millis(200));
    let mut buf = [0u8; 1024];
    loop {
        let (reader, mut writer) = stream.split();
        let mut reader = reader;
        tokio::select! {
            () = stop.cancelled() => return,
            // Any answer (or a close) ends this connection's turn.
            _ = reader.read(&mut buf) => return,
            _ = trickle.tick(), if flood == Flood::SlowBodies => {
                use tokio::io::AsyncWriteExt;
                if writer.write_all(b" ").await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends [`PROBES`] signed GitHub pushes from [`PROBER`], one at a time and each on a new
/// connection; returns how many were answered 202 within [`PROBE_DEADLINE`], and how many were
/// sent.
async fn probe(server: SocketAddr, id: &str, secret: &str) -> (usize, usize) {
    let client = reqwest::Client::builder()
        .local_address(PROBER.parse::<IpAddr>().expect("a loopback address"))
        .pool_max_idle_per_host(0)
        .timeout(PROBE_DEADLINE)
        .build()
        .expect("a client");
    let body = Arc::new(fixture("github/push.branch-updated.json"));
    let started = Instant::now();
    let (mut answered, mut sent) = (0, 0);
    while sent < PROBES && started.elapsed() < PROBING_LIMIT {
        let headers = host_headers(
            Gh,
            "push",
            &uuid::Uuid::new_v4().to_string(),
            Some(secret),
            &body,
        );
        let mut request = client
            .post(format!("http://{server}/.api/webhooks/{id}"))
            .body(body.to_vec());
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let start = Instant::now();
        let result = request.send().await;
        sent += 1;
        match result {
            Ok(response) if response.status() == 202 && start.elapsed() <= PROBE_DEADLINE => {
                answered += 1
            }
            // The first few failures say why; the rate says how many.
            Ok(response) if sent - answered <= 3 => {
                eprintln!(
                    "probe answered {} after {:?}",
                    response.status(),
                    start.elapsed()
                )
            }
            Err(e) if sent - answered <= 3 => {
                eprintln!("probe failed after {:?}: {e}", start.elapsed())
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (answered, sent)
}
