package dcgm

import (
	"bytes"
	"errors"
	"fmt"
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

// Hand-made files in dcgmi dmon's layout (see the README.md beside them).
const testdata = "../../../testdata/imports/dcgm/"

var start = time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)

type imported struct {
	dir    string
	meta   *trace.Meta
	res    Result
	states []trace.DeviceState
	energy []trace.EnergyRead
}

func importFile(t *testing.T, file string, o Options) imported {
	t.Helper()
	run, res := importtest.Import(t, Format, []string{file}, func(w *imports.Writer) (Result, error) { return ImportFiles(w, file, o) })
	return imported{run.Dir, run.Meta, res, run.States, run.Energy}
}

var (
	writeFile = importtest.WriteFile
	warning   = importtest.Warning
)

func p64(v int64) *int64 { return &v }
func p32(v int32) *int32 { return &v }

// TestH100x2: the sample of two GPUs, -d 100, 40 samples, the header
// repeated, N/A in the first sample and dmon's closing line.
func TestH100x2(t *testing.T) {
	im := importFile(t, testdata+"dmon_h100x2.txt", Options{Interval: 100 * time.Millisecond, Start: start})
	if im.res.Samples != 40 || im.res.Rows != 80 || im.res.EnergyRows != 80 || im.res.DataLines != 80 || im.res.Skipped != 0 ||
		len(im.states) != 80 || len(im.energy) != 80 || im.res.StartFrom != StartFromOption {
		t.Fatalf("result %+v, %d states, %d energy", im.res, len(im.states), len(im.energy))
	}
	// GPU 0  69.647  512345685866  N/A  33  345  2619  0  0
	want := trace.DeviceState{GPU: 0, TimestampNs: start.UnixNano(), AveragePowerMw: p64(69647), TemperatureC: p32(33),
		SMClockMHz: p32(345), MemClockMHz: p32(2619), GPUUtilPct: p32(0), MemUtilPct: p32(0)}
	if !importtest.SameState(im.states[0], want) {
		t.Errorf("first row %+v", im.states[0])
	}
	// GPU 1, second sample: 71.111  498765446331  71.231
	var g1 []trace.DeviceState
	for _, s := range im.states {
		if s.GPU == 1 {
			g1 = append(g1, s)
		}
	}
	if s := g1[1]; s.TimestampNs != start.Add(100*time.Millisecond).UnixNano() || *s.AveragePowerMw != 71111 || *s.InstantPowerMw != 71231 {
		t.Errorf("GPU 1 sample 1 %+v", s)
	}
	if last := g1[39]; last.TimestampNs != start.Add(3900*time.Millisecond).UnixNano() {
		t.Errorf("last sample at %v", time.Unix(0, last.TimestampNs).UTC())
	}
	if e := im.energy[0]; e.GPU != 0 || e.EnergyMj != 512345685866 || e.TimestampNs != start.UnixNano() {
		t.Errorf("first energy row %+v", e)
	}
	if g := im.meta.GPUs; len(g) != 2 || g[0].Name != "unknown GPU" || g[1].Index != 1 || len(g[0].Unsupported) != 0 {
		t.Errorf("gpus %+v", g)
	}
	if w := warning(im.meta, "import_absent_values", "POWINST: 2 of 80 values absent (N/A 2), stored as null in instant_power_mw"); w == nil || len(im.meta.Warnings) != 1 {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
	for _, u := range []string{"driver power samples", "events", "sample times (dcgmi dmon prints none: computed from the given interval and the start)", "GPU name (DVNAM, field 50)"} {
		if !slices.Contains(im.meta.Source.Unknown, u) {
			t.Errorf("unknown %v: want %q", im.meta.Source.Unknown, u)
		}
	}
	for _, u := range im.meta.Source.Unknown {
		if strings.Contains(u, "POWER") || strings.Contains(u, "TOTEC") || strings.HasPrefix(u, "column") {
			t.Errorf("unknown %q, though the log has it", u)
		}
	}
	n := im.meta.Source.Notes
	if !strings.HasPrefix(n["POWER"], "field 155 (DCGM_FI_DEV_POWER_USAGE) is nvmlDeviceGetPowerUsage") ||
		n["start"] != "2024-05-02T10:00:00Z (given)" || !strings.HasPrefix(n["interval"], "100ms (given)") ||
		!strings.Contains(n["columns"], "POWER (field 155, DCGM_FI_DEV_POWER_USAGE) as average_power_mw; TOTEC (field 156, DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION) as energy.energy_mj") {
		t.Errorf("notes %v", n)
	}

	// llem analyze reads the counter: its energy is the counter's rise.
	d, err := analyze.Load(im.dir)
	if err != nil {
		t.Fatal(err)
	}
	rr := analyze.New(d, "dmon", analyze.DefaultSettings()).Result
	run := rr.Windows[0]
	if !run.EnergyJ.Valid() || float64(run.EnergyJ) <= 0 || !run.EnergyIntegratedJ.Valid() {
		t.Errorf("run window: energy %v J, integrated %v J", run.EnergyJ, run.EnergyIntegratedJ)
	}
}

// TestTimestamped: lines prefixed by ts carry their own times.
func TestTimestamped(t *testing.T) {
	im := importFile(t, testdata+"dmon_timestamped.txt", Options{})
	if im.res.StartFrom != "timestamps" || im.res.Rows != 24 || im.res.Samples != 12 {
		t.Fatalf("result %+v", im.res)
	}
	// 2024-05-02 10:00:00.012386 GPU 0  69.456 ...
	if s := im.states[0]; s.TimestampNs != time.Date(2024, 5, 2, 10, 0, 0, 12386000, time.UTC).UnixNano() || *s.AveragePowerMw != 69456 {
		t.Errorf("first row %+v", s)
	}
	if !slices.Contains(im.meta.Source.Unknown, "time zone") || !strings.Contains(im.meta.Source.Notes["timestamps"], "read as UTC") {
		t.Errorf("unknown %v, notes %v", im.meta.Source.Unknown, im.meta.Source.Notes)
	}
	if slices.ContainsFunc(im.meta.Source.Unknown, func(u string) bool { return strings.HasPrefix(u, "sample times") }) {
		t.Errorf("unknown %v", im.meta.Source.Unknown)
	}
	// RFC 3339 with an offset.
	f := writeFile(t, "z.txt", "2024-05-02T12:00:00.5+02:00 #Entity   POWER   \n2024-05-02T12:00:00.6+02:00 GPU 0     250.5   \n")
	im = importFile(t, f, Options{})
	if s := im.states[0]; s.TimestampNs != time.Date(2024, 5, 2, 10, 0, 0, 6e8, time.UTC).UnixNano() || *s.AveragePowerMw != 250500 {
		t.Errorf("row %+v", s)
	}
	if slices.Contains(im.meta.Source.Unknown, "time zone") {
		t.Errorf("unknown %v", im.meta.Source.Unknown)
	}
}

// TestNoInterval: without timestamps, the interval is required.
func TestNoInterval(t *testing.T) {
	file := testdata + "dmon_h100x2.txt"
	w, err := imports.Create(filepath.Join(t.TempDir(), "run"), Format, []string{file})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ImportFiles(w, file, Options{Start: start})
	if !errors.Is(err, ErrNoInterval) || !strings.Contains(err.Error(), file+" has no timestamps: give the sample interval, the -d of dcgmi dmon (40 samples") {
		t.Errorf("err = %v", err)
	}
}

// TestModTimeStart: without --start, the modification time is the last sample's.
func TestModTimeStart(t *testing.T) {
	b, err := os.ReadFile(testdata + "dmon_h100x2.txt")
	if err != nil {
		t.Fatal(err)
	}
	f := writeFile(t, "dmon.txt", string(b))
	mtime := time.Date(2024, 5, 2, 10, 0, 3, 900e6, time.UTC)
	if err := os.Chtimes(f, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	im := importFile(t, f, Options{Interval: 100 * time.Millisecond})
	if im.res.StartFrom != "modification time" || im.states[0].TimestampNs != start.UnixNano() {
		t.Errorf("start from %s at %v", im.res.StartFrom, time.Unix(0, im.states[0].TimestampNs).UTC())
	}
	if warning(im.meta, "import_assumed_start", "give the start time") == nil || !strings.HasPrefix(im.meta.Source.Notes["start"], "assumed: the file's modification time 2024-05-02T10:00:03.9Z") {
		t.Errorf("warnings %+v, notes %v", im.meta.Warnings, im.meta.Source.Notes)
	}
}

func TestBadLinesSkipped(t *testing.T) {
	im := importFile(t, testdata+"dmon_bad_lines.txt", Options{Interval: time.Second, Start: start})
	if im.res.Rows != 5 || im.res.DataLines != 10 || im.res.Skipped != 4 || im.res.Others != 1 || im.res.Samples != 4 {
		t.Fatalf("result %+v", im.res)
	}
	want := []string{
		`dmon_bad_lines.txt:6: POWER: "7x.456" is not a number`,
		`dmon_bad_lines.txt:8: "Error getting values information. Return -15: Host engine is not valid any longer" does not begin with an entity such as "GPU 0"`,
		`dmon_bad_lines.txt:10: 2 values, the header has 4 fields`,
		`dmon_bad_lines.txt:12: 2 values, the header has 4 fields`,
	}
	for i, r := range im.res.Reasons {
		if !strings.HasSuffix(r.File, "dmon_bad_lines.txt") || !strings.Contains(r.Error(), want[i]) {
			t.Errorf("reason %d: %q, want %q", i, r.Error(), want[i])
		}
	}
	// The tab-separated line 9 (GPU 0, sample 2) is read.
	found := false
	for _, s := range im.states {
		if s.GPU == 0 && s.TimestampNs == start.Add(2*time.Second).UnixNano() && *s.AveragePowerMw == 69261 {
			found = true
		}
	}
	if !found {
		t.Errorf("line 9 not read: %+v", im.states)
	}
	if w := warning(im.meta, "import_skipped_lines", "4 of 10 data lines could not be read"); w == nil || im.meta.Source.Notes["skipped_lines"] != "4" {
		t.Errorf("warnings %+v", im.meta.Warnings)
	}
	if n := im.meta.Source.Notes["other_entities"]; n != "1 row(s) of entities other than GPUs (GPU-I 1) were read and not imported" {
		t.Errorf("other_entities %q", n)
	}
}

// line lays out a row as dcgmi dmon 4.x does: the entity in 16 columns,
// each value in its field's width + 8.
func line(first string, widths []int, vals ...string) string {
	s := fmt.Sprintf("%-16s", first)
	for i, v := range vals {
		s += fmt.Sprintf("%-*s", widths[i]+8, v)
	}
	return s
}

// TestColumns: values are cut at the header's columns, so a GPU name with
// spaces and an empty value (a field the entity lacks) are read right.
func TestColumns(t *testing.T) {
	wd := []int{20, 40, 10, 5, 7} // DVNAM, UUID#, POWER, PSTAT, a field llem does not know
	output := func(name string) string {
		return strings.Join([]string{
			line("#Entity", wd, "DVNAM", "UUID#", "POWER", "PSTAT", "NVLTX"),
			line("ID", wd, "", "", " W", "", ""),
			line("GPU 0", wd, name, "GPU-5d1f3c2a-8b4e-4f10-9a6d-2c7e1b0f4a93", "250.125", "0", "17"),
			line("GPU 0 LINK 3", wd, "", "", "", "", "17"),
			line("GPU 1", wd, "NVIDIA H100 80GB ...", "GPU-77", "", "8", "0"),
		}, "\n") + "\n"
	}
	// dmon cuts a value longer than its field's width (20 for the name) to "...".
	lg, err := Parse(strings.NewReader(output("NVIDIA H100 80GB ...")), "cols.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(lg.Rows) != 2 || lg.Skipped != 0 || lg.Others["GPU LINK"] != 1 || lg.Samples != 1 {
		t.Fatalf("%d rows, %d skipped (%v), others %v, %d samples", len(lg.Rows), lg.Skipped, lg.Reasons, lg.Others, lg.Samples)
	}
	r0, r1 := lg.Rows[0], lg.Rows[1]
	if *r0.State.AveragePowerMw != 250125 || *r0.State.PState != 0 || r1.State.AveragePowerMw != nil || *r1.State.PState != 8 {
		t.Errorf("rows %+v %+v", r0.State, r1.State)
	}
	g := lg.GPUs
	if g[0].Name != "" || g[0].UUID != "GPU-5d1f3c2a-8b4e-4f10-9a6d-2c7e1b0f4a93" || g[1].UUID != "GPU-77" ||
		g[0].Absent["DVNAM"]["(truncated)"] != 1 || g[1].Absent["POWER"]["(empty)"] != 1 {
		t.Errorf("gpus %+v %+v", g[0], g[1])
	}
	if lg, err = Parse(strings.NewReader(output("NVIDIA H100 PCIe")), "cols.txt"); err != nil || lg.GPUs[0].Name != "NVIDIA H100 PCIe" {
		t.Errorf("name: %v %+v", err, lg.GPUs[0])
	}
}

// TestFileErrors: a file llem cannot import is an error naming the file,
// the line and what was expected.
func TestFileErrors(t *testing.T) {
	hdr := "#Entity   POWER   TMPTR\nID        W       C\n"
	for _, tc := range []struct{ file, content, want string }{
		{"empty.txt", "", "empty.txt:1: empty file: expected dcgmi dmon's output"},
		{"rows.txt", "GPU 0   250.1   33\n", "rows.txt:1: a row before any header line"},
		{"csv.txt", "timestamp, power.draw [W]\n", `csv.txt:1: not dcgmi dmon output: "timestamp, power.draw [W]"`},
		{"unknown.txt", "#Entity   NVLTX   DVNAM\n", `unknown.txt:1: no column that llem stores per sample in the header "#Entity   NVLTX   DVNAM"`},
		{"header.txt", hdr, "header.txt:3: no data after the header (line 1)"},
		{"others.txt", hdr + "Switch 0  N/A  N/A\n", "others.txt: no GPU line: the 1 lines describe other entities (Switch 1)"},
		{"bad.txt", hdr + "GPU 0  abc  33\n", `bad.txt: none of the 1 data lines could be read; the first: bad.txt:3: POWER: "abc" is not a number`},
		{"badts.txt", hdr + "2024-13-02 10:00:00 GPU 0  250.1  33\n", `badts.txt:3: the line begins with "2024-13-02", not a timestamp`},
	} {
		_, err := Parse(strings.NewReader(tc.content), tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.file, err, tc.want)
		}
	}
	// Some lines with a timestamp, some without: the latter are skipped.
	lg, err := Parse(strings.NewReader("2024-05-02 10:00:00.1 "+hdr+"2024-05-02 10:00:00.2 GPU 0  250.1  33\nGPU 0  250.1  33\n"), "mixed.txt")
	if err != nil || len(lg.Rows) != 1 || lg.Skipped != 1 ||
		lg.Reasons[0].Error() != "mixed.txt:4: some lines begin with a timestamp and others do not" {
		t.Errorf("mixed: %v %+v", err, lg)
	}
}

// TestReproducible: importing the same file with the same options twice
// gives identical bytes.
func TestReproducible(t *testing.T) {
	var trees []map[string][]byte
	for range 2 {
		im := importFile(t, testdata+"dmon_h100x2.txt", Options{Interval: 100 * time.Millisecond, Start: start})
		trees = append(trees, importtest.Tree(t, im.dir))
	}
	if len(trees[0]) != 3 { // meta.json, device_state and energy
		t.Errorf("%d files", len(trees[0]))
	}
	for name, a := range trees[0] {
		if !bytes.Equal(a, trees[1][name]) {
			t.Errorf("%s differs between two imports of the same file", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"dmon_h100x2.txt", "dmon_timestamped.txt", "dmon_bad_lines.txt"} {
		b, err := os.ReadFile(testdata + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 1024)])
	}
	f.Add([]byte("#Entity POWER PSTAT DVCCTR\nGPU 0 1.5 32 18446744073709551615\nGPU 0 LINK 1 2 3 4\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		lg, err := Parse(bytes.NewReader(data), "fuzz.txt")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.txt") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		others := 0
		for _, n := range lg.Others {
			others += n
		}
		if len(lg.Rows) == 0 || lg.Skipped+len(lg.Rows) > lg.DataLines || len(lg.Reasons) > MaxReasons || lg.Samples < 1 {
			t.Errorf("%d rows, %d skipped, %d data lines, %d reasons, %d samples", len(lg.Rows), lg.Skipped, lg.DataLines, len(lg.Reasons), lg.Samples)
		}
		for _, r := range lg.Rows {
			if r.Sample < 0 || r.Sample >= lg.Samples || r.GPU < 0 {
				t.Fatalf("row of line %d: sample %d of %d, GPU %d", r.Line, r.Sample, lg.Samples, r.GPU)
			}
		}
	})
}
