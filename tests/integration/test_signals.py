#!/usr/bin/python3
"""test_signals.py - SIGINT/SIGTERM/SIGHUP: finish what is in flight, QUIT, and give
every recipient exactly one result line; exit status 1 (the run did not complete).
A SIGHUP that was ignored at start (nohup) stays ignored; SIGUSR1 prints a progress
line and changes nothing else.

The sink delays its DATA replies (smtp-sink -w), so the run is still going when
the signal arrives."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (SANITIZER_MARKS, VOLLEY, AiosmtpdServer, Failure, SmtpSink,  # noqa: E402
                 check, check_eq,
                 check_one_result_per_line, rcpt_lines, read_results, run_cases, tmpdir,
                 write_job)

MESSAGE = b"Subject: signals\n\nhello\n"
N = 3000


def interrupted(sig):
    """interrupted - send sig mid-run; check the results and the exit status."""
    name = signal.Signals(sig).name
    with tmpdir() as d:
        job = write_job(d, [f"u{i}@example.org" for i in range(N)], MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with SmtpSink(d, options=["-w", "1"]) as sink:
            p = subprocess.Popen([VOLLEY, "send", "--relay", sink.relay, "--connections", "4",
                                  "--max-recipients", "10", "--results", res, job],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
            time.sleep(1.5)
            t0 = time.monotonic()
            p.send_signal(sig)
            try:
                out, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Failure(f"{name}: volley did not stop within 30 s")
            took = time.monotonic() - t0
        check_eq(p.returncode, 1, f"{name}: exit status 1 (run not completed)")
        check("interrupted" in err.decode(), f"{name}: stderr says the run was interrupted",
              err.decode()[-500:])
        check(took < 25, f"{name}: in-flight transactions finished and volley exited", f"{took:.1f} s")
        results = read_results(res)
        check_one_result_per_line(results, rcpt_lines(job))
        st = {}
        for r in results:
            st[r["status"]] = st.get(r["status"], 0) + 1
        check(st.get("delivered", 0) > 0, f"{name}: some recipients delivered before the signal", f"{st}")
        rest = [r for r in results if r["status"] != "delivered"]
        check(rest, f"{name}: the run was cut short", f"{st}")
        bad = [r for r in rest if r["status"] != "deferred" or r["attempts"] != 0 or
               r["reply"] != "not attempted: the run was interrupted"]
        check(not bad, f"{name}: every recipient not sent is deferred, not attempted", f"{bad[:3]}")


def signalled_run(sig, extra=(), preexec_fn=None):
    """signalled_run - 40 recipients through a sink that answers DATA 1 s late; sig
    0.5 s in; every job line has one result. Returns (exit status, stderr, results)."""
    with tmpdir() as d:
        job = write_job(d, [f"u{i}@example.org" for i in range(40)], MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with SmtpSink(d, options=["-w", "1"]) as sink:
            p = subprocess.Popen([VOLLEY, "send", "--relay", sink.relay, "--connections", "4",
                                  "--max-recipients", "10", "--results", res] + list(extra) +
                                 [job], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True, preexec_fn=preexec_fn)
            time.sleep(0.5)
            p.send_signal(sig)
            try:
                out, err = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Failure("volley did not finish within 60 s")
        results = read_results(res)
        check_one_result_per_line(results, rcpt_lines(job))
        return p.returncode, err.decode(errors="replace"), results


def test_sighup_ignored_under_nohup():
    """Started with SIGHUP ignored (as nohup does), volley keeps it ignored: a hang-up
    mid-run changes nothing, and the run completes."""
    rc, err, results = signalled_run(
        signal.SIGHUP, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    check_eq(rc, 0, "SIGHUP ignored: the run completed (exit status 0)")
    check(all(r["status"] == "delivered" for r in results), "every recipient delivered",
          f"{[r for r in results if r['status'] != 'delivered'][:2]}")


def test_sigusr1_prints_progress():
    """SIGUSR1 asks for a progress line (as dd does), also when stderr is not a
    terminal; the run goes on and completes."""
    rc, err, results = signalled_run(signal.SIGUSR1, extra=["--quiet"])
    check_eq(rc, 0, "SIGUSR1: the run completed (exit status 0)")
    check(re.search(r"^volley: sent \d+  delivered \d+ .* msgs/s", err, re.M),
          "SIGUSR1: a progress line on stderr", err[-500:])
    check(all(r["status"] == "delivered" for r in results), "every recipient delivered",
          f"{[r for r in results if r['status'] != 'delivered'][:2]}")


def test_grace_period_over():
    """The server takes 20 s to answer DATA; after SIGINT, --grace 500ms: the transactions
    in flight are closed when it is over and their recipients are deferred, saying why."""
    with tmpdir() as d:
        job = write_job(d, [f"u{i}@example.org" for i in range(200)], MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with SmtpSink(d, options=["-w", "20"]) as sink:
            p = subprocess.Popen([VOLLEY, "send", "--relay", sink.relay, "--connections", "4",
                                  "--max-recipients", "10", "--grace", "500ms", "--results", res,
                                  job], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
            time.sleep(1.0)
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            try:
                p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Failure("grace: volley did not stop within 30 s")
            took = time.monotonic() - t0
        check_eq(p.returncode, 1, "grace: exit status 1")
        check(0.4 <= took < 5, "grace: exited once the 500 ms grace period was over", f"{took:.2f} s")
        results = read_results(res)
        check_one_result_per_line(results, rcpt_lines(job))
        cut = [r for r in results if r["attempts"] == 1]
        check_eq(len(cut), 40, "grace: the 4 sessions' transactions (4 x 10) were in flight")
        check(all(r["status"] == "deferred" and "interrupted before the server answered" in r["reply"]
                  for r in cut), "grace: they are deferred, saying the run was interrupted",
              f"{cut[:2]}")
        rest = [r for r in results if r["attempts"] == 0]
        check(len(rest) == 160 and all(r["reply"] == "not attempted: the run was interrupted"
                                        for r in rest), "grace: the rest not attempted", f"{len(rest)}")


def stop_after(cmd, secs, name):
    """stop_after - run volley, SIGINT it after secs; returns (rc, stderr)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    time.sleep(secs)
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Failure(f"{name}: volley did not stop within 30 s")
    err = err.decode(errors="replace")
    for mark in SANITIZER_MARKS:
        check(mark not in err, f"{name}: no sanitizer report", err[-3000:])
    return p.returncode, err


