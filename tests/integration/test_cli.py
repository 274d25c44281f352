#!/usr/bin/python3
"""test_cli.py - volley's command line: help and version, usage errors (exit 2),
the results file (default name, refusal to overwrite, --force), --quiet,
relays given as a name, an IPv6 literal and without a port, engine threads
that cannot start, a file-descriptor limit too low for --connections (exit 2
before anything is sent), and an engine thread whose ring fails mid-run (exit 1, still
one line per recipient; the other thread carries on).

The ring failure is injected with volley's test hook VOLLEY_FAULT_RING=T:N
(thread T's Nth wait fails as io_uring_enter would).
"""
import os
import resource
import stat
import re
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (REPO, SANITIZE, TESTDIR, VOLLEY, AiosmtpdServer, Failure, Skip,  # noqa: E402
                 SmtpSink, check, check_eq, check_exit, check_one_result_per_line,
                 ipv6_loopback_ok, rcpt_lines, read_results, run_cases, run_volley, statuses,
                 tmpdir, write_job)

OPTIONS = ["--relay", "--connections", "--threads", "--results", "--force",
           "--max-messages-per-connection", "--max-recipients", "--helo", "--quiet", "--help",
           "--no-pipelining", "--dns", "--port", "--ip-version",
           "--max-connections-per-destination"]
MESSAGE = b"Subject: cli\n\nhello\n"
ADDRS = [f"cli{i}@example.org" for i in range(5)]


def project_version():
    """project_version - the version in meson.build."""
    src = os.path.join(os.path.dirname(TESTDIR), "meson.build")
    if not os.path.exists(src):
        src = os.path.join(REPO, "meson.build")
    with open(src) as f:
        m = re.search(r"version\s*:\s*'([^']+)'", f.read())
    if not m:
        raise Failure(f"no version in {src}")
    return m.group(1)


def test_help_and_version():
    for args in (["--help"], ["-h"], ["send", "--help"], ["send", "-h"]):
        rc, out, err = run_volley(args, timeout=10)
        check_eq(rc, 0, f"volley {' '.join(args)}: exit status 0")
        missing = [o for o in OPTIONS if not re.search(re.escape(o) + r"(?![\w-])", out)]
        check(not missing, f"volley {' '.join(args)}: stdout lists every option",
              f"missing {missing}; stdout: {out[:1500]!r}")
        check(re.search(r"(?<![\w-])-h(?![\w-])", out), f"volley {' '.join(args)}: stdout lists -h")
    rc, out, err = run_volley(["--version"], timeout=10)
    check_eq(rc, 0, "volley --version: exit status 0")
    ver = project_version()
    check(re.search(r"\bvolley\b", out) and re.search(re.escape(ver) + r"(?![\d.])", out),
          f"volley --version: stdout names volley {ver}", f"stdout: {out!r}")


def usage_error(args, what, d, srv=None):
    rc, out, err = run_volley(args, timeout=20)
    check_eq(rc, 2, f"{what}: exit status 2")
    check(err.strip() != "", f"{what}: a message on stderr")
    if srv is not None:
        check_eq(len(srv.events()), 0, f"{what}: nothing sent")


