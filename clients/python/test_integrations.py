"""Tests for llem_transformers and llem_vllm against a fake recorder socket,
with stand-ins for tensors and vLLM's RequestOutput (neither torch,
transformers nor vllm is needed)."""

import contextlib
import io
import json
import os
import sys
import time
import unittest
from types import SimpleNamespace as NS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llem_events as ev  # noqa: E402
import llem_transformers  # noqa: E402
import llem_vllm  # noqa: E402
from test_llem_events import Recorder, spy_writes, strip_ts  # noqa: E402


class Tensor:
    """What generate() passes to put(): something with tolist()."""

    def __init__(self, rows):
        self.rows = rows

    def tolist(self):
        return self.rows


class TransformersTest(unittest.TestCase):
    def setUp(self):
        self.rec = Recorder()
        self.client = ev.Client(self.rec.path)

    def tearDown(self):
        self.client.close()
        self.rec.close()

    def test_streamer_rows_and_eos(self):
        s = llem_transformers.TokenEvents(["a", "b", 7], client=self.client, eos_token_id=[2, 9])
        s.put(Tensor([[5, 6, 7], [5, 6, 7], [1, 1, 1]]))  # the prompt: no event
        s.put(Tensor([11, 12, 13]))      # first step: first_token each
        s.put(Tensor([2, 14, 15]))       # a ends (its end token counts)
        s.put(Tensor([0, 9, 16]))        # a's padding is not counted; b ends
        s.put(Tensor([0, 0, 17]))
        s.end()
        self.assertEqual(s.counts, {"a": 2, "b": 3, "7": 4})
        self.assertEqual(strip_ts(self.rec.wait(9)), [
            {"kind": "first_token", "id": "a"},
            {"kind": "first_token", "id": "b"},
            {"kind": "first_token", "id": "7"},
            {"kind": "token", "id": "a", "count": 1},
            {"kind": "token", "id": "b", "count": 1},
            {"kind": "token", "id": "7", "count": 1},
            {"kind": "token", "id": "b", "count": 1},
            {"kind": "token", "id": "7", "count": 1},
            {"kind": "token", "id": "7", "count": 1},
        ])

    def test_a_step_is_one_write(self):
        # 32 rows: one write for the first step's first tokens, then the
        # later steps' tokens held (llem_events.HOLD_S) and written
        # together when the generation ends, not one write a row.
        c = self.client
        sent = spy_writes(c)
        ids = ["r%d" % i for i in range(32)]
        s = llem_transformers.TokenEvents(ids, client=c)
        s.put(Tensor([[1]] * 32))  # the prompt
        for _ in range(3):
            s.put(Tensor([5] * 32))
        s.end()
        self.assertEqual(len(sent), 2)
        got = self.rec.wait(96)
        self.assertEqual(sum(e["kind"] == "first_token" for e in got), 32)
        self.assertEqual(sum(e.get("count", 0) for e in got if e["kind"] == "token"), 64)

    def test_several_tokens_a_step_and_batching(self):
        # Assisted decoding puts several tokens of one row at once.
        s = llem_transformers.TokenEvents(["r"], client=self.client, batch=True)
        self.client.batch_interval = 3600
        s.put([[1, 2]])
        s.put([[3, 4, 5]])   # first_token, then 2 more
        s.put([[6]])
        s.put([7, 8])        # a flat list: one row's tokens
        s.end()              # sends what batch_tokens holds
        self.assertEqual(s.counts, {"r": 6})
        self.assertEqual(strip_ts(self.rec.wait(2)), [
            {"kind": "first_token", "id": "r"},
            {"kind": "token", "id": "r", "count": 5},
        ])

    def test_wrong_rows(self):
        s = llem_transformers.TokenEvents(["a", "b"], client=self.client)
        s.put(Tensor([[1], [1]]))
        with self.assertRaisesRegex(ValueError, "3 rows, but 2 ids"):
            s.put(Tensor([1, 2, 3]))


def v0_output(rid, arrival, first, last, finished, n_in=4, outs=((3, "length"),), done=True):
    return NS(request_id=rid, prompt_token_ids=list(range(n_in)), finished=done,
              outputs=[NS(token_ids=list(range(n)), finish_reason=r) for n, r in outs],
              metrics=NS(arrival_time=arrival, last_token_time=last, first_scheduled_time=arrival,
                         first_token_time=first, time_in_queue=0.0, finished_time=finished))


