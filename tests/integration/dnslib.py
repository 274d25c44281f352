"""dnslib.py - a real DNS server (unbound) for volley's MX tests, and a tiny DNS client.

UnboundServer runs `unbound -d -c CONF` on a free loopback port, as a
context manager. The test's records are one zone file, loaded as an
auth-zone "for upstream": unbound's iterator resolves from it exactly as it
would from an authoritative server on the internet, so the answers are
ordinary recursive answers (CNAME chains included). It never reaches the
internet: the root and every "failing" zone are stub zones whose only
server unbound cannot use:

    servfail_zones   stub to an address listed in do-not-query-address:
                     unbound answers SERVFAIL at once;
    timeout_zones    stub to a loopback "black hole": a UDP socket that is
                     bound and never read, and a TCP listener that never
                     accepts. unbound keeps waiting (well over a minute), so
                     a client with a shorter DNS timeout sees no answer.

The black hole's address (hole) can also be given to volley as a --dns
server that never answers.

Every query unbound receives is logged (log-queries); queries() counts them
per (name, type), e.g. {("multi.test", "MX"): 1}.

The client (query_udp / query_tcp / build_query / parse_message) is
enough to check what the server answers: header flags (TC, RCODE),
questions, and A, AAAA, MX, CNAME, SOA records, with name compression.
Everything is bounded: packet sizes, pointer chains, waits.
"""
import contextlib
import ipaddress
import os
import random
import re
import socket
import struct
import subprocess
import time
from collections import Counter

from lib import (AiosmtpdServer, Failure, SmtpSink, check, check_eq,  # noqa: E402
                 check_one_result_per_line, check_summary, free_port_on, kill_group,
                 rcpt_lines, read_results_mx, run_volley, write_job)

UNBOUND = "/usr/sbin/unbound"

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "OPT": 41}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
          5: "REFUSED"}
EDNS_PAYLOAD = 1232          # what volley advertises (DNS_UDP_PAYLOAD)
MAX_POINTERS = 64            # compression pointers followed in one name at most


# --- wire format -------------------------------------------------------------

def encode_name(name):
    """encode_name - a presentation-format name ("a.b" or "a.b.") in wire format."""
    name = name.rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            raw = label.encode("ascii")
            if not 1 <= len(raw) <= 63:
                raise ValueError(f"bad label in {name!r}")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(name, qtype, qid=None, edns=EDNS_PAYLOAD, rd=True):
    """build_query - (qid, wire bytes) of a query for (name, qtype), with an EDNS0 OPT
    record advertising edns octets (None: no OPT record)."""
    qid = random.randrange(0x10000) if qid is None else qid
    flags = 0x0100 if rd else 0
    header = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    t = TYPES[qtype] if isinstance(qtype, str) else qtype
    q = encode_name(name) + struct.pack("!HH", t, 1)
    opt = b"\0" + struct.pack("!HHIH", TYPES["OPT"], edns, 0, 0) if edns else b""
    return qid, header + q + opt


def _read_name(data, off):
    """_read_name - (name without trailing dot, lower case; offset after it)."""
    labels, end, jumps, pos = [], None, 0, off
    while True:
        if pos >= len(data):
            raise ValueError("name runs past the packet")
        n = data[pos]
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise ValueError("truncated pointer")
            jumps += 1
            if jumps > MAX_POINTERS:
                raise ValueError("pointer loop")
            if end is None:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | data[pos + 1]
            continue
        if n & 0xC0:
            raise ValueError("bad label type")
        if n == 0:
            if end is None:
                end = pos + 1
            return ".".join(labels).lower(), end
        if pos + 1 + n > len(data):
            raise ValueError("label runs past the packet")
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", errors="replace"))
        pos += 1 + n


def _rdata(data, off, rtype, rdlen):
    """_rdata - the record data as a Python value (str, (pref, host), tuple) or bytes."""
    raw = data[off:off + rdlen]
    if rtype == 1 and rdlen == 4:
        return str(ipaddress.IPv4Address(raw))
    if rtype == 28 and rdlen == 16:
        return str(ipaddress.IPv6Address(raw))
    if rtype in (2, 5, 12):
        return _read_name(data, off)[0]
    if rtype == 15:
        return (struct.unpack("!H", raw[:2])[0], _read_name(data, off + 2)[0])
    if rtype == 6:
        mname, p = _read_name(data, off)
        rname, p = _read_name(data, p)
        return (mname, rname) + struct.unpack("!IIIII", data[p:p + 20])
    return raw


