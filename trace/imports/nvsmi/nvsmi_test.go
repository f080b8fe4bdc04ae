package nvsmi

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/trace"
	"github.com/llem/llem/trace/imports"
	"github.com/llem/llem/trace/imports/importtest"
)

const (
	testdata = "../../../testdata/imports/"
	// The V100 log is kept once in the repository, beside the sensor
	// tests that use it too (see its README.md for provenance).
	v100File = "../../../analyze/sensor/testdata/pwr_update_freq_V100_gpudata.csv"
)

type imported struct {
	dir    string
	meta   *trace.Meta
	res    Result
	states []trace.DeviceState
}

// importFiles imports files into a new run and reads it back.
func importFiles(t *testing.T, files ...string) imported {
	t.Helper()
	run, res := importtest.Import(t, Format, files, func(w *imports.Writer) (Result, error) { return ImportFiles(w, files) })
	return imported{run.Dir, run.Meta, res, run.States}
}

var (
	writeCSV = importtest.WriteFile
	warning  = importtest.Warning
)

// TestV100UpdatePeriod imports the study's real 100 Hz log of a V100 and
// checks that llem analyze finds the 20 ms power update period the study
// published, from power.draw (stored as average_power_mw).
func TestV100UpdatePeriod(t *testing.T) {
	im := importFiles(t, v100File)
	if im.res.Rows != 20542 || im.res.Skipped != 0 || len(im.states) != 20542 {
		t.Fatalf("rows %d skipped %d stored %d, want 20542, 0, 20542", im.res.Rows, im.res.Skipped, len(im.states))
	}
	first := im.states[0]
	// 2023/07/30 18:26:14.684, 0, P0, 57, 1530, 81.46, 81.46
	if first.TimestampNs != time.Date(2023, 7, 30, 18, 26, 14, 684e6, time.UTC).UnixNano() ||
		*first.GPUUtilPct != 0 || *first.PState != 0 || *first.TemperatureC != 57 || *first.SMClockMHz != 1530 ||
		*first.AveragePowerMw != 81460 || *first.InstantPowerMw != 81460 {
		t.Errorf("first row %+v", first)
	}
	d, err := analyze.Load(im.dir)
	if err != nil {
		t.Fatal(err)
	}
	rr := analyze.New(d, "v100", analyze.DefaultSettings()).Result
	if got := float64(rr.Sensor.AveragePowerUpdatePeriodMs); !(math.Abs(got-20) <= 1) {
		t.Errorf("power.draw update period %.2f ms, want 20 +/- 1 (Yang et al., V100-SXM2)", got)
	}
	if got := float64(rr.Sensor.InstantPowerUpdatePeriodMs); !(math.Abs(got-20) <= 1) {
		t.Errorf("power.draw.instant update period %.2f ms, want 20 +/- 1", got)
	}
}

// TestMLPerfUnknownError: the SM clock column of this real log reads
// "[Unknown Error]" on every line; it must be absent, and counted.
func TestMLPerfUnknownError(t *testing.T) {
	im := importFiles(t, testdata+"MLPerf_data.csv")
	const n = 12792
	if im.res.Rows != n || im.res.Skipped != 0 {
		t.Fatalf("rows %d skipped %d", im.res.Rows, im.res.Skipped)
	}
	for _, s := range im.states {
		if s.SMClockMHz != nil || s.AveragePowerMw == nil || s.TemperatureC == nil {
			t.Fatalf("row %+v: want no SM clock, power and temperature", s)
		}
	}
	// 2023/12/18 17:01:44.300, 46.19 W, 32, [Unknown Error]
	if s := im.states[0]; *s.AveragePowerMw != 46190 || *s.TemperatureC != 32 {
		t.Errorf("first row %+v", s)
	}
	if w := warning(im.meta, "import_absent_values", "clocks.current.sm [MHz]: 12792 of 12792 values absent ([Unknown Error] 12792)"); w == nil {
		t.Errorf("no count of the absent SM clock in %+v", im.meta.Warnings)
	}
	if g := im.meta.GPUs; len(g) != 1 || g[0].Errors["clocks.current.sm [Unknown Error]"] != n || len(g[0].Unsupported) != 0 {
		t.Errorf("gpus %+v: want the errors counted, not marked unsupported", g)
	}
	if !slices.Contains(im.meta.Source.Unknown, "instant power (power.draw.instant)") ||
		!slices.Contains(im.meta.Source.Unknown, "energy counter") || !slices.Contains(im.meta.Source.Unknown, "time zone") {
		t.Errorf("unknown %v", im.meta.Source.Unknown)
	}
	if im.meta.Source.Notes["time_zone"] == "" || im.meta.Source.Notes["power.draw"] == "" {
		t.Errorf("notes %v", im.meta.Source.Notes)
	}
}

