package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/analyze/methods"
	"github.com/llem/llem/analyze/report"
	"github.com/llem/llem/plots"
)

func replayCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "replay",
		Usage:       "re-measure each window of a run as other tools would have (nvidia-smi, Zeus, CodeCarbon, MLPerf, ...) and compare",
		ArgsUsage:   "RUN_DIR|DIR...",
		Description: helpText("replay"),
		Flags: append(methodologyFlags(),
			&ucli.StringFlag{Name: "as", Usage: "comma-separated `METHODS` (" + methods.Forms + ")"},
			&ucli.BoolFlag{Name: "json", Usage: "write one JSON document: {runs: [{run, windows: [{name, kind, cycle, start_s, end_s, duration_s, llem_energy_j, methods: [{method, energy_j, mean_power_w, error_pct}]}]}]}"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on standard error"},
			&ucli.StringFlag{Name: "plot", Usage: "also draw each method's error against the window length into `FILE` (.pdf, .svg or .png)"},
			&ucli.StringFlag{Name: "width", Value: "double", Usage: "figure width for --plot: single (3.5 in) or double (7 in)"},
		),
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("replay: %v", err)
		},
		Action: runReplay,
	}
}

func runReplay(c *ucli.Context) error {
	if strings.TrimSpace(c.String("as")) == "" {
		return usagef("replay: --as is required: the methods to replay, comma-separated (%s); usage: llem replay [--json] --as METHODS RUN_DIR|DIR...", methods.Forms)
	}
	ms, err := methods.ParseList(c.String("as"))
	if err != nil {
		return usagef("replay: --as: %v", err)
	}
	width, err := plots.ParseWidth(c.String("width"))
	if err != nil {
		return usagef("replay: --width: %v", err)
	}
	var format plots.Format
	if p := c.String("plot"); p != "" {
		if format, err = plots.FormatOf(p); err != nil {
			return usagef("replay: --plot: %v", err)
		}
	}
	s, err := readSettings(c)
	if err != nil {
		return err
	}
	runs, err := openRuns(c, s)
	if err != nil {
		return err
	}
	doc := methods.Doc{Runs: []methods.RunReplay{}}
	for _, r := range runs {
		doc.Runs = append(doc.Runs, methods.Replay(r, ms))
	}
	err = writeOut(c, func(w io.Writer) error {
		if c.Bool("json") {
			return writeJSON(w, doc)
		}
		return report.ReplayTable(w, doc)
	})
	if err != nil || c.String("plot") == "" {
		return err
	}
	fig, err := plots.ReplayErrorsOf(doc, width)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := fig.Render(&buf, format, 0); err != nil {
		return err
	}
	if err := os.WriteFile(c.String("plot"), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "llem: wrote %s\n", c.String("plot"))
	}
	return nil
}
