#!/usr/bin/python3
"""test_timeouts.py - per-step deadlines: a server that accepts and never speaks, and
one that stops answering after DATA; every recipient ends deferred with a reason
naming the timeout, within a bound set with --timeout-greeting / --timeout-scale."""
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (check, check_eq, check_one_result_per_line, rcpt_lines,  # noqa: E402
                 read_results, run_cases, run_volley, statuses, tmpdir, write_job)

MESSAGE = b"Subject: timeouts\n\nhello\n"


class SilentServer:
    """SilentServer - accepts connections on 127.0.0.1 and, per mode, says nothing
    ("silent") or greets and answers EHLO/MAIL/RCPT/DATA then goes quiet ("stall")."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)

    def serve(self, c):
        if self.mode == "silent":
            return
        c.sendall(b"220 stall.test ESMTP\r\n")
        buf = b""
        deadline = time.monotonic() + 30
        while not self.stop and time.monotonic() < deadline:
            try:
                data = c.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                verb = line[:4].upper()
                if verb == b"EHLO":
                    c.sendall(b"250-stall.test\r\n250 PIPELINING\r\n")
                elif verb in (b"MAIL", b"RCPT"):
                    c.sendall(b"250 ok\r\n")
                elif verb == b"DATA":
                    c.sendall(b"354 go on\r\n")
                # after the content: nothing, ever

    def run(self):
        self.sock.settimeout(0.2)
        t0 = time.monotonic()
        while not self.stop and time.monotonic() - t0 < 60:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def timed_out(mode, extra, what):
    with tmpdir() as d:
        job = write_job(d, [f"t{i}@example.org" for i in range(20)], MESSAGE)
        res = os.path.join(d, "out.jsonl")
        with SilentServer(mode) as srv:
            t0 = time.monotonic()
            rc, out, err = run_volley(["send", "--relay", f"127.0.0.1:{srv.port}",
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
    timed_out("silent", ["--timeout-greeting", "1s"], "greeting")


def test_dot_reply_never_comes_scaled():
    # the default 10 min for the final dot, scaled by 0.002 = 1.2 s
    timed_out("stall", ["--timeout-scale", "0.002"], "end of data")


if __name__ == "__main__":
    run_cases("test_timeouts", [test_greeting_never_comes, test_dot_reply_never_comes_scaled])
