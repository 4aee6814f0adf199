#!/usr/bin/env python3
# auth_penalty_check.py: the test Dovecot must not slow one suite's logins for another's
# failed ones (suites run side by side and all log in from 127.0.0.1).
# Usage: auth_penalty_check.py ENV_FILE. Exits 1 if a good login after three failed ones
# from the same address takes over a second (anvil's auth penalty: 2, 4, 8, 15 s).
import socket
import sys
import time

env = {}
with open(sys.argv[1]) as f:
    for line in f:
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            env[k] = v
port, user, good = int(env["DOVECOT_PORT"]), env["DOVECOT_USER"], env["DOVECOT_PASS"]


def login(password):
    """Seconds from LOGIN to its tagged answer, and whether it was OK."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    f.readline()
    t0 = time.monotonic()
    s.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), password.encode()))
    for _ in range(100):
        line = f.readline()
        if line.startswith(b"a ") or not line:
            break
    s.close()
    return time.monotonic() - t0, line.startswith(b"a OK")


for _ in range(3):
    took, ok = login("not-the-password")
    if ok:
        sys.exit("a wrong password was accepted")
took, ok = login(good)
print("good login after three failed ones: %.2f s, %s" % (took, "OK" if ok else "refused"))
sys.exit(0 if ok and took < 1.0 else 1)
