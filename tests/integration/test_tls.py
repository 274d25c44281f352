#!/usr/bin/python3
"""test_tls.py - volley send with TLS: STARTTLS, implicit TLS, policies, certificates.

The certificates are made by the test with the openssl command line
(tlslib.make_pki: a throwaway CA; good, expired, wrong-name and unknown-CA
server certificates; a client certificate). The servers are real and on
loopback: Postfix smtpd (a private instance, tlslib.PostfixSmtpd, relaying to
a recording aiosmtpd server) and tls_server.py (tlslib.TlsServer), each
started and stopped by its case.

Cases:
  fixture            the server side alone, with openssl verify and Python's
                     smtplib: the PKI, every tls_server.py mode, Postfix relaying.
  postfix_starttls   STARTTLS to Postfix smtpd, --tls verify --ca-file: every
                     recipient delivered once, content intact, results "tls"
                     equal to what Postfix wrote in its Received header.
  opportunistic_fallback  a server whose STARTTLS handshake fails (non-TLS
                     octets): opportunistic reconnects once in plaintext and
                     delivers; required defers everyone and sends nothing.
  verify_failures    --tls verify against expired, wrong-name and unknown-CA
                     certificates: nobody delivered, the reason names the
                     problem, nothing sent in plaintext; controls: the good
                     certificate (by IP and by name) passes, required accepts
                     the expired one, the system store does not know our CA.
  handshake_drop     a server dropping the connection in the middle of the
                     handshake: required defers with a clear reason,
                     opportunistic falls back to plaintext.
  implicit_tls       --tls-wrapper (RFC 8314): TLS from the first octet, no STARTTLS.
  port_465           --relay 127.0.0.1:465 means implicit TLS (skipped when the
                     port cannot be bound).
  tls_none           --tls none sends no STARTTLS although it is offered.
  connection_reuse   --max-messages-per-connection 5 over TLS: one handshake
                     per connection, EHLO again after STARTTLS, fewer TLS
                     sessions than transactions.
  tls12              a server capped at TLS 1.2: "tls" says TLSv1.2 and the cipher.
  client_certificate --tls-cert/--tls-key: the server sees the client's certificate.
  mx_opportunistic   MX mode (unbound on loopback): the default is opportunistic:
                     TLS where offered, plaintext after a failed handshake,
                     plaintext where STARTTLS is not offered.

Run with --fixture to run only the fixture case (no volley needed). Without
a --tls option in `volley send --help` the script exits 77 (skipped).
"""
import os
import re
import smtplib
import socket
import ssl
import sys
from collections import Counter

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Failure, Skip, check, check_eq, check_one_result_per_line,  # noqa: E402
                 check_summary, free_port_on, normalise, rcpt_lines, run_cases, statuses,
                 tmpdir, write_job)
from tlslib import (PostfixSmtpd, TlsServer, client_context, openssl_verify,  # noqa: E402
                    received_tls, require_tls_option, run_send, shared_pki, smtplib_send,
                    strip_received, timeout_for)

SENDER = "bulk@example.com"
MESSAGE = (b"From: Bulk <bulk@example.com>\n"
           b"To: Readers <readers@example.org>\n"
           b"Date: Mon, 01 Jan 2024 00:00:00 +0000\n"
           b"Message-ID: <tls-test-1@example.com>\n"
           b"Subject: over TLS\n"
           b"\n"
           b"Dear reader,\n"
           b".a line starting with a dot\n"
           b".\n"
           b"bye\n")
REASON = {   # what a result's reply must say for each certificate problem
    "expired": re.compile(r"expired", re.I),
    "wrongname": re.compile(r"name|mismatch", re.I),
    "unknown": re.compile(r"unknown CA|issuer|self.signed|untrusted", re.I),
}
TLS_FAILURE = re.compile(r"TLS|handshake|SSL", re.I)


def addresses(n, domain="example.org", tag="rcpt"):
    return [f"{tag}{i:04d}@{domain}" for i in range(n)]


def relay_args(srv, relay=None):
    return ["--relay", relay or srv.relay]


