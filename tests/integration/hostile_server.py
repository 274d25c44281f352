#!/usr/bin/python3
"""hostile_server.py - a scripted hostile SMTP server for volley's integration tests.

Run with Debian's /usr/bin/python3 (standard library only):

    /usr/bin/python3 hostile_server.py --port PORT --mode MODE [--step STEP]
        [--host 127.0.0.1] [--out EVENTS.jsonl] [--max-time SECONDS] [--no-pipelining]

It listens on HOST:PORT, prints "READY <port>" on stdout once it listens, and
serves every connection (one thread each) with one misbehaviour, chosen by
MODE and STEP. Where the mode does not misbehave it is an ordinary SMTP
server: 220 greeting, EHLO advertising PIPELINING (unless --no-pipelining)
and 8BITMIME, 250 to MAIL/RCPT/RSET/NOOP, 354 to DATA, 250 to the final dot,
221 to QUIT.

Modes (STEP in brackets, default first):
  longline [greeting|ehlo|mail]  an over-long reply line: greeting = "220 " and
                   100 KB with no CRLF as the greeting; ehlo = the EHLO reply is
                   one 100 KB line ending in CRLF; mail = the reply to MAIL is one
                   3,000-octet line ending in CRLF (whole, in one write).
  endless [ehlo|greeting]  "250-..." (or "220-...") lines without end, in
                   reply to EHLO (or as the greeting), until the client goes
                   away or the time limit.
  garbage [greeting|mail]  binary garbage (NUL, 0xff, bare CR and LF, escape
                   sequences: a fixed pseudo-random 4 KB) as the greeting; or
                   "250 2.1.0 " followed by such octets and CRLF as the reply to MAIL.
  unsolicited [greeting|pipeline|dot]  replies to commands never sent: two
                   extra "250 ok" lines in the same write as the greeting; or one
                   extra "250" right after the reply to MAIL; or a "250" in the same
                   write as the 354 (before any content), and then 554 to the real
                   final dot.
  reset STEP       a TCP reset (SO_LINGER 0, then close) at STEP: accept (at
                   once), greeting (0.2 s after the greeting), ehlo, mail, rcpt
                   (on receiving the first of these commands, before replying),
                   data (on DATA, before 354), content (after the first chunk of
                   message content, before the final dot), dot (on the final
                   dot, before replying), dotreply (after the 250 to the dot,
                   on QUIT, before replying 221).
  silent [greeting|dot]  accepts and never says anything; with "dot", answers
                   normally up to the content and never answers the final dot.
  drip             one octet per second of the greeting and the replies.
  data250          250 instead of 354 in reply to DATA; every later line is then
                   taken as a command.
  close354         354 to DATA, then an orderly close (FIN) at once.

Every event is appended to EVENTS.jsonl as one JSON object and flushed:
    accept {conn, peer}          a connection came in
    cmd    {conn, line}          a command line (latin-1, at most 300 characters)
    content {conn, octets, dot}  message content after 354 (octets read, final dot seen)
    sent   {conn, octets, what}  a reply (or garbage) written
    reset  {conn, step}          the connection was reset
    close  {conn, why}           the connection ended (eof, error, limit, done)
"conn" numbers connections from 1.

Every loop is bounded by --max-time (default 30 s) from the start; SIGTERM
ends the process.
"""
import argparse
import json
import random
import socket
import struct
import sys
import threading
import time

HOST_NAME = b"hostile.test"
GREETING = b"220 " + HOST_NAME + b" ESMTP hostile\r\n"
BIG = 100 * 1024


class Events:
    """Events - append one JSON object per event, flushed at once (thread-safe)."""

    def __init__(self, path):
        """__init__ - append to path (no recording when path is empty)."""
        self.f = open(path, "a", encoding="utf-8") if path else None
        self.lock = threading.Lock()

    def write(self, **obj):
        """write - record one event."""
        if self.f is None:
            return
        obj["t"] = round(time.monotonic(), 3)
        with self.lock:
            self.f.write(json.dumps(obj, sort_keys=True) + "\n")
            self.f.flush()


class Gone(Exception):
    """Gone - the client closed, reset, or the time limit passed."""


def garbage(n, seed):
    """garbage - n fixed pseudo-random octets with NUL, 0xff, bare CR/LF and ESC sprinkled in."""
    rnd = random.Random(seed)
    out = bytearray(rnd.getrandbits(8) for _ in range(n))
    for i, b in enumerate((0x00, 0xff, 0x0d, 0x0a, 0x1b, 0x00, 0xfe, 0x0a)):
        out[(i * 97 + 5) % n] = b
    return bytes(out)


