"""lib.py - shared helpers for volley's integration tests.

Every test file is a plain script run with /usr/bin/python3 and these
environment variables (set by tests/meson.build):
    VOLLEY           path to the volley binary
    VOLLEY_TESTDIR   the tests/ directory of the source tree
    VOLLEY_SANITIZE  "1" when volley was built with ASan/UBSan

Servers are real: Postfix smtp-sink (SmtpSink), the recording aiosmtpd
server in smtp_server.py (AiosmtpdServer) and the misbehaving one in
hostile_server.py (HostileServer), each on a free loopback port,
started and stopped by the test (stopped also on failure; whole process
groups are killed). Every wait is bounded in time, every subprocess has a
timeout.

Checks: check(cond, what, detail) prints "ok   what" or raises Failure;
run_cases() runs the cases of one file, prints one line per failure and a
closing line, and exits 0 only when every case passed.
"""
import base64
import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TESTDIR = os.environ.get("VOLLEY_TESTDIR", os.path.join(REPO, "tests"))
VOLLEY = os.environ.get("VOLLEY", os.path.join(REPO, "build", "volley"))
SANITIZE = os.environ.get("VOLLEY_SANITIZE", "0") == "1"
SERVER_PY = os.path.join(TESTDIR, "integration", "smtp_server.py")
SYS_PYTHON = "/usr/bin/python3"
SMTP_SINK = "/usr/sbin/smtp-sink"

RESULT_KEYS = ["rcpt", "line", "status", "category", "code", "enhanced", "reply", "server", "mx",
               "ip", "tls", "attempts", "ms"]
STATUSES = ("delivered", "bounced", "deferred", "failed")
# docs/results-format.md, "category" (src/category.h)
CATEGORIES = ("bad-mailbox", "bad-domain", "no-mx", "policy", "spam", "quota", "throttled", "tls",
              "dns", "protocol", "timeout", "connection", "local", "auth", "content",
              "interrupted", "other")
ENHANCED_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
SUMMARY_RE = re.compile(
    r"^volley: (\d+) recipients in [0-9.]+ s, [0-9.]+ msgs/s: delivered (\d+), "
    r"bounced (\d+), deferred (\d+), failed (\d+)$")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer")


class Failure(Exception):
    """Failure - a check failed; the message says what and why."""


class Skip(Exception):
    """Skip - a case cannot run here (the message says why)."""


_counts = {"ok": 0}


def check(cond, what, detail=""):
    """check - print "ok   what" when cond holds, else raise Failure(what: detail)."""
    if not cond:
        raise Failure(f"{what}: {detail}" if detail else what)
    _counts["ok"] += 1
    print(f"ok   {what}", flush=True)


def check_eq(got, want, what):
    """check_eq - check got == want, showing both (shortened) on failure."""
    check(got == want, what, f"got {_short(got)}, want {_short(want)}")


def _short(v, n=300):
    s = repr(v)
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


def run_cases(name, cases):
    """run_cases - run each case (a function); exit 0 only if all passed.

    The failures are repeated at the end, so that they are in the tail of
    the log that `meson test --print-errorlogs` shows."""
    if not (os.path.isfile(VOLLEY) and os.access(VOLLEY, os.X_OK)):
        print(f"FAIL {name}: volley binary not found or not executable: {VOLLEY}")
        sys.exit(1)
    failed, skipped = [], []
    for case in cases:
        print(f"--- {case.__name__}", flush=True)
        t0 = time.monotonic()
        try:
            case()
        except Skip as e:
            skipped.append(case.__name__)
            print(f"SKIP {case.__name__}: {e}", flush=True)
        except Failure as e:
            failed.append((case.__name__, str(e)))
            print(f"FAIL {case.__name__}: {e}", flush=True)
        except Exception:  # a crash in the test is a failure too, with its trace
            failed.append((case.__name__, "unexpected exception: " +
                           traceback.format_exc(limit=3)))
            print(f"FAIL {case.__name__}: unexpected exception", flush=True)
            traceback.print_exc(file=sys.stdout)
        print(f"     ({time.monotonic() - t0:.1f} s)", flush=True)
    if failed:
        print(f"=== {name}: failures")
        for case_name, msg in failed:
            print(f"FAIL {case_name}: {msg[:3000]}")
    print(f"{name}: {_counts['ok']} checks ok; cases: "
          f"{len(cases) - len(failed) - len(skipped)} ok, {len(failed)} FAILED "
          f"{[c for c, _ in failed] if failed else ''}, {len(skipped)} skipped", flush=True)
    sys.exit(1 if failed else 0)


