package report

import (
	"bytes"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/llem/llem/analyze"
)

// readParquet reads a results file back: its column names, in order, and
// its rows as cells (nil for null).
func readParquet(t *testing.T, data []byte) ([]string, []parquet.Type, [][]any) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("the file does not open: %v", err)
	}
	var names []string
	var types []parquet.Type
	for _, fl := range f.Schema().Fields() {
		names = append(names, fl.Name())
		types = append(types, fl.Type())
		if !fl.Optional() {
			t.Errorf("column %s is not optional", fl.Name())
		}
	}
	r := parquet.NewReader(f)
	defer r.Close()
	var out [][]any
	buf := make([]parquet.Row, 16)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			cells := make([]any, len(names))
			for _, v := range row {
				if v.IsNull() {
					continue
				}
				switch v.Kind() {
				case parquet.ByteArray:
					cells[v.Column()] = string(v.ByteArray())
				case parquet.Boolean:
					cells[v.Column()] = v.Boolean()
				case parquet.Int64:
					cells[v.Column()] = v.Int64()
				case parquet.Double:
					cells[v.Column()] = v.Double()
				default:
					t.Fatalf("column %s: kind %v", names[v.Column()], v.Kind())
				}
			}
			out = append(out, cells)
		}
		if err != nil {
			break
		}
	}
	return names, types, out
}

// The Parquet file holds the CSV's table: the same columns in the same
// order, typed, with nulls where CSV has empty cells.
func TestParquetRoundTrip(t *testing.T) {
	res := results()
	second := res.Runs[0]
	second.Run = "runs/b"
	second.Labels = map[string]string{"zeta": "z", "batch": "32"}
	second.Windows = second.Windows[:1]
	res.Runs = append(res.Runs, second)

	var b bytes.Buffer
	if err := Parquet(&b, res); err != nil {
		t.Fatal(err)
	}
	names, types, rows := readParquet(t, b.Bytes())
	want := append(slices.Clone(CSVColumns), "label:batch", "label:study", "label:zeta")
	if !slices.Equal(names, want) {
		t.Fatalf("columns %v\nwant    %v", names, want)
	}
	for i, c := range Flatten(res).Columns {
		wantKind := map[Kind]parquet.Kind{KindString: parquet.ByteArray, KindBool: parquet.Boolean, KindInt: parquet.Int64, KindFloat: parquet.Double}[c.Kind]
		if types[i].Kind() != wantKind {
			t.Errorf("column %s: %v, want %v", c.Name, types[i].Kind(), wantKind)
		}
		if c.Kind == KindString && types[i].String() != parquet.String().Type().String() {
			t.Errorf("column %s is not annotated as a string", c.Name)
		}
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	get := func(row []any, col string) any { return row[slices.Index(names, col)] }
	m, g, s := rows[0], rows[1], rows[2]
	for col, w := range map[string]any{
		"run": "runs/a", "complete": true, "window": "measure", "cycle": int64(1), "measured": true,
		"start_s": 10.0, "energy_per_output_token_j": 1.25, "output_tokens": 1600.0, "requests": int64(8),
		"samples": int64(500), "warnings": "short_window;thermal", "settings_hash": res.SettingsHash,
		"label:batch": "8", "label:study": "unit", "label:zeta": nil, "node": nil,
	} {
		if got := get(m, col); got != w {
			t.Errorf("measure %s = %#v, want %#v", col, got, w)
		}
	}
	// NaN and infinite values are null, never NaN or 0.
	for _, col := range []string{"energy_per_output_token_j", "output_tokens", "energy_j", "max_power_w", "uncertainty_pct"} {
		if got := get(g, col); got != nil {
			t.Errorf("gap %s = %#v, want null", col, got)
		}
	}
	if get(g, "requests") != int64(0) || get(g, "measured") != false || get(g, "duration_s") != 0.5 {
		t.Errorf("gap row %v", g)
	}
	if get(s, "run") != "runs/b" || get(s, "label:batch") != "32" || get(s, "label:zeta") != "z" || get(s, "label:study") != nil {
		t.Errorf("second run's labels %v", s)
	}
	// Every cell is the flattened table's, so CSV and Parquet cannot part.
	flat := Flatten(res)
	for i := range rows {
		if !slices.Equal(rows[i], flat.Rows[i]) {
			t.Errorf("row %d\n%v\nwant %v", i, rows[i], flat.Rows[i])
		}
	}

	// The same results give the same bytes.
	var again bytes.Buffer
	if err := Parquet(&again, res); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), b.Bytes()) {
		t.Error("two writes of the same results differ")
	}
}

// A job's window is followed by its nodes' rows: node set, the node's
// share, the job's other numbers null.
func TestParquetJobNodes(t *testing.T) {
	res := results()
	res.Runs[0].Windows = res.Runs[0].Windows[:1]
	res.Runs[0].Windows[0].Nodes = []analyze.NodeWindow{{Node: "n0", EnergyJ: 1200, EnergyIntegratedJ: 1205, MeanPowerW: 120},
		{Node: "n1", EnergyJ: 800, EnergyIntegratedJ: analyze.NaN, MeanPowerW: 80}}
	var b bytes.Buffer
	if err := Parquet(&b, res); err != nil {
		t.Fatal(err)
	}
	names, _, rows := readParquet(t, b.Bytes())
	if len(rows) != 3 {
		t.Fatalf("%d rows, want the job's and two nodes'", len(rows))
	}
	get := func(row []any, col string) any { return row[slices.Index(names, col)] }
	if get(rows[0], "node") != nil || get(rows[0], "energy_j") != 2000.0 {
		t.Errorf("job row %v", rows[0])
	}
	for i, w := range []struct {
		node          string
		energy, intgr any
	}{{"n0", 1200.0, 1205.0}, {"n1", 800.0, nil}} {
		r := rows[1+i]
		if get(r, "node") != w.node || get(r, "energy_j") != w.energy || get(r, "energy_integrated_j") != w.intgr ||
			get(r, "window") != "measure" || get(r, "label:batch") != "8" || get(r, "energy_per_output_token_j") != nil ||
			get(r, "requests") != nil || get(r, "warnings") != nil {
			t.Errorf("node row %d: %v", i, r)
		}
	}
}
