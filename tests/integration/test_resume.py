#!/usr/bin/python3
"""test_resume.py - --resume after SIGKILL: lose nothing, send nothing twice.

Cases:
  kill_and_resume     a run through a recording aiosmtpd server is killed with SIGKILL at
                      two different points; `--resume` finishes it. Every recipient ends
                      with exactly one final result line; every recipient the server
                      received twice is in the documented window (accepted by the server,
                      its result not yet written when the process died); no recipient
                      whose delivery was recorded is sent again.
  torn_last_line      a results file whose last line was cut: the cut line is reported and
                      ignored, its recipient sent again; the file is only appended to.
  resume_checks       --resume with --force is refused; a results file of another job is
                      refused (exit 2); resuming a finished run sends nothing.
  job_truncated       the job file is truncated under volley during the run (it is
                      memory-mapped): exit 1 at once with a clear message, not a crash
                      (SIGBUS); with the file restored, --resume finishes the job.
  results_unwritable  the results file stops taking writes (a file-size limit, EFBIG):
                      volley stops sending at the first failed write and exits 1; --resume
                      then finishes the job, sending again only the few whose lines were lost.
"""
import json
import os
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (VOLLEY, AiosmtpdServer, Failure, SmtpSink, check, check_eq,  # noqa: E402
                 kill_group, rcpt_lines, run_cases, run_volley, tmpdir, write_job)

MESSAGE = b"Subject: resume test\r\n\r\nhello\r\n"
FINAL = ("delivered", "bounced", "failed")


def parse_lines(path):
    """parse_lines - (results, cut lines) of a results file; a cut line is not JSON."""
    good, cut = [], []
    with open(path, "rb") as f:
        for raw in f.read().split(b"\n"):
            if not raw:
                continue
            try:
                good.append(json.loads(raw))
            except ValueError:
                cut.append(raw)
    return good, cut


def check_final_once(res, job, label):
    """check_final_once - every job line has exactly one final result in res.
    Returns (results, cut lines) of the file."""
    results, cut = parse_lines(res)
    per_line = {}
    for r in results:
        if r["status"] in FINAL:
            per_line[r["line"]] = per_line.get(r["line"], 0) + 1
    check_eq(sorted(per_line), sorted(rcpt_lines(job)), f"{label}: every job line has a final result")
    check_eq({k for k, v in per_line.items() if v != 1}, set(),
             f"{label}: exactly one final result per recipient")
    return results, cut


def new_run(d, n, connections):
    """new_run - a job of n recipients in d: (addresses, job path, results path, the
    volley arguments without --relay and the job)."""
    addrs = [f"user{i}@example.net" for i in range(n)]
    job = write_job(d, addrs, MESSAGE)
    res = os.path.join(d, "out.jsonl")
    args = ["send", "--results", res, "--connections", str(connections), "--max-recipients",
            "1", "--quiet"]
    return addrs, job, res, args