def parse_message(data):
    """parse_message - a DNS message as a dict: id, qr, aa, tc, rd, ra, rcode (name),
    question [(name, type)], answer/authority/additional [(name, type, ttl, value)]."""
    if len(data) < 12:
        raise ValueError(f"short DNS message ({len(data)} octets)")
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", data[:12])
    msg = {"id": qid, "qr": bool(flags & 0x8000), "aa": bool(flags & 0x0400),
           "tc": bool(flags & 0x0200), "rd": bool(flags & 0x0100),
           "ra": bool(flags & 0x0080), "rcode": RCODES.get(flags & 0xF, str(flags & 0xF)),
           "question": [], "answer": [], "authority": [], "additional": [],
           "size": len(data)}
    off = 12
    for _ in range(qd):
        name, off = _read_name(data, off)
        t, _c = struct.unpack("!HH", data[off:off + 4])
        msg["question"].append((name, TYPE_NAMES.get(t, t)))
        off += 4
    for section, count in (("answer", an), ("authority", ns), ("additional", ar)):
        for _ in range(count):
            name, off = _read_name(data, off)
            if off + 10 > len(data):
                raise ValueError("record header runs past the packet")
            t, _c, ttl, rdlen = struct.unpack("!HHIH", data[off:off + 10])
            off += 10
            if off + rdlen > len(data):
                raise ValueError("record data runs past the packet")
            msg[section].append((name, TYPE_NAMES.get(t, t), ttl, _rdata(data, off, t, rdlen)))
            off += rdlen
    return msg


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def query_udp(host, port, name, qtype, timeout=2.0, edns=EDNS_PAYLOAD):
    """query_udp - one UDP query; the parsed answer, or raises Failure on timeout."""
    qid, pkt = build_query(name, qtype, edns=edns)
    with socket.socket(_family(host), socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.send(pkt)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:       # bounded: ignore stray packets
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = s.recv(65535)
            except socket.timeout:
                break
            except ConnectionRefusedError:
                raise Failure(f"DNS query {name} {qtype} to {host}:{port}: refused")
            m = parse_message(data)
            if m["id"] == qid and m["qr"]:
                return m
    raise Failure(f"DNS query {name} {qtype} to {host}:{port} over UDP: no answer "
                  f"within {timeout} s")


def _recv_exact(s, n, deadline):
    buf = b""
    while len(buf) < n:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise Failure("DNS over TCP: connection closed early")
        buf += chunk
    return buf


def query_tcp(host, port, name, qtype, timeout=3.0, edns=EDNS_PAYLOAD):
    """query_tcp - one query over TCP (two-octet length prefix); the parsed answer."""
    qid, pkt = build_query(name, qtype, edns=edns)
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(pkt)) + pkt)
            n = struct.unpack("!H", _recv_exact(s, 2, deadline))[0]
            m = parse_message(_recv_exact(s, n, deadline))
    except OSError as e:
        raise Failure(f"DNS query {name} {qtype} to {host}:{port} over TCP: {e}")
    if m["id"] != qid:
        raise Failure(f"DNS over TCP: answer id {m['id']} != query id {qid}")
    return m


def records(msg, rtype, section="answer"):
    """records - the values of the records of rtype in a section, in order."""
    return [v for (_n, t, _ttl, v) in msg[section] if t == rtype]


# --- ports ---------------------------------------------------------------------

def free_udp_tcp_port(hosts=("127.0.0.1",), tries=50):
    """free_udp_tcp_port - a port free for both UDP and TCP on every host."""
    for _ in range(tries):
        with socket.socket(_family(hosts[0]), socket.SOCK_STREAM) as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        if all(_bindable(h, port, kind) for h in hosts
               for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM)):
            return port
    raise Failure(f"no port free for UDP and TCP on {hosts} after {tries} tries")


def _bindable(host, port, kind):
    try:
        with socket.socket(_family(host), kind) as s:
            s.bind((host, port))
        return True
    except OSError:
        return False


# --- unbound -------------------------------------------------------------------

NO_SERVER = "127.255.255.254"  # listed in do-not-query-address: a stub to it fails at once


def _q(s):
    """_q - a quoted string for unbound.conf."""
    if '"' in s or "\n" in s:
        raise ValueError(f"cannot quote {s!r} for unbound.conf")
    return f'"{s}"'


