// Package events lets inference code mark what it is doing (requests,
// tokens, phases) while `llem record` measures the GPU, so the analysis can
// attribute energy to work. It uses the standard library only.
//
// The wire protocol is newline-delimited JSON objects written to a Unix
// stream socket whose path `llem record` puts in the LLEM_EVENTS environment
// variable. docs/events.md is the reference for users; this file is the one
// place the rules are implemented, shared by the client and the recorder.
package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// EnvVar names the environment variable holding the recorder's socket path.
const EnvVar = "LLEM_EVENTS"

// Event kinds: the vocabulary of the protocol.
const (
	KindRequestStart = "request_start" // a request was received (id)
	KindFirstToken   = "first_token"   // its first output token is ready (id)
	KindToken        = "token"         // count more output tokens are ready (id, count)
	KindRequestEnd   = "request_end"   // it finished (id, input_tokens, output_tokens)
	KindPhaseStart   = "phase_start"   // a named phase began (name: warmup, measure, ...)
	KindPhaseEnd     = "phase_end"     // a named phase ended (name)
	KindMark         = "mark"          // anything else worth a timestamp (name)
)

// Kinds lists every kind in the protocol.
var Kinds = []string{KindRequestStart, KindFirstToken, KindToken, KindRequestEnd,
	KindPhaseStart, KindPhaseEnd, KindMark}

// Field names on the wire. Every other key of an object is an attribute.
const (
	FieldKind         = "kind"
	FieldTS           = "ts"
	FieldID           = "id"
	FieldName         = "name"
	FieldCount        = "count"
	FieldInputTokens  = "input_tokens"
	FieldOutputTokens = "output_tokens"
	FieldGPU          = "gpu"
)

// fields is the set of keys that are protocol fields rather than attributes.
var fields = map[string]bool{FieldKind: true, FieldTS: true, FieldID: true, FieldName: true,
	FieldCount: true, FieldInputTokens: true, FieldOutputTokens: true, FieldGPU: true}

// IsField reports whether key is a protocol field rather than an attribute.
func IsField(key string) bool { return fields[key] }

// Reasons a line is rejected. They are stored in the bad_events table, so
// they are stable: scripts may match on them. A reason about one field is
// the prefix followed by the field name, e.g. "missing_field:name".
const (
	ReasonOversized    = "oversized"      // the line is longer than the recorder's limit
	ReasonInvalidUTF8  = "invalid_utf8"   // the line is not valid UTF-8
	ReasonInvalidJSON  = "invalid_json"   // the line is not one JSON value
	ReasonNotObject    = "not_object"     // the JSON value is not an object
	ReasonUnknownKind  = "unknown_kind"   // kind is not in the vocabulary
	ReasonMissingField = "missing_field:" // a field the kind needs is absent (or empty)
	ReasonBadType      = "bad_type:"      // a field has the wrong JSON type
	ReasonBadValue     = "bad_value:"     // a field has the right type but an impossible value
)

// MaxHoldNs is how long a client may hold a line before writing it: the
// Python and Go clients write the token lines of up to 100 ms together
// (DefaultHold), because
// the recorder's cost follows writes more than lines. The recorder keeps a
// line's ts when it lies up to MaxHoldNs before the window in which the
// line arrived (docs/events.md, Timestamps).
const MaxHoldNs int64 = 500_000_000

// MaxGPU is the largest GPU index accepted (it must fit the trace's int32).
const MaxGPU = math.MaxInt32

// Message is one event as it travels on the wire. Optional numeric fields
// are pointers so that an absent field differs from zero.
type Message struct {
	Kind string
	// TimeNs is the client's clock (ns since the Unix epoch) when it sent
	// the event; 0 means none. The recorder keeps it beside its own arrival
	// stamp.
	TimeNs       int64
	ID           string // request id
	Name         string // phase or mark name
	Count        *int64 // tokens in a token event
	InputTokens  *int64
	OutputTokens *int64
	GPU          *int // nil: the event concerns no single GPU
	// Attrs holds every other key. Values are JSON values; a parsed
	// message holds json.Number for numbers, so they round-trip exactly.
	Attrs map[string]any
}

// Int returns a pointer to v, for the optional fields of a Message.
func Int(v int64) *int64 { return &v }

// ParseError says why a line was rejected. Reason is one of the Reason
// constants (with the field name appended for the field reasons).
type ParseError struct {
	Reason string
	Detail string
}

func (e *ParseError) Error() string {
	if e.Detail == "" {
		return "bad event: " + e.Reason
	}
	return "bad event: " + e.Reason + ": " + e.Detail
}

