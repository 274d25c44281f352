#!/usr/bin/python3
"""test_faults.py - fault injection with Postfix smtp-sink: volley send --relay against a
server that says 421 and hangs up (-Q), hangs up without a word (-q), refuses
softly (-r, -b) or hard (-f, -B), or answers too late (-W command:delay, -w).

Each case runs smtp-sink on a free loopback port with one fault, sends a small
job with --max-retry-time 0 (no retries within the run) and checks: exit
status 0, no sanitizer report, exactly one result line per recipient (also
when the fault ends several sessions in a row), the status (421/4xx/lost
connection/timeout: deferred; 5xx: bounced; a lost or late reply to the
final dot is never "delivered"), the code and enhanced code, and that the
server's own reply text is in the result (or, without a reply, a reason
naming the closed connection or the timeout). A control case shows that a
delay under the deadline still delivers.

smtp-sink syntax used (Postfix 3.7): -Q/-q/-r/-f take a comma-separated
list of commands (EHLO, MAIL, RCPT, DATA, "." for the end of data); -W takes
command:seconds; -w seconds delays the reply to DATA; -b/-B set the soft and
hard reject replies; -r and -f imply -p (no PIPELINING). The delay cases
run smtp-sink with -p: with PIPELINING, smtp-sink 3.7 answers the commands
queued behind a delayed one (503 "need MAIL command") before the delayed
reply itself, i.e. out of order, which no client can untangle.
"""
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Failure, SmtpSink, check, check_eq, check_one_result_per_line,  # noqa: E402
                 check_summary, parse_sink_dump, rcpt_lines, read_results, run_cases,
                 run_volley, statuses, tmpdir, write_job)

MESSAGE = (b"From: News <news@example.com>\n"
           b"Subject: fault injection\n"
           b"\n"
           b"Hello from test_faults.\n")

CLOSED = r"connection closed|reset|broken pipe"

# A 421 pauses new connections to the destination for --retry-initial (default
# 1 min, doubling per 421 in a row; docs/delivery.md), also with
# --max-retry-time 0: keep it short so that sessions after a 421 come quickly.
RETRY_INITIAL = "100ms"


def complete_dumps(dump_dir):
    """complete_dumps - smtp-sink's dumped transactions (not the empty files of aborted ones)."""
    out = []
    for name in sorted(os.listdir(dump_dir)) if os.path.isdir(dump_dir) else []:
        with open(os.path.join(dump_dir, name), "rb") as f:
            data = f.read()
        if data:
            out.append(parse_sink_dump(data, name))
    return out


def fault(options, label, want, *, code=None, enhanced=None, reply_re=None, n=4,
          scale="0.01", extra=(), max_seconds=10.0):
    """fault - one job through smtp-sink with options; check status, code and reply.

    Returns (results by line, the transactions the sink dumped, seconds volley took)."""
    with tmpdir() as d:
        job = write_job(d, [f"f{i}@example.org" for i in range(n)], MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with SmtpSink(d, options=options, dump_dir=os.path.join(d, "dumps")) as sink:
            t0 = time.monotonic()
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--max-retry-time", "0",
                                       "--retry-initial", RETRY_INITIAL, "--timeout-scale",
                                       scale, "--connections", "2", "--results", res]
                                      + list(extra) + [job], timeout=60)
            took = time.monotonic() - t0
        dumps = complete_dumps(sink.dump_dir)
        check_eq(rc, 0, f"{label}: exit status")
        results = read_results(res)
        by_line = check_one_result_per_line(results, rcpt_lines(job))
        check_summary(out, results, res)
        check_eq(statuses(results), {want: n}, f"{label}: every recipient {want}")
        if code is not None:
            bad = [r for r in results if r["code"] != code]
            check(not bad, f"{label}: code {code}", f"{bad[:2]}")
        if enhanced is not None:
            bad = [r for r in results if r["enhanced"] != enhanced]
            check(not bad, f"{label}: enhanced {enhanced}", f"{bad[:2]}")
        if reply_re is not None:
            bad = [r["reply"] for r in results if not re.search(reply_re, r["reply"], re.I)]
            check(not bad, f"{label}: every reply matches /{reply_re}/", f"{bad[:3]}")
        wrong = [r for r in results if r["server"] != sink.server_name or r["attempts"] < 1]
        check(not wrong, f"{label}: server is {sink.server_name}, attempts >= 1", f"{wrong[:2]}")
        check(took < max_seconds, f"{label}: volley finished within {max_seconds} s",
              f"{took:.1f} s")
        return by_line, dumps, took


# --- 421 and disconnect (-Q) ---------------------------------------------------

def test_421_at_ehlo():
    """-Q EHLO: 421 to EHLO: deferred with the server's 421 and its text."""
    fault(["-Q", "EHLO"], "421 at EHLO", "deferred", code=421, enhanced="4.0.0",
          reply_re=r"Server closing connection")


def test_421_at_mail():
    """-Q MAIL: 421 to MAIL: deferred with the server's 421 and its text."""
    fault(["-Q", "MAIL"], "421 at MAIL", "deferred", code=421, enhanced="4.0.0",
          reply_re=r"Server closing connection")


