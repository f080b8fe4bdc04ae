package plots

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteSet draws the standard set of `llem analyze --plots` into dir: a
// timeline of each run (<run-base>-timeline) and the power per node of
// each multi-node job (<job-base>-nodes), and across the runs the
// latency, efficiency, pareto and power figures, each as SVG and PNG. A
// figure the runs cannot give (latency without requests) is skipped with
// a note. It says on log where the figures are.
func WriteSet(dir string, runs []*Run, log io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	var wrote []string
	write := func(base string, kind Kind, rs []*Run) error {
		fig, err := Draw(kind, rs, Single)
		if err != nil {
			fmt.Fprintf(log, "llem: plots: %s skipped: %v\n", base, err)
			return nil
		}
		for _, n := range fig.Notes {
			fmt.Fprintf(log, "llem: plots: %s\n", n)
		}
		for _, ext := range []string{".svg", ".png"} {
			p := filepath.Join(dir, base+ext)
			if err := fig.WriteFile(p, DefaultDPI); err != nil {
				return fmt.Errorf("%s: %w", dir, err)
			}
			wrote = append(wrote, p)
		}
		return nil
	}
	// Runs with the same directory name (a/run, b/run) are numbered.
	count := map[string]int{}
	for _, r := range runs {
		count[filepath.Base(filepath.Clean(r.Dir))]++
	}
	seen := map[string]int{}
	for i, r := range runs {
		base := filepath.Base(filepath.Clean(r.Dir))
		if count[base] > 1 {
			seen[base]++
			base = fmt.Sprintf("%s-%d", base, seen[base])
		}
		if err := write(base+"-timeline", Timeline, runs[i:i+1]); err != nil {
			return err
		}
		if r.Result.Job != nil {
			if err := write(base+"-nodes", Nodes, runs[i:i+1]); err != nil {
				return err
			}
		}
	}
	for _, k := range []Kind{Latency, Efficiency, Pareto, Power} {
		if err := write(string(k), k, runs); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "llem: plots: wrote %d figures to %s:\n", len(wrote), dir)
	for _, p := range wrote {
		fmt.Fprintf(log, "  %s\n", p)
	}
	return nil
}
