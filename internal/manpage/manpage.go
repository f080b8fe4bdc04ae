// Package manpage writes a manual page in roff (man(7) macros) from the
// plain text of a program's help: prose paragraphs, which the formatter
// refills, and indented lines (examples, tables), which it keeps as they
// are. internal/cli gives it llem's help (llem man).
package manpage

import (
	"fmt"
	"strings"
)

// Page is a manual page's content, in plain text.
type Page struct {
	Name, Section, Version string
	Summary                string // the NAME line's text after the dash
	Synopsis               string
	Description            string
	Options                []Option
	OptionsNote            string // a paragraph after the options
	Commands               []Command
	SeeAlso                string
}

// Command is one command's section.
type Command struct {
	Heading     string // e.g. "llem record [flags] -- COMMAND [ARGS...]"
	Summary     string // a sentence
	Description string
	Options     []Option
}

// Option is one option as help lists it: "--out value, -o value" and what
// it does.
type Option struct{ Head, Usage string }

// Roff is the page in roff.
func Roff(p Page) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s %s \"\" %s \"%s manual\"\n",
		strings.ToUpper(p.Name), p.Section, quoted(p.Name+" "+p.Version), escape(p.Name))
	b.WriteString(".nh\n.ad l\n") // commands and paths: no hyphenation, ragged right
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", escape(p.Name), escape(p.Summary))
	b.WriteString(".SH SYNOPSIS\n")
	line(&b, p.Synopsis)
	if p.Description != "" {
		b.WriteString(".SH DESCRIPTION\n")
		text(&b, p.Description)
	}
	if len(p.Options) > 0 {
		b.WriteString(".SH OPTIONS\n")
		options(&b, p.Options)
	}
	if p.OptionsNote != "" {
		b.WriteString(".PP\n")
		line(&b, p.OptionsNote)
	}
	if len(p.Commands) > 0 {
		b.WriteString(".SH COMMANDS\n")
	}
	for _, c := range p.Commands {
		fmt.Fprintf(&b, ".SS %s\n", quoted(c.Heading))
		if c.Summary != "" {
			b.WriteString(".PP\n")
			line(&b, c.Summary)
		}
		if c.Description != "" {
			b.WriteString(".PP\n")
			text(&b, c.Description)
		}
		if len(c.Options) > 0 {
			b.WriteString(".PP\nOptions:\n")
			options(&b, c.Options)
		}
	}
	if p.SeeAlso != "" {
		b.WriteString(".SH SEE ALSO\n")
		line(&b, p.SeeAlso)
	}
	return b.String()
}

// options writes one tagged paragraph per option, its head in bold.
func options(b *strings.Builder, opts []Option) {
	for _, o := range opts {
		fmt.Fprintf(b, ".TP\n\\fB%s\\fR\n", escape(o.Head))
		line(b, o.Usage)
	}
}

func indented(ln string) bool { return strings.HasPrefix(ln, " ") || strings.HasPrefix(ln, "\t") }

// text writes plain help text: paragraphs of prose, and indented lines
// kept line by line (less the help's 3-space indent) in an indented block.
func text(b *strings.Builder, s string) {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	literal := false
	end := func() {
		if literal {
			b.WriteString(".fi\n.RE\n")
			literal = false
		}
	}
	for i, ln := range lines {
		switch {
		case strings.TrimSpace(ln) == "":
			// A blank line between indented lines stays in their block;
			// otherwise it ends a paragraph.
			if literal && indented(nextNonBlank(lines, i)) {
				b.WriteString("\n")
				continue
			}
			end()
			b.WriteString(".PP\n")
		case indented(ln):
			if !literal {
				b.WriteString(".RS 4\n.nf\n")
				literal = true
			}
			line(b, strings.TrimPrefix(strings.TrimPrefix(ln, "   "), "\t"))
		default:
			end()
			line(b, ln)
		}
	}
	end()
}

func nextNonBlank(lines []string, i int) string {
	for _, ln := range lines[i+1:] {
		if strings.TrimSpace(ln) != "" {
			return ln
		}
	}
	return ""
}

// line writes one line of text: escaped, and never read as a request.
func line(b *strings.Builder, ln string) {
	ln = escape(ln)
	if strings.HasPrefix(ln, ".") || strings.HasPrefix(ln, "'") {
		ln = `\&` + ln
	}
	b.WriteString(ln)
	b.WriteString("\n")
}

// escape makes text print as it is: backslashes, and ASCII hyphens (a
// plain - may print as a Unicode hyphen, which breaks a copied option).
func escape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

// quoted is a macro argument: in double quotes, with quotes inside as \(dq.
func quoted(s string) string {
	return `"` + strings.ReplaceAll(escape(s), `"`, `\(dq`) + `"`
}
