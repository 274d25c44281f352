#!/usr/bin/python3
"""test_relay_sink.py - volley send --relay against Postfix smtp-sink.

Cases: bulk delivery with PIPELINING advertised and without (-p), every
recipient delivered exactly once and every transaction dumped by the sink
carrying exactly the normalised message; HELO fallback when EHLO is refused
(-e); an 8-bit message to a server without 8BITMIME (-8) fails every
recipient and sends nothing; connection refused defers every recipient.
"""
import os
import sys
import time
from collections import Counter

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Failure, SmtpSink, angle, check, check_eq, check_one_result_per_line,  # noqa: E402
                 check_summary, free_port, normalise, rcpt_lines, read_results,
                 run_cases, run_volley, statuses, tmpdir, write_job)

SENDER = "news@example.com"

# LF line ends (volley normalises), lines that need dot-stuffing, a lone ".".
MESSAGE = (b"From: News <news@example.com>\n"
           b"To: undisclosed-recipients:;\n"
           b"Subject: spring newsletter\n"
           b"Message-ID: <spring-1@example.com>\n"
           b"\n"
           b"Hello,\n"
           b".a line starting with a dot\n"
           b"..two dots\n"
           b".\n"
           b"the line above was a lone dot\n"
           b"bye\n")

EIGHTBIT = "Subject: Gr\u00fc\u00dfe\n\nGr\u00fc\u00dfe aus K\u00f6ln\n".encode("utf-8")


def addresses(n):
    return [f"user{i:06d}@example{i % 7}.org" for i in range(n)]


def bulk(sink_options, label, n=5000, connections=20):
    """bulk - n recipients through smtp-sink with sink_options; check everything."""
    with tmpdir() as d:
        addrs = addresses(n)
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        lines = rcpt_lines(job)
        res_path = os.path.join(d, "out.jsonl")
        dump_dir = os.path.join(d, "dumps")
        with SmtpSink(d, options=sink_options, dump_dir=dump_dir) as sink:
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--connections",
                                       str(connections), "--results", res_path, job],
                                      timeout=180)
            check_eq(rc, 0, f"{label}: volley exit status")
        results = read_results(res_path)
        check_one_result_per_line(results, lines)
        want_rcpt = {ln: raw.decode() for ln, raw in lines.items()}
        wrong = [r for r in results if r["rcpt"] != want_rcpt[r["line"]]]
        check(not wrong, f"{label}: each result names the address of its line",
              f"{len(wrong)} wrong, e.g. {wrong[:2]}")
        check_eq(statuses(results), {"delivered": n}, f"{label}: statuses")
        bad = [r for r in results if not (r["code"] == 250 and r["server"] == sink.server_name
                                          and r["attempts"] == 1)]
        check(not bad, f"{label}: every result has code 250, server {sink.server_name}, "
              f"attempts 1", f"{len(bad)} differ, e.g. {bad[:2]}")
        check_summary(out, results, res_path)

        dumps = sink.dumps()
        check(len(dumps) >= -(-n // 100), f"{label}: sink dumped at least {-(-n // 100)} "
              f"transactions (default --max-recipients 100)", f"{len(dumps)} dumps")
        check_eq(sink.messages(), len(dumps), f"{label}: sink's message counter equals "
                 f"its dump files")
        seen = Counter(r for t in dumps for r in t["rcpts"])
        want = Counter(angle(a) for a in addrs)
        check(seen == want, f"{label}: the sink got every recipient exactly once",
              f"missing {list((want - seen).keys())[:5]}, extra/duplicated "
              f"{list((seen - want).items())[:5]}")
        big = [len(t["rcpts"]) for t in dumps if len(t["rcpts"]) > 100]
        check(not big, f"{label}: no transaction has more than 100 recipients", f"{big[:5]}")
        body = normalise(MESSAGE).replace(b"\r\n", b"\n")
        badbody = [t["file"] for t in dumps if t["body"] != body]
        check(not badbody, f"{label}: every transaction carried exactly the normalised "
              f"message", f"{len(badbody)} differ, e.g. {badbody[:3]}")
        badmail = [t["mail"] for t in dumps
                   if t["mail"].split(" ")[0] != angle(SENDER)]
        check(not badmail, f"{label}: MAIL FROM is <{SENDER}>", f"{badmail[:3]}")
        badproto = [t["proto"] for t in dumps if t["proto"] != "ESMTP"]
        check(not badproto, f"{label}: EHLO was used (ESMTP)", f"{badproto[:3]}")


def test_pipelining_on():
    bulk([], "pipelining")


def test_pipelining_off():
    bulk(["-p"], "no pipelining")


def test_helo_fallback():
    """-e: EHLO is refused, volley must fall back to HELO (and use --helo)."""
    with tmpdir() as d:
        addrs = addresses(50)
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        res_path = os.path.join(d, "out.jsonl")
        with SmtpSink(d, options=["-e"], dump_dir=os.path.join(d, "dumps")) as sink:
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--helo",
                                       "volley.test", "--connections", "3", "--results",
                                       res_path, job], timeout=60)
            check_eq(rc, 0, "HELO fallback: volley exit status")
        results = read_results(res_path)
        check_one_result_per_line(results, rcpt_lines(job))
        check_eq(statuses(results), {"delivered": 50}, "HELO fallback: statuses")
        dumps = sink.dumps()
        check_eq(Counter(r for t in dumps for r in t["rcpts"]),
                 Counter(angle(a) for a in addrs), "HELO fallback: sink got each recipient once")
        check_eq(sorted({t["proto"] for t in dumps}), ["SMTP"],
                 "HELO fallback: transactions used plain SMTP (HELO)")
        check_eq(sorted({t["helo"] for t in dumps}), ["volley.test"],
                 "HELO fallback: HELO argument is the --helo name")
        body = normalise(MESSAGE).replace(b"\r\n", b"\n")
        check(all(t["body"] == body for t in dumps), "HELO fallback: bodies exact")


