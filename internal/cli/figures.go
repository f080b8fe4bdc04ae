package cli

import (
	"errors"
	"io"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/figures"
)

func figuresCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "figures",
		Usage:       "regenerate a paper's figures and tables from a manifest, with provenance",
		ArgsUsage:   "MANIFEST.toml",
		Description: helpText("figures"),
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
