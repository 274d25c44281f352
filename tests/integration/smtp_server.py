#!/usr/bin/python3
"""smtp_server.py - a recording aiosmtpd server for volley's integration tests.

Run it with Debian's /usr/bin/python3 (python3-aiosmtpd):

    /usr/bin/python3 smtp_server.py --port PORT --out EVENTS.jsonl [--host 127.0.0.1]
        [--rules RULES.json]

RULES.json (every key optional):
    {"reject": ["a@x.org", ...],      RCPT answered 550 5.1.1 <addr>: user unknown
     "defer": ["b@x.org", ...],       RCPT answered 451 4.3.0 try again later
     "defer_first": {"c@x.org": 2},   RCPT answered 451 4.3.0 the first 2 times, then accepted
     "mail_421_first": 3,             the first 3 MAIL commands answered 421 4.7.0 (too many
                                      connections, try again later) and the connection closed
     "mail_421_after": 40,            ... counting from the 41st MAIL (default 0)
     "reject_data_marker": "XYZ",     end of DATA answered 554 5.6.0 when the content holds it
     "eightbit": true,                advertise 8BITMIME (default true)
     "smtputf8": false,               advertise SMTPUTF8 (default false)
     "pipelining": false}             advertise PIPELINING (default false)

Every event is appended to EVENTS.jsonl as one JSON object and flushed at once:
    connect    {conn, peer}
    ehlo/helo  {conn, name}
    mail       {conn, address, options, code}
    rcpt       {conn, address, options, code}
    data       {conn, txn, peer, helo, mail_from, mail_options, rcpt_tos,
                content_b64, code}   (content: the raw octets after dot-unstuffing)
    quit       {conn}
    disconnect {conn}
"conn" numbers connections from 1; "txn" numbers DATA transactions within one
connection from 1. Every event also has "t", the server's time.time().

When the port is listening the server prints "READY <port>" on stdout.
SIGTERM or SIGINT closes it cleanly (exit 0).
"""
import argparse
import asyncio
import base64
import itertools
import json
import signal
import sys
import time

from aiosmtpd.smtp import SMTP

HOSTNAME = "aiosmtpd.test"


class Recorder:
    """Recorder - append one JSON object per event, flushed immediately."""

    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def write(self, obj):
        obj = dict(obj, t=round(time.time(), 4))  # wall clock, comparable across processes
        self.f.write(json.dumps(obj, sort_keys=True) + "\n")
        self.f.flush()

    def close(self):
        self.f.close()


