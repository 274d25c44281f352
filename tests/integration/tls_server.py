#!/usr/bin/python3
"""tls_server.py - a recording aiosmtpd server with STARTTLS, implicit TLS and AUTH.

Run it with Debian's /usr/bin/python3 (python3-aiosmtpd):

    /usr/bin/python3 tls_server.py --port PORT --out EVENTS.jsonl --config CONFIG.json
        [--host 127.0.0.1]

CONFIG.json (every key optional):
    {"mode": "starttls",        plain       no TLS at all (STARTTLS not advertised)
                                starttls    STARTTLS with cert/key (the default)
                                implicit    TLS from the first octet (RFC 8314): the
                                            listening socket is wrapped
                                garbage     advertises STARTTLS, answers 220, reads the
                                            client's first TLS record, then sends octets
                                            that are not TLS and closes
                                drop        advertises STARTTLS, answers 220, reads the
                                            ClientHello, sends the first half of its real
                                            reply flight (ServerHello...) and closes: the
                                            connection drops in the middle of the handshake
     "cert": PATH, "key": PATH, the server certificate (chain) and key
     "require_starttls": false, answer 530 to everything but EHLO/NOOP/QUIT/STARTTLS
                                before TLS (aiosmtpd require_starttls)
     "max_tls": null,           "1.2" caps the protocol at TLS 1.2
     "client_ca": null,         PATH: ask for a client certificate (optional) and
                                verify it against this CA; its CN is recorded
     "auth": false,             offer AUTH (the mechanisms below)
     "user": "u", "password": "p",   the one account that authenticates
     "mechanisms": ["LOGIN", "PLAIN"],   what AUTH advertises (and accepts)
     "auth_require_tls": true,  AUTH offered and accepted only under TLS (under
                                implicit TLS the connection always is)
     "auth_required": false,    MAIL before a successful AUTH gets 530 5.7.0
     "pipelining": false}       advertise PIPELINING

Every event is appended to EVENTS.jsonl as one JSON object, flushed at once.
"tls" is null without TLS, else "VERSION CIPHER" as OpenSSL names them (e.g.
"TLSv1.3 TLS_AES_256_GCM_SHA384", the form volley writes in its results):
    connect    {conn, peer, tls}             (tls set at once under implicit TLS)
    ehlo/helo  {conn, name, tls}
    starttls   {conn}                        the STARTTLS command arrived
    tls        {conn, tls, version, cipher, client_cn, reused}   handshake completed
    tls_error  {conn, error}                 STARTTLS handshake failed (or was sabotaged)
    auth       {conn, mechanism, user, success, code, tls}   one per AUTH command,
               user as the client sent it (null if it never got that far); the
               password is never recorded
    mail       {conn, address, options, code, tls, auth_user}
    rcpt       {conn, address, options, code, tls, auth_user}
    data       {conn, txn, peer, helo, mail_from, mail_options, rcpt_tos,
                content_b64, code, tls, auth_user}   (content after dot-unstuffing)
    quit       {conn}
    disconnect {conn}
"conn" numbers connections from 1, "txn" DATA transactions within one connection.

When the port is listening the server prints "READY <port>" on stdout.
SIGTERM or SIGINT closes it cleanly (exit 0).
"""
import asyncio
import base64
import itertools
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, TLSSetupException, syntax

from smtp_server import Recorder, _peer, cli_main, run_until_signal  # same directory

HOSTNAME = "tls-server.test"
# aiosmtpd itself sets the deprecated Session.login_data after AUTH; we read auth_data
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")

GARBAGE = b"HTTP/1.0 400 this is not TLS\r\n" * 4
MAX_HELLO_READS = 32          # reads to collect one ClientHello, at most
HELLO_TIMEOUT = 10.0          # seconds to wait for the client's first TLS octets
MAX_RECORD = 16384 + 2048     # a TLS record's payload, at most (RFC 8446 5.2)


def _code(reply):
    try:
        return int(reply[:3])
    except (TypeError, ValueError):
        return None


def _text(b):
    if b is None:
        return None
    return b.decode("utf-8", errors="replace") if isinstance(b, (bytes, bytearray)) else str(b)


def _cn(peercert):
    """_cn - the commonName of a getpeercert() dict, or None."""
    for rdn in (peercert or {}).get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def server_context(cfg):
    """server_context - the SSLContext serving cfg's certificate, or None."""
    if not cfg.get("cert"):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    if cfg.get("max_tls") == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cfg.get("client_ca"):
        ctx.load_verify_locations(cfg["client_ca"])
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


