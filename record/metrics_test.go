package record_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
	"github.com/llem/llem/trace"
)

// scrape fetches and parses url's text exposition.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// value is the value of fam's series whose labels include want; ok false
// when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, *dto.Metric, bool) {
	f := fams[name]
	if f == nil {
		return 0, nil, false
	}
next:
	for _, m := range f.GetMetric() {
		got := labelsOf(m)
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), m, true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), m, true
		case dto.MetricType_UNTYPED:
			return m.GetUntyped().GetValue(), m, true
		}
	}
	return 0, nil, false
}

// The metrics endpoint serves, while the command runs, what the sampling
// loops read (the same values the trace stores), under dcgm-exporter's
// names and labels, llem's own counters, and the recorder's CPU; a lost
// GPU is marked and its readings withdrawn; the endpoint closes with the
// recording.
func TestMetricsServeWhatTheSamplerRead(t *testing.T) {
	s := sim.New(sim.Options{GPUs: 2, Seed: 5, Ramp: -1})
	gs := s.GPUs()
	b := &failingBackend{Backend: s, gpus: []record.GPU{gs[0], &lostAfter{GPU: gs[1], after: 3}}}
	ln, err := record.ListenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/metrics"
	dir := filepath.Join(t.TempDir(), "run")
	sockFile := filepath.Join(t.TempDir(), "sock")
	doneFile := filepath.Join(t.TempDir(), "done")
	resC, errC := recordAsync(record.Config{
		OutDir: dir, Backend: b, Metrics: ln,
		Argv:           []string{"sh", "-c", `echo "$LLEM_EVENTS" > ` + sockFile + `; while [ ! -e ` + doneFile + ` ]; do sleep 0.05; done`},
		EnergyInterval: 200 * time.Millisecond, RotateInterval: 200 * time.Millisecond,
		Stdout: io.Discard, Stderr: io.Discard, Log: io.Discard,
	})
	waitForFile(t, sockFile)
	time.Sleep(50 * time.Millisecond)
	sb, _ := os.ReadFile(sockFile)
	c, err := net.Dial("unix", strings.TrimSpace(string(sb)))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "{\"kind\":\"mark\",\"name\":\"a\"}\n{\"kind\":\"mark\",\"name\":\"b\"}\nnot json\n")
	c.Close()

	// Scrape until the command's load shows, the events are counted, a
	// state segment has been written and the driver's buffer drained (the
	// first drain, a second in, is the first to find samples of the run).
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams, err = scrape(url)
		if err != nil {
			t.Fatal(err)
		}
		w, _, _ := value(fams, "DCGM_FI_DEV_POWER_USAGE", map[string]string{"gpu": "0"})
		ev, _, _ := value(fams, "llem_events_received_total", nil)
		segs, _, _ := value(fams, "llem_segments_written_total", map[string]string{"table": trace.TableState})
		_, _, drained := value(fams, "llem_gpu_driver_power_watts", map[string]string{"gpu": "0"})
		if w > 400 && ev == 3 && segs >= 1 && drained {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed the load, the events, a segment and a drain: power %g W, events %g, state segments %g, driver power %v",
				w, ev, segs, drained)
		}
		time.Sleep(100 * time.Millisecond)
	}
	meta, err := trace.ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doneFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := <-resC, <-errC
	if err != nil {
		t.Fatal(err)
	}
	if res.Meta.Settings.MetricsAddr != ln.Addr().String() {
		t.Errorf("meta.json settings.metrics_addr = %q, want %q", res.Meta.Settings.MetricsAddr, ln.Addr())
	}

	// Labels as dcgm-exporter's.
	g0 := map[string]string{"gpu": "0"}
	_, m, ok := value(fams, "DCGM_FI_DEV_POWER_USAGE", g0)
	if !ok {
		t.Fatal("no DCGM_FI_DEV_POWER_USAGE for GPU 0")
	}
	want := map[string]string{"gpu": "0", "UUID": meta.GPUs[0].UUID, "pci_bus_id": meta.GPUs[0].PCIBusID,
		"modelName": "llem simulated GPU", "Hostname": meta.Host.Hostname, "DCGM_FI_DRIVER_VERSION": "sim"}
	if got := labelsOf(m); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("labels of GPU 0's power:\n got %v\nwant %v", got, want)
	}
	if meta.GPUs[0].UUID == "" || meta.Host.Hostname == "" {
		t.Errorf("the labels' sources are empty: UUID %q, host %q", meta.GPUs[0].UUID, meta.Host.Hostname)
	}
	if f := fams["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]; f == nil || f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION must be a counter: %v", f)
	}

	// Every value is one the sampler read and the trace stores, not a
	// read of its own.
	run, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	states, _ := trace.ReadTable[trace.DeviceState](run, trace.TableState)
	reads, _ := trace.ReadTable[trace.EnergyRead](run, trace.TableEnergy)
	dps, _ := trace.ReadTable[trace.DriverPowerSample](run, trace.TableDriverPower)
	inState := func(name string, f func(trace.DeviceState) float64) {
		t.Helper()
		v, _, ok := value(fams, name, g0)
		if !ok {
			t.Errorf("no %s for GPU 0", name)
			return
		}
		for _, st := range states {
			if st.GPU == 0 && f(st) == v {
				return
			}
		}
		t.Errorf("%s = %g is no value of GPU 0's device_state rows", name, v)
	}
	inState("DCGM_FI_DEV_POWER_USAGE", func(s trace.DeviceState) float64 { return float64(*s.AveragePowerMw) / 1000 })
	inState("DCGM_FI_DEV_POWER_USAGE_INSTANT", func(s trace.DeviceState) float64 { return float64(*s.InstantPowerMw) / 1000 })
	inState("DCGM_FI_DEV_GPU_TEMP", func(s trace.DeviceState) float64 { return float64(*s.TemperatureC) })
	inState("DCGM_FI_DEV_SM_CLOCK", func(s trace.DeviceState) float64 { return float64(*s.SMClockMHz) })
	inState("DCGM_FI_DEV_MEM_CLOCK", func(s trace.DeviceState) float64 { return float64(*s.MemClockMHz) })
	inState("DCGM_FI_DEV_GPU_UTIL", func(s trace.DeviceState) float64 { return float64(*s.GPUUtilPct) })
	inState("DCGM_FI_DEV_FB_USED", func(s trace.DeviceState) float64 { return float64(*s.MemoryUsedBytes) / (1 << 20) })
	if v, _, _ := value(fams, "DCGM_FI_DEV_GPU_UTIL", g0); v != 100 {
		t.Errorf("GPU 0 is busy: DCGM_FI_DEV_GPU_UTIL = %g, want 100", v)
	}
	energy, _, _ := value(fams, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", g0)
	found := false
	for _, r := range reads {
		found = found || (r.GPU == 0 && float64(r.EnergyMj) == energy)
	}
	if !found || energy < 1e9 {
		t.Errorf("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION = %g mJ is no energy read of GPU 0", energy)
	}
	dw, _, _ := value(fams, "llem_gpu_driver_power_watts", g0)
	found = false
	for _, p := range dps {
		found = found || (p.GPU == 0 && float64(p.DriverPowerMw)/1000 == dw)
	}
	if !found {
		t.Errorf("llem_gpu_driver_power_watts = %g is no driver power sample of GPU 0", dw)
	}

	// GPU 1 was lost: marked, and no stale readings.
	g1 := map[string]string{"gpu": "1"}
	if v, _, ok := value(fams, "llem_gpu_lost", g1); !ok || v != 1 {
		t.Errorf("llem_gpu_lost{gpu=1} = %g (present %v), want 1", v, ok)
	}
	if v, _, ok := value(fams, "llem_gpu_lost", g0); !ok || v != 0 {
		t.Errorf("llem_gpu_lost{gpu=0} = %g (present %v), want 0", v, ok)
	}
	if _, _, ok := value(fams, "DCGM_FI_DEV_POWER_USAGE", g1); ok {
		t.Error("the lost GPU 1 still has a power reading")
	}

	// llem's own.
	for name, want := range map[string]float64{
		"llem_events_received_total": 3, "llem_events_accepted_total": 2, "llem_events_bad_total": 1,
		"llem_events_dropped_total": 0, "llem_cycle": 1, "llem_trace_write_failed": 0,
	} {
		if v, _, ok := value(fams, name, nil); !ok || v != want {
			t.Errorf("%s = %g (present %v), want %g", name, v, ok, want)
		}
	}
	if v, _, _ := value(fams, "llem_rows_written_total", map[string]string{"table": trace.TableState}); v < 1 {
		t.Errorf("llem_rows_written_total{table=device_state} = %g, want rows", v)
	}
	if v, _, _ := value(fams, "llem_sampling_iterations_total", map[string]string{"loop": "device_state"}); v < 1 {
		t.Errorf("llem_sampling_iterations_total{loop=device_state} = %g", v)
	}
	if v, _, _ := value(fams, "llem_sampling_errors_total", map[string]string{"loop": "device_state"}); v < 1 {
		t.Errorf("the lost GPU's failed poll is not counted: llem_sampling_errors_total{loop=device_state} = %g", v)
	}
	if _, m, ok := value(fams, "llem_recording_info", nil); !ok || labelsOf(m)["run_id"] != meta.RunID || labelsOf(m)["device"] != "sim" {
		t.Errorf("llem_recording_info: %v", m)
	}
	if v, _, ok := value(fams, "process_cpu_seconds_total", nil); !ok || v <= 0 {
		t.Errorf("process_cpu_seconds_total = %g (present %v): the recorder's CPU", v, ok)
	}
	if v, _, ok := value(fams, "llem_recorder_max_rss_bytes", nil); !ok || v < 1<<20 {
		t.Errorf("llem_recorder_max_rss_bytes = %g (present %v)", v, ok)
	}

	// The endpoint ends with the recording.
	if _, err := http.Get(url); err == nil {
		t.Error("metrics are still served after the recording ended")
	}
}

func TestListenMetricsRefusesABadAddress(t *testing.T) {
	for _, addr := range []string{"9400", "localhost", "127.0.0.1:notaport"} {
		if ln, err := record.ListenMetrics(addr); err == nil {
			ln.Close()
			t.Errorf("ListenMetrics(%q) bound %s", addr, ln.Addr())
		}
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if ln, err := record.ListenMetrics(taken.Addr().String()); err == nil {
		ln.Close()
		t.Errorf("bound %s, which is taken", taken.Addr())
	}
}
