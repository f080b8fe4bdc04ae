package record

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llem/llem/trace"
)

// Live metrics (Config.Metrics): while it records, llem serves Prometheus
// metrics of the GPUs it samples and of itself. A scrape reads only what
// the recorder already keeps: the last state poll of each GPU (the one
// reading kept only for the metrics, stored with an atomic), and the
// status line's latest driver power, last counter read and lost GPUs,
// under the recorder's mutex. It never reads the device, so scraping
// costs no driver call and never waits on a sampling loop or the trace
// writer. Per-GPU metrics carry the names and labels of NVIDIA's
// dcgm-exporter where it has one, so that dashboards made for it show a
// recording as they show a dcgm-exporter target.

// liveState is GPU idx's last state poll for the metrics, or nil when no
// metrics are served (then the sampling loops store nothing).
func (r *recorder) liveState(idx int) *atomic.Pointer[trace.DeviceState] {
	if r.live == nil {
		return nil
	}
	return r.live[idx]
}

// gpuReading is what a scrape knows of one GPU.
type gpuReading struct {
	state    *trace.DeviceState // nil before the first poll
	energyMj uint64
	haveMj   bool
	driverW  float64
	haveW    bool
}

// dcgmLabels are dcgm-exporter's labels that apply to a recording; its
// "device" (nvidiaN, the device node's minor number) is left out, as the
// recorder does not read the minor number.
var dcgmLabels = []string{"gpu", "UUID", "pci_bus_id", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"}

// gpuMetric is one per-GPU metric and how to take it from the readings.
type gpuMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(g gpuReading) (float64, bool)
}

// stateField is a field of the last state poll, divided by div (1000 for
// mW to W, as the analysis converts them, to the last bit).
func stateField[T int32 | int64](f func(*trace.DeviceState) *T, div float64) func(gpuReading) (float64, bool) {
	return func(g gpuReading) (float64, bool) {
		if g.state == nil {
			return 0, false
		}
		p := f(g.state)
		if p == nil {
			return 0, false
		}
		return float64(*p) / div, true
	}
}

func gpuMetrics() []gpuMetric {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, dcgmLabels, nil) }
	return []gpuMetric{
		{d("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W): the driver's 1 s average (nvmlDeviceGetPowerUsage), as of the last state poll."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int64 { return s.AveragePowerMw }, 1000)},
		{d("DCGM_FI_DEV_POWER_USAGE_INSTANT", "Current power draw (in W), as of the last state poll."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int64 { return s.InstantPowerMw }, 1000)},
		{d("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since the driver was loaded (in mJ), as of the last counter read."),
			prometheus.CounterValue, func(g gpuReading) (float64, bool) { return float64(g.energyMj), g.haveMj }},
		{d("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C)."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int32 { return s.TemperatureC }, 1)},
		{d("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz)."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int32 { return s.SMClockMHz }, 1)},
		{d("DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz)."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int32 { return s.MemClockMHz }, 1)},
		{d("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %)."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int32 { return s.GPUUtilPct }, 1)},
		{d("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %)."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int32 { return s.MemUtilPct }, 1)},
		{d("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB)."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int64 { return s.MemoryUsedBytes }, 1<<20)},
		{d("llem_gpu_driver_power_watts", "The newest sample of the driver's 20 ms power-sample buffer (in W), as of the last drain."),
			prometheus.GaugeValue, func(g gpuReading) (float64, bool) { return g.driverW, g.haveW }},
		{d("llem_gpu_pstate", "Performance state (0 is the highest)."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int32 { return s.PState }, 1)},
		{d("llem_gpu_clock_event_reasons", "Clock event (throttle) reasons, NVML's bitmask."),
			prometheus.GaugeValue, stateField(func(s *trace.DeviceState) *int64 { return s.ClockEventReasons }, 1)},
	}
}

