package nvsmi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llem/llem/trace"
)

// MaxLine bounds a line's length; nvidia-smi's lines are a few hundred bytes.
const MaxLine = 1 << 20

// MaxReasons is how many skipped lines a Log describes one by one.
const MaxReasons = 5

// example is what a data line looks like, for error messages.
const example = "2023/10/17 16:21:50.123, 75.23 W"

// Column is one column of the header.
type Column struct {
	Header string // as in the file: "power.draw [W]"
	Name   string // the field, lower case: "power.draw"
	Unit   string // the unit in brackets, "" if none
	// Stored is the llem column or meta.json field the values go to
	// ("average_power_mw", "gpus[].name"); "" when the column is not imported.
	Stored string
	// Why says why a column is not imported.
	Why string

	f     *field
	scale float64
}

// LineError is a line that was skipped, and why.
type LineError struct {
	File   string
	Line   int
	Reason string
}

// sizeRowsAfter is how many data lines Parse reads before it sizes Rows
// from the file's size and their mean length, once: growing a slice of
// millions of rows by appending holds the old and the new copy at once,
// and the garbage collector then lets the process grow to twice that.
const sizeRowsAfter = 1000

// readerSize is the size of r when it is a file, else -1.
func readerSize(r io.Reader) int64 {
	if f, ok := r.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return -1
}

// reserveRows gives lg.Rows and lg.Lines room for the rest of a file of
// size bytes, from the mean length of the read bytes' lines (5% spare).
func reserveRows(lg *Log, size, read int64) {
	perRow := float64(read) / float64(max(len(lg.Rows), 1))
	n := int(float64(size)/perRow*1.05) + 16
	if n <= cap(lg.Rows) || n > 1<<31 {
		return
	}
	lg.Rows = slices.Grow(lg.Rows, n-len(lg.Rows))
	lg.Lines = slices.Grow(lg.Lines, n-len(lg.Lines))
}

