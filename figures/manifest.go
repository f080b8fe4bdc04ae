// Package figures regenerates a paper's figures and tables from a
// manifest: a TOML file naming each output, the runs it is drawn from and
// the methodology settings, so that `llem figures MANIFEST` rebuilds every
// one of them, byte for byte, and records where each came from
// (provenance.json). docs/figures.md documents the format.
package figures

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/plots"
	"github.com/llem/llem/trace"
)

// Manifest is a parsed and checked manifest. Every path in it is the
// manifest's own (relative to its directory) joined to that directory.
type Manifest struct {
	Path         string // the manifest file, as given
	Dir          string // its directory
	SettingsFile string // the settings_file, resolved; "" if none
	Settings     analyze.Settings
	Provenance   string // where provenance.json goes, resolved
	Figures      []Figure
	Tables       []Table

	analysed map[string]*analyze.Run // by run directory: each run is analysed once
}

// Figure is one [[figure]] entry.
type Figure struct {
	Line  int // of its [[figure]] header
	N     int // 1-based, among the figures
	Kind  plots.Kind
	Runs  []string // run directories, resolved, in order
	Out   string   // resolved
	Width plots.Width
	DPI   int
}

// Table is one [[table]] entry.
type Table struct {
	Line     int
	N        int
	Kind     string // "analyze" or "compare"
	Format   string // "csv", "json" or "text"
	Runs     []string
	Out      string
	GroupBy  string  // compare only
	Baseline string  // compare only
	Alpha    float64 // compare only; 0: the default
}

