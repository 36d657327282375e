#!/usr/bin/python3
"""`minicpm chat` on a real terminal (a pseudo-terminal): the banner, libedit's prompt, a line ending
in '\\' continuing on a '... ' prompt, Ctrl-C stopping a long reply and returning to the prompt (the
process survives), /reset, and /exit. Usage: chat_pty_test.py path/to/minicpm"""
import os
import pty
import select
import sys
import time

BIN = sys.argv[1]


def main():
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(BIN, [BIN, "chat", "-n", "3000", "--ignore-eos", "--temp", "0.9", "--seed", "3"])
    buf = b""

    def expect(what, timeout=60):
        nonlocal buf
        end = time.time() + timeout
        while what.encode() not in buf:
            left = end - time.time()
            if left <= 0:
                raise SystemExit(f"FAIL: timed out waiting for {what!r}; got {buf[-400:]!r}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    raise SystemExit(f"FAIL: chat exited while waiting for {what!r}; got {buf[-400:]!r}")
                buf += chunk
        i = buf.index(what.encode()) + len(what)
        seen, buf = buf[:i], buf[i:]
        return seen

    expect("Ctrl-C stops a reply")
    expect("> ")
    os.write(fd, b"first line\\\r")
    expect("... ")
    os.write(fd, b"second line\r")
    time.sleep(0.5)
    os.write(fd, b"\x03")  # stop the (eos-ignoring) reply to the two-line message
    expect("stopped (Ctrl-C)")
    expect("> ")
    os.write(fd, b"Tell me a very long story about the sea and the ships.\r")
    time.sleep(1.0)  # the reply is streaming (up to 3000 tokens)
    os.write(fd, b"\x03")
    expect("stopped (Ctrl-C)")
    expect("> ")
    os.write(fd, b"/reset\r")
    expect("conversation cleared")
    os.write(fd, b"/exit\r")
    _, status = os.waitpid(pid, 0)
    if os.WEXITSTATUS(status) != 0:
        raise SystemExit(f"FAIL: chat exited with {status}")
    print("ok: chat on a terminal (multi-line, Ctrl-C stops the reply, /reset, /exit)")


main()
