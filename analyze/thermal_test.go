package analyze_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/serving"
	"github.com/llem/llem/trace"
)

// thermalRun is a generated one-GPU run of durS seconds: driver power at
// 50 Hz from power(t), the energy counter every second, the temperature at
// 10 Hz from temp(t) rounded to whole degrees as the sensor reports it, a
// steady SM clock, and the requests of reqs (start and end in seconds).
func thermalRun(durS float64, power, temp func(t float64) float64, reqs [][2]float64, seed uint64) *analyze.Data {
	const origin = int64(1_800_000_000_000_000_000)
	rng := rand.New(rand.NewPCG(seed, 9))
	d := &analyze.Data{Run: &trace.Run{Meta: &trace.Meta{Device: "generated", Complete: true, Status: trace.StatusComplete}}}
	g := &analyze.GPU{Index: 0}
	d.GPUs = []*analyze.GPU{g}
	at := func(s float64) int64 { return origin + int64(math.Round(s*1e9)) }
	energyJ := 0.0
	var dp, temps, clk, reasons analyze.Series
	for k := 0; float64(k)*0.02 <= durS; k++ {
		s := float64(k) * 0.02
		p := power(s) + rng.NormFloat64()*2
		dp.T, dp.V = append(dp.T, at(s)), append(dp.V, p)
		energyJ += p * 0.02
		if k%50 == 0 {
			g.Energy = append(g.Energy, trace.EnergyRead{TimestampNs: at(s), EnergyMj: int64(energyJ * 1000)})
		}
		if k%5 == 0 {
			temps.T, temps.V = append(temps.T, at(s)), append(temps.V, math.Round(temp(s)))
			clk.T, clk.V = append(clk.T, at(s)), append(clk.V, 1980)
			reasons.T, reasons.V = append(reasons.T, at(s)), append(reasons.V, 0) // busy: no GpuIdle
		}
	}
	g.DriverPower, g.Temperature, g.SMClock, g.Reasons = analyze.SamplesOf(dp), analyze.SamplesOf(temps),
		analyze.SamplesOf(clk), analyze.SamplesOf(reasons)
	for i, r := range reqs {
		id := fmt.Sprintf("r%d", i)
		d.Events = append(d.Events,
			trace.Event{TimestampNs: at(r[0]), Kind: "request_start", RequestID: id, Source: "client"},
			trace.Event{TimestampNs: at(r[1]), Kind: "request_end", RequestID: id, Source: "client"})
	}
	sortEvents(d.Events)
	// As the loader keeps them: request events apart, compact.
	evs, ids := serving.RequestEvents(d.Events, nil)
	d.RequestEvents, d.IDs = serving.NewEventLog(evs), ids
	d.Events = slices.DeleteFunc(d.Events, func(e trace.Event) bool { return serving.RequestKind(e.Kind) != 0 })
	d.Origin, d.End = origin, at(durS)
	return d
}

func sortEvents(ev []trace.Event) {
	for i := 1; i < len(ev); i++ {
		for j := i; j > 0 && ev[j].TimestampNs < ev[j-1].TimestampNs; j-- {
			ev[j], ev[j-1] = ev[j-1], ev[j]
		}
	}
}

// thermalOf analyses d over the user window "a..b" and returns its
// thermal result and the run's warnings.
func thermalOf(t *testing.T, d *analyze.Data, window string) (analyze.ThermalResult, []analyze.Warning) {
	t.Helper()
	s := analyze.DefaultSettings()
	s.Windows = []string{window}
	rr := analyze.New(d, "generated", s).Result
	if len(rr.Thermal) != 1 {
		t.Fatalf("%d thermal results, want 1", len(rr.Thermal))
	}
	return rr.Thermal[0], rr.Warnings
}

func warningsWith(ws []analyze.Warning, code, substr string) []string {
	var out []string
	for _, w := range ws {
		if w.Code == code && strings.Contains(w.Message, substr) {
			out = append(out, w.Message)
		}
	}
	return out
}

