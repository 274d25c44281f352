"""tlslib.py - certificates, TLS/AUTH test servers and Postfix smtpd for volley's TLS tests.

make_pki(dir)   a throwaway PKI made with the openssl command line: a CA, a good
                server certificate (CN localhost, SAN DNS:localhost and
                IP:127.0.0.1), an expired one (same names, validity in the past,
                made with `openssl ca -startdate/-enddate`), one for the wrong name
                (SAN DNS:other.test only), one from an unknown CA (a second CA the
                client is never told about) and a client certificate.
TlsServer       tls_server.py in a subprocess (STARTTLS, implicit TLS, AUTH PLAIN and
                LOGIN, sabotaged handshakes), recording every event; a context
                manager like lib.AiosmtpdServer.
PostfixSmtpd    a private Postfix instance (its own config and queue directories
                under the test's directory; master in the foreground) whose smtpd
                listens on 127.0.0.1:PORT with STARTTLS (smtpd_tls_security_level=may)
                and relays everything it accepts to a recording AiosmtpdServer
                (relayhost=[127.0.0.1]:P2), where the test reads what arrived.
read_results_tls  the results file with the "tls" key.
run_volley_env  lib.run_volley with extra environment variables (VOLLEY_AUTH_PASSWORD).
require_tls_option  exit 77 ("SKIP") when volley has no --tls option yet.

Every subprocess has a timeout, every wait is bounded, every server is
stopped (process group killed) also on failure.
"""
import atexit
import base64
import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from lib import (SANITIZE, SYS_PYTHON, TESTDIR, Failure, Skip,
                 AiosmtpdServer, ServerProcess, check, free_port, kill_group, read_results,
                 wait_port)
import lib

OPENSSL = "/usr/bin/openssl"
POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTFIX_DAEMONS = "/usr/lib/postfix/sbin"
TLS_SERVER_PY = os.path.join(TESTDIR, "integration", "tls_server.py")
OPENSSL_TIMEOUT = 30          # seconds for one openssl command
TLS_RE = re.compile(r"^TLSv1\.[23] [A-Z0-9_-]+$")   # "TLSv1.3 TLS_AES_256_GCM_SHA384"
SKIP_EXIT = 77                # meson's "skipped" exit status


# --- the feature gate --------------------------------------------------------

def volley_has_tls():
    """volley_has_tls - does `volley send --help` list a --tls option?"""
    try:
        p = subprocess.run([lib.VOLLEY, "send", "--help"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    text = (p.stdout + p.stderr).decode("utf-8", errors="replace")
    return re.search(r"--tls(?![\w-])", text) is not None


def require_tls_option(name):
    """require_tls_option - print SKIP and exit 77 when volley has no --tls yet.

    A missing binary is left to lib.run_cases, which fails on it."""
    if os.path.isfile(lib.VOLLEY) and os.access(lib.VOLLEY, os.X_OK) \
            and not volley_has_tls():
        print(f"SKIP: volley has no --tls option yet ({name}: `{lib.VOLLEY} send --help` "
              f"does not list --tls)", flush=True)
        sys.exit(SKIP_EXIT)


# --- certificates ------------------------------------------------------------

def openssl(args, cwd, what):
    """openssl - run one openssl command (bounded); Failure with its output if it fails."""
    cmd = [OPENSSL] + list(args)
    try:
        p = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=OPENSSL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failure(f"openssl ({what}) did not finish within {OPENSSL_TIMEOUT} s: "
                      f"{' '.join(cmd)}")
    if p.returncode != 0:
        raise Failure(f"openssl ({what}) failed with status {p.returncode}: {' '.join(cmd)}\n"
                      f"{(p.stdout + p.stderr).decode(errors='replace')[-2000:]}")
    return p.stdout.decode(errors="replace")


CA_CNF = """\
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ policy_any ]
commonName = supplied
organizationName = optional

[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {san}

[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class Pki:
    """Pki - paths of the certificates and keys make_pki made (PEM files)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return f"Pki({self.__dict__!r})"


def _utc(t):
    """_utc - a time (seconds since the epoch) as openssl ca wants it: YYYYMMDDHHMMSSZ."""
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))


def _make_ca(d, name, cn):
    """_make_ca - a self-signed CA in d/name/: (ca.pem, ca.key, its directory)."""
    cadir = os.path.join(d, name)
    os.makedirs(os.path.join(cadir, "newcerts"), exist_ok=True)
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "serial"), "w") as f:
        f.write("1000\n")
    cert, key = os.path.join(cadir, "ca.pem"), os.path.join(cadir, "ca.key")
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
             "-keyout", key, "-out", cert, "-subj", f"/O=volley tests/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash"], d, f"CA {name}")
    return cert, key, cadir