def test_stop_with_retries_waiting():
    """SIGINT while recipients wait for a retry: each gets its last reply (not a line
    naming a freed destination, not a missing line)."""
    with tmpdir() as d:
        addrs = ["slow1@example.org", "slow2@example.org"] + [f"u{i}@example.org" for i in range(20)]
        job = write_job(d, addrs, MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with AiosmtpdServer(d, defer=addrs[:2], pipelining=True) as srv:
            rc, err = stop_after([VOLLEY, "send", "--relay", srv.relay, "--retry-initial", "1m",
                                  "--results", res, job], 1.5, "retries waiting")
        check_eq(rc, 1, "retries waiting: exit status 1")
        results = read_results(res)
        check_one_result_per_line(results, rcpt_lines(job))
        slow = [r for r in results if r["rcpt"] in addrs[:2]]
        check(all(r["status"] == "deferred" and r["code"] == 451 and r["attempts"] == 1 and
                  r["server"] == srv.server_name for r in slow),
              "retries waiting: each deferred with its last reply and server", f"{slow}")
        rest = [r for r in results if r["rcpt"] not in addrs[:2]]
        check(all(r["status"] == "delivered" for r in rest), "the others delivered", f"{rest[:2]}")


def test_stop_before_greeting():
    """SIGINT while the only session waits for a greeting that never comes (--grace 300ms):
    the recipients were never sent, so they are "not attempted", attempts 0."""
    with tmpdir() as d:
        job = write_job(d, [f"u{i}@example.org" for i in range(3)], MESSAGE)
        res = os.path.join(d, "out.jsonl")
        lsn = socket.socket()
        try:
            lsn.bind(("127.0.0.1", 0))
            lsn.listen(16)  # never accepts: the connection is up, no greeting ever comes
            rc, err = stop_after([VOLLEY, "send", "--relay", f"127.0.0.1:{lsn.getsockname()[1]}",
                                  "--connections", "1", "--grace", "300ms", "--results", res, job],
                                 1.0, "before greeting")
        finally:
            lsn.close()
        check_eq(rc, 1, "before greeting: exit status 1")
        results = read_results(res)
        check_one_result_per_line(results, rcpt_lines(job))
        check(all(r["status"] == "deferred" and r["attempts"] == 0 and
                  r["reply"] == "not attempted: the run was interrupted" for r in results),
              "before greeting: every recipient not attempted", f"{results[:2]}")


def test_sigint():
    interrupted(signal.SIGINT)


def test_sigterm():
    interrupted(signal.SIGTERM)


def test_sighup():
    """A hang-up (the terminal closed) stops the run cleanly too, instead of killing it."""
    interrupted(signal.SIGHUP)


if __name__ == "__main__":
    run_cases("test_signals", [test_sigint, test_sigterm, test_sighup,
                               test_sighup_ignored_under_nohup, test_sigusr1_prints_progress,
                               test_grace_period_over,
                               test_stop_with_retries_waiting, test_stop_before_greeting])
