package eventsrv

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/llem/llem/events"
	"github.com/llem/llem/trace"
)

// pythonScript exercises clients/python/llem_events.py, whose folder is
// argv[1].
const pythonScript = `
import sys
sys.path.insert(0, sys.argv[1])
import llem_events as ev

ev.request_start("r1")
ev.first_token("r1")
ev.tokens("r1", 3)
ev.request_end("r1", 5, 3)
with ev.phase("measure"):
    with ev.request("r2", input_tokens=10) as r:
        r.output_tokens = 128
ev.mark("done", batch=8, gpu=1)
assert ev.client().errors == 0
`

// TestPythonClient runs the Python client against a real server.
func TestPythonClient(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the Python client is not tested")
	}
	clientDir, err := filepath.Abs("../../clients/python")
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{})
	cmd := exec.Command(python, "-c", pythonScript, clientDir)
	cmd.Env = append(os.Environ(), events.EnvVar+"="+s.Path())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	evs, bad := drain(t, s)
	if len(bad) != 0 {
		t.Fatalf("bad events from the Python client: %+v", bad)
	}
	type row struct {
		kind, id, name string
		count, in, out int64
		gpu            int32
		attrs          string
	}
	val := func(p *int64) int64 {
		if p == nil {
			return -1
		}
		return *p
	}
	want := []row{
		{"request_start", "r1", "", -1, -1, -1, trace.GPUAll, ""},
		{"first_token", "r1", "", -1, -1, -1, trace.GPUAll, ""},
		{"token", "r1", "", 3, -1, -1, trace.GPUAll, ""},
		{"request_end", "r1", "", -1, 5, 3, trace.GPUAll, ""},
		{"phase_start", "", "measure", -1, -1, -1, trace.GPUAll, ""},
		{"request_start", "r2", "", -1, 10, -1, trace.GPUAll, ""},
		{"request_end", "r2", "", -1, 10, 128, trace.GPUAll, ""},
		{"phase_end", "", "measure", -1, -1, -1, trace.GPUAll, ""},
		{"mark", "", "done", -1, -1, -1, 1, `{"batch":8}`},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, e := range evs {
		got := row{e.Kind, e.RequestID, e.Name, val(e.Count), val(e.InputTokens), val(e.OutputTokens), e.GPU, e.Attrs}
		if got != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, got, want[i])
		}
		if e.ClientTimestampNs == nil || *e.ClientTimestampNs <= 0 {
			t.Errorf("event %d: no client ts", i)
		}
	}
}

// vllmScript reports 300 finished vLLM requests (stand-ins for
// RequestOutput, V0 metrics) through llem_vllm, after they are done, as
// an offline LLM.generate() returns them: every event's ts is in the past
// when it is sent.
const vllmScript = `
import sys, time
sys.path.insert(0, sys.argv[1])
from types import SimpleNamespace as NS
import llem_vllm

def out(i, t):
    d = i * 1e-3
    return NS(request_id=str(i), prompt_token_ids=[1, 2, 3], finished=True,
              outputs=[NS(token_ids=list(range(8)), finish_reason="length")],
              metrics=NS(arrival_time=t + d, first_scheduled_time=t + d, first_token_time=t + 0.1 + d,
                         last_token_time=t + 0.2 + d, finished_time=t + 0.25 + d, time_in_queue=0.0))

n = 300
with llem_vllm.session(n) as s:
    t = time.time()
    time.sleep(0.6)  # generate(): the requests run from t to t + 0.55
    s.report([out(i, t) for i in range(n)])
    assert s.moved == 0, s.moved
    assert len(s.clients) > 1 and all(c.errors == 0 for c in s.clients)
`

// TestPythonVLLMSession: the recorder keeps the past stamps llem_vllm
// sends (it honours a ts only back to a connection's previous read, which
// is why llem_vllm writes each connection once): every event is stamped
// at its own ts moved onto the recorder's clock, none at its arrival.
func TestPythonVLLMSession(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the Python client is not tested")
	}
	clientDir, err := filepath.Abs("../../clients/python")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now()
	s, err := Listen(socketPath(t), func() int64 { return int64(time.Since(base)) + 1 }, Options{CloseGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cmd := exec.Command(python, "-c", vllmScript, clientDir)
	cmd.Env = append(os.Environ(), events.EnvVar+"="+s.Path())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	evs, bad := drain(t, s)
	if len(bad) != 0 || len(evs) != 1200 {
		t.Fatalf("%d events, want 1200; bad: %+v", len(evs), bad)
	}
	// The recorder's stamp minus the client's: the clocks' offset, the
	// same for every event unless a stamp was moved to its read.
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, e := range evs {
		if e.ClientTimestampNs == nil {
			t.Fatalf("no client ts: %+v", e)
		}
		d := e.TimestampNs - *e.ClientTimestampNs
		lo, hi = min(lo, d), max(hi, d)
		first, last = min(first, e.TimestampNs), max(last, e.TimestampNs)
	}
	// Sent line by line after generate(), stamps moved by up to 444 ms;
	// the clock offset's own re-measurement moves a few ms under -race on
	// a busy 2-core machine (4.2 ms seen in CI), so 20 ms tells them apart.
	if hi-lo > int64(20*time.Millisecond) {
		t.Errorf("stamps moved off their ts by up to %v", time.Duration(hi-lo))
	}
	if span := time.Duration(last - first); span < 540*time.Millisecond || span > 560*time.Millisecond {
		t.Errorf("events span %v, want the requests' 549 ms", span)
	}
}
