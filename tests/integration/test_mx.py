#!/usr/bin/python3
"""test_mx.py - volley send without --relay: delivery to each domain's MX hosts.

A real unbound (dnslib.UnboundServer) serves the test world of dnslib.py on
a free loopback port; Postfix smtp-sink (with dumps) or the recording
aiosmtpd server listens on each mail exchanger's own loopback address, all
on one port P (volley --port P). Everything is started and stopped by each
case.

Cases:
  dns_fixture        the server side alone: unbound answers what the cases
                     rely on (MX preferences, null MX, CNAME chain, an MX
                     answer too big for UDP: TC over UDP, complete over TCP,
                     A/AAAA, NXDOMAIN, SERVFAIL, silence), never the internet.
  special_domains    one job over every special domain (preference order, dead
                     first MX, implicit MX, CNAME, 60 MX over TCP, null MX,
                     NXDOMAIN, SERVFAIL, 5xx/4xx/421 greetings, shared pools):
                     statuses, enhanced codes, mx/ip/server keys, which server
                     received what, and at most one query per (name, type).
  dns_timeout        a name unbound never answers: deferred 4.4.3; others unaffected.
  dns_server_rotation  --dns HOLE --dns UNBOUND: retransmission to the next
                     server; --dns HOLE alone: every recipient deferred 4.4.3.
  ipv6               AAAA before A (dual-stack MX lands on ::1), --dns [::1]:PORT.
  ip_version_4       --ip-version 4: no AAAA query at all, dual-stack MX on IPv4.
  max_connections_per_destination
                     --max-connections-per-destination 2 over three domains
                     sharing one MX set: never more than 2 connections at once.
  cname_only_answer  a resolver that answers a CNAME alone (unbound local-data):
                     volley must follow it itself.
  moved_exchanger    the MX host's address changes during the run (TTL 1 s): after
                     its old address failed, the retry finds the new one.
  moved_domain       the domain's MX set changes during the run: after the old
                     set failed, the retry asks for the MX again and delivers.
"""
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (SANITIZE, VOLLEY, Failure, read_results_mx, Skip, check, check_eq,  # noqa: E402
                 free_port_on, ipv6_loopback_ok, kill_group, run_cases, tmpdir, write_job)
from dnslib import (BIG_MX, EDNS_PAYLOAD, UnboundServer, check_mx_run,  # noqa: E402
                    check_query_counts, mx_sink, mx_unbound, pool_domain, pool_expect,
                    query_tcp, query_udp, records, run_mx, write_mx_job)

MESSAGE = (b"From: News <news@example.com>\n"
           b"Subject: mx test\n"
           b"Message-ID: <mx-1@example.com>\n"
           b"\n"
           b"Hello,\n"
           b".a line starting with a dot\n"
           b"bye\n")

TIMEOUT = 300 if SANITIZE else 120
GOOD_IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"]
BAD_IPS = ["127.0.0.10", "127.0.0.11", "127.0.0.12"]   # 500, 450, 421 greetings


