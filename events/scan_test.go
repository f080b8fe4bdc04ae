package events

import (
	"testing"
)

// simpleMessage is what Parse should return for a line ScanSimple accepted.
func simpleMessage(s *Simple) Message {
	m := Message{Kind: s.Kind, TimeNs: s.TimeNs, ID: string(s.ID), Name: string(s.Name)}
	if s.Has&HasCount != 0 {
		m.Count = Int(s.Count)
	}
	if s.Has&HasInputTokens != 0 {
		m.InputTokens = Int(s.InputTokens)
	}
	if s.Has&HasOutputTokens != 0 {
		m.OutputTokens = Int(s.OutputTokens)
	}
	if s.Has&HasGPU != 0 {
		g := int(s.GPU)
		m.GPU = &g
	}
	return m
}

func TestScanSimple(t *testing.T) {
	accepted := []string{
		`{"kind":"token","ts":1733320000123456789,"id":"b12-31","count":1}`,
		`{"kind":"token","id":"r"}`,
		` { "kind" : "request_end" , "id":"r1","input_tokens":0,"output_tokens":128,"gpu":3 }` + "\r",
		`{"kind":"phase_start","name":"measure","ts":1}`,
		`{"kind":"mark","name":"x","gpu":2147483647,"id":"r"}`,
		`{"kind":"token","id":"r","count":9223372036854775807}`,
	}
	for _, line := range accepted {
		var s Simple
		if !ScanSimple([]byte(line), &s) {
			t.Errorf("ScanSimple declined %s", line)
			continue
		}
		m, err := Parse([]byte(line))
		if err != nil {
			t.Errorf("Parse(%s): %v", line, err)
			continue
		}
		checkSame(t, line, &s, m)
	}
	declined := []string{
		`{"kind":"token","id":"r","count":1.0}`,              // a float: Parse's job
		`{"kind":"token","id":3}`,                            // integer id
		`{"kind":"token","id":"r","count":0}`,                // bad value
		`{"kind":"token","id":""}`,                           // missing id
		`{"kind":"mark","name":"x","batch":8}`,               // an attribute
		`{"kind":"mark","name":"x","name":"y"}`,              // repeated key
		`{"kind":"mark","name":"\u00e9"}`,                    // an escape
		`{"kind":"mark","name":"é"}`,                         // not ASCII
		`{"kind":"mark","name":"x","gpu":null}`,              // null
		`{"kind":"mark","name":"x"} {}`,                      // trailing text
		`{"kind":"token","id":"r","count":01}`,               // not JSON
		`{"kind":"token","id":"r","ts":9223372036854775808}`, // beyond int64
		`{"kind":"nope","name":"x"}`,
		`{"kind":"mark","name":"x","gpu":2147483648}`,
		`{"kind":"mark","name":"x",}`,
		`{}`, `[]`, `null`, ``, `{"kind":"mark","name":"x"`,
	}
	for _, line := range declined {
		var s Simple
		if ScanSimple([]byte(line), &s) {
			t.Errorf("ScanSimple accepted %s", line)
		}
	}
}

func checkSame(t *testing.T, line string, s *Simple, m Message) {
	t.Helper()
	want := simpleMessage(s)
	if m.Kind != want.Kind || m.TimeNs != want.TimeNs || m.ID != want.ID || m.Name != want.Name ||
		!sameInt(m.Count, want.Count) || !sameInt(m.InputTokens, want.InputTokens) ||
		!sameInt(m.OutputTokens, want.OutputTokens) || (m.GPU == nil) != (want.GPU == nil) ||
		m.GPU != nil && *m.GPU != *want.GPU || len(m.Attrs) != 0 {
		t.Fatalf("%q: ScanSimple read %+v, Parse %+v", line, want, m)
	}
}

func sameInt(a, b *int64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// FuzzScanSimple: every line ScanSimple accepts, Parse accepts with the
// same fields, so the fast path never changes what the recorder stores.
func FuzzScanSimple(f *testing.F) {
	for _, s := range []string{
		`{"kind":"token","ts":1733320000123456789,"id":"b12-31","count":1}`,
		`{"kind":"request_end","id":"r1","input_tokens":10,"output_tokens":128,"gpu":0}`,
		`{"kind":"phase_end","name":"measure"}`, `{"kind":"mark","name":"a","count":-0}`,
		`{"kind":"token","id":"r","count":1e2}`, ` {"kind":"first_token" ,"id":"7"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var s Simple
		if !ScanSimple(line, &s) {
			return
		}
		m, err := Parse(line)
		if err != nil {
			t.Fatalf("%q: ScanSimple accepted, Parse refused: %v", line, err)
		}
		checkSame(t, string(line), &s, m)
	})
}

func BenchmarkScanSimple(b *testing.B) {
	line := []byte(`{"kind":"token","ts":1733320000123456789,"id":"b12-31","count":1}`)
	var s Simple
	b.ReportAllocs()
	for b.Loop() {
		if !ScanSimple(line, &s) {
			b.Fatal("declined")
		}
	}
}

func BenchmarkParse(b *testing.B) {
	line := []byte(`{"kind":"token","ts":1733320000123456789,"id":"b12-31","count":1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}
