package trace

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyRun copies a shipped run into a temporary directory.
func copyRun(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("..", "testdata", "runs", name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func problemCodes(rep *CheckReport) []string {
	var codes []string
	for _, p := range rep.Problems {
		codes = append(codes, p.Code)
	}
	return codes
}

func TestCheckShippedRunsAreIntact(t *testing.T) {
	runs, _ := filepath.Glob(filepath.Join("..", "testdata", "runs", "h100-*"))
	for _, dir := range runs {
		rep, err := Check(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Errorf("%s: %+v", dir, rep)
		}
		for _, tc := range rep.Tables {
			if tc.Segments == 0 && tc.MetaRows == nil {
				continue // a table the run does not have (sim_truth)
			}
			if tc.Verified != 0 || tc.Validated != tc.Segments || tc.MetaRows == nil || *tc.MetaRows != tc.Rows {
				t.Errorf("%s: %+v: want every segment validated (format 1.0) and meta.json's row count", dir, tc)
			}
		}
	}
}

func TestCheckVerifiesChecksums(t *testing.T) {
	dir := threeSegments(t)
	rep, err := Check(dir)
	if err != nil || !rep.OK() {
		t.Fatalf("%+v, %v", rep, err)
	}
	if tc := rep.Tables[0]; tc.Table != TableDriverPower || tc.Verified != 3 || tc.Rows != 30 {
		t.Errorf("%+v", tc)
	}
	flipByte(t, segPath(dir, TableDriverPower, 2), 10)
	if rep, err = Check(dir); err != nil || rep.OK() {
		t.Fatalf("a flipped byte passed: %+v, %v", rep, err)
	}
	if tc := rep.Tables[0]; tc.Verified != 2 || tc.Damaged != 1 || tc.Rows != 20 || tc.LostRows != 10 {
		t.Errorf("%+v", tc)
	}
	if len(rep.Gaps) != 1 || rep.Gaps[0].StartNs != 2e9 || rep.Gaps[0].EndNs != 2.9e9 {
		t.Errorf("gaps %+v", rep.Gaps)
	}
}

// A segment deleted from a run without a manifest is found by meta.json's
// counts; a truncated one by its structure, with its rows from the count.
func TestCheckCountsAgainstMeta(t *testing.T) {
	dir := copyRun(t, "h100-matmul-cycles")
	if err := os.Remove(filepath.Join(dir, TableEvents, SegmentName(2))); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, TableEnergy, SegmentName(4)), 200); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(problemCodes(rep), " "); got != "rows_mismatch segments_mismatch" {
		t.Errorf("problems %q, want the events' rows and segments short: %+v", got, rep.Problems)
	}
	energy := rep.Tables[1]
	if energy.Table != TableEnergy || energy.Damaged != 1 || energy.LostRows+energy.Rows != *energy.MetaRows || energy.LostRows == 0 {
		t.Errorf("energy %+v: want the truncated segment's rows counted from meta.json", energy)
	}
	if len(rep.Damage) != 1 || rep.Damage[0].SpanFrom != "neighbours" {
		t.Errorf("damage %+v", rep.Damage)
	}
}

func TestCheckFindsTimeGoingBack(t *testing.T) {
	dir := newTestRun(t)
	w, _ := NewTableWriter(dir, TableEnergy, "test", CompareEnergy)
	for _, ts := range []int64{10, 20, 5} { // one row per segment, the last one earlier
		w.Add(EnergyRead{GPU: 1, TimestampNs: ts})
		w.Flush()
	}
	rep, err := Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Code != ProblemTime || *rep.Problems[0].GPU != 1 ||
		!strings.Contains(rep.Problems[0].Message, SegmentName(2)) {
		t.Errorf("problems %+v", rep.Problems)
	}
}

func TestCheckWithoutReadableMeta(t *testing.T) {
	dir := threeSegments(t)
	if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte("{\n  \"run_id\": \"test\",,\n}"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.MetaError, "meta.json:2:20:") || rep.OK() {
		t.Errorf("meta error %q", rep.MetaError)
	}
	if rep.Tables[0].Verified != 3 {
		t.Errorf("the segments were not checked: %+v", rep.Tables[0])
	}
}

func TestArchiveRuns(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"2026/a", "2026/b/nested-not-searched", "2027/c"} {
		os.MkdirAll(filepath.Join(root, p), 0o755)
	}
	os.WriteFile(filepath.Join(root, "2026/a", MetaFile), []byte("{}"), 0o644)
	os.MkdirAll(filepath.Join(root, "2026/b", TableEnergy), 0o755) // meta.json lost: still a run
	os.WriteFile(filepath.Join(root, "2027/c", MetaFile), []byte("{}"), 0o644)
	runs, err := ArchiveRuns(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, "2026/a"), filepath.Join(root, "2026/b"), filepath.Join(root, "2027/c")}
	if strings.Join(runs, ",") != strings.Join(want, ",") {
		t.Errorf("runs %v, want %v", runs, want)
	}
	if _, err := ArchiveRuns(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no runs inside it") {
		t.Errorf("empty: %v", err)
	}
}
