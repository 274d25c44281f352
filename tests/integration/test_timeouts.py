#!/usr/bin/python3
"""test_timeouts.py - per-step deadlines: a server that accepts and never speaks, and
one that stops answering after DATA; every recipient ends deferred with a reason
naming the timeout, within a bound set with --timeout-greeting / --timeout-scale."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (HostileServer, check, check_eq, check_one_result_per_line,  # noqa: E402
                 rcpt_lines, read_results, run_cases, run_volley, statuses, tmpdir, write_job)

MESSAGE = b"Subject: timeouts\n\nhello\n"


def timed_out(step, extra, what):
    """timed_out - 20 recipients against hostile_server.py's silent mode at step."""
    mode = f"silent {step}"
    with tmpdir() as d:
        job = write_job(d, [f"t{i}@example.org" for i in range(20)], MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with HostileServer(d, "silent", step, max_time=60) as srv:
            t0 = time.monotonic()
            rc, out, err = run_volley(["send", "--relay", srv.relay,
                                       "--connections", "2", "--results", res,
                                       "--max-retry-time", "0"] + extra + [job],
                                      timeout=60)
            took = time.monotonic() - t0
        check_eq(rc, 0, f"{mode}: exit status")
        results = read_results(res)
        check_one_result_per_line(results, rcpt_lines(job))
        check_eq(statuses(results), {"deferred": 20}, f"{mode}: every recipient deferred")
        bad = [r["reply"] for r in results if "timed out" not in r["reply"]]
        check(not bad, f"{mode}: every reason says it timed out ({what})", f"{bad[:2]}")
        check(took < 30, f"{mode}: the deadline ended the run", f"{took:.1f} s")


def test_greeting_never_comes():
    timed_out("greeting", ["--timeout-greeting", "1s"], "greeting")


def test_dot_reply_never_comes_scaled():
    # the default 10 min for the final dot, scaled by 0.002 = 1.2 s
    timed_out("dot", ["--timeout-scale", "0.002"], "end of data")


if __name__ == "__main__":
    run_cases("test_timeouts", [test_greeting_never_comes, test_dot_reply_never_comes_scaled])
