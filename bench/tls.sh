#!/usr/bin/env bash
# bench/tls.sh - volley over STARTTLS against volley in plaintext, both sending
# to the SAME private Postfix smtpd on 127.0.0.1, in one go.
#
# smtp-sink (bench/relay.sh) has no TLS, so the sink here is a real Postfix:
# master in the foreground with its own config and queue directories, smtpd
# on a free loopback port offering STARTTLS (smtpd_tls_security_level = may,
# a certificate from tests/integration/tlslib.py's make_pki), and everything
# it accepts thrown away as cheaply as Postfix allows: default_transport and
# relay_transport = discard, no relayhost, receive_override_options without
# address mappings, header/body checks, milters or unknown-recipient checks,
# no Received TLS details, no client name lookups, max_use = 1000000 (by
# default a cleanup or discard process exits after 100 messages and master
# forks a new one, which cost ~100 µs per message), and the queue and log on
# tmpfs (/dev/shm: the queue file fsyncs cost nothing). smtpd still writes
# each message to a queue file through cleanup, and qmgr hands it to discard(8)
# and logs it: that is the work of a real Postfix, minus the disk.
#
# For every cell (recipients per transaction x connections) and every run,
# two volley processes are measured one after the other, against that smtpd:
#
#   plaintext   volley send --tls none ...
#   STARTTLS    volley send --tls verify --ca-file CA ...  (TLS_MODE)
#
# Cells: --max-recipients 1 (one message per transaction: msgs/s) and 100
# (volley's default: RECIPIENTS/s, CPU per recipient), each with 20 and 100
# connections; a 1 KB message (smtp-source -l 1024's format, as relay.sh).
# volley keeps its default of 1000 transactions per connection, so a TLS
# handshake is paid once per 1000 transactions.
#
# Reported per row (median of RUNS runs): msgs/s (wall time of the volley
# process), volley's CPU (user+sys from /usr/bin/time) per message in µs and as
# % of one core, Postfix's CPU as % of one core over volley's run (the sum of
# utime+stime+cutime+cstime of every process of Postfix's process group, from
# /proc: master reaps its daemons, so their time is counted after they exit
# too), Postfix's CPU per message from the start of the run until its queue is
# empty again (the drain after volley exits included), the rest of the
# machine's CPU, the kernel's delayed ACKs per transaction (TcpExt DelayedACKs
# from /proc/net/netstat; with one recipient per transaction, ~1 per
# transaction went with a ~40 ms stall each time, see docs/PERFORMANCE.md), and
# the ratios STARTTLS / plaintext. The CSV of every run (RAW) also has the
# drain time and the "tls" value of the results.
#
# Every run is checked: volley must exit 0; its results file must hold
# exactly one line per recipient, all "delivered"; for STARTTLS every line's
# "tls" must start with "TLSv" (for plaintext it must be null); afterwards
# Postfix must log exactly one "status=sent" per recipient, nothing else, and
# its queue must be empty. Any failure stops the bench with exit status 1.
#
# Usage (as root, Debian bookworm with postfix, python3, openssl, time and
# iproute2 installed, volley built):
#   bash bench/tls.sh
#
# Environment:
#   VOLLEY        volley binary            (default: $(dirname "$0")/../build/volley)
#   RUNS          runs per cell and row    (default: 3; the median is reported)
#   MSGS          recipients per run with --max-recipients 1   (default: 8000)
#   RCPTS         recipients per run with --max-recipients 100 (default: 120000)
#   GROUPINGS     --max-recipients values  (default: "1 100")
#   CONNECTIONS   --connections values     (default: "20 100")
#   SIZE          message body octets      (default: 1024)
#   TLS_MODE      verify (with --ca-file) or required / opportunistic (default: verify)
#   VOLLEY_ARGS   extra arguments for every volley run (default: none)
#   RUN_TIMEOUT   seconds allowed for one volley run (default: 300)
#   DRAIN_TIMEOUT seconds allowed for Postfix to empty its queue after a run (default: 300)
#   QUIET_PCT, QUIET_WAIT  before each run, wait up to QUIET_WAIT s (default
#                 60) for the rest of the machine to use < QUIET_PCT % (default
#                 25) of a core; "other CPU %" is what it used during the run.
#   RAW           also write every run as CSV to this file (default: none)
#   WORK_BASE     where the work directory (queue, log, PKI) goes (default: /dev/shm)
#
# Only 127.0.0.1 is used. Postfix runs under `timeout` (it cannot outlive the
# bench by more than BENCH_LIFETIME s, default 7200) in its own process group,
# which is stopped at exit (also on Ctrl-C); the work directory is removed.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
VOLLEY=${VOLLEY:-$root/build/volley}
RUNS=${RUNS:-3}
MSGS=${MSGS:-8000}
RCPTS=${RCPTS:-120000}
GROUPINGS=${GROUPINGS:-"1 100"}
CONNECTIONS=${CONNECTIONS:-"20 100"}
SIZE=${SIZE:-1024}
TLS_MODE=${TLS_MODE:-verify}
VOLLEY_ARGS=${VOLLEY_ARGS:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
QUIET_PCT=${QUIET_PCT:-25}
QUIET_WAIT=${QUIET_WAIT:-60}
RAW=${RAW:-}
WORK_BASE=${WORK_BASE:-/dev/shm}
BENCH_LIFETIME=${BENCH_LIFETIME:-7200}
PY=/usr/bin/python3
TIME=/usr/bin/time
MASTER=/usr/lib/postfix/sbin/master
HOST=127.0.0.1
FROM=news@example.com
TO=user@example.org

BENCH=tls.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- checks -----------------------------------------------------------------

for v in RUNS MSGS RCPTS SIZE RUN_TIMEOUT DRAIN_TIMEOUT QUIET_PCT BENCH_LIFETIME; do
	is_uint "${!v}" || die "$v must be a positive integer (got '${!v}')"
done
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "QUIET_WAIT must be an integer"
for g in $GROUPINGS; do is_uint "$g" && (( g <= 1000 )) || die "GROUPINGS: bad value '$g'"; done
for c in $CONNECTIONS; do is_uint "$c" || die "CONNECTIONS: bad value '$c'"; done
case $TLS_MODE in verify|required|opportunistic) ;; *) die "TLS_MODE must be verify, required or opportunistic" ;; esac
(( EUID == 0 )) || die "run as root (Postfix's master runs as root; its daemons drop to the postfix user)"

