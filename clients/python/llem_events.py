"""Mark inference events for `llem record` (standard library only).

Copy this file next to your code, put its folder on sys.path, or install
it with `pip install ./clients/python` (which adds llem_transformers and
llem_vllm, the integrations; clients/python/README.md). When the
program runs under `llem record`, the LLEM_EVENTS environment variable names
a Unix socket and every call below writes one JSON line to it (the lines
of tokens() and step_tokens() are held up to HOLD_S, 0.1 s, and written
together); otherwise every call does nothing, so the same code runs with
or without llem.

    import llem_events as ev

    with ev.phase("warmup"):
        run_warmup()
    with ev.phase("measure"):
        for prompt in prompts:
            with ev.request(prompt.id, input_tokens=len(prompt.ids)) as r:
                for i, token in enumerate(generate(prompt)):
                    if i == 0:
                        r.first_token()   # counts as the first output token
                    else:
                        r.tokens(1)       # one more token
                torch.cuda.synchronize()  # the end mark must mean the GPU is done
                r.output_tokens = n_generated

Calls never raise because of the socket: after a failed send the client
stops sending, counts every lost event in `errors` and warns once on
stderr. Each event carries `ts`, the client clock in ns (time.time_ns())
when the call made it; the recorder stamps the event with it. docs/events.md is the reference.
"""

import atexit
import contextlib
import json
import operator
import os
import socket
import sys
import threading
import time
import weakref

__all__ = [
    "ENV_VAR", "Client", "Request", "client",
    "request_start", "first_token", "tokens", "step_tokens", "batch_tokens", "flush_tokens", "request_end",
    "phase_start", "phase_end", "mark", "phase", "request",
]

ENV_VAR = "LLEM_EVENTS"

# How long one send may wait for the recorder before the client gives up on
# it. The recorder always reads, so hitting this means it is gone or stuck.
WRITE_TIMEOUT_S = 1.0

# The socket send buffer the client asks for (SO_SNDBUF; the kernel may
# give less): what it can leave unread before a write waits for the
# recorder.
SEND_BUFFER = 1 << 20

# How long batch_tokens() may hold token counts before sending them.
BATCH_INTERVAL_S = 0.05

# How long tokens() and step_tokens() may hold their lines before writing
# them, and how many bytes they may hold. The recorder pays for every write
# (the kernel frees one socket buffer a write) and wakes up for writes, so
# lines written together cost it far less each; each line keeps its own ts,
# and the recorder trusts a ts up to events.MaxHoldNs (0.5 s, docs/events.md)
# before the read that delivers it. Any other event writes the held lines
# first, at once, so events keep their order and request and phase marks
# are never held.
HOLD_S = 0.1
HOLD_BYTES = 16 << 10

# The flusher thread looks every _FLUSH_EVERY_S for held lines that no
# call has written within the hold: a line waits at most hold + 0.1 s
# (0.2 s), well within the 0.5 s the recorder allows. It looks at a fixed
# period, not at each hold's end, because a call usually writes the lines
# first and each wake-up of a Python thread costs ~50 us; after
# _FLUSHER_PARK_AFTER looks with nothing held it waits to be woken,
# looking every _FLUSHER_PARK_S whether its client is gone.
_FLUSH_EVERY_S = 0.1
_FLUSHER_PARK_AFTER = 10
_FLUSHER_PARK_S = 5.0

# A token event as tokens(), step_tokens() and batch_tokens() write it
# directly (ts, the id's JSON text, count), rather than through a dict and
# json.dumps: 5 us a call instead of 13 on the development machine.
_TOKEN_LINE = '{"kind":"token","ts":%d,"id":%s,"count":%d}\n'

# Keys the protocol gives a meaning; every other key is an attribute.
_INT_FIELDS = ("count", "input_tokens", "output_tokens", "gpu", "ts")
_FIXED = ("kind",)


def _as_int(v):
    """Turn integer-like values (numpy ints, torch scalars via __index__)
    into int. Anything else is sent as is and the recorder judges it: a bad
    value lands in the run's bad_events table, where it can be seen."""
    try:
        return operator.index(v)
    except TypeError:
        return v


