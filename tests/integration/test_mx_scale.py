#!/usr/bin/python3
"""test_mx_scale.py - 100,000 recipients over 1,000 domains in MX mode.

unbound (dnslib.UnboundServer) serves the test world with 992 pool domains
(d0001.test ..., four shared MX sets) plus the special domains multi, failover
(dead first MX), implicit (no MX), cname, big (60 MX, TCP), nullmx, nosuch
(NXDOMAIN) and servfail; Postfix smtp-sink with dumps listens on
127.0.0.2 ... 127.0.0.7, all on one port. Recipients are interleaved over the
domains (recipient j of every domain, then j+1).

Checks: exit status, exactly one result per recipient line, every result as
expected for its domain (status, enhanced code, mx, ip, server), every
delivered recipient received exactly once by the right server and the others
by none, and unbound's query log: one MX query per domain, at most one query
per (name, type) (big.test MX: UDP truncated, then TCP).
Under VOLLEY_SANITIZE=1: 20,000 recipients over 200 domains.
"""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import SANITIZE, Failure, check, run_cases, statuses, tmpdir  # noqa: E402
from dnslib import (check_mx_run, check_query_counts, expect_for, pool_domain,  # noqa: E402
                    run_mx, write_mx_job)

MESSAGE = (b"From: News <news@example.com>\n"
           b"Subject: mx scale test\n"
           b"Message-ID: <mx-scale-1@example.com>\n"
           b"\n"
           b"Hello from the scale test.\n")

SPECIAL = ["multi.test", "failover.test", "implicit.test", "cname.test", "big.test",
           "nullmx.test", "nosuch.test", "servfail.test"]
SINK_IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"]
NDOMAINS, NRCPTS = (200, 20000) if SANITIZE else (1000, 100000)


def test_scale():
    label = f"{NRCPTS} recipients over {NDOMAINS} domains"
    npool = NDOMAINS - len(SPECIAL)
    doms = SPECIAL + [pool_domain(i) for i in range(1, npool + 1)]
    per = NRCPTS // NDOMAINS
    with tmpdir() as d:
        job = write_mx_job(d, doms, per, MESSAGE)
        run = run_mx(d, job, SINK_IPS, npool=npool, timeout=900 if SANITIZE else 300)
        results = check_mx_run(run, label, per_domain=False)
        want = {}
        for dom in doms:
            st = expect_for(dom)[0]
            want[st] = want.get(st, 0) + per
        check(statuses(results) == want, f"{label}: status totals {want}",
              f"got {statuses(results)}")
        check_query_counts(run, label, doms)
        ndumps = {ip: len(os.listdir(s.dump_dir)) for ip, s in run.sinks.items()}
        print(f"     transactions per server: {ndumps}; {run.elapsed:.1f} s, "
              f"{NRCPTS / run.elapsed:.0f} recipients/s", flush=True)


if __name__ == "__main__":
    try:
        run_cases("test_mx_scale", [test_scale])
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
