//! Crash safety, proven on the built binary: concurrent clients send deliveries, the process is
//! killed with SIGKILL mid-load, and started again on the same data. Then every delivery that got
//! a 2xx is stored, every delivery the clients send again (those that got no 2xx) is stored once,
//! and once the queue is empty each one's effects are there exactly once. Each kill point runs on
//! a fresh database, on SQLite and PostgreSQL; one runs with every code host's deliveries at once,
//! each to a receiver of its own kind.
//!
//! The deliveries and the checks are in `common::exactly_once`.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::binary::Served;
use common::exactly_once::{
    Admin, Answer, OTHER_HOSTS, Planned, Report, check_exactly_once, make_plan, other_hosts, send,
};
use common::{Engine, TestDatabase};

/// GitHub deliveries per scenario, and how many clients send them at once.
const DELIVERIES: usize = 240;
/// Pushes of each other code host in the every-host scenario.
const PER_OTHER_HOST: usize = 12;
const CLIENTS: usize = 8;
/// The worker's claim on a delivery: short, so that the restarted process takes up the claims
/// the killed one held within seconds rather than after the default minute.
const LEASE: &str = "2s";

on_both_engines!(
    a_process_killed_during_intake_loses_no_acknowledged_delivery_and_repeats_no_effect,
    a_process_killed_while_its_worker_processes_a_backlog_finishes_it_after_a_restart_exactly_once,
    a_process_killed_again_while_recovering_still_ends_with_every_delivery_processed_once,
    a_process_killed_during_intake_of_every_code_hosts_deliveries_loses_none_and_repeats_none,
);

/// Killed when a third of the deliveries are answered: clients have requests in flight, and the
/// worker is processing what came before.
async fn a_process_killed_during_intake_loses_no_acknowledged_delivery_and_repeats_no_effect(
    engine: Engine,
) {
    scenario(engine, &[Run::KilledAfterAnswers(1, 3), Run::ToTheEnd]).await;
}

/// As the first scenario, with every code host at once: GitHub's pull requests and pushes and
/// the real push fixture of GitLab, Bitbucket Server, Bitbucket Cloud, Gitea and Azure DevOps,
/// each to a receiver of its kind, killed when a third are answered.
async fn a_process_killed_during_intake_of_every_code_hosts_deliveries_loses_none_and_repeats_none(
    engine: Engine,
) {
    scenario_of(
        engine,
        &[Run::KilledAfterAnswers(1, 3), Run::ToTheEnd],
        Hosts::Every,
    )
    .await;
}

/// Every delivery is stored first by an ingress-only process (itself killed once every client
/// has its answer); a process with a worker is then killed when a third of them are processed:
/// it dies holding claims and in the middle of a transaction, with no client connected.
async fn a_process_killed_while_its_worker_processes_a_backlog_finishes_it_after_a_restart_exactly_once(
    engine: Engine,
) {
    let report = scenario(
        engine,
        &[
            Run::IngressOnlyThenKilled,
            Run::KilledAfterProcessed(1, 3),
            Run::ToTheEnd,
        ],
    )
    .await;
    assert!(
        report.processed_after_last_kill > 0,
        "the worker had finished everything before the kill, so it interrupted no processing"
    );
}

/// Killed during intake, and killed again while the restarted process takes up the killed one's
/// work and the clients send what got no answer.
async fn a_process_killed_again_while_recovering_still_ends_with_every_delivery_processed_once(
    engine: Engine,
) {
    scenario(
        engine,
        &[
            Run::KilledAfterAnswers(1, 2),
            Run::KilledAfterAnswers(1, 2),
            Run::ToTheEnd,
        ],
    )
    .await;
}

/// How one process of a scenario runs and ends.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// Started with `--ingress-only`; SIGKILLed once every client has its answer.
    IngressOnlyThenKilled,
    /// SIGKILLed once this fraction (numerator, denominator) of the deliveries sent to it have
    /// been answered.
    KilledAfterAnswers(usize, usize),
    /// SIGKILLed once this fraction of all deliveries is processed.
    KilledAfterProcessed(usize, usize),
    /// Runs until every delivery has a 2xx and the queue is empty; then everything is checked.
    ToTheEnd,
}

/// Which code hosts a scenario's deliveries come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hosts {
    GitHub,
    Every,
}

async fn scenario(engine: Engine, runs: &[Run]) -> Report {
    scenario_of(engine, runs, Hosts::GitHub).await
}