def _peer(session):
    """_peer - "host:port" of the client (IPv6 hosts in brackets)."""
    p = session.peer
    if not isinstance(p, tuple):
        return str(p)
    host, port = p[0], p[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _code(reply):
    return int(reply[:3])


class Handler:
    """Handler - aiosmtpd hooks applying the rules and recording every step."""

    def __init__(self, rules, rec):
        self.reject = set(rules.get("reject", []))
        self.defer = set(rules.get("defer", []))
        self.defer_first = dict(rules.get("defer_first", {}))
        self.mail_421 = int(rules.get("mail_421_first", 0))
        self.mail_421_after = int(rules.get("mail_421_after", 0))
        self.marker = rules.get("reject_data_marker")
        self.marker = self.marker.encode("utf-8") if self.marker else None
        self.eightbit = bool(rules.get("eightbit", True))
        self.pipelining = bool(rules.get("pipelining", False))
        self.rec = rec

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        out = [r for r in responses
               if self.eightbit or r[4:].upper() != "8BITMIME"]
        if self.pipelining:
            out.insert(len(out) - 1, "250-PIPELINING")
        self.rec.write({"event": "ehlo", "conn": session.conn_id, "name": hostname})
        return out

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        self.rec.write({"event": "helo", "conn": session.conn_id, "name": hostname})
        return f"250 {HOSTNAME}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        opts = [o.upper() for o in mail_options]
        if self.mail_421_after > 0:
            self.mail_421_after -= 1
        elif self.mail_421 > 0:
            self.mail_421 -= 1
            reply = "421 4.7.0 Too many connections, try again later"
            self.rec.write({"event": "mail", "conn": session.conn_id, "address": address,
                            "options": mail_options, "code": 421})
            await server.push(reply)
            server.transport.close()
            return "250 OK"  # not sent: the connection is already closed
        if "BODY=8BITMIME" in opts and not self.eightbit:
            reply = "555 5.5.4 BODY=8BITMIME not advertised"
        else:
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            reply = "250 2.1.0 OK"
        self.rec.write({"event": "mail", "conn": session.conn_id, "address": address,
                        "options": mail_options, "code": _code(reply)})
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            reply = f"550 5.1.1 <{address}>: user unknown"
        elif address in self.defer:
            reply = "451 4.3.0 try again later"
        elif self.defer_first.get(address, 0) > 0:
            self.defer_first[address] -= 1
            reply = "451 4.3.0 try again later"
        else:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            reply = "250 2.1.5 OK"
        self.rec.write({"event": "rcpt", "conn": session.conn_id, "address": address,
                        "options": rcpt_options, "code": _code(reply)})
        return reply

    async def handle_DATA(self, server, session, envelope):
        content = bytes(envelope.original_content)
        if self.marker is not None and self.marker in content:
            reply = "554 5.6.0 message content rejected"
        else:
            reply = "250 2.0.0 OK queued"
        session.txns += 1
        self.rec.write({
            "event": "data", "conn": session.conn_id, "txn": session.txns,
            "peer": _peer(session), "helo": session.host_name,
            "mail_from": envelope.mail_from, "mail_options": envelope.mail_options,
            "rcpt_tos": list(envelope.rcpt_tos),
            "content_b64": base64.b64encode(content).decode("ascii"),
            "code": _code(reply)})
        return reply

    async def handle_QUIT(self, server, session, envelope):
        self.rec.write({"event": "quit", "conn": session.conn_id})
        return "221 2.0.0 Bye"


def make_protocol_class(rec, ids):
    """make_protocol_class - an SMTP subclass that numbers and records connections."""

    class RecordingSMTP(SMTP):
        def connection_made(self, transport):
            super().connection_made(transport)
            self.session.conn_id = next(ids)
            self.session.txns = 0
            rec.write({"event": "connect", "conn": self.session.conn_id,
                       "peer": _peer(self.session)})

        def connection_lost(self, error):
            conn = getattr(self.session, "conn_id", None)
            if conn is not None:
                rec.write({"event": "disconnect", "conn": conn})
            super().connection_lost(error)

    return RecordingSMTP


async def serve(args, rules):
    loop = asyncio.get_running_loop()
    rec = Recorder(args.out)
    handler = Handler(rules, rec)
    proto = make_protocol_class(rec, itertools.count(1))

    def factory():
        return proto(handler, hostname=HOSTNAME, decode_data=False,
                     enable_SMTPUTF8=bool(rules.get("smtputf8", False)),
                     ident="volley-test-server", loop=loop)

    await run_until_signal(loop, factory, args, rec)


async def run_until_signal(loop, factory, args, rec, **server_kw):
    """run_until_signal - listen on args.host:args.port, say READY, serve until SIGTERM or
    SIGINT, then close the listener and the recorder (shared with tls_server.py)."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(factory, host=args.host, port=args.port,
                                      reuse_address=True, **server_kw)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()
    rec.close()


def cli_main(description, config_opt, serve_fn):
    """cli_main - parse --host/--port/--out and the JSON file of config_opt, run serve_fn
    (shared with tls_server.py)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--" + config_opt, dest="config", help="JSON file")
    ap.add_argument("--out", required=True, help="JSONL events file")
    args = ap.parse_args()
    cfg = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            cfg = json.load(f)
    asyncio.run(serve_fn(args, cfg))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main("recording aiosmtpd test server", "rules", serve))
