package main_test

// Live metrics (llem record --metrics-addr) as a user meets them: a taken
// address stops llem before the command, and a real Prometheus server
// (Debian's package) scrapes a recording and answers queries for its power.
// The Prometheus test skips, saying why, where the server is not installed;
// with LLEM_REQUIRE_PROMETHEUS=1 (set by .ci/run) that is a failure.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llem/llem/trace"
)

func TestMetricsAddrTakenFailsBeforeTheCommand(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tmp := t.TempDir()
	marker := filepath.Join(tmp, "ran")
	for _, tc := range []struct{ addr, want string }{
		{taken.Addr().String(), "address already in use"},
		{"9400", "want host:port"},
	} {
		dir := filepath.Join(tmp, "run")
		r := llem(t, nil, "record", "--device", "sim", "--metrics-addr", tc.addr, "--out", dir, "--", "touch", marker)
		if r.code == 0 || !strings.Contains(r.stderr, "--metrics-addr "+tc.addr) || !strings.Contains(r.stderr, tc.want) ||
			!strings.Contains(r.stderr, "did not start the command") {
			t.Errorf("--metrics-addr %s: exit %d, stderr %q; want an error naming the flag and %q", tc.addr, r.code, r.stderr, tc.want)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("--metrics-addr %s: the command ran", tc.addr)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("--metrics-addr %s: the run directory was created", tc.addr)
		}
	}
}

// syncBuffer is a bytes.Buffer a child process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func prometheusBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		msg := "prometheus is not installed (apt-get install prometheus)"
		if os.Getenv("LLEM_REQUIRE_PROMETHEUS") == "1" {
			t.Fatalf("Prometheus is required here (LLEM_REQUIRE_PROMETHEUS=1) but %s", msg)
		}
		t.Skipf("no Prometheus server: %s", msg)
	}
	return bin
}

// promAPI is a GET of a Prometheus HTTP API path, decoded; its error is
// for a failed request or a non-success status.
func promAPI(base, path string, q url.Values, out any) error {
	resp, err := http.Get(base + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %s: %v: %s", path, resp.Status, err, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, env.Status, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

type promSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"` // [unix seconds, "value"]
}

func (s promSeries) floats(t *testing.T) []float64 {
	t.Helper()
	var out []float64
	for _, v := range s.Values {
		str, _ := v[1].(string)
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("sample %v: %v", v, err)
		}
		out = append(out, f)
	}
	return out
}

