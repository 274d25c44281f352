#!/usr/bin/env python3
"""make_corpus.py - write the seed corpus of the fuzz targets (tests/fuzz/corpus/{smtp,job,dns}).

The seeds are checked in; this script documents how they were made and
rewrites them (python3 tests/fuzz/make_corpus.py). It removes nothing: files
added by hand (for example a crash turned into a regression seed) stay.
The input layouts are described at the top of each fuzz_*.c file.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(kind, name, data):
    """write - one seed file corpus/KIND/NAME."""
    d = os.path.join(CORPUS, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- SMTP: 5 setting octets (see fuzz_smtp.c), then what the server says ----

NOPIPE, TLS_OPP, TLS_REQ, TLS_VERIFY, AUTH, PLAIN_AUTH_OK, WRAPPER, NO_TLS, MAXMSG2 = (
    0x01, 0x02, 0x04, 0x06, 0x08, 0x10, 0x20, 0x40, 0x80)
R1, R2, R3, R4, R5, R8, R100, R1000 = range(8)          # max_rcpts table index
MSG_PLAIN, MSG_8BIT, MSG_BIG, MSG_EMPTY = (0 << 3, 1 << 3, 2 << 3, 3 << 3)
FROM_NEWS, FROM_NULL, FROM_UTF8, FROM_LONG = (0 << 5, 1 << 5, 2 << 5, 3 << 5)
CH1, CH2, CH7, CH32, CH128, CH512, CHALL, CHLINE = range(8)  # chunking table index
LONGCRED, UTF8USER, STARVE, PARTIAL, TLSFAIL = 0x01, 0x02, 0x04, 0x08, 0x10


def smtp(name, d0, d1, nrcpt, chunk, d4, *lines):
    """smtp - a seed: settings, then the server's lines joined by CRLF."""
    body = "".join(l + "\r\n" for l in lines).encode("utf-8", "surrogateescape")
    write("smtp", name, bytes([d0, d1, nrcpt, chunk | 0x28, d4]) + body)


EHLO_FULL = ["250-mx.example.net Hello", "250-PIPELINING", "250-SIZE 10240000",
             "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-SMTPUTF8", "250 CHUNKING"]