def test_eightbit_without_8bitmime():
    """-8: no 8BITMIME; an 8-bit message must not be sent at all."""
    with tmpdir() as d:
        addrs = addresses(20)
        job = write_job(d, addrs, EIGHTBIT, from_=SENDER)
        res_path = os.path.join(d, "out.jsonl")
        with SmtpSink(d, options=["-8"], dump_dir=os.path.join(d, "dumps")) as sink:
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--connections", "2",
                                       "--results", res_path, job], timeout=60)
            check_eq(rc, 0, "8-bit to -8 sink: volley exit status")
        results = read_results(res_path)
        check_one_result_per_line(results, rcpt_lines(job))
        check_eq(statuses(results), {"failed": 20}, "8-bit to -8 sink: all failed")
        nomention = [r["reply"] for r in results if "8BITMIME" not in r["reply"]]
        check(not nomention, "8-bit to -8 sink: every reason mentions 8BITMIME",
              f"{nomention[:3]}")
        check_eq(len(sink.dumps()), 0, "8-bit to -8 sink: sink dumped no transaction")
        check_eq(sink.messages(), 0, "8-bit to -8 sink: sink counted no message")


def test_connection_refused():
    """Nothing listens on the port: every recipient is retried (backoff 100 ms,
    then 200, 400 ms, +-25%) until --max-retry-time, then deferred; exit 0."""
    with tmpdir() as d:
        port = free_port()
        job = write_job(d, addresses(10), MESSAGE, from_=SENDER)
        res_path = os.path.join(d, "out.jsonl")
        t0 = time.monotonic()
        rc, out, err = run_volley(["send", "--relay", f"127.0.0.1:{port}", "--connections",
                                   "2", "--results", res_path, "--retry-initial", "100ms",
                                   "--max-retry-time", "600ms", job], timeout=90)
        took = time.monotonic() - t0
        check_eq(rc, 0, "connection refused: volley exit status")
        results = read_results(res_path)
        check_one_result_per_line(results, rcpt_lines(job))
        check_eq(statuses(results), {"deferred": 10}, "connection refused: all deferred")
        tries = sorted({r["attempts"] for r in results})
        check(all(3 <= a <= 5 for a in tries), "connection refused: retried 3-5 times in 600 ms "
              "(backoff 100/200/400 ms +-25%, last try at the limit)", f"attempts {tries}")
        check(0.5 <= took < 30, "connection refused: the run lasted about --max-retry-time",
              f"{took:.2f} s")
        noaddr = [r["reply"] for r in results if "127.0.0.1" not in r["reply"]]
        check(not noaddr, "connection refused: every reason names 127.0.0.1", f"{noaddr[:3]}")
        coded = [r for r in results if r["code"] is not None]
        check(not coded, "connection refused: no SMTP code (null)", f"{coded[:2]}")
        check(all(r["attempts"] >= 1 for r in results),
              "connection refused: attempts >= 1 for every recipient")


if __name__ == "__main__":
    try:
        run_cases("test_relay_sink", [test_pipelining_on, test_pipelining_off,
                                      test_helo_fallback, test_eightbit_without_8bitmime,
                                      test_connection_refused])
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