class Client:
    """A connection to the recorder. Safe to share between threads; after
    os.fork() the child opens its own connection on its first send."""

    def __init__(self, path=None, timeout=WRITE_TIMEOUT_S):
        if path is None:
            path = os.environ.get(ENV_VAR) or None
        self.path = path
        self.timeout = timeout
        self.errors = 0  # events lost to socket or encoding errors
        self._lock = threading.Lock()
        self._sock = None
        self._pid = None
        self._broken = False
        self._warned = False
        self._ids = {}  # request id -> its JSON text, for the token fast path
        # batch_tokens: request id -> [count, ts of the latest], and when
        # the oldest pending count was added (monotonic seconds).
        self._pending = {}
        self._pending_since = None
        self.batch_interval = BATCH_INTERVAL_S
        # Token lines held for one write (HOLD_S), and since when (monotonic
        # seconds); the flusher thread writes them if no call does in time.
        self.hold = HOLD_S
        self._held = []
        self._held_bytes = 0
        self._held_since = None
        self._flusher = None
        if path is not None:
            with self._lock:
                self._connect()
            ref = weakref.WeakMethod(self._after_fork_in_child)
            os.register_at_fork(after_in_child=lambda: ref() and ref()())

    @property
    def enabled(self):
        """True when events are being sent somewhere."""
        return self.path is not None and not self._broken

    def _after_fork_in_child(self):
        # Another thread may have held the lock at the fork; the child gets a
        # fresh one, and a connection of its own so its lines never
        # interleave with the parent's.
        self._lock = threading.Lock()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        self._broken = False
        self._pending = {}  # the parent sends its own
        self._pending_since = None
        self._held = []  # likewise
        self._held_bytes = 0
        self._held_since = None
        self._flusher = None  # threads do not survive a fork

    def _connect(self):
        # Called with the lock held.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            self._fail("connecting to %s: %s" % (self.path, e))
            return
        try:
            # Room for more lines in the kernel before a write has to wait
            # for the recorder, which reads a busy connection in batches.
            # Linux charges each write ~770 bytes of this buffer whatever
            # its size and caps the request at net.core.wmem_max (doubled):
            # at least twice the default 212992.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass
        # Non-blocking: a write is one send(2). With a timeout set, Python
        # polls before every send, which doubles the system calls and
        # waits as soon as a quarter of the buffer is in use (_write).
        sock.setblocking(False)
        self._sock = sock
        self._pid = os.getpid()

    def _fail(self, why, lost=1):
        # Called with the lock held. A send cut short by a timeout would
        # leave half a line on the stream, so the connection is dropped
        # for good rather than retried.
        self.errors += lost
        self._broken = True
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if not self._warned:
            self._warned = True
            try:
                print("llem_events: %s; events are no longer sent" % why, file=sys.stderr)
            except Exception:
                pass

    def send(self, kind, fields=None):
        """Send one event: kind plus a dict of fields and attributes. None
        values of protocol fields are left out. ts defaults to now."""
        if self.path is None:
            return
        line = self._encode(kind, fields)
        if line is not None:
            self._write(line, flush_pending=True)

    def send_all(self, events):
        """Send several events, (kind, fields) pairs as for send(), in one
        write: a write of up to ~16 KiB reaches the recorder whole, so it
        reads them together (llem_vllm relies on it)."""
        if self.path is None:
            return
        lines = [self._encode(kind, fields) for kind, fields in events]
        self._write(b"".join(line for line in lines if line is not None), flush_pending=True)

    def _encode(self, kind, fields):
        """The line of one event, or None (counted in errors) if it cannot
        be encoded."""
        obj = {"kind": kind, "ts": time.time_ns()}
        for k, v in (fields or {}).items():
            if k in _FIXED:
                continue
            if k in _INT_FIELDS:
                if v is None:
                    continue
                v = _as_int(v)
            elif k in ("id", "name"):
                if v is None:
                    continue
                v = str(v)
            obj[k] = v
        try:
            return (json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str) + "\n").encode("utf-8")
        except (TypeError, ValueError) as e:
            with self._lock:
                self.errors += 1
                if not self._warned:
                    self._warned = True
                    print("llem_events: cannot encode %s event: %s" % (kind, e), file=sys.stderr)
            return None

    def _write(self, line, flush_pending=False, hold=False):
        """Send encoded lines. With flush_pending, batched token counts go
        first, so that the recorder sees every event in the order made.
        With hold, the lines may wait up to `hold` seconds (or HOLD_BYTES)
        to go out with later ones; lines held before go first either way."""
        with self._lock:
            if flush_pending and self._pending:
                line = self._pending_lines() + line
            if hold and self.hold > 0 and not self._broken:
                if not self._keep(line):
                    return
                line = b""
            if self._held:
                line = b"".join(self._held) + line
                self._held = []
                self._held_bytes = 0
                self._held_since = None
            if not line:
                return
            if self._broken:
                self.errors += line.count(b"\n")
                return
            if self._sock is None or self._pid != os.getpid():
                self._connect()
                if self._sock is None:
                    self.errors += line.count(b"\n") - 1  # _connect counted one
                    return
            # Every write starts with an empty line, which the recorder
            # skips: by counting them it knows how many writes a read
            # took, and reads a connection that holds its lines less often.
            out = b"\n" + line
            try:
                try:
                    n = self._sock.send(out)
                except BlockingIOError:
                    n = 0
                if n < len(out):
                    # The buffer is full: the recorder is behind. Wait for
                    # it, at most the timeout, then go on without blocking.
                    self._sock.settimeout(self.timeout)
                    try:
                        self._sock.sendall(out[n:])
                    finally:
                        self._sock.setblocking(False)
            except OSError as e:  # includes socket.timeout
                self._fail("sending to %s: %s" % (self.path, e), line.count(b"\n"))

    def _keep(self, line):
        """Hold line (lock held); True when the held lines are due now."""
        now = time.monotonic()
        self._held.append(line)
        self._held_bytes += len(line)
        if self._held_since is None:
            self._held_since = now
            self._wake_flusher()
            return self._held_bytes >= HOLD_BYTES
        return now - self._held_since >= self.hold or self._held_bytes >= HOLD_BYTES

    def _wake_flusher(self):
        # Lock held: something now waits to be written in time.
        if self._flusher is None or not self._flusher.is_alive():
            self._start_flusher()
        elif self._flusher_parked:
            self._flusher_parked = False
            self._flusher_idle = 0
            self._flusher_wake.set()

    def _start_flusher(self):
        # Once a process (lock held): the thread that writes held lines
        # when no call comes in time, and the exits that write them when
        # the program ends. A multiprocessing child ends with os._exit,
        # which skips atexit, after running multiprocessing's finalizers;
        # they are registered here, in the child, because multiprocessing
        # clears the parent's at the child's start.
        ref = weakref.ref(self)
        self._flusher_wake = threading.Event()
        self._flusher_parked = False
        self._flusher_idle = 0
        self._flusher = threading.Thread(target=_flush_held, args=(ref, self._flusher_wake),
                                         name="llem_events-flush", daemon=True)
        self._flusher.start()
        atexit.register(_flush_ref, ref)
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            mp_util.Finalize(None, _flush_ref, args=(ref,), exitpriority=100)

    def _flush_due(self):
        """Called by the flusher thread: write the held lines that have
        waited the hold, and the batched counts that have waited their
        interval (with each other). True: nothing was held for a while,
        park."""
        with self._lock:
            if self._held_since is None and self._pending_since is None:
                self._flusher_idle += 1
                self._flusher_parked = self._flusher_idle >= _FLUSHER_PARK_AFTER
                return self._flusher_parked
            self._flusher_idle = 0
            now = time.monotonic()
            if not (self._held_since is not None and now - self._held_since >= self.hold or
                    self._pending_since is not None and now - self._pending_since >= self.batch_interval):
                return False
        self._write(b"", flush_pending=True)
        return False

    def flush(self):
        """Write every held line and batched count now."""
        if self.path is not None and (self._held or self._pending):
            self._write(b"", flush_pending=True)

    def _id_json(self, id):
        """The JSON text of a request id, remembered: a request's id is
        sent with each of its tokens."""
        j = self._ids.get(id)
        if j is None:
            if len(self._ids) > 4096:
                self._ids.clear()
            j = self._ids[id] = json.dumps(str(id))
        return j

    def _pending_lines(self):
        # Called with the lock held: the batched counts as token lines.
        out = "".join(_TOKEN_LINE % (ts, self._id_json(id), n)
                      for id, (n, ts) in self._pending.items())
        self._pending = {}
        self._pending_since = None
        return out.encode("utf-8")

    def close(self):
        self.flush()
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.close()
                except OSError:
                    pass
                self._sock = None
            self.path = None

    # The vocabulary. Extra keyword arguments become attributes.

    def request_start(self, id, /, **attrs):
        self.send("request_start", dict(attrs, id=id))

    def first_token(self, id, /, **attrs):
        self.send("first_token", dict(attrs, id=id))

    def tokens(self, id, /, count=1, **attrs):
        if attrs or self.path is None or type(count) is not int or type(id) is not str:
            self.send("token", dict(attrs, id=id, count=count))
            return
        # The event of a serving loop, sent for every token: _TOKEN_LINE.
        self._write((_TOKEN_LINE % (time.time_ns(), self._id_json(id), count)).encode("utf-8"), flush_pending=True,
                    hold=True)

    def step_tokens(self, counts, /):
        """Send the tokens of several requests in one write: counts is a
        list of (id, count) pairs or a dict, such as one decoding step of
        a batch. Each pair is the token event tokens(id, count) sends, all
        with one stamp. One socket write a step instead of one a request:
        the client's cost of a token event falls with the batch, and the
        recorder reads the step's events together. Pairs with a count of
        0 are left out."""
        if self.path is None:
            return
        ts = time.time_ns()
        items = counts.items() if hasattr(counts, "items") else counts
        lines, odd = [], []
        for id, n in items:
            k = _as_int(n)
            if type(k) is not int:
                odd.append((id, n))  # sent as given, for the recorder to judge
            elif k:
                lines.append(_TOKEN_LINE % (ts, self._id_json(str(id)), k))
        if lines:
            self._write("".join(lines).encode("utf-8"), flush_pending=True, hold=True)
        for id, n in odd:
            self.send("token", {"id": id, "count": n, "ts": ts})

    def batch_tokens(self, id, /, count=1):
        """Count tokens of a request and send them later, as one token
        event per request with the summed count, once `batch_interval`
        (0.05 s) has passed since the first count held (the client's
        flusher thread looks every 0.1 s, so within 0.15 s). Any other
        event of this client sends the held counts first, so the order
        of events is kept; flush_tokens() sends them now. Each event's ts
        is the time of the last count it holds.

        This costs about a microsecond a call instead of a socket write,
        and far fewer events reach the recorder; the price is the timing
        of single tokens inside the interval (inter-token latency is then
        known per interval, not per token). Use tokens() when you need
        every token's time."""
        if self.path is None:
            return
        now = time.time_ns()
        with self._lock:
            p = self._pending.get(id)
            if p is None:
                self._pending[id] = [count, now]
            else:
                p[0] += count
                p[1] = now
            if self._pending_since is None:
                self._pending_since = time.monotonic()
                self._wake_flusher()  # it sends them when due

    def flush_tokens(self):
        """Send the token counts batch_tokens() holds (and held lines): flush()."""
        self.flush()

    def request_end(self, id, /, input_tokens=None, output_tokens=None, **attrs):
        """Synchronise the device first (torch.cuda.synchronize()) so the
        mark means the GPU work is done."""
        self.send("request_end", dict(attrs, id=id, input_tokens=input_tokens, output_tokens=output_tokens))

    def phase_start(self, name, /, **attrs):
        self.send("phase_start", dict(attrs, name=name))

    def phase_end(self, name, /, **attrs):
        self.send("phase_end", dict(attrs, name=name))

    def mark(self, name, /, **attrs):
        self.send("mark", dict(attrs, name=name))

    @contextlib.contextmanager
    def phase(self, name, /, **attrs):
        """Mark a phase around a block; the end is sent even on an error."""
        self.phase_start(name, **attrs)
        try:
            yield
        finally:
            self.phase_end(name)

    def request(self, id, /, input_tokens=None, **attrs):
        """A context manager for one request; see Request."""
        return Request(self, id, input_tokens, attrs)