def kill_when(srv_events, want, proc, limit=60):
    """kill_when - SIGKILL proc's group once the server recorded want DATA events."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if proc.poll() is not None:
            raise Failure(f"volley finished before {want} deliveries: too fast to kill")
        try:
            with open(srv_events, "rb") as f:
                n = f.read().count(b'"event": "data"')
        except FileNotFoundError:
            n = 0
        if n >= want:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return
        time.sleep(0.01)
    kill_group(proc)
    raise Failure(f"the server did not see {want} deliveries within {limit} s")


def kill_and_resume(at, n=1500):
    """kill_and_resume - kill after `at` deliveries, resume, check both runs together."""
    with tmpdir() as d:
        addrs, job, res, args = new_run(d, n, 8)
        with AiosmtpdServer(d, pipelining=True) as srv:
            p = subprocess.Popen([VOLLEY] + args + ["--relay", srv.relay, job],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, start_new_session=True)
            kill_when(srv.events_path, at, p)
            first, cut = parse_lines(res)
            done1 = {r["rcpt"] for r in first if r["status"] in FINAL}
            t_kill = time.time()
            rc, out, err = run_volley(args + ["--resume", "--relay", srv.relay, job], timeout=120)
        check_eq(rc, 0, f"kill at {at}: the resumed run completed")
        check(0 < len(done1) < n, f"kill at {at}: the first run was cut short",
              f"{len(done1)} final results")
        results, cut2 = check_final_once(res, job, f"kill at {at}")
        check(len(cut2) <= 1, f"kill at {at}: at most one cut line (the one being written)",
              f"{cut2[:2]}")
        got = srv.deliveries()
        check_eq(sorted(a for a in addrs if a not in got), [],
                 f"kill at {at}: the server received every recipient")
        again = sorted(a for a in done1 if got.get(a, 0) != 1)
        check_eq(again, [], f"kill at {at}: no recipient with a recorded result was sent twice")
        twice = sorted(a for a, k in got.items() if k > 1)
        check(len(twice) <= 64, f"kill at {at}: recipients received twice are few (the window: "
              f"accepted, result not yet written)", f"{len(twice)}: {twice[:5]}")
        check(all(a not in done1 for a in twice), f"kill at {at}: and none of them had a result",
              f"{twice[:5]}")
        print(f"     kill at {at}: {len(done1)} final before the kill, {len(twice)} sent twice "
              f"(the window), {len(cut)} cut line(s)", flush=True)
        resumed = [e for e in srv.events("rcpt") if e["t"] > t_kill]
        check(all(e["address"] not in done1 for e in resumed),
              f"kill at {at}: the resumed run only sent to recipients without a result", "")


def case_kill_early():
    kill_and_resume(150)


def case_kill_late():
    kill_and_resume(1100)


def case_torn_last_line():
    with tmpdir() as d:
        addrs = [f"user{i}@example.net" for i in range(30)]
        job = write_job(d, addrs, MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with SmtpSink(d) as sink:
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--results", res, job])
            check_eq(rc, 0, "first run")
            with open(res, "rb") as f:
                data = f.read()
            lines = data.split(b"\n")
            kept = b"\n".join(lines[:20]) + b"\n" + lines[20][:45]  # 20 whole lines, one cut
            with open(res, "wb") as f:
                f.write(kept)
            cut_rcpt = json.loads(lines[20])["rcpt"]
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--results", res,
                                       "--resume", job])
        check_eq(rc, 0, "resumed run")
        check("last line is cut" in err, "the cut line is reported", err[-300:])
        with open(res, "rb") as f:
            after = f.read()
        check(after.startswith(kept + b"\n"), "the file was only appended to (cut line ended "
              "with a newline, nothing rewritten)", repr(after[:80]))
        results, cut = parse_lines(res)
        check_eq(len(cut), 1, "the cut line stays, alone on its line")
        again = [r for r in results[20:]]
        check_eq(sorted(r["rcpt"] for r in again),
                 sorted(a for a in addrs if a not in {r["rcpt"] for r in results[:20]}),
                 "the resumed run sent exactly the recipients without a whole result line")
        check(cut_rcpt in {r["rcpt"] for r in again}, "including the cut line's recipient")


def case_job_truncated(n=100000):
    with tmpdir() as d:
        addrs, job, res, args = new_run(d, n, 20)
        with open(job, "rb") as f:
            whole = f.read()
        with SmtpSink(d) as sink:
            p = subprocess.Popen([VOLLEY] + args + ["--relay", sink.relay, job],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, start_new_session=True)
            try:
                t0 = time.monotonic()
                while time.monotonic() - t0 < 30 and p.poll() is None and \
                        (not os.path.exists(res) or os.path.getsize(res) < 200_000):
                    time.sleep(0.005)
                check(p.poll() is None, "volley was still running when the job was truncated")
                os.truncate(job, len(whole) // 5)
                err = p.communicate(timeout=60)[1].decode(errors="replace")
            finally:
                if p.poll() is None:
                    kill_group(p)
            check_eq(p.returncode, 1, "a truncated job: exit status 1 (not a crash: SIGBUS "
                     "would be -7)")
            check("was truncated during the run" in err and "--resume" in err,
                  "stderr says what happened and what to do", err[-400:])
            first, cut = parse_lines(res)
            check(len(cut) <= 1 and 0 < len(first) < n, "the results so far are whole lines",
                  f"{len(first)} lines, {len(cut)} cut")
            with open(job, "wb") as f:
                f.write(whole)
            rc, out, err = run_volley(args + ["--resume", "--relay", sink.relay, job],
                                      timeout=120)
        check_eq(rc, 0, "with the job restored, the resumed run completed")
        check_final_once(res, job, "truncated, restored and resumed")


RESULTS_LIMIT = 48 * 1024  # octets the results file may grow to in the first run


def limit_results():
    """limit_results - in the child: a file-size limit, and EFBIG instead of SIGXFSZ."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (RESULTS_LIMIT, RESULTS_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def case_results_unwritable(n=3000):
    with tmpdir() as d:
        addrs, job, res, args = new_run(d, n, 8)
        with AiosmtpdServer(d, pipelining=True) as srv:
            cmd = [VOLLEY] + args + ["--relay", srv.relay, job]
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                               preexec_fn=limit_results)
            err = p.stderr.decode(errors="replace")
            check_eq(p.returncode, 1, "results that cannot be written: exit status 1")
            check("writing results: File too large" in err and "sending stopped" in err,
                  "stderr says why, and that sending stopped", err[-400:])
            check(os.path.getsize(res) <= RESULTS_LIMIT, "the file stayed within the limit")
            first, cut = parse_lines(res)
            done1 = {r["rcpt"] for r in first if r["status"] in FINAL}
            sent1 = sum(srv.deliveries().values())
            check(0 < len(done1) and sent1 < n // 2, "sending stopped soon after the first "
                  "failed write", f"{len(done1)} lines written, {sent1} of {n} sent")
            rc, out, err = run_volley(args + ["--resume", "--relay", srv.relay, job], timeout=120)
            check_eq(rc, 0, "the resumed run completed")
            check_final_once(res, job, "unwritable results, resumed")
            got = srv.deliveries()
            check_eq(sorted(a for a in addrs if a not in got), [],
                     "the server received every recipient")
            check_eq(sorted(a for a in done1 if got.get(a, 0) != 1), [],
                     "no recipient with a recorded result was sent twice")
            twice = [a for a, k in got.items() if k > 1]
            print(f"     {len(done1)} lines written before the limit, {sent1} sent; "
                  f"{len(twice)} sent twice (their lines were lost)", flush=True)
            check(len(twice) <= sent1 - len(done1), "only those sent without a recorded line "
                  "were sent again", f"{len(twice)} twice, {sent1 - len(done1)} unrecorded")
            check(len(twice) < 1000, "and they are few (one results buffer and what was in "
                  "flight)", f"{len(twice)}")