def test_dns_fixture():
    """The server side, without volley: what every other case relies on."""
    with tmpdir() as d:
        v6 = ipv6_loopback_ok()
        with mx_unbound(d, npool=8, ipv6=v6) as ub:
            H, P = ub.host, ub.port

            m = query_udp(H, P, "multi.test", "MX")
            check_eq((m["rcode"], sorted(records(m, "MX"))),
                     ("NOERROR", [(10, "mx1.multi.test"), (20, "mx2.multi.test")]),
                     "multi.test MX 10 mx1, MX 20 mx2")
            check_eq(records(query_udp(H, P, "mx1.multi.test", "A"), "A"), ["127.0.0.2"],
                     "mx1.multi.test A 127.0.0.2")
            m = query_udp(H, P, "mx1.multi.test", "AAAA")
            check((m["rcode"], records(m, "AAAA"), bool(records(m, "SOA", "authority")))
                  == ("NOERROR", [], True), "mx1.multi.test AAAA: NODATA with the SOA",
                  f"{m}")
            check_eq(records(query_udp(H, P, "nullmx.test", "MX"), "MX"), [(0, "")],
                     "nullmx.test: MX 0 . (null MX)")
            m = query_udp(H, P, "cname.test", "MX")
            check_eq((records(m, "CNAME"), sorted(records(m, "MX"))),
                     (["multi.test"], [(10, "mx1.multi.test"), (20, "mx2.multi.test")]),
                     "cname.test MX: the CNAME and multi.test's MX records in one answer")
            m = query_udp(H, P, "cnameonly.test", "MX")
            check_eq((records(m, "CNAME"), records(m, "MX")), (["multi.test"], []),
                     "cnameonly.test MX (unbound local-data): the CNAME alone")
            m = query_udp(H, P, "implicit.test", "MX")
            check_eq((m["rcode"], records(m, "MX")), ("NOERROR", []),
                     "implicit.test MX: NODATA")
            check_eq(records(query_udp(H, P, "implicit.test", "A"), "A"), ["127.0.0.4"],
                     "implicit.test A 127.0.0.4")
            check_eq(query_udp(H, P, "nosuch.test", "MX")["rcode"], "NXDOMAIN",
                     "nosuch.test: NXDOMAIN")
            check_eq(records(query_udp(H, P, "mxd.test", "AAAA"), "AAAA"), ["::1"],
                     "mxd.test AAAA ::1")
            check_eq(records(query_udp(H, P, "mxd.test", "A"), "A"), ["127.0.0.8"],
                     "mxd.test A 127.0.0.8")
            check_eq(records(query_udp(H, P, "mx6.test", "A"), "A"), [],
                     "mx6.test: no A (IPv6 only)")
            check_eq(sorted(records(query_udp(H, P, pool_domain(3), "MX"), "MX")),
                     [(10, "mxc.pool.test"), (20, "mxa.pool.test")],
                     f"{pool_domain(3)}: shared MX set mxc/mxa")
            check_eq(pool_expect(3)[3], "127.0.0.2", f"{pool_domain(3)} lands on 127.0.0.2")

            m = query_udp(H, P, "big.test", "MX", edns=EDNS_PAYLOAD)
            check(m["tc"] and m["size"] <= EDNS_PAYLOAD,
                  f"big.test MX over UDP (EDNS {EDNS_PAYLOAD}): TC set",
                  f"tc {m['tc']}, {m['size']} octets, {len(m['answer'])} records")
            m = query_tcp(H, P, "big.test", "MX")
            check(not m["tc"] and m["size"] > EDNS_PAYLOAD
                  and sorted(h for _p, h in records(m, "MX")) == sorted(BIG_MX),
                  "big.test MX over TCP: all 60 records",
                  f"tc {m['tc']}, {m['size']} octets, {len(records(m, 'MX'))} MX")
            check_eq(records(query_udp(H, P, BIG_MX[59], "A"), "A"), ["127.0.0.5"],
                     "big.test's MX hosts: A 127.0.0.5")

            t0 = time.monotonic()
            m = query_udp(H, P, "servfail.test", "MX", timeout=5)
            took = time.monotonic() - t0
            check(m["rcode"] == "SERVFAIL" and took < 1.0,
                  "servfail.test: SERVFAIL at once", f"{m['rcode']} after {took:.2f} s")
            t0 = time.monotonic()
            m = query_udp(H, P, "example.com", "A", timeout=5)
            took = time.monotonic() - t0
            check(m["rcode"] == "SERVFAIL" and took < 1.0,
                  "a name outside the world: SERVFAIL at once (the internet is never asked)",
                  f"{m['rcode']} after {took:.2f} s")
            for name, where, wait in (("timeout.test", ub.addr, 7), ("multi.test", ub.hole, 2)):
                host, port = where.rsplit(":", 1)
                try:
                    m = query_udp(host, int(port), name, "MX", timeout=wait)
                    got = f"answered {m['rcode']}"
                except Failure:
                    got = None
                check(got is None, f"{name} at {where}: no answer within {wait} s "
                      f"(volley gives up after 3 x 2 s)", got or "")
            if v6:
                check_eq(records(query_udp("::1", P, "multi.test", "A"), "A"), [],
                         "unbound also answers on [::1]")
            time.sleep(0.2)
            q = ub.queries()
        check_eq((q[("multi.test", "MX")], q[("big.test", "MX")], q[("nosuch.test", "MX")]),
                 (1, 2, 1), "query log: counted per (name, type)")