def _issue(d, cadir, ca_cert, ca_key, name, cn, san=None, start=None, end=None,
           profile="server"):
    """_issue - a key and a certificate signed by the CA with explicit validity dates.

    start/end: seconds since the epoch (default: one day ago, 30 days ahead)."""
    now = time.time()
    start = now - 86400 if start is None else start
    end = now + 30 * 86400 if end is None else end
    key, csr, cert = (os.path.join(d, f"{name}.{ext}") for ext in ("key", "csr", "pem"))
    cnf = os.path.join(d, f"{name}.cnf")
    with open(cnf, "w") as f:
        f.write(CA_CNF.format(dir=cadir, san=san or "DNS:unused.invalid"))
    openssl(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/O=volley tests/CN={cn}"], d, f"key and request for {name}")
    openssl(["ca", "-batch", "-notext", "-config", cnf, "-cert", ca_cert, "-keyfile", ca_key,
             "-startdate", _utc(start), "-enddate", _utc(end), "-extensions", profile,
             "-in", csr, "-out", cert], d, f"certificate {name}")
    os.chmod(key, 0o644)   # Postfix and the test servers read it; the PKI is throwaway
    return cert, key


def make_pki(d):
    """make_pki - make the test PKI in d (created if needed); return a Pki of paths.

    ca_cert, ca_key            the CA volley is told about (--ca-file)
    good_cert, good_key        CN localhost, SAN DNS:localhost, IP:127.0.0.1, valid now
    expired_cert, expired_key  same names, valid from 400 to 370 days ago
    wrongname_cert, _key       CN other.test, SAN DNS:other.test only
    unknown_cert, unknown_key  CN localhost, SAN localhost/127.0.0.1, from a CA nobody trusts
    unknown_ca_cert            that CA's certificate
    client_cert, client_key    a client certificate (CN volley client) from the CA
    good_chain, expired_chain, wrongname_chain, unknown_chain
                               certificate followed by its CA (for servers that send chains)
    """
    os.makedirs(d, exist_ok=True)
    ca_cert, ca_key, cadir = _make_ca(d, "ca", "volley test CA")
    un_cert, un_key, undir = _make_ca(d, "unknown-ca", "volley unknown CA")
    here = "DNS:localhost, IP:127.0.0.1, IP:::1"
    now = time.time()
    good = _issue(d, cadir, ca_cert, ca_key, "good", "localhost", here)
    expired = _issue(d, cadir, ca_cert, ca_key, "expired", "localhost", here,
                     start=now - 400 * 86400, end=now - 370 * 86400)
    wrong = _issue(d, cadir, ca_cert, ca_key, "wrongname", "other.test", "DNS:other.test")
    unknown = _issue(d, undir, un_cert, un_key, "unknown", "localhost", here)
    client = _issue(d, cadir, ca_cert, ca_key, "client", "volley client", profile="client")
    chains = {}
    for name, (cert, _), ca in (("good", good, ca_cert), ("expired", expired, ca_cert),
                                ("wrongname", wrong, ca_cert), ("unknown", unknown, un_cert)):
        path = os.path.join(d, f"{name}-chain.pem")
        with open(path, "wb") as out:
            for part in (cert, ca):
                with open(part, "rb") as f:
                    out.write(f.read())
        chains[f"{name}_chain"] = path
    return Pki(dir=d, ca_cert=ca_cert, ca_key=ca_key, good_cert=good[0], good_key=good[1],
               expired_cert=expired[0], expired_key=expired[1], wrongname_cert=wrong[0],
               wrongname_key=wrong[1], unknown_cert=unknown[0], unknown_key=unknown[1],
               unknown_ca_cert=un_cert, client_cert=client[0], client_key=client[1],
               **chains)


_shared = {}


def shared_pki():
    """shared_pki - one PKI for the whole test script (made on first use, in a
    directory removed at exit unless VOLLEY_KEEP=1)."""
    if "pki" not in _shared:
        d = tempfile.mkdtemp(prefix="volley-pki-")
        os.chmod(d, 0o755)
        if os.environ.get("VOLLEY_KEEP") != "1":
            atexit.register(shutil.rmtree, d, True)
        t0 = time.monotonic()
        _shared["pki"] = make_pki(d)
        print(f"     (test PKI made in {d} in {time.monotonic() - t0:.1f} s)", flush=True)
    return _shared["pki"]


def openssl_verify(ca_file, cert, host=None, ip=None):
    """openssl_verify - (ok, output) of `openssl verify` of cert against ca_file."""
    cmd = [OPENSSL, "verify", "-CAfile", ca_file]
    if host:
        cmd += ["-verify_hostname", host]
    if ip:
        cmd += ["-verify_ip", ip]
    p = subprocess.run(cmd + [cert], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=OPENSSL_TIMEOUT)
    return p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")


# --- results with the "tls" key ----------------------------------------------

def read_results_tls(path):
    """read_results_tls - the results file as a list of dicts (lib.read_results checks
    every key's place), with "tls" null or "VERSION CIPHER" (TLS_RE)."""
    out = read_results(path)
    for i, d in enumerate(out, start=1):
        t = d["tls"]
        if not (t is None or (isinstance(t, str) and TLS_RE.match(t))):
            raise Failure(f"{path}: result {i}: \"tls\" is neither null nor "
                          f"\"TLSv1.x CIPHER\": {t!r}")
    return out


# --- running volley with an environment ---------------------------------------

def run_volley_env(args, env=None, timeout=120, cwd=None):
    """run_volley_env - lib.run_volley, plus env (added to a copy of os.environ from
    which any VOLLEY_AUTH_PASSWORD is removed first); returns (rc, stdout, stderr)."""
    full = {k: v for k, v in os.environ.items() if k != "VOLLEY_AUTH_PASSWORD"}
    full.update(env or {})
    return lib.run_volley(args, timeout=timeout, cwd=cwd, env=full)


class VolleyRun:
    """VolleyRun - what one `volley send` run left: rc, out, err, results (None when
    the results file is missing), res_path, rundir (its working directory), elapsed."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def run_send(d, args, env=None, timeout=None, label="run"):
    """run_send - `volley send --results FILE --force ARGS` with its working
    directory in a fresh directory below d (so any file it writes can be found);
    returns a VolleyRun. The results are read when the file exists."""
    run_seq = _shared["runs"] = _shared.get("runs", 0) + 1
    rundir = os.path.join(d, f"run-{run_seq}")
    os.makedirs(rundir)
    res_path = os.path.join(rundir, "results.jsonl")
    cmd = ["send", "--results", res_path, "--force", "--max-retry-time", "0"] + list(args)
    print(f"     [{label}] volley {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    rc, out, err = run_volley_env(cmd, env=env, timeout=timeout or timeout_for(120),
                                  cwd=rundir)
    elapsed = time.monotonic() - t0
    print(f"     [{label}] exit {rc} after {elapsed:.2f} s", flush=True)
    results = read_results_tls(res_path) if os.path.exists(res_path) else None
    return VolleyRun(rc=rc, out=out, err=err, results=results, res_path=res_path,
                     rundir=rundir, elapsed=elapsed, args=cmd)


def secrets_of(user, password):
    """secrets_of - the password and the forms AUTH sends it in (PLAIN's base64 of
    "\\0user\\0password", LOGIN's base64 of the password)."""
    pw = password.encode("utf-8")
    return [password,
            base64.b64encode(b"\0" + user.encode("utf-8") + b"\0" + pw).decode("ascii"),
            base64.b64encode(pw).decode("ascii")]


def check_no_secrets(run, secrets, label, skip=()):
    """check_no_secrets - none of secrets appears in the run's stdout, stderr, results
    file or any file in its working directory (skip: paths not to read)."""
    texts = {"stdout": run.out, "stderr": run.err}
    texts.update(files_under(run.rundir, skip=skip))
    found = no_secret_in(secrets, texts)
    check(not found, f"{label}: the password (plain or base64) appears in none of stdout, "
          f"stderr, the results file and the {len(texts) - 2} file(s) of the working "
          f"directory", f"found in {sorted({w for w, _ in found})}")


def wait_until(cond, timeout, what, interval=0.05):
    """wait_until - poll cond() until it is true (return its value) or timeout (Failure)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Failure(f"{what}: not true after {timeout} s")
        time.sleep(interval)


# --- tls_server.py -----------------------------------------------------------

class TlsServer(ServerProcess):
    """TlsServer - tls_server.py in a subprocess, as a context manager.

    mode: plain, starttls, implicit, garbage, drop (see tls_server.py); cert/key:
    the server certificate; the other keyword arguments are tls_server.py's
    configuration keys (require_starttls, max_tls, client_ca, auth, user,
    password, mechanisms, auth_require_tls, auth_required, pipelining).
    Its files live in workdir/srv-N/. After stop(), events() returns what it
    recorded."""

    _seq = 0

    def __init__(self, workdir, mode="starttls", cert=None, key=None, host="127.0.0.1",
                 port=None, **cfg):
        TlsServer._seq += 1
        self.dir = os.path.join(workdir, f"srv-{TlsServer._seq}")
        os.makedirs(self.dir, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.config_path = os.path.join(self.dir, "config.json")
        self.events_path = os.path.join(self.dir, "events.jsonl")
        self.log_path = os.path.join(self.dir, "server.log")
        self.cfg = {"mode": mode, "cert": cert, "key": key, **cfg}
        self.proc = None
        self.log = None
        self.exit_status = None

    @property
    def name(self):
        return f"tls_server.py ({self.cfg['mode']})"

    def prepare(self):
        with open(self.config_path, "w") as f:
            json.dump(self.cfg, f)
        os.chmod(self.config_path, 0o600)

    def command(self):
        return [SYS_PYTHON, TLS_SERVER_PY, "--host", self.host, "--port", str(self.port),
                "--config", self.config_path, "--out", self.events_path]

    def conns(self):
        """conns - {conn: [event kinds in order]} (connect/disconnect included)."""
        out = {}
        for e in self.events():
            out.setdefault(e["conn"], []).append(e["event"])
        return out

    def check_clean_exit(self):
        check(self.exit_status == 0, f"tls_server.py ({self.cfg['mode']}) shut down cleanly "
              f"on SIGTERM", f"exit status {self.exit_status}; log: {self.log_tail()!r}")


# --- Postfix smtpd -----------------------------------------------------------

MASTER_CF = """\
# master.cf of a private Postfix instance for volley's tests (no chroot anywhere)
# service     type  private unpriv chroot wakeup maxproc command
{listen}      inet  n       -       n       -       -       smtpd
pickup        unix  n       -       n       60      1       pickup
cleanup       unix  n       -       n       -       0       cleanup
qmgr          unix  n       -       n       300     1       qmgr
tlsmgr        unix  -       -       n       1000?   1       tlsmgr
rewrite       unix  -       -       n       -       -       trivial-rewrite
bounce        unix  -       -       n       -       0       bounce
defer         unix  -       -       n       -       0       bounce
trace         unix  -       -       n       -       0       bounce
verify        unix  -       -       n       -       1       verify
flush         unix  n       -       n       1000?   0       flush
proxymap      unix  -       -       n       -       -       proxymap
proxywrite    unix  -       -       n       -       1       proxymap
smtp          unix  -       -       n       -       -       smtp
relay         unix  -       -       n       -       -       smtp
showq         unix  n       -       n       -       -       showq
error         unix  -       -       n       -       -       error
retry         unix  -       -       n       -       -       error
discard       unix  -       -       n       -       -       discard
anvil         unix  -       -       n       -       1       anvil
scache        unix  -       -       n       -       1       scache
postlog       unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
# main.cf of a private Postfix instance for volley's tests
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{relay_port}
smtp_tls_security_level = none
smtp_host_lookup = native
disable_dns_lookups = yes
smtpd_banner = $myhostname ESMTP Postfix (volley test)
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_recipient_limit = 1000
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 200
default_destination_recipient_limit = 1000
default_process_limit = 50
maillog_file = {maillog}
maillog_file_prefixes = {base}
biff = no
append_dot_mydomain = no
readme_directory = no
message_size_limit = 10240000
delay_warning_time = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""


class PostfixSmtpd:
    """PostfixSmtpd - a private Postfix (master in the foreground) with smtpd on
    127.0.0.1:port, STARTTLS with cert/key, relaying all it accepts to a
    recording AiosmtpdServer (self.sink) on another free port.

    Runs as root (master needs it; its daemons drop to the postfix user). Every
    file lives in workdir/postfix/: main.cf, master.cf, queue/, data/, maillog.
    After start(): relay ("127.0.0.1:PORT"), sink.transactions(), maillog()."""

    def __init__(self, workdir, cert, key, port=None):
        self.base = os.path.join(workdir, "postfix")
        self.conf = os.path.join(self.base, "conf")
        self.queue = os.path.join(self.base, "queue")
        self.data = os.path.join(self.base, "data")
        self.maillog_path = os.path.join(self.base, "maillog")
        self.out_path = os.path.join(self.base, "master.out")
        self.cert, self.key = cert, key
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.sink = AiosmtpdServer(workdir)
        self.proc = None
        self.out = None
        self.exit_status = None

    @property
    def relay(self):
        return f"{self.host}:{self.port}"

    def _postfix(self, args, what, timeout=60):
        cmd = [POSTFIX, "-c", self.conf] + list(args)
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failure(f"{what}: {' '.join(cmd)} did not finish within {timeout} s")
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")

    def start(self):
        if os.geteuid() != 0:
            raise Skip("PostfixSmtpd needs root (Postfix's master runs as root and its "
                          "daemons drop to the postfix user)")
        for exe in (POSTFIX, os.path.join(POSTFIX_DAEMONS, "master")):
            if not os.access(exe, os.X_OK):
                raise Failure(f"{exe} not found (install postfix: scripts/deps.sh)")
        for p in (self.base, self.conf, self.queue, self.data):
            os.makedirs(p, exist_ok=True)
        os.chmod(self.base, 0o755)
        self.sink.start()
        try:
            self._configure()
            self._run_master()
        except BaseException:
            self.stop()
            raise
        return self

    def _configure(self):
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(queue=self.queue, data=self.data, relay_port=self.sink.port,
                                   cert=self.cert, key=self.key, maillog=self.maillog_path,
                                   base=self.base))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen=f"{self.host}:{self.port}"))
        # queue_directory belongs to root, data_directory to the postfix user;
        # `postfix check` creates the queue's subdirectories with their owners and
        # modes (post-install create-missing)
        pf = _postfix_ids()
        os.chown(self.data, pf[0], pf[1])
        os.chmod(self.data, 0o700)
        os.chmod(self.queue, 0o755)
        rc, out = self._postfix(["check"], "postfix check")
        if rc != 0:
            raise Failure(f"postfix -c {self.conf} check failed ({rc}): {out[-2000:]}")

    def _run_master(self):
        # master -d: stay in the foreground, so the process group is ours to kill;
        # MAIL_CONFIG tells it (and every daemon it starts) which main.cf to read
        env = dict(os.environ, MAIL_CONFIG=self.conf)
        self.out = open(self.out_path, "wb")
        cmd = [os.path.join(POSTFIX_DAEMONS, "master"), "-c", self.conf, "-d"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_port(self.host, self.port, timeout=20, proc=self.proc)
            self._wait_banner(20)
        except Failure as e:
            raise Failure(f"Postfix smtpd did not start on {self.relay}: {e}\n"
                          f"master: {self._tail(self.out_path)!r}\n"
                          f"maillog: {self.maillog()[-2000:]!r}")

    def _wait_banner(self, timeout):
        """_wait_banner - smtpd answers with its 220 banner (master spawns it on demand)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=5) as s:
                    s.settimeout(max(0.5, deadline - time.monotonic()))
                    banner = s.recv(512).decode(errors="replace")
                    if banner.startswith("220 "):
                        s.sendall(b"QUIT\r\n")
                        return
                    last = banner
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        raise Failure(f"no 220 banner within {timeout} s (last: {last!r})")

    @staticmethod
    def _tail(path, n=2000):
        try:
            with open(path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def maillog(self):
        """maillog - Postfix's log so far (maillog_file, written by postlogd)."""
        return self._tail(self.maillog_path, 10 ** 7)

    def queue_count(self):
        """queue_count - messages still in Postfix's queue (incoming, active, deferred...)."""
        n = 0
        for sub in ("incoming", "active", "deferred", "hold", "maildrop"):
            top = os.path.join(self.queue, sub)
            for _root, _dirs, files in os.walk(top):
                n += len(files)
        return n

    def wait_delivered(self, n_rcpts, timeout=60):
        """wait_delivered - wait until the sink accepted n_rcpts recipients in total and
        Postfix's queue is empty; return the sink's transactions."""
        def done():
            txns = [t for t in self._sink_data() if t["code"] == 250]
            got = sum(len(t["rcpt_tos"]) for t in txns)
            return txns if got >= n_rcpts and self.queue_count() == 0 else None
        try:
            return wait_until(done, timeout, f"{n_rcpts} recipients relayed by Postfix")
        except Failure as e:
            raise Failure(f"{e}; queue holds {self.queue_count()}; maillog: "
                          f"{self.maillog()[-3000:]!r}")

    def _sink_data(self):
        """_sink_data - the sink's "data" events so far (content decoded), reading
        only complete lines: the sink may be writing the last one right now."""
        with open(self.sink.events_path, "rb") as f:
            data = f.read()
        out = []
        for ln in data[:data.rfind(b"\n") + 1].splitlines():
            e = json.loads(ln)
            if e["event"] == "data":
                e["content"] = base64.b64decode(e["content_b64"])
                out.append(e)
        return out

    def stop(self):
        if self.proc is not None and self.exit_status is None:
            # master exits on SIGTERM and takes its children with it; kill_group
            # SIGKILLs whatever of the group is left
            pgid = self.proc.pid
            self.exit_status = kill_group(self.proc, timeout=15)
            self.out.close()
            _wait_group_gone(pgid, 15)
        self.sink.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def _group_members(pgid):
    """_group_members - pids of live (not zombie) processes in process group pgid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] != "Z" and fields[2] == str(pgid):
            out.append(int(name))
    return out


def _wait_group_gone(pgid, timeout):
    """_wait_group_gone - wait until no live process of group pgid is left (Postfix's
    daemons, reparented when master exits); SIGKILL the group again meanwhile."""
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        if time.monotonic() >= deadline:
            raise Failure(f"Postfix processes {_group_members(pgid)} still alive "
                          f"{timeout} s after stopping master")
        try:
            os.killpg(pgid, 9)
        except ProcessLookupError:
            pass
        time.sleep(0.05)


def _postfix_ids():
    """_postfix_ids - (uid, gid) of the postfix user."""
    import pwd
    try:
        pw = pwd.getpwnam("postfix")
    except KeyError:
        raise Failure("no postfix user (install postfix: scripts/deps.sh)")
    return pw.pw_uid, pw.pw_gid


def strip_received(content):
    """strip_received - (the first header field if it is Received:, the rest)."""
    if not content.startswith(b"Received:"):
        return None, content
    lines = content.split(b"\r\n")
    i = 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\r\n".join(lines[:i]), b"\r\n".join(lines[i:])


def received_tls(received):
    """received_tls - "VERSION CIPHER" from a Postfix Received header's
    "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))", or None."""
    m = re.search(rb"using (TLSv1\.[0-3]) with cipher ([A-Z0-9_-]+)", received or b"")
    return f"{m.group(1).decode()} {m.group(2).decode()}" if m else None


# --- Python's own client, for checking the servers without volley --------------

def client_context(ca_file=None, verify=True, cert=None, key=None):
    """client_context - an SSLContext for smtplib: verifying against ca_file, or not."""
    if verify:
        ctx = ssl.create_default_context(cafile=ca_file)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def smtplib_send(host, port, rcpts, msg, starttls=False, implicit=False, ctx=None,
                 login=None, timeout=15, server_hostname=None):
    """smtplib_send - send msg to rcpts with smtplib (optionally STARTTLS or implicit
    TLS, and AUTH); return (ehlo features after TLS, cipher tuple or None)."""
    if implicit:
        s = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ctx)
    else:
        s = smtplib.SMTP(host, port, timeout=timeout)
    try:
        s.ehlo("selfcheck.test")
        if starttls:
            s.starttls(context=ctx)
            s.ehlo("selfcheck.test")
        if login:
            s.login(*login)
        s.sendmail("selfcheck@example.com", rcpts, msg)
        features = dict(s.esmtp_features)
        cipher = s.sock.cipher() if isinstance(s.sock, ssl.SSLSocket) else None
        s.quit()
        return features, cipher
    finally:
        s.close()


def no_secret_in(secrets, texts):
    """no_secret_in - [(where, secret)] for each secret found in texts ({where: str/bytes})."""
    found = []
    for where, t in texts.items():
        b = t.encode("utf-8", errors="replace") if isinstance(t, str) else t
        for s in secrets:
            sb = s.encode("utf-8") if isinstance(s, str) else s
            if sb and sb in b:
                found.append((where, s))
    return found


def files_under(d, skip=()):
    """files_under - {path: contents} of every regular file below d (bounded walk)."""
    out = {}
    n = 0
    for root, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if os.path.join(root, x) not in skip]
        for name in files:
            p = os.path.join(root, name)
            n += 1
            if n > 10000:
                raise Failure(f"more than 10000 files below {d}")
            if p in skip or not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                out[p] = f.read()
    return out


def timeout_for(base):
    """timeout_for - base seconds, or more under ASan/UBSan."""
    return base * 3 if SANITIZE else base

