#!/usr/bin/python3
"""test_hostile.py - volley send --relay against hostile and broken SMTP servers.

Each case starts hostile_server.py (one misbehaviour per run, see its
docstring) on a free loopback port, sends a small job to it with
--max-retry-time 0 (no retries within the run) and a small --timeout-scale,
and checks that volley:
  - exits by itself, with status 0, without a sanitizer report;
  - writes exactly one result line per recipient, with the right status
    (deferred for resets, timeouts, garbage and protocol violations; never
    delivered when the server vanished after the final dot without replying);
  - says why in "reply" (the timeout, the reset or closed connection, the
    bad reply), and did not spend its deadline on what it could see at once;
  - kept its peak RSS under lib.PEAK_RSS_LIMIT_KIB (not checked under ASan);
and, from the server's record, that the misbehaviour really happened at the
intended step and that volley sent nothing it should not have (no message
content after a refused DATA).

Cases: longline (greeting / EHLO / MAIL), endless multi-line replies (EHLO /
greeting), binary garbage (greeting / MAIL), unsolicited replies (greeting /
mid-pipeline / a "250" with the 354, before the content), a TCP reset at
each step (accept, greeting, EHLO, MAIL, RCPT, DATA, content, final dot,
after the 250 to the dot), a reset at the final dot with two pipelined
transactions in flight, a silent server, a one-octet-per-second drip, 250
instead of 354, a close right after 354, and the "ms" key of a recipient
whose connection failed before any transaction.
"""
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (PEAK_RSS_LIMIT_KIB, SANITIZE, Failure, HostileServer,  # noqa: E402
                 check, check_eq, check_one_result_per_line, check_summary, rcpt_lines,
                 read_results, run_cases, run_volley_measured, statuses, tmpdir, write_job)

MESSAGE = (b"From: News <news@example.com>\n"
           b"Subject: hostile servers\n"
           b"\n"
           b"Hello from the hostile-server test.\n")

# Large enough that the content arrives in several reads: a reset "during the content".
BIG_MESSAGE = (b"From: News <news@example.com>\nSubject: big\n\n" +
               b"".join(b"line %06d of a long message, padded to be long enough .....\n" % i
                        for i in range(5000)))

SCALE = "0.005"          # greeting/command 1.5 s, DATA 0.6 s, block 0.9 s, dot 3 s
# (--retry-initial 100ms: the pauses after a 421 or a failed destination stay short.)
RECIPIENTS = 4
RESET_WORDS = re.compile(r"reset|closed|broken pipe", re.I)


def hostile(mode, step="", *, want="deferred", reply_re=None, pipelining=True,
            message=MESSAGE, n=RECIPIENTS, extra=(), max_seconds=10.0, label=None):
    """hostile - run a job against one hostile server; check the common promises.

    want: the status every recipient must have, or a tuple of acceptable ones.
    Returns (results by line, server, seconds) for the case's own checks."""
    label = label or f"{mode} {step}".strip()
    with tmpdir() as d:
        job = write_job(d, [f"h{i}@example.org" for i in range(n)], message)
        res = os.path.join(d, "out.jsonl")
        with HostileServer(d, mode, step, pipelining=pipelining) as srv:
            rc, out, err, rss, took = run_volley_measured(
                ["send", "--relay", srv.relay, "--max-retry-time", "0", "--retry-initial",
                 "100ms", "--timeout-scale", SCALE, "--connections", "2", "--results", res]
                + list(extra) + [job],
                timeout=60)
        check_eq(rc, 0, f"{label}: exit status")
        results = read_results(res)
        by_line = check_one_result_per_line(results, rcpt_lines(job))
        check_summary(out, results, res)
        if isinstance(want, str):
            check_eq(statuses(results), {want: n}, f"{label}: every recipient {want}")
        else:
            check(set(statuses(results)) <= set(want), f"{label}: every recipient "
                  f"{' or '.join(want)}", f"{statuses(results)}, e.g. {results[:1]}")
        if want == "deferred":
            coded = [r for r in results if r["code"] is not None and r["code"] < 400]
            check(not coded, f"{label}: no deferred result carries a 2xx/3xx code",
                  f"{coded[:2]}")
        if reply_re is not None:
            bad = [r["reply"] for r in results if not re.search(reply_re, r["reply"], re.I)]
            check(not bad, f"{label}: every reply matches /{reply_re}/", f"{bad[:3]}")
        wrong = [r for r in results if r["server"] != srv.server_name or r["attempts"] < 1]
        check(not wrong, f"{label}: server is {srv.server_name}, attempts >= 1",
              f"{wrong[:2]}")
        check(took < max_seconds, f"{label}: volley finished within {max_seconds} s",
              f"{took:.1f} s")
        if SANITIZE:
            print(f"     (peak RSS not checked under ASan: {rss} KiB)")
        else:
            check(rss < PEAK_RSS_LIMIT_KIB, f"{label}: peak RSS {rss // 1024} MiB under "
                  f"{PEAK_RSS_LIMIT_KIB // 1024} MiB", f"{rss} KiB")
        return by_line, srv, took