class UnboundServer:
    """UnboundServer - unbound on a free loopback port, as a context manager.

    records: zone-file lines (absolute names, e.g. "multi.test. IN MX 10 mx1.multi.test.")
           of the zone origin, served as an auth-zone for upstream: unbound's
           iterator resolves from it as from a real authoritative server, so
           answers are ordinary recursive answers (RA set, CNAME chains followed
           and included, NXDOMAIN/NODATA with the SOA). A SOA and NS are added.
    origin: the zone's name (default "test.", whose built-in unbound default zone
           is switched off).
    local_zones: {zone: [rr, ...]} served as static local-zone/local-data instead
           (unbound's local data answers a CNAME with the CNAME alone, it does not
           add the target's records).
    servfail_zones: zones resolved through a stub whose only address unbound may
           not query: SERVFAIL at once.
    timeout_zones: zones resolved through a stub to a black hole (see the file
           header): no answer for a long time (over a minute).
    ipv6: also listen on [::1] (same port).
    After start(): host, port, addr ("127.0.0.1:PORT", volley's --dns form),
    addr6 ("[::1]:PORT"), hole ("127.0.0.1:PORT" of a black hole, when
    timeout_zones or black_hole=True), queries(), replies(), log_text()."""

    def __init__(self, workdir, records, origin="test.", local_zones=None,
                 servfail_zones=(), timeout_zones=(), ipv6=False, black_hole=False,
                 name="unbound", ttl=3600, log_queries=True):
        self.workdir = workdir
        self.log_queries = log_queries
        self.records = list(records)
        self.origin = origin if origin.endswith(".") else origin + "."
        self.local_zones = dict(local_zones or {})
        self.servfail_zones = list(servfail_zones)
        self.timeout_zones = list(timeout_zones)
        self.ipv6 = ipv6
        self.want_hole = black_hole or bool(self.timeout_zones)
        self.ttl = ttl
        self.host = "127.0.0.1"
        hosts = ("127.0.0.1", "::1") if ipv6 else ("127.0.0.1",)
        self.port = free_udp_tcp_port(hosts)
        self.conf_path = os.path.join(workdir, f"{name}.conf")
        self.zone_path = os.path.join(workdir, f"{name}.zone")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.out_path = os.path.join(workdir, f"{name}.out")
        self.pid_path = os.path.join(workdir, f"{name}.pid")
        self.proc = None
        self.out = None
        self.exit_status = None
        self.holes = []          # black-hole sockets (closed at stop)
        self.hole_port = None
        self.since = 0           # log offset where queries()/replies() start

    @property
    def addr(self):
        return f"{self.host}:{self.port}"

    @property
    def addr6(self):
        return f"[::1]:{self.port}"

    @property
    def hole(self):
        return f"127.0.0.1:{self.hole_port}" if self.hole_port else None

    def _black_hole(self):
        """_black_hole - bind a UDP socket and a TCP listener on one port, never serve them."""
        for _ in range(20):
            port = free_udp_tcp_port(("127.0.0.1",))
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
                t.listen(1)
            except OSError:
                u.close()
                t.close()
                continue
            self.holes = [u, t]
            return port
        raise Failure("could not bind a black-hole DNS port")

    def zone_text(self):
        """zone_text - the zone file of the origin."""
        o = self.origin
        L = [f"$ORIGIN {o}", f"$TTL {self.ttl}"]
        if not any(re.search(r"\sSOA\s", r) for r in self.records):
            L.append(f"{o} IN SOA ns.{o} hostmaster.{o} 1 3600 600 86400 {self.ttl}")
            L.append(f"{o} IN NS ns.{o}")
            L.append(f"ns.{o} IN A 127.0.0.1")
        return "\n".join(L + self.records) + "\n"

    def config(self):
        """config - the text of unbound.conf."""
        L = ["server:",
             "  verbosity: 1",
             f"  interface: 127.0.0.1@{self.port}",
             f"  port: {self.port}"]
        if self.ipv6:
            L.append(f"  interface: ::1@{self.port}")
        L += ["  do-ip4: yes", f"  do-ip6: {'yes' if self.ipv6 else 'no'}",
              "  do-udp: yes", "  do-tcp: yes",
              "  do-daemonize: no", "  num-threads: 1", "  so-reuseport: no",
              '  username: ""', '  chroot: ""',
              f"  directory: {_q(self.workdir)}",
              f"  pidfile: {_q(self.pid_path)}",
              f"  logfile: {_q(self.log_path)}",
              "  use-syslog: no",
              f"  log-queries: {'yes' if self.log_queries else 'no'}",
              f"  log-replies: {'yes' if self.log_queries else 'no'}",
              "  access-control: 127.0.0.0/8 allow", "  access-control: ::1/128 allow",
              "  do-not-query-localhost: no",
              f"  do-not-query-address: {NO_SERVER}",
              # no DNSSEC: no validator module, no trust anchors
              '  module-config: "iterator"',
              "  edns-buffer-size: 1232", "  max-udp-size: 1232",
              "  minimal-responses: yes", "  prefetch: no",
              "  outgoing-range: 64", "  num-queries-per-thread: 64",
              f"  local-zone: {_q(self.origin)} nodefault"]
        for z, rrs in self.local_zones.items():
            L.append(f"  local-zone: {_q(z)} static")
            L += [f"  local-data: {_q(rr)}" for rr in rrs]
        L += ["", "auth-zone:", f"  name: {_q(self.origin)}",
              f"  zonefile: {_q(self.zone_path)}",
              "  for-upstream: yes", "  for-downstream: no", "  fallback-enabled: no"]
        # Never the internet: the root is a stub to an address unbound may not query.
        L += ["", "stub-zone:", '  name: "."', f"  stub-addr: {NO_SERVER}"]
        for z in self.servfail_zones:
            L += ["", "stub-zone:", f"  name: {_q(z)}", f"  stub-addr: {NO_SERVER}"]
        if self.want_hole and not self.holes:
            self.hole_port = self._black_hole()
        for z in self.timeout_zones:
            L += ["", "stub-zone:", f"  name: {_q(z)}",
                  f"  stub-addr: 127.0.0.1@{self.hole_port}"]
        L += ["", "remote-control:", "  control-enable: no", ""]
        return "\n".join(L)

    def start(self):
        if not os.access(UNBOUND, os.X_OK):
            raise Failure(f"{UNBOUND} not found (install unbound: scripts/deps.sh)")
        try:
            with open(self.zone_path, "w") as f:
                f.write(self.zone_text())
            with open(self.conf_path, "w") as f:
                f.write(self.config())
            chk = subprocess.run(["/usr/sbin/unbound-checkconf", self.conf_path],
                                 capture_output=True, timeout=30)
            if chk.returncode != 0:
                raise Failure(f"unbound-checkconf {self.conf_path}: "
                              f"{(chk.stdout + chk.stderr).decode(errors='replace')[-1500:]}")
            self.out = open(self.out_path, "wb")
            self.proc = subprocess.Popen([UNBOUND, "-d", "-c", self.conf_path],
                                         stdin=subprocess.DEVNULL, stdout=self.out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            self._wait_ready(15.0)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout):
        """_wait_ready - until a real query for the origin's SOA is answered NOERROR."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"unbound exited with status {self.proc.returncode}: "
                              f"{self.log_text()[-1500:]!r}")
            try:
                m = query_udp(self.host, self.port, self.origin, "SOA", timeout=0.3)
                if m["rcode"] == "NOERROR" and records(m, "SOA"):
                    self.mark()
                    return
                last = f"answer {m['rcode']} {m['answer']}"
            except (Failure, OSError, ValueError) as e:
                last = str(e)
            time.sleep(0.05)
        raise Failure(f"unbound did not answer on {self.addr} within {timeout} s "
                      f"({last}); log: {self.log_text()[-1500:]!r}")

    def _close_holes(self):
        for s in self.holes:
            s.close()
        self.holes = []

    def stop(self):
        if self.proc is not None and self.exit_status is None:
            self.exit_status = kill_group(self.proc)
        if self.out is not None:
            self.out.close()
            self.out = None
        self._close_holes()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def log_text(self):
        """log_text - unbound's log file and its stdout/stderr so far."""
        out = ""
        for p in (self.log_path, self.out_path):
            try:
                with open(p, "rb") as f:
                    out += f.read().decode(errors="replace")
            except OSError:
                pass
        return out

    # "info: 127.0.0.1 multi.test. MX IN" (query), and with log-replies
    # "info: 127.0.0.1 multi.test. MX IN NOERROR 0.000000 0 79" (rcode, time, cached, size)
    _QUERY_RE = re.compile(r"info: (\S+) (\S+) (\S+) IN$")
    _REPLY_RE = re.compile(r"info: (\S+) (\S+) (\S+) IN ([A-Z]+) ([0-9.]+) (\d+) (\d+)$")

    def _log_lines(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.since)
                data = f.read().decode(errors="replace")
        except OSError:
            return []
        return data.splitlines()

    def mark(self):
        """mark - from now on, queries() and replies() count only what follows."""
        try:
            self.since = os.path.getsize(self.log_path)
        except OSError:
            self.since = 0

    def queries(self, client=None):
        """queries - Counter of (name, type) over the queries logged since start()
        (the readiness probe excluded) or mark(); name lower case, no trailing dot.
        client: only the queries from this address."""
        c = Counter()
        for ln in self._log_lines():
            m = self._QUERY_RE.search(ln)
            if m and (client is None or m.group(1) == client):
                c[(m.group(2).rstrip(".").lower(), m.group(3))] += 1
        return c

    def replies(self):
        """replies - (name, type, rcode, size) of each reply logged since start() or
        mark(). A size over EDNS_PAYLOAD can only have gone over TCP."""
        out = []
        for ln in self._log_lines():
            m = self._REPLY_RE.search(ln)
            if m:
                out.append((m.group(2).rstrip(".").lower(), m.group(3), m.group(4),
                            int(m.group(7))))
        return out


