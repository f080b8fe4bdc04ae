"""Events for `llem record` from vLLM's offline LLM.generate().

    import llem_vllm
    from vllm import LLM, SamplingParams

    llm = LLM(model=..., disable_log_stats=False)   # vLLM V1 fills metrics only then
    outputs = llem_vllm.generate(llm, prompts, SamplingParams(max_tokens=128))

or, to call generate() yourself:

    with llem_vllm.session(requests=len(prompts)) as s:
        outputs = llm.generate(prompts, SamplingParams(max_tokens=128))
        s.report(outputs)

generate() returns when every request is done, so the events are sent
afterwards, each with its request's own times from RequestOutput.metrics as
`ts`: request_start at arrival, first_token when the first token was out,
one token event with the other output tokens when the last one was out,
and request_end when the request finished.

The recorder honours a `ts` in the past only back to the connection's
previous read, or its opening (docs/events.md, Timestamps): an earlier
time is moved to it. A read can come after every write, so one connection
can carry the past events only in one write, and a write reaches the
recorder whole only up to a size (~16 KiB here: about 32 requests). So a
session opens, on entry and before generate(), a connection for every
32 requests it is told of, and report() sends each connection one write
of events in time order. Events of requests that arrived before the
session was entered, or more events than its connections can carry, are
sent anyway, with a warning on stderr: their stamps may be moved later.
`generate(llm, prompts, ...)` does it all.

Two shapes of metrics are read: vLLM V0's RequestMetrics (arrival_time,
first_token_time, last_token_time, finished_time: wall-clock seconds) and
V1's RequestStateStats (arrival_time on the wall clock; first_token_ts and
last_token_ts on the monotonic clock of this host, moved onto the wall
clock here; no finish time, so request_end is at the last token). A
request whose output has no metrics (V1 with log stats off) is an error,
since its events would have no time.

Only the first and the last token have a time, so inter-token latency is
known per request on average, not per token. Standard library and
llem_events only; vllm itself is not imported.
"""

import json
import sys
import time

import llem_events

__all__ = ["generate", "session", "Session", "request_events"]

# A write of up to this many bytes reaches the recorder as one piece (one
# buffer of the kernel's Unix socket holds ~36 KiB), so the read that
# finds it finds all of it.
CHUNK_BYTES = 16 << 10

# The events of a request take ~400 bytes: how many requests a session
# opens a connection for, and the most connections it opens.
REQUESTS_PER_CONN = 32
MAX_CONNS = 256

# How long after a write a connection's read of it may come (the
# recorder reads an emptied connection again after at most ReadEvery,
# 100 ms): events before that may be moved to the read, so a connection
# takes a later write only of events after it.
READ_MARGIN_NS = 250_000_000


def _ns(seconds):
    return int(round(seconds * 1e9))


def _mono_to_wall():
    """Seconds to add to time.monotonic() to get time.time(), measured
    between two monotonic reads so a preemption between them shows."""
    best = None
    for _ in range(5):
        a = time.monotonic()
        w = time.time()
        b = time.monotonic()
        if best is None or b - a < best[0]:
            best = (b - a, w - (a + b) / 2)
    return best[1]


def _set(v):
    return v is not None and v > 0


def request_events(output, id_prefix="", mono_offset=None):
    """The events of one RequestOutput: a list of (kind, fields) whose
    fields carry ts (ns since the epoch), in time order. mono_offset is
    what to add to a monotonic time (seconds) for the wall clock
    (default: measured now)."""
    m = getattr(output, "metrics", None)
    rid = id_prefix + str(output.request_id)
    if m is None:
        raise ValueError("llem_vllm: request %s has no metrics; vLLM V1 fills them with "
                         "LLM(..., disable_log_stats=False)" % rid)
    if hasattr(m, "first_token_ts"):  # V1 RequestStateStats
        if mono_offset is None:
            mono_offset = _mono_to_wall()
        arrival = m.arrival_time
        first = m.first_token_ts + mono_offset if _set(m.first_token_ts) else None
        last = m.last_token_ts + mono_offset if _set(m.last_token_ts) else None
        finished = last
    elif hasattr(m, "first_token_time"):  # V0 RequestMetrics
        arrival = m.arrival_time
        first = m.first_token_time if _set(m.first_token_time) else None
        last = m.last_token_time if _set(m.last_token_time) and first is not None else None
        finished = m.finished_time if _set(getattr(m, "finished_time", None)) else last
    else:
        raise ValueError("llem_vllm: request %s: unknown metrics %s" % (rid, type(m).__name__))
    if not _set(arrival):
        raise ValueError("llem_vllm: request %s has no arrival time" % rid)

    outs = list(output.outputs or [])
    n_out = sum(len(o.token_ids) for o in outs)
    n_in = len(output.prompt_token_ids) if output.prompt_token_ids is not None else None
    if finished is None:
        finished = max(t for t in (arrival, first, last) if t is not None)

    # Clamp into order: a stamp before the previous one is a clock detail
    # (V1's wall and monotonic clocks), not a different order of events.
    t0 = _ns(arrival)
    evs = [("request_start", {"id": rid, "input_tokens": n_in, "ts": t0})]
    prev = t0
    if first is not None and n_out > 0:
        prev = max(prev, _ns(first))
        evs.append(("first_token", {"id": rid, "ts": prev}))
        if n_out > 1:
            prev = max(prev, _ns(last if last is not None else finished))
            evs.append(("token", {"id": rid, "count": n_out - 1, "ts": prev}))
    end = {"id": rid, "input_tokens": n_in, "output_tokens": n_out, "ts": max(prev, _ns(finished))}
    reasons = {o.finish_reason for o in outs if getattr(o, "finish_reason", None)}
    if "abort" in reasons:
        end["error"] = "abort"
    if not getattr(output, "finished", True):
        end["error"] = "unfinished"
    evs.append(("request_end", end))
    return evs