def no_mail_sent(srv, label):
    """no_mail_sent - no transaction was started: the server got no MAIL."""
    check(not any(c.startswith("MAIL") for c in srv.commands()),
          f"{label}: no MAIL after the broken EHLO reply", f"{srv.commands()}")


def no_content_sent(srv, label):
    """no_content_sent - the server got no message content, neither as content nor as commands."""
    check_eq(srv.events("content"), [], f"{label}: no message content reached the server")
    leaked = [c for c in srv.commands()
              if c.split(" ", 1)[0].upper() not in ("EHLO", "HELO", "MAIL", "RCPT", "DATA",
                                                     "RSET", "NOOP", "QUIT")]
    check(not leaked, f"{label}: only SMTP commands were sent (no content taken as commands)",
          f"{leaked[:5]}")


def reset_at(step, want="deferred", message=MESSAGE):
    """reset_at - a TCP reset at step (lockstep server): deferred, reason names the reset."""
    by_line, srv, _ = hostile("reset", step, want=want, pipelining=False, message=message,
                              reply_re=None if want == "delivered" else RESET_WORDS.pattern,
                              label=f"reset at {step}")
    resets = srv.events("reset")
    check(resets and all(e["step"] == step for e in resets),
          f"reset at {step}: the server reset the connection at that step",
          f"{resets[:3]}")
    return by_line, srv


# --- over-long lines, endless replies, garbage -------------------------------

def test_longline_greeting():
    """A 100 KB greeting without CRLF: protocol error at once, not a timeout."""
    hostile("longline", "greeting", reply_re=r"^protocol error: .*too long", max_seconds=5)


def test_longline_ehlo():
    """A 100 KB line as the EHLO reply: protocol error, no transaction started."""
    _, srv, _ = hostile("longline", "ehlo", reply_re=r"^protocol error: .*too long",
                        max_seconds=5)
    no_mail_sent(srv, "longline ehlo")


def test_longline_mail():
    """A 3,000-octet reply line to MAIL (sent whole): protocol error, no content sent."""
    _, srv, _ = hostile("longline", "mail", reply_re=r"^protocol error: .*too long",
                        max_seconds=5)
    no_content_sent(srv, "longline mail")


def test_endless_ehlo():
    """Endless "250-" lines to EHLO: protocol error (too many lines), bounded memory."""
    _, srv, _ = hostile("endless", "ehlo", reply_re=r"^protocol error: .*(too long|lines)",
                        max_seconds=5)
    no_mail_sent(srv, "endless ehlo")


def test_endless_greeting():
    """Endless "220-" lines as the greeting: protocol error, not a timeout."""
    _, srv, _ = hostile("endless", "greeting", reply_re=r"^protocol error: .*(too long|lines)",
                        max_seconds=5)
    check_eq(srv.commands(), [], "endless greeting: volley sent no command")


def test_garbage_greeting():
    """4 KB of binary garbage as the greeting: protocol error, valid JSON results."""
    _, srv, _ = hostile("garbage", "greeting", reply_re=r"^protocol error: ", max_seconds=5)
    check_eq(srv.commands(), [], "garbage greeting: volley sent no command")


def test_garbage_mail():
    """"250 " and binary garbage as the reply to MAIL: protocol error, no content sent."""
    _, srv, _ = hostile("garbage", "mail", reply_re=r"^protocol error: ", max_seconds=5)
    no_content_sent(srv, "garbage mail")


# --- replies to commands never sent ------------------------------------------

def test_unsolicited_greeting():
    """Two extra "250" lines with the greeting: protocol error, nothing delivered or sent."""
    _, srv, _ = hostile("unsolicited", "greeting", reply_re=r"^protocol error: ",
                        max_seconds=5)
    no_content_sent(srv, "unsolicited greeting")


def test_unsolicited_pipeline():
    """An extra "250" after the MAIL reply in a pipelined transaction: protocol error."""
    _, srv, _ = hostile("unsolicited", "pipeline", reply_re=r"^protocol error: ",
                        max_seconds=5)
    no_content_sent(srv, "unsolicited pipeline")


def test_unsolicited_dot():
    """A "250" sent with the 354, before any content, then 554 to the dot: never delivered."""
    by_line, srv, _ = hostile("unsolicited", "dot", want=("deferred", "bounced"),
                              max_seconds=5)
    bounced = [r for r in by_line.values() if r["status"] == "bounced"]
    check(all(r["code"] == 554 for r in bounced),
          "unsolicited dot: a bounce carries the server's 554 to the real dot", f"{bounced[:2]}")
    deferred = [r for r in by_line.values() if r["status"] == "deferred"]
    check(all(r["reply"].startswith("protocol error: ") for r in deferred),
          "unsolicited dot: a deferral names the protocol error", f"{deferred[:2]}")