func parseErr(reason, format string, args ...any) *ParseError {
	return &ParseError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Parse decodes and validates one line of the protocol (without its
// newline; surrounding white space is allowed). On failure the error is a
// *ParseError whose Reason goes into the bad_events table.
//
// Rules, checked in this order so a line always gets the same reason:
//   - the line must be valid UTF-8 and exactly one JSON object;
//   - kind must be present, a string and one of Kinds;
//   - ts, if present, is an integer > 0; id is a string or an integer (kept
//     as its decimal text); name is a string; count, input_tokens,
//     output_tokens and gpu are integers (a number with a zero fraction,
//     like 5.0, counts as an integer); count >= 1, tokens >= 0,
//     0 <= gpu <= MaxGPU;
//   - a known field whose value is null is treated as absent;
//   - request_start, first_token, token and request_end need a non-empty id;
//     phase_start, phase_end and mark need a non-empty name;
//   - token without count means count 1.
//
// Fields a kind does not need are kept (request_start may carry
// input_tokens, a mark may carry an id). Every other key is an attribute;
// when a key appears twice the last one wins.
func Parse(line []byte) (Message, error) {
	var m Message
	if !utf8.Valid(line) {
		// Checked first: encoding/json would silently replace bad bytes.
		return m, &ParseError{Reason: ReasonInvalidUTF8}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return m, &ParseError{Reason: ReasonNotObject}
		}
		return m, &ParseError{Reason: ReasonInvalidJSON, Detail: err.Error()}
	}
	if obj == nil { // the line was `null`
		return m, &ParseError{Reason: ReasonNotObject}
	}

	raw, ok := obj[FieldKind]
	if !ok || isNull(raw) {
		return m, &ParseError{Reason: ReasonMissingField + FieldKind}
	}
	if err := json.Unmarshal(raw, &m.Kind); err != nil {
		return m, &ParseError{Reason: ReasonBadType + FieldKind}
	}
	if !KnownKind(m.Kind) {
		return m, parseErr(ReasonUnknownKind, "%q", m.Kind)
	}

	var err *ParseError
	var ts *int64
	if ts, err = intField(obj, FieldTS); err != nil {
		return m, err
	}
	if ts != nil {
		if *ts <= 0 {
			return m, parseErr(ReasonBadValue+FieldTS, "%d is not after the Unix epoch", *ts)
		}
		m.TimeNs = *ts
	}
	if m.ID, err = idField(obj); err != nil {
		return m, err
	}
	if m.Name, err = stringField(obj, FieldName); err != nil {
		return m, err
	}
	if m.Count, err = intField(obj, FieldCount); err != nil {
		return m, err
	}
	if m.InputTokens, err = intField(obj, FieldInputTokens); err != nil {
		return m, err
	}
	if m.OutputTokens, err = intField(obj, FieldOutputTokens); err != nil {
		return m, err
	}
	gpu, err := intField(obj, FieldGPU)
	if err != nil {
		return m, err
	}
	if gpu != nil {
		if *gpu < 0 || *gpu > MaxGPU {
			return m, parseErr(ReasonBadValue+FieldGPU, "%d is not a GPU index", *gpu)
		}
		g := int(*gpu)
		m.GPU = &g
	}
	if m.Kind == KindToken && m.Count == nil {
		m.Count = Int(1)
	}

	for k, v := range obj {
		if IsField(k) {
			continue
		}
		var val any
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		if err := d.Decode(&val); err != nil {
			// Unreachable: the whole line was valid JSON. Kept so a
			// decoder change cannot turn into a panic or a silent loss.
			return m, &ParseError{Reason: ReasonInvalidJSON, Detail: err.Error()}
		}
		if m.Attrs == nil {
			m.Attrs = make(map[string]any)
		}
		m.Attrs[k] = val
	}

	if err := m.Validate(); err != nil {
		return m, err
	}
	return m, nil
}

// KnownKind reports whether kind is in the vocabulary.
func KnownKind(kind string) bool {
	for _, k := range Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Validate checks the rules that do not depend on JSON types: a known
// kind, the fields the kind needs, and the ranges of the numeric fields.
// Parse calls it; a client may call it to check a Message before sending.
// The error is a *ParseError.
func (m *Message) Validate() error {
	if m.Kind == "" {
		return &ParseError{Reason: ReasonMissingField + FieldKind}
	}
	if !KnownKind(m.Kind) {
		return parseErr(ReasonUnknownKind, "%q", m.Kind)
	}
	if m.TimeNs < 0 {
		return parseErr(ReasonBadValue+FieldTS, "%d is not after the Unix epoch", m.TimeNs)
	}
	if m.Count != nil && *m.Count < 1 {
		return parseErr(ReasonBadValue+FieldCount, "%d tokens; a token event carries at least 1", *m.Count)
	}
	if m.InputTokens != nil && *m.InputTokens < 0 {
		return parseErr(ReasonBadValue+FieldInputTokens, "%d is negative", *m.InputTokens)
	}
	if m.OutputTokens != nil && *m.OutputTokens < 0 {
		return parseErr(ReasonBadValue+FieldOutputTokens, "%d is negative", *m.OutputTokens)
	}
	if m.GPU != nil && (*m.GPU < 0 || *m.GPU > MaxGPU) {
		return parseErr(ReasonBadValue+FieldGPU, "%d is not a GPU index", *m.GPU)
	}
	switch m.Kind {
	case KindRequestStart, KindFirstToken, KindToken, KindRequestEnd:
		if m.ID == "" {
			return parseErr(ReasonMissingField+FieldID, "%s needs the request id", m.Kind)
		}
	case KindPhaseStart, KindPhaseEnd, KindMark:
		if m.Name == "" {
			return parseErr(ReasonMissingField+FieldName, "%s needs a name", m.Kind)
		}
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func stringField(obj map[string]json.RawMessage, key string) (string, *ParseError) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &ParseError{Reason: ReasonBadType + key, Detail: "want a string"}
	}
	return s, nil
}

// idField accepts a string or an integer: request ids are often counters,
// and a client that sends 3 rather than "3" means the same request. An
// integer id beyond int64 is refused as a bad type: send such ids as text.
func idField(obj map[string]json.RawMessage) (string, *ParseError) {
	raw, ok := obj[FieldID]
	if !ok || isNull(raw) {
		return "", nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		return stringField(obj, FieldID)
	}
	n, err := intField(obj, FieldID)
	if err != nil {
		return "", &ParseError{Reason: ReasonBadType + FieldID, Detail: "want a string or an integer"}
	}
	return strconv.FormatInt(*n, 10), nil
}

// intField decodes an integer field. A JSON number with a zero fraction
// (5.0, 1.7e18) is accepted because some JSON writers only have floats. An
// integer beyond int64 is a bad value rather than a bad type.
func intField(obj map[string]json.RawMessage, key string) (*int64, *ParseError) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return nil, nil
	}
	n, isInt, inRange := parseInt(bytes.TrimSpace(raw))
	if !isInt {
		return nil, &ParseError{Reason: ReasonBadType + key, Detail: "want an integer"}
	}
	if !inRange {
		return nil, &ParseError{Reason: ReasonBadValue + key, Detail: "out of the 64-bit range"}
	}
	return &n, nil
}

