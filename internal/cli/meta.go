package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/internal/manpage"
)

// versionCommand prints the version, as --version does: users type both.
func versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "version",
		Usage:       "print llem's version",
		Description: helpText("version"),
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
		Name:        "completion",
		Usage:       "print a shell completion script: bash or zsh",
		ArgsUsage:   "bash|zsh",
		Description: helpText("completion"),
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion: give one shell, bash or zsh")
			}
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
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

// zshCompletion is zsh's own completion (after urfave/cli's
// zsh_autocomplete): llem lists the words, with each command's one-line
// usage when its environment has 0=zsh (urfave/cli's signal), and
// _describe shows them. It works sourced after compinit, and as the file
// _llem in $fpath.
const zshCompletion = `#compdef llem

_llem() {
  local -a opts line
  line=("${(@)words[1,CURRENT-1]}")
  [[ ${words[CURRENT]} == -* ]] && line+=("${words[CURRENT]}")   # a flag being typed: llem lists the flags
  opts=("${(@f)$(env 0=zsh "${line[@]}" --generate-bash-completion 2>/dev/null)}")
  if [[ -n ${opts[1]} ]]; then
    _describe 'llem' opts
  else
    _files
  fi
}

if [[ ${funcstack[1]} == _llem ]]; then
  _llem "$@"        # autoloaded from $fpath
else
  compdef _llem llem
fi
`

// manCommand prints llem's man page, made from the same help as --help.
func manCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "man",
		Usage:       "print llem's man page (roff)",
		Description: helpText("man"),
		Action: func(c *ucli.Context) error {
			_, err := fmt.Fprint(c.App.Writer, manpage.Roff(manPage(c.App)))
			return err
		},
	}
}

// manPage is the app's help as a man page: its description and flags,
// then every command and subcommand with its usage, its whole --help
// description and its flags. (urfave/cli's ToMan leaves out the commands'
// descriptions, most of the help, and reads the plain-text help as
// Markdown: an indented "# comment" in an example becomes a heading.)
func manPage(app *ucli.App) manpage.Page {
	p := manpage.Page{
		Name: app.Name, Section: "1", Version: app.Version, Summary: app.Usage,
		Synopsis:    "llem [--help] [--version] COMMAND [OPTIONS] [ARGUMENTS...]",
		Description: app.Description,
		Options:     manOptions(app.VisibleFlags()),
		OptionsNote: "Every command takes --help, which prints its section below.",
		SeeAlso:     "README.md and docs/ in llem's source: the trace format, the event protocol (docs/events.md) and the methodology.",
	}
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			if c.Hidden || c.Name == "help" {
				continue
			}
			name := path + " " + c.Name
			mc := manpage.Command{Heading: strings.TrimSpace(name + " " + c.ArgsUsage), Description: c.Description,
				Options: manOptions(c.VisibleFlags())}
			if c.Usage != "" {
				mc.Summary = strings.ToUpper(c.Usage[:1]) + c.Usage[1:] + "."
			}
			p.Commands = append(p.Commands, mc)
			walk(name, c.Subcommands)
		}
	}
	walk(app.Name, app.Commands)
	return p
}

// manOptions is flags as --help lists them, less --help itself.
func manOptions(flags []ucli.Flag) []manpage.Option {
	var out []manpage.Option
	for _, f := range flags {
		if f.Names()[0] != "help" {
			head, usage, _ := strings.Cut(ucli.FlagStringer(f), "\t")
			out = append(out, manpage.Option{Head: head, Usage: usage})
		}
	}
	return out
}