def check_delivered(run, job, addrs, label):
    """check_delivered - exit 0, one result per line, everyone delivered; returns results."""
    check_eq(run.rc, 0, f"{label}: volley exit status")
    check(run.results is not None, f"{label}: results file written")
    check_one_result_per_line(run.results, rcpt_lines(job))
    check_eq(statuses(run.results), {"delivered": len(addrs)}, f"{label}: all delivered")
    check_eq(sorted(r["rcpt"] for r in run.results), sorted(addrs),
             f"{label}: results name every address")
    return run.results


def check_server_got(srv, addrs, label, tls):
    """check_server_got - srv's accepted transactions hold exactly addrs, once each,
    with the message intact, under TLS (tls=True), in plaintext (False)."""
    txns = srv.transactions()
    got = Counter(a for t in txns if t["code"] == 250 for a in t["rcpt_tos"])
    check_eq(got, Counter(addrs), f"{label}: the server accepted each recipient exactly once")
    check(all(t["content"] == normalise(MESSAGE) for t in txns),
          f"{label}: every message arrived byte for byte")
    check(all(t["mail_from"] == SENDER for t in txns), f"{label}: MAIL FROM is {SENDER}")
    if tls:
        check(all(t["tls"] for t in txns), f"{label}: every transaction ran under TLS",
              f"{[(t['conn'], t['tls']) for t in txns]}")
    else:
        check(all(t["tls"] is None for t in txns), f"{label}: every transaction ran in "
              f"plaintext", f"{[(t['conn'], t['tls']) for t in txns]}")
    return txns


def check_results_tls(results, srv, label):
    """check_results_tls - every result's "tls" is what the server negotiated."""
    server_side = {e["tls"] for e in srv.events("tls")}
    check(len(server_side) == 1, f"{label}: the server negotiated one TLS version and cipher",
          f"{server_side}")
    want = server_side.pop()
    bad = [r["tls"] for r in results if r["tls"] != want]
    check(not bad, f"{label}: every result has \"tls\": {want!r} (as the server negotiated)",
          f"{len(bad)} differ, e.g. {bad[:3]}")


def check_nothing_sent(srv, label):
    """check_nothing_sent - srv got no MAIL, RCPT or DATA at all."""
    n = {k: len(srv.events(k)) for k in ("mail", "rcpt", "data")}
    check_eq(n, {"mail": 0, "rcpt": 0, "data": 0}, f"{label}: the server got no MAIL, RCPT "
             f"or DATA (nothing was sent, in plaintext or otherwise)")


# --- fixture -----------------------------------------------------------------