async fn scenario_of(engine: Engine, runs: &[Run], hosts: Hosts) -> Report {
    let started = Instant::now();
    let db = TestDatabase::new(engine).await;
    let lease = ["--delivery-lease", LEASE];
    // The receivers' ids: GitHub's first, then the other hosts' (see `Planned::receiver`).
    let mut receivers: Vec<String> = Vec::new();
    let mut plan: Arc<Vec<Planned>> = Arc::new(Vec::new());
    // The answer each delivery got last, by key; once acknowledged it stays so.
    let mut answers: HashMap<String, Answer> = HashMap::new();
    let mut kills: Vec<SystemTime> = Vec::new();
    // Keys sent at least once (an answer may have been lost after the delivery was stored).
    let mut ever_sent: HashSet<String> = HashSet::new();
    // Keys whose answer was lost or refused, and which a resend found stored already (200).
    let mut found_stored_on_resend = 0usize;

    for (round, run) in runs.iter().enumerate() {
        let mut args = lease.to_vec();
        if matches!(run, Run::IngressOnlyThenKilled) {
            args.push("--ingress-only");
        }
        // Small batches, so that the kill finds the worker with claims in hand and most of the
        // backlog to do: with the default batch (128), half the backlog is claimed at once and
        // the batches parsed ahead were sometimes written between the poll and the kill.
        if matches!(run, Run::KilledAfterProcessed(..)) {
            args.extend(["--worker-batch", "16"]);
        }
        let round_start = Instant::now();
        let mut served = Served::start_with(&db, &args);
        let up = round_start.elapsed();
        let admin = Admin::new(served.channel().await);
        if receivers.is_empty() {
            let (id, secret) = admin.create_receiver("crash").await;
            let mut planned = make_plan(&secret, DELIVERIES, "crash");
            receivers.push(id);
            if hosts == Hosts::Every {
                let mut secrets = Vec::new();
                for (i, (kind, urn, _, _)) in OTHER_HOSTS.iter().enumerate() {
                    let (id, secret) = admin
                        .create_receiver_of(&format!("crash-{i}"), *kind, urn)
                        .await;
                    receivers.push(id);
                    secrets.push(secret);
                }
                // Every fourth GitHub delivery is followed by one of another host's.
                let mut others = other_hosts(&secrets, PER_OTHER_HOST, "crash").into_iter();
                let github = std::mem::take(&mut planned);
                for (i, p) in github.into_iter().enumerate() {
                    planned.push(p);
                    if i % 4 == 3 {
                        planned.extend(others.next());
                    }
                }
                planned.extend(others);
            }
            plan = Arc::new(planned);
        }

        // What the killed process acknowledged is stored, under the id it answered with.
        let mut stored: HashMap<String, String> = HashMap::new();
        for receiver_id in &receivers {
            stored.extend(
                admin
                    .all_deliveries(receiver_id)
                    .await
                    .into_iter()
                    .map(|d| (d.id, d.delivery_key)),
            );
        }
        for (key, answer) in &answers {
            if let Answer::Acknowledged { status, id } = answer {
                assert_eq!(
                    stored.get(id),
                    Some(key),
                    "round {round}: {key} got {status} naming delivery {id}, which is not stored under that key after the kill"
                );
            }
        }

        // The clients send every delivery not acknowledged yet, with its key and body.
        let pending: Vec<usize> = plan
            .iter()
            .enumerate()
            .filter(|(_, p)| !matches!(answers.get(&p.key), Some(Answer::Acknowledged { .. })))
            .map(|(i, _)| i)
            .collect();
        let urls = receivers
            .iter()
            .map(|id| format!("http://{}/.api/webhooks/{id}", served.http_addr))
            .collect();
        let clients = Clients::start(plan.clone(), pending.clone(), urls);
        let sending = Instant::now();
        let killed = match *run {
            Run::IngressOnlyThenKilled => {
                clients.wait_until_answered(pending.len()).await;
                true
            }
            Run::KilledAfterAnswers(n, d) => {
                clients.wait_until_answered(pending.len() * n / d).await;
                true
            }
            Run::KilledAfterProcessed(n, d) => {
                clients.wait_until_answered(pending.len()).await;
                let seen = admin.wait_until_processed(plan.len() * n / d).await;
                eprintln!(
                    "{engine:?} round {round}: {seen} processed, {:?} after the start",
                    round_start.elapsed()
                );
                true
            }
            Run::ToTheEnd => false,
        };
        if killed {
            let log = served.kill();
            kills.push(SystemTime::now());
            clients.stop();
            if std::env::var_os("HOOKGATE_TEST_SHOW_LOG").is_some() {
                eprintln!("{log}");
            }
        }
        let seen = clients.finish().await;
        let mut tally: HashMap<String, usize> = HashMap::new();
        let mut lost_example = None;
        for (i, answer) in seen {
            let key = &plan[i].key;
            let sent_before = ever_sent.contains(key);
            if !matches!(answer, Answer::Unsent) {
                ever_sent.insert(key.clone());
            }
            *tally
                .entry(match &answer {
                    Answer::Acknowledged { status, .. } => status.to_string(),
                    Answer::Refused(status) => format!("refused {status}"),
                    Answer::Lost(why) => {
                        lost_example.get_or_insert_with(|| why.clone());
                        "no answer".to_owned()
                    }
                    Answer::Unsent => "unsent".to_owned(),
                })
                .or_default() += 1;
            if let Answer::Acknowledged { status, .. } = &answer
                && *status != 202
            {
                // Only a key sent before can be a duplicate (that the id it names is stored
                // under this key is checked with every acknowledged one).
                assert!(
                    sent_before,
                    "{key} got {status} on its first try (a new delivery is 202)"
                );
                found_stored_on_resend += 1;
            }
            answers.insert(key.clone(), answer);
        }
        let mut tally: Vec<_> = tally.into_iter().collect();
        tally.sort();
        eprintln!(
            "{engine:?} round {round} ({run:?}): up in {up:?}; {} to send -> {tally:?} in {:?}{}{}",
            pending.len(),
            sending.elapsed(),
            if killed { ", SIGKILL" } else { "" },
            lost_example
                .map(|e| format!(" (no answer: {e})"))
                .unwrap_or_default()
        );
        if killed {
            continue;
        }

        // The last run: every delivery is acknowledged, on its first resend at the latest.
        for p in plan.iter() {
            match &answers[&p.key] {
                Answer::Acknowledged { .. } => {}
                other => panic!("{} was resent after the restart and got {other:?}", p.key),
            }
        }
        let drained = admin.wait_until_queue_is_empty().await;
        let report = check_exactly_once(&admin, &receivers, &plan, &answers, &kills).await;
        eprintln!(
            "{engine:?}: queue empty {drained:?} after the last answer; {found_stored_on_resend} \
             resent deliveries were stored already (200); {} processed after the last kill, {} of \
             them taken again from a killed process's claim; scenario took {:?}",
            report.processed_after_last_kill,
            report.claimed_again,
            started.elapsed()
        );
        drop(served);
        db.drop_database().await;
        return report;
    }
    panic!("a scenario ends with Run::ToTheEnd");
}

