package interop

import (
	"bytes"
	"cmp"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/report"
	"github.com/llem/llem/internal/cli"
	"github.com/llem/llem/trace"
)

// The recorded H100 runs of testdata/runs/README.md, and the docs: absolute,
// as the queries run with their directory as the working directory.
var runsDir, docsDir = abs("../../testdata/runs"), abs("../../docs")

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

var shippedRuns = []string{"h100-bs32-cycles", "h100-bs32-long", "h100-bs8-cycles", "h100-matmul-cycles"}

// docQuery is one ```sql block of the docs, marked <!-- tested: NAME -->.
type docQuery struct {
	doc, name, sql string
}

var (
	sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")
	marker   = regexp.MustCompile(`<!-- tested: ([a-z0-9-]+) -->\n$`)
)

// docQueries extracts every sql block of a doc. Each must be marked with
// the name of its expected answer, so that no query of the docs goes
// untested.
func docQueries(t *testing.T, doc string) []docQuery {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(docsDir, doc))
	if err != nil {
		t.Fatal(err)
	}
	var qs []docQuery
	for _, m := range sqlBlock.FindAllSubmatchIndex(b, -1) {
		mk := marker.FindSubmatch(b[:m[0]])
		if mk == nil {
			line := bytes.Count(b[:m[0]], []byte("\n")) + 1
			t.Errorf("%s:%d: a sql block without <!-- tested: NAME --> before it", doc, line)
			continue
		}
		qs = append(qs, docQuery{doc, string(mk[1]), string(b[m[2]:m[3]])})
	}
	if len(qs) == 0 {
		t.Fatalf("%s: no sql blocks", doc)
	}
	return qs
}