def test_fixture():
    """The server side without volley: PKI, every tls_server.py mode, Postfix."""
    pki = shared_pki()
    ok, out = openssl_verify(pki.ca_cert, pki.good_cert, ip="127.0.0.1")
    check(ok, "PKI: the good certificate verifies for 127.0.0.1", out)
    ok, out = openssl_verify(pki.ca_cert, pki.good_cert, host="localhost")
    check(ok, "PKI: the good certificate verifies for localhost", out)
    ok, out = openssl_verify(pki.ca_cert, pki.expired_cert, ip="127.0.0.1")
    check(not ok and "expired" in out, "PKI: the expired certificate fails as expired", out)
    ok, out = openssl_verify(pki.ca_cert, pki.wrongname_cert)
    check(ok, "PKI: the wrong-name certificate chains to the CA", out)
    ok, out = openssl_verify(pki.ca_cert, pki.wrongname_cert, ip="127.0.0.1")
    check(not ok and "mismatch" in out, "PKI: ... but not for 127.0.0.1", out)
    ok, out = openssl_verify(pki.ca_cert, pki.unknown_cert, ip="127.0.0.1")
    check(not ok and "issuer" in out, "PKI: the unknown-CA certificate does not chain", out)
    ok, out = openssl_verify(pki.unknown_ca_cert, pki.unknown_cert, ip="127.0.0.1")
    check(ok, "PKI: ... to our CA, but does to its own", out)
    msg = normalise(MESSAGE)
    verify = client_context(pki.ca_cert)
    with tmpdir() as d:
        with TlsServer(d, "starttls", pki.good_cert, pki.good_key, auth=True, user="u",
                       password="p", client_ca=pki.ca_cert) as srv:
            feats, cipher = smtplib_send("127.0.0.1", srv.port, ["a@example.org"], msg,
                                         starttls=True, ctx=client_context(
                                             pki.ca_cert, cert=pki.client_cert,
                                             key=pki.client_key), login=("u", "p"))
            c = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
            try:
                c.ehlo("fixture.test")
                plain_feats = dict(c.esmtp_features)
                c.quit()
            finally:
                c.close()
        srv.check_clean_exit()
        check("starttls" in plain_feats and "auth" not in plain_feats,
              "starttls server: STARTTLS offered in plaintext, AUTH not", f"{plain_feats}")
        check("auth" in feats and "starttls" not in feats,
              "starttls server: AUTH offered after STARTTLS, STARTTLS no longer", f"{feats}")
        t = srv.transactions()
        check(len(t) == 1 and t[0]["tls"] == f"{cipher[1]} {cipher[0]}"
              and t[0]["auth_user"] == "u" and t[0]["content"] == msg,
              "starttls server: records the transaction with its TLS and login", f"{t}")
        check_eq([e["client_cn"] for e in srv.events("tls")], ["volley client"],
                 "starttls server: records the client certificate's CN")

        with TlsServer(d, "implicit", pki.good_cert, pki.good_key) as srv:
            smtplib_send("127.0.0.1", srv.port, ["a@example.org"], msg, implicit=True,
                         ctx=verify)
        srv.check_clean_exit()
        check(srv.events("connect")[0]["tls"] and not srv.events("starttls")
              and srv.transactions()[0]["tls"], "implicit server: TLS from the first octet")

        for mode in ("garbage", "drop"):
            with TlsServer(d, mode, pki.good_cert, pki.good_key) as srv:
                err = None
                try:
                    smtplib_send("127.0.0.1", srv.port, ["a@example.org"], msg,
                                 starttls=True, ctx=verify)
                except (ssl.SSLError, OSError, smtplib.SMTPException) as e:
                    err = e
                smtplib_send("127.0.0.1", srv.port, ["b@example.org"], msg)
            srv.check_clean_exit()
            check(err is not None, f"{mode} server: the STARTTLS handshake fails",
                  "smtplib's handshake succeeded")
            print(f"     ({mode}: smtplib said {type(err).__name__}: {err})")
            check(len(srv.events("tls_error")) == 1 and not srv.events("tls")
                  and [t["rcpt_tos"] for t in srv.transactions()] == [["b@example.org"]],
                  f"{mode} server: records the failed handshake, still takes plaintext mail",
                  f"{srv.events()}")

        with PostfixSmtpd(d, pki.good_cert, pki.good_key) as pf:
            smtplib_send("127.0.0.1", pf.port, ["x@example.org", "y@example.net"], msg,
                         starttls=True, ctx=verify)
            txns = pf.wait_delivered(2, timeout=30)
        rec, rest = strip_received(txns[0]["content"])
        check(len(txns) == 1 and sorted(txns[0]["rcpt_tos"]) == ["x@example.org",
                                                                 "y@example.net"]
              and rest == msg and received_tls(rec),
              "Postfix smtpd: takes mail over STARTTLS and relays it intact", f"{txns}")


# --- Postfix -----------------------------------------------------------------

def test_postfix_starttls():
    pki = shared_pki()
    addrs = addresses(20, "example.org") + addresses(10, "example.net", "other")
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with PostfixSmtpd(d, pki.good_cert, pki.good_key) as pf:
            run = run_send(d, ["--relay", pf.relay, "--tls", "verify", "--ca-file", pki.ca_cert,
                               "--connections", "2", "--max-recipients", "10", job],
                           label="postfix")
            results = check_delivered(run, job, addrs, "Postfix")
            txns = pf.wait_delivered(len(addrs), timeout=timeout_for(60))
            log = pf.maillog()
        check_summary(run.out, results, run.res_path)
        check(all(r["code"] == 250 and r["enhanced"] == "2.0.0" and "queued as" in r["reply"]
                  for r in results), "Postfix: every result is Postfix's 250 2.0.0 queued as",
              f"{[r['reply'] for r in results[:3]]}")
        got = Counter(a for t in txns for a in t["rcpt_tos"])
        check_eq(got, Counter(addrs), "Postfix relayed each recipient exactly once")
        heads, bodies = zip(*(strip_received(t["content"]) for t in txns))
        check(all(b == normalise(MESSAGE) for b in bodies),
              "Postfix: every message intact after Postfix's Received header")
        tls = {received_tls(h) for h in heads}
        check(len(tls) == 1 and None not in tls, "Postfix's Received headers say TLS",
              f"{heads[:2]}")
        want = tls.pop()
        check(all(r["tls"] == want for r in results),
              f"Postfix: every result has \"tls\": {want!r}, as in Postfix's Received header",
              f"{Counter(r['tls'] for r in results)}")
        check(all(b"with ESMTPS" in h for h in heads), "Postfix: received with ESMTPS")
        n = len(re.findall(r"TLS connection established from localhost\[127\.0\.0\.1\]", log))
        check(1 <= n <= 2, "Postfix logged one TLS session per volley connection (1 or 2)",
              f"{n}")


