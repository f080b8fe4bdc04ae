package ptdaemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxLine bounds a line's length. PTDaemon's lines are a few hundred
// bytes; loadgen's detail log has lines of tens of kilobytes (the git log
// and the source hashes of loadgen).
const MaxLine = 4 << 20

// MaxReasons is how many skipped lines a parse describes one by one.
const MaxReasons = 5

// TimeLayout is the time format of PTDaemon's log and of loadgen's
// power_begin and power_end: month-day-year, local time, no zone. Loadgen
// writes it with DateTimeStringForPower ("%m-%d-%Y %T" and milliseconds,
// loadgen/utils.cc), which its comment says "matches the one used by SPEC
// power measurement logging".
const TimeLayout = "01-02-2006 15:04:05.000"

// splExample is what a PTDaemon line looks like, for error messages.
const splExample = "Time,07-17-2024 07:02:47.866,Watts,2381.800000,Volts,239.206667,Amps,3.441000,PF,0.964608,Mark,..."

// LineError is a line that was skipped, and why.
type LineError struct {
	File   string
	Line   int
	Reason string
}

func (e LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

// Sample is one valid line of a PTDaemon log.
type Sample struct {
	Line   int
	TimeNs int64 // the line's time read as UTC, ns since the Unix epoch
	// Watts is the total (all channels) active power. Valid is false when
	// PTDaemon marked the reading invalid (a value <= 0, e.g. -1.000000):
	// MLPerf's checker counts only values > 0, and so does llem.
	Watts float64
	Valid bool
	// ChannelWatts sums the per-channel Watts of a multi-channel analyzer;
	// Channels is how many channel sections the line has (0 for one channel).
	ChannelWatts float64
	Channels     int
}

// SPL is one parsed PTDaemon log (the spl.txt of an MLPerf power run).
type SPL struct {
	File    string
	Samples []Sample
	// DataLines counts non-blank lines; Skipped those that could not be
	// read, Reasons the first MaxReasons of them.
	DataLines int
	Skipped   int
	Reasons   []LineError
	// TotalKeys are the fields of the total section other than Time, Watts
	// and Mark (Volts, Amps, PF...), in the order first seen; Channels the
	// channel sections (Ch1, Ch2...); ChannelKeys their fields.
	TotalKeys   []string
	Channels    []string
	ChannelKeys []string
	// Marks are the distinct Mark values (PTDaemon's session and mode names).
	Marks []string
}

// ParseSPL reads a SPEC PTDaemon log: one line per sample, comma-separated
// key/value pairs after the time,
//
//	Time,07-17-2024 07:02:47.866,Watts,2381.800000,Volts,239.206667,Amps,3.441000,PF,0.964608,Mark,2024-07-16_23-42-03_testing,Ch1,Watts,788.200000,Volts,...
//
// The total section (Watts, Volts, Amps, PF, Mark) comes first; a
// multi-channel analyzer adds one ChN section per channel. A line that
// cannot be read is skipped and counted; a file with no valid line is an
// error naming the file and line.
func ParseSPL(r io.Reader, name string) (*SPL, error) {
	s := &SPL{File: name}
	lineNo, err := eachLine(r, name, func(lineNo int, text string) {
		s.DataLines++
		if reason := s.line(text, lineNo); reason != "" {
			s.Skipped++
			if len(s.Reasons) < MaxReasons {
				s.Reasons = append(s.Reasons, LineError{name, lineNo, reason})
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if s.DataLines == 0 {
		return nil, fmt.Errorf("%s:%d: empty file: expected PTDaemon sample lines such as %q", name, max(lineNo, 1), splExample)
	}
	if len(s.Samples) == 0 {
		return nil, fmt.Errorf("%s: none of the %d lines could be read; the first: %v (expected PTDaemon sample lines such as %q)",
			name, s.DataLines, s.Reasons[0], splExample)
	}
	return s, nil
}

// eachLine calls fn with each non-blank line, trimmed; it returns the
// number of lines read.
func eachLine(r io.Reader, name string, fn func(lineNo int, text string)) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Bytes()
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte-order mark
		}
		text := strings.TrimSpace(string(line))
		if text == "" {
			continue
		}
		fn(lineNo, text)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return lineNo, fmt.Errorf("%s:%d: a line longer than %d bytes: not a text log", name, lineNo+1, MaxLine)
		}
		return lineNo, fmt.Errorf("%s: %w", name, err)
	}
	return lineNo, nil
}

// line reads one line; it returns why the line was skipped, or "".
func (s *SPL) line(text string, lineNo int) string {
	f := strings.Split(text, ",")
	if f[0] != "Time" {
		return fmt.Sprintf("not a PTDaemon sample line (it does not start with \"Time,\"): %q", clip(text))
	}
	if len(f) < 2 {
		return "no time after \"Time\""
	}
	ts, err := parseTime(strings.TrimSpace(f[1]))
	if err != nil {
		return err.Error()
	}
	smp := Sample{Line: lineNo, TimeNs: ts}
	section := "" // "" is the total; else the channel's name
	haveWatts := false
	var totalKeys, chanKeys, chans []string
	mark := ""
	for i := 2; i < len(f); i++ {
		key := strings.TrimSpace(f[i])
		if key == "" && i == len(f)-1 {
			break // a trailing comma
		}
		if isChannel(key) {
			section = key
			smp.Channels++
			chans = append(chans, key)
			continue
		}
		if i+1 >= len(f) {
			return fmt.Sprintf("field %q has no value", clip(key))
		}
		i++
		v := strings.TrimSpace(f[i])
		if key == "" {
			return fmt.Sprintf("a value (%q) with no field name before it", clip(v))
		}
		if key == "Mark" {
			if section == "" {
				mark = v
			}
			continue
		}
		if section != "" {
			if key == "Watts" {
				x, ok := number(v)
				if !ok {
					return fmt.Sprintf("%s Watts %q is not a number", section, clip(v))
				}
				smp.ChannelWatts += x
			}
			chanKeys = append(chanKeys, key)
			continue
		}
		if key == "Watts" {
			if haveWatts {
				return "two Watts fields in the total section"
			}
			x, ok := number(v)
			if !ok {
				return fmt.Sprintf("Watts %q is not a number", clip(v))
			}
			smp.Watts, smp.Valid, haveWatts = x, x > 0, true
			continue
		}
		totalKeys = append(totalKeys, key)
	}
	if !haveWatts {
		return fmt.Sprintf("no Watts field before the first channel: expected lines such as %q", splExample)
	}
	s.Samples = append(s.Samples, smp)
	for _, k := range totalKeys {
		s.TotalKeys = addOnce(s.TotalKeys, k)
	}
	for _, k := range chanKeys {
		s.ChannelKeys = addOnce(s.ChannelKeys, k)
	}
	for _, c := range chans {
		s.Channels = addOnce(s.Channels, c)
	}
	if mark != "" && len(s.Marks) < 20 {
		s.Marks = addOnce(s.Marks, mark)
	}
	return ""
}

func addOnce(list []string, s string) []string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	if !slices.Contains(list, s) && len(list) < 64 {
		list = append(list, s)
	}
	return list
}