def _flush_ref(ref):
    c = ref()
    if c is not None:
        c.flush()


def _flush_held(ref, wake):
    """The flusher thread: writes a client's held lines that no call has
    written in time; parks while nothing is held, and ends with the client."""
    while True:
        c = ref()
        if c is None or c.path is None:
            return
        park = c._flush_due()
        del c  # not kept alive by this thread
        if park:
            wake.wait(_FLUSHER_PARK_S)
            wake.clear()
        else:
            time.sleep(_FLUSH_EVERY_S)


class Request:
    """One request: sends request_start on entry and request_end on exit.

    Set `output_tokens` (and `input_tokens` if not given) before the block
    ends; if output_tokens is never set it is what was streamed: 1 for
    first_token() plus the counts passed to tokens() (as the analysis
    counts them: first_token is the first token, token events the rest). When the block raises, request_end carries an `error`
    attribute with the exception's type name, and the exception goes on.
    """

    def __init__(self, client, id, input_tokens=None, attrs=None):
        self.client = client
        self.id = id
        self.input_tokens = input_tokens
        self.output_tokens = None
        self.attrs = attrs or {}
        self._streamed = 0

    def first_token(self, **attrs):
        self._streamed += 1
        self.client.first_token(self.id, **attrs)

    def tokens(self, count=1, **attrs):
        n = _as_int(count)
        if isinstance(n, int):
            self._streamed += n
        self.client.tokens(self.id, count, **attrs)

    def __enter__(self):
        self.client.send("request_start", dict(self.attrs, id=self.id, input_tokens=self.input_tokens))
        return self

    def __exit__(self, exc_type, exc, tb):
        out = self.output_tokens
        if out is None and self._streamed:
            out = self._streamed
        extra = {}
        if exc_type is not None:
            extra["error"] = exc_type.__name__
        self.client.request_end(self.id, input_tokens=self.input_tokens, output_tokens=out, **extra)
        return False


