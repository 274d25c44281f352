#!/usr/bin/python3
"""test_scale_1m.py - 1,000,000 recipients through smtp-sink, --connections 100.

Every job line gets exactly one result, every recipient is delivered, and
volley's peak RSS stays under 96 MiB. With VOLLEY_SANITIZE=1 (ASan is slow
and hungry): 100,000 recipients and a 1 GiB bound.

volley is the only child process that has been waited for when its peak RSS
is read (getrusage(RUSAGE_CHILDREN) covers waited-for children only; the
smtp-sink child is reaped afterwards).
"""
import json
import os
import resource
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (RESULT_KEYS, SANITIZE, VOLLEY, Failure, SmtpSink, check, check_eq,  # noqa: E402
                 kill_group, parse_summary, run_cases, tmpdir)

import subprocess  # noqa: E402

N = 100_000 if SANITIZE else 1_000_000
RSS_LIMIT_KIB = (1024 * 1024) if SANITIZE else (96 * 1024)
FIRST_LINE = 5  # magic, from, message, empty line, then the recipients
MESSAGE = (b"From: Scale <scale@example.com>\r\nSubject: one million\r\n\r\n"
           b"Hello,\r\n.this line is dot-stuffed on the wire\r\nbye\r\n")


def address(i):
    return f"s{i}@d{i % 97}.example.org"


def write_big_job(d):
    with open(os.path.join(d, "message.eml"), "wb") as f:
        f.write(MESSAGE)
    path = os.path.join(d, "job")
    with open(path, "w", encoding="ascii") as f:
        f.write("#volley-job 1\nfrom: scale@example.com\nmessage: message.eml\n\n")
        chunk = 50_000
        for start in range(0, N, chunk):
            f.write("".join(address(i) + "\n" for i in range(start, min(N, start + chunk))))
    return path


def check_results_stream(path):
    """check_results_stream - one result per line, all delivered; counts; no list kept."""
    seen = bytearray(N)
    bad, nbad, dup, outside, lines = [], 0, 0, 0, 0
    with open(path, "rb") as f:
        for raw in f:
            lines += 1
            if not raw.endswith(b"\n"):
                raise Failure(f"{path}:{lines}: unterminated last line")
            try:
                r = json.loads(raw)
            except ValueError as e:
                raise Failure(f"{path}:{lines}: not JSON ({e}): {raw[:200]!r}")
            if list(r.keys()) != RESULT_KEYS:
                raise Failure(f"{path}:{lines}: keys {list(r.keys())}")
            i = r["line"] - FIRST_LINE if isinstance(r["line"], int) else -1
            if not 0 <= i < N:
                outside += 1
                continue
            if seen[i]:
                dup += 1
            seen[i] = 1
            if r["status"] != "delivered" or r["code"] != 250 or r["rcpt"] != address(i):
                nbad += 1
                if len(bad) < 5:
                    bad.append(r)
    return lines, seen.count(1), dup, outside, bad, nbad


def test_scale():
    with tmpdir() as d:
        t0 = time.monotonic()
        job = write_big_job(d)
        print(f"     job with {N} recipients written in {time.monotonic() - t0:.1f} s", flush=True)
        res = os.path.join(d, "job.results.jsonl")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        check_eq(before, 0, "no child process reaped before volley (RSS reading is volley's)")
        with SmtpSink(d, options=["-m", "2000"], counters=True) as sink:
            cmd = [VOLLEY, "send", "--relay", sink.relay, "--connections", "100",
                   "--results", res, job]
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
            try:
                out, err = p.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                kill_group(p)
                p.communicate()
                raise Failure(f"volley did not finish {N} recipients within 600 s")
            elapsed = time.monotonic() - t0
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            out = out.decode(errors="replace")
            err = err.decode(errors="replace")
            print(f"     volley: {elapsed:.1f} s, {N / elapsed:.0f} recipients/s, "
                  f"peak RSS {peak_kib / 1024:.1f} MiB", flush=True)
            check(p.returncode == 0, "volley exit status 0",
                  f"status {p.returncode}, stderr: {err[-1500:]!r}")
            check("Sanitizer" not in err and "runtime error:" not in err,
                  "no sanitizer report", err[-4000:])
        t0 = time.monotonic()
        lines, distinct, dup, outside, bad, nbad = check_results_stream(res)
        print(f"     results checked in {time.monotonic() - t0:.1f} s", flush=True)
        check_eq(lines, N, f"exactly {N} result lines")
        check_eq((distinct, dup, outside), (N, 0, 0),
                 "each job line exactly once (distinct, duplicated, outside the job)")
        check(nbad == 0, "every recipient delivered with code 250 under its own address",
              f"{nbad} not, e.g. {bad}")
        s = parse_summary(out)
        check_eq(s, {"total": N, "delivered": N, "bounced": 0, "deferred": 0, "failed": 0},
                 "summary line")
        msgs = sink.messages()
        check(-(-N // 100) <= msgs <= N, f"sink counted at least {-(-N // 100)} messages "
              f"(100 recipients each at most)", f"{msgs}")
        check(peak_kib < RSS_LIMIT_KIB, f"peak RSS under {RSS_LIMIT_KIB // 1024} MiB",
              f"{peak_kib / 1024:.1f} MiB")


if __name__ == "__main__":
    try:
        run_cases("test_scale_1m", [test_scale])
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