def test_usage_errors():
    with tmpdir() as d:
        job = write_job(d, ADDRS, MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with AiosmtpdServer(d) as srv:
            r = ["--relay", srv.relay, "--results", res]
            usage_error([], "no arguments", d)
            usage_error(["frobnicate", job], "unknown command", d, srv)
            usage_error(["send", "--bogus"] + r + [job], "unknown option", d, srv)
            usage_error(["send"] + r, "missing JOB", d, srv)
            usage_error(["send"] + r + [job, job], "two JOBs", d, srv)
            usage_error(["send"] + r + [os.path.join(d, "no-such-job")], "job file missing",
                        d, srv)
            bad_values = [  # (arguments after "send --relay R --results F", what)
                (["--connections", "0", job], "--connections 0"),
                (["--connections", "abc", job], "--connections abc"),
                (["--connections", "-5", job], "--connections -5"),
                (["--threads", "0", job], "--threads 0"),
                (["--max-recipients", "0", job], "--max-recipients 0"),
                (["--max-recipients", "1001", job], "--max-recipients 1001 (limit 1000)"),
                (["--max-messages-per-connection", "0", job], "--max-messages-per-connection 0"),
                ([job, "--connections"], "--connections without a value"),
                (["--batch-window", "101ms", job], "--batch-window 101ms (limit 100ms)"),
                (["--batch-window", "soon", job], "--batch-window soon"),
            ]
            for tail, what in bad_values:
                usage_error(["send"] + r + tail, what, d, srv)
            for relay in ["", "127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:abc", "[::1",
                          "[::1]:"]:
                usage_error(["send", "--relay", relay, "--results", res, job],
                            f"--relay {relay!r}", d, srv)
            for dns in ["example.org", "127.0.0.1:0", "[::1", "1.2.3.4:70000"]:
                usage_error(["send", "--dns", dns, "--results", res, job],
                            f"MX mode, --dns {dns!r}", d, srv)
            for bad in [["--ip-version", "5"], ["--port", "0"],
                        ["--max-connections-per-destination", "0"]]:
                usage_error(["send"] + bad + ["--dns", "127.0.0.1", "--results", res, job],
                            f"MX mode, {' '.join(bad)}", d, srv)
        check(not os.path.exists(res) or os.path.getsize(res) == 0,
              "usage errors: no results written")


def test_results_file():
    with tmpdir() as d:
        job = write_job(d, ADDRS, MESSAGE)  # named "job": default results "job.results.jsonl"
        default = os.path.join(d, "job.results.jsonl")
        with AiosmtpdServer(d) as srv:
            rc, out, err = run_volley(["send", "--relay", srv.relay, "--quiet", job], timeout=60)
            check_eq(rc, 0, "default results: exit status 0")
            check_eq((out, err), ("", ""), "--quiet: nothing on stdout or stderr")
            results = read_results(default)
            check_one_result_per_line(results, rcpt_lines(job))
            check_eq(statuses(results), {"delivered": 5}, "default results file JOB.results.jsonl")
            n_events = len(srv.events())

            old = b"precious, not volley's\n"
            with open(default, "wb") as f:
                f.write(old)
            st = os.stat(default)
            rc, out, err = run_volley(["send", "--relay", srv.relay, job], timeout=60)
            check_eq(rc, 2, "existing results file without --force: exit status 2")
            check(default in err or "job.results.jsonl" in err,
                  "existing results file: stderr names it", f"stderr: {err!r}")
            with open(default, "rb") as f:
                check_eq(f.read(), old, "existing results file: content untouched")
            check_eq(os.stat(default).st_mtime_ns, st.st_mtime_ns,
                     "existing results file: not rewritten")
            check_eq(len(srv.events()), n_events, "existing results file: nothing sent")

            rc, out, err = run_volley(["send", "--relay", srv.relay, "--force", "--quiet", job],
                                      timeout=60)
            check_eq(rc, 0, "--force: exit status 0")
            results = read_results(default)
            check_one_result_per_line(results, rcpt_lines(job))
            check_eq(statuses(results), {"delivered": 5}, "--force: the file was replaced")

            other = os.path.join(d, "explicit.jsonl")
            with open(other, "wb") as f:
                f.write(old)
            rc, out, err = run_volley(["send", "--relay", srv.relay, "--results", other, job],
                                      timeout=60)
            check_eq(rc, 2, "existing --results FILE without --force: exit status 2")
            with open(other, "rb") as f:
                check_eq(f.read(), old, "existing --results FILE: content untouched")

            fifo = os.path.join(d, "a-fifo")
            os.mkfifo(fifo)
            rc, out, err = run_volley(["send", "--relay", srv.relay, "--results", fifo,
                                       "--force", job], timeout=60)
            check_eq(rc, 2, "--force on a FIFO (not a regular file): exit status 2")
            check("not a regular file" in err, "--force on a FIFO: says why", err[-300:])
            check(stat.S_ISFIFO(os.lstat(fifo).st_mode), "--force on a FIFO: left in place")

            res0 = os.path.join(d, "zero.jsonl")
            rc, out, err = run_volley(["send", "--relay", srv.relay, "--results", res0,
                                       "--max-retry-time", "0s", "--grace", "0",
                                       "--batch-window", "0", "--quiet", job],
                                      timeout=60)
            check_eq(rc, 0, "--max-retry-time 0s, --grace 0 and --batch-window 0: zero "
                     "durations accepted")


def relay_run(relay, server_name, d, srv_events=None, sink=None):
    job = write_job(d, ADDRS, MESSAGE)
    res = os.path.join(d, "out.jsonl")
    rc, out, err = run_volley(["send", "--relay", relay, "--results", res, "--force",
                               "--connections", "2", job], timeout=60)
    check_eq(rc, 0, f"--relay {relay}: exit status 0")
    results = read_results(res)
    check_one_result_per_line(results, rcpt_lines(job))
    check_eq(statuses(results), {"delivered": len(ADDRS)}, f"--relay {relay}: all delivered")
    servers = sorted({r["server"] for r in results})
    if isinstance(server_name, (list, tuple, set)):
        check(len(servers) == 1 and servers[0] in server_name,
              f"--relay {relay}: server is one of {sorted(server_name)}", f"{servers}")
    else:
        check_eq(servers, [server_name], f"--relay {relay}: server is {server_name}")


def test_relay_ipv6():
    if not ipv6_loopback_ok():
        raise Skip("::1 is not available on this machine (no IPv6 loopback)")
    with tmpdir() as d:
        with SmtpSink(d, host="::1", dump_dir=os.path.join(d, "dumps")) as sink:
            relay_run(f"[::1]:{sink.port}", f"[::1]:{sink.port}", d)
        got = sorted(r for t in sink.dumps() for r in t["rcpts"])
        check_eq(got, sorted(f"<{a}>" for a in ADDRS), "[::1]: sink got every recipient once")


def test_relay_name():
    try:
        infos = socket.getaddrinfo("localhost", 25, type=socket.SOCK_STREAM)
    except OSError as e:
        raise Skip(f"localhost does not resolve: {e}")
    fams = {i[0] for i in infos}
    with tmpdir() as d:
        host = "localhost" if socket.AF_INET6 in fams and ipv6_loopback_ok() else "127.0.0.1"
        with AiosmtpdServer(d, host=host) as srv:
            names = {f"127.0.0.1:{srv.port}", f"[::1]:{srv.port}"}
            relay_run(f"localhost:{srv.port}", names, d)


def test_relay_default_port():
    """--relay 127.0.0.1 (no port) must use port 25."""
    try:
        with socket.socket() as s:  # SO_REUSEADDR: TIME_WAIT left by an earlier run is fine
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 25))
    except OSError as e:
        raise Skip(f"127.0.0.1:25 is not free here ({e})")
    with tmpdir() as d:
        with SmtpSink(d, port=25) as sink:
            relay_run("127.0.0.1", "127.0.0.1:25", d)
            check(sink.messages() >= 1, "--relay 127.0.0.1: the sink on port 25 got the mail")