// TestUnitsNoUnitsReordered: csv, csv,nounits and a reordered header give
// the same rows and GPU description.
func TestUnitsNoUnitsReordered(t *testing.T) {
	units := importFiles(t, testdata+"units.csv")
	s := units.states[0]
	want := trace.DeviceState{
		TimestampNs:    time.Date(2024, 5, 2, 10, 0, 0, 12e6, time.UTC).UnixNano(),
		AveragePowerMw: p64(71520), InstantPowerMw: p64(70980), TemperatureC: p32(31), SMClockMHz: p32(345), MemClockMHz: p32(2619),
		PState: p32(0), GPUUtilPct: p32(0), MemUtilPct: p32(0), MemoryUsedBytes: p64(1 << 20), ClockEventReasons: p64(1),
	}
	if !importtest.SameState(s, want) {
		t.Errorf("first row\n got %s\nwant %s", importtest.Show(s), importtest.Show(want))
	}
	if r := units.states[3].ClockEventReasons; r == nil || *r != 4 {
		t.Errorf("last row's clock event reasons %v, want 0x4", r)
	}
	g := units.meta.GPUs
	if len(g) != 1 || g[0].Name != "NVIDIA H100 80GB HBM3" || g[0].UUID != "GPU-5d1f3c2a-8b4e-4f10-9a6d-2c7e1b0f4a93" ||
		g[0].DriverVersion != "550.54.15" || g[0].PersistenceMode == nil || !*g[0].PersistenceMode ||
		g[0].PowerLimitMw == nil || *g[0].PowerLimitMw != 700000 || g[0].Processes == nil {
		t.Errorf("gpus %+v", g)
	}
	if len(units.meta.Warnings) != 0 {
		t.Errorf("warnings %+v", units.meta.Warnings)
	}
	for _, u := range units.meta.Source.Unknown {
		if strings.HasPrefix(u, "column") || strings.Contains(u, "(power.draw") || strings.Contains(u, "persistence") {
			t.Errorf("unknown %q, though the log has it", u)
		}
	}
	for _, other := range []string{"nounits.csv", "reordered.csv"} {
		im := importFiles(t, testdata+other)
		if len(im.states) != len(units.states) {
			t.Fatalf("%s: %d rows, want %d", other, len(im.states), len(units.states))
		}
		for i := range im.states {
			if !importtest.SameState(im.states[i], units.states[i]) {
				t.Errorf("%s row %d\n got %s\nwant %s", other, i, importtest.Show(im.states[i]), importtest.Show(units.states[i]))
			}
		}
		a, b := im.meta.GPUs[0], g[0]
		if a.Name != b.Name || a.UUID != b.UUID || a.DriverVersion != b.DriverVersion || *a.PowerLimitMw != *b.PowerLimitMw || *a.PersistenceMode != *b.PersistenceMode {
			t.Errorf("%s: gpu %+v, want %+v", other, a, b)
		}
	}
}

