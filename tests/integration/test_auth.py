#!/usr/bin/python3
"""test_auth.py - volley send --auth: SMTP AUTH PLAIN and LOGIN (RFC 4954) to a relay.

The server is tls_server.py (tlslib.TlsServer) on loopback, with STARTTLS
(certificates made by the test with openssl, tlslib.make_pki) and one
account; it records every AUTH command (mechanism, user, outcome, whether
under TLS) but never the password.

Every run is also checked for the password: neither it nor the base64 forms
AUTH sends it in may appear in volley's stdout, stderr, results file or any
file in its working directory.

Cases:
  fixture               the server side with smtplib: AUTH only after STARTTLS,
                        good and bad credentials, the plaintext variant.
  plain_password_file   only PLAIN offered; --auth-password-file (first line);
                        default policy for --relay with --auth is verify.
  login_environment     only LOGIN offered; VOLLEY_AUTH_PASSWORD.
  both_offered          PLAIN and LOGIN offered: one of them, once per connection.
  bad_credentials       535: everyone failed fast, the reason names
                        authentication and the server's reply, a handful of
                        AUTH attempts at most, nothing sent.
  after_starttls_only   AUTH offered only under TLS: STARTTLS, EHLO again,
                        AUTH under TLS (--tls required, certificate unchecked).
  plaintext_refused     a server without TLS offering AUTH: refused without
                        --allow-plaintext-auth (--tls none, opportunistic),
                        done with it.
  default_verify        --auth without --tls verifies the certificate: with an
                        unknown CA nothing is authenticated or sent.

Without a --tls option in `volley send --help` the script exits 77 (skipped).
"""
import os
import re
import smtplib
import sys
from collections import Counter

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Failure, check, check_eq, check_one_result_per_line,  # noqa: E402
                 normalise, rcpt_lines, run_cases, statuses, tmpdir, write_job)
from tlslib import (TlsServer, check_no_secrets, client_context,  # noqa: E402
                    require_tls_option, run_send, secrets_of, shared_pki, smtplib_send)

SENDER = "bulk@example.com"
USER = "volley-user@example.com"
PASSWORD = "Pw-3xQ7 s3cret!volley"     # with a space: the whole first line is the password
WRONG = "Wr0ng-pAss-9zK volley"
MESSAGE = (b"From: Bulk <bulk@example.com>\n"
           b"Subject: authenticated\n"
           b"\n"
           b"Hello,\n"
           b".dot\n")
AUTH_FAILURE = re.compile(r"auth", re.I)
PLAINTEXT = re.compile(r"plain ?text|TLS|encrypt|unencrypted|insecure", re.I)
CERT_UNKNOWN = re.compile(r"unknown CA|issuer|self.signed|untrusted", re.I)


def addresses(n, domain="example.org"):
    return [f"rcpt{i:04d}@{domain}" for i in range(n)]


def password_file(d, password, name="password"):
    """password_file - a file whose first line is password (then a newline and junk)."""
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(password + "\nsecond line, not part of the password\n")
    os.chmod(path, 0o600)
    return path


def auth_server(d, pki, mechanisms=("LOGIN", "PLAIN"), password=PASSWORD, mode="starttls",
                cert=None, key=None, **kw):
    return TlsServer(d, mode, cert or (pki.good_cert if mode != "plain" else None),
                     key or (pki.good_key if mode != "plain" else None), auth=True,
                     user=USER, password=password, mechanisms=list(mechanisms), **kw)