# --- the MX test world -----------------------------------------------------------
#
# One zone, "test.", shared by test_mx.py, test_mx_scale.py and bench/mx.sh.
# Each mail exchanger has its own loopback address; every SMTP server listens
# on the same port P on its address (volley's --port P).
#
#   127.0.0.2  mx1.multi.test, mxc.pool.test     127.0.0.8   mxd.test (also AAAA ::1)
#   127.0.0.3  mx2.multi.test                    127.0.0.9   dead.failover.test (nothing)
#   127.0.0.4  implicit.test (no MX)             127.0.0.10  mx5xx.test (500 greeting)
#   127.0.0.5  the 60 MX hosts of big.test       127.0.0.11  mx4xx.test (450 greeting)
#   127.0.0.6  mxa.pool.test                     127.0.0.12  mx421.test (421, disconnect)
#   127.0.0.7  mxb.pool.test                     127.0.0.13  mxconc.test, 127.0.0.14 mxconcb.test
#   ::1        mx6.test, mxd.test

BIG_MX = [f"mail-exchanger-number-{i:02d}-with-a-deliberately-long-name.big.test"
          for i in range(60)]

# domain: (status, enhanced, mx, ip); mx None = no connection; ip "::1" = IPv6.
# mx "*big" = any of BIG_MX.
EXPECT = {
    "multi.test":    ("delivered", None, "mx1.multi.test", "127.0.0.2"),
    "failover.test": ("delivered", None, "mx2.multi.test", "127.0.0.3"),
    "noaddr.test": ("deferred", "4.4.3", None, None),
    "implicit.test": ("delivered", None, "implicit.test", "127.0.0.4"),
    "cname.test":    ("delivered", None, "mx1.multi.test", "127.0.0.2"),
    "big.test":      ("delivered", None, "*big", "127.0.0.5"),
    "nullmx.test":   ("bounced", "5.1.10", None, None),
    "nosuch.test":   ("bounced", "5.1.2", None, None),
    "servfail.test": ("deferred", "4.4.3", None, None),
    "timeout.test":  ("deferred", "4.4.3", None, None),
    "g5.test":       ("delivered", None, "mx2.multi.test", "127.0.0.3"),
    "g4.test":       ("delivered", None, "mx2.multi.test", "127.0.0.3"),
    "g421.test":     ("delivered", None, "mx2.multi.test", "127.0.0.3"),
    "allfail.test":  ("deferred", None, "mx421.test", "127.0.0.12"),
    "v6.test":       ("delivered", None, "mx6.test", "::1"),
    "dual.test":     ("delivered", None, "mxd.test", "::1"),
    "cnameonly.test": ("delivered", None, "mx1.multi.test", "127.0.0.2"),
}
SERVFAIL_ZONES = ["servfail.test."]
TIMEOUT_ZONES = ["timeout.test."]
# served as static local data: unbound answers the CNAME alone (no MX of the target)
LOCAL_ZONES = {"cnameonly.test.": ["cnameonly.test. 3600 IN CNAME multi.test."]}

