package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"
)

// versionCommand prints the version, as --version does: users type both.
func versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print llem's version",
		Description: `Prints the version this binary was built from (a release tag, or the
module version and VCS revision Go stamped into it). The same text as
llem --version. Every run's meta.json records it too, so a figure can be traced
to the llem that recorded and the llem that analyzed it.`,
		Action: func(c *ucli.Context) error {
			fmt.Fprintf(c.App.Writer, "llem version %s\n", version())
			return nil
		},
	}
}

// completionCommand prints a shell completion script. The scripts ask
// llem itself for the words (urfave/cli's --generate-bash-completion), so
// they stay right as commands and flags change.
func completionCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash or zsh",
		ArgsUsage: "bash|zsh",
		Description: `The script asks llem for the words as you type, so it knows every
command and flag of this version. Add to ~/.bashrc:   source <(llem completion bash)
Add to ~/.zshrc:    source <(llem completion zsh)`,
		Action: func(c *ucli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, "autoload -U +X bashcompinit && bashcompinit\n"+bashCompletion)
			default:
				return usagef("completion: give bash or zsh, got %q", c.Args().First())
			}
			return nil
		},
	}
}

// bashCompletion completes with the words llem lists for the command line
// typed so far.
const bashCompletion = `_llem_complete() {
  local words cur="${COMP_WORDS[COMP_CWORD]}" n=$((COMP_CWORD - 1))
  case "$cur" in -*) n=$COMP_CWORD ;; esac   # a flag being typed: llem lists the flags
  words=$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:n}" --generate-bash-completion 2>/dev/null)
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [ ${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _llem_complete llem
`

// manCommand prints llem's man page, made from the same help as --help.
func manCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "man",
		Usage: "print llem's man page (roff)",
		Description: `Prints every command's help as one roff man page, section 1, made from
the same text as --help so the two never disagree. Install it with
  llem man > /usr/local/share/man/man1/llem.1 && mandb`,
		Action: func(c *ucli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, page)
			return err
		},
	}
}