// Error is a problem with the manifest, located at a line and key.
type Error struct {
	File string
	Line int    // 0: unknown
	Key  string // "[[figure]] #2: kind", ...; may be empty
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

type rawManifest struct {
	Settings     map[string]any `toml:"settings"`
	SettingsFile string         `toml:"settings_file"`
	Provenance   string         `toml:"provenance"`
	Figure       []rawFigure    `toml:"figure"`
	Table        []rawTable     `toml:"table"`
}

type rawFigure struct {
	Kind  string   `toml:"kind"`
	Runs  []string `toml:"runs"`
	Out   string   `toml:"out"`
	Width string   `toml:"width"`
	DPI   int      `toml:"dpi"`
}

type rawTable struct {
	Kind     string   `toml:"kind"`
	Format   string   `toml:"format"`
	Runs     []string `toml:"runs"`
	Out      string   `toml:"out"`
	GroupBy  string   `toml:"group_by"`
	Baseline string   `toml:"baseline"`
	Alpha    float64  `toml:"alpha"`
}

// Load reads and checks the manifest at path: every key known, every kind
// and format valid, every run present, every glob matching a run, no two
// outputs at one path. Its errors are *Error.
func Load(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	loc := locate(string(b))
	var raw rawManifest
	md, err := toml.Decode(string(b), &raw)
	if err != nil {
		e := &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			e.Line, e.Msg = pe.Position.Line, pe.Message
			if pe.LastKey != "" {
				e.Key = pe.LastKey
			}
		} else if mm := typeErrRe.FindStringSubmatch(e.Msg); mm != nil {
			// A type mismatch: "line N (last key "k"): incompatible types".
			e.Line, _ = strconv.Atoi(mm[1])
			e.Key, e.Msg = mm[2], mm[3]
		}
		return nil, e
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		section, key := "", k.String()
		if len(k) > 1 {
			section, key = k[0], strings.Join(k[1:], ".")
		}
		where := section
		switch section {
		case "figure":
			where = "[[figure]]"
		case "table":
			where = "[[table]]"
		case "":
			where = "top level"
		default:
			where = "[" + section + "]"
		}
		known := map[string]string{
			"":       "settings_file, provenance, [settings], [[figure]], [[table]]",
			"figure": "kind, runs, out, width, dpi",
			"table":  "kind, format, runs, out, group_by, baseline, alpha",
		}[section]
		msg := fmt.Sprintf("unknown key %q in %s", key, where)
		if known != "" {
			msg += " (known: " + known + ")"
		}
		return nil, &Error{File: path, Line: loc.line(section, -1, k[len(k)-1]), Msg: msg}
	}

	m := &Manifest{Path: path, Dir: filepath.Dir(path)}
	fail := func(line int, key, format string, args ...any) error {
		return &Error{File: path, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
	}

	// Settings: the defaults, then settings_file, then [settings], as
	// every command reads them (analyze.ReadSettings).
	if raw.SettingsFile != "" {
		m.SettingsFile = m.resolve(raw.SettingsFile)
	}
	m.Settings, err = analyze.ReadSettings(m.SettingsFile, analyze.Overrides(raw.Settings))
	var fe *analyze.FileError
	var se *analyze.SettingError
	switch {
	case errors.As(err, &fe):
		return nil, fail(loc.line("", -1, "settings_file"), "settings_file", "%v", err)
	case errors.As(err, &se):
		if _, inManifest := raw.Settings[se.Key]; inManifest {
			return nil, fail(loc.line("settings", -1, se.Key), "[settings] "+se.Key, "%s", se.Msg)
		}
		return nil, fail(loc.line("", -1, "settings_file"), "settings_file", "%v", err)
	case err != nil:
		return nil, fail(loc.line("settings", -1, ""), "[settings]", "%v", err)
	}

	if len(raw.Figure) == 0 && len(raw.Table) == 0 {
		return nil, fail(0, "", "no [[figure]] or [[table]]: nothing to make")
	}
	outs := map[string]string{}
	claim := func(out, who string, line int, key string) error {
		if prev, dup := outs[out]; dup {
			return fail(line, key, "out %s is also written by %s", out, prev)
		}
		outs[out] = who
		return nil
	}

	for i, rf := range raw.Figure {
		n := i + 1
		line := loc.line("figure", i, "")
		key := fmt.Sprintf("[[figure]] #%d", n)
		kl := func(k string) int {
			if l := loc.line("figure", i, k); l > 0 {
				return l
			}
			return line
		}
		f := Figure{Line: line, N: n, DPI: plots.DefaultDPI}
		if rf.Kind == "" {
			return nil, fail(line, key, "no kind: want one of timeline, latency, efficiency, pareto, power, nodes")
		}
		if f.Kind, err = plots.ParseKind(rf.Kind); err != nil {
			return nil, fail(kl("kind"), key+" kind", "%v", err)
		}
		if rf.Out == "" {
			return nil, fail(line, key, "no out: name the file to write (.pdf, .svg or .png)")
		}
		if _, err := plots.FormatOf(rf.Out); err != nil {
			return nil, fail(kl("out"), key+" out", "%v", err)
		}
		f.Out = m.resolve(rf.Out)
		if rf.Width == "" {
			rf.Width = "single"
		}
		if f.Width, err = plots.ParseWidth(rf.Width); err != nil {
			return nil, fail(kl("width"), key+" width", "%v", err)
		}
		if rf.DPI != 0 {
			if rf.DPI < 10 || rf.DPI > 2400 {
				return nil, fail(kl("dpi"), key+" dpi", "%d: want a whole number of dots per inch from 10 to 2400", rf.DPI)
			}
			f.DPI = rf.DPI
		}
		if f.Runs, err = m.expand(rf.Runs); err != nil {
			return nil, fail(kl("runs"), key+" runs", "%v", err)
		}
		if (f.Kind == plots.Timeline || f.Kind == plots.Nodes) && len(f.Runs) != 1 {
			return nil, fail(kl("runs"), key+" runs", "a %s figure draws one run, and %d match (%s): give each its own [[figure]]", f.Kind, len(f.Runs), strings.Join(m.names(f.Runs), ", "))
		}
		if err := claim(f.Out, key, kl("out"), key+" out"); err != nil {
			return nil, err
		}
		m.Figures = append(m.Figures, f)
	}

	for i, rt := range raw.Table {
		n := i + 1
		line := loc.line("table", i, "")
		key := fmt.Sprintf("[[table]] #%d", n)
		kl := func(k string) int {
			if l := loc.line("table", i, k); l > 0 {
				return l
			}
			return line
		}
		t := Table{Line: line, N: n, Kind: rt.Kind, GroupBy: rt.GroupBy, Baseline: rt.Baseline, Alpha: rt.Alpha}
		switch rt.Kind {
		case "analyze", "compare":
		case "":
			return nil, fail(line, key, "no kind: want analyze or compare")
		default:
			return nil, fail(kl("kind"), key+" kind", "unknown kind %q: want analyze (llem analyze) or compare (llem compare)", rt.Kind)
		}
		if rt.Kind == "analyze" {
			for _, k := range []string{"group_by", "baseline", "alpha"} {
				if loc.line("table", i, k) > 0 {
					return nil, fail(kl(k), key+" "+k, "only a compare table takes %s", k)
				}
			}
		}
		if rt.Alpha != 0 && !(rt.Alpha > 0 && rt.Alpha < 1) {
			return nil, fail(kl("alpha"), key+" alpha", "must be in (0, 1), got %g", rt.Alpha)
		}
		if rt.Out == "" {
			return nil, fail(line, key, "no out: name the file to write (.csv, .json or .txt)")
		}
		t.Out = m.resolve(rt.Out)
		t.Format = rt.Format
		if t.Format == "" {
			switch strings.ToLower(filepath.Ext(rt.Out)) {
			case ".csv":
				t.Format = "csv"
			case ".json":
				t.Format = "json"
			case ".txt":
				t.Format = "text"
			default:
				return nil, fail(kl("out"), key+" out", "%s: give format (csv, json or text), or name the file .csv, .json or .txt", rt.Out)
			}
		}
		switch t.Format {
		case "csv", "json", "text":
		default:
			return nil, fail(kl("format"), key+" format", "unknown format %q: want csv, json or text", t.Format)
		}
		if t.Runs, err = m.expand(rt.Runs); err != nil {
			return nil, fail(kl("runs"), key+" runs", "%v", err)
		}
		if t.Kind == "compare" && len(t.Runs) < 2 {
			return nil, fail(kl("runs"), key+" runs", "a comparison needs at least two runs, and %d match", len(t.Runs))
		}
		if err := claim(t.Out, key, kl("out"), key+" out"); err != nil {
			return nil, err
		}
		m.Tables = append(m.Tables, t)
	}

	if raw.Provenance != "" {
		if !strings.EqualFold(filepath.Ext(raw.Provenance), ".json") {
			return nil, fail(loc.line("", -1, "provenance"), "provenance", "%s: name the file .json", raw.Provenance)
		}
		m.Provenance = m.resolve(raw.Provenance)
	} else {
		// Next to the outputs: in the directory of the first.
		first := ""
		if len(m.Figures) > 0 {
			first = m.Figures[0].Out
		} else {
			first = m.Tables[0].Out
		}
		m.Provenance = filepath.Join(filepath.Dir(first), "provenance.json")
	}
	if who, dup := outs[m.Provenance]; dup {
		return nil, fail(loc.line("", -1, "provenance"), "provenance", "%s is also written by %s", m.Provenance, who)
	}
	return m, nil
}

// resolve joins a manifest path to the manifest's directory.
func (m *Manifest) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(m.Dir, filepath.FromSlash(p))
}