# The module-level functions use one client, opened on first use from
# LLEM_EVENTS.

_default = None
_default_lock = threading.Lock()


def client():
    """The shared client, connected from LLEM_EVENTS on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Client()
                # Token counts held by batch_tokens() go out at exit (held
                # lines too, which the client also registers for).
                atexit.register(_default.flush)
    return _default


def request_start(id, /, **attrs):
    client().request_start(id, **attrs)


def first_token(id, /, **attrs):
    client().first_token(id, **attrs)


def tokens(id, /, count=1, **attrs):
    client().tokens(id, count=count, **attrs)


def step_tokens(counts, /):
    client().step_tokens(counts)


def batch_tokens(id, /, count=1):
    client().batch_tokens(id, count=count)


def flush_tokens():
    client().flush_tokens()


def request_end(id, /, input_tokens=None, output_tokens=None, **attrs):
    client().request_end(id, input_tokens=input_tokens, output_tokens=output_tokens, **attrs)


def phase_start(name, /, **attrs):
    client().phase_start(name, **attrs)


def phase_end(name, /, **attrs):
    client().phase_end(name, **attrs)


def mark(name, /, **attrs):
    client().mark(name, **attrs)


def phase(name, /, **attrs):
    return client().phase(name, **attrs)


def request(id, /, input_tokens=None, **attrs):
    return client().request(id, input_tokens=input_tokens, **attrs)