def smtp_seeds():
    """smtp_seeds - greetings, EHLO, pipelined groups, errors, STARTTLS, AUTH."""
    smtp("pipelined-ok", 0, R100 | MSG_PLAIN, 3, CHLINE, 0,
         "220 mx.example.net ESMTP Postfix", *EHLO_FULL,
         "250 2.1.0 Ok", "250 2.1.5 Ok", "550 5.1.1 <b@example.net>: Recipient address rejected",
         "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
         "250 2.0.0 Ok: queued as 4XyZ", "221 2.0.0 Bye")
    smtp("pipelined-two-txns", MAXMSG2, R2 | MSG_8BIT, 4, CHLINE, 0,
         "220 mx ESMTP", "250-mx", "250-PIPELINING", "250 8BITMIME",
         "250 ok", "250 ok", "250 ok", "354 go", "250 queued 1",
         "250 ok", "250 ok", "451 4.7.1 greylisted", "354 go", "250 queued 2", "221 bye")
    smtp("pipelined-whole-buffer", 0, R5, 2, CHALL, 0,
         "220 mx ESMTP", "250-mx", "250 PIPELINING", "250 ok", "250 ok", "250 ok", "354 go")
    smtp("lockstep-size", NOPIPE, R100 | MSG_BIG, 3, CHLINE, 0,
         "220 mx.example.net ESMTP", "250-mx.example.net", "250-SIZE 1000000", "250 DSN",
         "250 2.1.0 ok", "451 4.3.0 try later", "250 2.1.5 ok", "550 5.1.1 unknown",
         "354 go ahead", "250 2.0.0 queued", "221 bye")
    smtp("greeting-421", 0, R100, 3, CHLINE, 0,
         "421 4.3.2 Service not available, closing transmission channel")
    smtp("mid-421", 0, R3, 5, CHLINE, 0,
         "220 mx", "250-mx", "250 PIPELINING", "250 2.1.0 ok", "250 2.1.5 ok",
         "421 4.4.2 mx.example.net Error: timeout exceeded")
    smtp("ehlo-502-helo", 0, R2 | FROM_NULL, 2, CHLINE, 0,
         "220 old.example ESMTP", "502 5.5.2 Error: command not recognized",
         "250 old.example", "250 ok", "250 ok", "250 ok", "354 go", "554 5.3.0 rejected",
         "250 reset", "221 bye")
    smtp("data-554-then-rset", 0, R1, 3, CHLINE, 0,
         "220 mx", "250-mx", "250 PIPELINING", "250 ok", "250 ok",
         "554 5.5.1 Error: no valid recipients", "250 2.0.0 Ok", "250 ok", "250 ok", "354 go",
         "250 ok", "250 ok", "250 ok", "354 go", "250 ok", "221 bye")
    smtp("all-rcpts-rejected-lone-dot", 0, R3, 2, CHLINE, 0,
         "220 mx", "250-mx", "250 PIPELINING", "250 ok", "550 5.1.1 no", "550 5.1.1 no",
         "354 go", "554 5.5.1 no valid recipients", "221 bye")
    smtp("utf8-needs-smtputf8", 0, R8 | FROM_UTF8 | MSG_8BIT, 8, CHLINE, 0x20,
         "220 mx", "250-mx", "250-PIPELINING", "250-8BITMIME", "250 SMTPUTF8",
         "250 ok", *(["250 ok"] * 8), "354 go", "250 ok", "221 bye")
    smtp("starttls-opportunistic", TLS_OPP, R100, 2, CHLINE, 0,
         "220 mx ESMTP", "250-mx", "250-PIPELINING", "250-STARTTLS", "250 8BITMIME",
         "220 2.0.0 Ready to start TLS", "250-mx", "250-PIPELINING", "250 8BITMIME",
         "250 ok", "250 ok", "250 ok", "354 go", "250 queued", "221 bye")
    smtp("starttls-refused-required", TLS_REQ, R100, 2, CHLINE, 0,
         "220 mx ESMTP", "250-mx", "250 STARTTLS", "454 4.7.0 TLS not available due to local problem")
    smtp("starttls-injection", TLS_VERIFY, R100, 1, CHALL, TLSFAIL,
         "220 mx ESMTP", "250-mx", "250 STARTTLS", "220 go ahead", "250-evil", "250 PIPELINING")
    smtp("auth-login", TLS_OPP | AUTH, R100, 1, CHLINE, 0,
         "220 mx", "250-mx", "250-STARTTLS", "250 AUTH LOGIN", "220 ready",
         "250-mx", "250-PIPELINING", "250 AUTH LOGIN", "334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6",
         "235 2.7.0 Authentication successful", "250 ok", "250 ok", "354 go", "250 ok", "221 bye")
    smtp("auth-plain-wrapper", TLS_VERIFY | AUTH | WRAPPER, R100 | FROM_LONG, 2, CH32, LONGCRED,
         "220 smtp.example.net ESMTP", "250-smtp.example.net", "250-AUTH PLAIN LOGIN",
         "250 PIPELINING", "235 2.7.0 ok", "250 ok", "250 ok", "250 ok", "354 go", "250 ok",
         "221 bye")
    smtp("auth-535", AUTH | PLAIN_AUTH_OK, R100, 2, CHLINE, UTF8USER,
         "220 mx", "250-mx", "250-AUTH=LOGIN PLAIN", "250 AUTH PLAIN LOGIN",
         "535 5.7.8 Error: authentication failed")
    smtp("chunked-1-octet", NO_TLS | TLS_OPP, R4 | 0x80, 3, CH1, STARVE | PARTIAL,
         "220-mx.example.net ESMTP", "220 welcome", *EHLO_FULL, "250 ok", "250 ok",
         "250 ok", "250 ok", "354 go", "250 ok")
    smtp("replies-before-commands-sent", 0, R1, 30, CHALL, PARTIAL,
         "220 mx", "250-mx", "250 PIPELINING", "250 ok", "250 ok", "354 go",
         *(["250 queued", "250 ok", "250 ok", "354 go"] * 8))
    write("smtp", "reply-line-too-long",
          bytes([0, R100, 1, CH512 | 0x28, 0]) + b"220 " + b"x" * 2100 + b"\r\n")
    write("smtp", "bare-lf-replies",
          bytes([NOPIPE, R1, 1, CH2 | 0x28, 0]) +
          b"220 mx\n250 mx\n250 ok\n250 ok\n354 go\n250 ok\n221 bye\n")


# ---- job files (docs/job-format.md) ----

