#!/usr/bin/env python3
"""The Python client's own CPU a tokens() call, in a tight loop.

Usage: python3 bench/recorder/client_calls.py [CALLS]   (default 200,000)

A socket read by a thread of this process stands in for the recorder; the
client calls tokens() CALLS times in a row, writing each call at once
(hold 0) and holding lines (llem_events.HOLD_S), twice each, alternating.
It prints the calling thread's CPU a call and the whole process's (which
includes the reading thread and the client's flusher thread).
"""
import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import llem_events as ev  # noqa: E402


def drain(conn):
    while conn.recv(1 << 16):
        pass


def accept(srv):
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    path = os.path.join(tempfile.mkdtemp(prefix="llemcalls"), "s")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    threading.Thread(target=accept, args=(srv,), daemon=True).start()
    for hold in (0, ev.HOLD_S, 0, ev.HOLD_S):
        c = ev.Client(path)
        c.hold = hold
        t0, p0 = time.thread_time_ns(), time.process_time()
        for i in range(n):
            c.tokens("r%d" % (i & 31))
        c.flush()
        t1, p1 = time.thread_time_ns(), time.process_time()
        print("hold %.2f s: %.2f us a call (calling thread), %.2f us (process)" % (
            hold, (t1 - t0) / n / 1e3, (p1 - p0) / n * 1e6), flush=True)
        c.close()


if __name__ == "__main__":
    main()