# --- ports and directories ---------------------------------------------------

def free_port(host="127.0.0.1"):
    """free_port - a TCP port that was free on host a moment ago."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_ok():
    """ipv6_loopback_ok - can we bind and connect on [::1]?"""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            with socket.create_connection(("::1", port), timeout=2):
                pass
        return True
    except OSError:
        return False


@contextlib.contextmanager
def tmpdir(prefix="volley-it-"):
    """tmpdir - a fresh directory, removed afterwards (kept if VOLLEY_KEEP=1).

    Mode 0755 so that smtp-sink, running as nobody, can reach dump
    directories below it."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        if os.environ.get("VOLLEY_KEEP") == "1":
            print(f"     (kept {d})")
        else:
            shutil.rmtree(d, ignore_errors=True)


def wait_port(host, port, timeout=10.0, proc=None):
    """wait_port - wait until host:port accepts a TCP connection."""
    deadline = time.monotonic() + timeout
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Failure(f"server exited with status {proc.returncode} before "
                          f"listening on {host}:{port}")
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect((host, port))
                return
        except OSError:
            time.sleep(0.05)
    raise Failure(f"nothing listening on {host}:{port} after {timeout} s")


def kill_group(proc, timeout=10.0):
    """kill_group - SIGTERM the process group of proc, SIGKILL it if needed; reap."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait(timeout=timeout)
    return proc.returncode


# --- job files ---------------------------------------------------------------

def csv_field(v):
    """csv_field - one RFC 4180 field, quoted when it must be."""
    if any(c in v for c in ',"') or v != v.strip(" "):
        return '"' + v.replace('"', '""') + '"'
    return v


def write_job(dir, recipients, message_bytes, fields=None, from_="sender@example.com",
              name="job", message_name="message.eml", header_lines=None):
    """write_job - write the message file and a job file in dir; return the job's path.

    recipients: each item is a str or bytes line written as it is (caller
    quotes), or a tuple/list of fields written as one CSV record.
    header_lines: when given, replaces the generated header lines (after
    the magic line) entirely: a list of str, e.g. ["from: a@b.c"].
    message_bytes None writes no message file."""
    if message_bytes is not None:
        with open(os.path.join(dir, message_name), "wb") as f:
            f.write(message_bytes)
    if header_lines is None:
        header_lines = [f"from: {from_}", f"message: {message_name}"]
        if fields:
            header_lines.append("fields: " + ",".join(fields))
    out = [b"#volley-job 1"] + [h.encode() for h in header_lines] + [b""]
    for r in recipients:
        if isinstance(r, bytes):
            out.append(r)
        elif isinstance(r, str):
            out.append(r.encode("utf-8"))
        else:
            out.append(",".join(csv_field(v) for v in r).encode("utf-8"))
    path = os.path.join(dir, name)
    with open(path, "wb") as f:
        f.write(b"\n".join(out) + b"\n")
    return path


def rcpt_lines(job_path):
    """rcpt_lines - {line number: line bytes} of the non-blank recipient lines.

    Lines end at LF; the recipient section starts after the first empty
    line; a line that is empty (or only a CR) is blank."""
    with open(job_path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out, in_body = {}, False
    for i, ln in enumerate(lines, start=1):
        if not in_body:
            in_body = ln in (b"", b"\r")
            continue
        if ln not in (b"", b"\r"):
            out[i] = ln
    return out


def normalise(msg):
    """normalise - the message as volley must deliver it: CRLF line ends, final CRLF."""
    m = msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not m.endswith(b"\r\n"):
        m += b"\r\n"
    return m


# --- running volley ----------------------------------------------------------

def run_volley(args, timeout=120, cwd=None, env=None):
    """run_volley - run volley with args (and env, the whole environment, when given);
    return (rc, stdout, stderr) as str.

    Fails when it times out, dies of a signal, or a sanitizer reports."""
    cmd = [VOLLEY] + list(args)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, err = p.communicate()
        raise Failure(f"volley did not finish within {timeout} s: {' '.join(cmd)}\n"
                      f"stderr: {err.decode(errors='replace')[-2000:]}")
    out = out.decode("utf-8", errors="replace")
    err = err.decode("utf-8", errors="replace")
    check_exit(cmd, p.returncode, err)
    return p.returncode, out, err


def check_exit(cmd, returncode, err):
    """check_exit - fail when volley died of a signal or a sanitizer reported."""
    if returncode < 0:
        raise Failure(f"volley killed by signal {-returncode}: {' '.join(cmd)}\n"
                      f"stderr: {err[-3000:]}")
    for mark in SANITIZER_MARKS:
        if mark in err:
            raise Failure(f"sanitizer report from {' '.join(cmd)}:\n{err[-6000:]}")


def parse_summary(stdout):
    """parse_summary - the counts of volley's summary line, as a dict, or None."""
    for ln in stdout.splitlines():
        m = SUMMARY_RE.match(ln.strip())
        if m:
            n, d, b, q, f = (int(x) for x in m.groups())
            return {"total": n, "delivered": d, "bounced": b, "deferred": q, "failed": f}
    return None


