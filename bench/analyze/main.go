// Command analyze times `llem analyze` on the synthetic 1-hour, 8-GPU,
// 50 Hz run of bench/synth and prints its wall time and peak RSS against
// the targets of issue 4 (under 5 s and under 500 MB on a 2-core machine).
//
//	go run ./bench/analyze [-run DIR] [-llem bin/llem] [-repeat 3]
//
// It generates the run with `go run ./bench/synth -out DIR` when DIR does
// not exist, then runs `LLEM analyze --json --quiet DIR` -repeat times as a
// child process. The peak RSS is the child's (getrusage ru_maxrss). It
// reports and does not gate: it exits 0 whether the targets are met or
// not, and non-zero only when it could not measure. See
// docs/performance.md.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The targets of issue 4.
const (
	targetWall = 5 * time.Second
	targetRSS  = 500e6 // bytes
)

type sample struct {
	wall time.Duration
	rss  int64 // bytes
}

func main() {
	dir := flag.String("run", "out/bench/synth-1h", "synthetic run directory (generated with bench/synth if absent)")
	llem := flag.String("llem", "bin/llem", "llem binary to time (make build)")
	repeat := flag.Int("repeat", 3, "times to run llem analyze")
	flag.Parse()
	if flag.NArg() > 0 || *repeat < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, *llem, *repeat); err != nil {
		fmt.Fprintf(os.Stderr, "bench/analyze: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, llem string, repeat int) error {
	fmt.Printf("machine: %s, %d CPUs, GOMAXPROCS %d, %s/%s, %s\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())

	if _, err := os.Stat(llem); err != nil {
		return fmt.Errorf("%v (run make build first)", err)
	}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		fmt.Printf("generating %s: go run ./bench/synth -out %s\n", dir, dir)
		start := time.Now()
		cmd := exec.Command("go", "run", "./bench/synth", "-out", dir)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			os.RemoveAll(dir) // a half-written run would be timed next time
			return fmt.Errorf("go run ./bench/synth: %w", err)
		}
		fmt.Printf("generated in %.1f s (go run, build included)\n", time.Since(start).Seconds())
	} else if err != nil {
		return err
	}
	fmt.Printf("run: %s (%.1f MiB)\n", dir, float64(dirSize(dir))/(1<<20))
	fmt.Printf("command: %s analyze --json --quiet %s\n", llem, dir)

	var all []sample
	for i := 1; i <= repeat; i++ {
		s, err := analyzeOnce(llem, dir)
		if err != nil {
			return err
		}
		all = append(all, s)
		fmt.Printf("  %d/%d: %6.2f s  %6.0f MB peak RSS\n", i, repeat, s.wall.Seconds(), float64(s.rss)/1e6)
	}

	walls := make([]time.Duration, len(all))
	rsss := make([]int64, len(all))
	for i, s := range all {
		walls[i], rsss[i] = s.wall, s.rss
	}
	slices.Sort(walls)
	slices.Sort(rsss)
	bestW, medW := walls[0], walls[len(walls)/2]
	bestR, medR := rsss[0], rsss[len(rsss)/2]
	fmt.Printf("wall time: best %.2f s, median %.2f s (target < %.0f s: %s)\n",
		bestW.Seconds(), medW.Seconds(), targetWall.Seconds(), verdict(medW < targetWall))
	fmt.Printf("peak RSS:  best %.0f MB, median %.0f MB (target < %.0f MB: %s)\n",
		float64(bestR)/1e6, float64(medR)/1e6, targetRSS/1e6, verdict(float64(medR) < targetRSS))
	return nil
}

// analyzeOnce runs llem analyze once, discarding its JSON, and returns the
// wall time and the child's peak resident set size.
func analyzeOnce(llem, dir string) (sample, error) {
	cmd := exec.Command(llem, "analyze", "--json", "--quiet", dir)
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s analyze: %v\n%s", llem, err, stderr.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return sample{}, fmt.Errorf("no rusage for the child on %s", runtime.GOOS)
	}
	rss := int64(ru.Maxrss) * 1024 // KiB on Linux
	if runtime.GOOS == "darwin" {
		rss = int64(ru.Maxrss) // bytes on macOS
	}
	return sample{wall: wall, rss: rss}, nil
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
