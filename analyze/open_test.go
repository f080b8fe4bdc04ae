package analyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

// TestOpenWithWorkersIsSerial: runs analysed in parallel give the
// document of a serial analysis, byte for byte, in the order given, with
// an unreadable run named in the same place (issue 12: a directory of many
// runs uses all cores, output stable).
func TestOpenWithWorkersIsSerial(t *testing.T) {
	dirs := shippedRuns(t)
	dirs = append(dirs, t.TempDir(), "../testdata/jobs/sim-2nodes", dirs[0]) // unreadable, a job, a repeat
	doc := func(workers int, p Progress) ([]byte, *SweepError) {
		got, err := OpenWith(dirs, DefaultSettings(), OpenOptions{Workers: workers, ResultsOnly: true, Progress: p})
		var sweep *SweepError
		if !errors.As(err, &sweep) || len(sweep.Failed) != 1 {
			t.Fatalf("%d workers: want one unreadable run, got %v", workers, err)
		}
		for _, r := range got {
			if r.Data != nil || r.Requests() != nil || r.Latency.TTFT != nil {
				t.Fatalf("%s: ResultsOnly kept the trace", r.Dir)
			}
		}
		var b bytes.Buffer
		if err := json.NewEncoder(&b).Encode(Document(got, DefaultSettings(), "test")); err != nil {
			t.Fatal(err)
		}
		return b.Bytes(), sweep
	}
	serial, sErr := doc(1, nil)
	p := &countProgress{}
	parallel, pErr := doc(4, p)
	if !bytes.Equal(serial, parallel) {
		t.Error("4 workers gave another document than 1")
	}
	if sErr.Error() != pErr.Error() {
		t.Errorf("sweep errors differ:\n%v\n%v", sErr, pErr)
	}
	if p.started != len(dirs) || p.done != len(dirs) || p.bytes == 0 {
		t.Errorf("progress heard %d starts, %d ends, %d bytes of %d runs", p.started, p.done, p.bytes, len(dirs))
	}
}

type countProgress struct {
	mu                   sync.Mutex
	started, done, bytes int
}

func (p *countProgress) RunStarted(i, n int, dir string) { p.mu.Lock(); p.started++; p.mu.Unlock() }
func (p *countProgress) Read(b int64)                    { p.mu.Lock(); p.bytes += int(b); p.mu.Unlock() }
func (p *countProgress) RunDone(i, n int, dir string, err error) {
	p.mu.Lock()
	p.done++
	p.mu.Unlock()
}

// TestPackedIsPlain: every shipped run and job gives the same document
// with its GPU samples packed, and packed and spilled to a file, as held
// plain (the shipped runs are short: plain by default). The property
// test compares each read of packed samples; this, the whole analysis.
func TestPackedIsPlain(t *testing.T) {
	dirs := append(shippedRuns(t), "../testdata/jobs/sim-2nodes")
	doc := func(packAbove int64, inMemory int) []byte {
		defer func(p int64, m int) { PackSamplesAbove, SamplesInMemory = p, m }(PackSamplesAbove, SamplesInMemory)
		PackSamplesAbove, SamplesInMemory = packAbove, inMemory
		got, err := OpenWith(dirs, DefaultSettings(), OpenOptions{Workers: 2, ResultsOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := json.NewEncoder(&b).Encode(Document(got, DefaultSettings(), "test")); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	plain := doc(1<<62, SamplesInMemory)
	if !bytes.Equal(doc(0, SamplesInMemory), plain) {
		t.Error("packed samples gave another document than plain ones")
	}
	if !bytes.Equal(doc(0, 0), plain) {
		t.Error("packed and spilled samples gave another document than plain ones")
	}
}

// shippedRuns are the runs in testdata/runs.
func shippedRuns(t *testing.T) []string {
	t.Helper()
	runs, err := filepath.Glob("../testdata/runs/*/meta.json")
	if err != nil || len(runs) < 3 {
		t.Fatalf("shipped runs: %v %v", runs, err)
	}
	var dirs []string
	for _, m := range runs {
		dirs = append(dirs, filepath.Dir(m))
	}
	return dirs
}