# --- policies ------------------------------------------------------------------

def test_opportunistic_fallback():
    pki = shared_pki()
    addrs = addresses(5)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with TlsServer(d, "garbage", pki.good_cert, pki.good_key) as srv:
            run = run_send(d, relay_args(srv) + ["--tls", "opportunistic", "--connections", "1",
                                                 job], label="opportunistic")
        srv.check_clean_exit()
        results = check_delivered(run, job, addrs, "opportunistic, broken STARTTLS")
        check(all(r["tls"] is None for r in results),
              "opportunistic fallback: every result has \"tls\": null")
        check_server_got(srv, addrs, "opportunistic fallback", tls=False)
        conns = srv.conns()
        check_eq(len(conns), 2, "opportunistic fallback: two connections (TLS try, plaintext)")
        first, second = conns[min(conns)], conns[max(conns)]
        check("starttls" in first and "tls_error" in first and "mail" not in first,
              "opportunistic fallback: the first connection tried STARTTLS and sent no MAIL",
              f"{first}")
        check("starttls" not in second and "data" in second,
              "opportunistic fallback: the second one carried the mail without STARTTLS",
              f"{second}")

        with TlsServer(d, "garbage", pki.good_cert, pki.good_key) as srv:
            run = run_send(d, relay_args(srv) + ["--tls", "required", "--connections", "1",
                                                 job], label="required")
        srv.check_clean_exit()
        check_eq(run.rc, 0, "required, broken STARTTLS: volley exit status")
        check_one_result_per_line(run.results, rcpt_lines(job))
        check_eq(statuses(run.results), {"deferred": len(addrs)},
                 "required, broken STARTTLS: everyone deferred")
        check(all(TLS_FAILURE.search(r["reply"]) for r in run.results),
              "required, broken STARTTLS: the reason says TLS/handshake",
              f"{[r['reply'] for r in run.results[:2]]}")
        print(f"     (reason: {run.results[0]['reply']!r})")
        check_nothing_sent(srv, "required, broken STARTTLS")
        check(all("starttls" in c for c in srv.conns().values()),
              "required, broken STARTTLS: every connection tried STARTTLS", f"{srv.conns()}")