missing=
for tool in "$PY" "$TIME" "$MASTER" /usr/sbin/postfix /usr/bin/openssl; do
	[[ -x $tool ]] || missing="$missing $tool"
done
for tool in timeout ss awk sort seq find; do
	command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[[ -n $missing ]] && die "missing:$missing (install with: scripts/deps.sh, or apt-get install postfix python3 openssl time iproute2)"
[[ -r $root/tests/integration/tlslib.py ]] || die "no tests/integration/tlslib.py under $root"
[[ -x $VOLLEY ]] || die "no volley binary at $VOLLEY (build it, or set VOLLEY)"
VOLLEY=$(cd "$(dirname "$VOLLEY")" && pwd)/$(basename "$VOLLEY")
"$VOLLEY" send --help 2>&1 | grep -- '--tls MODE' >/dev/null || die "$VOLLEY has no --tls option"

max_conns=0
for c in $CONNECTIONS; do (( c > max_conns )) && max_conns=$c; done
hard=$(ulimit -Hn)
if [[ $hard == unlimited ]] || (( hard >= 65536 )); then
	ulimit -n 65536 2>/dev/null || true
else
	ulimit -n "$hard" 2>/dev/null || true
fi
(( $(ulimit -n) >= 4 * max_conns + 256 )) || die "open files limit $(ulimit -n) too low for $max_conns connections"

clk_tck=$(getconf CLK_TCK)
ncpu=$(nproc)

# --- work dir, Postfix, cleanup ---------------------------------------------

work=$(mktemp -d "$WORK_BASE/volley-tls-bench.XXXXXX") || die "mktemp in $WORK_BASE failed"
chmod 755 "$work"
pf_pgid=    # process group of `timeout ... master -d` (timeout leads it)
child=      # pid of the volley run in progress

stop_postfix() {
	[[ -n $pf_pgid ]] || return 0
	local i
	kill -TERM -- "-$pf_pgid" 2>/dev/null
	for (( i = 0; i < 100; i++ )); do      # master exits on SIGTERM with its daemons
		pgrep -g "$pf_pgid" >/dev/null 2>&1 || break
		sleep 0.1
	done
	kill -KILL -- "-$pf_pgid" 2>/dev/null
	wait "$pf_pgid" 2>/dev/null
	pf_pgid=
}
cleanup() {
	[[ -n $child ]] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
	stop_postfix
	rm -rf "$work"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# The Python helper: the PKI (tlslib.make_pki), Postfix's configuration, the
# banner check and the results check.
cat >"$work/helper.py" <<'PYEOF'
import json, os, pwd, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "integration"))
import tlslib  # noqa: E402

