package eventsrv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

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