def check_summary(stdout, results, results_path):
    """check_summary - the summary's counts match the results; the path is named."""
    s = parse_summary(stdout)
    check(s is not None, "summary line present on stdout", f"stdout: {stdout[-1000:]!r}")
    counts = {k: 0 for k in STATUSES}
    for r in results:
        counts[r["status"]] += 1
    want = {"total": len(results), **counts}
    check_eq(s, want, "summary counts equal the result lines")
    check(f"volley: results in {results_path}" in stdout.splitlines(),
          "summary names the results file", f"stdout: {stdout[-1000:]!r}")


# --- results -----------------------------------------------------------------

def validate_result(d, where):
    """validate_result - key order and value types of one result object."""
    if not isinstance(d, dict) or list(d.keys()) != RESULT_KEYS:
        raise Failure(f"{where}: keys {list(d) if isinstance(d, dict) else d!r}, "
                      f"want {RESULT_KEYS}")
    ok = (isinstance(d["rcpt"], str)
          and isinstance(d["line"], int) and d["line"] >= 1
          and d["status"] in STATUSES
          and ((d["category"] is None) if d["status"] == "delivered"
               else d["category"] in CATEGORIES)
          and (d["code"] is None or (isinstance(d["code"], int) and 200 <= d["code"] <= 599))
          and (d["enhanced"] is None or (isinstance(d["enhanced"], str)
                                         and ENHANCED_RE.match(d["enhanced"])))
          and isinstance(d["reply"], str)
          and (d["server"] is None or isinstance(d["server"], str))
          and (d["mx"] is None or isinstance(d["mx"], str))
          and (d["ip"] is None or isinstance(d["ip"], str))
          and (d["tls"] is None or (isinstance(d["tls"], str) and d["tls"].startswith("TLSv")))
          and (d["server"] is None) == (d["ip"] is None)
          and isinstance(d["attempts"], int) and d["attempts"] >= 0
          and (d["ms"] is None or (isinstance(d["ms"], int) and d["ms"] >= 0)))
    if not ok:
        raise Failure(f"{where}: bad value types or ranges: {d!r}")