/// Concurrent clients sending planned deliveries over real HTTP, each recording what it saw.
struct Clients {
    tasks: Vec<tokio::task::JoinHandle<Vec<(usize, Answer)>>>,
    /// Deliveries answered so far (with any status).
    answered: Arc<AtomicUsize>,
    /// Set after the kill: the clients send nothing more.
    stop: Arc<AtomicBool>,
}

impl Clients {
    /// [`CLIENTS`] clients share `which` deliveries of `plan`, in turn, and send each to the URL
    /// of its receiver in `urls`.
    fn start(plan: Arc<Vec<Planned>>, which: Vec<usize>, urls: Vec<String>) -> Self {
        let answered = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..CLIENTS)
            .map(|c| {
                let mine: Vec<usize> = which.iter().copied().skip(c).step_by(CLIENTS).collect();
                let (plan, urls, answered, stop) =
                    (plan.clone(), urls.clone(), answered.clone(), stop.clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .expect("an HTTP client");
                    let mut seen = Vec::with_capacity(mine.len());
                    for i in mine {
                        if stop.load(Ordering::SeqCst) {
                            seen.push((i, Answer::Unsent));
                            continue;
                        }
                        let answer = send(&http, &urls[plan[i].receiver], &plan[i]).await;
                        if !matches!(answer, Answer::Lost(_)) {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        seen.push((i, answer));
                    }
                    seen
                })
            })
            .collect();
        Self {
            tasks,
            answered,
            stop,
        }
    }

    /// Waits until `n` deliveries have been answered (or every client is done).
    async fn wait_until_answered(&self, n: usize) {
        while self.answered.load(Ordering::SeqCst) < n
            && !self.tasks.iter().all(|t| t.is_finished())
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// What every client saw, once they are all done.
    async fn finish(self) -> Vec<(usize, Answer)> {
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await.expect("a client does not panic"));
        }
        all
    }
}
