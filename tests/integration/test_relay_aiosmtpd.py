#!/usr/bin/python3
"""test_relay_aiosmtpd.py - volley send --relay against the recording aiosmtpd server.

Every result line is checked against what the server recorded: RCPT
rejections (550 5.1.1) and deferrals (451 4.3.0) with and without PIPELINING,
bodies byte for byte (dot-stuffing, empty body, no final newline, LF-only,
998-octet lines, 8-bit with BODY=8BITMIME), no 8BITMIME advertised,
--max-recipients, --max-messages-per-connection, and a rejection at the end
of DATA (554 5.6.0).
"""
import os
import sys
from collections import Counter, defaultdict

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (AiosmtpdServer, Failure, check, check_eq, check_one_result_per_line,  # noqa: E402
                 check_summary, normalise, rcpt_lines, read_results, run_cases, run_volley,
                 statuses, tmpdir, write_job)

SENDER = "bulk@example.com"
MESSAGE = (b"From: Bulk <bulk@example.com>\r\n"
           b"Subject: hello\r\n"
           b"\r\n"
           b"Dear reader,\r\n"
           b".leading dot\r\n"
           b".\r\n"
           b"bye\r\n")


def addresses(n, domain="example.org"):
    return [f"rcpt{i:04d}@{domain}" for i in range(n)]


def send(server, d, job, extra=(), timeout=120, quiet=False):
    """send - run volley against server; return (results, stdout, results path)."""
    res_path = os.path.join(d, "out.jsonl")
    args = ["send", "--relay", server.relay, "--results", res_path, "--force",
            "--max-retry-time", "0"]
    args += list(extra) + [job]
    rc, out, err = run_volley(args, timeout=timeout)
    check_eq(rc, 0, "volley exit status")
    return read_results(res_path), out, res_path


def rcpt_counts(server):
    """rcpt_counts - {address: number of RCPT commands the server got for it}."""
    return Counter(e["address"] for e in server.events("rcpt"))


def accepted_rcpts(txns):
    return Counter(a for t in txns if t["code"] == 250 for a in t["rcpt_tos"])


def rejections(pipelining):
    label = "pipelining" if pipelining else "no pipelining"
    addrs = addresses(60)
    reject = set(addrs[3::12])
    defer = set(addrs[7::12])
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with AiosmtpdServer(d, reject=reject, defer=defer, pipelining=pipelining) as srv:
            results, out, res_path = send(srv, d, job, ["--connections", "4", "--helo",
                                                       "volley.test"])
        srv.check_clean_exit()
        by_line = check_one_result_per_line(results, rcpt_lines(job))
        check_eq(sorted(r["rcpt"] for r in results), sorted(addrs),
                 f"{label}: results name every address")
        check_summary(out, results, res_path)
        seen = rcpt_counts(srv)
        wrong = []
        for r in by_line.values():
            a = r["rcpt"]
            if a in reject:
                ok = (r["status"] == "bounced" and r["code"] == 550 and r["enhanced"] == "5.1.1"
                      and f"<{a}>: user unknown" in r["reply"])
            elif a in defer:
                ok = (r["status"] == "deferred" and r["code"] == 451
                      and r["enhanced"] == "4.3.0" and "try again later" in r["reply"])
            else:
                ok = (r["status"] == "delivered" and r["code"] == 250
                      and r["enhanced"] == "2.0.0")
            ok = ok and r["server"] == srv.server_name and r["attempts"] == seen[a]
            if not ok:
                wrong.append((r, seen[a]))
        check(not wrong, f"{label}: every result matches the server's answer (status, code, "
              f"enhanced, reply, server, attempts = RCPTs seen)",
              f"{len(wrong)} differ, e.g. {wrong[:3]}")
        txns = srv.transactions()
        delivered = [a for a in addrs if a not in reject and a not in defer]
        check_eq(accepted_rcpts(txns), Counter(delivered),
                 f"{label}: accepted transactions hold exactly the delivered recipients, once")
        check_eq(sorted({t["code"] for t in txns}), [250], f"{label}: every DATA accepted")
        check(all(t["content"] == normalise(MESSAGE) for t in txns),
              f"{label}: every body is exactly the message")
        check(all(t["mail_from"] == SENDER for t in txns), f"{label}: MAIL FROM is {SENDER}")
        check(all(t["peer"].startswith("127.0.0.1:") for t in txns),
              f"{label}: connections came from 127.0.0.1")
        names = {e["name"] for e in srv.events("ehlo")}
        check_eq(names, {"volley.test"}, f"{label}: EHLO name is the --helo name")


