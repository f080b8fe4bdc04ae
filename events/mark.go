package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MarkFromArgs builds the message of `llem mark` from the command line, so
// shell scripts can send any event:
//
//	llem mark model_loaded                          # kind mark, name model_loaded
//	llem mark warmup_done batch=8 note=cold         # with attributes
//	llem mark --kind phase_start measure            # a phase
//	llem mark --kind request_end id=3 input_tokens=10 output_tokens=128
//
// kind "" means mark. name is the positional NAME ("" when absent). Each
// arg is key=value: the protocol fields id, name, ts, count, input_tokens,
// output_tokens and gpu set those fields (id and name as text, the others
// must be integers); any other key is an attribute whose value becomes a
// JSON number when it is a decimal integer or decimal fraction, else a
// string. `kind=` is refused (use the kind argument), as is a key given
// twice or name given both ways. The message is validated with the same
// rules as the recorder, so a mistake fails here rather than landing in
// bad_events. TimeNs is left zero; Send stamps it.
func MarkFromArgs(kind, name string, args []string) (Message, error) {
	if kind == "" {
		kind = KindMark
	}
	m := Message{Kind: kind, Name: name}
	seen := map[string]bool{}
	for _, arg := range args {
		key, value, ok := strings.Cut(arg, "=")
		if !ok || key == "" {
			return Message{}, fmt.Errorf("%q is not key=value", arg)
		}
		if seen[key] {
			return Message{}, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		switch key {
		case FieldKind:
			return Message{}, fmt.Errorf("kind= is not a key: the kind is given on its own")
		case FieldName:
			if m.Name != "" {
				return Message{}, fmt.Errorf("name given twice (%q and %q)", m.Name, value)
			}
			m.Name = value
		case FieldID:
			m.ID = value
		case FieldTS, FieldCount, FieldInputTokens, FieldOutputTokens, FieldGPU:
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return Message{}, fmt.Errorf("%s=%s: want an integer", key, value)
			}
			switch key {
			case FieldTS:
				if n <= 0 {
					return Message{}, fmt.Errorf("ts=%s: want ns since the Unix epoch", value)
				}
				m.TimeNs = n
			case FieldCount:
				m.Count = Int(n)
			case FieldInputTokens:
				m.InputTokens = Int(n)
			case FieldOutputTokens:
				m.OutputTokens = Int(n)
			case FieldGPU:
				if n < 0 || n > MaxGPU {
					return Message{}, fmt.Errorf("gpu=%s: not a GPU index", value)
				}
				g := int(n)
				m.GPU = &g
			}
		default:
			if m.Attrs == nil {
				m.Attrs = map[string]any{}
			}
			m.Attrs[key] = attrValue(value)
		}
	}
	if m.Kind == KindToken && m.Count == nil {
		m.Count = Int(1)
	}
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// attrValue turns a shell word into a JSON value: plain decimal numbers
// (8, -3, 0.25) become numbers so they can be summed; everything else,
// including hex, "1e3", "+5", "007" and "inf", stays a string, because only
// plain decimals are unambiguous.
func attrValue(s string) any {
	if isDecimal(s) {
		return json.Number(s)
	}
	return s
}

// isDecimal reports whether s is a JSON number without exponent:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if !allDigits(intPart) || len(intPart) > 1 && intPart[0] == '0' {
		return false
	}
	return !hasFrac || allDigits(frac)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