def read_results(path):
    """read_results - the results file as a list of dicts (each line valid JSON)."""
    if not os.path.exists(path):
        raise Failure(f"results file {path} does not exist")
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        raise Failure(f"{path}: last line is not terminated by a newline")
    out = []
    for i, ln in enumerate(data.split(b"\n")[:-1] if data else [], start=1):
        try:
            d = json.loads(ln)
        except ValueError as e:
            raise Failure(f"{path}:{i}: not JSON ({e}): {ln[:200]!r}")
        validate_result(d, f"{path}:{i}")
        out.append(d)
    return out


def check_one_result_per_line(results, expected_line_numbers):
    """check_one_result_per_line - exactly one result per expected job line.

    Returns {line number: result}."""
    by_line, dups = {}, []
    for r in results:
        if r["line"] in by_line:
            dups.append(r["line"])
        by_line[r["line"]] = r
    want = set(expected_line_numbers)
    check(not dups, "no job line has two results", f"duplicated lines {sorted(dups)[:20]}")
    missing = sorted(want - set(by_line))
    extra = sorted(set(by_line) - want)
    check(not missing and not extra and len(results) == len(want),
          f"one result per recipient line ({len(want)})",
          f"{len(results)} results; missing lines {missing[:20]}; unexpected lines {extra[:20]}")
    return by_line


def statuses(results):
    """statuses - {status: count}."""
    c = {}
    for r in results:
        c[r["status"]] = c.get(r["status"], 0) + 1
    return c


# --- smtp-sink ---------------------------------------------------------------