def test_engine_cannot_start():
    """Engine threads without memory for their sessions (an address-space limit):
    exit 1, nothing sent, and still exactly one line per recipient: deferred "not
    attempted: engine thread N could not start: ..." (written by the main thread,
    since the threads have no buffers), and the bad line failed as always."""
    if SANITIZE:
        raise Skip("ASan's shadow memory does not fit an address-space limit")
    limit = 256 << 20
    # Each session needs a descriptor (volley refuses to start without them) and
    # ~35 KB: 16,000 sessions over two threads cannot fit in 256 MB of address space.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    conns = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard - 128)
    if conns < 16000:
        raise Skip(f"needs 16,000 file descriptors; the hard limit is {hard}")

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    with tmpdir() as d:
        with SmtpSink(d) as sink:
            job = write_job(d, [f"nomem{i}@example.org" for i in range(40)] + ["no-at-sign"],
                            MESSAGE)
            res = os.path.join(d, "out.jsonl")
            cmd = [VOLLEY, "send", "--relay", sink.relay, "--threads", "2",
                   "--connections", str(conns), "--results", res, "--force", "--quiet", job]
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=60, preexec_fn=cap_memory)
            err = p.stderr.decode(errors="replace")
            check_exit(cmd, p.returncode, err)
            check_eq(p.returncode, 1, "threads that cannot start: exit status 1")
            check("out of memory" in err, "stderr says why", err[-300:])
            results = read_results(res)
            by_line = check_one_result_per_line(results, rcpt_lines(job))
            check_eq(statuses(results), {"deferred": 40, "failed": 1},
                     "40 deferred, the bad line failed")
            for r in by_line.values():
                if r["status"] == "deferred":
                    check(r["reply"].startswith("not attempted: engine thread ") and
                          "could not start: out of memory" in r["reply"] and
                          r["attempts"] == 0, "deferred lines say why, 0 attempts", f"{r}")
            check_eq(sink.messages(), 0, "nothing was sent")