def test_verify_failures():
    pki = shared_pki()
    addrs = addresses(4)
    reasons = {}
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        for name in ("expired", "wrongname", "unknown"):
            label = f"verify, {name} certificate"
            with TlsServer(d, "starttls", getattr(pki, f"{name}_cert"),
                           getattr(pki, f"{name}_key")) as srv:
                run = run_send(d, relay_args(srv) + ["--tls", "verify", "--ca-file",
                                                     pki.ca_cert, job], label=name)
            srv.check_clean_exit()
            check_eq(run.rc, 0, f"{label}: volley exit status")
            check_one_result_per_line(run.results, rcpt_lines(job))
            st = statuses(run.results)
            check(st in ({"deferred": len(addrs)}, {"failed": len(addrs)}),
                  f"{label}: nobody delivered, everyone deferred (or everyone failed)", f"{st}")
            bad = [r["reply"] for r in run.results
                   if not (REASON[name].search(r["reply"]) and "certificate" in r["reply"])]
            check(not bad, f"{label}: every reason names the certificate problem "
                  f"({REASON[name].pattern})", f"{bad[:2]}")
            reasons[name] = run.results[0]["reply"]
            print(f"     (reason: {reasons[name]!r})")
            check_nothing_sent(srv, label)
            check(srv.events("starttls"), f"{label}: volley did issue STARTTLS")
            check(all("starttls" in c for c in srv.conns().values()),
                  f"{label}: no connection went on without STARTTLS", f"{srv.conns()}")
        check_eq(len(set(reasons.values())), 3, "verify: the three problems give three "
                 "different reasons")

        # controls: what must pass
        for relay_host in ("127.0.0.1", "localhost"):
            label = f"verify, good certificate, --relay {relay_host}"
            with TlsServer(d, "starttls", pki.good_cert, pki.good_key) as srv:
                run = run_send(d, relay_args(srv, f"{relay_host}:{srv.port}") +
                               ["--tls", "verify", "--ca-file", pki.ca_cert, job], label=label)
            results = check_delivered(run, job, addrs, label)
            check_server_got(srv, addrs, label, tls=True)
            check_results_tls(results, srv, label)
        label = "required, expired certificate"
        with TlsServer(d, "starttls", pki.expired_cert, pki.expired_key) as srv:
            run = run_send(d, relay_args(srv) + ["--tls", "required", job], label=label)
        results = check_delivered(run, job, addrs, label)
        check_server_got(srv, addrs, label + " (not checked)", tls=True)
        check_results_tls(results, srv, label)
        label = "verify without --ca-file (system store)"
        with TlsServer(d, "starttls", pki.good_cert, pki.good_key) as srv:
            run = run_send(d, relay_args(srv) + ["--tls", "verify", job], label=label)
        check_eq(run.rc, 0, f"{label}: volley exit status")
        check(all(r["status"] in ("deferred", "failed") and REASON["unknown"].search(r["reply"])
                  for r in run.results), f"{label}: our CA is unknown there",
              f"{[r['reply'] for r in run.results[:2]]}")
        check_nothing_sent(srv, label)


def test_handshake_drop():
    pki = shared_pki()
    addrs = addresses(6)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        label = "required, handshake dropped"
        with TlsServer(d, "drop", pki.good_cert, pki.good_key) as srv:
            run = run_send(d, relay_args(srv) + ["--tls", "required", "--connections", "2", job],
                           label=label, timeout=timeout_for(60))
        srv.check_clean_exit()
        check_eq(run.rc, 0, f"{label}: volley exit status")
        check_one_result_per_line(run.results, rcpt_lines(job))
        check_eq(statuses(run.results), {"deferred": len(addrs)}, f"{label}: everyone deferred")
        check(all(TLS_FAILURE.search(r["reply"]) for r in run.results),
              f"{label}: the reason says TLS/handshake",
              f"{[r['reply'] for r in run.results[:2]]}")
        print(f"     (reason: {run.results[0]['reply']!r})")
        check(all(r["code"] is None and r["tls"] is None for r in run.results),
              f"{label}: no reply code, \"tls\" null")
        check_nothing_sent(srv, label)
        drops = [e for e in srv.events("tls_error") if "dropped after" in e["error"]]
        check(drops and all("of the server's handshake flight" in e["error"] for e in drops),
              f"{label}: the server did drop mid-handshake (after part of its flight)",
              f"{srv.events('tls_error')}")

        label = "opportunistic, handshake dropped"
        with TlsServer(d, "drop", pki.good_cert, pki.good_key) as srv:
            run = run_send(d, relay_args(srv) + ["--tls", "opportunistic", "--connections", "1",
                                                 job], label=label, timeout=timeout_for(60))
        results = check_delivered(run, job, addrs, label)
        check(all(r["tls"] is None for r in results), f"{label}: \"tls\" null")
        check_server_got(srv, addrs, label, tls=False)