class SmtpSink:
    """SmtpSink - Postfix smtp-sink on a free loopback port, as a context manager.

    options: extra smtp-sink flags (e.g. ["-p"], ["-e"], ["-8"], ["-m", "2000"]).
    dump_dir: if given, every transaction is dumped there (-d), see dumps().
    counters: run with -c, see messages().
    host: "127.0.0.1" or "::1"."""

    def __init__(self, workdir, options=(), dump_dir=None, counters=True,
                 host="127.0.0.1", port=None, backlog=1024):
        self.workdir = workdir
        self.options = list(options)
        self.dump_dir = dump_dir
        self.counters = counters
        self.host = host
        self.port = port or free_port(host)
        self.backlog = backlog
        self.proc = None
        self.out_path = os.path.join(workdir, f"smtp-sink-{self.port}.out")
        self.exit_status = None

    @property
    def relay(self):
        """relay - the --relay argument for volley."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def server_name(self):
        """server_name - what volley should put in the "server" key."""
        return self.relay

    def start(self):
        if not os.access(SMTP_SINK, os.X_OK):
            raise Failure(f"{SMTP_SINK} not found (install postfix: scripts/deps.sh)")
        cmd = [SMTP_SINK]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        if self.counters:
            cmd.append("-c")
        if self.dump_dir is not None:
            os.makedirs(self.dump_dir, exist_ok=True)
            os.chmod(self.dump_dir, 0o777)
            cmd += ["-d", os.path.join(self.dump_dir, "t.")]
        cmd += self.options
        cmd += [f"[{self.host}]:{self.port}" if ":" in self.host else
                f"{self.host}:{self.port}", str(self.backlog)]
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(self.host, self.port, timeout=10, proc=self.proc)
        except Exception:
            self.stop()
            raise Failure(f"smtp-sink did not start: {' '.join(cmd)}: {self.output()[-500:]!r}")
        return self

    def stop(self):
        if self.proc is not None and self.exit_status is None:
            self.exit_status = kill_group(self.proc)
            self.out.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def output(self):
        """output - what smtp-sink printed so far."""
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def messages(self):
        """messages - the last "mesg=N" counter smtp-sink printed (0 if none)."""
        found = re.findall(r"mesg=(\d+)", self.output())
        return int(found[-1]) if found else 0

    def dumps(self):
        """dumps - the dumped transactions (call after stop()).

        Each is a dict: proto, helo (or None), mail (X-Mail-Args), rcpts
        (list of X-Rcpt-Args), body (the content as received, un-stuffed, LF
        line ends)."""
        if self.dump_dir is None:
            raise Failure("SmtpSink.dumps() needs dump_dir")
        out = []
        for name in sorted(os.listdir(self.dump_dir)):
            with open(os.path.join(self.dump_dir, name), "rb") as f:
                out.append(parse_sink_dump(f.read(), name))
        return out


def parse_sink_dump(data, name):
    """parse_sink_dump - one smtp-sink -d file as a dict (see SmtpSink.dumps)."""
    lines = data.split(b"\n")
    d = {"file": name, "proto": None, "helo": None, "mail": None, "rcpts": []}
    i = 0
    while i < len(lines) and not lines[i].startswith(b"Received: "):
        key, _, val = lines[i].partition(b": ")
        val = val.decode("utf-8", errors="replace")
        if key == b"X-Client-Proto":
            d["proto"] = val
        elif key == b"X-Helo-Args":
            d["helo"] = val
        elif key == b"X-Mail-Args":
            d["mail"] = val
        elif key == b"X-Rcpt-Args":
            d["rcpts"].append(val)
        i += 1
    if i + 2 >= len(lines) or not lines[i + 1].startswith(b"\t") \
            or not lines[i + 2].startswith(b"\t"):
        raise Failure(f"smtp-sink dump {name}: no three-line Received header: {data[:400]!r}")
    rest = b"\n".join(lines[i + 3:])
    if not rest.endswith(b"\n\n"):
        raise Failure(f"smtp-sink dump {name}: does not end with the empty line: "
                      f"{rest[-80:]!r}")
    d["body"] = rest[:-1]
    return d


def angle(addr):
    """angle - "<addr>" as smtp-sink dumps an RCPT/MAIL argument."""
    return f"<{addr}>"


# --- aiosmtpd ----------------------------------------------------------------

class ServerProcess:
    """ServerProcess - a test server script (run with Debian's python3, in its own
    process group) that prints "READY <port>" once it listens and records what it
    sees as JSONL events; a context manager. Subclasses set host, port, log_path,
    events_path and name, and define command() and prepare()."""

    name = "server"

    def command(self):
        raise NotImplementedError

    def prepare(self):
        """prepare - write the files the script reads (before it starts)."""

    @property
    def relay(self):
        """relay - the --relay argument for volley."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def server_name(self):
        """server_name - what volley should put in the "server" key."""
        return self.relay

    def start(self):
        self.prepare()
        open(self.events_path, "wb").close()
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True)
        try:
            self._wait_ready(15.0)
        except Exception:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buf = b""
        try:
            while time.monotonic() < deadline:
                if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    chunk = os.read(self.proc.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    buf += chunk
                    if b"\n" in buf:
                        line = buf.split(b"\n", 1)[0].decode()
                        if line == f"READY {self.port}":
                            return
                        raise Failure(f"{self.name} said {line!r}")
        finally:
            sel.close()
        raise Failure(f"{self.name} not ready on {self.relay} within {timeout} s; "
                      f"log: {self.log_tail()!r}")

    def log_tail(self, n=1500):
        """log_tail - the end of the script's stderr."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.exit_status is None:
            self.exit_status = kill_group(self.proc)
            self.proc.stdout.close()
            self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def events(self, kind=None, conn=None):
        """events - recorded events (all, or of one kind and/or connection), in order."""
        out = []
        with open(self.events_path, "rb") as f:
            for ln in f:
                e = json.loads(ln)
                if (kind is None or e["event"] == kind) and (conn is None or e["conn"] == conn):
                    out.append(e)
        return out

    def deliveries(self):
        """deliveries - address -> times it was in an accepted (250) DATA transaction."""
        n = {}
        for e in self.events("data"):
            if e["code"] == 250:
                for a in e["rcpt_tos"]:
                    n[a] = n.get(a, 0) + 1
        return n

    def transactions(self):
        """transactions - the "data" events, each with its content decoded to bytes."""
        out = self.events("data")
        for t in out:
            t["content"] = base64.b64decode(t["content_b64"])
        return out


class AiosmtpdServer(ServerProcess):
    """AiosmtpdServer - smtp_server.py in a subprocess, as a context manager.

    reject / defer: recipients answered 550 5.1.1 / 451 4.3.0 at RCPT.
    defer_first: {address: n}: 451 the first n times, then accepted.
    mail_421_first: the first n MAIL commands get 421 and the connection is closed
    (after mail_421_after MAIL commands were accepted).
    reject_data_marker: content holding it is answered 554 5.6.0.
    eightbit / smtputf8 / pipelining: what EHLO advertises.
    After stop(), events() returns the recorded events (see smtp_server.py)."""

    _seq = 0

    def __init__(self, workdir, reject=(), defer=(), reject_data_marker=None,
                 eightbit=True, smtputf8=False, pipelining=False, host="127.0.0.1",
                 port=None, defer_first=None, mail_421_first=0, mail_421_after=0):
        AiosmtpdServer._seq += 1
        n = AiosmtpdServer._seq
        self.workdir = workdir
        self.host = host
        self.port = port or free_port(host)
        self.rules_path = os.path.join(workdir, f"aiosmtpd-{n}.rules.json")
        self.events_path = os.path.join(workdir, f"aiosmtpd-{n}.events.jsonl")
        self.log_path = os.path.join(workdir, f"aiosmtpd-{n}.log")
        self.rules = {"reject": list(reject), "defer": list(defer),
                      "reject_data_marker": reject_data_marker, "eightbit": eightbit,
                      "smtputf8": smtputf8, "pipelining": pipelining,
                      "defer_first": dict(defer_first or {}), "mail_421_first": mail_421_first,
                      "mail_421_after": mail_421_after}
        self.proc = None
        self.exit_status = None

    name = "aiosmtpd server"

    def prepare(self):
        with open(self.rules_path, "w") as f:
            json.dump(self.rules, f)

    def command(self):
        return [SYS_PYTHON, SERVER_PY, "--host", self.host, "--port", str(self.port),
                "--rules", self.rules_path, "--out", self.events_path]

    def check_clean_exit(self):
        check_eq(self.exit_status, 0, "aiosmtpd server shut down cleanly on SIGTERM")


# --- MX mode (added for test_mx*.py) -----------------------------------------

MX_KEYS = ("mx", "ip")


def free_port_on(hosts, tries=50):
    """free_port_on - a TCP port free on every host of hosts (e.g. 127.0.0.2..9, ::1).

    MX mode uses one --port for every mail exchanger, so the servers on the
    different loopback addresses must all listen on the same port."""
    for _ in range(tries):
        port = free_port(hosts[0])
        ok = True
        for h in hosts[1:]:
            fam = socket.AF_INET6 if ":" in h else socket.AF_INET
            try:
                with socket.socket(fam, socket.SOCK_STREAM) as s:
                    s.bind((h, port))
            except OSError:
                ok = False
                break
        if ok:
            return port
    raise Failure(f"no TCP port free on all of {list(hosts)} after {tries} tries")


def read_results_mx(path):
    """read_results_mx - the results file of an MX-mode run, as a list of dicts.

    Like read_results, but every line must also carry "mx" and "ip" (string
    or null), and the other keys keep their documented relative order."""
    if not os.path.exists(path):
        raise Failure(f"results file {path} does not exist")
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        raise Failure(f"{path}: last line is not terminated by a newline")
    base = [k for k in RESULT_KEYS if k not in MX_KEYS]
    out = []
    for i, ln in enumerate(data.split(b"\n")[:-1] if data else [], start=1):
        try:
            d = json.loads(ln)
        except ValueError as e:
            raise Failure(f"{path}:{i}: not JSON ({e}): {ln[:200]!r}")
        keys = list(d.keys()) if isinstance(d, dict) else None
        if keys is None or sorted(keys) != sorted(base + list(MX_KEYS)) \
                or [k for k in keys if k not in MX_KEYS] != base:
            raise Failure(f"{path}:{i}: keys {keys if keys is not None else d!r}, want "
                          f"{base} in this order plus \"mx\" and \"ip\"")
        for k in MX_KEYS:
            if not (d[k] is None or isinstance(d[k], str)):
                raise Failure(f"{path}:{i}: {k} is neither a string nor null: {d!r}")
        # once RESULT_KEYS itself lists mx and ip, their exact place is checked too
        validate_result(d if set(MX_KEYS) <= set(RESULT_KEYS) else {k: d[k] for k in base},
                        f"{path}:{i}")
        out.append(d)
    return out


# --- peak memory (added for test_hostile.py) ---------------------------------

PEAK_RSS_LIMIT_KIB = 150 * 1024  # volley's peak RSS in a small run stays far below this


def run_volley_measured(args, timeout=120, cwd=None):
    """run_volley_measured - like run_volley, plus volley's own peak RSS (KiB) and wall time.

    Returns (rc, stdout, stderr, maxrss_kib, seconds). The process is reaped
    with os.wait4, so the RSS is volley's alone (not the test servers')."""
    import threading
    cmd = [VOLLEY] + list(args)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)
    got = {}

    def drain(name, f):
        got[name] = f.read()

    readers = [threading.Thread(target=drain, args=(n, f), daemon=True)
               for n, f in (("out", p.stdout), ("err", p.stderr))]
    for r in readers:
        r.start()
    deadline = t0 + timeout
    status = ru = None
    while time.monotonic() < deadline:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        time.sleep(0.01)
    took = time.monotonic() - t0
    if ru is None or status is None or pid != p.pid:
        kill_group(p)
        for r in readers:
            r.join(5)
        raise Failure(f"volley did not finish within {timeout} s: {' '.join(cmd)}\n"
                      f"stderr: {got.get('err', b'').decode(errors='replace')[-2000:]}")
    p.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join(10)
    p.stdout.close()
    p.stderr.close()
    out = got.get("out", b"").decode("utf-8", errors="replace")
    err = got.get("err", b"").decode("utf-8", errors="replace")
    check_exit(cmd, p.returncode, err)
    return p.returncode, out, err, ru.ru_maxrss, took


HOSTILE_PY = os.path.join(TESTDIR, "integration", "hostile_server.py")


class HostileServer(ServerProcess):
    """HostileServer - hostile_server.py in a subprocess (mode, step), as a context manager."""

    _seq = 0

    def __init__(self, workdir, mode, step="", pipelining=True, max_time=30):
        """__init__ - a server for mode/step on a free 127.0.0.1 port, files in workdir."""
        HostileServer._seq += 1
        n = HostileServer._seq
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.mode, self.step = mode, step
        self.pipelining = pipelining
        self.max_time = max_time
        self.events_path = os.path.join(workdir, f"hostile-{n}.events.jsonl")
        self.log_path = os.path.join(workdir, f"hostile-{n}.log")
        self.proc = None
        self.exit_status = None
        self._record = None

    @property
    def name(self):
        """name - how failures name this server."""
        return f"hostile_server.py ({self.mode} {self.step})".rstrip()

    def command(self):
        """command - the server's argv."""
        cmd = [SYS_PYTHON, HOSTILE_PY, "--host", self.host, "--port", str(self.port),
               "--mode", self.mode, "--out", self.events_path,
               "--max-time", str(self.max_time)]
        if self.step:
            cmd += ["--step", self.step]
        if not self.pipelining:
            cmd.append("--no-pipelining")
        return cmd

    def stop(self):
        """stop - stop the server and keep its record (the work directory goes away)."""
        super().stop()
        if self._record is None:
            self._record = ServerProcess.events(self) if os.path.exists(self.events_path) else []

    def events(self, kind=None, conn=None):
        """events - the recorded events (all, or of one kind and/or connection), in order."""
        evs = self._record if self._record is not None else ServerProcess.events(self)
        return [e for e in evs if (kind is None or e["event"] == kind)
                and (conn is None or e["conn"] == conn)]

    def commands(self):
        """commands - every command line the server read, in order."""
        return [e["line"] for e in self.events("cmd")]
