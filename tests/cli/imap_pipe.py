#!/usr/bin/env python3
# imap_pipe.py: plays one IMAP conversation through a tunnel command's stdin/stdout, as a
# mail client would, and writes what came back; every wait is bounded.
#   imap_pipe.py TRANSCRIPT [--login USER PASS] [--no-logout] -- COMMAND...
# Exit status: the command's own, or 100 when it exited 0 (or hung) without every reply.
import os, subprocess, sys, time

def main():
    args = sys.argv[1:]
    out_path = args.pop(0)
    login = None
    logout = True
    while args and args[0] != '--':
        a = args.pop(0)
        if a == '--login':
            login = (args.pop(0), args.pop(0))
        elif a == '--no-logout':
            logout = False
    cmd = args[1:]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    got = bytearray()
    fd = p.stdout.fileno()
    os.set_blocking(fd, False)

    def wait_for(token, limit=20.0):
        end = time.monotonic() + limit
        while token not in got:
            if time.monotonic() > end or p.poll() is not None and not more():
                return False
            more()
            time.sleep(0.005)
        return True

    def more():
        try:
            b = os.read(fd, 1 << 20)
        except BlockingIOError:
            return False
        if b:
            got.extend(b)
        return bool(b)

    def wait_tagged(tag, limit=20.0):
        """the tagged reply, through its CRLF"""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            at = got.find(b'\r\n' + tag + b' ')
            if at >= 0 and got.find(b'\r\n', at + 2) >= 0:
                return True
            if not more():
                if p.poll() is not None:
                    return False
                time.sleep(0.002)
        return False

    def send(line):
        p.stdin.write(line.encode() + b'\r\n')
        p.stdin.flush()

    ok = wait_for(b'\r\n')
    steps = []
    if login:
        steps.append(('a0', 'LOGIN "%s" "%s"' % login))
    steps += [('a1', 'CAPABILITY'), ('a2', 'SELECT INBOX'), ('a3', 'FETCH 1 BODY.PEEK[]')]
    if logout:
        steps.append(('a4', 'LOGOUT'))
    for tag, text in steps:
        if not ok:
            break
        send(tag + ' ' + text)
        ok = wait_tagged(tag.encode())
    p.stdin.close()
    end = time.monotonic() + 20
    while p.poll() is None and time.monotonic() < end:
        more()
        time.sleep(0.01)
    while more():
        pass
    with open(out_path, 'wb') as f:
        f.write(bytes(got))
    if p.poll() is None:
        p.kill()
        p.wait()
        return 100
    # a tunnel that failed says so by its own code; one that "succeeded" without the
    # replies did not
    return p.returncode if ok or p.returncode != 0 else 100

sys.exit(main())