def job_seeds():
    """job_seeds - the documented example, quoting, blank and bad lines, header errors."""
    write("job", "readme-example",
          b"#volley-job 1\nfrom: news@example.com\nmessage: spring.eml\nfields: name,code\n\n"
          b"alice@example.org,Alice,A1\n\"bob@example.net\",\"Bob, Jr.\",B2\n")
    write("job", "quoted-crlf",
          b"#volley-job 1\r\nFrom: <news@example.com>\r\nmessage: /tmp/m.eml\r\n"
          b"fields: name\r\n\r\n"
          b"\"\"\"john doe\"\"@example.com\",\"Doe, \"\"JD\"\"\"\r\n"
          b"\"a@example.org\",\"\"\r\n"
          b"  b@example.org  ,plain\r\n")
    write("job", "no-fields-blank-lines",
          b"#volley-job 1\nfrom: <>\nmessage: m.eml\n\n"
          b"a@example.org\n\n\r\nb@[192.0.2.1]\nc@[IPv6:2001:db8::1]\n\nlast@example.com")
    write("job", "bad-records",
          b"#volley-job 1\nfrom: news@example.com\nmessage: m.eml\nfields: a,b\n\n"
          b"tab\t@example.org,1,2\n\"unbalanced@example.org,1,2\n"
          b"\"x@example.org\" ,1,2\nq\"uote@example.org,1,2\n"
          b"few@example.org,1\nmany@example.org,1,2,3\n,1,2\n"
          b"no-at.example.org,1,2\n.dot@example.org,1,2\na@-bad-.org,1,2\n"
          b"a@exa mple.org,1,2\n" + b"l" * 65 + b"@example.org,1,2\n")
    write("job", "utf8-addresses",
          "#volley-job 1\nfrom: jörg@exämple.de\nmessage: m.eml\nfields: name\n\n"
          "ü@exämple.de,Ü\nñ@example.es,N\n".encode() + b"bad\xc3@example.org,x\n"
          b"overlong\xc0\xaf@example.org,x\n")
    write("job", "many-fields-trailing-comma",
          b"#volley-job 1\nmessage: m.eml\nfrom: a@b.example\n"
          b"fields: f1, f2 ,f3,f_4,f-5\n\n"
          b"x@example.org,1,2,3,4,\ny@example.org,1,2,3,4\n")
    write("job", "header-bom", b"\xef\xbb\xbf#volley-job 1\nfrom: a@b.c\nmessage: m\n\nx@y.z\n")
    write("job", "header-version-2", b"#volley-job 2\nfrom: a@b.c\nmessage: m\n\nx@y.z\n")
    write("job", "header-duplicate-key",
          b"#volley-job 1\nfrom: a@b.c\nFROM: d@e.f\nmessage: m\n\nx@y.z\n")
    write("job", "header-missing-message", b"#volley-job 1\nfrom: a@b.c\n\nx@y.z\n")
    write("job", "header-bad-field-name",
          b"#volley-job 1\nfrom: a@b.c\nmessage: m\nfields: ok,b@d,ok\n\nx@y.z,1,2,3\n")
    write("job", "header-only", b"#volley-job 1\nfrom: a@b.c\nmessage: m\n\n")
    write("job", "header-not-ended", b"#volley-job 1\nfrom: a@b.c\nmessage: m\n")
    write("job", "long-address",
          b"#volley-job 1\nfrom: a@b.c\nmessage: m\n\n" + b"l" * 64 + b"@" +
          b".".join([b"d" * 63] * 3) + b".dd\n" + b"l" * 64 + b"@" + b"d" * 64 + b".org\n")


# ---- DNS answers (RFC 1035 wire format), for fuzz_dns.c's questions ----

QID = 0x4242
T_A, T_NS, T_CNAME, T_SOA, T_MX, T_AAAA, T_OPT = 1, 2, 5, 6, 15, 28, 41


def name(n):
    """name - a domain name in wire form, no compression."""
    out = b""
    for label in n.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rr(owner, rtype, ttl, rdata, cls=1):
    """rr - one resource record; owner is wire bytes (a name or a pointer)."""
    return owner + struct.pack(">HHIH", rtype, cls, ttl, len(rdata)) + rdata


def soa(zone):
    """soa - an SOA record for zone (minimum 600, TTL 900)."""
    rdata = name("ns1." + zone) + name("hostmaster." + zone) + struct.pack(">IIIII", 1, 7200,
                                                                            3600, 1209600, 600)
    return rr(name(zone), T_SOA, 900, rdata)


def packet(qname, qtype, answers=(), authority=(), additional=(), flags=0x8180, qid=QID):
    """packet - a response with one question (name at offset 12, so pointer 0xc00c works)."""
    hdr = struct.pack(">HHHHHH", qid, flags, 1, len(answers), len(authority), len(additional))
    q = name(qname) + struct.pack(">HH", qtype, 1)
    return hdr + q + b"".join(answers) + b"".join(authority) + b"".join(additional)


PTR = b"\xc0\x0c"        # compression pointer to the question name
SEL_MX, SEL_A, SEL_AAAA = 0, 1, 2
N_EXAMPLE, N_MAIL, N_AB, N_LONG = 0 << 2, 1 << 2, 2 << 2, 3 << 2
SPLICE = 0x10
# fuzz_dns.c's fourth question name: 253 octets, letters a-z cycling, a dot every 64th
LONG_NAME = "".join("." if i % 64 == 63 else chr(ord("a") + i % 26) for i in range(253))