def check_authenticated_run(run, srv, job, addrs, label, mechanism, tls=True):
    """check_authenticated_run - everyone delivered; every connection that sent mail
    authenticated once, with mechanism (None: any), as USER, before MAIL."""
    check_eq(run.rc, 0, f"{label}: volley exit status")
    check_one_result_per_line(run.results, rcpt_lines(job))
    check_eq(statuses(run.results), {"delivered": len(addrs)}, f"{label}: all delivered")
    txns = srv.transactions()
    got = Counter(a for t in txns for a in t["rcpt_tos"])
    check_eq(got, Counter(addrs), f"{label}: the server accepted each recipient once")
    check(all(t["content"] == normalise(MESSAGE) for t in txns),
          f"{label}: every message intact")
    check(all(t["auth_user"] == USER for t in txns),
          f"{label}: every transaction ran authenticated as {USER}",
          f"{[t['auth_user'] for t in txns][:5]}")
    auths = srv.events("auth")
    mail_conns = sorted({t["conn"] for t in txns})
    check_eq(sorted(a["conn"] for a in auths), mail_conns,
             f"{label}: exactly one AUTH on each connection that sent mail")
    check(all(a["success"] and a["code"] == 235 and a["user"] == USER for a in auths),
          f"{label}: every AUTH succeeded (235) for {USER}", f"{auths[:3]}")
    if mechanism:
        check_eq({a["mechanism"] for a in auths}, {mechanism}, f"{label}: AUTH {mechanism}")
    else:
        check(len({a["mechanism"] for a in auths}) == 1 and
              auths[0]["mechanism"] in ("PLAIN", "LOGIN"),
              f"{label}: AUTH with one offered mechanism",
              f"{[a['mechanism'] for a in auths]}")
    if tls:
        check(all(a["tls"] for a in auths) and all(t["tls"] for t in txns),
              f"{label}: AUTH and mail only under TLS")
    order_bad = []
    for conn in mail_conns:
        kinds = [e["event"] for e in srv.events(conn=conn) if e["event"] in ("auth", "mail")]
        if not kinds or kinds[0] != "auth":
            order_bad.append((conn, kinds))
    check(not order_bad, f"{label}: AUTH before the first MAIL on each connection",
          f"{order_bad[:2]}")
    return txns


# --- fixture -------------------------------------------------------------------

def test_fixture():
    pki = shared_pki()
    msg = normalise(MESSAGE)
    with tmpdir() as d:
        with auth_server(d, pki) as srv:
            c = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
            try:
                c.ehlo("fixture.test")
                plain = dict(c.esmtp_features)
                c.quit()
            finally:
                c.close()
            feats, _ = smtplib_send("127.0.0.1", srv.port, ["a@example.org"], msg,
                                    starttls=True, ctx=client_context(pki.ca_cert),
                                    login=(USER, PASSWORD))
            err = None
            try:
                smtplib_send("127.0.0.1", srv.port, ["b@example.org"], msg, starttls=True,
                             ctx=client_context(pki.ca_cert), login=(USER, WRONG))
            except smtplib.SMTPAuthenticationError as e:
                err = e
        srv.check_clean_exit()
        check("auth" not in plain and "auth" in feats and
              set(feats["auth"].split()) == {"PLAIN", "LOGIN"},
              "server: AUTH PLAIN LOGIN offered only after STARTTLS", f"{plain} / {feats}")
        check(err is not None and err.smtp_code == 535, "server: a wrong password gets 535",
              f"{err!r}")
        a = srv.events("auth")
        check(a[0]["success"] and a[0]["user"] == USER and a[0]["tls"]
              and all(not x["success"] and x["code"] == 535 for x in a[1:]),
              "server: records each AUTH with user, outcome and TLS", f"{a}")
        check_eq([t["rcpt_tos"] for t in srv.transactions()], [["a@example.org"]],
                 "server: only the authenticated session's mail arrived")
        found = [p for p in (srv.events_path, srv.log_path)
                 if PASSWORD.encode() in open(p, "rb").read()]
        check(not found, "server: the password is in none of its files", f"{found}")
        with auth_server(d, pki, mode="plain", auth_require_tls=False,
                         mechanisms=["LOGIN"]) as srv:
            feats, _ = smtplib_send("127.0.0.1", srv.port, ["c@example.org"], msg,
                                    login=(USER, PASSWORD))
        check(feats.get("auth", "").split() == ["LOGIN"] and "starttls" not in feats and
              srv.events("auth")[0]["tls"] is None and srv.events("auth")[0]["success"],
              "plain server: AUTH LOGIN in plaintext, no STARTTLS", f"{feats}")


# --- good credentials ------------------------------------------------------------

def test_plain_password_file():
    pki = shared_pki()
    addrs = addresses(20)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        pw = password_file(d, PASSWORD)
        with auth_server(d, pki, mechanisms=["PLAIN"], auth_required=True) as srv:
            run = run_send(d, ["--relay", srv.relay, "--auth", USER, "--auth-password-file", pw,
                               "--ca-file", pki.ca_cert, "--connections", "2",
                               "--max-recipients", "5", job], label="plain, file")
        srv.check_clean_exit()
        check_authenticated_run(run, srv, job, addrs, "PLAIN, password file", "PLAIN")
        check(all(r["tls"] for r in run.results),
              "PLAIN, password file: default policy with --auth used TLS (\"tls\" set)")
        check_no_secrets(run, secrets_of(USER, PASSWORD), "PLAIN, password file")