MASTER_CF = tlslib.MASTER_CF  # the same services as the tests' private Postfix

MAIN_CF = """\
# main.cf of volley's bench/tls.sh: a private Postfix whose smtpd offers
# STARTTLS and whose every message goes to discard(8)
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
relayhost =
default_transport = discard
relay_transport = discard
local_transport = discard
virtual_transport = discard
receive_override_options = no_unknown_recipient_checks, no_header_body_checks, no_milters, no_address_mappings
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_host_lookup = native
smtpd_banner = $myhostname ESMTP Postfix (volley bench)
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_received_header = no
smtpd_tls_loglevel = 0
smtpd_tls_session_cache_database =
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_recipient_limit = 1000
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 200
default_destination_recipient_limit = 1000
default_process_limit = {procs}
# a daemon serves this many clients before it exits (default 100): cleanup
# and discard get one client per message, so the default means a fork and
# exec of a new cleanup and discard every 100 messages
max_use = 1000000
maillog_file = {maillog}
maillog_file_prefixes = {base}
biff = no
append_dot_mydomain = no
readme_directory = no
message_size_limit = 10240000
delay_warning_time = 0
bounce_notice_recipient = postmaster
notify_classes =
"""


def setup(work, procs):
    """PKI, main.cf, master.cf and queue in work/; print "PORT CA"."""
    pki = tlslib.make_pki(os.path.join(work, "pki"))
    base = os.path.join(work, "postfix")
    conf, queue, data = (os.path.join(base, d) for d in ("conf", "queue", "data"))
    for d in (base, conf, queue, data):
        os.makedirs(d, exist_ok=True)
    os.chmod(base, 0o755)
    port = tlslib.lib.free_port("127.0.0.1")
    with open(os.path.join(conf, "main.cf"), "w") as f:
        f.write(MAIN_CF.format(queue=queue, data=data, cert=pki.good_cert, key=pki.good_key,
                               procs=procs, maillog=os.path.join(base, "maillog"), base=base))
    with open(os.path.join(conf, "master.cf"), "w") as f:
        f.write(MASTER_CF.format(listen=f"127.0.0.1:{port}"))
    pw = pwd.getpwnam("postfix")
    os.chown(data, pw.pw_uid, pw.pw_gid)
    os.chmod(data, 0o700)
    os.chmod(queue, 0o755)
    p = subprocess.run(["/usr/sbin/postfix", "-c", conf, "check"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        sys.exit(f"postfix -c {conf} check failed ({p.returncode}): "
                 f"{(p.stdout + p.stderr).decode(errors='replace')[-2000:]}")
    print(port, pki.ca_cert)


def banner(port, timeout):
    """wait (bounded) for smtpd's 220 banner on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.settimeout(5)
                b = s.recv(512).decode(errors="replace")
                if b.startswith("220 "):
                    s.sendall(b"QUIT\r\n")
                    return
                last = b
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    sys.exit(f"no 220 banner on 127.0.0.1:{port} within {timeout} s (last: {last!r})")


def results(path, n, tls):
    """check the results file; print the distinct "tls" values."""
    bad, seen, count = [], {}, 0
    with open(path, "rb") as f:
        for i, ln in enumerate(f, start=1):
            count += 1
            try:
                d = json.loads(ln)
            except ValueError:
                bad.append(f"line {i}: not JSON: {ln[:200]!r}")
                continue
            t = d.get("tls")
            if d.get("status") != "delivered":
                bad.append(f"line {i}: status {d.get('status')!r}: {ln[:300]!r}")
            elif tls and not (isinstance(t, str) and t.startswith("TLSv")):
                bad.append(f"line {i}: \"tls\" is {t!r}, want \"TLSv...\"")
            elif not tls and t is not None:
                bad.append(f"line {i}: \"tls\" is {t!r} with --tls none")
            seen[t] = seen.get(t, 0) + 1
            if len(bad) >= 5:
                break
    if count != n and len(bad) < 5:
        bad.append(f"{count} result lines, want {n}")
    if bad:
        sys.exit("results " + path + ": " + "; ".join(bad))
    print(" + ".join(str(t) for t in sorted(seen, key=str)))


cmd = sys.argv[2]
if cmd == "setup":
    setup(sys.argv[3], int(sys.argv[4]))
elif cmd == "banner":
    banner(int(sys.argv[3]), float(sys.argv[4]))
elif cmd == "results":
    results(sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1")
else:
    sys.exit(f"unknown helper command {cmd}")
PYEOF
helper() { timeout -k 5 120 "$PY" "$work/helper.py" "$root" "$@"; }

pf="$work/postfix"
maillog="$pf/maillog"

start_postfix() {
	local out procs=$(( 2 * max_conns + 50 ))
	out=$(helper setup "$work" "$procs") || die "Postfix setup failed"
	read -r PORT CA <<<"$out"
	# timeout leads its own process group (no --foreground), master -d stays in
	# it with every daemon it starts: one group to stop.
	MAIL_CONFIG=$pf/conf timeout -k 5 "$BENCH_LIFETIME" "$MASTER" -c "$pf/conf" -d \
		>"$pf/master.out" 2>&1 </dev/null &
	pf_pgid=$!
	helper banner "$PORT" 30 ||
		die "Postfix smtpd did not start on $HOST:$PORT: $(tail -c 1500 "$pf/master.out" "$maillog" 2>/dev/null)"
	kill -0 "$pf_pgid" 2>/dev/null || die "Postfix master exited: $(tail -c 1500 "$pf/master.out")"
}

# pf_ticks: set TICKS to the CPU ticks Postfix's process group used so far
# (utime + stime + cutime + cstime of each member; zombies included).
pf_ticks() {
	TICKS=$(cat /proc/[0-9]*/stat 2>/dev/null | awk -v g="$pf_pgid" '{
		s = $0; sub(/^.*\) /, "", s); n = split(s, f, " ")
		if (n > 14 && f[3] == g) t += f[12] + f[13] + f[14] + f[15]
	} END { printf "%d", t }')
}

# delayed_acks: set DACKS to the kernel's TcpExt DelayedACKs counter (every
# socket of the machine; during a run, almost all of them are volley's and
# Postfix's). Each one is a delayed-ACK timer (~40 ms) that fired; with one
# recipient per transaction over STARTTLS, one per transaction was the
# Nagle/delayed-ACK stall described in docs/PERFORMANCE.md.
delayed_acks() {
	DACKS=$(awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 }
		else for (i = 1; i <= NF; i++) if (k[i] == "DelayedACKs") print $i }' /proc/net/netstat)
	[[ -n $DACKS ]] || DACKS=0
}

queue_files() { # files in Postfix's queue (every queue but defer/bounce logs)
	find "$pf/queue/incoming" "$pf/queue/active" "$pf/queue/deferred" "$pf/queue/hold" \
		"$pf/queue/maildrop" -type f 2>/dev/null | wc -l
}

# wait_drained N LOGOFF: wait until Postfix logged N "status=sent" lines
# after offset LOGOFF of its log and its queue is empty; fail on any other
# delivery status. Sets SENT.
wait_drained() {
	local n=$1 off=$2 deadline=$(( SECONDS + DRAIN_TIMEOUT )) other q
	while q=$(queue_files); (( q > 0 )); do
		(( SECONDS < deadline )) || die "Postfix did not drain within ${DRAIN_TIMEOUT}s: $q queue files left"
		kill -0 "$pf_pgid" 2>/dev/null || die "Postfix is gone"
		sleep 0.1
	done
	while :; do
		read -r SENT other < <(tail -c +"$(( off + 1 ))" "$maillog" 2>/dev/null | awk '
			/ status=sent / { s++; next } / status=/ { o++ }
			END { printf "%d %d\n", s, o }')
		(( other == 0 )) || die "Postfix logged $other deliveries that are not status=sent: $(tail -c +"$(( off + 1 ))" "$maillog" | grep ' status=' | grep -v ' status=sent ' | head -n 3)"
		(( SENT >= n )) && break
		(( SECONDS < deadline )) || die "Postfix logged only $SENT of $n status=sent lines within ${DRAIN_TIMEOUT}s"
		sleep 0.2
	done
	(( SENT == n )) || die "Postfix logged $SENT status=sent lines, want $n"
	grep -E '(fatal|panic|warning):' "$maillog" | grep -v 'TLS library problem' | head -n 3 >"$work/pf.warn"
	[[ -s $work/pf.warn ]] && log "Postfix warnings: $(cat "$work/pf.warn")"
	: >"$maillog"      # postlogd appends (O_APPEND): truncating is safe
}

# --- inputs -----------------------------------------------------------------

# The message: what smtp-source -l SIZE sends (bench/lib.sh, as bench/relay.sh).
make_message "$SIZE" "$work/msg.eml"

rcpts_for() { if (( $1 == 1 )); then echo "$MSGS"; else echo "$RCPTS"; fi; }

for g in $GROUPINGS; do
	n=$(rcpts_for "$g")
	[[ -f $work/job.$n ]] && continue
	{
		printf '#volley-job 1\nfrom: %s\nmessage: msg.eml\n\n' "$FROM"
		seq -f 'u%.0f@example.org' 1 "$n"
	} >"$work/job.$n"
done

# --- one measured run -------------------------------------------------------

# measure ROW GROUPING CONNS N: one volley run; sets M_* (see the CSV header).
measure() {
	local row=$1 g=$2 conns=$3 n=$4
	local res="$work/results.jsonl" err="$work/run.err" tfile="$work/run.time"
	local tls_args t0 t1 t2 p0 p1 b0 b1 d0 d1 rc logoff user sys
	if [[ $row == tls ]]; then
		tls_args=(--tls "$TLS_MODE")
		[[ $TLS_MODE == verify ]] && tls_args+=(--ca-file "$CA")
	else
		tls_args=(--tls none)
	fi
	rm -f "$res"
	# shellcheck disable=SC2206
	local cmd=("$VOLLEY" send --relay "$HOST:$PORT" "${tls_args[@]}" --connections "$conns"
		--max-recipients "$g" --results "$res" --force --quiet $VOLLEY_ARGS "$work/job.$n")
	kill -0 "$pf_pgid" 2>/dev/null || die "Postfix is gone"
	wait_quiet
	logoff=$(stat -c %s "$maillog" 2>/dev/null || echo 0)
	pf_ticks; p0=$TICKS
	busy_ticks; b0=$BUSY
	delayed_acks; d0=$DACKS
	t0=$(date +%s%N)
	timeout -k 5 "$RUN_TIMEOUT" "$TIME" -o "$tfile" -f '%e %U %S' "${cmd[@]}" \
		>"$work/run.out" 2>"$err" </dev/null &
	child=$!
	wait "$child"; rc=$?
	child=
	t1=$(date +%s%N)
	pf_ticks; p1=$TICKS
	busy_ticks; b1=$BUSY
	delayed_acks; d1=$DACKS
	(( rc == 124 || rc == 137 )) && die "$row g=$g c=$conns: timed out after ${RUN_TIMEOUT}s: $(tail -n 3 "$err")"
	(( rc == 0 )) || die "$row g=$g c=$conns: exit status $rc: $(grep -v '^Command exited' "$err" | tail -n 5) ($*)"
	M_TLS=$(helper results "$res" "$n" "$([[ $row == tls ]] && echo 1 || echo 0)") ||
		die "$row g=$g c=$conns: results check failed (${cmd[*]})"
	wait_drained "$n" "$logoff"
	pf_ticks
	t2=$(date +%s%N)
	read -r _ user sys <"$tfile" || die "no timing from $TIME"
	awk -v n="$n" -v t0="$t0" -v t1="$t1" -v u="$user" -v s="$sys" -v hz="$clk_tck" \
		-v p="$(( p1 - p0 ))" -v pd="$(( TICKS - p0 ))" -v b="$(( b1 - b0 ))" \
		-v t2="$t2" -v da="$(( d1 - d0 ))" -v g="$g" 'BEGIN {
		w = (t1 - t0) / 1e9; c = u + s
		other = 100 * (b / hz - c - p / hz) / w; if (other < 0) other = 0
		printf "%.3f %.2f %.0f %.2f %.1f %.1f %.2f %.1f %.2f %.2f\n", w, c, n / w, 1e6 * c / n,
			100 * c / w, 100 * p / hz / w, 1e6 * pd / hz / n, other, (t2 - t1) / 1e9,
			da / (n / g)
	}' >"$work/m"
	read -r M_WALL M_CPU M_RATE M_CPUMSG M_VPCT M_PPCT M_PMSG M_OTHER M_DRAIN M_DACK <"$work/m"
}

# --- main -------------------------------------------------------------------

start_postfix
log "Postfix $(postconf -h mail_version 2>/dev/null) smtpd on $HOST:$PORT (process group $pf_pgid), work dir $work"
log "$ncpu CPUs, kernel $(uname -r); volley: $VOLLEY; TLS: --tls $TLS_MODE"

runs="$work/runs.csv"
echo "row,grouping,connections,run,rcpts,wall_s,cpu_s,msgs_per_s,cpu_us_per_msg,volley_cpu_pct,postfix_cpu_pct,postfix_cpu_us_per_msg_drained,other_cpu_pct,drain_s,delayed_acks_per_txn,tls" >"$runs"
rows=(plain tls)
start=$(date +%s)
for g in $GROUPINGS; do
	n=$(rcpts_for "$g")
	for conns in $CONNECTIONS; do
		for (( r = 1; r <= RUNS; r++ )); do
			# alternate which row goes first
			for (( k = 0; k < 2; k++ )); do
				row=${rows[(k + r - 1) % 2]}
				measure "$row" "$g" "$conns" "$n"
				line="$row,$g,$conns,$r,$n,$M_WALL,$M_CPU,$M_RATE,$M_CPUMSG,$M_VPCT,$M_PPCT,$M_PMSG,$M_OTHER,$M_DRAIN,$M_DACK,${M_TLS//,/;}"
				echo "$line" >>"$runs"
				log "$line"
				sleep 1
			done
		done
	done
done
elapsed=$(( $(date +%s) - start ))
[[ -n $RAW ]] && cp "$runs" "$RAW"

# --- report -----------------------------------------------------------------

col() { # ROW GROUPING CONNS FIELD -> median
	awk -F, -v k="$1" -v g="$2" -v c="$3" -v f="$4" \
		'NR > 1 && $1 == k && $2 == g && $3 == c { print $f }' "$runs" | median
}
cipher=$(awk -F, 'NR > 1 && $1 == "tls" { print $16 }' "$runs" | sort -u | paste -sd, -)

echo
echo "volley plaintext vs STARTTLS (--tls $TLS_MODE) -> Postfix $(postconf -h mail_version 2>/dev/null) smtpd (discard) on 127.0.0.1;"
echo "$ncpu CPUs shared by volley and Postfix, $(uname -r); ${SIZE}-octet body; median of $RUNS runs; $elapsed s in all"
echo
echo "| row | rcpts/txn | connections | rcpts/run | msgs/s | volley CPU µs/msg | volley CPU % | Postfix CPU % | Postfix CPU µs/msg (to drained) | other CPU % | delayed ACKs /txn | msgs/s TLS/plain | CPU/msg TLS/plain |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for g in $GROUPINGS; do
	n=$(rcpts_for "$g")
	for conns in $CONNECTIONS; do
		prate=$(col plain "$g" "$conns" 8); pcpu=$(col plain "$g" "$conns" 9)
		for row in "${rows[@]}"; do
			rate=$(col "$row" "$g" "$conns" 8); cpu=$(col "$row" "$g" "$conns" 9)
			label=plaintext
			[[ $row == tls ]] && label="STARTTLS ($cipher)"
			ratios=$(awk -v k="$row" -v r="$rate" -v pr="$prate" -v c="$cpu" -v pc="$pcpu" 'BEGIN {
				if (k == "plain") { print "1 | 1"; exit }
				a = (pr > 0) ? sprintf("**%.2fx**", r / pr) : "-"
				b = (pc > 0) ? sprintf("**%.2fx**", c / pc) : "-"
				print a " | " b }')
			printf '| %s | %s | %s | %s | %.0f | %.2f | %.0f | %.0f | %.0f | %.0f | %.2f | %s |\n' \
				"$label" "$g" "$conns" "$n" "$rate" "$cpu" "$(col "$row" "$g" "$conns" 10)" \
				"$(col "$row" "$g" "$conns" 11)" "$(col "$row" "$g" "$conns" 12)" \
				"$(col "$row" "$g" "$conns" 13)" "$(col "$row" "$g" "$conns" 15)" "$ratios"
		done
	done
done
echo
echo "msgs/s: recipients per second of volley's run (with 100 rcpts/txn: recipients, not messages);"
echo "CPU µs/msg: per recipient. CPU %: % of one core over volley's run ($ncpu cores = $(( 100 * ncpu ))%)."
echo "Postfix: every process of its group (smtpd, cleanup, qmgr, trivial-rewrite, discard, postlogd, master...);"
echo "'to drained': from the start of the run until its queue is empty. delayed ACKs /txn: the kernel's"
echo "TcpExt DelayedACKs over the run per transaction (each one: a ~40 ms delayed-ACK timer fired)."
echo "Ratios: STARTTLS / plaintext, same cell (CPU/msg: volley's; lower is better)."