def test_rejections_no_pipelining():
    rejections(False)


def test_rejections_pipelining():
    rejections(True)


BODIES = [
    ("dot-stuffing", b"Subject: dots\n\n.\n..\n.leading\n...three\nend .\n. \n"),
    ("empty body", b"Subject: empty\r\n\r\n"),
    ("no final newline", b"Subject: nofinal\r\n\r\nlast line without newline"),
    ("LF only", b"From: a@example.com\nSubject: lf\n\nline1\n\nline3\n"),
    ("mixed CRLF and LF", b"Subject: mixed\r\n\nline1\r\nline2\n"),
    ("998-octet lines", b"Subject: long\n\n" + b"x" * 998 + b"\n." + b"y" * 997 + b"\n"),
]
EIGHTBIT = ("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit\n\nGr\u00fc\u00dfe aus K\u00f6ln \u2603\n"
            ".\u00fc starts with a dot\n").encode("utf-8")


def test_bodies():
    for label, msg in BODIES + [("8-bit", EIGHTBIT)]:
        with tmpdir() as d:
            addrs = addresses(3)
            job = write_job(d, addrs, msg, from_=SENDER)
            with AiosmtpdServer(d) as srv:
                results, out, _ = send(srv, d, job, ["--connections", "1", "--quiet"])
            check_one_result_per_line(results, rcpt_lines(job))
            check_eq(statuses(results), {"delivered": 3}, f"{label}: all delivered")
            txns = srv.transactions()
            check_eq(accepted_rcpts(txns), Counter(addrs),
                     f"{label}: server accepted each recipient once")
            want = normalise(msg)
            bad = [t["content"] for t in txns if t["content"] != want]
            check(not bad, f"{label}: body received byte for byte as normalised",
                  f"want {want[:200]!r}..., got {bad[0][:200] if bad else b''!r}...")
            if label == "8-bit":
                opts = [t["mail_options"] for t in txns]
                check(all("BODY=8BITMIME" in o for o in opts),
                      "8-bit: MAIL FROM carries BODY=8BITMIME", f"{opts}")


def test_eightbit_not_advertised():
    with tmpdir() as d:
        job = write_job(d, addresses(5), EIGHTBIT, from_=SENDER)
        with AiosmtpdServer(d, eightbit=False) as srv:
            results, out, _ = send(srv, d, job, ["--connections", "1"])
        check_one_result_per_line(results, rcpt_lines(job))
        check_eq(statuses(results), {"failed": 5}, "no 8BITMIME: all failed")
        check(all("8BITMIME" in r["reply"] for r in results),
              "no 8BITMIME: every reason mentions 8BITMIME", f"{[r['reply'] for r in results]}")
        check_eq(len(srv.events("mail")), 0, "no 8BITMIME: server got no MAIL command")
        check_eq(len(srv.events("rcpt")), 0, "no 8BITMIME: server got no RCPT command")
        check_eq(len(srv.events("data")), 0, "no 8BITMIME: server got no DATA")