def test_login_environment():
    pki = shared_pki()
    addrs = addresses(12)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with auth_server(d, pki, mechanisms=["LOGIN"], auth_required=True) as srv:
            run = run_send(d, ["--relay", srv.relay, "--auth", USER, "--ca-file", pki.ca_cert,
                               "--connections", "2", "--max-recipients", "4", job],
                           env={"VOLLEY_AUTH_PASSWORD": PASSWORD}, label="login, env")
        srv.check_clean_exit()
        check_authenticated_run(run, srv, job, addrs, "LOGIN, VOLLEY_AUTH_PASSWORD", "LOGIN")
        check_no_secrets(run, secrets_of(USER, PASSWORD), "LOGIN, VOLLEY_AUTH_PASSWORD")


def test_both_offered():
    pki = shared_pki()
    addrs = addresses(8)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        pw = password_file(d, PASSWORD)
        with auth_server(d, pki, auth_required=True) as srv:
            run = run_send(d, ["--relay", srv.relay, "--auth", USER, "--auth-password-file", pw,
                               "--tls", "verify", "--ca-file", pki.ca_cert,
                               "--connections", "1", "--max-recipients", "2", job],
                           label="both")
        check_authenticated_run(run, srv, job, addrs, "PLAIN and LOGIN offered", None)
        print(f"     (volley chose {srv.events('auth')[0]['mechanism']})")
        check_no_secrets(run, secrets_of(USER, PASSWORD), "PLAIN and LOGIN offered")


# --- bad credentials -----------------------------------------------------------

def test_bad_credentials():
    pki = shared_pki()
    addrs = addresses(100)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        pw = password_file(d, WRONG)
        with auth_server(d, pki, auth_required=True) as srv:
            run = run_send(d, ["--relay", srv.relay, "--auth", USER, "--auth-password-file", pw,
                               "--ca-file", pki.ca_cert, "--connections", "2",
                               "--max-recipients", "5", job], label="535", timeout=120)
        srv.check_clean_exit()
        label = "535"
        check_eq(run.rc, 0, f"{label}: volley exit status")
        check_one_result_per_line(run.results, rcpt_lines(job))
        check_eq(statuses(run.results), {"failed": len(addrs)}, f"{label}: everyone failed")
        bad = [r["reply"] for r in run.results
               if not (AUTH_FAILURE.search(r["reply"]) and
                       ("535" in r["reply"] or "credentials invalid" in r["reply"]))]
        check(not bad, f"{label}: every reason mentions authentication and the server's "
              f"reply (535 5.7.8 Authentication credentials invalid)", f"{bad[:2]}")
        print(f"     (reason: {run.results[0]['reply']!r})")
        auths = srv.events("auth")
        print(f"     ({len(auths)} AUTH attempts on {len(srv.events('connect'))} connections)")
        check(1 <= len(auths) <= 4, f"{label}: a handful of AUTH attempts (1..4), not one per "
              f"transaction (20)", f"{len(auths)} attempts")
        check(all(a["code"] == 535 and a["user"] == USER for a in auths),
              f"{label}: each AUTH was answered 535", f"{auths[:3]}")
        check(len(srv.events("connect")) <= 4, f"{label}: volley stopped connecting",
              f"{len(srv.events('connect'))} connections")
        n = {k: len(srv.events(k)) for k in ("mail", "rcpt", "data")}
        check_eq(n, {"mail": 0, "rcpt": 0, "data": 0}, f"{label}: nothing was sent")
        check(run.elapsed < 30, f"{label}: the run failed fast", f"{run.elapsed:.1f} s")
        check_no_secrets(run, secrets_of(USER, WRONG), label)


# --- where AUTH may happen -------------------------------------------------------

def test_after_starttls_only():
    pki = shared_pki()
    addrs = addresses(6)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with auth_server(d, pki, cert=pki.unknown_cert, key=pki.unknown_key,
                         auth_required=True, auth_require_tls=True) as srv:
            run = run_send(d, ["--relay", srv.relay, "--auth", USER, "--tls", "required",
                               "--connections", "1", job],
                           env={"VOLLEY_AUTH_PASSWORD": PASSWORD}, label="after STARTTLS")
        label = "AUTH only after STARTTLS"
        check_authenticated_run(run, srv, job, addrs, label, None)
        bad = []
        for conn in sorted({t["conn"] for t in srv.transactions()}):
            kinds = [(e["event"], bool(e.get("tls"))) for e in srv.events(conn=conn)
                     if e["event"] in ("ehlo", "starttls", "tls", "auth")]
            if kinds[:5] != [("ehlo", False), ("starttls", False), ("tls", True),
                             ("ehlo", True), ("auth", True)]:
                bad.append((conn, kinds))
        check(not bad, f"{label}: EHLO, STARTTLS, handshake, EHLO again, then AUTH",
              f"{bad[:2]}")
        check_no_secrets(run, secrets_of(USER, PASSWORD), label)


