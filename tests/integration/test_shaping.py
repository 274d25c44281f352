#!/usr/bin/python3
"""test_shaping.py - shaping limits and the slow-down on throttling replies, counted on
the server side (a recording aiosmtpd server on loopback).

Cases:
  destination_limits  --shaping with `default connections=3 rate=20/s messages-per-connection=5`
                      through a relay: the server never sees more than 3 connections at
                      once, more than 20 messages in any second (+ the 0.1 s burst), or more
                      than 5 messages on one connection.
  provider_limits     the same limits as an mx: rule naming the relay host (a provider).
  bad_rules_file      a bad rules file is refused at startup, naming file:line.
  throttled           421 "too many connections" from the server: the destination's
                      concurrency is halved, new connections pause, everyone is delivered
                      in the end, and the summary names the slowed destination.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (AiosmtpdServer, check, check_eq, check_one_result_per_line,  # noqa: E402
                 rcpt_lines, read_results, run_cases, run_volley, statuses, tmpdir, write_job)

MESSAGE = b"Subject: shaping test\r\n\r\nhello\r\n"


def send(srv, d, job, rules, extra=()):
    """send - volley through srv with a rules file; returns (rc, out, err, results, secs)."""
    res = os.path.join(d, "out.jsonl")
    path = os.path.join(d, "rules.conf")
    with open(path, "w") as f:
        f.write(rules)
    t0 = time.monotonic()
    rc, out, err = run_volley(["send", "--relay", srv.relay, "--results", res, "--force",
                               "--shaping", path] + list(extra) + [job], timeout=120)
    took = time.monotonic() - t0
    results = read_results(res) if os.path.exists(res) else None
    return rc, out, err, results, took


def max_concurrent(events, since=0.0):
    """max_concurrent - most connections open at once (from connect/disconnect events)."""
    edges = sorted((e["t"], 1 if e["event"] == "connect" else -1)
                   for e in events if e["event"] in ("connect", "disconnect"))
    n = best = 0
    for t, k in edges:
        n += k
        if t >= since:
            best = max(best, n)
    return best


def max_per_second(times):
    """max_per_second - most events in any window of one second."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def check_limits(label, rules):
    """check_limits - 3 connections, 20 msgs/s, 5 msgs per connection, server side."""
    with tmpdir() as d:
        addrs = [f"user{i}@example.net" for i in range(80)]
        job = write_job(d, addrs, MESSAGE)
        with AiosmtpdServer(d, pipelining=True) as srv:
            rc, out, err, results, took = send(srv, d, job, rules,
                                              ["--connections", "10", "--max-recipients", "1"])
        check_eq(rc, 0, f"{label}: exit status")
        check_one_result_per_line(results, rcpt_lines(job))
        check_eq(statuses(results), {"delivered": 80}, f"{label}: everyone delivered")
        ev = srv.events()
        conc = max_concurrent(ev)
        check(1 <= conc <= 3, f"{label}: at most 3 connections at once (server side)", f"{conc}")
        mails = [e["t"] for e in ev if e["event"] == "mail"]
        peak = max_per_second(mails)
        check(peak <= 23, f"{label}: at most 20 messages in any second, +3 burst (server side)",
              f"{peak}")
        per_conn = {}
        for e in ev:
            if e["event"] == "mail":
                per_conn[e["conn"]] = per_conn.get(e["conn"], 0) + 1
        check(max(per_conn.values()) <= 5, f"{label}: at most 5 messages per connection",
              f"{max(per_conn.values())}")
        check(took >= 3.0, f"{label}: 80 messages at 20/s take about 4 s", f"{took:.2f} s")
        print(f"     {label}: {conc} connections at most, {peak} msgs in the busiest second, "
              f"{took:.2f} s", flush=True)


def case_destination_limits():
    check_limits("default rule", "# per destination\n"
                 "default connections=3 rate=20/s messages-per-connection=5\n")


def case_provider_limits():
    check_limits("mx rule", "mx:127.0.0.1 name=loopback connections=3 rate=20/s "
                 "messages-per-connection=5\n")


def case_bad_rules_file():
    with tmpdir() as d:
        job = write_job(d, ["a@example.net"], MESSAGE)
        with AiosmtpdServer(d) as srv:
            rc, out, err, results, took = send(srv, d, job, "default connections=3\n"
                                              "mx:.example.com conections=2\n")
        check_eq(rc, 2, "bad rules file: exit status 2")
        check("rules.conf:2:" in err, "the error names file:line", err[-300:])
        check(results is None or results == [], "nothing was sent", f"{results}")


def case_throttled():
    with tmpdir() as d:
        addrs = [f"user{i}@example.net" for i in range(1500)]
        job = write_job(d, addrs, MESSAGE)
        with AiosmtpdServer(d, pipelining=True, mail_421_first=3, mail_421_after=40) as srv:
            rc, out, err, results, took = send(
                srv, d, job, "# nothing but the defaults\n",
                ["--connections", "8", "--max-recipients", "1", "--retry-initial", "300ms",
                 "--max-retry-time", "30s"])
        check_eq(rc, 0, "throttled: exit status")
        check_one_result_per_line(results, rcpt_lines(job))
        check_eq(statuses(results), {"delivered": 1500}, "throttled: everyone delivered in the end")
        ev = srv.events()
        t421 = [e["t"] for e in ev if e["event"] == "mail" and e["code"] == 421]
        check_eq(len(t421), 3, "the server sent three 421s")
        before = max_concurrent([e for e in ev if e["t"] < t421[0]])
        later = max_concurrent(ev, since=t421[-1] + 0.5)
        mails_later = [e for e in ev if e["event"] == "mail" and e["t"] > t421[-1] + 0.5]
        check(before > 4, "before: more than 4 connections at once", f"{before}")
        check(len(mails_later) >= 100, "the run went on after the 421s (enough to measure)",
              f"{len(mails_later)} messages")
        check(1 <= later <= 4, "from 0.5 s after the 421s: at most half of 8 connections",
              f"{later}")
        first_after = [e["t"] for e in ev if e["event"] == "connect" and e["t"] > t421[0]]
        check(not first_after or first_after[0] - t421[0] >= 0.2,
              "no new connection during the pause after the 421 (300 ms -25%)",
              f"{first_after[0] - t421[0]:.3f} s" if first_after else "")
        check("slowed down: destination relay" in out, "the summary names the slowed "
              "destination", out[-600:])
        print(f"     {before} connections before, {later} after; summary: "
              f"{[l for l in out.splitlines() if 'slowed' in l]}", flush=True)


if __name__ == "__main__":
    run_cases("test_shaping", [case_destination_limits, case_provider_limits,
                               case_bad_rules_file, case_throttled])