class VLLMTest(unittest.TestCase):
    def setUp(self):
        self.rec = Recorder()

    def tearDown(self):
        self.rec.close()

    def test_v0_metrics_in_time_order(self):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), llem_vllm.session(path=self.rec.path, id_prefix="b1-") as s:
            t = time.time()
            self.assertEqual(s.report(self.v0_outputs(t)), 13)
        self.assertEqual(stderr.getvalue(), "")
        got = self.rec.wait(13)
        self.assertEqual(got, self.v0_events(t))

    def test_requests_before_the_session_warn(self):
        t = time.time()
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), llem_vllm.session(path=self.rec.path, id_prefix="b1-") as s:
            s.report(self.v0_outputs(t - 10))
            self.assertEqual(s.moved, 13)
        self.assertIn("llem_vllm: 13 of 13 events went where", stderr.getvalue())
        self.assertEqual(self.rec.wait(13), self.v0_events(t - 10))  # sent all the same

    def v0_outputs(self, t):
        return [
            v0_output("0", t + 0.0, t + 0.5, t + 2.0, t + 2.1, n_in=4, outs=((10, "length"),)),
            v0_output("1", t + 0.1, t + 0.6, t + 1.0, t + 1.05, n_in=2, outs=((1, "stop"),)),
            v0_output("2", t + 0.2, None, t + 0.2, t + 0.3, n_in=3, outs=((0, "abort"),)),
            # two completions (n=2): 5 output tokens in all
            v0_output("3", t + 0.3, t + 0.7, t + 0.9, None, n_in=1, outs=((2, "stop"), (3, "length"))),
        ]

    def v0_events(self, t):
        ns = llem_vllm._ns
        return ([
            {"kind": "request_start", "id": "b1-0", "input_tokens": 4, "ts": ns(t)},
            {"kind": "request_start", "id": "b1-1", "input_tokens": 2, "ts": ns(t + 0.1)},
            {"kind": "request_start", "id": "b1-2", "input_tokens": 3, "ts": ns(t + 0.2)},
            {"kind": "request_end", "id": "b1-2", "input_tokens": 3, "output_tokens": 0,
             "ts": ns(t + 0.3), "error": "abort"},
            {"kind": "request_start", "id": "b1-3", "input_tokens": 1, "ts": ns(t + 0.3)},
            {"kind": "first_token", "id": "b1-0", "ts": ns(t + 0.5)},
            {"kind": "first_token", "id": "b1-1", "ts": ns(t + 0.6)},
            {"kind": "first_token", "id": "b1-3", "ts": ns(t + 0.7)},
            {"kind": "token", "id": "b1-3", "count": 4, "ts": ns(t + 0.9)},
            {"kind": "request_end", "id": "b1-3", "input_tokens": 1, "output_tokens": 5, "ts": ns(t + 0.9)},
            {"kind": "request_end", "id": "b1-1", "input_tokens": 2, "output_tokens": 1, "ts": ns(t + 1.05)},
            {"kind": "token", "id": "b1-0", "count": 9, "ts": ns(t + 2.0)},
            {"kind": "request_end", "id": "b1-0", "input_tokens": 4, "output_tokens": 10, "ts": ns(t + 2.1)},
        ])

    def test_v1_monotonic_stamps(self):
        # V1: arrival on the wall clock, the rest on the monotonic clock.
        mono, wall = time.monotonic(), time.time()
        out = NS(request_id="5", prompt_token_ids=[1, 2, 3], finished=True,
                 outputs=[NS(token_ids=[4, 5, 6, 7], finish_reason="length")],
                 metrics=NS(num_generation_tokens=4, arrival_time=wall - 1.0, queued_ts=mono - 0.99,
                            scheduled_ts=mono - 0.98, first_token_ts=mono - 0.9,
                            last_token_ts=mono - 0.1, first_token_latency=0.1, is_corrupted=False))
        evs = llem_vllm.request_events(out)
        self.assertEqual([k for k, _ in evs], ["request_start", "first_token", "token", "request_end"])
        ts = [f["ts"] / 1e9 for _, f in evs]
        for got, want in zip(ts, [wall - 1.0, wall - 0.9, wall - 0.1, wall - 0.1]):
            self.assertAlmostEqual(got, want, delta=0.005)
        self.assertEqual(evs[2][1]["count"], 3)
        self.assertEqual(evs[3][1]["output_tokens"], 4)
        self.assertEqual(evs[3][1]["input_tokens"], 3)

    def test_no_metrics_is_an_error_before_any_send(self):
        t = time.time()
        outs = [v0_output("0", t, t + 0.1, t + 0.2, t + 0.3),
                NS(request_id="1", prompt_token_ids=[1], outputs=[], metrics=None, finished=True)]
        with llem_vllm.session(path=self.rec.path) as s:
            with self.assertRaisesRegex(ValueError, "disable_log_stats=False"):
                s.report(outs)
            s.clients[0].mark("after")
        self.assertEqual(self.rec.wait(1)[0]["name"], "after")  # nothing of outs went out

    def test_past_stamps_are_sent_as_given(self):
        # The client must send the requests' own times, not "now".
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), llem_vllm.session(path=self.rec.path) as s:
            t = time.time()
            time.sleep(0.05)
            s.report([v0_output("0", t, t + 0.01, t + 0.02, t + 0.03)])
        got = self.rec.wait(4)
        self.assertEqual([e["ts"] for e in got], [llem_vllm._ns(t + d) for d in (0, 0.01, 0.02, 0.03)])
        self.assertEqual(stderr.getvalue(), "")

    def spy_writes(self):
        """The events of each send_all, as (client, [(kind, fields)])."""
        writes = []
        orig = ev.Client.send_all

        def spy(client, events):
            writes.append((client, list(events)))
            orig(client, events)

        ev.Client.send_all = spy
        self.addCleanup(setattr, ev.Client, "send_all", orig)
        return writes

    def test_one_write_per_connection(self):
        # Each connection carries one write of events in time order, as the
        # recorder honours past stamps only in a connection's first read
        # after they happened (record/eventsrv's TestPythonVLLMSession
        # checks the stamps on the real recorder).
        writes = self.spy_writes()
        with llem_vllm.session(100, path=self.rec.path) as s:
            self.assertEqual(len(s.clients), 4)
            t = time.time()  # generate() starts after the session opened
            outs = [v0_output(str(i), t + i * 1e-4, t + 0.01 + i * 1e-4, t + 0.02 + i * 1e-4,
                              t + 0.03 + i * 1e-4) for i in range(100)]
            time.sleep(0.05)  # and returns when they are all done
            self.assertEqual(s.report(reversed(outs)), 400)
            self.assertEqual(s.moved, 0)
        self.assertEqual(len(self.rec.wait(400)), 400)
        self.assertGreater(len(writes), 1)
        self.assertEqual(len({id(c) for c, _ in writes}), len(writes))  # a connection each
        stamps = [f["ts"] for _, evs in writes for _, f in evs]
        self.assertEqual(len(stamps), 400)
        self.assertEqual(stamps, sorted(stamps))
        for _, evs in writes:
            size = sum(len(json.dumps(dict(f, kind=k), separators=(",", ":"))) + 1 for k, f in evs)
            self.assertLessEqual(size, llem_vllm.CHUNK_BYTES)

    def test_no_connection_left_warns(self):
        writes = self.spy_writes()
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), llem_vllm.session(1, path=self.rec.path) as s:
            t = time.time()
            time.sleep(0.05)
            s.report([v0_output("late", t + 0.01, t + 0.02, t + 0.03, t + 0.04)])
            self.assertEqual(s.moved, 0)
            # Requests before that write: its read may come first.
            s.report([v0_output("early", t, t + 0.01, t + 0.02, t + 0.03)])
            self.assertEqual(s.moved, 4)
        self.assertEqual(len(writes), 2)
        self.assertIn("llem_vllm: 4 of 4 events went where", stderr.getvalue())
        self.assertEqual(len(self.rec.wait(8)), 8)  # sent all the same

    def test_without_recorder_checks_but_sends_nothing(self):
        old = os.environ.pop(ev.ENV_VAR, None)
        try:
            t = time.time()
            with llem_vllm.session(1000) as s:
                self.assertEqual(len(s.clients), 1)  # not one per 32 requests: they would do nothing
                self.assertFalse(s.clients[0].enabled)
                self.assertEqual(s.report([v0_output("0", t, t + 0.1, t + 0.2, t + 0.3)]), 4)
        finally:
            if old is not None:
                os.environ[ev.ENV_VAR] = old


if __name__ == "__main__":
    unittest.main()