def test_max_recipients():
    addrs = addresses(20)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with AiosmtpdServer(d) as srv:
            results, out, _ = send(srv, d, job, ["--connections", "2", "--max-recipients", "3"])
        check_one_result_per_line(results, rcpt_lines(job))
        check_eq(statuses(results), {"delivered": 20}, "--max-recipients 3: all delivered")
        txns = srv.transactions()
        sizes = sorted(len(t["rcpt_tos"]) for t in txns)
        check(sizes and max(sizes) <= 3, "--max-recipients 3: no transaction has more than 3",
              f"sizes {sizes}")
        check_eq(max(sizes), 3, "--max-recipients 3: recipients share transactions (some has 3)")
        check_eq(accepted_rcpts(txns), Counter(addrs),
                 "--max-recipients 3: each recipient in exactly one transaction")


def test_max_messages_per_connection():
    addrs = addresses(10)
    with tmpdir() as d:
        job = write_job(d, addrs, MESSAGE, from_=SENDER)
        with AiosmtpdServer(d) as srv:
            results, out, _ = send(srv, d, job, ["--connections", "1", "--max-recipients", "1",
                                                 "--max-messages-per-connection", "2"])
        check_one_result_per_line(results, rcpt_lines(job))
        check_eq(statuses(results), {"delivered": 10}, "--max-messages-per-connection 2: "
                 "all delivered")
        txns = srv.transactions()
        check_eq(len(txns), 10, "--max-messages-per-connection 2: 10 transactions "
                 "(--max-recipients 1)")
        per_conn = defaultdict(int)
        for t in txns:
            per_conn[t["conn"]] += 1
        check(max(per_conn.values()) <= 2, "--max-messages-per-connection 2: at most 2 "
              "transactions per connection", f"{dict(per_conn)}")
        check_eq(max(per_conn.values()), 2, "--max-messages-per-connection 2: connections "
                 "are reused (some carries 2)")
        check(len(per_conn) >= 5, "--max-messages-per-connection 2: at least 5 connections",
              f"{len(per_conn)}")
        quits = {e["conn"] for e in srv.events("quit")}
        noquit = sorted(set(per_conn) - quits)
        check(not noquit, "--max-messages-per-connection 2: every connection ended with QUIT",
              f"connections without QUIT: {noquit}")


def test_data_rejection():
    addrs = addresses(10)
    reject, defer = {addrs[2]}, {addrs[5]}
    msg = MESSAGE + b"XREJECTMEX\r\n"
    with tmpdir() as d:
        job = write_job(d, addrs, msg, from_=SENDER)
        with AiosmtpdServer(d, reject=reject, defer=defer,
                            reject_data_marker="XREJECTMEX") as srv:
            results, out, _ = send(srv, d, job, ["--connections", "2"])
        check_one_result_per_line(results, rcpt_lines(job))
        want = {"bounced": 9, "deferred": 1}
        check_eq(statuses(results), want, "end-of-data rejection: statuses")
        wrong = []
        for r in results:
            a = r["rcpt"]
            if a in reject:
                ok = r["code"] == 550 and r["enhanced"] == "5.1.1"
            elif a in defer:
                ok = r["code"] == 451 and r["enhanced"] == "4.3.0"
            else:
                ok = (r["code"] == 554 and r["enhanced"] == "5.6.0"
                      and "message content rejected" in r["reply"])
            if not ok:
                wrong.append(r)
        check(not wrong, "end-of-data rejection: accepted recipients bounced 554 5.6.0, "
              "RCPT-rejected 550, deferred 451", f"{wrong[:3]}")
        txns = srv.transactions()
        check(txns and all(t["code"] == 554 for t in txns),
              "end-of-data rejection: server rejected every transaction", f"{len(txns)}")
        got = Counter(a for t in txns for a in t["rcpt_tos"])
        check_eq(got, Counter(a for a in addrs if a not in reject and a not in defer),
                 "end-of-data rejection: transactions held exactly the RCPT-accepted recipients")


if __name__ == "__main__":
    try:
        run_cases("test_relay_aiosmtpd", [
            test_rejections_no_pipelining, test_rejections_pipelining, test_bodies,
            test_eightbit_not_advertised, test_max_recipients,
            test_max_messages_per_connection, test_data_rejection])
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
