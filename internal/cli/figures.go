package cli

import (
	"errors"
	"io"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/figures"
)

func figuresCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "figures",
		Usage:     "regenerate a paper's figures and tables from a manifest, with provenance",
		ArgsUsage: "MANIFEST.toml",
		Description: `Reads a TOML manifest that names figures (the kinds of llem plot) and tables
(llem analyze or llem compare output), the runs or globs of runs each uses
(relative to the manifest), the methodology settings ([settings]: any key of
docs/results.md "Settings", or settings_file) and the output paths, makes
every one of them, and writes provenance.json next to them (or at the
manifest's provenance path): the sha256 of every input file and output, the
llem version and the resolved settings with their hash and seed.

The same manifest and runs give byte-identical outputs and provenance. A bad
manifest (unknown key, missing run, a glob matching nothing, a bad kind)
exits with status 2 and names its line. docs/figures.md documents the format.

Example:
   llem figures examples/figures.toml`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on standard error"},
		},
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usagef("figures: %v", err)
		},
		Action: runFigures,
	}
}

func runFigures(c *ucli.Context) error {
	if c.NArg() != 1 {
		return usagef("figures: want one manifest, got %d; usage: llem figures [-q] MANIFEST.toml", c.NArg())
	}
	m, err := figures.Load(c.Args().First())
	var fe *figures.Error
	if errors.As(err, &fe) {
		return usagef("figures: %v", err)
	}
	if err != nil {
		return err
	}
	var log io.Writer = c.App.ErrWriter
	if c.Bool("quiet") {
		log = nil
	}
	_, err = figures.Generate(m, version(), log)
	if errors.As(err, &fe) {
		return usagef("figures: %v", err)
	}
	return err
}