def case_resume_checks():
    with tmpdir() as d:
        job = write_job(d, [f"user{i}@example.net" for i in range(10)], MESSAGE)
        other = write_job(os.path.join(d, "o"), [f"x{i}@example.org" for i in range(10)],
                          MESSAGE) if os.makedirs(os.path.join(d, "o")) is None else None
        res = os.path.join(d, "out.jsonl")
        with SmtpSink(d) as sink:
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--results", res, job])
            check_eq(rc, 0, "first run")
            size = os.path.getsize(res)
            sent = sink.messages()
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--results", res,
                                       "--resume", "--force", job])
            check_eq(rc, 2, "--resume with --force: usage error")
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--results", res,
                                       "--resume", other])
            check_eq(rc, 2, "results of another job: refused")
            check("another job" in err, "and it says why", err[-300:])
            rc, out, err = run_volley(["send", "--relay", sink.relay, "--results", res,
                                       "--resume", job])
            check_eq(rc, 0, "resuming a finished run")
            check("10 recipients already have a final result" in out, "says what it skips", out)
            check_eq(os.path.getsize(res), size, "and writes nothing")
            check_eq(sink.messages(), sent, "and sends nothing")


if __name__ == "__main__":
    run_cases("test_resume", [case_kill_early, case_kill_late, case_torn_last_line,
                              case_job_truncated, case_results_unwritable,
                              case_resume_checks])