class Handler:
    """Handler - aiosmtpd hooks recording every step (the session's TLS and login too)."""

    def __init__(self, cfg, rec):
        self.cfg = cfg
        self.rec = rec
        self.pipelining = bool(cfg.get("pipelining", False))

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        out = list(responses)
        if not self.cfg.get("auth"):
            out = [r for r in out if not r[4:].upper().startswith("AUTH")]
        if self.pipelining:
            out.insert(len(out) - 1, "250-PIPELINING")
        self.rec.write({"event": "ehlo", "conn": session.conn_id, "name": hostname,
                        "tls": server.tls_desc()})
        return out

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        self.rec.write({"event": "helo", "conn": session.conn_id, "name": hostname,
                        "tls": server.tls_desc()})
        return f"250 {HOSTNAME}"

    def _common(self, server, session):
        return {"conn": session.conn_id, "tls": server.tls_desc(),
                "auth_user": _text(getattr(session.auth_data, "login", None))
                if session.authenticated else None}

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.cfg.get("auth_required") and not session.authenticated:
            reply = "530 5.7.0 Authentication required"
        else:
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            reply = "250 2.1.0 OK"
        self.rec.write({"event": "mail", "address": address, "options": mail_options,
                        "code": _code(reply), **self._common(server, session)})
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        reply = "250 2.1.5 OK"
        self.rec.write({"event": "rcpt", "address": address, "options": rcpt_options,
                        "code": _code(reply), **self._common(server, session)})
        return reply

    async def handle_DATA(self, server, session, envelope):
        content = bytes(envelope.original_content)
        reply = "250 2.0.0 OK queued"
        session.txns += 1
        self.rec.write({
            "event": "data", "txn": session.txns, "peer": _peer(session),
            "helo": session.host_name, "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options, "rcpt_tos": list(envelope.rcpt_tos),
            "content_b64": base64.b64encode(content).decode("ascii"), "code": _code(reply),
            **self._common(server, session)})
        return reply

    async def handle_QUIT(self, server, session, envelope):
        self.rec.write({"event": "quit", "conn": session.conn_id})
        return "221 2.0.0 Bye"

    def handle_STARTTLS(self, server, session, envelope):
        """handle_STARTTLS - called (not awaited) by aiosmtpd once the handshake is done."""
        server.record_tls()
        return True