// isChannel recognises a channel section's name: Ch1, Ch2...
func isChannel(key string) bool {
	rest, ok := strings.CutPrefix(key, "Ch")
	if !ok || rest == "" || len(rest) > 3 {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseTime reads PTDaemon's or loadgen's time as UTC (neither prints a
// zone) and returns nanoseconds since the Unix epoch. Any fraction of a
// second, or none, is accepted.
func parseTime(v string) (int64, error) {
	t, err := time.Parse("01-02-2006 15:04:05", v)
	if err != nil {
		return 0, fmt.Errorf("time %q is not of the form %q", clip(v), "07-17-2024 07:02:47.866")
	}
	if y := t.Year(); y < 1971 || y > 2261 {
		return 0, fmt.Errorf("time %q is out of range", clip(v))
	}
	return t.UnixNano(), nil
}

// number reads a decimal number.
func number(v string) (float64, bool) {
	if v == "" || !(v[0] >= '0' && v[0] <= '9' || v[0] == '-' || v[0] == '+' || v[0] == '.') {
		return 0, false
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || strings.ContainsAny(v, "xXpP_") || math.Abs(x) > 1e12 {
		return 0, false
	}
	return x, true
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// Loadgen is what llem reads from a loadgen detail log
// (mlperf_log_detail.txt): the window of the power measurement.
type Loadgen struct {
	File string
	// Begin and End are power_begin and power_end as written; BeginNs and
	// EndNs the same read as UTC, before any offset.
	Begin, End             string
	BeginNs, EndNs         int64
	BeginLine, EndLine     int
	MLLogLines, BadMLLines int
	Reasons                []LineError
}

// mllog is one :::MLLOG line of loadgen's detail log.
type mllog struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

const mllogPrefix = ":::MLLOG"

// ParseLoadgen reads a loadgen detail log: lines ":::MLLOG " followed by a
// JSON object with "key" and "value". power_begin and power_end, whose
// values are times in TimeLayout, are required; other keys are ignored. A
// :::MLLOG line that is not JSON is counted; a file without both keys, or
// with either twice, is an error.
func ParseLoadgen(r io.Reader, name string) (*Loadgen, error) {
	lg := &Loadgen{File: name}
	var errs []string
	lineNo, err := eachLine(r, name, func(lineNo int, text string) {
		rest, ok := strings.CutPrefix(text, mllogPrefix)
		if !ok {
			return
		}
		lg.MLLogLines++
		var m mllog
		if err := json.Unmarshal([]byte(rest), &m); err != nil {
			lg.BadMLLines++
			if len(lg.Reasons) < MaxReasons {
				lg.Reasons = append(lg.Reasons, LineError{name, lineNo, "not a JSON object after " + mllogPrefix})
			}
			return
		}
		if m.Key != "power_begin" && m.Key != "power_end" {
			return
		}
		var v string
		if err := json.Unmarshal(m.Value, &v); err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %s value %s is not a string: expected a time such as \"07-17-2024 07:04:02.134\"",
				name, lineNo, m.Key, clip(string(m.Value))))
			return
		}
		ts, err := parseTime(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %s: %v", name, lineNo, m.Key, err))
			return
		}
		dst, dstNs, dstLine := &lg.Begin, &lg.BeginNs, &lg.BeginLine
		if m.Key == "power_end" {
			dst, dstNs, dstLine = &lg.End, &lg.EndNs, &lg.EndLine
		}
		if *dstLine != 0 {
			errs = append(errs, fmt.Sprintf("%s:%d: a second %s (the first is on line %d): give the detail log of one run",
				name, lineNo, m.Key, *dstLine))
			return
		}
		*dst, *dstNs, *dstLine = v, ts, lineNo
	})
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.New(errs[0])
	}
	const want = `:::MLLOG {"key": "power_begin", "value": "07-17-2024 07:04:02.134", ...}`
	switch {
	case lg.MLLogLines == 0:
		return nil, fmt.Errorf("%s:%d: no %s line: not a loadgen detail log (mlperf_log_detail.txt); expected lines such as %s",
			name, max(lineNo, 1), mllogPrefix, want)
	case lg.BeginLine == 0 && lg.EndLine == 0:
		return nil, fmt.Errorf("%s: no power_begin or power_end in %d %s lines: expected %s (loadgen writes them in performance runs)",
			name, lg.MLLogLines, mllogPrefix, want)
	case lg.BeginLine == 0:
		return nil, fmt.Errorf("%s: power_end (line %d) but no power_begin: expected %s", name, lg.EndLine, want)
	case lg.EndLine == 0:
		return nil, fmt.Errorf("%s: power_begin (line %d) but no power_end: the run did not finish?", name, lg.BeginLine)
	case lg.EndNs <= lg.BeginNs:
		return nil, fmt.Errorf("%s:%d: power_end %q is not after power_begin %q (line %d)", name, lg.EndLine, lg.End, lg.Begin, lg.BeginLine)
	}
	return lg, nil
}

// Summary is what llem reads from a loadgen summary (mlperf_log_summary.txt).
type Summary struct {
	File string
	// Fields holds every "key : value" line, keys trimmed.
	Fields map[string]string
	// TokensPerS and SamplesPerS are the throughput as printed ("" when the
	// summary has none); TokensKey and SamplesKey the lines they come from.
	TokensPerS, TokensKey   string
	SamplesPerS, SamplesKey string
}

// Throughput keys of loadgen's summary, preferred first: Server runs print
// "Completed ..." (and "Scheduled samples per second", the load offered),
// Offline runs "Samples per second" and, for LLMs, "Tokens per second"
// (with "(inferred)" when the tokens were counted from the samples).
var (
	tokenKeys  = []string{"Completed tokens per second", "Tokens per second", "Tokens per second (inferred)"}
	sampleKeys = []string{"Completed samples per second", "Samples per second"}
)

// ParseSummary reads a loadgen summary's "key : value" lines. A file with
// none, or without loadgen's title, is an error.
func ParseSummary(r io.Reader, name string) (*Summary, error) {
	s := &Summary{File: name, Fields: map[string]string{}}
	title := false
	lineNo, err := eachLine(r, name, func(lineNo int, text string) {
		if text == "MLPerf Results Summary" {
			title = true
			return
		}
		k, v, ok := strings.Cut(text, ":")
		if !ok {
			return
		}
		k, v = strings.Join(strings.Fields(k), " "), strings.TrimSpace(v)
		if k == "" || v == "" || len(k) > 80 || len(s.Fields) >= 1000 {
			return
		}
		if _, dup := s.Fields[k]; !dup {
			s.Fields[k] = clip(v)
		}
	})
	if err != nil {
		return nil, err
	}
	if !title || len(s.Fields) == 0 {
		return nil, fmt.Errorf("%s:%d: not a loadgen summary (mlperf_log_summary.txt): expected \"MLPerf Results Summary\" and lines such as \"Samples per second: 189.806\"",
			name, max(lineNo, 1))
	}
	pick := func(keys []string) (string, string, error) {
		for _, k := range keys {
			if v, ok := s.Fields[k]; ok {
				if _, ok := number(v); !ok {
					return "", "", fmt.Errorf("%s: %q is %q, not a number", name, k, v)
				}
				return v, k, nil
			}
		}
		return "", "", nil
	}
	if s.TokensPerS, s.TokensKey, err = pick(tokenKeys); err != nil {
		return nil, err
	}
	if s.SamplesPerS, s.SamplesKey, err = pick(sampleKeys); err != nil {
		return nil, err
	}
	return s, nil
}
