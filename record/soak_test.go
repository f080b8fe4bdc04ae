package record_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
)

// BenchmarkSoak records the simulated GPU at 100 Hz device state while a
// client sends 1,000 events/s, and prints the heap in use and the number
// of goroutines as the recording goes: both must stay flat (issue 17).
// It runs LLEM_SOAK long (a Go duration; 5 s by default, as in make bench;
// LLEM_SOAK=1h for the hour-long soak):
//
//	LLEM_SOAK=1h go test -run '^$' -bench Soak -benchtime 1x -timeout 2h ./record
func BenchmarkSoak(b *testing.B) {
	d := 5 * time.Second
	if v := os.Getenv("LLEM_SOAK"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			b.Fatalf("LLEM_SOAK=%q: %v", v, err)
		}
	}
	every := max(d/20, time.Second)
	for range b.N {
		dir := filepath.Join(b.TempDir(), "run")
		sockFile := filepath.Join(b.TempDir(), "sock")
		resC, errC := recordAsync(record.Config{
			OutDir: dir, Backend: sim.New(sim.Options{Seed: 1}), StateInterval: 10 * time.Millisecond,
			Argv:   []string{"sh", "-c", fmt.Sprintf(`echo "$LLEM_EVENTS" > %s; sleep %f`, sockFile, d.Seconds())},
			Stdout: io.Discard, Stderr: io.Discard, Log: io.Discard,
		})
		for {
			if _, err := os.Stat(sockFile); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		sb, _ := os.ReadFile(sockFile)
		c, err := net.Dial("unix", strings.TrimSpace(string(sb)))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		fmt.Printf("%8s %12s %10s %10s\n", "elapsed", "heap_inuse", "goroutines", "events")
		var ms runtime.MemStats
		next, sent := start, 0
		tick := time.NewTicker(time.Millisecond) // 1,000 events/s
		for time.Since(start) < d-100*time.Millisecond {
			<-tick.C
			fmt.Fprintf(c, "{\"kind\":\"token\",\"id\":\"r%d\",\"count\":1}\n", sent%64)
			sent++
			if time.Now().After(next) {
				runtime.ReadMemStats(&ms)
				fmt.Printf("%8.0f %10.1fMB %10d %10d\n", time.Since(start).Seconds(), float64(ms.HeapInuse)/(1<<20), runtime.NumGoroutine(), sent)
				next = next.Add(every)
			}
		}
		tick.Stop()
		c.Close()
		res, err := <-resC, <-errC
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&ms)
		fmt.Printf("end: heap %.1f MB, %d goroutines, events %+v, max RSS %d MB\n", float64(ms.HeapInuse)/(1<<20),
			runtime.NumGoroutine(), res.Meta.Events, res.Meta.Recorder.MaxRSSBytes>>20)
	}
}
