"""Events for `llem record` from vLLM's offline LLM.generate().

    import llem_vllm
    from vllm import LLM, SamplingParams

    llm = LLM(model=..., disable_log_stats=False)   # vLLM V1 fills metrics only then
    with llem_vllm.session() as s:
        outputs = llm.generate(prompts, SamplingParams(max_tokens=128))
        s.report(outputs)

generate() returns when every request is done, so the events are sent
afterwards, each with its request's own times from RequestOutput.metrics as
`ts`: request_start at arrival, first_token when the first token was out,
one token event with the other output tokens when the last one was out,
and request_end when the request finished.

The recorder honours a `ts` in the past only back to when the connection
was opened, or last found empty (docs/events.md, Timestamps): a time
before that is moved to it. So a session opens its own connection on entry,
before generate(), and sends nothing until report(); report events of
requests that arrived before the session was entered, or a second batch
on the same session, and their stamps are moved later. Use one session per
generate() call.

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

import time

import llem_events

__all__ = ["session", "Session", "request_events", "report"]


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


def report(outputs, client, id_prefix=""):
    """Send the events of RequestOutputs on client, all requests' events
    merged in time order (a connection's stamps never go back, so a late
    line with an early ts would be moved after the one before it). Checks
    every output before sending any. Returns the number of events sent."""
    off = _mono_to_wall()
    evs = []
    for o in outputs:
        evs.extend(request_events(o, id_prefix, off))
    evs.sort(key=lambda e: e[1]["ts"])  # stable: a request's own order stays
    for kind, fields in evs:
        client.send(kind, fields)
    return len(evs)


class Session:
    """A connection of its own to the recorder, opened on entry, for the
    events of one generate() call (see the module's text for why)."""

    def __init__(self, path=None, id_prefix=""):
        self._path = path
        self.id_prefix = id_prefix
        self.client = None
        self.sent = 0

    def __enter__(self):
        self.client = llem_events.Client(self._path)
        return self

    def report(self, outputs):
        if self.client is None:
            raise RuntimeError("llem_vllm: report() outside the session's with block")
        n = report(outputs, self.client, self.id_prefix)
        self.sent += n
        return n

    def __exit__(self, *exc):
        self.client.close()
        return False


def session(path=None, id_prefix=""):
    """A Session: `with llem_vllm.session() as s: ...; s.report(outputs)`.
    path defaults to $LLEM_EVENTS (unset: nothing is sent). id_prefix goes
    before vLLM's request ids, which restart at 0 with every LLM."""
    return Session(path, id_prefix)