# The shared pools: d0001.test ... each with one of these MX sets.
POOL_SETS = [
    [(10, "mxa.pool.test")],
    [(10, "mxb.pool.test")],
    [(10, "mxa.pool.test"), (20, "mxb.pool.test")],
    [(10, "mxc.pool.test"), (20, "mxa.pool.test")],
]
POOL_IP = {"mxa.pool.test": "127.0.0.6", "mxb.pool.test": "127.0.0.7",
           "mxc.pool.test": "127.0.0.2"}


def pool_domain(i):
    """pool_domain - the name of pool domain i (from 1)."""
    return f"d{i:04d}.test"


def is_pool(domain):
    """is_pool - is domain one of the pool domains?"""
    return re.match(r"^d\d{4}\.test$", domain) is not None


def pool_expect(i):
    """pool_expect - (status, enhanced, mx, ip) for pool domain i."""
    mx = POOL_SETS[i % len(POOL_SETS)][0][1]
    return ("delivered", None, mx, POOL_IP[mx])


def zone_records(npool=0):
    """zone_records - the zone lines of the test world, with npool pool domains."""
    R = [
        "multi.test. IN MX 10 mx1.multi.test.",
        "multi.test. IN MX 20 mx2.multi.test.",
        "mx1.multi.test. IN A 127.0.0.2",
        "mx2.multi.test. IN A 127.0.0.3",
        "noaddr.test. IN MX 10 ghost.noaddr.test.",  # a host with no address at all
        "failover.test. IN MX 10 dead.failover.test.",
        "failover.test. IN MX 20 mx2.multi.test.",
        "dead.failover.test. IN A 127.0.0.9",
        "implicit.test. IN A 127.0.0.4",
        "nullmx.test. IN MX 0 .",
        "cname.test. IN CNAME multi.test.",
        "v6.test. IN MX 10 mx6.test.",
        "mx6.test. IN AAAA ::1",
        "dual.test. IN MX 10 mxd.test.",
        "mxd.test. IN A 127.0.0.8",
        "mxd.test. IN AAAA ::1",
        "g5.test. IN MX 10 mx5xx.test.",
        "g5.test. IN MX 20 mx2.multi.test.",
        "g4.test. IN MX 10 mx4xx.test.",
        "g4.test. IN MX 20 mx2.multi.test.",
        "g421.test. IN MX 10 mx421.test.",
        "g421.test. IN MX 20 mx2.multi.test.",
        "allfail.test. IN MX 10 mx5xx.test.",
        "allfail.test. IN MX 20 mx421.test.",
        "mx5xx.test. IN A 127.0.0.10",
        "mx4xx.test. IN A 127.0.0.11",
        "mx421.test. IN A 127.0.0.12",
        "mxconc.test. IN A 127.0.0.13",
        "mxconcb.test. IN A 127.0.0.14",
    ]
    for i in range(1, 4):
        R.append(f"conc{i}.test. IN MX 10 mxconc.test.")
        R.append(f"concb{i}.test. IN MX 10 mxconcb.test.")
    for h in BIG_MX:
        R.append(f"big.test. IN MX 10 {h}.")
        R.append(f"{h}. IN A 127.0.0.5")
    for h, ip in POOL_IP.items():
        R.append(f"{h}. IN A {ip}")
    for i in range(1, npool + 1):
        for pref, h in POOL_SETS[i % len(POOL_SETS)]:
            R.append(f"{pool_domain(i)}. IN MX {pref} {h}.")
    return R


