package report

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/llem/llem/analyze"
)

// Parquet writes the per-window table (Flatten) as one Parquet file with
// the columns in the order of CSV, typed: strings, booleans, 64-bit
// integers and doubles, every column optional so that a missing value
// (empty in CSV) is null, never NaN or 0. Labels are string columns named
// label:KEY, as in CSV.
func Parquet(w io.Writer, res *analyze.Results) error {
	t := Flatten(res)
	fields := make(orderedGroup, len(t.Columns))
	for i, c := range t.Columns {
		var n parquet.Node
		switch c.Kind {
		case KindString:
			n = parquet.String()
		case KindBool:
			n = parquet.Leaf(parquet.BooleanType)
		case KindInt:
			n = parquet.Int(64)
		case KindFloat:
			n = parquet.Leaf(parquet.DoubleType)
		default:
			return fmt.Errorf("parquet: column %s: kind %d", c.Name, c.Kind)
		}
		fields[i] = namedField{parquet.Optional(n), c.Name}
	}
	schema := parquet.NewSchema("llem_results", fields)
	pw := parquet.NewWriter(w, schema, parquet.Compression(&parquet.Zstd),
		parquet.KeyValueMetadata("llem.settings_hash", res.SettingsHash))
	rows := make([]parquet.Row, 0, len(t.Rows))
	for _, cells := range t.Rows {
		row := make(parquet.Row, len(cells))
		for i, v := range cells {
			var pv parquet.Value
			switch v := v.(type) {
			case nil:
				row[i] = parquet.NullValue().Level(0, 0, i)
				continue
			case string:
				pv = parquet.ByteArrayValue([]byte(v))
			case bool:
				pv = parquet.BooleanValue(v)
			case int64:
				pv = parquet.Int64Value(v)
			case float64:
				pv = parquet.DoubleValue(v)
			default:
				return fmt.Errorf("parquet: column %s: a %T", t.Columns[i].Name, v)
			}
			if want := t.Columns[i].Kind; kindOf(v) != want {
				return fmt.Errorf("parquet: column %s: a %T", t.Columns[i].Name, v)
			}
			row[i] = pv.Level(0, 1, i)
		}
		rows = append(rows, row)
	}
	if _, err := pw.WriteRows(rows); err != nil {
		return err
	}
	return pw.Close()
}

func kindOf(v any) Kind {
	switch v.(type) {
	case bool:
		return KindBool
	case int64:
		return KindInt
	case float64:
		return KindFloat
	}
	return KindString
}

// orderedGroup is a Parquet group whose columns keep the order given
// (parquet.Group sorts them by name), so that SELECT * reads like the CSV.
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int { return 0 }
func (g orderedGroup) String() string {
	var b strings.Builder
	_ = parquet.PrintSchema(&b, "", g)
	return b.String()
}
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeFor[map[string]any]() }

// namedField is a column of an orderedGroup.
type namedField struct {
	parquet.Node
	name string
}

func (f namedField) Name() string { return f.name }

func (f namedField) Value(base reflect.Value) reflect.Value {
	return base.MapIndex(reflect.ValueOf(f.name))
}
