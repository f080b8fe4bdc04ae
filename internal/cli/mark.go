package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/events"
)

func markCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "mark",
		Usage:       "send an event to the recording llem (for shell scripts)",
		ArgsUsage:   "[NAME] [key=value...]",
		Description: helpText("mark"),
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "kind", Usage: "event kind: mark, phase_start, phase_end, request_start, first_token, token, request_end"},
		},
		Action: func(c *ucli.Context) error {
			args := c.Args().Slice()
			name := ""
			// The first argument is NAME unless it is already a key=value pair.
			if len(args) > 0 && !strings.Contains(args[0], "=") {
				name, args = args[0], args[1:]
			}
			msg, err := events.MarkFromArgs(c.String("kind"), name, args)
			if err != nil {
				return usagef("mark: %v", err)
			}
			return events.SendOnce(msg)
		},
	}
}