func TestSeveralGPUs(t *testing.T) {
	im := importFiles(t, testdata+"multi_gpu.csv")
	if len(im.meta.GPUs) != 2 || im.meta.GPUs[1].Index != 1 || im.meta.GPUs[1].Name != "NVIDIA H100 80GB HBM3" {
		t.Fatalf("gpus %+v", im.meta.GPUs)
	}
	per := map[int32][]int64{}
	for _, s := range im.states {
		per[s.GPU] = append(per[s.GPU], *s.AveragePowerMw)
	}
	if !slices.Equal(per[0], []int64{71520, 71600, 104310}) || !slices.Equal(per[1], []int64{69100, 69120, 69120}) {
		t.Errorf("power per GPU %v", per)
	}
	if !slices.Contains(im.meta.Source.Unknown, `column "fan.speed [%]": not a field llem imports`) {
		t.Errorf("unknown %v: want the fan.speed column named", im.meta.Source.Unknown)
	}
	if len(im.meta.Warnings) != 0 {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
}

// TestGPUsByUUIDAcrossFiles: one log per GPU with uuid but no index gives
// two GPUs; without any identity, lines sharing timestamps are flagged.
func TestGPUsByUUIDAcrossFiles(t *testing.T) {
	a := writeCSV(t, "a.csv", "timestamp, uuid, power.draw [W]\n2024/05/02 10:00:00.000, GPU-a, 70.00 W\n2024/05/02 10:00:00.100, GPU-a, 71.00 W\n")
	b := writeCSV(t, "b.csv", "timestamp, uuid, power.draw [W]\n2024/05/02 10:00:00.000, GPU-b, 60.00 W\n2024/05/02 10:00:00.100, GPU-b, 61.00 W\n")
	c := writeCSV(t, "c.csv", "timestamp, index, uuid, power.draw [W]\n2024/05/02 10:00:00.200, 0, GPU-b, 62.00 W\n")
	im := importFiles(t, a, b, c)
	if len(im.meta.GPUs) != 2 || im.meta.GPUs[0].UUID != "GPU-b" || im.meta.GPUs[1].UUID != "GPU-a" {
		t.Fatalf("gpus %+v: want GPU-b as 0 (from c.csv's index) and GPU-a as 1", im.meta.GPUs)
	}
	if len(im.meta.Warnings) != 0 {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}

	mixed := writeCSV(t, "mixed.csv", "timestamp, power.draw [W]\n2024/05/02 10:00:00.000, 70.00 W\n2024/05/02 10:00:00.000, 60.00 W\n")
	im = importFiles(t, mixed)
	if w := warning(im.meta, "import_repeated_timestamps", "no index, uuid or pci.bus_id column"); w == nil || w.GPU == nil || *w.GPU != 0 {
		t.Errorf("warnings %+v: want repeated timestamps flagged", im.meta.Warnings)
	}
}

func TestBrokenValues(t *testing.T) {
	im := importFiles(t, testdata+"broken_values.csv")
	if len(im.states) != 3 || im.res.Skipped != 0 {
		t.Fatalf("%d rows, %d skipped: placeholders must not drop lines", len(im.states), im.res.Skipped)
	}
	s := im.states[1]
	if s.AveragePowerMw != nil || s.InstantPowerMw != nil || s.SMClockMHz != nil || s.MemoryUsedBytes != nil || s.GPUUtilPct != nil {
		t.Errorf("row 2 %s: want every placeholder absent", importtest.Show(s))
	}
	if p := im.states[0].AveragePowerMw; p == nil || *p != 46190 {
		t.Errorf("row 1 power %v", p)
	}
	for _, want := range []string{
		"clocks.current.sm [MHz]: 3 of 3 values absent ([Unknown Error] 3)",
		"power.draw [W]: 1 of 3 values absent ([Unknown Error] 1)",
		"power.draw.instant [W]: 3 of 3 values absent ([N/A] 3)",
		"memory.used [MiB]: 1 of 3 values absent ([Insufficient Permissions] 1)",
		"utilization.gpu [%]: 3 of 3 values absent ([Not Supported] 3)",
		"persistence_mode: 3 of 3 values absent ([Insufficient Permissions] 3)",
	} {
		if warning(im.meta, "import_absent_values", want) == nil {
			t.Errorf("no warning %q in %+v", want, im.meta.Warnings)
		}
	}
	g := im.meta.GPUs[0]
	if !slices.Equal(g.Unsupported, []string{"instant_power_mw", "gpu_util_pct"}) {
		t.Errorf("unsupported %v", g.Unsupported)
	}
	if g.Errors["clocks.current.sm [Unknown Error]"] != 3 || g.Errors["persistence_mode [Insufficient Permissions]"] != 3 || g.PersistenceMode != nil {
		t.Errorf("gpu %+v", g)
	}
}

func TestBadLinesSkipped(t *testing.T) {
	im := importFiles(t, testdata+"bad_lines.csv")
	if len(im.states) != 2 || im.res.Skipped != 5 || im.res.DataLines != 7 {
		t.Fatalf("%d rows, %d of %d lines skipped; want 2 rows, 5 of 7 (the repeated header is not data)",
			len(im.states), im.res.Skipped, im.res.DataLines)
	}
	want := []string{
		"bad_lines.csv:3: 2 fields, the header has 3",
		`bad_lines.csv:4: power.draw [W]: "4x.19 W" is not a number`,
		`bad_lines.csv:5: timestamp "yesterday" is not of the form`,
		"bad_lines.csv:6: 4 fields, the header has 3",
		"bad_lines.csv:10: 1 field, the header has 3",
	}
	for i, r := range im.res.Reasons {
		if !strings.HasSuffix(r.File, "bad_lines.csv") || !strings.Contains(r.Error(), want[i]) {
			t.Errorf("reason %d: %q, want %q", i, r.Error(), want[i])
		}
	}
	w := warning(im.meta, "import_skipped_lines", "5 of 7 data lines could not be read")
	if w == nil || !strings.Contains(w.Message, "bad_lines.csv:4:") {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
	if im.meta.Source.Notes["skipped_lines"] != "5" {
		t.Errorf("notes %v", im.meta.Source.Notes)
	}
}

// TestFileErrors: a file llem cannot import is an error naming the file,
// the line and what was expected.
func TestFileErrors(t *testing.T) {
	for _, tc := range []struct{ file, content, want string }{
		{"empty.csv", "", "empty.csv:1: empty file: expected a header line"},
		{"blank.csv", "\n  \n", "blank.csv:1: empty file"},
		{"header_only.csv", "timestamp, power.draw [W]\n", "header_only.csv:2: no data after the header (line 1): expected lines such as"},
		{"no_timestamp.csv", "index, power.draw [W], temperature.gpu\n0, 46.19 W, 32\n", "no_timestamp.csv:1: no timestamp column in the header"},
		{"noheader.csv", "2023/12/18 17:01:44.300, 46.19 W\n", "noheader.csv:1: no header line (this line is data)"},
		{"other.csv", "a,b,c\n1,2,3\n", `other.csv:1: not an nvidia-smi --query-gpu CSV header: "a,b,c"`},
		{"ids.csv", "timestamp, name\n2023/12/18 17:01:44.300, V100\n", "ids.csv:1: no column that llem stores per sample"},
		{"all_bad.csv", "timestamp, power.draw [W]\n2023/12/18 17:01:44.300\nnoon, 3 W\n",
			`all_bad.csv: none of the 2 data lines could be read; the first: all_bad.csv:2: 1 field, the header has 2`},
	} {
		_, err := Parse(strings.NewReader(tc.content), tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.file, err, tc.want)
		}
	}
	// The shipped examples, through the whole import.
	for file, want := range map[string]string{
		"empty.csv":        "empty.csv:1: empty file",
		"header_only.csv":  "header_only.csv:2: no data after the header",
		"no_timestamp.csv": "no_timestamp.csv:1: no timestamp column",
	} {
		path := testdata + file
		w, err := imports.Create(filepath.Join(t.TempDir(), "run"), Format, []string{path})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ImportFiles(w, []string{path}); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want %q with the path", file, err, want)
		}
	}
}

