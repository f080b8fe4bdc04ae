package dcgm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llem/llem/trace"
)

// MaxLine bounds a line's length; dcgmi dmon's lines are a few hundred bytes.
const MaxLine = 1 << 20

// MaxReasons is how many skipped lines a Log describes one by one.
const MaxReasons = 5

// example is what dmon's output looks like, for error messages.
const example = `"#Entity   POWER   TOTEC ..." then "ID   W   mJ ..." then "GPU 0   250.123   123456789 ..."`

// LineError is a line that was skipped, and why.
type LineError struct {
	File   string
	Line   int
	Reason string
}

func (e LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

// Column is one column of the header.
type Column struct {
	Name string // as printed: "POWER"
	// Stored is the llem column or meta.json field the values go to; ""
	// when the column is not imported.
	Stored string
	f      *field
}

// Row is one valid line about a GPU.
type Row struct {
	Line int
	// Sample is the dmon loop iteration the line belongs to, from 0: a
	// sample ends when an entity repeats.
	Sample int
	// TimeNs is the line's own timestamp; 0 when the log has none.
	TimeNs int64
	GPU    int
	// State holds the device_state values (State.GPU and TimestampNs are
	// left for the importer); HasState tells whether any is set.
	State    trace.DeviceState
	HasState bool
	EnergyMj *int64
}

// GPU is what the log says of one GPU beyond its rows.
type GPU struct {
	Index int
	Name  string
	UUID  string
	// Absent counts values that were absent, per column name, then per
	// marker (N/A, (empty): the entity has no such field, (truncated)).
	Absent map[string]map[string]int
	// Valid counts the values read, per column name.
	Valid map[string]int
}

// Log is one parsed dcgmi dmon output.
type Log struct {
	File    string
	Columns []Column // of the first header
	Rows    []Row
	GPUs    []*GPU // in the order first seen
	// Timestamped is true when every line begins with a timestamp (dmon's
	// output piped through ts, for example); the rows then have TimeNs.
	Timestamped bool
	// Zoned is true when the timestamps carry a UTC offset.
	Zoned bool
	// Samples counts dmon's loop iterations (0 to Samples-1).
	Samples int
	// DataLines counts the lines that are neither headers nor blank;
	// Skipped those that could not be read, Reasons the first MaxReasons.
	DataLines int
	Skipped   int
	Reasons   []LineError
	// Others counts rows of entities other than GPUs (GPU-I, Switch,
	// links...), read but not imported, per kind.
	Others map[string]int
	// NewHeaders lists the lines of headers that differ from the first
	// (the output of another dmon run appended).
	NewHeaders []int
	// Stopped is true when dmon's "dmon was stopped ..." line ends the log.
	Stopped bool
}

// Parse reads the output of dcgmi dmon: a header line "#Entity" and the
// fields' short names, a units line beginning "ID", then one line per
// entity per sample, "GPU 0" and the values, with the two header lines
// repeated every 14 samples. Each line may begin with a timestamp
// ("2024-05-02 10:00:00.123456" or RFC 3339), as when dmon's output is
// piped through ts. A line that cannot be read is skipped and counted; a
// file with no header, no column llem imports or no valid GPU line is an
// error naming the file and line.
func Parse(r io.Reader, name string) (*Log, error) {
	lg := &Log{File: name, Others: map[string]int{}}
	p := &parser{lg: lg, gpuOf: map[int]int{}, seen: map[string]bool{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	lineNo := 0
	stamped := 0 // lines of data with a timestamp, and without
	unstamped := 0
	for sc.Scan() {
		lineNo++
		line := sc.Bytes()
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte-order mark
		}
		// Trailing blanks are kept: dmon pads every column, so a line that
		// ends early was cut.
		text := strings.TrimRight(string(line), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		ts, rest, zoned, hasTS, tsErr := cutTime(text)
		body := strings.TrimSpace(rest)
		switch {
		case strings.HasPrefix(body, "#Entity"):
			if err := p.header(rest, lineNo); err != nil {
				return nil, err
			}
			continue
		case body == "ID" || strings.HasPrefix(body, "ID ") || strings.HasPrefix(body, "ID\t"):
			continue // the units line under the header
		case strings.HasPrefix(body, "dmon was stopped"):
			lg.Stopped = true
			continue
		}
		if p.cols == nil {
			if tsErr == nil && looksLikeRow(body) {
				return nil, fmt.Errorf("%s:%d: a row before any header line: expected dcgmi dmon's output from its first line, %s",
					name, lineNo, example)
			}
			return nil, fmt.Errorf("%s:%d: not dcgmi dmon output: %q; expected %s", name, lineNo, clip(text), example)
		}
		lg.DataLines++
		reason := ""
		switch {
		case tsErr != nil:
			reason = tsErr.Error()
		case hasTS && unstamped > 0 || !hasTS && stamped > 0:
			reason = "some lines begin with a timestamp and others do not"
		default:
			if hasTS {
				stamped++
				lg.Zoned = lg.Zoned || zoned
			} else {
				unstamped++
			}
			reason = p.row(rest, ts, lineNo)
		}
		if reason != "" {
			lg.Skipped++
			if len(lg.Reasons) < MaxReasons {
				lg.Reasons = append(lg.Reasons, LineError{name, lineNo, reason})
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: a line longer than %d bytes: not dcgmi dmon output", name, lineNo+1, MaxLine)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if p.cols == nil {
		return nil, fmt.Errorf("%s:%d: empty file: expected dcgmi dmon's output, %s", name, max(lineNo, 1), example)
	}
	lg.Timestamped = stamped > 0
	if len(lg.Rows) == 0 {
		switch {
		case lg.DataLines == 0:
			return nil, fmt.Errorf("%s:%d: no data after the header (line %d): expected lines such as \"GPU 0   250.123 ...\"",
				name, lineNo+1, p.firstHeader)
		case len(lg.Reasons) == 0:
			return nil, fmt.Errorf("%s: no GPU line: the %d lines describe other entities (%s); llem imports GPUs (dcgmi dmon -e ... without -i, or -i 0,1,...)",
				name, lg.DataLines, others(lg.Others))
		}
		return nil, fmt.Errorf("%s: none of the %d data lines could be read; the first: %v (expected lines such as \"GPU 0   250.123 ...\" under the header of line %d)",
			name, lg.DataLines, lg.Reasons[0], p.firstHeader)
	}
	if p.iterSeen {
		lg.Samples = p.sample + 1
	}
	return lg, nil
}

func others(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// looksLikeRow reports whether a line begins like a row of dmon's output.
func looksLikeRow(body string) bool {
	f := strings.Fields(body)
	if len(f) < 2 {
		return false
	}
	_, err := strconv.Atoi(f[1])
	return err == nil
}

// parser holds the current header while the rows are read.
type parser struct {
	lg          *Log
	headerText  string // the current header, trimmed
	cols        []Column
	pos         []int // where each column begins in the header (0: the entity)
	firstHeader int
	gpuOf       map[int]int // GPU index -> index into lg.GPUs
	sample      int
	iterSeen    bool
	seen        map[string]bool // entities of the current sample
	cells       []string
}

func (p *parser) header(rest string, lineNo int) error {
	name := p.lg.File
	body := strings.TrimSpace(rest)
	if p.cols != nil && body == p.headerText {
		return nil // dmon repeats its header every 14 samples
	}
	lead := len(rest) - len(strings.TrimLeft(rest, " \t"))
	text := rest[lead:]
	var cols []Column
	var pos []int
	for i := 0; i < len(text); {
		if text[i] == ' ' || text[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(text) && text[j] != ' ' && text[j] != '\t' {
			j++
		}
		pos = append(pos, i)
		if len(pos) > 1 {
			cols = append(cols, Column{Name: text[i:j]})
		}
		i = j
	}
	known, perSample := 0, 0
	seen := map[target]bool{}
	for i := range cols {
		f := byShort[cols[i].Name]
		if f == nil || seen[f.target] {
			continue
		}
		seen[f.target] = true
		cols[i].f, cols[i].Stored = f, f.column
		known++
		if f.target.isState() || f.target == tEnergy {
			perSample++
		}
	}
	if len(cols) == 0 {
		return fmt.Errorf("%s:%d: a header with no field: expected %s (dcgmi dmon -e 155,156,...)", name, lineNo, example)
	}
	if perSample == 0 {
		return fmt.Errorf("%s:%d: no column that llem stores per sample in the header %q: expected at least one of POWER (field 155), TOTEC (156), POWINST (157), TMPTR (150), SMCLK (100), MMCLK (101), GPUTL (203)",
			name, lineNo, clip(body))
	}
	if p.cols == nil {
		p.firstHeader = lineNo
		p.lg.Columns = cols
	} else {
		p.lg.NewHeaders = append(p.lg.NewHeaders, lineNo)
	}
	p.headerText, p.cols, p.pos = body, cols, pos
	return nil
}

// row reads one line after its timestamp; it returns why the line was
// skipped, or "".
func (p *parser) row(rest string, ts int64, lineNo int) string {
	lead := len(rest) - len(strings.TrimLeft(rest, " \t"))
	text := rest[lead:]
	ef := strings.Fields(text)
	if len(ef) >= 4 && ef[2] == "LINK" {
		ef = ef[:4]
	} else {
		ef = ef[:min(len(ef), 2)]
	}
	if len(ef) < 2 {
		return fmt.Sprintf("%q is not an entity such as \"GPU 0\" and its values", clip(strings.TrimSpace(text)))
	}
	id, err := strconv.Atoi(ef[len(ef)-1])
	if err != nil || id < 0 || id > math.MaxInt16 {
		return fmt.Sprintf("%q does not begin with an entity such as \"GPU 0\"", clip(strings.TrimSpace(text)))
	}
	// One sample of dmon prints each entity once: a repeated entity begins
	// the next sample.
	key := strings.Join(ef, " ")
	if p.seen[key] {
		p.sample++
		clear(p.seen)
	}
	p.seen[key] = true
	p.iterSeen = true
	cells, ok := p.byPosition(text, len(ef))
	if !ok {
		if cells, ok = p.byFields(text, len(ef)); !ok {
			return fmt.Sprintf("%d values, the header has %d fields", len(cells), len(p.cols))
		}
	}
	if ef[0] != "GPU" || len(ef) != 2 {
		kind := ef[0]
		if len(ef) > 2 {
			kind += " " + strings.Join(ef[2:len(ef)-1], " ")
		}
		if _, ok := p.lg.Others[kind]; ok || len(p.lg.Others) < 16 {
			p.lg.Others[kind]++
		}
		return ""
	}

	row := Row{Line: lineNo, Sample: p.sample, TimeNs: ts, GPU: id}
	type absent struct{ col, marker string }
	var abs []absent
	var valid []string
	var name, uuid string
	for i, c := range p.cols {
		if c.f == nil {
			continue
		}
		v := cells[i]
		switch {
		case v == "":
			abs = append(abs, absent{c.Name, "(empty)"})
			continue
		case v == "N/A":
			abs = append(abs, absent{c.Name, "N/A"})
			continue
		case strings.HasSuffix(v, "..."):
			abs = append(abs, absent{c.Name, "(truncated)"})
			continue
		}
		switch c.f.target {
		case tName:
			name = v
		case tUUID:
			uuid = v
		default:
			if why := set(c.f, v, &row); why != "" {
				return fmt.Sprintf("%s: %s", c.Name, why)
			}
		}
		valid = append(valid, c.Name)
	}

	gi, ok := p.gpuOf[id]
	if !ok {
		gi = len(p.lg.GPUs)
		p.gpuOf[id] = gi
		p.lg.GPUs = append(p.lg.GPUs, &GPU{Index: id, Absent: map[string]map[string]int{}, Valid: map[string]int{}})
	}
	g := p.lg.GPUs[gi]
	if g.Name == "" {
		g.Name = name
	}
	if g.UUID == "" {
		g.UUID = uuid
	}
	for _, a := range abs {
		if g.Absent[a.col] == nil {
			g.Absent[a.col] = map[string]int{}
		}
		g.Absent[a.col][a.marker]++
	}
	for _, c := range valid {
		g.Valid[c]++
	}
	p.lg.Rows = append(p.lg.Rows, row)
	return ""
}

// byPosition cuts a row at the columns of the header, as dcgmi prints
// them: every value left-aligned in its padded column, so that values with
// spaces (a GPU name) and empty values (a field the entity lacks) are read
// right. ok is false when a value straddles a column's start, when the
// entity is not within the first column, or when the line ends before
// the last column (a cut line).
func (p *parser) byPosition(text string, entityWords int) (cells []string, ok bool) {
	cells = p.cells[:0]
	n := len(p.pos)
	if n < 2 || len(text) <= p.pos[n-1] {
		return nil, false
	}
	if len(strings.Fields(text[:p.pos[1]])) != entityWords {
		return nil, false
	}
	for i := 1; i < n; i++ {
		start := p.pos[i]
		end := len(text)
		if i+1 < n {
			end = p.pos[i+1]
		}
		if text[start-1] != ' ' && text[start-1] != '\t' {
			return nil, false // a value runs into this column
		}
		cell := text[start:end]
		if t := strings.TrimSpace(cell); t != "" && (cell[0] == ' ' || cell[0] == '\t') {
			return nil, false // not left-aligned at the column's start
		}
		cells = append(cells, strings.TrimSpace(cell))
	}
	p.cells = cells
	return cells, true
}

// byFields splits a row at its blanks, for output whose spacing was
// changed; the entity is its first entityWords words.
func (p *parser) byFields(text string, entityWords int) (cells []string, ok bool) {
	f := strings.Fields(text)
	cells = f[min(entityWords, len(f)):]
	return cells, len(cells) == len(p.cols)
}

// set stores a value in the row; it returns why it could not be read, or "".
func set(f *field, v string, row *Row) string {
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || !(v[0] >= '0' && v[0] <= '9' || v[0] == '-' || v[0] == '.') ||
		strings.ContainsAny(v, "xXpP_") {
		return fmt.Sprintf("%q is not a number", clip(v))
	}
	x = math.Round(x * f.scale)
	lo, hi := 0.0, float64(1<<62)
	switch f.target {
	case tTemperature:
		lo, hi = -273, math.MaxInt32
	case tSMClock, tMemClock, tGPUUtil, tMemUtil:
		hi = math.MaxInt32
	case tPState:
		hi = 32
	}
	if x < lo || x > hi {
		return fmt.Sprintf("%q is out of range", clip(v))
	}
	i64 := int64(x)
	i32 := int32(min(x, math.MaxInt32))
	st := &row.State
	switch f.target {
	case tEnergy:
		row.EnergyMj = &i64
		return ""
	case tAvgPower:
		st.AveragePowerMw = &i64
	case tInstantPower:
		st.InstantPowerMw = &i64
	case tTemperature:
		st.TemperatureC = &i32
	case tSMClock:
		st.SMClockMHz = &i32
	case tMemClock:
		st.MemClockMHz = &i32
	case tGPUUtil:
		st.GPUUtilPct = &i32
	case tMemUtil:
		st.MemUtilPct = &i32
	case tMemUsed:
		st.MemoryUsedBytes = &i64
	case tPState:
		st.PState = &i32
	case tReasons:
		st.ClockEventReasons = &i64
	}
	row.HasState = true
	return ""
}

// Layouts of a timestamp at the start of a line: RFC 3339 (with or
// without an offset), or date and time separated by a blank, as
// ts '%Y-%m-%d %H:%M:%.S' prints them. Any fraction of a second is read.
var (
	zonedLayouts = []string{time.RFC3339Nano}
	localLayouts = []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006/01/02 15:04:05"}
)

// cutTime cuts a timestamp from the start of a line. A line that begins
// with a digit must begin with a timestamp (err says why not); ts is in ns
// since the Unix epoch, read as UTC when the timestamp has no offset.
func cutTime(line string) (ts int64, rest string, zoned, ok bool, err error) {
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, line, false, false, nil
	}
	first, after, _ := strings.Cut(s, " ")
	if t, e := parseLayouts(first, zonedLayouts); e == nil {
		return t, after, true, true, nil
	}
	if t, e := parseLayouts(first, localLayouts); e == nil {
		return t, after, false, true, nil
	}
	second, after2, _ := strings.Cut(strings.TrimLeft(after, " "), " ")
	if t, e := parseLayouts(first+" "+second, localLayouts); e == nil {
		return t, after2, false, true, nil
	}
	return 0, line, false, false, fmt.Errorf("the line begins with %q, not a timestamp such as \"2024-05-02 10:00:00.123\" or \"2024-05-02T10:00:00.123Z\"", clip(first))
}

func parseLayouts(v string, layouts []string) (int64, error) {
	for _, l := range layouts {
		t, err := time.Parse(l, v)
		if err != nil {
			continue
		}
		if y := t.Year(); y < 1971 || y > 2261 {
			return 0, fmt.Errorf("timestamp %q is out of range", clip(v))
		}
		return t.UnixNano(), nil
	}
	return 0, errors.New("no layout")
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
