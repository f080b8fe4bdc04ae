package record_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/trace"
)

// streamingGPU polls the simulated GPU's State on a goroutine of its own,
// as the NVML backend's C thread does, and is lost after lostAfter polls
// (0: never).
type streamingGPU struct {
	record.GPU
	lostAfter int

	mu      sync.Mutex
	streams []*fakeStream
}

type fakeStream struct {
	mu     sync.Mutex
	polls  []record.StatePoll
	made   int
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

func (g *streamingGPU) StreamStates(first time.Time, interval time.Duration) (record.StateStream, error) {
	s := &fakeStream{stop: make(chan struct{}), done: make(chan struct{})}
	g.mu.Lock()
	g.streams = append(g.streams, s)
	g.mu.Unlock()
	go func() {
		defer close(s.done)
		next := first
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(time.Until(next)):
			}
			late := time.Since(next)
			st, err := g.GPU.State()
			s.mu.Lock()
			s.made++
			if g.lostAfter > 0 && s.made > g.lostAfter {
				st, err = trace.DeviceState{}, fmt.Errorf("fake: %w", record.ErrGPULost)
			}
			s.polls = append(s.polls, record.StatePoll{At: time.Now(), State: st, Err: err, Late: late})
			s.mu.Unlock()
			if err != nil {
				return
			}
			next = next.Add(interval)
		}
	}()
	return s, nil
}

func (s *fakeStream) Take(dst []record.StatePoll) []record.StatePoll {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = append(dst, s.polls...)
	s.polls = s.polls[:0]
	return dst
}

func (s *fakeStream) Stop() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	<-s.done
}

func (s *fakeStream) Close() { s.Stop() }

type streamingBackend struct {
	*sim.Backend
	gpus []record.GPU
}

func (b *streamingBackend) GPUs() []record.GPU { return b.gpus }

// A GPU that streams its state has every poll written, on its own clock,
// and its schedule's timeliness in meta.json; nothing polled is lost at
// the end.
func TestStreamedStateIsTakenAtTheDrain(t *testing.T) {
	s := sim.New(sim.Options{GPUs: 1, Seed: 4})
	g := &streamingGPU{GPU: s.GPUs()[0]}
	dir := filepath.Join(t.TempDir(), "run")
	res, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sleep", "1.5"}, Backend: &streamingBackend{Backend: s, gpus: []record.GPU{g}},
		StateInterval: 50 * time.Millisecond, DriverPowerInterval: 300 * time.Millisecond,
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.streams) != 1 || !g.streams[0].closed {
		t.Fatalf("%d streams, closed %v", len(g.streams), len(g.streams) == 1 && g.streams[0].closed)
	}
	made := g.streams[0].made
	loop := res.Meta.Recorder.Loops["device_state"]
	if loop.Thread != "c" || loop.Iterations != int64(made) {
		t.Errorf("device_state loop %+v, %d polls made", loop, made)
	}
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := trace.ReadTable[trace.DeviceState](run, trace.TableState)
	// The first poll and the last are the recorder's own.
	if len(rows) != made+2 || made < 25 {
		t.Fatalf("%d state rows, %d streamed polls", len(rows), made)
	}
	// In order, on the poll's own clock: ~50 ms apart on average (a
	// loaded machine may delay one and not the next).
	for i := 1; i < len(rows); i++ {
		if rows[i].TimestampNs <= rows[i-1].TimestampNs {
			t.Fatalf("row %d not after row %d", i, i-1)
		}
	}
	mean := time.Duration(rows[len(rows)-2].TimestampNs-rows[1].TimestampNs) / time.Duration(len(rows)-3)
	if mean < 45*time.Millisecond || mean > 60*time.Millisecond {
		t.Errorf("streamed rows %v apart on average, want ~50 ms", mean)
	}
	if rows[0].TemperatureC == nil || rows[len(rows)/2].TemperatureC == nil {
		t.Error("state fields missing")
	}
}

func TestStreamedStateLostGPU(t *testing.T) {
	s := sim.New(sim.Options{GPUs: 1, Seed: 4})
	g := &streamingGPU{GPU: s.GPUs()[0], lostAfter: 5}
	dir := filepath.Join(t.TempDir(), "run")
	var log bytes.Buffer
	res, err := record.Record(context.Background(), record.Config{
		OutDir: dir, Argv: []string{"sleep", "1"}, Backend: &streamingBackend{Backend: s, gpus: []record.GPU{g}},
		StateInterval: 20 * time.Millisecond, DriverPowerInterval: 200 * time.Millisecond,
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Meta.GPUs[0].Lost || res.ExitCode != 0 {
		t.Fatalf("lost %v, exit %d", res.Meta.GPUs[0].Lost, res.ExitCode)
	}
	run, _ := trace.Open(dir)
	rows, _ := trace.ReadTable[trace.DeviceState](run, trace.TableState)
	if len(rows) != 1+5 {
		t.Errorf("%d state rows, want the first poll and the 5 streamed before the loss", len(rows))
	}
	if !bytes.Contains(log.Bytes(), []byte("GPU 0 lost")) {
		t.Errorf("log %q", log.String())
	}
}
