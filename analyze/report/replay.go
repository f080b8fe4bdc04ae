package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/llem/llem/analyze/methods"
)

// ReplayTable writes `llem replay`'s table: one block per run, one line
// per window and method; a window's own columns are printed on its first
// line only.
func ReplayTable(w io.Writer, doc methods.Doc) error {
	for i, r := range doc.Runs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "run  %s\n\n", r.Run)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "window\tcycle\tstart s\tdur s\tllem J\t  %s\tmethod J\terror %%\tmean W\t\n", padRight("method"))
		for _, win := range r.Windows {
			for k, m := range win.Methods {
				cols := []string{"", "", "", "", ""}
				if k == 0 {
					cols = []string{win.Name, cycle(win.Cycle), fmt.Sprintf("%.1f", win.StartS), fmt.Sprintf("%.1f", win.DurationS),
						num(win.LlemEnergyJ, 1)}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t  %s\t%s\t%s\t%s\t\n", cols[0], cols[1], cols[2], cols[3], cols[4],
					padRight(m.Method), num(m.EnergyJ, 1), signed(m.ErrorPct, 2), num(m.MeanPowerW, 1))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, "(error % = (method - llem) / llem; llem J: the energy counter with the edge intervals split by the ~50 Hz driver power; - : the method cannot measure the window)")
	return err
}

// padRight left-aligns a method name inside the right-aligned table.
func padRight(s string) string {
	const width = 20
	if len(s) >= width {
		return s
	}
	return s + strings.Repeat(" ", width-len(s))
}
