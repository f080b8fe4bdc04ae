package plots

import (
	"testing"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/trace"
)

// The timeline of a wall meter's run (a PTDaemon import: whole-system AC
// power at 1 Hz as the instant power field, no temperature, no clocks)
// draws the power panel alone and names its series for what it is.
func TestTimelineWallMeter(t *testing.T) {
	const origin = int64(1_800_000_000_000_000_000)
	d := &analyze.Data{Run: &trace.Run{Meta: &trace.Meta{Device: "import", Complete: true, Status: trace.StatusComplete,
		Source: &trace.SourceInfo{Format: trace.FormatPTDaemon}}}}
	g := &analyze.GPU{Index: 0}
	var inst analyze.Series
	for k := range 120 {
		inst.T, inst.V = append(inst.T, origin+int64(k)*1e9), append(inst.V, 4700+float64(k%3))
	}
	g.InstantPower = analyze.SamplesOf(inst)
	d.GPUs = []*analyze.GPU{g}
	d.Origin, d.End = origin, origin+119e9
	r := analyze.New(d, "wall", analyze.DefaultSettings())
	if got := powerSeries(r).instantText; got != "whole-system AC power" {
		t.Errorf("the wall meter's series is named %q", got)
	}
	if temp, clock := sidePanels(d); temp || clock {
		t.Errorf("panels: temperature %v, clock %v; want neither", temp, clock)
	}
	if _, err := timeline(newStyle(Single), r); err != nil {
		t.Fatal(err)
	}
	// An NVML run keeps all three panels and NVML's name.
	nv := runs(t, bs8)
	if got := powerSeries(nv[0]).instantText; got != "instant power" {
		t.Errorf("an NVML run's series is named %q", got)
	}
	if temp, clock := sidePanels(nv[0].Data); !temp || !clock {
		t.Errorf("panels of an NVML run: temperature %v, clock %v; want both", temp, clock)
	}
}