func (e LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

// GPU is one GPU as a single log names it: by its index, UUID or PCI bus
// id, whichever columns the log has (all empty when it has none).
type GPU struct {
	Index int // the index column's value; -1 without one
	UUID  string
	BusID string
	// Info holds the first value of each GPU field (name, driver_version,
	// power.limit...) in the log; Index is not set.
	Info trace.GPUInfo
	// Absent counts values that were absent ([N/A], [Unknown Error]...),
	// per field name (as Column.Name), then per marker as printed.
	Absent map[string]map[string]int
	// Valid counts rows with a value, per field name.
	Valid map[string]int
}

// Log is one parsed nvidia-smi CSV file.
type Log struct {
	File       string
	HeaderLine int
	Columns    []Column
	// Rows holds one device_state row per valid data line, in line order;
	// a row's GPU is its index into GPUs until Import maps it to llem's
	// index, and Lines[k] is the line number of Rows[k]. (Not a slice of
	// structs holding both: a 206 MB log is 2.5 million rows, and the
	// importer hands Rows to the writer as they are.)
	Rows  []trace.DeviceState
	Lines []int
	GPUs  []GPU
	// DataLines counts the lines after the header, blank ones excepted.
	DataLines int
	// Skipped counts data lines that could not be read; Reasons describes
	// the first MaxReasons of them.
	Skipped int
	Reasons []LineError
	// HasIdentity is true when the log has an index, uuid or pci.bus_id column.
	HasIdentity bool
}

// Parse reads the CSV that nvidia-smi --query-gpu=... --format=csv writes
// (with or without nounits). name labels messages. A line that cannot be
// read is skipped and counted; a file with no header, no timestamp column,
// no column to import or no valid data line is an error that names the
// file and line.
func Parse(r io.Reader, name string) (*Log, error) {
	lg := &Log{File: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	var (
		p      *parser
		lineNo int
		read   int64 // bytes read so far
	)
	size := readerSize(r)
	for sc.Scan() {
		lineNo++
		line := sc.Bytes()
		read += int64(len(line)) + 1
		if lg.DataLines == sizeRowsAfter && size > 0 {
			reserveRows(lg, size, read)
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte-order mark
		}
		text := strings.TrimSpace(string(line))
		if text == "" {
			continue
		}
		if p == nil {
			var err error
			if p, err = newParser(lg, text, lineNo); err != nil {
				return nil, err
			}
			continue
		}
		if text == p.header {
			continue // the header again: a log appended to by a restarted nvidia-smi
		}
		lg.DataLines++
		if reason := p.line(text, lineNo); reason != "" {
			lg.Skipped++
			if len(lg.Reasons) < MaxReasons {
				lg.Reasons = append(lg.Reasons, LineError{name, lineNo, reason})
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: a line longer than %d bytes: not an nvidia-smi CSV log", name, lineNo+1, MaxLine)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if p == nil {
		return nil, fmt.Errorf("%s:1: empty file: expected a header line such as \"timestamp, power.draw [W]\" (%s)", name, recordHint)
	}
	if len(lg.Rows) == 0 {
		if lg.DataLines == 0 {
			return nil, fmt.Errorf("%s:%d: no data after the header (line %d): expected lines such as %q",
				name, lineNo+1, lg.HeaderLine, example)
		}
		first := lg.Reasons[0]
		return nil, fmt.Errorf("%s: none of the %d data lines could be read; the first: %v (expected lines such as %q under the header of line %d)",
			name, lg.DataLines, first, example, lg.HeaderLine)
	}
	return lg, nil
}

const recordHint = "record with nvidia-smi --query-gpu=timestamp,power.draw,... --format=csv"

// parser holds the header's columns while the data lines are read.
type parser struct {
	lg        *Log
	header    string
	cols      []Column
	trailing  bool // the header ends in an empty cell (a trailing comma)
	ts        int  // column of the timestamp
	idx       int  // columns of the GPU identity, -1 if absent
	uuid, bus int
	gpuOf     map[string]int // identity key -> index into lg.GPUs
	cells     []string
	absent    []absentValue
}

type absentValue struct {
	col    int
	marker string
}

func newParser(lg *Log, header string, lineNo int) (*parser, error) {
	name := lg.File
	cells := split(header, nil)
	p := &parser{lg: lg, header: header, ts: -1, idx: -1, uuid: -1, bus: -1, gpuOf: map[string]int{}}
	if len(cells) > 1 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
		p.trailing = true
	}
	known, measured := 0, 0
	used := map[target]string{}
	for i, cell := range cells {
		n, unit := splitHeader(cell)
		c := Column{Header: cell, Name: n, Unit: unit}
		f := byName[n]
		switch {
		case cell == "":
			c.Why = "not imported: it has no name"
		case f == nil:
			c.Why = "not a field llem imports"
		case used[f.target] != "":
			c.Why = fmt.Sprintf("not imported: the same reading as column %q", used[f.target])
		default:
			scale, ok := unitScale(f.q, unit)
			if !ok {
				c.Why = fmt.Sprintf("not imported: unit [%s] not understood", unit)
				break
			}
			c.f, c.scale, c.Stored = f, scale, f.column
			used[f.target] = cell
			known++
			if f.target.isState() {
				measured++
			}
			switch f.target {
			case tTimestamp:
				p.ts = i
			case tIndex:
				p.idx = i
			case tUUID:
				p.uuid = i
			case tBusID:
				p.bus = i
			}
		}
		p.cols = append(p.cols, c)
	}
	lg.HeaderLine = lineNo
	lg.Columns = p.cols
	lg.HasIdentity = p.idx >= 0 || p.uuid >= 0 || p.bus >= 0
	if known == 0 {
		if len(cells) > 0 {
			if _, err := parseTime(cells[0]); err == nil {
				return nil, fmt.Errorf("%s:%d: no header line (this line is data): %s (not csv,noheader)", name, lineNo, recordHint)
			}
		}
		return nil, fmt.Errorf("%s:%d: not an nvidia-smi --query-gpu CSV header: %q; expected field names such as \"timestamp, power.draw [W]\" (%s)",
			name, lineNo, clip(header), recordHint)
	}
	if p.ts < 0 {
		return nil, fmt.Errorf("%s:%d: no timestamp column in the header %q: expected a timestamp field (%s)",
			name, lineNo, clip(header), recordHint)
	}
	if measured == 0 {
		return nil, fmt.Errorf("%s:%d: no column that llem stores per sample in the header %q: expected at least one of power.draw, power.draw.instant, temperature.gpu, clocks.sm, pstate, utilization.gpu, memory.used (%s)",
			name, lineNo, clip(header), recordHint)
	}
	return p, nil
}

// clip shortens s for a message.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// split cuts a line at its commas and trims each cell.
func split(line string, cells []string) []string {
	cells = cells[:0]
	for {
		i := strings.IndexByte(line, ',')
		if i < 0 {
			return append(cells, strings.TrimSpace(line))
		}
		cells = append(cells, strings.TrimSpace(line[:i]))
		line = line[i+1:]
	}
}

// line reads one data line; it returns why the line was skipped, or "".
func (p *parser) line(text string, lineNo int) string {
	cells := split(text, p.cells)
	p.cells = cells
	if p.trailing && len(cells) == len(p.cols)+1 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	if len(cells) != len(p.cols) {
		return fmt.Sprintf("%s, the header has %d", plural(len(cells), "field"), len(p.cols))
	}
	tsCell := cells[p.ts]
	if m, ok := marker(tsCell); ok {
		return fmt.Sprintf("timestamp is %s", m)
	}
	ts, err := parseTime(tsCell)
	if err != nil {
		return err.Error()
	}

	// The GPU this line describes.
	index := -1
	var uuid, bus string
	if p.idx >= 0 {
		v := cells[p.idx]
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > math.MaxInt16 {
			return fmt.Sprintf("index %q is not a GPU index", clip(v))
		}
		index = n
	}
	if p.uuid >= 0 {
		if _, ok := marker(cells[p.uuid]); !ok {
			uuid = cells[p.uuid]
		}
	}
	if p.bus >= 0 {
		if _, ok := marker(cells[p.bus]); !ok {
			bus = cells[p.bus]
		}
	}

	var st trace.DeviceState
	var inf trace.GPUInfo
	p.absent = p.absent[:0]
	for i, c := range p.cols {
		if c.f == nil {
			continue
		}
		t := c.f.target
		if t == tTimestamp || t == tIndex || t == tUUID || t == tBusID {
			continue
		}
		v := cells[i]
		if m, ok := marker(v); ok {
			p.absent = append(p.absent, absentValue{i, m})
			continue
		}
		if reason := c.set(v, &st, &inf); reason != "" {
			return fmt.Sprintf("%s: %s", c.Header, reason)
		}
	}

	// The line is good: keep it.
	key := ""
	switch {
	case p.idx >= 0:
		key = "index:" + strconv.Itoa(index)
	case uuid != "":
		key = "uuid:" + uuid
	case bus != "":
		key = "bus:" + bus
	}
	gi, ok := p.gpuOf[key]
	if !ok {
		gi = len(p.lg.GPUs)
		p.gpuOf[key] = gi
		p.lg.GPUs = append(p.lg.GPUs, GPU{Index: index, Absent: map[string]map[string]int{}, Valid: map[string]int{}})
	}
	g := &p.lg.GPUs[gi]
	if g.UUID == "" {
		g.UUID = uuid
	}
	if g.BusID == "" {
		g.BusID = bus
	}
	mergeInfo(&g.Info, inf)
	for _, a := range p.absent {
		n := p.cols[a.col].Name
		if g.Absent[n] == nil {
			g.Absent[n] = map[string]int{}
		}
		g.Absent[n][a.marker]++
	}
	for i, c := range p.cols {
		if c.f != nil && c.f.target > tBusID && !isAbsent(p.absent, i) {
			g.Valid[c.Name]++
		}
	}
	st.TimestampNs, st.GPU = ts, int32(gi)
	p.lg.Rows = append(p.lg.Rows, st)
	p.lg.Lines = append(p.lg.Lines, lineNo)
	return ""
}

func isAbsent(a []absentValue, col int) bool {
	for _, x := range a {
		if x.col == col {
			return true
		}
	}
	return false
}

// marker recognises nvidia-smi's placeholders for a value it does not
// have: [N/A], [Not Supported], [Unknown Error], [Insufficient
// Permissions], any other bracketed text, and an empty cell.
func marker(v string) (string, bool) {
	switch {
	case v == "":
		return "(empty)", true
	case len(v) >= 2 && v[0] == '[' && v[len(v)-1] == ']':
		return v, true
	case strings.EqualFold(v, "N/A"):
		return "[N/A]", true
	}
	return "", false
}

// Layouts of nvidia-smi's timestamp field ("2023/10/17 16:21:50.123"),
// and of the same with dashes; any fraction of a second is accepted.
var layouts = []string{"2006/01/02 15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

// parseTime reads a timestamp as UTC (nvidia-smi prints local time and no
// offset) and returns nanoseconds since the Unix epoch.
func parseTime(v string) (int64, error) {
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
	return 0, fmt.Errorf("timestamp %q is not of the form %q", clip(v), "2023/10/17 16:21:50.123")
}

// number reads a decimal number, with or without the column's unit after it.
func (c *Column) number(v string) (float64, bool) {
	num := v
	for _, u := range []string{c.Unit, defaultUnit(c.f.q)} {
		if u == "" {
			continue
		}
		if s, ok := strings.CutSuffix(v, u); ok {
			num = strings.TrimSpace(s)
			break
		}
	}
	if num == "" || !(num[0] >= '0' && num[0] <= '9' || num[0] == '-' || num[0] == '+' || num[0] == '.') {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(num, "xXpP_") {
		return 0, false
	}
	return f, true
}

func defaultUnit(q quantity) string {
	switch q {
	case qPower:
		return "W"
	case qClock:
		return "MHz"
	case qMemory:
		return "MiB"
	case qPercent:
		return "%"
	}
	return ""
}

// scaled reads a number in llem's unit, rounded, within [lo, hi].
func (c *Column) scaled(v string, lo, hi float64) (int64, string) {
	f, ok := c.number(v)
	if !ok {
		return 0, fmt.Sprintf("%q is not a number", clip(v))
	}
	x := math.Round(f * c.scale)
	if x < lo || x > hi {
		return 0, fmt.Sprintf("%q is out of range", clip(v))
	}
	return int64(x), ""
}

// set stores a cell's value in the row or the GPU description; it returns
// why the value could not be read, or "".
func (c *Column) set(v string, st *trace.DeviceState, inf *trace.GPUInfo) string {
	const maxI64 = 1 << 62 // far beyond any reading, and exact as a float64
	i64 := func(dst **int64, lo float64) string {
		x, why := c.scaled(v, lo, maxI64)
		if why == "" {
			*dst = &x
		}
		return why
	}
	i32 := func(dst **int32, lo float64) string {
		x, why := c.scaled(v, lo, math.MaxInt32)
		if why == "" {
			y := int32(x)
			*dst = &y
		}
		return why
	}
	switch c.f.target {
	case tName:
		inf.Name = v
	case tSerial:
		inf.Serial = v
	case tDriver:
		inf.DriverVersion = v
	case tComputeMode:
		inf.ComputeMode = v
	case tPersistence:
		var b bool
		switch strings.ToLower(v) {
		case "enabled":
			b = true
		case "disabled":
		default:
			return fmt.Sprintf("%q is not Enabled or Disabled", clip(v))
		}
		inf.PersistenceMode = &b
	case tPowerLimit:
		return i64(&inf.PowerLimitMw, 0)
	case tDefaultPowerLimit:
		return i64(&inf.DefaultPowerLimitMw, 0)
	case tMaxSMClock:
		return i32(&inf.MaxSMClockMHz, 0)
	case tMaxMemClock:
		return i32(&inf.MaxMemClockMHz, 0)
	case tAvgPower:
		return i64(&st.AveragePowerMw, 0)
	case tInstantPower:
		return i64(&st.InstantPowerMw, 0)
	case tTemperature:
		return i32(&st.TemperatureC, -273)
	case tSMClock:
		return i32(&st.SMClockMHz, 0)
	case tMemClock:
		return i32(&st.MemClockMHz, 0)
	case tGPUUtil:
		return i32(&st.GPUUtilPct, 0)
	case tMemUtil:
		return i32(&st.MemUtilPct, 0)
	case tMemUsed:
		return i64(&st.MemoryUsedBytes, 0)
	case tPState:
		s, ok := strings.CutPrefix(strings.ToUpper(v), "P")
		n, err := strconv.Atoi(s)
		if !ok || err != nil || n < 0 || n > 32 || s[0] == '+' || s[0] == '-' {
			return fmt.Sprintf("%q is not a P-state (P0 to P15)", clip(v))
		}
		x := int32(n)
		st.PState = &x
	case tReasons:
		h := v
		if len(h) > 2 && h[0] == '0' && (h[1] == 'x' || h[1] == 'X') {
			h = h[2:]
		}
		u, err := strconv.ParseUint(h, 16, 64)
		if err != nil || strings.ContainsRune(h, '_') {
			return fmt.Sprintf("%q is not a hexadecimal bitmask", clip(v))
		}
		x := int64(u)
		st.ClockEventReasons = &x
	}
	return ""
}

// mergeInfo keeps the first value of every field.
func mergeInfo(dst *trace.GPUInfo, src trace.GPUInfo) {
	setS := func(d *string, s string) {
		if *d == "" {
			*d = s
		}
	}
	setS(&dst.Name, src.Name)
	setS(&dst.Serial, src.Serial)
	setS(&dst.DriverVersion, src.DriverVersion)
	setS(&dst.ComputeMode, src.ComputeMode)
	if dst.PersistenceMode == nil {
		dst.PersistenceMode = src.PersistenceMode
	}
	if dst.PowerLimitMw == nil {
		dst.PowerLimitMw = src.PowerLimitMw
	}
	if dst.DefaultPowerLimitMw == nil {
		dst.DefaultPowerLimitMw = src.DefaultPowerLimitMw
	}
	if dst.MaxSMClockMHz == nil {
		dst.MaxSMClockMHz = src.MaxSMClockMHz
	}
	if dst.MaxMemClockMHz == nil {
		dst.MaxMemClockMHz = src.MaxMemClockMHz
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
