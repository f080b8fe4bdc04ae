package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llem/llem/events"
	"github.com/llem/llem/loadgen/testserver"
)

// The benchmark's endpoint and event sink run in a child process (this
// test binary again, with benchServerEnv set), so that the benchmark's
// own CPU time is the load generator's alone.
const benchServerEnv = "LLEM_LOADGEN_BENCH_SERVER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(benchServerEnv); spec != "" {
		if err := benchServer(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchServer serves the test endpoint with a token delay of spec ("5ms")
// on loopback and counts the event lines sent to the socket named by
// LLEM_EVENTS: it prints the endpoint's address, and the count once its
// standard input closes.
func benchServer(spec string) error {
	delay, err := time.ParseDuration(spec)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, &testserver.Server{TokenDelay: delay})
	evln, err := net.Listen("unix", os.Getenv(events.EnvVar))
	if err != nil {
		return err
	}
	lines := make(chan int, 1)
	lines <- 0
	go func() {
		for {
			conn, err := evln.Accept()
			if err != nil {
				return
			}
			go func() {
				n := 0
				br := bufio.NewReaderSize(conn, 1<<16)
				cont := false // the line began in an earlier slice
				for {
					b, err := br.ReadSlice('\n')
					// An empty line starts each write (the client's
					// mark), and is no event, as the recorder skips it.
					if len(b) > 0 && b[len(b)-1] == '\n' {
						if len(b) > 1 || cont {
							n++
						}
						cont = false
					} else if err == bufio.ErrBufferFull {
						cont = true
					}
					if err != nil && err != bufio.ErrBufferFull {
						break
					}
				}
				lines <- <-lines + n
			}()
		}
	}()
	fmt.Println(ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	time.Sleep(200 * time.Millisecond) // the last connection's count
	fmt.Println(<-lines)
	return nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoad measures the load generator's CPU time per output token
// (cpu-ns/token, user + system, of this process only) and the events it
// sends per token, against the test endpoint in another process: 32
// streams of 256 tokens, paced at 5 ms a token (6400 tokens/s, a busy
// serving GPU) and unpaced (as fast as loopback and two processes go).
// Each iteration is one measured request; the requests in flight at the
// end are counted too.
func BenchmarkLoad(b *testing.B) {
	for _, c := range []struct {
		delay    string
		interval time.Duration
	}{
		{"5ms", 0}, {"5ms", DefaultTokenInterval}, {"5ms", 20 * time.Millisecond},
		{"0s", 0}, {"0s", DefaultTokenInterval}, {"0s", 20 * time.Millisecond},
	} {
		b.Run(fmt.Sprintf("token=%s/interval=%v", c.delay, c.interval), func(b *testing.B) {
			benchLoad(b, c.delay, c.interval)
		})
	}
}

func benchLoad(b *testing.B, delay string, interval time.Duration) {
	dir, err := os.MkdirTemp("", "llemb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), benchServerEnv+"="+delay, events.EnvVar+"="+sock)
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer child.Process.Kill()
	out := bufio.NewScanner(stdout)
	if !out.Scan() {
		b.Fatal("the bench server printed no address")
	}
	addr := out.Text()

	ev, err := events.DialPath(sock)
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{URL: "http://" + addr + "/v1", Model: "bench", API: APIChat, Concurrency: 32,
		Measure: Limit{Requests: b.N}, PromptTokens: 64, MaxTokens: 256, Seed: 1,
		StallTimeout: 10 * time.Second, TokenInterval: interval}
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	sum, err := g.Run(context.Background(), ev)
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	ev.Close()
	stdin.Close()
	if !out.Scan() {
		b.Fatal("the bench server printed no event count")
	}
	nEvents, _ := strconv.Atoi(strings.TrimSpace(out.Text()))
	child.Wait()

	tokens := sum.Warmup.OutputTokens + sum.Measure.OutputTokens + sum.Drain.OutputTokens
	if failed := sum.Measure.Failed + sum.Drain.Failed; failed > 0 || tokens == 0 {
		b.Fatalf("%d failed requests, %d tokens", failed, tokens)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(tokens), "cpu-ns/token")
	b.ReportMetric(float64(tokens)/wall.Seconds(), "tokens/s")
	b.ReportMetric(float64(nEvents)/float64(tokens), "events/token")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
}
