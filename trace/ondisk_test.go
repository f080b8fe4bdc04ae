package trace

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDriverPowerOnDisk writes the driver samples of each shipped H100
// run (format 1, 5 s segments) as the recorder now writes them (format 2:
// growing 60 s segments, flushed every 5 s of samples) and reports the
// bytes a sample takes on disk, every file of the table folder counted
// (segments and manifest), before and after, and the CPU of writing them,
// rewrites included, against a segment a flush (issue 11's target: at most
// 4 bytes a sample).
//
//	go test -run '^$' -bench DriverPowerOnDisk ./trace
func BenchmarkDriverPowerOnDisk(b *testing.B) {
	runs, _ := filepath.Glob(filepath.Join("..", "testdata", "runs", "h100-*"))
	if len(runs) == 0 {
		b.Skip("no shipped runs")
	}
	for _, dir := range runs {
		r, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		rows, err := ReadTable[DriverPowerSample](r, TableDriverPower)
		if err != nil || len(rows) == 0 {
			b.Fatalf("%s: %d rows, %v", dir, len(rows), err)
		}
		before := folderBytes(b, filepath.Join(dir, TableDriverPower))
		for _, grow := range []bool{true, false} {
			name := filepath.Base(dir)
			if !grow {
				name += "/5s-segments"
			}
			b.Run(name, func(b *testing.B) { writeDriverPower(b, rows, before, grow) })
		}
	}
}

// writeDriverPower writes rows as the recorder does, flushing every 5 s of
// samples, into growing segments or (grow false) a segment a flush, and
// reports bytes and CPU (user + system, from getrusage) a sample.
func writeDriverPower(b *testing.B, rows []DriverPowerSample, before int64, grow bool) {
	var after int64
	var cpu time.Duration
	for b.Loop() {
		out := b.TempDir()
		w, err := NewTableWriter(out, TableDriverPower, "0123456789abcdef", CompareDriverPower)
		if err != nil {
			b.Fatal(err)
		}
		if grow {
			w.SetGrow(DriverPowerSegmentSpan)
		}
		c0 := cpuTime()
		next := rows[0].TimestampNs + 5e9
		for _, s := range rows {
			if s.TimestampNs >= next {
				if err := w.Flush(); err != nil {
					b.Fatal(err)
				}
				next += 5e9
			}
			w.Add(s)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		after = folderBytes(b, filepath.Join(out, TableDriverPower))
	}
	n := float64(len(rows))
	b.ReportMetric(float64(before)/n, "B/sample-format1")
	b.ReportMetric(float64(after)/n, "B/sample")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/n, "cpu-ns/sample")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func folderBytes(b *testing.B, dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			b.Fatal(err)
		}
		n += info.Size()
	}
	return n
}