def test_file_descriptor_limit():
    """--connections beyond the file-descriptor limit: volley raises its soft limit up
    to the hard one when that is enough; when it is not, it refuses at once (exit 2,
    the numbers on stderr), before the results file exists and before anything is
    sent, instead of leaving a thread without a ring and its share of the job unsent."""
    def nofile(soft, hard):
        return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    with tmpdir() as d:
        with SmtpSink(d) as sink:
            job = write_job(d, [f"fd{i}@example.org" for i in range(300)], MESSAGE)
            res = os.path.join(d, "out.jsonl")
            cmd = [VOLLEY, "send", "--relay", sink.relay, "--threads", "2", "--connections",
                   "500", "--max-recipients", "1", "--results", res, "--quiet", job]
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                               preexec_fn=nofile(200, 200))
            err = p.stderr.decode(errors="replace")
            check_exit(cmd, p.returncode, err)
            check_eq(p.returncode, 2, "too few descriptors: exit status 2")
            check(re.search(r"--connections 500 with 2 threads needs at least \d+ file "
                            r"descriptors, and the limit is 200", err), "stderr gives the numbers",
                  err[-300:])
            check(not os.path.exists(res), "no results file was created")
            check_eq(sink.messages(), 0, "nothing was sent")
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                               preexec_fn=nofile(200, 1024))
            check_exit(cmd, p.returncode, p.stderr.decode(errors="replace"))
            check_eq(p.returncode, 0, "a soft limit below the hard one is raised: exit status 0")
            check_eq(statuses(read_results(res)), {"delivered": 300}, "and all is delivered")
        # MX mode with many threads: each may use up to 128 DNS sockets, but needs far
        # fewer; 32 threads and 100 sessions run within 1024 descriptors.
        job = write_job(d, ["lit@[127.0.0.1]"], MESSAGE)
        res = os.path.join(d, "mx.jsonl")
        cmd = [VOLLEY, "send", "--dns", "127.0.0.1:9", "--threads", "32", "--results", res,
               "--quiet", job]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                           preexec_fn=nofile(1024, 1024))
        check_exit(cmd, p.returncode, p.stderr.decode(errors="replace"))
        check_eq(p.returncode, 0, "MX mode, 32 threads, 1024 descriptors: it runs")


FAIL_REASON = "engine thread 0 failed"


def fault_env(spec):
    """fault_env - the environment with volley's ring-failure hook set to spec (T:N)."""
    return dict(os.environ, VOLLEY_FAULT_RING=spec)


def check_failed_thread_lines(results, label):
    """check_failed_thread_lines - what is not delivered carries thread 0's failure:
    in flight, "may have been accepted" after 1 attempt; never sent, "not attempted"
    with 0 attempts. Returns (in-flight results, not-attempted results)."""
    inflight, untried, wrong = [], [], []
    for r in results:
        if r["status"] == "delivered":
            continue
        if not (r["status"] == "deferred" and r["category"] == "local" and
                FAIL_REASON in r["reply"] and "io_uring_enter" in r["reply"]):
            wrong.append(r)
        elif r["reply"].startswith("not attempted: "):
            (untried if r["attempts"] == 0 else wrong).append(r)
        elif "may have been accepted" in r["reply"] and r["attempts"] == 1:
            inflight.append(r)
        else:
            wrong.append(r)
    check(not wrong, f"{label}: every line not delivered is deferred (local) with the thread's "
          "failure: in flight 'may have been accepted' (1 attempt), else 'not attempted' (0)",
          f"{wrong[:2]}")
    return inflight, untried