# --- a TCP reset at each step --------------------------------------------------

def test_reset_accept():
    """RST right after accept: deferred, the reason names the reset."""
    reset_at("accept")


def test_reset_greeting():
    """RST 0.2 s after the greeting: deferred."""
    reset_at("greeting")


def test_reset_ehlo():
    """RST on EHLO, before replying: deferred."""
    reset_at("ehlo")


def test_reset_mail():
    """RST on MAIL, before replying: deferred."""
    reset_at("mail")


def test_reset_rcpt():
    """RST on the first RCPT, before replying: deferred."""
    reset_at("rcpt")


def test_reset_data():
    """RST on DATA, before 354: deferred, no content sent."""
    _, srv = reset_at("data")
    check_eq(srv.events("content"), [], "reset at data: no content reached the server")


def test_reset_content():
    """RST in the middle of a large message's content: deferred."""
    _, srv = reset_at("content", message=BIG_MESSAGE)
    partial = srv.events("content")
    check(partial and not any(e["dot"] for e in partial),
          "reset at content: the server had part of the content, not the final dot",
          f"{partial[:3]}")


def test_reset_dot():
    """RST after the final dot, before any reply: deferred (maybe accepted), never delivered."""
    _, srv = reset_at("dot")
    check(any(e["dot"] for e in srv.events("content")),
          "reset at dot: the server had the whole content and the final dot")


def test_reset_dotreply():
    """RST on QUIT, after the 250 to the dot: every recipient stays delivered, once."""
    by_line, srv = reset_at("dotreply", want="delivered")
    bad = [r for r in by_line.values()
           if r["code"] != 250 or r["reply"] != "2.0.0 Ok: queued as HOSTILE"]
    check(not bad, "reset after dot reply: code 250 and the server's reply text", f"{bad[:2]}")
    check(srv.commands().count("QUIT") >= 1, "reset after dot reply: volley said QUIT")


def test_reset_dot_two_transactions():
    """RST at the first dot while a second pipelined transaction waits: all deferred, once."""
    by_line, srv, _ = hostile("reset", "dot", n=5, reply_re=RESET_WORDS.pattern,
                              extra=["--max-recipients", "2", "--threads", "1",
                                     "--connections", "1"],
                              label="reset at dot, two transactions")
    mails = [c for c in srv.commands() if c.startswith("MAIL")]
    check(len(mails) >= 2, "reset at dot, two transactions: a second MAIL was pipelined",
          f"{srv.commands()}")


# --- timeouts: silent, drip --------------------------------------------------

def test_silent():
    """A server that accepts and never speaks: deferred by the greeting deadline."""
    _, srv, took = hostile("silent", reply_re=r"timed out", max_seconds=8)
    check_eq(srv.commands(), [], "silent: volley sent no command before the greeting")


def test_drip():
    """A greeting dripped one octet per second: the step deadline is not reset by each octet."""
    _, srv, took = hostile("drip", reply_re=r"timed out", max_seconds=8)
    check_eq(srv.commands(), [], "drip: the greeting never completed, no command sent")


# --- DATA misbehaviour -------------------------------------------------------

def test_data250():
    """250 instead of 354 to DATA: protocol error; the content is never sent as commands."""
    hostile_res = hostile("data250", reply_re=r"^protocol error: .*354", max_seconds=5)
    no_content_sent(hostile_res[1], "data250")


def test_close354():
    """An orderly close right after 354: deferred, the reason names the closed connection."""
    hostile("close354", reply_re=RESET_WORDS.pattern, max_seconds=5)


# --- documented result keys ----------------------------------------------------

def test_ms_after_connection_failure():
    """docs/results-format.md: "ms" is null only when never attempted; a reset counts."""
    by_line, _ = reset_at("accept")
    nulls = [r for r in by_line.values() if r["attempts"] >= 1 and r["ms"] is None]
    check(not nulls, "reset at accept: ms is a number when attempts >= 1 (ms counts from "
          "the connection attempt, docs/results-format.md)", f"{nulls[:2]}")


if __name__ == "__main__":
    try:
        run_cases("test_hostile", [
            test_longline_greeting, test_longline_ehlo, test_longline_mail,
            test_endless_ehlo, test_endless_greeting, test_garbage_greeting,
            test_garbage_mail, test_unsolicited_greeting, test_unsolicited_pipeline,
            test_unsolicited_dot,
            test_reset_accept, test_reset_greeting, test_reset_ehlo, test_reset_mail,
            test_reset_rcpt, test_reset_data, test_reset_content, test_reset_dot,
            test_reset_dotreply, test_reset_dot_two_transactions, test_silent, test_drip,
            test_data250, test_close354, test_ms_after_connection_failure])
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
