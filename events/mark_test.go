package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestMarkFromArgs(t *testing.T) {
	gpu0 := 0
	cases := []struct {
		kind, name string
		args       []string
		want       Message
	}{
		{"", "model_loaded", nil, Message{Kind: KindMark, Name: "model_loaded"}},
		{"", "warm", []string{"batch=8", "temp=0.7", "note=cold start", "neg=-3", "hex=0x10", "lead=007", "exp=1e3", "plus=+5", "empty="},
			Message{Kind: KindMark, Name: "warm", Attrs: map[string]any{
				"batch": json.Number("8"), "temp": json.Number("0.7"), "note": "cold start", "neg": json.Number("-3"),
				"hex": "0x10", "lead": "007", "exp": "1e3", "plus": "+5", "empty": ""}}},
		{"phase_start", "measure", nil, Message{Kind: KindPhaseStart, Name: "measure"}},
		{"phase_end", "", []string{"name=measure", "gpu=0"}, Message{Kind: KindPhaseEnd, Name: "measure", GPU: &gpu0}},
		{"request_end", "", []string{"id=3", "input_tokens=10", "output_tokens=128"},
			Message{Kind: KindRequestEnd, ID: "3", InputTokens: Int(10), OutputTokens: Int(128)}},
		{"token", "", []string{"id=a"}, Message{Kind: KindToken, ID: "a", Count: Int(1)}},
		{"token", "", []string{"id=a", "count=4", "ts=99"}, Message{Kind: KindToken, ID: "a", Count: Int(4), TimeNs: 99}},
	}
	for _, c := range cases {
		got, err := MarkFromArgs(c.kind, c.name, c.args)
		if err != nil {
			t.Errorf("MarkFromArgs(%q, %q, %q): %v", c.kind, c.name, c.args, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("MarkFromArgs(%q, %q, %q)\n got %+v\nwant %+v", c.kind, c.name, c.args, got, c.want)
		}
		if _, err := got.MarshalJSON(); err != nil {
			t.Errorf("MarshalJSON: %v", err)
		}
	}
}

func TestMarkFromArgsErrors(t *testing.T) {
	cases := []struct {
		kind, name string
		args       []string
		want       string
	}{
		{"", "", nil, "missing_field:name"},
		{"request_end", "", []string{"input_tokens=3"}, "missing_field:id"},
		{"bogus", "x", nil, "unknown_kind"},
		{"", "x", []string{"novalue"}, "not key=value"},
		{"", "x", []string{"=v"}, "not key=value"},
		{"", "x", []string{"a=1", "a=2"}, "twice"},
		{"", "x", []string{"name=y"}, "twice"},
		{"", "x", []string{"kind=token"}, "kind= is not a key"},
		{"token", "", []string{"id=a", "count=many"}, "integer"},
		{"token", "", []string{"id=a", "count=0"}, "bad_value:count"},
		{"", "x", []string{"gpu=-1"}, "GPU index"},
		{"", "x", []string{"ts=0"}, "Unix epoch"},
		{"request_end", "", []string{"id=1", "output_tokens=-2"}, "bad_value:output_tokens"},
	}
	for _, c := range cases {
		_, err := MarkFromArgs(c.kind, c.name, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("MarkFromArgs(%q, %q, %q) = %v, want an error with %q", c.kind, c.name, c.args, err, c.want)
		}
	}
}
