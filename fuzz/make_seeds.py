#!/usr/bin/env python3
# make_seeds.py: writes the hand-made seed inputs of every fuzz target into fuzz/corpus/;
# each starts with its target's header (see session.h, fuzz_proxy.c, fuzz_connect_args.c).
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_client: header h0 h1 h2 h3, then what the server sends ----------------------
CAPA = b"IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN"
GREETING = b"* OK [CAPABILITY " + CAPA + b"] Dovecot ready.\r\n"
BODY = (b"From: Alice <alice@example.test>\r\nTo: imapwire@example.test\r\n"
        b"Subject: hello\r\nMessage-ID: <1@example.test>\r\n\r\nHello, world.\r\n")
SELECT = (b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
          b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
          b"Flags permitted.\r\n* 2 EXISTS\r\n* 0 RECENT\r\n* OK [UNSEEN 1] First unseen.\r\n"
          b"* OK [UIDVALIDITY 1700000000] UIDs valid\r\n* OK [UIDNEXT 3] Predicted next UID\r\n")


def tagged(n, text):
    return b"A%04d " % n + text + b"\r\n"


def fetch(n, body=BODY):
    return b"* 1 FETCH (BODY[] {%d}\r\n" % len(body) + body + b")\r\n" + \
        tagged(n, b"OK Fetch completed (0.001 + 0.000 secs).")


def session(login, first_tag, command_reply):
    t = first_tag
    s = login
    s += SELECT + tagged(t, b"OK [READ-WRITE] Select completed (0.001 + 0.000 secs).")
    s += fetch(t + 1) + fetch(t + 2)
    s += command_reply(t + 3)
    s += b"* BYE Logging out\r\n" + tagged(t + 4, b"OK Logout completed.")
    return s


def login_ok(t):
    return tagged(t, b"OK [CAPABILITY " + CAPA + b" UIDPLUS MOVE] Logged in")


def noop(t):
    return tagged(t, b"OK NOOP completed (0.001 + 0.000 secs).")


# LOGIN in clear (auth 0), big reads; the greeting carries the capabilities.
write("fuzz_client", "dovecot-login", bytes([0x00, 0xC0, 0x10, 0x0B]) +
      GREETING + session(login_ok(1), 2, noop))
# The same one byte at a time with EAGAIN, short sends and the trace on.
write("fuzz_client", "dovecot-1byte-again", bytes([0x20, 0x05, 0x08, 0x5F]) +
      GREETING + session(login_ok(1), 2, noop))