def mx_unbound(workdir, npool=0, ipv6=False, **kw):
    """mx_unbound - an UnboundServer serving the test world (not started)."""
    return UnboundServer(workdir, zone_records(npool), local_zones=LOCAL_ZONES,
                         servfail_zones=SERVFAIL_ZONES, timeout_zones=TIMEOUT_ZONES,
                         ipv6=ipv6, **kw)


def domain_of(addr):
    return addr.rsplit("@", 1)[1].lower()


def server_name(ip, port):
    """server_name - what volley puts in "server" for ip:port."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# --- running volley in MX mode against the world, and checking what happened -----

# Extra smtp-sink options for the exchangers that must be skipped.
SINK_OPTIONS = {"127.0.0.10": ["-f", "connect"],   # 500 greeting
                "127.0.0.11": ["-r", "connect"],   # 450 greeting
                "127.0.0.12": ["-Q", "connect"]}   # 421 greeting, disconnect
ALL_IPS = [f"127.0.0.{i}" for i in range(2, 15)]


def mx_sink(d, ip, port, **kw):
    """mx_sink - an SmtpSink on ip:port (not started), with an output file of its own
    (SmtpSink names it after the port only, which all exchangers share)."""
    sink = SmtpSink(d, host=ip, port=port, **kw)
    sink.out_path = os.path.join(d, f"smtp-sink-{ip.replace(':', '_')}-{port}.out")
    return sink


class MxRun:
    """MxRun - what one volley run in MX mode produced (all servers stopped)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def landed(self):
        """landed - {recipient address: [server ip, ...]} over every sink's dumps and
        every aiosmtpd server's accepted transactions (one ip per time seen)."""
        seen = {}
        for ip, sink in self.sinks.items():
            for t in sink.dumps():
                for r in t["rcpts"]:
                    a = r.split(" ")[0]
                    a = a[1:-1] if a.startswith("<") and a.endswith(">") else a
                    seen.setdefault(a, []).append(ip)
        for ip, srv in self.aio.items():
            for t in srv.transactions():
                if 200 <= t["code"] < 300:
                    for a in t["rcpt_tos"]:
                        seen.setdefault(a, []).append(ip)
        return seen