func parseInt(raw []byte) (n int64, isInt, inRange bool) {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, false, false // a string, bool, array or object
	}
	s := string(raw)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true, true
	}
	// The JSON syntax was checked already, so a number ParseInt refused is
	// either a fraction, an exponent or too big; ParseFloat saturates to
	// ±Inf past float64, which Trunc leaves intact.
	f, _ := strconv.ParseFloat(s, 64)
	if f != math.Trunc(f) {
		return 0, false, false
	}
	// 2^63 is exactly representable; anything at or above it overflows int64.
	if f >= math.Exp2(63) || f < -math.Exp2(63) {
		return 0, true, false
	}
	return int64(f), true, true
}

// MarshalJSON writes the message as one flat JSON object: the fields in a
// fixed order, absent ones left out, then the attributes sorted by key. An
// attribute named like a protocol field is an error, because the recorder
// would read it as that field.
func (m Message) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	writeKey := func(k string) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		writeString(&b, k)
		b.WriteByte(':')
	}
	writeKey(FieldKind)
	writeString(&b, m.Kind)
	if m.TimeNs != 0 {
		writeKey(FieldTS)
		b.WriteString(strconv.FormatInt(m.TimeNs, 10))
	}
	if m.ID != "" {
		writeKey(FieldID)
		writeString(&b, m.ID)
	}
	if m.Name != "" {
		writeKey(FieldName)
		writeString(&b, m.Name)
	}
	for _, f := range []struct {
		key string
		v   *int64
	}{{FieldCount, m.Count}, {FieldInputTokens, m.InputTokens}, {FieldOutputTokens, m.OutputTokens}} {
		if f.v != nil {
			writeKey(f.key)
			b.WriteString(strconv.FormatInt(*f.v, 10))
		}
	}
	if m.GPU != nil {
		writeKey(FieldGPU)
		b.WriteString(strconv.Itoa(*m.GPU))
	}
	keys := make([]string, 0, len(m.Attrs))
	for k := range m.Attrs {
		if IsField(k) {
			return nil, fmt.Errorf("attribute %q is a protocol field: set the Message field instead", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := marshalValue(m.Attrs[k])
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		writeKey(k)
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// AttrsJSON returns the attributes as a compact JSON object with sorted
// keys, or "" when there are none: the form of the events table's attrs
// column.
func (m *Message) AttrsJSON() (string, error) {
	if len(m.Attrs) == 0 {
		return "", nil
	}
	b, err := marshalValue(m.Attrs)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// marshalValue is json.Marshal without HTML escaping, so a "<" in an
// attribute stays readable in the trace.
func marshalValue(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func writeString(b *bytes.Buffer, s string) {
	v, _ := marshalValue(s) // a string always encodes
	b.Write(v)
}