def dns(fname, sel, pkt):
    """dns - a seed: the selector octet, then the answer."""
    write("dns", fname, bytes([sel]) + pkt)


def mx(pref, host):
    """mx - MX RDATA."""
    return struct.pack(">H", pref) + name(host)


def dns_seeds():
    """dns_seeds - MX, A, AAAA, CNAME, NXDOMAIN, NODATA, truncated, SERVFAIL, mismatches."""
    dns("mx-three", SEL_MX | N_EXAMPLE, packet("example.org", T_MX, [
        rr(PTR, T_MX, 3600, mx(20, "mx2.example.org")),
        rr(PTR, T_MX, 300, mx(10, "MX1.Example.org")),
        rr(PTR, T_MX, 3600, struct.pack(">H", 20) + b"\x03mx3\xc0\x0c"),
    ], additional=[rr(name("mx1.example.org"), T_A, 300, bytes([192, 0, 2, 1]))]))
    dns("mx-null", SEL_MX | N_EXAMPLE, packet("example.org", T_MX, [
        rr(PTR, T_MX, 86400, mx(0, "."))]))
    dns("mx-case-question", SEL_MX | N_MAIL, packet("mail.example.org", T_MX, [
        rr(PTR, T_MX, 600, mx(5, "in.example.org"))]))
    dns("a-cname-chain", SEL_A | N_MAIL, packet("Mail.Example.ORG", T_A, [
        rr(PTR, T_CNAME, 120, name("mx.example.net")),
        rr(name("mx.example.net"), T_CNAME, 60, name("host.example.net")),
        rr(name("host.example.net"), T_A, 300, bytes([192, 0, 2, 25])),
        rr(name("host.example.net"), T_A, 300, bytes([198, 51, 100, 7])),
        rr(name("other.example"), T_A, 300, bytes([203, 0, 113, 1])),
    ]))
    dns("aaaa-two", SEL_AAAA | N_AB, packet("a.b", T_AAAA, [
        rr(PTR, T_AAAA, 300, bytes.fromhex("20010db8000000000000000000000001")),
        rr(PTR, T_AAAA, 200, bytes.fromhex("20010db8000000000000000000000002")),
    ], additional=[rr(b"\0", T_OPT, 0, b"", cls=1232)]))
    dns("nxdomain-soa", SEL_MX | N_EXAMPLE,
        packet("example.org", T_MX, authority=[soa("example.org")], flags=0x8183))
    dns("nodata-soa", SEL_AAAA | N_EXAMPLE,
        packet("example.org", T_AAAA, authority=[soa("example.org")]))
    dns("truncated", SEL_MX | N_LONG,
        packet(LONG_NAME, T_MX, flags=0x8380)
        + b"\x00\x00\x0f\x00")   # the answer section is cut off mid-record
    dns("servfail", SEL_A | N_EXAMPLE, packet("example.org", T_A, flags=0x8182))
    dns("cname-loop", SEL_A | N_AB, packet("a.b", T_A, [
        rr(PTR, T_CNAME, 60, name("c.d")), rr(name("c.d"), T_CNAME, 60, name("a.b"))]))
    dns("id-mismatch", SEL_MX | N_EXAMPLE, packet("example.org", T_MX, [
        rr(PTR, T_MX, 60, mx(10, "mx.example.org"))], qid=0x1234))
    dns("bad-rdlength", SEL_A | N_EXAMPLE, packet("example.org", T_A, [
        rr(PTR, T_A, 60, bytes([192, 0, 2, 1, 9]))]))
    dns("splice-mx", SEL_MX | N_EXAMPLE | SPLICE,
        struct.pack(">HHHH", 0x8180, 2, 0, 0) +
        rr(PTR, T_MX, 60, mx(10, "mx1.example.org")) +
        rr(PTR, T_MX, 60, struct.pack(">H", 10) + b"\x03mx2\xc0\x0c"))
    dns("splice-a-ttl-top-bit", SEL_A | N_MAIL | SPLICE,
        struct.pack(">HHHH", 0x8180, 1, 0, 0) + PTR +
        struct.pack(">HHIH", T_A, 1, 0x80000000, 4) + bytes([192, 0, 2, 2]))


def main():
    """main - write every seed."""
    smtp_seeds()
    job_seeds()
    dns_seeds()
    total = 0
    for kind in ("smtp", "job", "dns"):
        d = os.path.join(CORPUS, kind)
        files = os.listdir(d)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in files)
        total += size
        print(f"{kind}: {len(files)} seeds, {size} octets")
    print(f"total {total} octets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