def test_implicit_tls():
    pki = shared_pki()
    addrs = addresses(8)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        for label, cert, key, tls_args in (
                ("--tls-wrapper --tls verify", pki.good_cert, pki.good_key,
                 ["--tls", "verify", "--ca-file", pki.ca_cert]),
                ("--tls-wrapper --tls required, unknown CA", pki.unknown_cert, pki.unknown_key,
                 ["--tls", "required"])):
            with TlsServer(d, "implicit", cert, key) as srv:
                run = run_send(d, relay_args(srv) + ["--tls-wrapper", "--connections", "2"] +
                               tls_args + [job], label=label)
            srv.check_clean_exit()
            results = check_delivered(run, job, addrs, label)
            check_server_got(srv, addrs, label, tls=True)
            check_results_tls(results, srv, label)
            check(not srv.events("starttls"), f"{label}: no STARTTLS command")
            check(all(e["tls"] for e in srv.events("connect")),
                  f"{label}: every connection was TLS from its first octet")
        label = "--tls-wrapper --tls verify, unknown CA"
        with TlsServer(d, "implicit", pki.unknown_cert, pki.unknown_key) as srv:
            run = run_send(d, relay_args(srv) + ["--tls-wrapper", "--tls", "verify",
                                                 "--ca-file", pki.ca_cert, job], label=label)
        check_eq(run.rc, 0, f"{label}: volley exit status")
        check(all(r["status"] in ("deferred", "failed") and REASON["unknown"].search(r["reply"])
                  for r in run.results), f"{label}: nobody delivered, reason unknown CA",
              f"{[(r['status'], r['reply']) for r in run.results[:2]]}")
        check_nothing_sent(srv, label)


def test_port_465():
    pki = shared_pki()
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 465))
    except OSError as e:
        raise Skip(f"cannot bind 127.0.0.1:465 ({e})")
    addrs = addresses(3)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with TlsServer(d, "implicit", pki.good_cert, pki.good_key, port=465) as srv:
            run = run_send(d, ["--relay", "127.0.0.1:465", "--tls", "verify", "--ca-file",
                               pki.ca_cert, job], label="465")
        srv.check_clean_exit()
        results = check_delivered(run, job, addrs, "--relay 127.0.0.1:465")
        check_server_got(srv, addrs, "port 465", tls=True)
        check_results_tls(results, srv, "port 465")
        check(not srv.events("starttls"), "port 465: implicit TLS, no STARTTLS")


def test_tls_none():
    pki = shared_pki()
    addrs = addresses(5)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with TlsServer(d, "starttls", pki.good_cert, pki.good_key) as srv:
            run = run_send(d, relay_args(srv) + ["--tls", "none", job], label="none")
        srv.check_clean_exit()
        results = check_delivered(run, job, addrs, "--tls none")
        check(all(r["tls"] is None for r in results), "--tls none: \"tls\" null everywhere")
        check_eq(len(srv.events("starttls")), 0, "--tls none: no STARTTLS although offered")
        check_server_got(srv, addrs, "--tls none", tls=False)


def test_connection_reuse():
    pki = shared_pki()
    addrs = addresses(12)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with TlsServer(d, "starttls", pki.good_cert, pki.good_key, pipelining=True) as srv:
            run = run_send(d, relay_args(srv) + ["--tls", "required", "--connections", "1",
                                                 "--max-recipients", "1",
                                                 "--max-messages-per-connection", "5", job],
                           label="reuse")
        srv.check_clean_exit()
        results = check_delivered(run, job, addrs, "reuse over TLS")
        txns = check_server_got(srv, addrs, "reuse over TLS", tls=True)
        check_results_tls(results, srv, "reuse over TLS")
        check_eq(len(txns), 12, "reuse over TLS: 12 transactions (--max-recipients 1)")
        per_conn = Counter(t["conn"] for t in txns)
        sessions = srv.events("tls")
        print(f"     ({len(sessions)} TLS sessions for {len(txns)} transactions; "
              f"{sum(e['reused'] for e in sessions)} resumed)")
        check(len(sessions) < len(txns), "reuse over TLS: fewer TLS sessions than transactions",
              f"{len(sessions)} sessions, {len(txns)} transactions")
        check(max(per_conn.values()) <= 5 and max(per_conn.values()) >= 2,
              "reuse over TLS: connections reused, at most 5 transactions each",
              f"{dict(per_conn)}")
        check_eq(sorted(e["conn"] for e in sessions), sorted(per_conn),
                 "reuse over TLS: exactly one handshake on each connection that carried mail")
        bad = []
        for conn in per_conn:
            kinds = [(e["event"], bool(e.get("tls"))) for e in srv.events(conn=conn)
                     if e["event"] in ("ehlo", "starttls", "tls", "mail")]
            want = [("ehlo", False), ("starttls", False), ("tls", True), ("ehlo", True)]
            if kinds[:4] != want or any(k != ("mail", True) for k in kinds[4:]):
                bad.append((conn, kinds))
        check(not bad, "reuse over TLS: each connection: EHLO, STARTTLS, handshake, EHLO "
              "again, then only MAIL under TLS", f"{bad[:2]}")


