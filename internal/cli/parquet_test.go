package cli

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// readResultsParquet reads a --parquet file back with parquet-go: its
// column names and its rows, each cell written as CSV writes it (null:
// empty).
func readResultsParquet(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("%s does not open: %v", path, err)
	}
	var names []string
	for _, fl := range pf.Schema().Fields() {
		names = append(names, fl.Name())
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	var rows [][]string
	buf := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			cells := make([]string, len(names))
			for _, v := range row {
				switch {
				case v.IsNull():
				case v.Kind() == parquet.ByteArray:
					cells[v.Column()] = string(v.ByteArray())
				case v.Kind() == parquet.Boolean:
					cells[v.Column()] = strconv.FormatBool(v.Boolean())
				case v.Kind() == parquet.Int64:
					cells[v.Column()] = strconv.FormatInt(v.Int64(), 10)
				case v.Kind() == parquet.Double:
					cells[v.Column()] = strconv.FormatFloat(v.Double(), 'g', -1, 64)
				default:
					t.Fatalf("column %s: kind %v", names[v.Column()], v.Kind())
				}
			}
			rows = append(rows, cells)
		}
		if err != nil {
			break
		}
	}
	return names, rows
}

// --parquet writes the CSV's table, typed, beside the normal output: the
// same columns, the same rows and the same numbers as --csv and --json.
func TestAnalyzeParquet(t *testing.T) {
	out := filepath.Join(t.TempDir(), "results.parquet")
	args := []string{"--resamples", "200", bs8Run, matmulRun}
	r := runLlem(t, "", append([]string{"analyze", "-q", "--csv", "--parquet", out}, args...)...)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	want, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	names, rows := readResultsParquet(t, out)
	if strings.Join(names, ",") != strings.Join(want[0], ",") {
		t.Fatalf("columns %v\nCSV has %v", names, want[0])
	}
	if len(rows) != len(want)-1 {
		t.Fatalf("%d rows, CSV has %d", len(rows), len(want)-1)
	}
	for i, row := range rows {
		for j, cell := range row {
			if cell != want[i+1][j] {
				t.Errorf("row %d %s: Parquet %q, CSV %q", i, names[j], cell, want[i+1][j])
			}
		}
	}

	// And the JSON's numbers, window by window.
	_, res, _ := analyzeJSON(t, args...)
	idx := map[string]int{}
	for i, n := range names {
		idx[n] = i
	}
	i := 0
	for _, run := range res.Runs {
		for _, w := range run.Windows {
			row := rows[i]
			i++
			if row[idx["run"]] != run.Run || row[idx["window"]] != w.Name {
				t.Fatalf("row %d is %s %s, JSON %s %s", i, row[idx["run"]], row[idx["window"]], run.Run, w.Name)
			}
			for name, v := range map[string]float64{"energy_per_output_token_j": float64(w.EnergyPerOutputTokenJ),
				"energy_j": float64(w.EnergyJ), "mean_power_w": float64(w.MeanPowerW), "duration_s": w.DurationS} {
				got := row[idx[name]]
				if !w.EnergyPerOutputTokenJ.Valid() && name == "energy_per_output_token_j" {
					if got != "" {
						t.Errorf("%s %s: %s %q, JSON null", run.Run, w.Name, name, got)
					}
					continue
				}
				if g, err := strconv.ParseFloat(got, 64); err != nil || g != v {
					t.Errorf("%s %s: %s %q, JSON %v", run.Run, w.Name, name, got, v)
				}
			}
			if row[idx["label:batch"]] != run.Labels["batch"] {
				t.Errorf("%s: label:batch %q, JSON %q", run.Run, row[idx["label:batch"]], run.Labels["batch"])
			}
		}
	}
	if i != len(rows) {
		t.Errorf("%d rows, JSON has %d windows", len(rows), i)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A --parquet file that cannot be written fails the command, naming the
// file, and leaves an earlier file of that name as it was.
func TestAnalyzeParquetErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-dir", "results.parquet")
	r := runLlem(t, "", "analyze", "-q", "--parquet", missing, bs8Run)
	if r.code != 1 || !strings.Contains(r.stderr, "--parquet "+missing) {
		t.Errorf("unwritable --parquet: exit %d, stderr %q", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("unwritable --parquet still printed %d bytes", len(r.stdout))
	}

	// A directory in the way: the rename fails, the directory stays.
	taken := filepath.Join(dir, "taken")
	if err := os.MkdirAll(filepath.Join(taken, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = runLlem(t, "", "analyze", "-q", "--parquet", taken, bs8Run)
	if r.code != 1 || !strings.Contains(r.stderr, "--parquet "+taken) {
		t.Errorf("--parquet over a directory: exit %d, stderr %q", r.code, r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	same := filepath.Join(dir, "same")
	r = runLlem(t, "", "analyze", "-q", "--parquet", same, "--out", same, bs8Run)
	if r.code != 2 || !strings.Contains(r.stderr, "--parquet and --out name the same file") {
		t.Errorf("--parquet = --out: exit %d, stderr %q", r.code, r.stderr)
	}
}
