#!/usr/bin/python3
"""test_job_errors.py - the job file format: the documented example, header
errors (exit 2, "path:line" on stderr, nothing sent, no results), bad
recipient lines (failed with a reason, never on the wire) and message lines
longer than 998 octets.
"""
import os
import re
import sys
from collections import Counter

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (AiosmtpdServer, Failure, check, check_eq, check_one_result_per_line,  # noqa: E402
                 normalise, rcpt_lines, read_results, run_cases, run_volley, statuses,
                 tmpdir, write_job)

SPRING = (b"From: News <news@example.com>\n"
          b"Subject: Spring is here\n"
          b"\n"
          b"Hello,\n"
          b"spring has come.\n")

EXAMPLE_JOB = (b"#volley-job 1\n"
               b"from: news@example.com\n"
               b"message: spring.eml\n"
               b"fields: name,code\n"
               b"\n"
               b"alice@example.org,Alice,A1\n"
               b"\"bob@example.net\",\"Bob, Jr.\",B2\n")


def results_empty(path):
    """results_empty - no results file, or an empty one."""
    return not os.path.exists(path) or os.path.getsize(path) == 0


def test_example_job():
    with tmpdir() as d:
        with open(os.path.join(d, "spring.eml"), "wb") as f:
            f.write(SPRING)
        job = os.path.join(d, "spring.job")
        with open(job, "wb") as f:
            f.write(EXAMPLE_JOB)
        res = os.path.join(d, "spring.results.jsonl")
        with AiosmtpdServer(d) as srv:
            rc, out, err = run_volley(["send", "--relay", srv.relay, "--results", res, job],
                                      timeout=60)
        check_eq(rc, 0, "example job: exit status")
        results = read_results(res)
        by_line = check_one_result_per_line(results, [6, 7])
        check_eq((by_line[6]["rcpt"], by_line[6]["status"]), ("alice@example.org", "delivered"),
                 "example job: line 6 alice delivered")
        check_eq((by_line[7]["rcpt"], by_line[7]["status"]), ("bob@example.net", "delivered"),
                 "example job: line 7 bob (quoted fields) delivered")
        txns = srv.transactions()
        check_eq(Counter(a for t in txns for a in t["rcpt_tos"]),
                 Counter(["alice@example.org", "bob@example.net"]),
                 "example job: server got alice and bob once each")
        check(all(t["mail_from"] == "news@example.com" for t in txns),
              "example job: MAIL FROM news@example.com")
        check(all(t["content"] == normalise(SPRING) for t in txns),
              "example job: body is spring.eml, normalised")


# (label, job bytes, line number the error must name; None: any line of the job).
HEADER_CASES = [
    ("bad version", b"#volley-job 2\nfrom: a@example.com\nmessage: m.eml\n\nx@example.org\n", 1),
    ("bad magic", b"#volley-jobs 1\nfrom: a@example.com\nmessage: m.eml\n\nx@example.org\n", 1),
    ("no magic line", b"from: a@example.com\nmessage: m.eml\n\nx@example.org\n", 1),
    ("missing from", b"#volley-job 1\nmessage: m.eml\n\nx@example.org\n", None),
    ("missing message", b"#volley-job 1\nfrom: a@example.com\n\nx@example.org\n", None),
    ("unknown key", b"#volley-job 1\nfrom: a@example.com\nmessage: m.eml\nsubject: hi\n"
     b"\nx@example.org\n", 4),
    ("header line without colon", b"#volley-job 1\nfrom: a@example.com\nmessage m.eml\n"
     b"\nx@example.org\n", 3),
    ("invalid from address", b"#volley-job 1\nfrom: not an address\nmessage: m.eml\n"
     b"\nx@example.org\n", 2),
    ("too many fields", b"#volley-job 1\nfrom: a@example.com\nmessage: m.eml\nfields: "
     + ",".join(f"f{i}" for i in range(65)).encode() + b"\n\nx@example.org" + b",v" * 65
     + b"\n", 4),
    ("empty job file", b"", None),
]


