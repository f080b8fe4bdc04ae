package nvsmi_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/llem/llem/trace/imports/nvsmi"
)

// BenchmarkParseMemory parses a generated 8-GPU log of 400,000 lines (10 Hz
// for 5,000 s, about 33 MB) and reports the heap the parsed log holds per
// row (live-B/row): an import holds every row until it writes them
// sorted, so this, times the rows, is what a large log costs. A 206 MB
// log (2.5 million rows) peaked at 1.56 GB before Rows was sized from the
// file and held as device_state rows (docs/import.md).
func BenchmarkParseMemory(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	fmt.Fprintln(bw, "timestamp, index, name, power.draw [W], power.draw.instant [W], temperature.gpu, fan.speed [%]")
	const seconds, gpus = 5000, 8
	for t := range seconds * 10 {
		for g := range gpus {
			fmt.Fprintf(bw, "2024/05/02 %02d:%02d:%02d.%03d, %d, NVIDIA H100 80GB HBM3, %d.%02d W, %d.00 W, %d, [N/A]\n",
				10+t/36000, t/600%60, t/10%60, t%10*100, g, 300+g+t%7, t%100, 301+t%5, 40+g)
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.ReportAllocs()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		lg, err := nvsmi.Parse(in, path)
		in.Close()
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(lg.Rows)), "live-B/row")
		runtime.KeepAlive(lg)
	}
}