def write_mx_job(d, domains, per, message, tag="u"):
    """write_mx_job - a job with per recipients for each domain, interleaved
    (recipient j of every domain, then j+1, ...). Returns (path, addresses)."""
    addrs = [f"{tag}{j:05d}@{dom}" for j in range(per) for dom in domains]
    return write_job(d, addrs, message, from_="news@example.com"), addrs


def run_mx(d, addrs_job, sink_ips, args=(), aio_ips=(), npool=0, ipv6=False, dns=None,
           timeout=180, port=None, ub_kw=None):
    """run_mx - start unbound (the world with npool pool domains), an smtp-sink with
    dumps on each of sink_ips and a recording aiosmtpd server on each of aio_ips,
    all on one port P; run `volley send --dns ... --port P args JOB`; stop
    everything (also on failure). dns: the --dns values (default: unbound's
    IPv4 address), a function of the UnboundServer."""
    job, addrs = addrs_job
    hosts = list(ALL_IPS) + (["::1"] if ipv6 else [])
    port = port or free_port_on(["127.0.0.1"] + hosts)
    res = os.path.join(d, "results.jsonl")
    sinks, aio = {}, {}
    with contextlib.ExitStack() as st:
        ub = st.enter_context(mx_unbound(d, npool=npool, ipv6=ipv6, **(ub_kw or {})))
        for ip in sink_ips:
            sinks[ip] = st.enter_context(mx_sink(
                d, ip, port, options=SINK_OPTIONS.get(ip, []),
                dump_dir=os.path.join(d, "dump-" + ip.replace(":", "_"))))
        for ip in aio_ips:
            aio[ip] = st.enter_context(AiosmtpdServer(d, host=ip, port=port,
                                                      pipelining=True))
        dns_args = []
        for a in (dns(ub) if dns else [ub.addr]):
            dns_args += ["--dns", a]
        cmd = ["send"] + dns_args + ["--port", str(port), "--results", res,
                          "--max-retry-time", "0"] + \
            list(args) + [job]
        print(f"     volley {' '.join(cmd)}", flush=True)
        t0 = time.monotonic()
        rc, out, err = run_volley(cmd, timeout=timeout)
        elapsed = time.monotonic() - t0
    print(f"     ({elapsed:.2f} s for {len(addrs)} recipients; exit {rc})", flush=True)
    return MxRun(rc=rc, out=out, err=err, job=job, addrs=addrs, res=res, port=port,
                 sinks=sinks, aio=aio, ub=ub, elapsed=elapsed)


def expect_for(domain, overrides=None):
    """expect_for - (status, enhanced, mx, ip) expected for a domain of the world."""
    if overrides and domain in overrides:
        return overrides[domain]
    if domain in EXPECT:
        return EXPECT[domain]
    m = re.match(r"^d(\d{4})\.test$", domain)
    if m:
        return pool_expect(int(m.group(1)))
    raise Failure(f"no expectation for domain {domain}")


def result_problems(r, want, port):
    """result_problems - what is wrong with one result, given (status, enhanced, mx, ip)."""
    status, enhanced, mx, ip = want
    p = []
    if r["status"] != status:
        p.append(f"status {r['status']} (reply {r['reply'][:200]!r}), want {status}")
        return p
    if enhanced is not None and r["enhanced"] != enhanced:
        p.append(f"enhanced {r['enhanced']!r}, want {enhanced!r}")
    if status == "delivered" and r["code"] != 250:
        p.append(f"code {r['code']}, want 250")
    if mx is None:
        if r["code"] is not None:
            p.append(f"code {r['code']}, want null (decided by DNS)")
        for k in ("mx", "ip", "server"):
            if r[k] is not None:
                p.append(f"{k} {r[k]!r}, want null (no connection was made)")
    else:
        if not (r["mx"] in BIG_MX if mx == "*big" else r["mx"] == mx):
            p.append(f"mx {r['mx']!r}, want {'one of big.test MX hosts' if mx == '*big' else mx!r}")
        if r["ip"] != ip:
            p.append(f"ip {r['ip']!r}, want {ip!r}")
        if r["server"] != server_name(ip, port):
            p.append(f"server {r['server']!r}, want {server_name(ip, port)!r}")
    return p