// metricsCollector collects everything from what the recorder already
// holds; Describe and Collect are called by the scrape's goroutine.
type metricsCollector struct {
	r         *recorder
	gpu       []gpuMetric
	gpuLabels [][]string // label values, in r.gpus order
	lostDesc  *prometheus.Desc

	info, cycle, writeFailed                 *prometheus.Desc
	evReceived, evAccepted, evBad, evDropped *prometheus.Desc
	segments, rows, bytes                    *prometheus.Desc
	iterations, missed, loopErrors           *prometheus.Desc
}

func newMetricsCollector(r *recorder) *metricsCollector {
	c := &metricsCollector{r: r, gpu: gpuMetrics()}
	host := r.meta.Host.Hostname
	for i, g := range r.gpus {
		info := r.meta.GPUs[i]
		c.gpuLabels = append(c.gpuLabels, []string{strconv.Itoa(g.Index()), info.UUID, info.PCIBusID, info.Name, host, info.DriverVersion})
	}
	c.lostDesc = prometheus.NewDesc("llem_gpu_lost", "1 once the GPU stopped answering; its other metrics are then absent.", dcgmLabels, nil)
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	c.info = d("llem_recording_info", "The recording being made; always 1.", "run_id", "device", "llem_version", "out_dir")
	c.cycle = d("llem_cycle", "The cycle of the command now running (1 for the first), 0 while none runs.")
	c.writeFailed = d("llem_trace_write_failed", "1 once writing the trace failed: the trace stops at its last whole segment (meta.json data_end).")
	c.evReceived = d("llem_events_received_total", "Event lines received on the event socket.")
	c.evAccepted = d("llem_events_accepted_total", "Events accepted for the trace.")
	c.evBad = d("llem_events_bad_total", "Lines rejected as bad events.")
	c.evDropped = d("llem_events_dropped_total", "Good events dropped because the client sent faster than they could be written.")
	c.segments = d("llem_segments_written_total", "Parquet segments written, by table.", "table")
	c.rows = d("llem_rows_written_total", "Rows written in segments, by table.", "table")
	c.bytes = d("llem_segment_bytes_written_total", "Size on disk of the segments written, by table.", "table")
	c.iterations = d("llem_sampling_iterations_total", "Readings taken by the sampling loops, by loop, over all GPUs.", "loop")
	c.missed = d("llem_sampling_missed_deadlines_total", "Sampling deadlines skipped because a reading overran them, by loop.", "loop")
	c.loopErrors = d("llem_sampling_errors_total", "Failed readings, by loop.", "loop")
	return c
}

func (c *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.gpu {
		ch <- m.desc
	}
	for _, d := range []*prometheus.Desc{c.lostDesc, c.info, c.cycle, c.writeFailed, c.evReceived, c.evAccepted, c.evBad, c.evDropped,
		c.segments, c.rows, c.bytes, c.iterations, c.missed, c.loopErrors} {
		ch <- d
	}
}

