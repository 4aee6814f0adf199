#!/usr/bin/env python3
# record_proxies.py: records real Dante and tinyproxy answers (tests/harness/) to the proxy
# plugins' requests, tunnelled to Dovecot, as fuzz_socks5 / fuzz_httpconnect seeds.
# Usage: record_proxies.py DOVECOT_PORT DANTED_PORT TINYPROXY_PORT TINYPROXY_AUTH_PORT
# (Dante's user must be imapwire-socks / socks-pass. The SOCKS5 seeds' header picks the
# fuzz target's own credentials, which the recorded replies do not echo).
import os
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def exchange(port, steps, settle=0.5):
    """Sends each request and reads what the proxy answers until it is quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    got = b""
    for req in steps:
        s.sendall(req)
        s.settimeout(settle)
        deadline = time.time() + 3
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            got += b
    s.close()
    return got


def save(target, name, header, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(header) + data)
    print("%s/%s: %d bytes" % (target, name, len(data)))


dovecot, danted, tiny, tiny_auth = (int(a) for a in sys.argv[1:5])
user, pw = b"imapwire-socks", b"socks-pass"
connect = b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", dovecot)
# Dante with RFC 1929: method, credentials, CONNECT, then Dovecot's greeting.
save("fuzz_socks5", "dante-userpass", [0x01, 0xC0, 0, 0],
     exchange(danted, [b"\x05\x02\x00\x02",
                       b"\x01" + bytes([len(user)]) + user + bytes([len(pw)]) + pw, connect]))
save("fuzz_socks5", "dante-wrong-password", [0x01, 0xC0, 0, 0],
     exchange(danted, [b"\x05\x02\x00\x02", b"\x01" + bytes([len(user)]) + user + b"\x03bad"]))
req = b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (dovecot, dovecot)
save("fuzz_httpconnect", "tinyproxy-real-200", [0x00, 0xC0, 0, 0], exchange(tiny, [req]))
save("fuzz_httpconnect", "tinyproxy-real-407", [0x00, 0xC0, 0, 0], exchange(tiny_auth, [req]))