def check_mx_run(run, label, overrides=None, max_examples=3, per_domain=True):
    """check_mx_run - exit status, one result per line, every result as the world
    expects (per domain: status, enhanced, code, mx, ip, server), and every delivered
    recipient received exactly once by the right server, the others by none.
    per_domain: one "ok" line per domain (else only the pool domains' total).
    Returns the results."""
    check_eq(run.rc, 0, f"{label}: volley exit status")
    results = read_results_mx(run.res)
    lines = rcpt_lines(run.job)
    by_line = check_one_result_per_line(results, lines)
    wrong = [r for r in results if r["rcpt"] != lines[r["line"]].decode()]
    check(not wrong, f"{label}: each result names the address of its line", f"{wrong[:2]}")
    check_summary(run.out, results, run.res)
    landed = run.landed()
    problems = {}
    for r in by_line.values():
        dom = domain_of(r["rcpt"])
        want = expect_for(dom, overrides)
        p = result_problems(r, want, run.port)
        got_at = landed.get(r["rcpt"], [])
        if want[0] == "delivered":
            if got_at != [want[3]]:
                p.append(f"received by {got_at or 'no server'}, want exactly once by {want[3]}")
        elif got_at:
            p.append(f"received by {got_at} although {want[0]}")
        if p:
            problems.setdefault(dom, []).append(f"{r['rcpt']}: " + "; ".join(p))
    stray = sorted(set(landed) - {r["rcpt"] for r in results})
    doms = sorted({domain_of(a) for a in run.addrs})
    for dom in doms:
        if dom not in problems and (per_domain or not is_pool(dom)):
            st, enh, mx, ip = expect_for(dom, overrides)
            where = ""
            if mx:
                where = f", mx {mx if mx != '*big' else 'a big.test host'}, ip {ip}"
            check(True, f"{label}: {dom}: {st}" + (f" {enh}" if enh else "") + where +
                  (", received there once" if st == "delivered" else ", nothing received"))
    if not per_domain:
        pool = [dom for dom in doms if is_pool(dom)]
        ok_pool = [dom for dom in pool if dom not in problems]
        check(True, f"{label}: {len(ok_pool)} of {len(pool)} pool domains delivered to "
              f"their first MX, received there once")
    detail = "\n".join(f"  {dom} ({len(v)} wrong): " + " | ".join(v[:max_examples])
                       for dom, v in sorted(problems.items()))
    check(not problems, f"{label}: every recipient's result and server as expected",
          f"{sum(len(v) for v in problems.values())} wrong:\n{detail}")
    check(not stray, f"{label}: servers received no address outside the job", f"{stray[:5]}")
    return results


def check_query_counts(run, label, domains):
    """check_query_counts - in unbound's query log: one MX query per domain of the
    job (big.test: the UDP query answered with TC, then the same over TCP with the
    full answer), at most one query per (name, type) otherwise; failures
    (SERVFAIL) at most once per 5 s (volley's failure cache); no address
    lookups for domains whose MX answer forbids them."""
    q = run.ub.queries()
    replies = run.ub.replies()
    special = {("big.test", "MX")}
    fail_names = {z.rstrip(".") for z in SERVFAIL_ZONES}
    timeout_names = {z.rstrip(".") for z in TIMEOUT_ZONES}
    fail_bound = 1 + int(run.elapsed // 5)
    doms = set(domains)
    bad_mx = {d: q[(d, "MX")] for d in doms
              if d not in timeout_names and d not in fail_names and q[(d, "MX")] != 1
              and (d, "MX") not in special}
    check(not bad_mx, f"{label}: exactly one MX query per domain ({len(doms)} domains)",
          f"MX query counts differ from 1: {sorted(bad_mx.items())[:10]}")
    over = {k: n for k, n in q.items() if n > 1 and k not in special
            and k[0] not in fail_names and k[0] not in timeout_names}
    check(not over, f"{label}: at most one query per (name, type) "
          f"({len(q)} pairs, {sum(q.values())} queries)", f"repeated: {sorted(over.items())[:10]}")
    fails = {k: n for k, n in q.items() if k[0] in fail_names and n > fail_bound}
    check(not fails, f"{label}: SERVFAIL names asked at most {fail_bound} times "
          f"(once per 5 s of run)", f"{fails}")
    if "big.test" in doms:
        big = sorted(size for (n, t, rc, size) in replies if (n, t) == ("big.test", "MX"))
        check(q[("big.test", "MX")] == 2 and len(big) == 2 and big[0] <= EDNS_PAYLOAD < big[1],
              f"{label}: big.test MX asked twice: UDP (truncated, {big[:1]} octets) then TCP "
              f"(full answer, {big[1:]} octets > {EDNS_PAYLOAD})",
              f"queries {q[('big.test', 'MX')]}, reply sizes {big}")
    for dom in sorted(doms & {"nullmx.test", "nosuch.test", "servfail.test"}):
        addr_q = {t: q[(dom, t)] for t in ("A", "AAAA") if q[(dom, t)]}
        check(not addr_q, f"{label}: no address query for {dom} (no implicit MX after "
              f"{EXPECT[dom][1]})", f"{addr_q}")
    return q