def test_421_at_rcpt_reconnects():
    """-Q RCPT, 2 recipients per transaction: every session ends in 421, each recipient once."""
    fault(["-Q", "RCPT"], "421 at RCPT", "deferred", code=421, enhanced="4.0.0",
          reply_re=r"Server closing connection", n=6,
          extra=["--max-recipients", "2", "--threads", "1", "--connections", "1"])


def test_421_at_dot():
    """-Q .: 421 to the final dot: deferred (not delivered) with the 421."""
    fault(["-Q", "."], "421 at dot", "deferred", code=421, enhanced="4.0.0",
          reply_re=r"Server closing connection")


# --- disconnect without a reply (-q) -------------------------------------------

def test_hangup_at_rcpt():
    """-q RCPT: the server hangs up on RCPT: deferred, the reason names the closed connection."""
    fault(["-q", "RCPT"], "hang-up at RCPT", "deferred", code=None, reply_re=CLOSED)


def test_hangup_at_data():
    """-q DATA: the server hangs up on DATA: deferred, no message counted by the sink."""
    _, dumps, _ = fault(["-q", "DATA"], "hang-up at DATA", "deferred", code=None,
                       reply_re=CLOSED)
    check_eq(len(dumps), 0, "hang-up at DATA: the sink got no message")


def test_hangup_after_dot():
    """-q .: the server took the message and hung up without a reply: deferred, never delivered."""
    _, dumps, _ = fault(["-q", "."], "hang-up after dot", "deferred", code=None,
                       reply_re=CLOSED)
    check(len(dumps) >= 1, "hang-up after dot: the sink did receive the content "
          "(so the message may have been accepted)", f"{len(dumps)} dumps")


# --- soft and hard refusals (-r, -b, -f, -B) -------------------------------------

def test_soft_reject_rcpt():
    """-r RCPT -b '451 4.7.1 ...': every RCPT greylisted: deferred with that reply."""
    fault(["-r", "RCPT", "-b", "451 4.7.1 Greylisted, please try again later"],
          "soft reject at RCPT", "deferred", code=451, enhanced="4.7.1",
          reply_re=r"^4\.7\.1 Greylisted, please try again later$")


def test_soft_reject_mail():
    """-r MAIL: 450 to MAIL: deferred with smtp-sink's default soft reply."""
    fault(["-r", "MAIL"], "soft reject at MAIL", "deferred", code=450, enhanced="4.3.0",
          reply_re=r"^4\.3\.0 Error: command failed$")


def test_soft_reject_dot():
    """-r .: 450 to the final dot: deferred with the server's reply."""
    fault(["-r", "."], "soft reject at dot", "deferred", code=450, enhanced="4.3.0",
          reply_re=r"^4\.3\.0 Error: command failed$")


def test_hard_reject_rcpt():
    """-f RCPT -B '550 5.1.1 ...': every RCPT refused: bounced with that reply."""
    fault(["-f", "RCPT", "-B", "550 5.1.1 No such user here"], "hard reject at RCPT",
          "bounced", code=550, enhanced="5.1.1", reply_re=r"^5\.1\.1 No such user here$")


# --- late replies (-W, -w) against small deadlines ------------------------------

def test_late_ehlo_reply_times_out():
    """-p -W EHLO:3 with the command deadline scaled to 0.6 s: deferred, timed out."""
    fault(["-p", "-W", "EHLO:3"], "late EHLO reply", "deferred", code=None,
          reply_re=r"timed out", scale="0.002", max_seconds=8)


def test_late_rcpt_reply_times_out():
    """-p -W RCPT:3 with the command deadline scaled to 0.6 s: deferred, timed out."""
    fault(["-p", "-W", "RCPT:3"], "late RCPT reply", "deferred", code=None,
          reply_re=r"timed out", scale="0.002", max_seconds=8)


def test_late_data_reply_times_out():
    """-p -w 3 (DATA reply late) with the DATA deadline scaled to 0.24 s: deferred, timed out."""
    _, dumps, _ = fault(["-p", "-w", "3"], "late DATA reply", "deferred", code=None,
                       reply_re=r"timed out", scale="0.002", max_seconds=8)
    check_eq(len(dumps), 0, "late DATA reply: no content was sent after the timeout")


def test_late_dot_reply_times_out():
    """-p -W .:4 with the dot deadline scaled to 1.2 s: deferred (not delivered), timed out."""
    fault(["-p", "-W", ".:4"], "late dot reply", "deferred", code=None, reply_re=r"timed out",
          scale="0.002", max_seconds=8)


def test_delay_within_deadline_delivers():
    """Control: -p -W MAIL:1 with the command deadline scaled to 3 s: every recipient delivered."""
    fault(["-p", "-W", "MAIL:1"], "delay within deadline", "delivered", code=250,
          reply_re=r"^2\.0\.0 Ok", scale="0.01", max_seconds=10)


if __name__ == "__main__":
    try:
        run_cases("test_faults", [
            test_421_at_ehlo, test_421_at_mail, test_421_at_rcpt_reconnects, test_421_at_dot,
            test_hangup_at_rcpt, test_hangup_at_data, test_hangup_after_dot,
            test_soft_reject_rcpt, test_soft_reject_mail, test_soft_reject_dot,
            test_hard_reject_rcpt, test_late_ehlo_reply_times_out,
            test_late_rcpt_reply_times_out, test_late_data_reply_times_out,
            test_late_dot_reply_times_out, test_delay_within_deadline_delivers])
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