// query runs q in DuckDB with dir as the working directory (the docs'
// paths are relative) and returns its column names and rows.
func query(t *testing.T, dir, q string) ([]string, [][]any) {
	t.Helper()
	t.Chdir(dir)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query(q)
	if err != nil {
		t.Fatalf("DuckDB: %v\n%s", err, q)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for rs.Next() {
		cells := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range cells {
			ptrs[i] = &cells[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, cells)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return cols, rows
}

// same compares a DuckDB cell with the expected one: numbers as float64
// to a relative 1e-12 (DuckDB sums in another order), nil as null.
func same(got, want any) bool {
	num := func(v any) (float64, bool) {
		switch v := v.(type) {
		case int64:
			return float64(v), true
		case int32:
			return float64(v), true
		case int:
			return float64(v), true
		case float64:
			return v, true
		case *big.Int:
			f, _ := new(big.Float).SetInt(v).Float64()
			return f, true
		}
		return 0, false
	}
	g, gok := num(got)
	w, wok := num(want)
	if gok && wok {
		return g == w || math.Abs(g-w) <= 1e-12*math.Max(math.Abs(g), math.Abs(w))
	}
	return gok == wok && got == want
}

func checkRows(t *testing.T, q docQuery, dir string, wantCols []string, want [][]any) {
	t.Helper()
	cols, rows := query(t, dir, q.sql)
	if !slices.Equal(cols, wantCols) {
		t.Errorf("%s %s: columns %v, want %v", q.doc, q.name, cols, wantCols)
	}
	if len(rows) != len(want) {
		t.Errorf("%s %s: %d rows, want %d:\n%v\nwant %v", q.doc, q.name, len(rows), len(want), rows, want)
		return
	}
	for i := range rows {
		for j := range rows[i] {
			if j >= len(want[i]) || !same(rows[i][j], want[i][j]) {
				t.Errorf("%s %s row %d: %v\nwant %v", q.doc, q.name, i, rows[i], want[i])
				break
			}
		}
	}
}

// runsIn copies the named shipped runs into a fresh directory as
// llem-run-NAME, the docs' glob. A name ending in "+v2" is that run with
// its driver power rewritten as the recorder now writes it (format 2:
// timestamp_us, uint32 power, minute segments), so that a glob can mix
// runs of both formats, as an archive does.
func runsIn(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		src, v2 := strings.CutSuffix(n, "+v2")
		to := filepath.Join(dir, "llem-run-"+strings.ReplaceAll(n, "+", "-"))
		if err := os.CopyFS(to, os.DirFS(filepath.Join(runsDir, src))); err != nil {
			t.Fatal(err)
		}
		if v2 {
			toFormat2(t, to)
		}
	}
	return dir
}

// toFormat2 rewrites a run's driver_power table with the current writer,
// flushing every 5 s of samples as the recorder does.
func toFormat2(t *testing.T, dir string) {
	t.Helper()
	r, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := trace.ReadTable[trace.DriverPowerSample](r, trace.TableDriverPower)
	if err != nil || len(rows) == 0 {
		t.Fatalf("%s: %d driver samples, %v", dir, len(rows), err)
	}
	slices.SortFunc(rows, func(a, b trace.DriverPowerSample) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	if err := os.RemoveAll(filepath.Join(dir, trace.TableDriverPower)); err != nil {
		t.Fatal(err)
	}
	w, err := trace.NewTableWriter(dir, trace.TableDriverPower, r.Meta.RunID, trace.CompareDriverPower)
	if err != nil {
		t.Fatal(err)
	}
	w.SetGrow(trace.DriverPowerSegmentSpan)
	next := rows[0].TimestampNs + 5e9
	for _, s := range rows {
		if s.TimestampNs >= next {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			next += 5e9
		}
		if err := w.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r.Meta.SchemaVersion = trace.SchemaVersion
	r.Meta.Recorder.Segments[trace.TableDriverPower] = w.Segments()
	if err := trace.WriteMeta(dir, r.Meta); err != nil {
		t.Fatal(err)
	}
}

// The expected answers of the trace queries, from llem's own reader over
// each run's tables, keyed by run and GPU.
func traceAnswers(t *testing.T, dir string) map[string]func() ([]string, [][]any) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "llem-run-*"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no runs in %s", dir)
	}
	open := func(m string) *trace.Run {
		r, err := trace.Open(m)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	powerSpan := func() ([]string, [][]any) {
		var want [][]any
		for _, m := range matches {
			rows, err := trace.ReadTable[trace.DriverPowerSample](open(m), trace.TableDriverPower)
			if err != nil {
				t.Fatal(err)
			}
			n, lo, hi := map[int32]int64{}, map[int32]int64{}, map[int32]int64{}
			for _, s := range rows {
				if n[s.GPU] == 0 || s.TimestampNs < lo[s.GPU] {
					lo[s.GPU] = s.TimestampNs
				}
				hi[s.GPU] = max(hi[s.GPU], s.TimestampNs)
				n[s.GPU]++
			}
			for _, g := range sortedKeys(n) {
				span := float64(hi[g] - lo[g])
				want = append(want, []any{filepath.Base(m), g, span / 1e9, span / float64(n[g]-1) / 1e6})
			}
		}
		return []string{"run", "gpu", "seconds", "interval_ms"}, want
	}
	return map[string]func() ([]string, [][]any){
		"trace-power": func() ([]string, [][]any) {
			var want [][]any
			for _, m := range matches {
				rows, err := trace.ReadTable[trace.DriverPowerSample](open(m), trace.TableDriverPower)
				if err != nil {
					t.Fatal(err)
				}
				n, sum := map[int32]int64{}, map[int32]int64{}
				for _, s := range rows {
					n[s.GPU]++
					sum[s.GPU] += s.DriverPowerMw
				}
				for _, g := range sortedKeys(n) {
					want = append(want, []any{filepath.Base(m), g, n[g], float64(sum[g]) / float64(n[g]) / 1000})
				}
			}
			return []string{"run", "gpu", "samples", "mean_w"}, want
		},
		"trace-power-span":       powerSpan,
		"trace-power-span-mixed": powerSpan,
		"trace-energy": func() ([]string, [][]any) {
			var want [][]any
			for _, m := range matches {
				rows, err := trace.ReadTable[trace.EnergyRead](open(m), trace.TableEnergy)
				if err != nil {
					t.Fatal(err)
				}
				byGPU := map[int32][]trace.EnergyRead{}
				for _, e := range rows {
					byGPU[e.GPU] = append(byGPU[e.GPU], e)
				}
				for _, g := range sortedKeys(byGPU) {
					reads := byGPU[g]
					slices.SortStableFunc(reads, func(a, b trace.EnergyRead) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
					var mj int64
					for i := 1; i < len(reads); i++ {
						mj += max(reads[i].EnergyMj-reads[i-1].EnergyMj, 0)
					}
					want = append(want, []any{filepath.Base(m), g, int64(len(reads)), float64(mj) / 1000})
				}
			}
			return []string{"run", "gpu", "reads", "joules"}, want
		},
		"trace-requests": func() ([]string, [][]any) {
			var want [][]any
			for _, m := range matches {
				rows, err := trace.ReadTable[trace.Event](open(m), trace.TableEvents)
				if err != nil {
					t.Fatal(err)
				}
				var n, tokens int64
				for _, e := range rows {
					if e.Kind == "request_end" && e.Source == "client" {
						n++
						if e.OutputTokens != nil {
							tokens += *e.OutputTokens
						}
					}
				}
				if n > 0 {
					want = append(want, []any{filepath.Base(m), n, tokens})
				}
			}
			return []string{"run", "requests", "output_tokens"}, want
		},
	}
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	var ks []K
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Every query of docs/trace-format.md, over one run and over a directory
// whose glob matches several (a counter's delta taken over two runs
// together was meaningless), gives llem's own answer per run and GPU.
func TestDocTraceQueries(t *testing.T) {
	qs := docQueries(t, "trace-format.md")
	for _, set := range [][]string{{"h100-bs8-cycles"}, {"h100-bs8-cycles+v2"}, append(slices.Clone(shippedRuns), "h100-bs32-long+v2")} {
		dir := runsIn(t, set...)
		answers := traceAnswers(t, dir)
		v2 := 0
		for _, n := range set {
			if strings.HasSuffix(n, "+v2") {
				v2++
			}
		}
		for _, q := range qs {
			// The time queries name their format's column: the format 2
			// one runs on format 2 runs only, the mixed one where both are
			// (DuckDB cannot bind a column no file of the glob has).
			if q.name == "trace-power-span" && v2 != len(set) || q.name == "trace-power-span-mixed" && (v2 == 0 || v2 == len(set)) {
				continue
			}
			a, ok := answers[q.name]
			if !ok {
				t.Errorf("trace-format.md: no expected answer for %q", q.name)
				continue
			}
			cols, want := a()
			// The answer must span as many runs as the glob matches
			// (but the matmul run, which sends no requests).
			runs := map[any]bool{}
			for _, w := range want {
				runs[w[0]] = true
			}
			if len(runs) < min(len(set), 3) {
				t.Fatalf("%s: expected rows of %d runs for %d", q.name, len(runs), len(set))
			}
			checkRows(t, q, dir, cols, want)
		}
	}
}

// Every query of docs/results.md over a results.parquet of the shipped
// runs written by llem analyze --parquet gives the answer of the same
// analysis's JSON.
func TestDocResultsQueries(t *testing.T) {
	dir := t.TempDir()
	var args []string
	for _, n := range shippedRuns {
		args = append(args, filepath.Join(runsDir, n))
	}
	var out, errb bytes.Buffer
	if code := cli.Main(append([]string{"llem", "analyze", "-q", "--json", "--resamples", "200", "--parquet", filepath.Join(dir, "results.parquet")}, args...),
		strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("llem analyze: exit %d: %s", code, errb.String())
	}
	var res analyze.Results
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	num := func(n analyze.Num) any {
		if !n.Valid() {
			return nil
		}
		return float64(n)
	}
	answers := map[string]func() ([]string, [][]any){
		"results-energy-per-token": func() ([]string, [][]any) {
			type row struct {
				run   string
				start float64
				cells []any
			}
			var rows []row
			for _, r := range res.Runs {
				for _, w := range r.Windows {
					if w.Measured {
						rows = append(rows, row{r.Run, w.StartS, []any{r.Run, w.Name, int64(w.Cycle),
							num(w.EnergyPerOutputTokenJ), num(w.OutputTokens), num(w.EnergyJ)}})
					}
				}
			}
			slices.SortStableFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(a.run, b.run), cmp.Compare(a.start, b.start)) })
			var want [][]any
			for _, r := range rows {
				want = append(want, r.cells)
			}
			return []string{"run", "window", "cycle", "energy_per_output_token_j", "output_tokens", "energy_j"}, want
		},
		"results-by-batch": func() ([]string, [][]any) {
			type acc struct {
				windows, n int64
				sum        float64
			}
			groups := map[string]*acc{}
			for _, r := range res.Runs {
				batch, ok := r.Labels["batch"]
				if !ok {
					batch = "\x00null"
				}
				for _, w := range r.Windows {
					if !w.Measured {
						continue
					}
					a := groups[batch]
					if a == nil {
						a = &acc{}
						groups[batch] = a
					}
					a.windows++
					if w.EnergyPerOutputTokenJ.Valid() {
						a.n++
						a.sum += float64(w.EnergyPerOutputTokenJ)
					}
				}
			}
			keys := sortedKeys(groups)
			slices.SortStableFunc(keys, func(a, b string) int {
				ai, bi := batchOrder(a), batchOrder(b)
				return cmp.Compare(ai, bi)
			})
			var want [][]any
			for _, k := range keys {
				a := groups[k]
				var batch, mean any = k, nil
				if k == "\x00null" {
					batch = nil
				}
				if a.n > 0 {
					mean = a.sum / float64(a.n)
				}
				want = append(want, []any{batch, a.windows, mean})
			}
			return []string{"batch", "windows", "mean_j_per_token"}, want
		},
	}
	// DuckDB sees the columns typed, labels as strings, in the CSV's order.
	cols, types := query(t, dir, `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM 'results.parquet')`)
	if cols[0] != "column_name" {
		t.Fatalf("DESCRIBE columns %v", cols)
	}
	got := map[string]any{}
	var names []string
	for _, r := range types {
		got[r[0].(string)] = r[1]
		names = append(names, r[0].(string))
	}
	for col, typ := range map[string]string{"run": "VARCHAR", "node": "VARCHAR", "complete": "BOOLEAN", "measured": "BOOLEAN",
		"cycle": "BIGINT", "start_ns": "BIGINT", "sensor_updates": "BIGINT", "clock_uncertainty_pct": "DOUBLE", "requests": "BIGINT", "samples": "BIGINT", "start_s": "DOUBLE", "energy_j": "DOUBLE",
		"energy_per_output_token_j": "DOUBLE", "warnings": "VARCHAR", "label:batch": "VARCHAR", "label:study": "VARCHAR"} {
		if got[col] != typ {
			t.Errorf("results.parquet column %s: %v, want %s", col, got[col], typ)
		}
	}
	if want := append(slices.Clone(report.CSVColumns), "label:batch", "label:study"); !slices.Equal(names, want) {
		t.Errorf("results.parquet columns %v\nwant %v", names, want)
	}

	qs := docQueries(t, "results.md")
	for _, q := range qs {
		a, ok := answers[q.name]
		if !ok {
			t.Errorf("results.md: no expected answer for %q", q.name)
			continue
		}
		cols, want := a()
		if len(want) < 2 {
			t.Fatalf("%s: only %d expected rows", q.name, len(want))
		}
		checkRows(t, q, dir, cols, want)
	}
	if len(qs) != len(answers) {
		t.Errorf("results.md has %d queries, the test answers %d", len(qs), len(answers))
	}
}

// batchOrder orders batch labels as numbers, a missing one last.
func batchOrder(s string) float64 {
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return math.Inf(1)
	}
	return v
}