class Session:
    """Session - one client connection, served by one thread, with one misbehaviour."""

    def __init__(self, sock, n, opts, ev, deadline):
        """__init__ - connection n on sock, served per opts until deadline (monotonic)."""
        self.sock = sock
        self.n = n
        self.opts = opts
        self.ev = ev
        self.deadline = deadline
        self.buf = b""

    # --- I/O ---------------------------------------------------------------

    def left(self):
        """left - seconds until the time limit (raises Gone when none)."""
        t = self.deadline - time.monotonic()
        if t <= 0:
            raise Gone("time limit")
        return t

    def send(self, data, what="reply"):
        """send - write data whole (bounded by the time limit)."""
        self.sock.settimeout(min(self.left(), 5.0))
        try:
            self.sock.sendall(data)
        except (OSError, socket.timeout) as e:
            raise Gone(f"send: {e}")
        self.ev.write(event="sent", conn=self.n, octets=len(data), what=what)

    def recv_more(self):
        """recv_more - read what comes (at most 64 KB) into the buffer."""
        self.sock.settimeout(min(self.left(), 1.0))
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                self.sock.settimeout(min(self.left(), 1.0))
                continue
            except OSError as e:
                raise Gone(f"recv: {e}")
            if not data:
                raise Gone("eof")
            self.buf += data
            return len(data)

    def readline(self):
        """readline - the next command line, without its CRLF."""
        while b"\n" not in self.buf:
            if len(self.buf) > 65536:
                raise Gone("command line too long")
            self.recv_more()
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.rstrip(b"\r")
        self.ev.write(event="cmd", conn=self.n, line=line[:300].decode("latin-1"))
        return line

    def read_content(self, stop_after_first=False):
        """read_content - message content up to the final dot; True when the dot came."""
        total = 0
        while True:
            # the content ends with CRLF "." CRLF (or is just "." CRLF)
            if self.buf.startswith(b".\r\n"):
                end = 0
            else:
                i = self.buf.find(b"\r\n.\r\n")
                end = i + 2 if i >= 0 else -1
            if end >= 0:
                total += end
                self.buf = self.buf[end + 3:]
                self.ev.write(event="content", conn=self.n, octets=total, dot=True)
                return True
            if stop_after_first and self.buf:
                self.ev.write(event="content", conn=self.n, octets=total + len(self.buf),
                              dot=False)
                return False
            # keep the tail that may start the final dot sequence
            keep = self.buf[-4:]
            total += len(self.buf) - len(keep)
            self.buf = keep
            self.recv_more()

    def reset(self, step):
        """reset - abort the connection with a TCP RST (SO_LINGER on, timeout 0)."""
        self.ev.write(event="reset", conn=self.n, step=step)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        raise Gone("reset")

    def drain(self):
        """drain - read and log until the client goes away (or the time limit)."""
        while True:
            if b"\n" in self.buf:
                self.readline()
            else:
                self.recv_more()

    # --- the ordinary server ---------------------------------------------------

    def ehlo_reply(self):
        """ehlo_reply - the multi-line EHLO reply."""
        lines = [HOST_NAME]
        if not self.opts.no_pipelining:
            lines.append(b"PIPELINING")
        lines += [b"8BITMIME", b"ENHANCEDSTATUSCODES"]
        return b"".join(b"250" + (b" " if i == len(lines) - 1 else b"-") + ln + b"\r\n"
                        for i, ln in enumerate(lines))

    def hook(self, point, line=b""):
        """hook - the mode's misbehaviour at point; returns True when it replied itself."""
        m, step = self.opts.mode, self.opts.step
        if m == "reset":
            if point == step and point in ("ehlo", "mail", "rcpt", "data", "dot", "quit"):
                self.reset(step)
            if step == "dotreply" and point == "quit":
                self.reset(step)
            return False
        if m == "longline" and step == "ehlo" and point == "ehlo":
            self.send(b"250 " + b"y" * BIG + b"\r\n", "100 KB EHLO reply line")
            return True
        if m == "longline" and step == "mail" and point == "mail":
            self.send(b"250 2.1.0 " + b"z" * 3000 + b"\r\n", "3000-octet MAIL reply line")
            return True
        if m == "endless" and step == "ehlo" and point == "ehlo":
            self.endless(b"250-")
        if m == "garbage" and step == "mail" and point == "mail":
            self.send(b"250 2.1.0 " + garbage(4096, 2) + b"\r\n", "garbage MAIL reply")
            return True
        if m == "unsolicited" and step == "pipeline" and point == "mail":
            self.send(b"250 2.1.0 Ok\r\n250 2.0.0 extra reply to no command\r\n",
                      "MAIL reply and an extra reply")
            return True
        if m == "data250" and point == "data":
            self.send(b"250 2.0.0 Ok (but no 354)\r\n", "250 to DATA")
            return True
        return False

    def endless(self, prefix):
        """endless - continuation lines without end (until the client goes or the limit)."""
        i = 0
        while True:
            self.left()
            chunk = b"".join(prefix + b"endless reply line %08d\r\n" % (i + k)
                             for k in range(100))
            self.send(chunk, "100 continuation lines")
            i += 100

    def reply(self, data, what="reply"):
        """reply - send a reply, one octet per second in drip mode."""
        if self.opts.mode != "drip":
            self.send(data, what)
            return
        for k in range(len(data)):
            self.send(data[k:k + 1], "drip")
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                self.left()
                time.sleep(0.05)

    def run(self):
        """run - serve the connection."""
        m, step = self.opts.mode, self.opts.step
        if m == "reset" and step == "accept":
            self.reset(step)
        if m == "silent" and step != "dot":
            self.drain()
        if m == "longline" and step == "greeting":
            self.send(b"220 " + b"x" * BIG, "100 KB greeting without CRLF")
            self.drain()
        if m == "endless" and step == "greeting":
            self.endless(b"220-")
        if m == "garbage" and step == "greeting":
            self.send(garbage(4096, 1), "garbage greeting")
            self.drain()
        if m == "unsolicited" and step == "greeting":
            self.send(GREETING + b"250 2.0.0 ok\r\n250 2.0.0 ok\r\n",
                      "greeting and two unsolicited replies")
        else:
            self.reply(GREETING, "greeting")
        if m == "reset" and step == "greeting":
            time.sleep(0.2)
            self.reset(step)
        while True:
            line = self.readline()
            verb = line.split(b" ", 1)[0].upper()
            point = verb.decode("latin-1").lower()
            if self.hook(point, line):
                continue
            if verb == b"EHLO":
                self.reply(self.ehlo_reply())
            elif verb == b"HELO":
                self.reply(b"250 " + HOST_NAME + b"\r\n")
            elif verb == b"MAIL":
                self.reply(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                self.reply(b"250 2.1.5 Ok\r\n")
            elif verb in (b"RSET", b"NOOP"):
                self.reply(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                self.reply(b"221 2.0.0 Bye\r\n")
                raise Gone("done")
            elif verb == b"DATA" and m == "unsolicited" and step == "dot":
                self.send(b"354 End data with <CR><LF>.<CR><LF>\r\n"
                          b"250 2.0.0 Ok: queued as EARLY\r\n", "354 and an early 250")
                self.read_content()
                self.send(b"554 5.6.0 Message rejected after the final dot\r\n", "554 to the dot")
            elif verb == b"DATA":
                self.reply(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                if m == "close354":
                    self.ev.write(event="close", conn=self.n, why="close after 354")
                    self.sock.shutdown(socket.SHUT_RDWR)
                    raise Gone("closed after 354")
                if m == "reset" and step == "content":
                    if not self.read_content(stop_after_first=True):
                        self.reset(step)
                    continue  # the whole message came at once: no "during" to reset in
                self.read_content()
                self.hook("dot")
                if m == "silent" and step == "dot":
                    self.drain()  # the end-of-data reply never comes
                self.reply(b"250 2.0.0 Ok: queued as HOSTILE\r\n")
            else:
                self.reply(b"502 5.5.2 Error: command not recognized\r\n")

    def serve(self):
        """serve - run, then close; record why the connection ended."""
        why = "done"
        try:
            self.run()
        except Gone as e:
            why = str(e)
        except Exception as e:  # noqa: BLE001 - a bug here must not kill the server
            why = f"server error: {e!r}"
        self.ev.write(event="close", conn=self.n, why=why)
        try:
            self.sock.close()
        except OSError:
            pass


def main():
    """main - parse arguments, listen, accept until the time limit."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", required=True,
                    choices=["longline", "endless", "garbage", "unsolicited", "reset",
                             "silent", "drip", "data250", "close354"])
    ap.add_argument("--step", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--max-time", type=float, default=30.0)
    ap.add_argument("--no-pipelining", action="store_true")
    opts = ap.parse_args()
    defaults = {"longline": "greeting", "endless": "ehlo", "garbage": "greeting",
                "unsolicited": "greeting"}
    opts.step = opts.step or defaults.get(opts.mode, "")
    steps = {"longline": ("greeting", "ehlo", "mail"), "endless": ("ehlo", "greeting"),
             "garbage": ("greeting", "mail"), "unsolicited": ("greeting", "pipeline", "dot"),
             "reset": ("accept", "greeting", "ehlo", "mail", "rcpt", "data", "content", "dot",
                       "dotreply")}
    if opts.mode in steps and opts.step not in steps[opts.mode]:
        ap.error(f"--step for {opts.mode}: one of {', '.join(steps[opts.mode])}")

    ev = Events(opts.out)
    fam = socket.AF_INET6 if ":" in opts.host else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((opts.host, opts.port))
    ls.listen(64)
    ls.settimeout(0.2)
    print(f"READY {opts.port}", flush=True)
    deadline = time.monotonic() + opts.max_time
    n = 0
    while time.monotonic() < deadline:
        try:
            c, peer = ls.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        n += 1
        ev.write(event="accept", conn=n, peer=f"{peer[0]}:{peer[1]}")
        threading.Thread(target=Session(c, n, opts, ev, deadline).serve, daemon=True).start()
    ls.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
