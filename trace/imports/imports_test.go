package imports

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/trace"
)

func writeInput(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// fill adds rows out of order, over two GPUs, one of them undescribed.
func fill(w *Writer) {
	for i := int64(9); i >= 0; i-- {
		w.State(trace.DeviceState{GPU: int32(i % 2), TimestampNs: 1_000_000_000 + i*10_000_000, AveragePowerMw: ptr(100_000 + i)})
	}
	w.Events(trace.Event{TimestampNs: 1_050_000_000, GPU: trace.GPUAll, Kind: "mark", Name: "b", Source: "client"},
		trace.Event{TimestampNs: 1_010_000_000, GPU: trace.GPUAll, Kind: "mark", Name: "a", Source: "client"})
	w.SetGPUs([]trace.GPUInfo{{Index: 0, Name: "test GPU"}})
	w.Unknown("energy counter")
	w.Unknown("energy counter")
	w.Unknown("host")
	w.Note("k", "v")
	w.Warn(trace.Warning{Code: "test", Message: "a warning"})
}

func TestCreateRefusesNonEmptyDir(t *testing.T) {
	in := writeInput(t, "a.csv", "x\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Create(dir, "test", []string{in})
	if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("non-empty dir: err = %v, want a message naming it as not empty", err)
	}
	if _, err := Create(in, "test", []string{in}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as the output: err = %v", err)
	}
	if _, err := Create(t.TempDir(), "test", []string{in}); err != nil {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := Create(filepath.Join(t.TempDir(), "new"), "test", []string{in}); err != nil {
		t.Errorf("new dir: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.csv")
	if _, err := Create(filepath.Join(t.TempDir(), "new"), "test", []string{missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing input: err = %v, want it named", err)
	}
	dup := writeInput(t, "b.csv", "x\n")
	if _, err := Create(filepath.Join(t.TempDir(), "new"), "test", []string{in, dup}); err == nil || !strings.Contains(err.Error(), "same content") {
		t.Errorf("the same content twice: err = %v", err)
	}
	if _, err := Create(filepath.Join(t.TempDir(), "new"), "test", nil); err == nil {
		t.Error("no input accepted")
	}
}

func TestCloseWritesARun(t *testing.T) {
	in := writeInput(t, "a.csv", "hello\n")
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, "test", []string{in})
	if err != nil {
		t.Fatal(err)
	}
	w.LlemVersion = "v9"
	w.SegmentRows = 4
	fill(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("a second Close succeeded")
	}
	r, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Meta
	if m.SchemaVersion != trace.SchemaVersion || !m.Complete || m.Status != trace.StatusComplete || m.Device != "import:test" ||
		m.LlemVersion != "v9" || m.RunID != w.RunID() || len(m.RunID) != 16 {
		t.Errorf("meta: %+v", m)
	}
	if m.Clock.WallStartNs != 1_000_000_000 || m.Clock.TimestampUnits != TimestampUnits {
		t.Errorf("clock %+v, want the first timestamp", m.Clock)
	}
	if m.Warnings == nil || len(m.Warnings) != 1 || m.Warnings[0].Code != "test" {
		t.Errorf("warnings %+v", m.Warnings)
	}
	if len(m.GPUs) != 2 || m.GPUs[0].Name != "test GPU" || m.GPUs[1].Name != "unknown GPU" || m.GPUs[1].Index != 1 {
		t.Errorf("gpus %+v, want the described one and a minimal one for GPU 1", m.GPUs)
	}
	for _, g := range m.GPUs {
		if g.Processes == nil {
			t.Errorf("GPU %d: processes is null, want []", g.Index)
		}
	}
	if !slices.Equal(m.Settings.GPUs, []int{0, 1}) {
		t.Errorf("settings.gpus %v", m.Settings.GPUs)
	}
	src := m.Source
	if src == nil || src.Format != "test" || len(src.Files) != 1 || src.Files[0].Bytes != 6 ||
		src.Files[0].SHA256 != "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" ||
		!slices.Equal(src.Unknown, []string{"energy counter", "host"}) || src.Notes["k"] != "v" {
		t.Errorf("source %+v", src)
	}
	if m.Recorder.Rows[trace.TableState] != 10 || m.Recorder.Segments[trace.TableState] != 3 || m.Recorder.Rows[trace.TableEvents] != 2 {
		t.Errorf("rows %v segments %v", m.Recorder.Rows, m.Recorder.Segments)
	}
	for _, table := range []string{trace.TableDriverPower, trace.TableEnergy, trace.TableBadEvents} {
		if _, err := os.Stat(filepath.Join(dir, table)); !os.IsNotExist(err) {
			t.Errorf("%s: a table without rows has a folder (%v)", table, err)
		}
	}
	// Segments are slices of time; each is ordered by GPU, then time, and
	// each GPU's rows are in time order across segments.
	states, err := trace.ReadTable[trace.DeviceState](r, trace.TableState)
	if err != nil {
		t.Fatal(err)
	}
	last := map[int32]int64{}
	for _, s := range states {
		if s.TimestampNs <= last[s.GPU] {
			t.Errorf("GPU %d: %d after %d", s.GPU, s.TimestampNs, last[s.GPU])
		}
		last[s.GPU] = s.TimestampNs
		if want := 100_000 + (s.TimestampNs-1_000_000_000)/10_000_000; *s.AveragePowerMw != want {
			t.Errorf("row at %d: %d mW, want %d", s.TimestampNs, *s.AveragePowerMw, want)
		}
	}
	first := states[:4]
	if !slices.IsSortedFunc(first, trace.CompareState) || first[3].TimestampNs != 1_030_000_000 {
		t.Errorf("first segment %+v: want the first 40 ms, by GPU then time", first)
	}
	ev, err := trace.ReadTable[trace.Event](r, trace.TableEvents)
	if err != nil || len(ev) != 2 || ev[0].Name != "a" {
		t.Errorf("events %+v (%v), want them sorted by time", ev, err)
	}
	if s := w.Summary(); s.TotalRows() != 12 || s.GPUs != 2 || s.StartNs != 1_000_000_000 || s.EndNs != 1_090_000_000 {
		t.Errorf("summary %+v", s)
	}
}

// TestReproducible: the same inputs give the same bytes, whatever the
// order rows were added in.
func TestReproducible(t *testing.T) {
	in := writeInput(t, "a.csv", "hello\n")
	var trees []map[string][]byte
	for range 2 {
		dir := filepath.Join(t.TempDir(), "run")
		w, err := Create(dir, "test", []string{in})
		if err != nil {
			t.Fatal(err)
		}
		w.SegmentRows = 3
		fill(w)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		trees = append(trees, readTree(t, dir))
	}
	if len(trees[0]) < 5 {
		t.Fatalf("only %d files written", len(trees[0]))
	}
	compareTrees(t, trees[0], trees[1])
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func compareTrees(t *testing.T, a, b map[string][]byte) {
	t.Helper()
	for name, x := range a {
		if y, ok := b[name]; !ok {
			t.Errorf("%s: only in the first run", name)
		} else if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two imports of the same input", name)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			t.Errorf("%s: only in the second run", name)
		}
	}
}

func TestCloseWithNoRowsLeavesNothing(t *testing.T) {
	in := writeInput(t, "a.csv", "x\n")
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, "test", []string{in})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "no rows") {
		t.Errorf("err = %v, want no rows", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the failed import left %s (%v)", dir, err)
	}
}

func TestCloseRefusesADirFilledMeanwhile(t *testing.T) {
	in := writeInput(t, "a.csv", "x\n")
	dir := t.TempDir()
	w, err := Create(dir, "test", []string{in})
	if err != nil {
		t.Fatal(err)
	}
	fill(w)
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close wrote into a directory that is no longer empty")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "other")); err != nil || string(b) != "x" {
		t.Errorf("the other file was touched: %q %v", b, err)
	}
}

func TestMendClock(t *testing.T) {
	s := int64(time.Second)
	// Steady at 1 s, set back 100 s after the third sample, then 50 s
	// after the fifth; a repeat is not a step.
	ts := []int64{0, 1 * s, 2 * s, -98 * s, -97 * s, -147 * s, -146 * s, -146 * s}
	steps := MendClock(ts, []int{10, 11, 12, 13, 14, 15, 16, 17})
	want := []int64{0, 1 * s, 2 * s, 3 * s, 4 * s, 5 * s, 6 * s, 6 * s}
	if !slices.Equal(ts, want) {
		t.Errorf("mended %v, want %v", ts, want)
	}
	if len(steps) != 2 || steps[0].Line != 13 || steps[0].ShiftNs != 101*s || steps[1].Line != 15 || steps[1].ShiftNs != 152*s ||
		steps[1].BeforeNs != 4*s || steps[1].AfterNs != -147*s {
		t.Errorf("steps %+v", steps)
	}
}

func TestFindGaps(t *testing.T) {
	ms := int64(time.Millisecond)
	// 100 ms polls with a 450 ms hiccup (under a second: not a gap) and a
	// 2 s stop (over 5 periods and a second: a gap).
	ts := []int64{0, 100 * ms, 200 * ms, 650 * ms, 750 * ms, 2750 * ms, 2850 * ms}
	gaps := findGaps("device_state", 3, ts)
	if len(gaps) != 1 || gaps[0].StartNs != 750*ms || gaps[0].EndNs != 2750*ms || *gaps[0].GPU != 3 {
		t.Errorf("gaps %+v", gaps)
	}
	// 1 s polls: a 4 s step is 4 periods, not a gap; 6 s is.
	s := int64(time.Second)
	if gaps := findGaps("device_state", 0, []int64{0, s, 2 * s, 6 * s, 7 * s, 8 * s, 14 * s}); len(gaps) != 1 || gaps[0].StartNs != 8*s {
		t.Errorf("gaps %+v", gaps)
	}
}