def header_error(srv, d, label, job_bytes, line, message=b"Subject: m\n\nbody\n",
                 msg_name="m.eml", names=None, setup=None):
    """header_error - volley must exit 2 naming the place, send nothing, write no results.

    line: the job line stderr must name (None: any); names(sub, job): the
    regexes of which stderr must match one instead; setup(sub): prepares
    the case's directory."""
    sub = os.path.join(d, re.sub(r"\W+", "_", label))
    os.mkdir(sub)
    if setup is not None:
        setup(sub)
    if message is not None:
        with open(os.path.join(sub, msg_name), "wb") as f:
            f.write(message)
    job = os.path.join(sub, "job")
    with open(job, "wb") as f:
        f.write(job_bytes)
    res = os.path.join(sub, "out.jsonl")
    rc, out, err = run_volley(["send", "--relay", srv.relay, "--results", res, job],
                              timeout=30)
    check_eq(rc, 2, f"{label}: exit status 2")
    if names is not None:
        pats = names(sub, job)
    elif line is None:
        pats = [re.escape(job) + r":\d+"]
    else:
        pats = [re.escape(job) + f":{line}(?!\\d)"]
    check(any(re.search(p, err) for p in pats), f"{label}: stderr names {' or '.join(pats)}",
          f"stderr: {err[-500:]!r}")
    check(results_empty(res), f"{label}: no results written")
    check_eq(len(srv.events()), 0, f"{label}: server saw nothing (no connection)")


def test_header_errors():
    with tmpdir() as d:
        with AiosmtpdServer(d) as srv:
            for label, job_bytes, line in HEADER_CASES:
                header_error(srv, d, label, job_bytes, line)
            # The message file cannot be read: the job line naming it, or the file itself.
            job_bytes = b"#volley-job 1\nfrom: a@example.com\nmessage: nothere.eml\n\nx@a.org\n"
            header_error(srv, d, "missing message file", job_bytes, 3, message=None,
                         names=lambda sub, job: [re.escape(job) + r":3(?!\d)",
                                                 re.escape(os.path.join(sub, "nothere.eml"))])
            job_bytes = b"#volley-job 1\nfrom: a@example.com\nmessage: adir\n\nx@a.org\n"
            header_error(srv, d, "message is a directory", job_bytes, 3, message=None,
                         setup=lambda sub: os.mkdir(os.path.join(sub, "adir")),
                         names=lambda sub, job: [re.escape(job) + r":3(?!\d)",
                                                 re.escape(os.path.join(sub, "adir"))])


def test_long_message_lines():
    """998 octets (CRLF not counted) is the limit; 999 exits 2 naming message:line."""
    ok_cases = [("998 + LF", b"x" * 998 + b"\n"), ("998 + CRLF", b"x" * 998 + b"\r\n"),
                ("998, no final newline", b"x" * 998)]
    bad_cases = [("999 + LF", b"y" * 999 + b"\n"), ("999 + CRLF", b"y" * 999 + b"\r\n"),
                 ("999, no final newline", b"y" * 999)]
    with tmpdir() as d:
        with AiosmtpdServer(d) as srv:
            for label, line in bad_cases:
                msg = b"Subject: long\n\n" + line
                job = b"#volley-job 1\nfrom: a@example.com\nmessage: long.eml\n\nx@example.org\n"
                header_error(srv, d, f"message line {label}", job, None, message=msg,
                             msg_name="long.eml",
                             names=lambda sub, job: [re.escape(os.path.join(sub, "long.eml"))
                                                     + r":3(?!\d)",
                                                     r"(?<![\w/])long\.eml:3(?!\d)"])
        for label, line in ok_cases:
            sub = os.path.join(d, "ok" + re.sub(r"\W+", "_", label))
            os.mkdir(sub)
            msg = b"Subject: long\n\n" + line
            job = write_job(sub, ["x@example.org"], msg, from_="a@example.com")
            res = os.path.join(sub, "out.jsonl")
            with AiosmtpdServer(sub) as srv:
                rc, out, err = run_volley(["send", "--relay", srv.relay, "--results", res, job],
                                          timeout=30)
            check_eq(rc, 0, f"message line {label}: exit status 0")
            check_eq(statuses(read_results(res)), {"delivered": 1},
                     f"message line {label}: delivered")
            check_eq([t["content"] for t in srv.transactions()], [normalise(msg)],
                     f"message line {label}: body exact")


