#!/usr/bin/env bash
# bench/relay.sh - volley against Postfix smtp-source, both sending to the
# same Postfix smtp-sink on 127.0.0.1, in one go.
#
# For every cell of the matrix (message size x sessions) and every run, three
# sender processes are measured one after the other, each as its own process:
#
#   volley (1 rcpt/txn)   volley --max-recipients 1: one recipient and one
#                         full message per transaction, like smtp-source.
#                         This is the row that is compared.
#   smtp-source -d        Postfix smtp-source, connections kept open (-d),
#                         same number of sessions (-s), same payload (-l).
#   volley (100 rcpt/txn) volley's default grouping (--max-recipients 100).
#                         Its "msgs/s" counts RECIPIENTS per second, and its
#                         CPU/msg is CPU per recipient: NOT comparable, for
#                         information only.
#
# Reported per row (median of RUNS runs): msgs/s, the sender's CPU (user+sys,
# from /usr/bin/time) per message in microseconds, the sender's CPU as % of
# one core, the sink's CPU as % of one core over the sender's run (from
# /proc/PID/stat utime+stime deltas; smtp-sink is one process, so ~100% means
# the sink is the bottleneck), and the ratios volley/smtp-source.
#
# Every run is checked: volley must exit 0 and its results file must hold
# exactly one line per recipient, all "delivered"; smtp-source must exit 0.
# Any failure stops the bench with exit status 1.
#
# Usage (as root, Debian bookworm with postfix installed):
#   bash bench/relay.sh
#
# Environment:
#   VOLLEY      volley binary            (default: $(dirname "$0")/../build/volley)
#   RUNS        runs per cell            (default: 3; the median is reported)
#   MSGS        messages per run, all sizes (overrides MSGS_1K and MSGS_100K)
#   MSGS_1K     messages per run, 1 KB   (default: 200000)
#   MSGS_100K   messages per run, 100 KB (default: 10000)
#   SIZES       payload sizes in octets  (default: "1024 102400")
#   SESSIONS    session counts           (default: "100 1000")
#   GROUPED     1 = also run volley with --max-recipients 100 (default: 1)
#   ALT_ARGS    also run volley (1 rcpt/txn) with these extra arguments, in
#               turn with the others (an A/B row; e.g. "--batch-window 0")
#   RUN_TIMEOUT seconds allowed for one sender run (default: 300)
#   QUIET_PCT, QUIET_WAIT  before each run, wait up to QUIET_WAIT s (default
#               60) for other processes to use < QUIET_PCT % (default 25) of a
#               core; the machine may be shared. "other CPU %" in the table
#               is what the rest of the machine used during the runs.
#   VOLLEY_ARGS extra arguments for volley send (default: none)
#   RAW         also write every run as CSV to this file (default: none)
#   TLS         1 = afterwards, the TLS rows: bench/tls.sh (STARTTLS against plaintext
#               to one Postfix smtpd, since smtp-sink has no TLS); 0 = skip (default: 1)
#   SMTP_SINK, SMTP_SOURCE  paths (default: /usr/sbin/smtp-sink, /usr/sbin/smtp-source)
#
# Only 127.0.0.1 is used. The sink listens on a free port, and is stopped at
# exit (also on Ctrl-C). Everything is written to a temporary directory that is
# removed at exit.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
VOLLEY=${VOLLEY:-$here/../build/volley}
RUNS=${RUNS:-3}
MSGS_1K=${MSGS_1K:-200000}
MSGS_100K=${MSGS_100K:-10000}
SIZES=${SIZES:-"1024 102400"}
SESSIONS=${SESSIONS:-"100 1000"}
GROUPED=${GROUPED:-1}
ALT_ARGS=${ALT_ARGS:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
QUIET_PCT=${QUIET_PCT:-25}
QUIET_WAIT=${QUIET_WAIT:-60}
VOLLEY_ARGS=${VOLLEY_ARGS:-}
RAW=${RAW:-}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
TIME=/usr/bin/time
HOST=127.0.0.1
FROM=news@example.com
TO=user@example.org

BENCH=relay.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- checks -----------------------------------------------------------------

is_uint "$RUNS" || die "RUNS must be a positive integer (got '$RUNS')"
is_uint "$RUN_TIMEOUT" || die "RUN_TIMEOUT must be a positive integer"
is_uint "$QUIET_PCT" || die "QUIET_PCT must be a positive integer"
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "QUIET_WAIT must be an integer"
is_uint "$MSGS_1K" || die "MSGS_1K must be a positive integer"
is_uint "$MSGS_100K" || die "MSGS_100K must be a positive integer"
if [[ -n ${MSGS:-} ]]; then
	is_uint "$MSGS" || die "MSGS must be a positive integer (got '$MSGS')"
fi
for s in $SIZES; do is_uint "$s" || die "SIZES: bad size '$s'"; done
for s in $SESSIONS; do is_uint "$s" || die "SESSIONS: bad count '$s'"; done

missing=
for tool in "$SMTP_SINK" "$SMTP_SOURCE" "$TIME"; do
	[[ -x $tool ]] || missing="$missing $tool"
done
for tool in timeout ss awk sort seq; do
	command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [[ -n $missing ]]; then
	hint="apt-get install postfix time iproute2 coreutils gawk"
	[[ -x $here/../scripts/deps.sh ]] && hint="scripts/deps.sh, or $hint"
	die "missing:$missing (install with: $hint)"
fi
[[ -x $VOLLEY ]] || die "no volley binary at $VOLLEY (build it, or set VOLLEY)"
VOLLEY=$(cd "$(dirname "$VOLLEY")" && pwd)/$(basename "$VOLLEY")

sink_user=()
if (( EUID == 0 )); then
	sink_user=(-u nobody)   # smtp-sink refuses to run as root without -u
fi

# Enough descriptors for 1000 sessions on each side.
max_sessions=0
for s in $SESSIONS; do (( s > max_sessions )) && max_sessions=$s; done
need_fds=$(( max_sessions + 256 ))
hard=$(ulimit -Hn)
if [[ $hard == unlimited ]] || (( hard >= 65536 )); then
	ulimit -n 65536 2>/dev/null || true
else
	ulimit -n "$hard" 2>/dev/null || true
fi
(( $(ulimit -n) >= need_fds )) ||
	die "open files limit $(ulimit -n) is below $need_fds (needed for $max_sessions sessions)"

clk_tck=$(getconf CLK_TCK)

# --- temp dir, sink, cleanup ------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/volley-relay-bench.XXXXXX") || die "mktemp failed"
sink_wrapper=    # pid of `timeout ... smtp-sink`
sink_pid=        # pid of smtp-sink itself
child=           # pid of the sender run in progress

cleanup() {
	local pid
	for pid in $child $sink_pid $sink_wrapper; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in $child $sink_wrapper; do
		wait "$pid" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

port_is_free() { [[ -z $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

start_sink() {
	local port
	for _ in 1 2 3 4 5 6 7 8; do
		port=$(( 20000 + RANDOM % 30000 ))
		port_is_free "$port" || continue
		# -m: allow more than the default 256 simultaneous connections.
		# The outer timeout only bounds a forgotten sink; cleanup() stops it.
		timeout -k 5 7200 "$SMTP_SINK" "${sink_user[@]}" -m 4000 \
			"$HOST:$port" 4096 >"$work/sink.out" 2>"$work/sink.err" </dev/null &
		sink_wrapper=$!
		for _ in $(seq 1 50); do
			if ! kill -0 "$sink_wrapper" 2>/dev/null; then
				break
			fi
			if ! port_is_free "$port"; then
				sink_pid=$(cat "/proc/$sink_wrapper/task/$sink_wrapper/children" 2>/dev/null ||
					pgrep -P "$sink_wrapper")
				sink_pid=${sink_pid%%[[:space:]]*}
				[[ -n $sink_pid && -r /proc/$sink_pid/stat ]] ||
					die "cannot find the smtp-sink process under pid $sink_wrapper"
				PORT=$port
				return 0
			fi
			sleep 0.1
		done
		kill -TERM "$sink_wrapper" 2>/dev/null
		wait "$sink_wrapper" 2>/dev/null
		sink_wrapper=
	done
	die "could not start smtp-sink on 127.0.0.1 ($(tail -n 3 "$work/sink.err" 2>/dev/null))"
}

# sink_ticks: set TICKS to the CPU ticks (utime + stime) the sink used so far.
# (Not called in $(...): die must run in the main shell.)
sink_ticks() {
	local stat f
	read -r stat <"/proc/$sink_pid/stat" 2>/dev/null || die "smtp-sink (pid $sink_pid) died"
	stat=${stat##*) }           # drop "pid (comm) ", comm may hold spaces
	read -r -a f <<<"$stat"     # f[0] is field 3 (state): utime is f[11], stime f[12]
	TICKS=$(( f[11] + f[12] ))
}

# --- inputs -----------------------------------------------------------------

msgs_for() {
	if [[ -n ${MSGS:-} ]]; then echo "$MSGS"
	elif (( $1 <= 10240 )); then echo "$MSGS_1K"
	else echo "$MSGS_100K"
	fi
}

# make_job SIZE N: job file with N distinct recipients.
make_job() {
	local size=$1 n=$2 dir="$work/s$1"
	mkdir -p "$dir"
	make_message "$size" "$dir/msg.eml"
	{
		printf '#volley-job 1\nfrom: %s\nmessage: msg.eml\n\n' "$FROM"
		seq -f 'u%.0f@example.org' 1 "$n"
	} >"$dir/job"
}

# --- one measured run -------------------------------------------------------

# measure KIND SIZE SESSIONS N: runs one sender; sets M_WALL M_CPU M_SINK.
measure() {
	local kind=$1 size=$2 sessions=$3 n=$4 dir="$work/s$2"
	local out="$work/run.out" err="$work/run.err" tfile="$work/run.time"
	local cmd t0 t1 s0 s1 b0 b1 rc
	case $kind in
	volley1|volley100|volleyalt)
		local rcpts=1 alt=; [[ $kind == volley100 ]] && rcpts=100
		[[ $kind == volleyalt ]] && alt=$ALT_ARGS
		rm -f "$work/results.jsonl"
		# shellcheck disable=SC2206
		cmd=("$VOLLEY" send --relay "$HOST:$PORT" --connections "$sessions"
			--max-recipients "$rcpts" --results "$work/results.jsonl" --force
			--quiet $VOLLEY_ARGS $alt "$dir/job")
		;;
	source)
		cmd=("$SMTP_SOURCE" -d -s "$sessions" -m "$n" -l "$size"
			-f "$FROM" -t "$TO" "$HOST:$PORT")
		;;
	esac
	kill -0 "$sink_pid" 2>/dev/null || die "smtp-sink is gone"
	wait_quiet
	sink_ticks; s0=$TICKS
	busy_ticks; b0=$BUSY
	t0=$(date +%s%N)
	# In the background, so that Ctrl-C is handled at once (wait is
	# interruptible); timeout signals the whole process group it leads.
	timeout -k 5 "$RUN_TIMEOUT" "$TIME" -o "$tfile" -f '%e %U %S' "${cmd[@]}" \
		>"$out" 2>"$err" </dev/null &
	child=$!
	wait "$child"; rc=$?
	child=
	t1=$(date +%s%N)
	sink_ticks; s1=$TICKS
	busy_ticks; b1=$BUSY

	if (( rc == 124 || rc == 137 )); then
		die "$kind size=$size sessions=$sessions: timed out after ${RUN_TIMEOUT}s: $(tail -n 3 "$err")"
	fi
	if (( rc != 0 )); then
		die "$kind size=$size sessions=$sessions: exit status $rc: $(grep -v '^Command exited' "$err" | tail -n 5)"
	fi
	if [[ $kind == source && -s $err ]]; then
		log "warning: smtp-source wrote to stderr: $(head -n 3 "$err")"
	fi
	if [[ $kind != source ]]; then
		local lines delivered
		lines=$(wc -l <"$work/results.jsonl")
		delivered=$(grep -c '"status":"delivered"' "$work/results.jsonl")
		if (( lines != n || delivered != n )); then
			log "status counts:"
			grep -o '"status":"[a-z]*"' "$work/results.jsonl" | sort | uniq -c >&2
			grep -v '"status":"delivered"' "$work/results.jsonl" | head -n 5 >&2
			die "$kind size=$size sessions=$sessions: expected $n delivered result lines, got $delivered delivered of $lines lines"
		fi
	fi
	local user sys
	read -r _ user sys <"$tfile" || die "no timing from $TIME"
	M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')
	M_CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
	M_SINK=$(awk -v d=$(( s1 - s0 )) -v hz="$clk_tck" -v w="$M_WALL" \
		'BEGIN { printf "%.1f", 100 * d / hz / w }')
	# Everything else the machine did meanwhile, % of one core (the
	# /usr/bin/time and timeout wrappers are in here too, negligibly).
	M_OTHER=$(awk -v d=$(( b1 - b0 )) -v hz="$clk_tck" -v w="$M_WALL" \
		-v c="$M_CPU" -v sk="$M_SINK" \
		'BEGIN { o = 100 * (d / hz - c) / w - sk; if (o < 0) o = 0; printf "%.1f", o }')
}

# --- main -------------------------------------------------------------------

start_sink
log "smtp-sink pid $sink_pid on $HOST:$PORT; volley: $VOLLEY"
log "$(nproc) CPUs, kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"

kinds=(volley1 source)
(( GROUPED )) && kinds+=(volley100)
[[ -n $ALT_ARGS ]] && kinds+=(volleyalt)

runs="$work/runs.csv"
echo "sender,size,sessions,run,msgs,wall_s,cpu_s,msgs_per_s,cpu_us_per_msg,sender_cpu_pct,sink_cpu_pct,other_cpu_pct" >"$runs"
start=$(date +%s)
for size in $SIZES; do
	n=$(msgs_for "$size")
	make_job "$size" "$n"
	for sessions in $SESSIONS; do
		for (( r = 1; r <= RUNS; r++ )); do
			# Rotate the order of the senders from run to run, so that no
			# sender always runs first (or right after another one).
			for (( k = 0; k < ${#kinds[@]}; k++ )); do
				kind=${kinds[(k + r - 1) % ${#kinds[@]}]}
				measure "$kind" "$size" "$sessions" "$n"
				line=$(awk -v k="$kind" -v sz="$size" -v ss="$sessions" -v r="$r" \
					-v n="$n" -v w="$M_WALL" -v c="$M_CPU" -v sk="$M_SINK" -v o="$M_OTHER" 'BEGIN {
					printf "%s,%s,%s,%s,%s,%.3f,%.2f,%.0f,%.2f,%.1f,%s,%s",
						k, sz, ss, r, n, w, c, n / w, 1e6 * c / n, 100 * c / w, sk, o }')
				echo "$line" >>"$runs"
				log "$line"
				sleep 1   # let the loopback sockets settle between runs
			done
		done
	done
done
elapsed=$(( $(date +%s) - start ))
[[ -n $RAW ]] && cp "$runs" "$RAW"

# --- report -----------------------------------------------------------------

label() {
	case $1 in
	volley1) echo "volley (1 rcpt/txn)" ;;
	volleyalt) echo "volley (1 rcpt/txn) $ALT_ARGS" ;;
	source) echo "smtp-source -d" ;;
	volley100) echo "volley (100 rcpt/txn) - recipients/s, NOT comparable" ;;
	esac
}
col() { # KIND SIZE SESSIONS FIELD -> median of that field
	awk -F, -v k="$1" -v sz="$2" -v ss="$3" -v f="$4" \
		'NR > 1 && $1 == k && $2 == sz && $3 == ss { print $f }' "$runs" | median
}
human() { # octets -> "1 KB" / "100 KB"
	if (( $1 % 1024 == 0 )); then echo "$(( $1 / 1024 )) KB"; else echo "$1 B"; fi
}

echo
echo "volley vs smtp-source -> smtp-sink on 127.0.0.1; $(nproc) CPUs, $(uname -r);" \
	"median of $RUNS runs; $elapsed s in all"
echo
echo "| sender | size | sessions | msgs/run | msgs/s | CPU µs/msg | sender CPU % | sink CPU % | other CPU % | msgs/s vs smtp-source | CPU/msg vs smtp-source |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for size in $SIZES; do
	n=$(msgs_for "$size")
	for sessions in $SESSIONS; do
		src_rate=$(col source "$size" "$sessions" 8)
		src_cpu=$(col source "$size" "$sessions" 9)
		for kind in "${kinds[@]}"; do
			rate=$(col "$kind" "$size" "$sessions" 8)
			cpu=$(col "$kind" "$size" "$sessions" 9)
			scpu=$(col "$kind" "$size" "$sessions" 10)
			sink=$(col "$kind" "$size" "$sessions" 11)
			other=$(col "$kind" "$size" "$sessions" 12)
			ratios=$(awk -v k="$kind" -v r="$rate" -v sr="$src_rate" -v c="$cpu" -v sc="$src_cpu" 'BEGIN {
				if (k == "source") { print "1 | 1"; exit }
				a = sr > 0 ? sprintf("%.2fx", r / sr) : "-"
				b = sc > 0 ? sprintf("%.2fx", c / sc) : "-"
				if (k == "volley100") print "(" a ", n/c) | (" b ", n/c)"
				else print a " | " b }')
			printf '| %s | %s | %s | %s | %.0f | %.2f | %.0f | %.0f | %.0f | %s |\n' \
				"$(label "$kind")" "$(human "$size")" "$sessions" "$n" \
				"$rate" "$cpu" "$scpu" "$sink" "$other" "$ratios"
		done
	done
done
echo
echo "CPU µs/msg: user+sys of the sender process / messages (recipients for the 100 rcpt/txn row)."
echo "sender, sink and other CPU %: % of one core over the sender's run ($(nproc) cores = $(( 100 * $(nproc) ))%);"
echo "smtp-sink is one process: ~100% = the sink is saturated. other = the rest of the machine (noise)."
echo "Ratios: volley / smtp-source, same size and sessions (CPU/msg: lower is better)."

# The TLS rows need a TLS-capable sink: bench/tls.sh runs them against a private
# Postfix smtpd (plaintext and STARTTLS to the same server).
if [[ ${TLS:-1} == 1 ]]; then
	echo
	echo "TLS rows (bench/tls.sh, VOLLEY=$VOLLEY):"
	VOLLEY="$VOLLEY" RUNS="${RUNS:-3}" bash "$(dirname "$0")/tls.sh" || exit 1
fi
