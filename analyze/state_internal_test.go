package analyze

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/llem/llem/trace"
)

// Each device_state field's samples are exactly the rows where it has a
// value, whichever rows miss which fields.
func TestStateSeriesAreTheirRows(t *testing.T) {
	dir := t.TempDir()
	m := &trace.Meta{SchemaVersion: trace.SchemaVersion, RunID: "test", Status: trace.StatusComplete, Complete: true,
		GPUs: []trace.GPUInfo{{Index: 0}, {Index: 1}}}
	if err := trace.WriteMeta(dir, m); err != nil {
		t.Fatal(err)
	}
	w, err := trace.NewTableWriter(dir, trace.TableState, "test", trace.CompareState)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(41, 42))
	i64 := func(v int64) *int64 { return &v }
	i32 := func(v int32) *int32 { return &v }
	var rows []trace.DeviceState
	for k := range 4000 {
		for gpu := range int32(2) {
			row := trace.DeviceState{GPU: gpu, TimestampNs: 1_000_000_000 + int64(k)*100_000_000}
			row.InstantPowerMw = i64(int64(100_000 + r.IntN(300_000))) // always
			if gpu == 1 || k < 2500 || r.IntN(4) > 0 {                 // GPU 0 starts missing some
				row.AveragePowerMw = i64(int64(90_000 + r.IntN(300_000)))
			}
			if k != 17 { // one missing value early
				row.TemperatureC = i32(int32(30 + r.IntN(50)))
			}
			if k%2 == 0 { // every other row
				row.SMClockMHz = i32(int32(1000 + r.IntN(900)))
			}
			// GPUUtilPct never
			if k > 3000 {
				row.ClockEventReasons = i64(int64(r.IntN(8)))
			}
			rows = append(rows, row)
		}
	}
	if err := w.Add(rows...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range d.GPUs {
		var want [5]Series
		var wr, wt []int64
		for _, row := range rows {
			if int(row.GPU) != g.Index {
				continue
			}
			want[0].add(row.TimestampNs, float64(*row.InstantPowerMw)/1000)
			if row.AveragePowerMw != nil {
				want[1].add(row.TimestampNs, float64(*row.AveragePowerMw)/1000)
			}
			if row.TemperatureC != nil {
				want[2].add(row.TimestampNs, float64(*row.TemperatureC))
			}
			if row.SMClockMHz != nil {
				want[3].add(row.TimestampNs, float64(*row.SMClockMHz))
			}
			if row.ClockEventReasons != nil {
				wr, wt = append(wr, *row.ClockEventReasons), append(wt, row.TimestampNs)
			}
		}
		for k, s := range g.stateSeries() {
			if k == 5 {
				break // the reasons, below
			}
			if got := s.All(); !slices.Equal(got.T, want[k].T) || !slices.Equal(got.V, want[k].V) {
				t.Errorf("GPU %d field %d: %d samples, want %d", g.Index, k, s.Len(), want[k].Len())
			}
		}
		if rt, reasons := g.Reasons.RawRange(0, g.Reasons.Len()); !slices.Equal(reasons, wr) || !slices.Equal(rt, wt) {
			t.Errorf("GPU %d reasons: %d, want %d", g.Index, len(reasons), len(wr))
		}
	}
}
