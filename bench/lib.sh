# bench/lib.sh - what the benchmark scripts share; sourced, never run.
#
# The sourcing script sets BENCH (its name, for messages) first, and, before
# calling wait_quiet, QUIET_PCT, QUIET_WAIT and clk_tck.

# log / die - messages on stderr, named after the script; die exits 1.
log() { printf '%s: %s\n' "$BENCH" "$*" >&2; }
die() { printf '%s: FAILED: %s\n' "$BENCH" "$*" >&2; exit 1; }

# is_uint - a positive integer.
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && (( $1 > 0 )); }

# busy_ticks: set BUSY to the CPU ticks all CPUs spent busy so far
# (/proc/stat: user nice system irq softirq steal; not idle, not iowait).
busy_ticks() {
	local cpu user nice system irq softirq steal
	read -r cpu user nice system _ _ irq softirq steal _ </proc/stat
	BUSY=$(( user + nice + system + irq + softirq + steal ))
}

# wait_quiet: the machine may be shared. Before a run, wait (at most
# QUIET_WAIT seconds) until the other processes use less than QUIET_PCT % of
# one core over half a second; then run anyway, but say so.
wait_quiet() {
	local waited=0 b0 b1 pct
	while :; do
		busy_ticks; b0=$BUSY
		sleep 0.5
		busy_ticks; b1=$BUSY
		pct=$(( (b1 - b0) * 100 * 2 / clk_tck ))
		(( pct < QUIET_PCT )) && return 0
		if (( waited >= QUIET_WAIT * 2 )); then
			log "warning: the machine is busy (${pct}% of a core used by others); measuring anyway"
			return 0
		fi
		waited=$(( waited + 1 ))
	done
}

# median: numbers on stdin -> their median ("nan" for none).
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# make_message SIZE FILE: the message smtp-source -l SIZE sends, octet for
# octet in length: its headers (From, To, Date, Message-Id <%04x.%04x.%04x@HOST>),
# then lines of 78 characters + CRLF and a last line of the remaining 1-80
# characters + CRLF (SIZE + 2 octets of body; measured against smtp-source on
# the wire), so that the sink reads as many octets per message from both.
make_message() {  # uses $FROM and $TO
	awk -v size="$1" -v from="$FROM" -v to="$TO" -v host="$(hostname)" 'BEGIN {
		printf "From: <%s>\r\nTo: <%s>\r\n", from, to
		printf "Date: Tue, 24 Nov 2026 19:33:52 +0000 (UTC)\r\n"
		printf "Message-Id: <0b0e.0001.0000@%s>\r\n\r\n", host
		x = "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
		k = int((size - 1) / 80)
		for (i = 1; i <= k; i++)
			printf "%d%s\r\n", i % 10, substr(x, 1, 77)
		printf "%s\r\n", substr(x, 1, size - 80 * k)
	}' >"$2"
}