func TestValues(t *testing.T) {
	lg, err := Parse(strings.NewReader("\xef\xbb\xbftimestamp, power.draw [mW], memory.used [GiB], clocks.sm [GHz], pstate, power.draw.average [W], fan.speed [%], power.limit [kW],\n"+
		"2023-12-18 17:01:44, 1500, 2, 1.5, p8, 7 W, 30 %, 1,\n"+
		"2023/12/18 17:01:44.123456789, 1500 mW, 2 GiB, 1.5 GHz, P12, [N/A], 30 %, 1,\n"+
		"2023/12/18 17:01:45.1, -3, 2, 1.5, P-1, 7, 30 %, 1\n"), "v.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(lg.Rows) != 2 || lg.Skipped != 1 {
		t.Fatalf("%d rows, %d skipped (%v)", len(lg.Rows), lg.Skipped, lg.Reasons)
	}
	for i, s := range lg.Rows {
		if *s.AveragePowerMw != 1500 || *s.MemoryUsedBytes != 2<<30 || *s.SMClockMHz != 1500 {
			t.Errorf("row %d %s", i, importtest.Show(s))
		}
	}
	if *lg.Rows[0].PState != 8 || *lg.Rows[1].PState != 12 {
		t.Error("pstate")
	}
	if got := lg.Rows[1].TimestampNs - lg.Rows[0].TimestampNs; got != 123456789 {
		t.Errorf("fraction of a second: %d ns", got)
	}
	whys := map[string]string{}
	for _, c := range lg.Columns {
		whys[c.Header] = c.Why
	}
	if !strings.Contains(whys["power.draw.average [W]"], `the same reading as column "power.draw [mW]"`) ||
		whys["power.limit [kW]"] != "" || whys["fan.speed [%]"] != "not a field llem imports" {
		t.Errorf("columns %v", whys)
	}
}

