package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseGood(t *testing.T) {
	gpu1 := 1
	cases := []struct {
		line string
		want Message
	}{
		{`{"kind":"request_start","id":"r1","ts":1700000000000000000}`,
			Message{Kind: KindRequestStart, ID: "r1", TimeNs: 1700000000000000000}},
		{`{"kind":"request_start","id":7}`, Message{Kind: KindRequestStart, ID: "7"}},
		{`{"kind":"first_token","id":"r1"}`, Message{Kind: KindFirstToken, ID: "r1"}},
		{`{"kind":"token","id":"r1","count":4}`, Message{Kind: KindToken, ID: "r1", Count: Int(4)}},
		{`{"kind":"token","id":"r1"}`, Message{Kind: KindToken, ID: "r1", Count: Int(1)}},
		{`{"kind":"token","id":"r1","count":4.0}`, Message{Kind: KindToken, ID: "r1", Count: Int(4)}},
		{`{"kind":"request_end","id":"r1","input_tokens":10,"output_tokens":0}`,
			Message{Kind: KindRequestEnd, ID: "r1", InputTokens: Int(10), OutputTokens: Int(0)}},
		{`{"kind":"request_end","id":"r1"}`, Message{Kind: KindRequestEnd, ID: "r1"}},
		{`{"kind":"phase_start","name":"warmup"}`, Message{Kind: KindPhaseStart, Name: "warmup"}},
		{`{"kind":"phase_end","name":"warmup","gpu":1}`, Message{Kind: KindPhaseEnd, Name: "warmup", GPU: &gpu1}},
		{"  {\"kind\":\"mark\",\"name\":\"x\"}\r", Message{Kind: KindMark, Name: "x"}},
		{`{"kind":"mark","name":"x","gpu":null,"id":null}`, Message{Kind: KindMark, Name: "x"}},
		{`{"kind":"mark","name":"x","batch":8,"note":"a<b","nested":{"z":[1,2.5,null,true]}}`,
			Message{Kind: KindMark, Name: "x", Attrs: map[string]any{
				"batch":  json.Number("8"),
				"note":   "a<b",
				"nested": map[string]any{"z": []any{json.Number("1"), json.Number("2.5"), nil, true}},
			}}},
		{`{"kind":"mark","name":"first","name":"last"}`, Message{Kind: KindMark, Name: "last"}},
		{`{"kind":"mark","name":"é\u00e9"}`, Message{Kind: KindMark, Name: "éé"}},
	}
	for _, c := range cases {
		got, err := Parse([]byte(c.line))
		if err != nil {
			t.Errorf("Parse(%s): %v", c.line, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Parse(%s)\n got %+v\nwant %+v", c.line, got, c.want)
		}
	}
}

// TestParseBad covers every reason Parse can give.
func TestParseBad(t *testing.T) {
	cases := []struct{ line, reason string }{
		{"{\"kind\":\"mark\",\"name\":\"\xff\"}", "invalid_utf8"},
		{``, "invalid_json"},
		{`{"kind":"mark"`, "invalid_json"},
		{`{"kind":"mark","name":"a"} {}`, "invalid_json"},
		{`{"kind":"mark","name":NaN}`, "invalid_json"},
		{`[1,2]`, "not_object"},
		{`"mark"`, "not_object"},
		{`null`, "not_object"},
		{`42`, "not_object"},
		{`{"name":"x"}`, "missing_field:kind"},
		{`{"kind":null,"name":"x"}`, "missing_field:kind"},
		{`{"kind":3}`, "bad_type:kind"},
		{`{"kind":"Mark","name":"x"}`, "unknown_kind"},
		{`{"kind":"","name":"x"}`, "unknown_kind"},
		{`{"kind":"mark","name":"x","ts":"now"}`, "bad_type:ts"},
		{`{"kind":"mark","name":"x","ts":1.5}`, "bad_type:ts"},
		{`{"kind":"mark","name":"x","ts":1e30}`, "bad_value:ts"},
		{`{"kind":"mark","name":"x","ts":9223372036854775808}`, "bad_value:ts"},
		{`{"kind":"mark","name":"x","ts":1e999}`, "bad_value:ts"},
		{`{"kind":"mark","name":"x","ts":0}`, "bad_value:ts"},
		{`{"kind":"mark","name":"x","ts":-5}`, "bad_value:ts"},
		{`{"kind":"request_start","id":true}`, "bad_type:id"},
		{`{"kind":"request_start","id":1.5}`, "bad_type:id"},
		{`{"kind":"request_start","id":[]}`, "bad_type:id"},
		{`{"kind":"mark","name":5}`, "bad_type:name"},
		{`{"kind":"token","id":"r","count":"3"}`, "bad_type:count"},
		{`{"kind":"token","id":"r","count":2.5}`, "bad_type:count"},
		{`{"kind":"token","id":"r","count":0}`, "bad_value:count"},
		{`{"kind":"request_end","id":"r","input_tokens":[1]}`, "bad_type:input_tokens"},
		{`{"kind":"request_end","id":"r","input_tokens":-1}`, "bad_value:input_tokens"},
		{`{"kind":"request_end","id":"r","output_tokens":{}}`, "bad_type:output_tokens"},
		{`{"kind":"request_end","id":"r","output_tokens":-3}`, "bad_value:output_tokens"},
		{`{"kind":"mark","name":"x","gpu":"0"}`, "bad_type:gpu"},
		{`{"kind":"mark","name":"x","gpu":-1}`, "bad_value:gpu"},
		{`{"kind":"mark","name":"x","gpu":4294967296}`, "bad_value:gpu"},
		{`{"kind":"request_start"}`, "missing_field:id"},
		{`{"kind":"first_token","id":""}`, "missing_field:id"},
		{`{"kind":"token","count":1}`, "missing_field:id"},
		{`{"kind":"request_end","output_tokens":1}`, "missing_field:id"},
		{`{"kind":"phase_start"}`, "missing_field:name"},
		{`{"kind":"phase_end","name":""}`, "missing_field:name"},
		{`{"kind":"mark","id":"r"}`, "missing_field:name"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.line))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, want reason %s", c.line, err, c.reason)
			continue
		}
		if pe.Reason != c.reason {
			t.Errorf("Parse(%q) reason %q, want %q (%v)", c.line, pe.Reason, c.reason, err)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	gpu := 3
	m := Message{Kind: KindRequestEnd, TimeNs: 123, ID: "r\"1", Name: "n",
		InputTokens: Int(10), OutputTokens: Int(0), GPU: &gpu,
		Attrs: map[string]any{"b": json.Number("2"), "a": "<x>", "c": []any{true, nil}}}
	b, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"request_end","ts":123,"id":"r\"1","name":"n","input_tokens":10,"output_tokens":0,"gpu":3,"a":"<x>","b":2,"c":[true,null]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, m)
	}
	attrs, _ := got.AttrsJSON()
	if attrs != `{"a":"<x>","b":2,"c":[true,null]}` {
		t.Errorf("AttrsJSON = %s", attrs)
	}
}