def special_domains():
    return (["multi.test", "failover.test", "implicit.test", "cname.test", "big.test",
             "nullmx.test", "nosuch.test", "servfail.test", "g5.test", "g4.test",
             "g421.test", "allfail.test"] + [pool_domain(i) for i in range(1, 9)])


def test_special_domains():
    label = "special domains"
    with tmpdir() as d:
        doms = special_domains()
        job = write_mx_job(d, doms, 3, MESSAGE)
        run = run_mx(d, job, GOOD_IPS + BAD_IPS, npool=8, timeout=TIMEOUT,
                     args=["--connections", "20"])
        results = check_mx_run(run, label)
        allfail = [r for r in results if r["rcpt"].endswith("@allfail.test")]
        check(all(r["code"] == 421 for r in allfail),
              f"{label}: allfail.test deferred with the last MX's error (421)",
              f"{[(r['code'], r['reply']) for r in allfail][:3]}")
        check_query_counts(run, label, doms)
        greeted = {ip: len(run.sinks[ip].dumps()) for ip in BAD_IPS}
        check_eq(greeted, {ip: 0 for ip in BAD_IPS},
                 f"{label}: no transaction at the 5xx/4xx/421-greeting servers")


def test_dns_timeout():
    label = "DNS timeout"
    with tmpdir() as d:
        doms = ["timeout.test", "multi.test", "implicit.test"]
        run = run_mx(d, write_mx_job(d, doms, 3, MESSAGE), GOOD_IPS, timeout=TIMEOUT)
        check_mx_run(run, label)
        check(run.elapsed < 60, f"{label}: volley gave up on the silent name in time",
              f"{run.elapsed:.1f} s")
        check_query_counts(run, label, doms)


def test_dns_server_rotation():
    with tmpdir() as d:
        label = "--dns HOLE --dns UNBOUND"
        doms = ["multi.test", "implicit.test", "failover.test"]
        run = run_mx(d, write_mx_job(d, doms, 3, MESSAGE), GOOD_IPS, timeout=TIMEOUT,
                     dns=lambda ub: [ub.hole, ub.addr])
        check_mx_run(run, label)
        check_query_counts(run, label, doms)
    with tmpdir() as d:
        label = "--dns HOLE only"
        over = {dom: ("deferred", "4.4.3", None, None) for dom in doms}
        run = run_mx(d, write_mx_job(d, doms, 3, MESSAGE), GOOD_IPS, timeout=TIMEOUT,
                     dns=lambda ub: [ub.hole])
        check_mx_run(run, label, overrides=over)
        check(run.elapsed < 60, f"{label}: finished in time", f"{run.elapsed:.1f} s")
        check_eq(sum(run.ub.queries().values()), 0, f"{label}: unbound was never asked")


def test_dns_failure_retried():
    """A DNS timeout is a temporary failure: with retries on, the recipients of the
    silent name are attempted again (the failure is cached 5 s, so later attempts
    fail at once) and end deferred 4.4.3 with attempts counted; the others are
    delivered in one attempt."""
    label = "DNS timeout, retried"
    with tmpdir() as d:
        doms = ["timeout.test", "multi.test", "noaddr.test"]
        run = run_mx(d, write_mx_job(d, doms, 3, MESSAGE), GOOD_IPS, timeout=TIMEOUT,
                     args=["--retry-initial", "200ms", "--max-retry-time", "1500ms"])
        check_eq(run.rc, 0, f"{label}: exit status")
        res = read_results_mx(run.res)
        silent = [r for r in res if r["rcpt"].endswith("@timeout.test")]
        noaddr = [r for r in res if r["rcpt"].endswith("@noaddr.test")]
        check(len(noaddr) == 3 and all(r["status"] == "deferred" and r["enhanced"] == "4.4.3"
                                       and "no address found" in r["reply"] and
                                       r["attempts"] >= 3 for r in noaddr),
              f"{label}: an MX host without addresses: looked up again on each retry, "
              "deferred 4.4.3 'no address found' in the end", f"{noaddr[:1]}")
        rest = [r for r in res if r["rcpt"].endswith("@multi.test")]
        check(len(silent) == 3 and all(r["status"] == "deferred" and r["enhanced"] == "4.4.3"
                                       and r["category"] == "dns" for r in silent),
              f"{label}: the silent name's recipients end deferred 4.4.3 (dns)", f"{silent[:1]}")
        check(all(r["attempts"] >= 3 for r in silent),
              f"{label}: they were attempted again (backoff 200 ms, for 1.5 s)",
              f"{[r['attempts'] for r in silent]}")
        check(len(rest) == 3 and all(r["status"] == "delivered" and r["attempts"] == 1
                                     for r in rest), f"{label}: the others delivered at once",
              f"{rest[:1]}")