def test_tls12():
    pki = shared_pki()
    addrs = addresses(3)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with TlsServer(d, "starttls", pki.good_cert, pki.good_key, max_tls="1.2") as srv:
            run = run_send(d, relay_args(srv) + ["--tls", "verify", "--ca-file", pki.ca_cert,
                                                 job], label="tls1.2")
        results = check_delivered(run, job, addrs, "TLS 1.2 server")
        check_results_tls(results, srv, "TLS 1.2 server")
        check(all(r["tls"].startswith("TLSv1.2 ") for r in results),
              "TLS 1.2 server: \"tls\" starts with TLSv1.2", f"{results[0]['tls']}")


def test_client_certificate():
    pki = shared_pki()
    addrs = addresses(3)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        for label, extra, want in (
                ("--tls-cert/--tls-key", ["--tls-cert", pki.client_cert, "--tls-key",
                                          pki.client_key], "volley client"),
                ("no client certificate", [], None)):
            with TlsServer(d, "starttls", pki.good_cert, pki.good_key,
                           client_ca=pki.ca_cert) as srv:
                run = run_send(d, relay_args(srv) + ["--tls", "required"] + extra + [job],
                               label=label)
            check_delivered(run, job, addrs, label)
            cns = {e["client_cn"] for e in srv.events("tls")}
            check_eq(cns, {want}, f"{label}: the server saw client certificate CN {want!r}")


def test_mx_opportunistic():
    from dnslib import UnboundServer
    pki = shared_pki()
    ips = {"ok": "127.0.0.2", "bad": "127.0.0.3", "none": "127.0.0.4"}
    records = []
    for k, ip in ips.items():
        records += [f"tls-{k}.test. IN MX 10 mx.tls-{k}.test.", f"mx.tls-{k}.test. IN A {ip}"]
    port = free_port_on(["127.0.0.1"] + list(ips.values()))
    addrs = {k: [f"u{i:03d}@tls-{k}.test" for i in range(5)] for k in ips}
    allr = [a for i in range(5) for k in ips for a in [addrs[k][i]]]
    with tmpdir() as d:
        job = write_job(d, allr, MESSAGE, from_=SENDER)
        srv = {}
        with UnboundServer(d, records) as ub:
            with TlsServer(d, "starttls", pki.good_cert, pki.good_key, host=ips["ok"],
                           port=port) as srv["ok"], \
                    TlsServer(d, "garbage", pki.good_cert, pki.good_key, host=ips["bad"],
                              port=port) as srv["bad"], \
                    TlsServer(d, "plain", host=ips["none"], port=port) as srv["none"]:
                run = run_send(d, ["--dns", ub.addr, "--port", str(port), job], label="mx")
        results = check_delivered(run, job, allr, "MX mode, default TLS policy")
        by_rcpt = {r["rcpt"]: r for r in results}
        check_results_tls([by_rcpt[a] for a in addrs["ok"]], srv["ok"],
                          "MX mode: STARTTLS offered")
        check_server_got(srv["ok"], addrs["ok"], "MX mode: STARTTLS offered", tls=True)
        check(all(by_rcpt[a]["tls"] is None for a in addrs["bad"] + addrs["none"]),
              "MX mode: \"tls\" null where the handshake failed or STARTTLS is not offered")
        check_server_got(srv["bad"], addrs["bad"], "MX mode: broken STARTTLS", tls=False)
        check(srv["bad"].events("tls_error"), "MX mode: the broken server's handshake was tried")
        check_server_got(srv["none"], addrs["none"], "MX mode: no STARTTLS", tls=False)
        check_eq(len(srv["none"].events("starttls")), 0, "MX mode: no STARTTLS where not offered")


CASES = [test_fixture, test_postfix_starttls, test_opportunistic_fallback,
         test_verify_failures, test_handshake_drop, test_implicit_tls, test_port_465,
         test_tls_none, test_connection_reuse, test_tls12, test_client_certificate,
         test_mx_opportunistic]

if __name__ == "__main__":
    try:
        if "--fixture" in sys.argv[1:]:
            run_cases("test_tls (fixture)", [test_fixture])
        require_tls_option("test_tls")
        run_cases("test_tls", CASES)
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