// TestReproducible: importing the same file twice gives identical bytes.
func TestReproducible(t *testing.T) {
	file := testdata + "MLPerf_data.csv"
	var trees []map[string][]byte
	for range 2 {
		dir := filepath.Join(t.TempDir(), "run")
		w, err := imports.Create(dir, Format, []string{file})
		if err != nil {
			t.Fatal(err)
		}
		w.SegmentRows = 5000 // several segments
		if _, err := ImportFiles(w, []string{file}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		trees = append(trees, importtest.Tree(t, dir))
	}
	if len(trees[0]) != 5 { // meta.json, 3 segments and their manifest
		t.Errorf("%d files", len(trees[0]))
	}
	for name, a := range trees[0] {
		if !bytes.Equal(a, trees[1][name]) {
			t.Errorf("%s differs between two imports of the same file", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"units.csv", "nounits.csv", "multi_gpu.csv", "broken_values.csv", "bad_lines.csv", "no_timestamp.csv"} {
		b, err := os.ReadFile(testdata + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("timestamp,clocks_event_reasons.active,pstate,index\n2023/01/02 03:04:05.6,0xFFFFFFFFFFFFFFFF,P3,7\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		lg, err := Parse(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if len(lg.Rows) == 0 || lg.Skipped+len(lg.Rows) != lg.DataLines || len(lg.Reasons) > MaxReasons {
			t.Errorf("%d rows, %d skipped, %d data lines, %d reasons", len(lg.Rows), lg.Skipped, lg.DataLines, len(lg.Reasons))
		}
		for k, r := range lg.Rows {
			if r.GPU < 0 || int(r.GPU) >= len(lg.GPUs) {
				t.Fatalf("row of line %d names GPU %d of %d", lg.Lines[k], r.GPU, len(lg.GPUs))
			}
		}
	})
}

func p64(v int64) *int64 { return &v }
func p32(v int32) *int32 { return &v }