// Rel is how provenance and the outputs name a resolved path: relative
// to the manifest's directory, with forward slashes, so that they do not
// depend on the directory llem was run from.
func (m *Manifest) Rel(p string) string {
	r, err := filepath.Rel(m.Dir, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}

func (m *Manifest) names(dirs []string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = m.Rel(d)
	}
	return out
}

// expand turns the runs of an entry (paths or globs, relative to the
// manifest) into run directories: a run is itself, any other directory
// is searched one level deep, then two, as by llem analyze. A glob's
// matches that hold no run are skipped; a glob must match at least one
// run, and a plain path must be or hold one.
func (m *Manifest) expand(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, fmt.Errorf("no runs: give a list of run directories or globs, relative to the manifest")
	}
	var dirs []string
	seen := map[string]bool{}
	for _, p := range patterns {
		full := m.resolve(p)
		var cands []string
		isGlob := strings.ContainsAny(p, "*?[")
		if isGlob {
			matches, err := filepath.Glob(full)
			if err != nil {
				return nil, fmt.Errorf("%q: bad glob: %v", p, err)
			}
			cands = matches
		} else {
			st, err := os.Stat(full)
			if err != nil {
				return nil, fmt.Errorf("%q: no such run directory (%s)", p, full)
			}
			if !st.IsDir() {
				return nil, fmt.Errorf("%q: not a directory (give a run directory or a directory of runs)", p)
			}
			cands = []string{full}
		}
		var found []string
		for _, c := range cands {
			found = append(found, trace.RunsIn(c)...)
		}
		if len(found) == 0 {
			if isGlob && len(cands) == 0 {
				return nil, fmt.Errorf("%q matches nothing (%s)", p, full)
			}
			if isGlob {
				return nil, fmt.Errorf("%q matches no run (no %s in %d matches)", p, trace.MetaFile, len(cands))
			}
			return nil, fmt.Errorf("%q: not an llem run (no %s) and no runs inside it", p, trace.MetaFile)
		}
		for _, d := range found {
			if !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
	}
	return dirs, nil
}

// locator finds the line of a key in the manifest's text: TOML decoders
// report lines only for syntax errors, and an error in a valid manifest
// should point at its line too.
type locator struct {
	headers map[string][]int            // section -> header line of each entry
	keys    map[string][]map[string]int // section -> per entry, key -> line
}

var (
	typeErrRe = regexp.MustCompile(`^line (\d+) \(last key "([^"]*)"\): (.*)$`)
	headerRe  = regexp.MustCompile(`^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(#.*)?$`)
	keyRe     = regexp.MustCompile(`^\s*"?([A-Za-z0-9_-]+)"?\s*=`)
)

func locate(text string) *locator {
	l := &locator{headers: map[string][]int{"": {1}}, keys: map[string][]map[string]int{"": {{}}}}
	section := ""
	for i, s := range strings.Split(text, "\n") {
		n := i + 1
		if h := headerRe.FindStringSubmatch(s); h != nil {
			section = h[2]
			l.headers[section] = append(l.headers[section], n)
			l.keys[section] = append(l.keys[section], map[string]int{})
			continue
		}
		if k := keyRe.FindStringSubmatch(s); k != nil {
			ents := l.keys[section]
			if _, dup := ents[len(ents)-1][k[1]]; !dup {
				ents[len(ents)-1][k[1]] = n
			}
		}
	}
	return l
}

// line is where key is in the entry idx (-1: the first entry that has it)
// of section; with key "", the entry's header. 0 if not found.
func (l *locator) line(section string, idx int, key string) int {
	ents := l.keys[section]
	if key == "" {
		hs := l.headers[section]
		if idx < 0 {
			idx = 0
		}
		if idx < len(hs) {
			return hs[idx]
		}
		return 0
	}
	for i, e := range ents {
		if idx >= 0 && i != idx {
			continue
		}
		if n, ok := e[key]; ok {
			return n
		}
	}
	return 0
}