// TestTemperatureFlickerIsNotDrift is issue 9's H200 case: a 12 s window
// in which a whole-degree sensor flickers 41/42 more and more often. The
// least-squares slope is several C/min, but the sensor never settles a
// degree higher, so it is no drift, and the range printed is what was seen.
func TestTemperatureFlickerIsNotDrift(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 1))
	temp := func(s float64) float64 {
		if rng.Float64() < (s-60)/30 { // 42 ever more often in 60..72 s, never most of the time
			return 42
		}
		return 41
	}
	d := thermalRun(80, func(float64) float64 { return 450 }, temp, nil, 1)
	th, warns := thermalOf(t, d, "60..72")
	g := th.GPUs[0]
	t.Logf("slope %+.2f C/min, change %+.2f C, MK p %.2g, seen %v..%v", float64(g.TempSlopeCPerMin), float64(g.TempChangeC),
		float64(g.TempTrendP), g.TempMinC, g.TempMaxC)
	if g.TempSlopeCPerMin <= 1 {
		t.Fatalf("the generated flicker should have a least-squares slope above the 1 C/min threshold, got %v", g.TempSlopeCPerMin)
	}
	if g.TempDrift || len(warningsWith(warns, "thermal", "temperature")) > 0 {
		t.Errorf("flicker judged a drift: %v", warningsWith(warns, "thermal", "temperature"))
	}
	if g.TempMinC != 41 || g.TempMaxC != 42 {
		t.Errorf("range seen %v..%v, want 41..42", g.TempMinC, g.TempMaxC)
	}
}

// TestTemperatureDriftIsFlagged: a GPU warming 6 C over a minute drifts.
func TestTemperatureDriftIsFlagged(t *testing.T) {
	d := thermalRun(80, func(float64) float64 { return 450 }, func(s float64) float64 { return 40 + s/10 }, nil, 2)
	th, warns := thermalOf(t, d, "10..70")
	g := th.GPUs[0]
	if !g.TempDrift || math.Abs(float64(g.TempChangeC)-6) > 0.5 {
		t.Errorf("drift %v, change %v C, want a drift of about +6 C", g.TempDrift, g.TempChangeC)
	}
	if w := warningsWith(warns, "thermal", "temperature drifts by +6"); len(w) != 1 {
		t.Errorf("thermal warnings %v, want one saying the temperature drifts by +6 C", warns)
	}
	if g.TempMinC != 41 || g.TempMaxC != 47 {
		t.Errorf("range seen %v..%v, want 41..47", g.TempMinC, g.TempMaxC)
	}
}

// TestPowerDriftCause: a power drift is thermal when the temperature
// moves with it, follows the workload when the requests in flight do, and
// is unexplained when neither does.
func TestPowerDriftCause(t *testing.T) {
	flat := func(float64) float64 { return 45 }
	var rising [][2]float64 // 10 requests in flight at 0 s, 40 at 80 s
	for k := range 10 {
		rising = append(rising, [2]float64{0, 80 + float64(k)})
	}
	for s := 0.0; s < 80; s += 80.0 / 30 {
		rising = append(rising, [2]float64{s, 81})
	}
	for _, c := range []struct {
		name  string
		power func(float64) float64
		temp  func(float64) float64
		reqs  [][2]float64
		cause string
	}{
		{"workload", func(s float64) float64 { return 300 + 2*concurrencyAt(rising, s) }, flat, rising, analyze.DriftWorkload},
		{"thermal", func(s float64) float64 { return 400 + s/2 }, func(s float64) float64 { return 40 + s/8 }, nil, analyze.DriftThermal},
		{"unexplained", func(s float64) float64 { return 400 + s/2 }, flat, nil, analyze.DriftUnknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := thermalRun(80, c.power, c.temp, c.reqs, 3)
			th, warns := thermalOf(t, d, "5..75")
			if th.PowerDriftCause != c.cause {
				t.Errorf("cause %q, want %q (power trend %+v)", th.PowerDriftCause, c.cause, th.PowerTrend)
			}
			if len(warningsWith(warns, "power_drift", "power drifts")) != 1 {
				t.Errorf("warnings %v, want one power_drift", warns)
			}
		})
	}
}

func concurrencyAt(reqs [][2]float64, s float64) float64 {
	n := 0.0
	for _, r := range reqs {
		if r[0] <= s && s < r[1] {
			n++
		}
	}
	return n
}
