package events

// The recorder receives up to tens of thousands of events a second, almost
// all of the same few shapes: {"kind":"token","ts":...,"id":"r7","count":1}.
// Parse decodes each into maps and JSON values (about 2 us and 26
// allocations a line); ScanSimple reads those shapes in one pass without
// allocating, and declines every line it is not sure about, which then goes
// to Parse. So Parse stays the one definition of the rules: FuzzScanSimple
// checks that every line ScanSimple accepts, Parse accepts with the same
// fields.

// Simple is an event as ScanSimple reads it. ID and Name are slices of the
// scanned line, valid only as long as the line is.
type Simple struct {
	Kind   string // one of Kinds
	TimeNs int64  // 0: none
	ID     []byte
	Name   []byte
	// Count, InputTokens, OutputTokens and GPU are valid where Has says so.
	Count, InputTokens, OutputTokens, GPU int64
	Has                                   SimpleField
}

// SimpleField says which optional integer fields a Simple holds.
type SimpleField uint8

const (
	HasCount SimpleField = 1 << iota
	HasInputTokens
	HasOutputTokens
	HasGPU
)

// ScanSimple reads line (without its newline) into s and reports true when
// the line is a valid event with no attribute, whose string values are
// plain ASCII without escapes and whose numbers are plain integers, each
// key given once and none null. For such a line Parse returns the same
// fields. It returns false, leaving s in any state, for every other line,
// valid or not: the caller must then use Parse.
func ScanSimple(line []byte, s *Simple) bool {
	*s = Simple{}
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	i = skipSpace(line, i+1)
	var seen uint8
	for {
		if i >= len(line) || line[i] != '"' {
			return false
		}
		key, next, ok := scanKey(line, i+1)
		if !ok {
			return false
		}
		i = skipSpace(line, next)
		if i >= len(line) || line[i] != ':' {
			return false
		}
		i = skipSpace(line, i+1)
		bit := uint8(1) << key
		if seen&bit != 0 {
			return false // a repeated key: the last wins in Parse; leave it to Parse
		}
		seen |= bit
		switch key {
		case keyKind, keyID, keyName:
			v, next, ok := scanPlainString(line, i)
			if !ok {
				return false
			}
			i = next
			switch key {
			case keyKind:
				if s.Kind = knownKind(v); s.Kind == "" {
					return false
				}
			case keyID:
				s.ID = v
			case keyName:
				s.Name = v
			}
		default:
			n, next, ok := scanInt(line, i)
			if !ok {
				return false
			}
			i = next
			switch key {
			case keyTS:
				if n <= 0 {
					return false
				}
				s.TimeNs = n
			case keyCount:
				s.Count, s.Has = n, s.Has|HasCount
			case keyInputTokens:
				s.InputTokens, s.Has = n, s.Has|HasInputTokens
			case keyOutputTokens:
				s.OutputTokens, s.Has = n, s.Has|HasOutputTokens
			case keyGPU:
				s.GPU, s.Has = n, s.Has|HasGPU
			}
		}
		i = skipSpace(line, i)
		if i >= len(line) {
			return false
		}
		if line[i] == '}' {
			break
		}
		if line[i] != ',' {
			return false
		}
		i = skipSpace(line, i+1)
	}
	if skipSpace(line, i+1) != len(line) || s.Kind == "" {
		return false
	}
	if s.Kind == KindToken && s.Has&HasCount == 0 {
		s.Count, s.Has = 1, s.Has|HasCount
	}
	// Validate's rules; a line that breaks one goes to Parse for its reason.
	switch {
	case s.Has&HasCount != 0 && s.Count < 1,
		s.Has&HasInputTokens != 0 && s.InputTokens < 0,
		s.Has&HasOutputTokens != 0 && s.OutputTokens < 0,
		s.Has&HasGPU != 0 && (s.GPU < 0 || s.GPU > MaxGPU):
		return false
	}
	switch s.Kind {
	case KindRequestStart, KindFirstToken, KindToken, KindRequestEnd:
		return len(s.ID) > 0
	default:
		return len(s.Name) > 0
	}
}

// Keys ScanSimple knows, as bit positions.
const (
	keyKind = iota
	keyTS
	keyID
	keyName
	keyCount
	keyInputTokens
	keyOutputTokens
	keyGPU
)

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanKey reads a key whose opening quote is at i-1 and returns which
// protocol field it is and the index after its closing quote. Any other key
// (an attribute) is not simple.
func scanKey(b []byte, i int) (key int, next int, ok bool) {
	start := i
	for i < len(b) && (b[i] >= 'a' && b[i] <= 'z' || b[i] == '_') {
		i++
	}
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	switch string(b[start:i]) { // no allocation: the compiler compares in place
	case FieldKind:
		key = keyKind
	case FieldTS:
		key = keyTS
	case FieldID:
		key = keyID
	case FieldName:
		key = keyName
	case FieldCount:
		key = keyCount
	case FieldInputTokens:
		key = keyInputTokens
	case FieldOutputTokens:
		key = keyOutputTokens
	case FieldGPU:
		key = keyGPU
	default:
		return 0, 0, false
	}
	return key, i + 1, true
}

// scanPlainString reads a JSON string at i made of printable ASCII with no
// escape, and returns its contents.
func scanPlainString(b []byte, i int) (v []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	start := i + 1
	for i = start; i < len(b); i++ {
		c := b[i]
		if c == '"' {
			return b[start:i], i + 1, true
		}
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// scanInt reads a JSON integer (no fraction, no exponent) that fits int64.
func scanInt(b []byte, i int) (n int64, next int, ok bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	var u uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := uint64(b[i] - '0')
		if u > (1<<63-1-d)/10 {
			return 0, 0, false // beyond int64: Parse says which reason
		}
		u = u*10 + d
		i++
	}
	digits := i - start
	if digits == 0 || digits > 1 && b[start] == '0' {
		return 0, 0, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, 0, false
	}
	n = int64(u)
	if neg {
		n = -n
	}
	return n, i, true
}

// knownKind returns the Kinds constant equal to v, or "".
func knownKind(v []byte) string {
	for _, k := range Kinds {
		if string(v) == k {
			return k
		}
	}
	return ""
}