func TestMarshalRejectsFieldAttr(t *testing.T) {
	for _, k := range []string{"kind", "ts", "id", "name", "count", "input_tokens", "output_tokens", "gpu"} {
		m := Message{Kind: KindMark, Name: "x", Attrs: map[string]any{k: 1}}
		if _, err := m.MarshalJSON(); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("attr %q: err = %v, want a refusal", k, err)
		}
	}
	m := Message{Kind: KindMark, Name: "x", Attrs: map[string]any{"ch": make(chan int)}}
	if _, err := m.MarshalJSON(); err == nil {
		t.Error("unencodable attribute accepted")
	}
}

func TestAttrsJSONEmpty(t *testing.T) {
	m := Message{Kind: KindMark, Name: "x"}
	if s, err := m.AttrsJSON(); s != "" || err != nil {
		t.Errorf("AttrsJSON() = %q, %v; want empty", s, err)
	}
}

// FuzzParse checks that Parse never panics, that every rejection carries a
// known reason, and that an accepted line survives MarshalJSON and Parse
// unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"kind":"request_start","id":"r1","ts":1700000000000000000}`,
		`{"kind":"token","id":"r1","count":4}`,
		`{"kind":"request_end","id":3,"input_tokens":10,"output_tokens":128,"gpu":0}`,
		`{"kind":"phase_start","name":"warmup"}`,
		`{"kind":"mark","name":"x","batch":8,"nested":{"a":[1,2.5e3,null]},"s":"\u00e9"}`,
		`{"kind":"mark","name":"x","ts":1e18}`,
		`{"kind":"token","id":"r","count":-1}`,
		`[]`, `null`, `{`, "\xff", `{"kind":"nope"}`, `{"kind":"mark","name":"a","gpu":1e400}`,
	} {
		f.Add([]byte(s))
	}
	reasons := []string{ReasonOversized, ReasonInvalidUTF8, ReasonInvalidJSON, ReasonNotObject, ReasonUnknownKind}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := Parse(line)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			known := false
			for _, r := range reasons {
				known = known || pe.Reason == r
			}
			for _, p := range []string{ReasonMissingField, ReasonBadType, ReasonBadValue} {
				if f, ok := strings.CutPrefix(pe.Reason, p); ok && IsField(f) {
					known = true
				}
			}
			if !known {
				t.Fatalf("unknown reason %q", pe.Reason)
			}
			return
		}
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of parsed %q: %v", line, err)
		}
		m2, err := Parse(b)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip of %q\n got %+v\nwant %+v", line, m2, m)
		}
		if _, err := m.AttrsJSON(); err != nil {
			t.Fatalf("AttrsJSON: %v", err)
		}
	})
}