# A greeting without capabilities: CAPABILITY, then ID, then AUTHENTICATE PLAIN with SASL-IR.
write("fuzz_client", "capability-id-plain", bytes([0x09, 0x80, 0x12, 0x0E]) +
      b"* OK IMAP4rev1 Service Ready\r\n" +
      b"* CAPABILITY " + CAPA + b"\r\n" + tagged(1, b"OK Capability completed.") +
      b"* ID (\"name\" \"Dovecot\")\r\n" + tagged(2, b"OK ID completed.") +
      session(login_ok(3), 4,
              lambda t: b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n" + tagged(t, b"OK List completed.")))
# AUTHENTICATE PLAIN without SASL-IR: the server asks with "+ ".
write("fuzz_client", "plain-continuation", bytes([0x01, 0x80, 0x13, 0x03]) +
      b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER AUTH=ANONYMOUS] ready\r\n" +
      b"+ \r\n" + session(login_ok(1), 2,
                          lambda t: b"+ OK\r\n" + tagged(t, b"OK [APPENDUID 1 3] Append completed.")))
# XOAUTH2 refused with an error challenge, then the rest fails politely.
write("fuzz_client", "xoauth2-error", bytes([0x02, 0x80, 0x04, 0x03]) +
      b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready\r\n" +
      b"+ eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n" +
      tagged(1, b"NO [AUTHENTICATIONFAILED] Invalid credentials") +
      tagged(2, b"BAD Not authenticated") + tagged(3, b"BAD Not authenticated"))
# PREAUTH (as over a command transport): LOGIN is refused locally; a non-ASCII mailbox
# (modified UTF-7 per API.md); a quoted body, then NIL.
write("fuzz_client", "preauth-utf7-quoted", bytes([0x80, 0xC0, 0x2D, 0x0B]) +
      b"* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+] Logged in as imapwire\r\n" +
      b"* 1 FETCH (BODY[1] \"Hello \\\"quoted\\\" body\")\r\n" + tagged(1, b"OK done") +
      b"* 1 FETCH (BODY[1] NIL)\r\n" + tagged(2, b"OK done") +
      b"* 1 FETCH (FLAGS (\\Seen) UID 1)\r\n* 2 FETCH (FLAGS () UID 2)\r\n" + tagged(3, b"OK done") +
      b"* BYE bye\r\n" + tagged(4, b"OK bye"))
# LOGINDISABLED and STARTTLS: LOGIN must not go out; STARTTLS with bytes after the OK.
write("fuzz_client", "starttls-injection", bytes([0x10, 0xC0, 0x00, 0x00]) +
      b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n" +
      tagged(1, b"OK Begin TLS negotiation now.") + b"* OK injected\r\n")
# A server that says BYE at once.
write("fuzz_client", "bye-greeting", bytes([0x00, 0xC0, 0x00, 0x00]) +
      b"* BYE Too many connections\r\n")

# ---- fuzz_socks5: header, then the proxy's reply (RFC 1928/1929), then IMAP ------------
IMAP = b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"
write("fuzz_socks5", "noauth-ipv4", bytes([0x00, 0xC0, 0, 0]) +
      b"\x05\x00" + b"\x05\x00\x00\x01\x7f\x00\x00\x01\x9c\x40" + IMAP)
write("fuzz_socks5", "userpass-ipv6", bytes([0x01, 0x00, 0x05, 0]) +
      b"\x05\x02" + b"\x01\x00" + b"\x05\x00\x00\x04" + b"\x00" * 15 + b"\x01\x9c\x40" + IMAP)
write("fuzz_socks5", "domain-bound", bytes([0x44, 0x83, 0x0C, 0]) +
      b"\x05\x00" + b"\x05\x00\x00\x03\x09localhost\x9c\x40" + IMAP)
write("fuzz_socks5", "refused", bytes([0x00, 0xC0, 0, 0]) + b"\x05\x00" + b"\x05\x05\x00\x01")
write("fuzz_socks5", "bad-credentials", bytes([0x83, 0xC0, 0, 0]) + b"\x05\x02" + b"\x01\x01")
write("fuzz_socks5", "no-method", bytes([0x00, 0xC0, 0, 0]) + b"\x05\xff")

# ---- fuzz_httpconnect: header, then the proxy's answer, then IMAP ------------------------
write("fuzz_httpconnect", "tinyproxy-200", bytes([0x00, 0xC0, 0, 0]) +
      b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n" + IMAP)
write("fuzz_httpconnect", "interim-then-200", bytes([0x45, 0x02, 0x0D, 0]) +
      b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nVia: 1.1 proxy\r\nContent-Length: 0\r\n\r\n" + IMAP)
write("fuzz_httpconnect", "407", bytes([0x00, 0xC0, 0, 0]) +
      b"HTTP/1.1 407 Proxy Authentication Required\r\nServer: tinyproxy/1.11.1\r\n"
      b"Proxy-Authenticate: Basic realm=\"tinyproxy\"\r\nContent-Type: text/html\r\n"
      b"Connection: close\r\n\r\n<html><body>auth</body></html>")
write("fuzz_httpconnect", "401-credentials", bytes([0x81, 0xC0, 0, 0]) +
      b"HTTP/1.0 401 Unauthorized\r\nServer: tinyproxy/1.11.1\r\n\r\n")
write("fuzz_httpconnect", "403", bytes([0x0B, 0x40, 0, 0]) +
      b"HTTP/1.1 403 Forbidden\r\n\r\n")

# ---- fuzz_connect_args: flags byte, then transport NUL dns NUL local -----------------------
write("fuzz_connect_args", "tcp-dns-local", b"\x07tcp\x00127.0.0.1:5353,[::1]:53\x00127.0.0.1")
write("fuzz_connect_args", "socks5", b"\x01socks5:user:pw@127.0.0.1:1080")
write("fuzz_connect_args", "tls-filter", b"\x03tls\x00127.0.0.1")
write("fuzz_connect_args", "bad-name", b"\x01Tcp/../x:1")
write("fuzz_connect_args", "dns-list", b"\x02\x00[fe80::1]:53,10.0.0.1,::1")
write("fuzz_connect_args", "short-dwsize", b"\x0ftcp\x00not-an-address\x00[::1]")
sys.exit(0)