func (c *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	readings := make([]gpuReading, len(r.gpus))
	lost := make([]bool, len(r.gpus))
	r.mu.Lock() // a few map reads: the sampling loops hold it as briefly
	for i, g := range r.gpus {
		_, lost[i] = r.lost[g.Index()]
		readings[i].energyMj, readings[i].haveMj = r.lastMj[g.Index()]
		readings[i].driverW, readings[i].haveW = r.latestW[g.Index()]
	}
	r.mu.Unlock()
	for i, g := range r.gpus {
		ch <- prometheus.MustNewConstMetric(c.lostDesc, prometheus.GaugeValue, b2f(lost[i]), c.gpuLabels[i]...)
		if lost[i] {
			continue // stale readings of a lost GPU would read as live
		}
		readings[i].state = r.liveState(g.Index()).Load()
		for _, m := range c.gpu {
			if v, ok := m.value(readings[i]); ok {
				ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v, c.gpuLabels[i]...)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, r.meta.RunID, r.meta.Device, r.meta.LlemVersion, r.cfg.OutDir)
	ch <- prometheus.MustNewConstMetric(c.cycle, prometheus.GaugeValue, float64(r.cycle.Load()))
	ch <- prometheus.MustNewConstMetric(c.writeFailed, prometheus.GaugeValue, b2f(r.out.failed.Load()))
	ev := r.events.Stats() // atomic loads
	ch <- prometheus.MustNewConstMetric(c.evReceived, prometheus.CounterValue, float64(ev.Received))
	ch <- prometheus.MustNewConstMetric(c.evAccepted, prometheus.CounterValue, float64(ev.Accepted))
	ch <- prometheus.MustNewConstMetric(c.evBad, prometheus.CounterValue, float64(ev.Bad))
	ch <- prometheus.MustNewConstMetric(c.evDropped, prometheus.CounterValue, float64(ev.Dropped))
	for _, t := range r.out.published {
		ch <- prometheus.MustNewConstMetric(c.segments, prometheus.CounterValue, float64(t.segments.Load()), t.table)
		ch <- prometheus.MustNewConstMetric(c.rows, prometheus.CounterValue, float64(t.rows.Load()), t.table)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(t.bytes.Load()), t.table)
	}
	for name, l := range r.loops {
		st := l.snapshot() // a copy under the loop's mutex, held for no I/O
		ch <- prometheus.MustNewConstMetric(c.iterations, prometheus.CounterValue, float64(st.Iterations), name)
		ch <- prometheus.MustNewConstMetric(c.missed, prometheus.CounterValue, float64(st.MissedDeadlines), name)
		ch <- prometheus.MustNewConstMetric(c.loopErrors, prometheus.CounterValue, float64(st.Errors), name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// selfCollector gives the recorder's own CPU and peak memory from one
// getrusage call. The client library's process collector gives the same
// process_cpu_seconds_total but reads five /proc files for it on every
// scrape: 40% of a scrape's CPU, measured on the simulated device.
type selfCollector struct{}

var (
	cpuDesc = prometheus.NewDesc("process_cpu_seconds_total",
		"Total user and system CPU time spent in seconds by the recorder (the command is another process).", nil, nil)
	maxRSSDesc = prometheus.NewDesc("llem_recorder_max_rss_bytes", "The recorder's peak resident memory (getrusage).", nil, nil)
)

func (selfCollector) Describe(ch chan<- *prometheus.Desc) { ch <- cpuDesc; ch <- maxRSSDesc }

func (selfCollector) Collect(ch chan<- prometheus.Metric) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.CounterValue, tvSeconds(ru.Utime)+tvSeconds(ru.Stime))
	ch <- prometheus.MustNewConstMetric(maxRSSDesc, prometheus.GaugeValue, float64(ru.Maxrss*1024))
}

// startMetrics serves /metrics on cfg.Metrics until the returned func is
// called. The registry is the recorder's own, not the process-wide default:
// it holds the recorder's metrics and its CPU (selfCollector).
func (r *recorder) startMetrics() (stop func()) {
	ln := r.cfg.Metrics
	if ln == nil {
		return func() {}
	}
	reg := prometheus.NewRegistry()
	// The client library's Go runtime collector is left out: 15% of a
	// scrape's CPU for metrics of no use in judging a recording.
	reg.MustRegister(newMetricsCollector(r), selfCollector{})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4, // a flood of scrapes cannot take the recorder's CPU
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/" {
			http.NotFound(w, req)
			return
		}
		fmt.Fprintln(w, "llem record: metrics at /metrics")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(r.cfg.Log, "llem: metrics server on %s stopped: %v\n", ln.Addr(), err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close() // a scrape that does not finish does not hold the recording up
		}
		<-done
	}
}

// ListenMetrics binds addr (host:port) for Config.Metrics. Binding before
// the recording starts lets a taken or wrong address fail before the
// command runs.
func ListenMetrics(addr string) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("want host:port, e.g. 127.0.0.1:9400 (%v)", err)
	}
	return net.Listen("tcp", addr)
}