def test_ipv6():
    if not ipv6_loopback_ok():
        raise Skip("IPv6 loopback ([::1]) is not available here")
    label = "IPv6"
    with tmpdir() as d:
        doms = ["v6.test", "dual.test", "multi.test"]
        run = run_mx(d, write_mx_job(d, doms, 3, MESSAGE),
                     ["127.0.0.2", "127.0.0.3", "127.0.0.8", "::1"], ipv6=True,
                     timeout=TIMEOUT, dns=lambda ub: [ub.addr6])
        check_mx_run(run, label)
        check_query_counts(run, label, doms)
        q = run.ub.queries(client="::1")
        check(q[("mxd.test", "AAAA")] == 1, f"{label}: the queries came over [::1]",
              f"{dict(q)}")


def test_ip_version_4():
    label = "--ip-version 4"
    with tmpdir() as d:
        v6 = ipv6_loopback_ok()
        doms = ["dual.test", "multi.test", "implicit.test", "cname.test", "failover.test"]
        ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.8"] + (["::1"] if v6 else [])
        run = run_mx(d, write_mx_job(d, doms, 3, MESSAGE), ips, ipv6=v6, timeout=TIMEOUT,
                     args=["--ip-version", "4"])
        check_mx_run(run, label,
                     overrides={"dual.test": ("delivered", None, "mxd.test", "127.0.0.8")})
        q = check_query_counts(run, label, doms)
        aaaa = {k: n for k, n in q.items() if k[1] == "AAAA"}
        check(not aaaa, f"{label}: no AAAA query at all", f"{aaaa}")
        check(q[("mxd.test", "A")] == 1, f"{label}: A of mxd.test asked", f"{dict(q)}")


def concurrency(server):
    """concurrency - the most connections a recording server had open at once.

    A connection ends at its QUIT (recorded before the 221 is sent, so before
    volley can know the session is over) or else at its disconnect."""
    open_, most = set(), 0
    for e in server.events():
        if e["event"] == "connect":
            open_.add(e["conn"])
            most = max(most, len(open_))
        elif e["event"] in ("quit", "disconnect"):
            open_.discard(e["conn"])
    return most


def test_max_connections_per_destination():
    doms = [f"conc{i}.test" for i in (1, 2, 3)] + [f"concb{i}.test" for i in (1, 2, 3)]
    over = {dom: ("delivered", None, "mxconc.test", "127.0.0.13") for dom in doms[:3]}
    over.update({dom: ("delivered", None, "mxconcb.test", "127.0.0.14") for dom in doms[3:]})
    for limit in (2, 5):
        label = f"--max-connections-per-destination {limit}"
        with tmpdir() as d:
            run = run_mx(d, write_mx_job(d, doms, 100, MESSAGE), [],
                         aio_ips=["127.0.0.13", "127.0.0.14"], timeout=TIMEOUT,
                         args=["--max-connections-per-destination", str(limit),
                               "--connections", "40", "--max-recipients", "1"])
            check_mx_run(run, label, overrides=over)
            check_query_counts(run, label, doms)
            for ip, srv in sorted(run.aio.items()):
                most = concurrency(srv)
                conns = len(srv.events("connect"))
                check(most <= limit, f"{label}: {ip} (one MX set, three domains) never had "
                      f"more than {limit} connections open at once",
                      f"{most} at once ({conns} connections in all)")
                check_eq(most, limit, f"{label}: {ip}: the limit was reached (volley wanted "
                         f"more; {conns} connections in all)")