def test_engine_thread_fails():
    """Thread 0's ring fails at its 30th wait, in a relay run over two threads:
    exit 1 with the reason on stderr; one line per recipient; thread 1 delivers its
    whole slice; thread 0's recipients in flight are deferred "may have been
    accepted", the rest "not attempted" (and the server never saw those)."""
    n = 4000
    with tmpdir() as d:
        job = write_job(d, [f"ring{i}@example.org" for i in range(n)], MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with SmtpSink(d, dump_dir=os.path.join(d, "dumps")) as sink:
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--threads", "2",
                                       "--connections", "20", "--max-recipients", "1",
                                       "--results", res, job], timeout=60,
                                      env=fault_env("0:30"))
        check_eq(rc, 1, "a failed engine thread: exit status 1")
        check("thread 0: io_uring_enter" in err, "stderr says which thread failed and why",
              err[-300:])
        results = read_results(res)
        by_line = check_one_result_per_line(results, rcpt_lines(job))
        inflight, untried = check_failed_thread_lines(results, "ring failure")
        lines = sorted(by_line)
        tail = lines[int(len(lines) * 0.6):]  # surely thread 1's slice (the second half)
        check(all(by_line[ln]["status"] == "delivered" for ln in tail),
              "the other thread delivered its whole slice",
              f"{[by_line[ln] for ln in tail if by_line[ln]['status'] != 'delivered'][:2]}")
        check(len(untried) > n // 4, "thread 0 stopped early: most of its slice was never sent",
              f"{len(untried)} not attempted")
        check(inflight, "some of thread 0's recipients were in flight when it failed")
        m = re.search(r"^volley: (\d+) of them not attempted", out, re.M)
        check(m and int(m.group(1)) == sum(1 for r in results if r["attempts"] == 0),
              "the summary says how many were not attempted (they are not in msgs/s)", out[-500:])
        received = [a.strip("<>") for t in sink.dumps() for a in t["rcpts"]]
        delivered = {r["rcpt"] for r in results if r["status"] == "delivered"}
        check_eq(sorted(a for a in received if a in delivered), sorted(delivered),
                 "every delivered recipient was received exactly once")
        check(not {r["rcpt"] for r in untried} & set(received),
              "no 'not attempted' recipient reached the server")


def test_engine_thread_fails_dns():
    """MX mode with a DNS server that never answers, the same 32 domains in both
    halves of the job: thread 0's ring fails at its 4th wait while its queries
    are pending, some of them with thread 1 waiting for the answer. Thread 1
    must not wait forever: it asks itself, times out (deferred 4.4.3) and the
    run ends, exit 1, one line per recipient."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))  # never read: every query goes unanswered
    try:
        doms = [f"dom{i}.test" for i in range(32)]
        addrs = [f"h{i}@{dom}" for i, dom in enumerate(doms)] + \
                [f"t{i}@{dom}" for i, dom in enumerate(doms)]
        with tmpdir() as d:
            job = write_job(d, addrs, MESSAGE)
            res = os.path.join(d, "out.jsonl")
            rc, out, err = run_volley(["send", "--dns", f"127.0.0.1:{hole.getsockname()[1]}",
                                       "--threads", "2", "--max-retry-time", "0",
                                       "--results", res, job], timeout=60,
                                      env=fault_env("0:4"))
            check_eq(rc, 1, "a failed engine thread: exit status 1")
            results = read_results(res)
            check_one_result_per_line(results, rcpt_lines(job))
            by_rcpt = {r["rcpt"]: r for r in results}
            tail = [by_rcpt[a] for a in addrs[len(addrs) * 3 // 4:]]  # thread 1's
            check(all(r["status"] == "deferred" and r["enhanced"] == "4.4.3" and
                      r["category"] == "dns" for r in tail),
                  "thread 1's recipients: its own lookups timed out (deferred 4.4.3)",
                  f"{[r for r in tail if r['enhanced'] != '4.4.3'][:2]}")
            head = [by_rcpt[a] for a in addrs[:len(addrs) // 4]]  # thread 0's
            check(all(r["reply"].startswith("not attempted: " + FAIL_REASON) for r in head),
                  "thread 0's recipients: not attempted, with its failure",
                  f"{[r for r in head if FAIL_REASON not in r['reply']][:2]}")
    finally:
        hole.close()


if __name__ == "__main__":
    try:
        run_cases("test_cli", [test_help_and_version, test_usage_errors, test_results_file,
                               test_relay_ipv6, test_relay_name, test_relay_default_port,
                               test_engine_cannot_start, test_file_descriptor_limit,
                               test_engine_thread_fails,
                               test_engine_thread_fails_dns])
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