class Session:
    """Connections of their own to the recorder, opened on entry (before
    generate()), for the events of the requests that follow; see the
    module's text for why. requests: how many requests will be reported
    (one connection per REQUESTS_PER_CONN)."""

    def __init__(self, requests=REQUESTS_PER_CONN, path=None, id_prefix=""):
        self.requests = requests
        self._path = path
        self.id_prefix = id_prefix
        self._conns = None  # [client, the first ts it may carry (ns)]
        self.sent = 0   # events sent
        self.moved = 0  # events sent where their stamps may be moved

    def __enter__(self):
        n = min(MAX_CONNS, max(1, -(-int(self.requests) // REQUESTS_PER_CONN)))
        self._conns = []
        for _ in range(n):
            c = llem_events.Client(self._path)
            self._conns.append([c, time.time_ns()])
            if not c.enabled:
                break  # no recorder, or it refuses: one client says so
        return self

    @property
    def clients(self):
        return [c for c, _ in self._conns or []]

    def report(self, outputs):
        """Send the events of RequestOutputs. Checks every output before
        sending any (ValueError). Returns the number of events sent."""
        if self._conns is None:
            raise RuntimeError("llem_vllm: report() outside the session's with block")
        off = _mono_to_wall()
        outputs = list(outputs)
        evs = []
        for o in outputs:
            evs.extend(request_events(o, self.id_prefix, off))
        # One order for all requests: a connection's stamps never go back,
        # so a line with an earlier ts than the one before it is moved.
        evs.sort(key=lambda e: e[1]["ts"])  # stable: a request's own order stays
        if not self._conns[0][0].enabled:
            self.sent += len(evs)
            return len(evs)
        moved = 0
        for chunk in _chunks(evs):
            first = chunk[0][1]["ts"]
            free = [c for c in self._conns if c[1] <= first]
            if free:
                conn = free[0]
            else:
                conn = min(self._conns, key=lambda c: c[1])
                moved += len(chunk)
            conn[0].send_all(chunk)
            conn[1] = time.time_ns() + READ_MARGIN_NS
        if moved:
            self.moved += moved
            print("llem_vllm: %d of %d events went where the recorder may stamp them later than "
                  "their times: the session was opened after the requests came, or for fewer "
                  "than the %d requests reported (session(requests=...))"
                  % (moved, len(evs), len(outputs)), file=sys.stderr)
        self.sent += len(evs)
        return len(evs)

    def __exit__(self, *exc):
        for c, _ in self._conns:
            c.close()
        return False


def _chunks(evs):
    """Consecutive events in groups of at most CHUNK_BYTES of lines."""
    chunk, size = [], 0
    for e in evs:
        n = len(json.dumps(e[1], separators=(",", ":"), default=str)) + len(e[0]) + 12  # the line's length
        if chunk and size + n > CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(e)
        size += n
    if chunk:
        yield chunk


def session(requests=REQUESTS_PER_CONN, path=None, id_prefix=""):
    """A Session: `with llem_vllm.session(len(prompts)) as s: ...;
    s.report(outputs)`. path defaults to $LLEM_EVENTS (unset: nothing is
    sent). id_prefix goes before vLLM's request ids, which restart at 0
    with every LLM."""
    return Session(requests, path, id_prefix)


def generate(llm, prompts, *args, id_prefix="", **kwargs):
    """llm.generate(prompts, *args, **kwargs) in a session, reporting its
    outputs; returns them. If they cannot be reported (no metrics), the
    ValueError raised carries them as its `outputs`."""
    n = 1 if isinstance(prompts, (str, dict)) else len(prompts)
    with session(n, id_prefix=id_prefix) as s:
        outputs = llm.generate(prompts, *args, **kwargs)
        try:
            s.report(outputs)
        except ValueError as e:
            e.outputs = outputs
            raise
    return outputs