// A real Prometheus scrapes llem record every second: the target is up,
// and its query API returns DCGM_FI_DEV_POWER_USAGE of the simulated GPU
// with dcgm-exporter's labels, every sample one the recorder read (a
// device_state row of the trace), idle first and then under the command's
// load, as the simulator's truth says.
func TestPrometheusScrapesARecording(t *testing.T) {
	bin := prometheusBin(t)
	tmp := t.TempDir()
	llemPort, promPort := freePort(t), freePort(t)
	for promPort == llemPort {
		promPort = freePort(t)
	}
	llemAddr := fmt.Sprintf("127.0.0.1:%d", llemPort)
	promBase := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: llem
    static_configs:
      - targets: ['%s']
`, llemAddr)
	cfgFile := filepath.Join(tmp, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var promLog syncBuffer
	prom := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(tmp, "tsdb"),
		"--web.listen-address="+fmt.Sprintf("127.0.0.1:%d", promPort), "--log.level=warn")
	prom.Dir, prom.Stdout, prom.Stderr = tmp, &promLog, &promLog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	promDone := make(chan struct{})
	go func() { prom.Wait(); close(promDone) }()
	t.Cleanup(func() {
		prom.Process.Signal(syscall.SIGTERM)
		select {
		case <-promDone:
		case <-time.After(10 * time.Second):
			prom.Process.Kill()
			<-promDone
		}
	})
	waitFor(t, "Prometheus to be ready", func() bool {
		select {
		case <-promDone:
			t.Fatalf("prometheus exited: %s", tail(promLog.String(), 20))
		default:
		}
		resp, err := http.Get(promBase + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// Prometheus makes its scrape targets a few seconds after it starts
	// (its discovery updates at most every 5 s): wait for the llem target,
	// down until llem serves, so that the idle phase is scraped.
	targetHealth := func() string {
		var tg struct {
			ActiveTargets []struct {
				Health string `json:"health"`
			} `json:"activeTargets"`
		}
		if err := promAPI(promBase, "/api/v1/targets", nil, &tg); err != nil {
			t.Fatal(err)
		}
		if len(tg.ActiveTargets) != 1 {
			return ""
		}
		return tg.ActiveTargets[0].Health
	}
	waitFor(t, "Prometheus to have the llem target", func() bool { return targetHealth() == "down" })

	// Idle for a few scrapes, then the command's load until the test is done.
	dir := filepath.Join(tmp, "run")
	done := filepath.Join(tmp, "done")
	rec := exec.Command(llemBin, "record", "--device", "sim", "--seed", "7", "--metrics-addr", llemAddr, "--idle-before", "4s",
		"--out", dir, "--", "sh", "-c", "while [ ! -e "+done+" ]; do sleep 0.1; done")
	var recErr syncBuffer
	rec.Stderr = &recErr
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rec.Process.Kill(); _ = rec.Wait() })
	waitFor(t, "llem to serve metrics", func() bool {
		return strings.Contains(recErr.String(), "serving Prometheus metrics on http://"+llemAddr+"/metrics")
	})

	waitFor(t, "the llem target to be up", func() bool { return targetHealth() == "up" })

	// The raw samples Prometheus stored, until some show the load.
	meta, err := trace.ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	var series promSeries
	waitFor(t, "the power series to show the command's load", func() bool {
		var res struct {
			ResultType string       `json:"resultType"`
			Result     []promSeries `json:"result"`
		}
		if err := promAPI(promBase, "/api/v1/query", url.Values{"query": {`DCGM_FI_DEV_POWER_USAGE{job="llem",gpu="0"}[5m]`}}, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Result) != 1 {
			return false
		}
		series = res.Result[0]
		vs := series.floats(t)
		return len(vs) >= 3 && slices.Max(vs) > 500
	})
	var ranged struct {
		Result []promSeries `json:"result"`
	}
	now := time.Now()
	if err := promAPI(promBase, "/api/v1/query_range", url.Values{"query": {"DCGM_FI_DEV_POWER_USAGE"},
		"start": {strconv.FormatInt(now.Add(-time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(now.Unix(), 10)}, "step": {"1"}}, &ranged); err != nil {
		t.Fatal(err)
	}
	if len(ranged.Result) != 1 || len(ranged.Result[0].Values) < 3 {
		t.Errorf("query_range DCGM_FI_DEV_POWER_USAGE: %+v", ranged.Result)
	}

	if err := os.WriteFile(done, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rec.Wait(); err != nil {
		t.Fatalf("llem record: %v\n%s", err, recErr.String())
	}
	meta, err = trace.ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}

	for k, want := range map[string]string{"job": "llem", "instance": llemAddr, "gpu": "0", "UUID": meta.GPUs[0].UUID,
		"modelName": meta.GPUs[0].Name, "Hostname": meta.Host.Hostname} {
		if got := series.Metric[k]; got != want || want == "" {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	states, err := trace.ReadTable[trace.DeviceState](run, trace.TableState)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[float64]bool{} // as the analysis converts them: mW / 1000
	for _, st := range states {
		if st.GPU == 0 && st.AveragePowerMw != nil {
			recorded[float64(*st.AveragePowerMw)/1000] = true
		}
	}
	vs := series.floats(t)
	for _, v := range vs {
		if !recorded[v] {
			t.Errorf("Prometheus holds %g W, which the recorder never read", v)
		}
	}
	// Idle before the command, its load after: the simulator's truth.
	truth := meta.SimTruth
	if truth == nil {
		t.Fatal("no sim_truth in meta.json")
	}
	if lo := slices.Min(vs); math.Abs(lo-truth.IdlePowerW) > 10 {
		t.Errorf("lowest power %g W; the simulated GPU idles at %g W", lo, truth.IdlePowerW)
	}
	if hi := slices.Max(vs); hi < 0.8*truth.SteadyMeanPowerW || hi > 1.2*truth.SteadyMeanPowerW {
		t.Errorf("highest power %g W; the simulated GPU's steady power is %g W", hi, truth.SteadyMeanPowerW)
	}
	if t.Failed() {
		t.Logf("samples: %v\nllem: %s\nprometheus: %s", vs, recErr.String(), tail(promLog.String(), 20))
	}
}
