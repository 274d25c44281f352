#!/usr/bin/python3
"""test_retry.py - retries within a run, against a real aiosmtpd server on loopback.

Cases:
  retried_until_accepted  451 the first n times: retried with backoff, then delivered once;
                          attempts counts every try; a 5xx is never retried.
  retry_time_used_up      451 forever: deferred after --max-retry-time with the last reply;
                          the other recipients are not held up by the retries.
  backoff_after_421       421 to MAIL: that session's recipients are retried, and no new
                          MAIL reaches the server before the destination's pause is over.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (AiosmtpdServer, Skip, check, check_eq, check_one_result_per_line,  # noqa: E402
                 rcpt_lines, read_results, run_cases, run_volley, statuses, tmpdir, write_job)

MESSAGE = b"Subject: retry test\r\n\r\nhello\r\n"


def send(srv, d, job, extra):
    """send - run volley through srv; returns (results, seconds)."""
    res = os.path.join(d, "out.jsonl")
    t0 = time.monotonic()
    rc, out, err = run_volley(["send", "--relay", srv.relay, "--results", res, "--force",
                               "--connections", "4"] + extra + [job], timeout=120)
    took = time.monotonic() - t0
    check_eq(rc, 0, "exit status")
    results = read_results(res)
    check_one_result_per_line(results, rcpt_lines(job))
    return {r["rcpt"]: r for r in results}, took


def case_retried_until_accepted():
    with tmpdir() as d:
        addrs = [f"user{i}@example.net" for i in range(30)]
        first = {"user3@example.net": 2, "user7@example.net": 1}
        with AiosmtpdServer(d, defer_first=first, reject=["user9@example.net"],
                            pipelining=True) as srv:
            job = write_job(d, addrs, MESSAGE)
            by, took = send(srv, d, job, ["--retry-initial", "100ms", "--max-retry-time", "20s"])
        st = statuses(by.values())
        check_eq(st, {"delivered": 29, "bounced": 1}, "everyone delivered but the 550")
        check_eq(by["user3@example.net"]["attempts"], 3, "451 twice: three attempts")
        check_eq(by["user7@example.net"]["attempts"], 2, "451 once: two attempts")
        check_eq(by["user9@example.net"]["attempts"], 1, "550: not retried")
        others = {r["attempts"] for a, r in by.items() if a not in first}
        check_eq(others, {1}, "the rest: one attempt each")
        got = srv.deliveries()
        check_eq(sorted(got.items()), sorted((a, 1) for a in addrs if a != "user9@example.net"),
                 "server side: every accepted recipient received exactly once")
        rcpts = [e for e in srv.events("rcpt") if e["address"] == "user3@example.net"]
        times = [e["t"] for e in rcpts]
        gaps = [round(b - a, 3) for a, b in zip(times, times[1:])]
        check(len(gaps) == 2 and 0.07 <= gaps[0] and gaps[1] >= 0.14,
              "backoff: about 100 ms, then about 200 ms between attempts (+-25%)", f"{gaps}")


def case_retry_time_used_up():
    """451 forever for 5 recipients among 3,000: they are retried on time while the fresh
    ones flow (retries not starved), the fresh ones never stop for the retries (fresh not
    starved), and after --max-retry-time the 5 end deferred with the last reply.
    The windows are wide (first retry after 300 ms, 2 s in all) so that a machine
    busy with other tests (the ASan build runs them in parallel) still fits three
    attempts: with 1 s, a stalled second of the Python server once left only two."""
    with tmpdir() as d:
        stuck = [f"stuck{i}@example.net" for i in range(5)]
        addrs = stuck + [f"user{i}@example.net" for i in range(3000)]
        with AiosmtpdServer(d, defer=stuck, pipelining=True) as srv:
            job = write_job(d, addrs, MESSAGE)
            by, took = send(srv, d, job, ["--retry-initial", "300ms", "--max-retry-time", "2s",
                                          "--max-recipients", "1", "--connections", "2"])
        for a in stuck:
            r = by[a]
            check(r["status"] == "deferred" and (r["code"], r["enhanced"]) == (451, "4.3.0")
                  and "try again later" in r["reply"], f"{a}: deferred with the last reply",
                  f"{r}")
            seen = sorted(e["t"] for e in srv.events("rcpt") if e["address"] == a)
            check(3 <= r["attempts"] <= 5, f"{a}: retried until the retry time was used up "
                  "(0, ~0.3, ~0.9 s, then at 2 s)", f"attempts {r['attempts']}, at "
                  f"{[round(t - seen[0], 2) for t in seen] if seen else []} s")
        check(1.9 <= took < 60, "the run lasted at least --max-retry-time", f"{took:.2f} s")
        rest = [r for a, r in by.items() if a not in stuck]
        check_eq(statuses(rest), {"delivered": 3000}, "everyone else delivered")
        check_eq({r["attempts"] for r in rest}, {1}, "everyone else in one attempt")
        fresh = sorted(e["t"] for e in srv.events("data") if e["code"] == 250)
        tries = sorted(e["t"] for e in srv.events("rcpt") if e["address"] == stuck[0])
        if fresh[-1] - fresh[0] < 1.0:
            raise Skip(f"the 3,000 fresh messages took {fresh[-1] - fresh[0]:.2f} s: too fast "
                       "to watch retries and fresh mail interleave")
        during = [t for t in tries[1:] if t < fresh[-1]]
        check(len(during) >= 1, "retries ran while fresh mail was still flowing (not starved)",
              f"retries at {[round(t - tries[0], 2) for t in tries]}, fresh until "
              f"{fresh[-1] - tries[0]:.2f}")
        gaps = [round(t - tries[0], 3) for t in tries]
        check(gaps[1] >= 0.22, "the first retry waited its backoff (300 ms -25%)", f"{gaps}")
        stall = max(b - a for a, b in zip(fresh, fresh[1:]))
        check(stall < 0.5, "fresh deliveries never paused for the retries", f"longest gap {stall:.3f} s")


def case_backoff_after_421():
    with tmpdir() as d:
        addrs = [f"user{i}@example.net" for i in range(40)]
        with AiosmtpdServer(d, mail_421_first=1, pipelining=True) as srv:
            job = write_job(d, addrs, MESSAGE)
            by, took = send(srv, d, job, ["--retry-initial", "400ms", "--max-retry-time", "20s",
                                          "--connections", "1", "--max-recipients", "5"])
        check_eq(statuses(by.values()), {"delivered": 40}, "everyone delivered in the end")
        retried = sorted(a for a, r in by.items() if r["attempts"] == 2)
        check_eq(len(retried), 5, "the 5 recipients of the 421 transaction took two attempts")
        mails = [e for e in srv.events("mail")]
        check_eq(mails[0]["code"], 421, "the first MAIL got 421")
        gap = mails[1]["t"] - mails[0]["t"]
        check(gap >= 0.29, "no MAIL to the destination within its pause (400 ms -25%)",
              f"next MAIL after {gap:.3f} s")
        check_eq(sorted(srv.deliveries().values()), [1] * 40, "each delivered exactly once")


if __name__ == "__main__":
    run_cases("test_retry", [case_retried_until_accepted, case_retry_time_used_up,
                             case_backoff_after_421])