def test_plaintext_refused():
    addrs = addresses(5)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        pw = password_file(d, PASSWORD)
        for policy in ("none", "opportunistic"):
            label = f"plaintext AUTH, --tls {policy}"
            with auth_server(d, None, mode="plain", auth_require_tls=False,
                             auth_required=True) as srv:
                run = run_send(d, ["--relay", srv.relay, "--auth", USER, "--auth-password-file",
                                   pw, "--tls", policy, job], label=label)
            srv.check_clean_exit()
            if run.rc == 2 and policy == "none":
                # refusing the combination up front is fine too, if it says why
                check(PLAINTEXT.search(run.err) and "allow-plaintext-auth" in run.err,
                      f"{label}: usage error naming --allow-plaintext-auth", run.err[-500:])
                check_eq(len(srv.events("connect")), 0, f"{label}: no connection made")
            else:
                check_eq(run.rc, 0, f"{label}: volley exit status")
                check_one_result_per_line(run.results, rcpt_lines(job))
                check_eq(statuses(run.results), {"failed": len(addrs)},
                         f"{label}: everyone failed (refused locally)")
                bad = [r["reply"] for r in run.results
                       if not (AUTH_FAILURE.search(r["reply"]) and
                               PLAINTEXT.search(r["reply"]))]
                check(not bad, f"{label}: the reason says AUTH without TLS was refused",
                      f"{bad[:2]}")
                print(f"     (reason: {run.results[0]['reply']!r})")
            check_eq(len(srv.events("auth")), 0, f"{label}: no AUTH command sent")
            check_eq(len(srv.events("mail")), 0, f"{label}: no MAIL sent")
            check_no_secrets(run, secrets_of(USER, PASSWORD), label)

        label = "plaintext AUTH, --allow-plaintext-auth"
        with auth_server(d, None, mode="plain", auth_require_tls=False,
                         auth_required=True) as srv:
            run = run_send(d, ["--relay", srv.relay, "--auth", USER, "--auth-password-file", pw,
                               "--tls", "none", "--allow-plaintext-auth", job], label=label)
        check_authenticated_run(run, srv, job, addrs, label, None, tls=False)
        check(all(a["tls"] is None for a in srv.events("auth")) and
              all(r["tls"] is None for r in run.results), f"{label}: AUTH in plaintext")
        check_no_secrets(run, secrets_of(USER, PASSWORD), label)


def test_default_verify():
    pki = shared_pki()
    addrs = addresses(5)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        pw = password_file(d, PASSWORD)
        label = "--auth, default policy, unknown CA"
        with auth_server(d, pki, cert=pki.unknown_cert, key=pki.unknown_key,
                         auth_required=True) as srv:
            run = run_send(d, ["--relay", srv.relay, "--auth", USER, "--auth-password-file", pw,
                               "--ca-file", pki.ca_cert, job], label=label)
        srv.check_clean_exit()
        check_eq(run.rc, 0, f"{label}: volley exit status")
        check_one_result_per_line(run.results, rcpt_lines(job))
        st = statuses(run.results)
        check(st in ({"deferred": len(addrs)}, {"failed": len(addrs)}),
              f"{label}: nobody delivered", f"{st}")
        check(all(CERT_UNKNOWN.search(r["reply"]) for r in run.results),
              f"{label}: the reason is the unknown CA", f"{run.results[0]['reply']!r}")
        check(srv.events("starttls"), f"{label}: STARTTLS was tried")
        check_eq(len(srv.events("auth")), 0, f"{label}: no AUTH command sent")
        check_eq(len(srv.events("mail")), 0, f"{label}: no MAIL sent")
        check_no_secrets(run, secrets_of(USER, PASSWORD), label)


CASES = [test_fixture, test_plain_password_file, test_login_environment, test_both_offered,
         test_bad_credentials, test_after_starttls_only, test_plaintext_refused,
         test_default_verify]

if __name__ == "__main__":
    try:
        if "--fixture" in sys.argv[1:]:
            run_cases("test_auth (fixture)", [test_fixture])
        require_tls_option("test_auth")
        run_cases("test_auth", CASES)
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