def make_protocol_class(cfg, rec, ids):
    """make_protocol_class - an SMTP subclass for cfg that numbers and records connections."""
    mode = cfg.get("mode", "starttls")

    class TlsSMTP(SMTP):
        def _create_session(self):
            # aiosmtpd starts a new Session when STARTTLS completes: keep the
            # connection's number and transaction count across it
            s = super()._create_session()
            old = self.session
            if old is not None and hasattr(old, "conn_id"):
                s.conn_id, s.txns = old.conn_id, old.txns
            return s

        def connection_made(self, transport):
            starttls_done = self._original_transport is not None
            super().connection_made(transport)
            if starttls_done:
                return   # the same session, now under TLS (recorded by handle_STARTTLS)
            self.session.conn_id = next(ids)
            self.session.txns = 0
            self._last_reply = None
            self._auth_user = None
            rec.write({"event": "connect", "conn": self.session.conn_id,
                       "peer": _peer(self.session), "tls": self.tls_desc()})
            if mode == "implicit":
                self.record_tls()

        def connection_lost(self, error):
            conn = getattr(self.session, "conn_id", None)
            if conn is not None and not getattr(self, "_lost", False):
                self._lost = True
                rec.write({"event": "disconnect", "conn": conn})
            super().connection_lost(error)

        async def push(self, status):
            self._last_reply = status
            await super().push(status)

        def ssl_object(self):
            t = self.transport
            return t.get_extra_info("ssl_object") if t is not None else None

        def tls_desc(self):
            """tls_desc - "VERSION CIPHER" of this connection, or None without TLS."""
            so = self.ssl_object()
            if so is None or so.cipher() is None:
                return None
            return f"{so.version()} {so.cipher()[0]}"

        def record_tls(self):
            so = self.ssl_object()
            if so is None:
                return
            rec.write({"event": "tls", "conn": self.session.conn_id, "tls": self.tls_desc(),
                       "version": so.version(), "cipher": so.cipher()[0],
                       "client_cn": _cn(so.getpeercert()), "reused": so.session_reused})

        # STARTTLS: the real thing, or one of the sabotaged handshakes.
        @syntax("STARTTLS", when="tls_context")
        async def smtp_STARTTLS(self, arg):
            rec.write({"event": "starttls", "conn": self.session.conn_id})
            if mode == "garbage" and not arg:
                return await self._starttls_garbage()
            if mode == "drop" and not arg:
                return await self._starttls_drop()
            try:
                await super().smtp_STARTTLS(arg)
            except TLSSetupException as e:
                rec.write({"event": "tls_error", "conn": self.session.conn_id,
                           "error": str(e.__cause__ or e)})
                raise

        async def _read_hello(self):
            """_read_hello - the client's first TLS record (the ClientHello), as read."""
            buf = b""
            for _ in range(MAX_HELLO_READS):
                if len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
                    break
                chunk = await asyncio.wait_for(self._reader.read(MAX_RECORD), HELLO_TIMEOUT)
                if not chunk:
                    break
                buf += chunk
            return buf

        def _abort(self, why):
            rec.write({"event": "tls_error", "conn": self.session.conn_id, "error": why})
            self.transport.close()
            self._handler_coroutine.cancel()

        async def _starttls_garbage(self):
            await self.push("220 2.0.0 Ready to start TLS")
            try:
                hello = await self._read_hello()
            except asyncio.TimeoutError:
                hello = b""
            self.transport.write(GARBAGE)
            self._abort(f"sabotaged: sent {len(GARBAGE)} octets of non-TLS after reading "
                        f"{len(hello)} octets")

        async def _starttls_drop(self):
            await self.push("220 2.0.0 Ready to start TLS")
            try:
                hello = await self._read_hello()
            except asyncio.TimeoutError:
                hello = b""
            flight = b""
            if hello:
                inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
                obj = self.tls_context.wrap_bio(inc, out, server_side=True)
                inc.write(hello)
                try:
                    obj.do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLError):
                    pass
                flight = out.read()
            half = flight[:len(flight) // 2]
            if half:
                self.transport.write(half)
            self._abort(f"sabotaged: dropped after {len(half)} of {len(flight)} octets of "
                        f"the server's handshake flight")

        async def smtp_AUTH(self, arg):
            self._auth_user = None
            self._last_reply = None
            await super().smtp_AUTH(arg)
            mech = arg.split()[0].upper() if arg else None
            rec.write({"event": "auth", "conn": self.session.conn_id, "mechanism": mech,
                       "user": self._auth_user, "success": bool(self.session.authenticated),
                       "code": _code(self._last_reply), "tls": self.tls_desc()})

    return TlsSMTP


def make_authenticator(cfg):
    """make_authenticator - accept exactly cfg's user and password; note the user tried."""
    user = cfg.get("user", "u").encode("utf-8")
    password = cfg.get("password", "p").encode("utf-8")

    def authenticator(server, session, envelope, mechanism, auth_data):
        login = getattr(auth_data, "login", None)
        server._auth_user = _text(login)
        ok = login == user and getattr(auth_data, "password", None) == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticator


async def serve(args, cfg):
    loop = asyncio.get_running_loop()
    rec = Recorder(args.out)
    handler = Handler(cfg, rec)
    mode = cfg.get("mode", "starttls")
    if mode not in ("plain", "starttls", "implicit", "garbage", "drop"):
        raise SystemExit(f"tls_server.py: unknown mode {mode!r}")
    ctx = server_context(cfg)
    if mode != "plain" and ctx is None:
        raise SystemExit(f"tls_server.py: mode {mode} needs cert and key")
    proto = make_protocol_class(cfg, rec, itertools.count(1))
    kw = {}
    if cfg.get("auth"):
        mechs = {m.upper() for m in cfg.get("mechanisms", ["LOGIN", "PLAIN"])}
        kw = {"authenticator": make_authenticator(cfg),
              "auth_require_tls": bool(cfg.get("auth_require_tls", True)) and mode != "implicit",
              "auth_exclude_mechanism": [m for m in ("LOGIN", "PLAIN") if m not in mechs]}
    else:
        # no AUTH advertised at all: aiosmtpd lists its mechanisms whenever AUTH is
        # allowed, so keep it "TLS only" and offer none
        kw = {"auth_require_tls": True, "auth_exclude_mechanism": ["LOGIN", "PLAIN"]}

    def factory():
        p = proto(handler, hostname=HOSTNAME, decode_data=False, ident="volley-tls-test-server",
                  tls_context=ctx if mode in ("starttls", "garbage", "drop") else None,
                  require_starttls=bool(cfg.get("require_starttls", False)),
                  auth_required=False, loop=loop, **kw)
        return p

    await run_until_signal(loop, factory, args, rec,
                           ssl=ctx if mode == "implicit" else None,
                           ssl_handshake_timeout=10 if mode == "implicit" else None)


if __name__ == "__main__":
    sys.exit(cli_main("recording aiosmtpd TLS/AUTH test server", "config", serve))