GOOD = [
    ("alice@example.org", "alice@example.org,Alice,A1"),
    ("bob@example.net", "\"bob@example.net\",\"Bob, Jr.\",B2"),
    ("Plus+Tag@Example.ORG", "Plus+Tag@Example.ORG,Plus,P1"),
    ("carla@example.com", "carla@example.com,\"Carla \"\"C\"\" Doe\",C3"),
    ("quoted.field@example.org", "\"quoted.field@example.org\",Q,Q1"),
]
# (label, line, rcpt the result must show or None when it is not well defined)
BAD = [
    ("no at sign", b"no-at-sign.example.org,X,1", "no-at-sign.example.org"),
    ("space in address", b"two words@example.org,X,2", "two words@example.org"),
    ("control character", b"ctl\x01char@example.org,X,3", None),
    ("NUL", b"nul\x00char@example.org,X,4", None),
    ("CR inside", b"cr\rchar@example.org,X,5", None),
    ("local part 65 octets", b"l" * 65 + b"@example.org,X,6", "l" * 65 + "@example.org"),
    ("domain 259 octets", b"u@" + b".".join([b"d" * 63] * 4 + [b"org"]) + b",X,7",
     None),  # longer than the 256 octets the docs say rcpt keeps
    ("unbalanced quotes", b"\"unbalanced@example.org,X,8", None),
    ("too few columns", b"carol@example.org,Carol", "carol@example.org"),
    ("too many columns", b"dave@example.org,Dave,D4,extra", "dave@example.org"),
    ("empty address", b",Empty,E", ""),
    ("empty local part", b"@example.org,X,9", "@example.org"),
    ("empty domain", b"x@,X,10", "x@"),
]


def test_bad_recipient_lines():
    with tmpdir() as d:
        lines = []  # good and bad interleaved, with blank lines (ignored) here and there
        for i in range(max(len(GOOD), len(BAD))):
            if i < len(GOOD):
                lines.append(GOOD[i][1])
            if i < len(BAD):
                lines.append(BAD[i][1])
            if i % 3 == 0:
                lines.append(b"")
        job = write_job(d, lines, SPRING, fields=["name", "code"], from_="news@example.com")
        numbered = rcpt_lines(job)
        line_of = {}
        for ln, raw in numbered.items():
            line_of[raw] = ln
        res = os.path.join(d, "out.jsonl")
        with AiosmtpdServer(d) as srv:
            rc, out, err = run_volley(["send", "--relay", srv.relay, "--results", res, job],
                                      timeout=60)
        check_eq(rc, 0, "bad lines: exit status 0")
        results = read_results(res)
        by_line = check_one_result_per_line(results, numbered)
        for addr, g in GOOD:
            r = by_line[line_of[g.encode()]]
            check_eq((r["rcpt"], r["status"]), (addr, "delivered"), f"good line {g!r}")
        for label, b, rcpt in BAD:
            r = by_line[line_of[b]]
            check(r["status"] == "failed" and r["reply"].strip() != "" and r["code"] is None
                  and r["server"] is None and r["attempts"] == 0,
                  f"bad line ({label}): failed, with a reason, code/server null, 0 attempts",
                  f"{r!r}")
            if rcpt is not None:
                check_eq(r["rcpt"], rcpt, f"bad line ({label}): rcpt is the address field")
        seen = Counter(e["address"] for e in srv.events("rcpt"))
        check_eq(seen, Counter(a for a, _ in GOOD),
                 "bad lines: the server got RCPT for exactly the good addresses, once each")
        check_eq(Counter(a for t in srv.transactions() for a in t["rcpt_tos"]),
                 Counter(a for a, _ in GOOD), "bad lines: transactions hold only good addresses")


if __name__ == "__main__":
    try:
        run_cases("test_job_errors", [test_example_job, test_header_errors,
                                      test_long_message_lines, test_bad_recipient_lines])
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