def test_cname_only_answer():
    label = "CNAME-only answer"
    with tmpdir() as d:
        doms = ["cnameonly.test", "multi.test"]
        run = run_mx(d, write_mx_job(d, doms, 3, MESSAGE), ["127.0.0.2", "127.0.0.3"],
                     timeout=TIMEOUT)
        check_mx_run(run, label)


DEAD_IP = "127.0.0.20"   # nothing listens there: connection refused
LIVE_IP = "127.0.0.2"


def moved(label, before, after):
    """moved - three recipients at move.test while the DNS says `before` (zone lines,
    TTL 1 s), which leads to DEAD_IP; one second in, the DNS is restarted on the same
    port saying `after`, which leads to an smtp-sink on LIVE_IP. volley retries
    (every 400 ms, doubling, for 10 s) must find the new address and deliver."""
    with tmpdir() as d:
        port = free_port_on(["127.0.0.1", DEAD_IP, LIVE_IP])
        addrs = [f"m{i}@move.test" for i in range(3)]
        job = write_job(d, addrs, MESSAGE, from_="news@example.com")
        res = os.path.join(d, "results.jsonl")
        ub = UnboundServer(d, before, ttl=1, name="unbound-before").start()
        ub2 = None
        try:
            with mx_sink(d, LIVE_IP, port, dump_dir=os.path.join(d, "dumps")) as sink:
                cmd = [VOLLEY, "send", "--dns", ub.addr, "--port", str(port), "--ip-version",
                       "4", "--retry-initial", "400ms", "--max-retry-time", "10s",
                       "--results", res, "--quiet", job]
                p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
                try:
                    time.sleep(1.0)
                    check(p.poll() is None, f"{label}: volley still retrying after 1 s")
                    ub.stop()
                    ub2 = UnboundServer(d, after, ttl=1, name="unbound-after")
                    ub2.port = ub.port
                    ub2.start()
                    out, err = p.communicate(timeout=TIMEOUT)
                finally:
                    if p.poll() is None:
                        kill_group(p)
            check_eq(p.returncode, 0, f"{label}: exit status")
        finally:
            ub.stop()
            if ub2:
                ub2.stop()
        res = read_results_mx(res)
        check_eq(len(res), 3, f"{label}: three result lines")
        check(all(r["status"] == "delivered" and r["ip"] == LIVE_IP and r["attempts"] >= 2
                  for r in res), f"{label}: delivered at the new address after a failed attempt",
              f"{res}")
        got = sorted(a.strip("<>") for t in sink.dumps() for a in t["rcpts"])
        check_eq(got, sorted(addrs), f"{label}: the new exchanger received each once")


def test_moved_exchanger():
    moved("moved exchanger",
          ["move.test. IN MX 10 mx.move.test.", f"mx.move.test. IN A {DEAD_IP}"],
          ["move.test. IN MX 10 mx.move.test.", f"mx.move.test. IN A {LIVE_IP}"])


def test_moved_domain():
    moved("moved domain",
          ["move.test. IN MX 10 old.move.test.", f"old.move.test. IN A {DEAD_IP}",
           f"new.move.test. IN A {LIVE_IP}"],
          ["move.test. IN MX 10 new.move.test.", f"old.move.test. IN A {DEAD_IP}",
           f"new.move.test. IN A {LIVE_IP}"])


if __name__ == "__main__":
    try:
        run_cases("test_mx", [test_dns_fixture, test_special_domains, test_dns_timeout,
                              test_dns_failure_retried, test_dns_server_rotation, test_ipv6, test_ip_version_4,
                              test_max_connections_per_destination,
                              test_cname_only_answer, test_moved_exchanger, test_moved_domain])
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
