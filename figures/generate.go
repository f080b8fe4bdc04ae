package figures

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/llem/llem/analyze"
	"github.com/llem/llem/analyze/compare"
	"github.com/llem/llem/analyze/report"
	"github.com/llem/llem/plots"
)

// Provenance is what provenance.json records: every input's and output's
// content hash, the llem version and the resolved settings. Paths are
// relative to the manifest's directory, with forward slashes.
type Provenance struct {
	Tool         string           `json:"tool"`
	LlemVersion  string           `json:"llem_version"`
	Manifest     File             `json:"manifest"`
	SettingsFile *File            `json:"settings_file,omitempty"`
	Settings     analyze.Settings `json:"settings"`
	SettingsHash string           `json:"settings_hash"`
	Seed         uint64           `json:"seed"`
	Inputs       []File           `json:"inputs"`
	Outputs      []Output         `json:"outputs"`
}

// File is a file and its content hash.
type File struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Output is a figure or table written.
type Output struct {
	Path   string   `json:"path"`
	Type   string   `json:"type"` // "figure" or "table"
	Kind   string   `json:"kind"`
	Format string   `json:"format"`
	Width  string   `json:"width,omitempty"`
	DPI    int      `json:"dpi,omitempty"`
	Runs   []string `json:"runs"`
	Bytes  int64    `json:"bytes"`
	SHA256 string   `json:"sha256"`
}

// Generate makes every output of m, in manifest order, then writes the
// provenance. version is the llem version recorded; log (may be nil)
// receives a line per output and the figures' notes.
func Generate(m *Manifest, version string, log io.Writer) (*Provenance, error) {
	if log == nil {
		log = io.Discard
	}
	p := &Provenance{Tool: "llem figures", LlemVersion: version, Settings: m.Settings,
		SettingsHash: m.Settings.Hash(), Seed: m.Settings.Seed, Inputs: []File{}, Outputs: []Output{}}
	var err error
	if p.Manifest, err = hashFile(m.Path, m.Rel(m.Path)); err != nil {
		return nil, err
	}
	if m.SettingsFile != "" {
		f, err := hashFile(m.SettingsFile, m.Rel(m.SettingsFile))
		if err != nil {
			return nil, err
		}
		p.SettingsFile = &f
	}
	used := map[string]bool{}

	for _, f := range m.Figures {
		for _, d := range f.Runs {
			used[d] = true
		}
		runs, err := m.open(f.Runs)
		if err != nil {
			return nil, fmt.Errorf("[[figure]] #%d: %w", f.N, err)
		}
		fig, err := plots.Draw(f.Kind, runs, f.Width)
		if err != nil {
			return nil, &Error{File: m.Path, Line: f.Line, Key: fmt.Sprintf("[[figure]] #%d", f.N), Msg: err.Error()}
		}
		for _, n := range fig.Notes {
			fmt.Fprintf(log, "llem: figures: %s: %s\n", m.Rel(f.Out), n)
		}
		format, _ := plots.FormatOf(f.Out)
		var buf bytes.Buffer
		if err := fig.Render(&buf, format, f.DPI); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Rel(f.Out), err)
		}
		o := Output{Type: "figure", Kind: string(f.Kind), Format: string(format), Width: f.Width.String(), Runs: m.names(f.Runs)}
		if format == plots.PNG {
			o.DPI = f.DPI
		}
		if err := m.write(f.Out, buf.Bytes(), &o, log); err != nil {
			return nil, err
		}
		p.Outputs = append(p.Outputs, o)
	}

	for _, t := range m.Tables {
		for _, d := range t.Runs {
			used[d] = true
		}
		var buf bytes.Buffer
		var err error
		switch t.Kind {
		case "analyze":
			err = m.analyzeTable(&buf, t, version)
		case "compare":
			err = m.compareTable(&buf, t, version)
		}
		if err != nil {
			return nil, err
		}
		o := Output{Type: "table", Kind: t.Kind, Format: t.Format, Runs: m.names(t.Runs)}
		if err := m.write(t.Out, buf.Bytes(), &o, log); err != nil {
			return nil, err
		}
		p.Outputs = append(p.Outputs, o)
	}

	// Every file of every run used, sorted by path.
	for d := range used {
		err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			f, err := hashFile(path, m.Rel(path))
			if err != nil {
				return err
			}
			p.Inputs = append(p.Inputs, f)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("hashing the inputs: %w", err)
		}
	}
	sort.Slice(p.Inputs, func(i, j int) bool { return p.Inputs[i].Path < p.Inputs[j].Path })

	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFile(m.Provenance, append(b, '\n')); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "llem: figures: wrote %s\n", m.Provenance)
	return p, nil
}

func (m *Manifest) write(path string, b []byte, o *Output, log io.Writer) error {
	if err := writeFile(path, b); err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	o.Path, o.Bytes, o.SHA256 = m.Rel(path), int64(len(b)), hex.EncodeToString(sum[:])
	fmt.Fprintf(log, "llem: figures: wrote %s\n", path)
	return nil
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// open analyses each run once per manifest (every figure and table of a
// manifest uses the same settings) and returns copies named for this set
// of runs: by the manifest's relative paths, labelled as analyze.Open
// labels them.
func (m *Manifest) open(dirs []string) ([]*analyze.Run, error) {
	if m.analysed == nil {
		m.analysed = map[string]*analyze.Run{}
	}
	var runs []*analyze.Run
	for _, d := range dirs {
		r, ok := m.analysed[d]
		if !ok {
			got, err := analyze.Open([]string{d}, m.Settings, nil)
			if err != nil {
				return nil, err
			}
			r = got[0]
			m.analysed[d] = r
		}
		c := *r
		runs = append(runs, &c)
	}
	analyze.NameRuns(runs)
	return runs, nil
}

func (m *Manifest) analyzeTable(w io.Writer, t Table, version string) error {
	runs, err := m.open(t.Runs)
	if err != nil {
		return fmt.Errorf("[[table]] #%d: %w", t.N, err)
	}
	// Runs named as in the manifest, not by the directory llem ran in.
	for i, r := range runs {
		r.Result.Run = m.Rel(t.Runs[i])
	}
	res := analyze.Document(runs, m.Settings, version)
	bw := bufio.NewWriter(w)
	switch t.Format {
	case "json":
		enc := json.NewEncoder(bw)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	case "csv":
		err = report.CSV(bw, res)
	default:
		err = report.Table(bw, res)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

func (m *Manifest) compareTable(w io.Writer, t Table, version string) error {
	o := compare.DefaultOptions()
	o.GroupBy, o.Baseline = t.GroupBy, t.Baseline
	if t.Alpha != 0 {
		o.Alpha = t.Alpha
	}
	key := fmt.Sprintf("[[table]] #%d", t.N)
	runs, err := m.open(t.Runs)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	for i, r := range runs {
		r.Result.Run = m.Rel(t.Runs[i])
	}
	res, err := compare.Compare(runs, m.Settings, o)
	if err != nil {
		return &Error{File: m.Path, Line: t.Line, Key: key, Msg: err.Error()}
	}
	res.LlemVersion = version
	bw := bufio.NewWriter(w)
	switch t.Format {
	case "json":
		err = compare.JSON(bw, res)
	case "csv":
		err = compare.CSV(bw, res)
	default:
		err = compare.Table(bw, res)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

func hashFile(path, name string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", path, err)
	}
	return File{Path: name, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
