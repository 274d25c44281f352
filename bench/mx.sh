#!/usr/bin/env bash
# bench/mx.sh - volley in MX mode (DNS lookups, one pool per MX set, several
# servers) against volley in relay mode (everything to one server), for the
# same job: by default 100,000 recipients over 1,000 domains.
#
# The world is the one of the integration tests (tests/integration/dnslib.py):
# a local unbound serves the zone "test." on a free loopback port; the domains
# are big.test (60 MX records: the answer only fits over TCP), multi.test,
# cname.test, implicit.test (no MX) and pool domains d0001.test ... sharing
# four MX sets. Only domains that deliver are used, so that both modes send
# exactly the same recipients and every run must end with every recipient
# "delivered". Postfix smtp-sink listens on 127.0.0.2 ... 127.0.0.7, all on one
# port P (volley --port P); the relay runs go to the sink on 127.0.0.6.
#
#   MX     volley send --dns 127.0.0.1:DNSPORT --port P JOB
#   relay  volley send --relay 127.0.0.6:P JOB
#
# Both get the same VOLLEY_ARGS (default: none, i.e. --connections 100 and,
# in MX mode, at most 20 connections per MX set). Runs alternate (MX, relay,
# MX, ...); each run is a fresh volley process (an empty DNS cache: every MX
# run resolves all 1,000 domains again; unbound's own cache is warm after
# the first run). Reported: every run's wall time and DNS queries, the median
# of RUNS runs per mode, and the ratio MX/relay (target: <= 1.25).
# Note: MX mode talks to six smtp-sink processes, relay mode to one.
#
# Every run is checked: exit 0, exactly one result line per recipient, all
# "delivered". Any failure stops the bench with exit status 1.
#
# Usage (as root, Debian bookworm, scripts/deps.sh run, volley built):
#   bash bench/mx.sh
#
# Environment:
#   VOLLEY       volley binary              (default: $(dirname "$0")/../build/volley)
#   RUNS         runs per mode              (default: 3; the median is reported)
#   RCPTS        recipients                 (default: 100000)
#   DOMAINS      domains, at least 5        (default: 1000)
#   VOLLEY_ARGS  extra arguments for both modes (default: none)
#   RUN_TIMEOUT  seconds allowed for one volley run (default: 300)
#   TARGET       ratio MX/relay to meet     (default: 1.25; only reported)
#
# The servers are started by a small Python helper (the test harness's
# UnboundServer and SmtpSink) and stopped at exit, also on Ctrl-C; everything
# is written to a temporary directory that is removed at exit.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
VOLLEY=${VOLLEY:-$root/build/volley}
RUNS=${RUNS:-3}
RCPTS=${RCPTS:-100000}
DOMAINS=${DOMAINS:-1000}
VOLLEY_ARGS=${VOLLEY_ARGS:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
TARGET=${TARGET:-1.25}
PY=/usr/bin/python3

BENCH=mx.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

is_uint "$RUNS" || die "RUNS must be a positive integer (got '$RUNS')"
is_uint "$RCPTS" || die "RCPTS must be a positive integer (got '$RCPTS')"
if ! is_uint "$DOMAINS" || (( DOMAINS < 5 || DOMAINS > 9999 )); then
	die "DOMAINS must be an integer from 5 to 9999 (got '$DOMAINS')"
fi
is_uint "$RUN_TIMEOUT" || die "RUN_TIMEOUT must be a positive integer"
[[ $TARGET =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "TARGET must be a number (got '$TARGET')"
for tool in /usr/sbin/unbound /usr/sbin/smtp-sink "$PY"; do
	[[ -x $tool ]] || die "missing $tool (run scripts/deps.sh)"
done
for tool in timeout awk sort wc grep; do
	command -v "$tool" >/dev/null 2>&1 || die "missing $tool"
done
[[ -x $VOLLEY ]] || die "no volley binary at $VOLLEY (build it, or set VOLLEY)"
VOLLEY=$(cd "$(dirname "$VOLLEY")" && pwd)/$(basename "$VOLLEY")
"$VOLLEY" send --help 2>&1 | grep -- '--dns' >/dev/null || die "$VOLLEY has no MX mode (--dns)"
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5 needed (EPOCHREALTIME)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- temp dir, servers, cleanup ------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/volley-mx-bench.XXXXXX") || die "mktemp failed"
chmod 755 "$work"
holder=      # pid of the Python helper that owns unbound and the sinks
child=       # pid of the volley run in progress

cleanup() {
	local pid
	for pid in $child $holder; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in $child $holder; do
		wait "$pid" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

cat >"$work/holder.py" <<'EOF'
"""holder.py - write the job, start unbound and the sinks, wait for SIGTERM, stop them."""
import contextlib, os, signal, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "integration"))
from lib import free_port_on                                              # noqa: E402
from dnslib import (LOCAL_ZONES, SERVFAIL_ZONES, UnboundServer, mx_sink,  # noqa: E402
                    pool_domain, write_mx_job, zone_records)

work, rcpts, ndomains = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
HOLD_MAX = 6 * 3600        # a forgotten helper stops its servers after this
special = ["big.test", "multi.test", "cname.test", "implicit.test"]
npool = ndomains - len(special)
doms = special + [pool_domain(i) for i in range(1, npool + 1)]
per, extra = divmod(rcpts, ndomains)
job, addrs = write_mx_job(work, doms, per + (1 if extra else 0),
                          b"From: news@example.com\nSubject: bench\n\nHello.\n")
if extra:   # keep exactly rcpts recipients: drop the surplus from the end
    with open(job, "rb") as f:
        lines = f.read().split(b"\n")
    with open(job, "wb") as f:
        f.write(b"\n".join(lines[:len(lines) - 1 - (len(addrs) - rcpts)]) + b"\n")
ips = [f"127.0.0.{i}" for i in range(2, 8)]
port = free_port_on(["127.0.0.1"] + ips)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
signal.signal(signal.SIGINT, lambda *a: stop.append(1))
parent = os.getppid()
with contextlib.ExitStack() as st:
    # No query log here: logging every query slows unbound down enough to be the
    # bottleneck of the MX runs; the query count comes from volley's summary.
    ub = st.enter_context(UnboundServer(work, zone_records(npool), local_zones=LOCAL_ZONES,
                                        servfail_zones=SERVFAIL_ZONES, log_queries=False))
    for ip in ips:
        st.enter_context(mx_sink(work, ip, port, options=["-m", "4000"], counters=False,
                                 backlog=4096))
    print(f"READY {ub.addr} {port} 127.0.0.6:{port} {job} {ub.log_path}", flush=True)
    t0 = time.monotonic()
    while not stop and time.monotonic() - t0 < HOLD_MAX and os.getppid() == parent:
        time.sleep(0.2)
EOF

coproc_out="$work/holder.out"
"$PY" "$work/holder.py" "$root" "$work" "$RCPTS" "$DOMAINS" >"$coproc_out" 2>"$work/holder.err" &
holder=$!
ready=
for _ in $(seq 1 300); do      # up to 60 s: writing the job, starting 7 servers
	ready=$(grep -m1 '^READY ' "$coproc_out" 2>/dev/null)
	[[ -n $ready ]] && break
	kill -0 "$holder" 2>/dev/null || break
	sleep 0.2
done
[[ -n $ready ]] || die "servers did not start: $(tail -n 5 "$work/holder.err")"
read -r _ DNS PORT RELAY JOB UBLOG <<<"$ready"
log "unbound on $DNS, smtp-sink on 127.0.0.2-7:$PORT, $RCPTS recipients over $DOMAINS domains"

# --- runs ------------------------------------------------------------------------

# run MODE I: one volley run; appends "MODE seconds" to $work/times.
run() {
	local mode=$1 i=$2 res="$work/res-$1-$2.jsonl" t0 t1 rc n ok q secs
	local -a args
	if [[ $mode == mx ]]; then
		args=(--dns "$DNS" --port "$PORT")
	else
		args=(--relay "$RELAY")
	fi
	# shellcheck disable=SC2206
	args+=($VOLLEY_ARGS)
	t0=$EPOCHREALTIME
	timeout -k 5 "$RUN_TIMEOUT" "$VOLLEY" send "${args[@]}" --results "$res" "$JOB" \
		>"$work/out-$mode-$i" 2>"$work/err-$mode-$i" </dev/null &
	child=$!
	wait "$child"
	rc=$?
	child=
	t1=$EPOCHREALTIME
	q=$(sed -n 's/^volley: DNS: \([0-9]*\) queries.*/\1/p' "$work/out-$mode-$i")
	(( rc == 0 )) || die "$mode run $i: volley exit status $rc: $(tail -n 5 "$work/err-$mode-$i")"
	n=$(wc -l <"$res")
	ok=$(grep -c '"status":"delivered"' "$res")
	(( n == RCPTS )) || die "$mode run $i: $n result lines, want $RCPTS"
	if (( ok != RCPTS )); then
		die "$mode run $i: $ok of $RCPTS delivered; e.g. $(grep -v -m2 '"status":"delivered"' "$res")"
	fi
	rm -f "$res"
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	printf '%s %s\n' "$mode" "$secs" >>"$work/times"
	printf '  %-5s run %d: %8.3f s  %9.0f rcpt/s  DNS queries %d\n' "$mode" "$i" "$secs" \
		"$(awk -v n="$RCPTS" -v s="$secs" 'BEGIN { print n / s }')" "${q:-0}"
}

mode_median() {   # mode_median MODE: the median time of MODE's runs
	awk -v m="$1" '$1 == m { print $2 }' "$work/times" | median
}

: >"$work/times"
echo "volley: $VOLLEY"
echo "job: $RCPTS recipients over $DOMAINS domains; VOLLEY_ARGS: ${VOLLEY_ARGS:-(none)}"
for i in $(seq 1 "$RUNS"); do
	run mx "$i"
	run relay "$i"
done
mx=$(mode_median mx)
relay=$(mode_median relay)
ratio=$(awk -v a="$mx" -v b="$relay" 'BEGIN { printf "%.3f", a / b }')
verdict=$(awk -v r="$ratio" -v t="$TARGET" 'BEGIN { print (r <= t) ? "meets" : "MISSES" }')
echo
printf 'MX mode     median of %d: %8.3f s  %9.0f rcpt/s\n' "$RUNS" "$mx" \
	"$(awk -v n="$RCPTS" -v s="$mx" 'BEGIN { print n / s }')"
printf 'relay mode  median of %d: %8.3f s  %9.0f rcpt/s\n' "$RUNS" "$relay" \
	"$(awk -v n="$RCPTS" -v s="$relay" 'BEGIN { print n / s }')"
printf 'ratio MX/relay: %s (%s the target <= %s)\n' "$ratio" "$verdict" "$TARGET"
