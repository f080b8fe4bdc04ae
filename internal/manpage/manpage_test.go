package manpage

import "testing"

func TestRoff(t *testing.T) {
	got := Roff(Page{
		Name: "tool", Section: "1", Version: "v1.2-3", Summary: "does a thing",
		Synopsis: "tool [--flag] FILE",
		Description: "Prose that the formatter refills,\n.dot and 'quote at a line's start, a \\ backslash.\n\n" +
			"Examples:\n   tool --a 1\n\n   # after a blank line, the same block\n       indented further\nMore prose.",
		Options:  []Option{{"--flag value, -f value", "what it does (default: 1)"}},
		Commands: []Command{{Heading: `tool sub "x"`, Summary: "A sub.", Description: "Sub help."}},
	})
	want := `.TH TOOL 1 "" "tool v1.2\-3" "tool manual"
.nh
.ad l
.SH NAME
tool \- does a thing
.SH SYNOPSIS
tool [\-\-flag] FILE
.SH DESCRIPTION
Prose that the formatter refills,
\&.dot and 'quote at a line's start, a \e backslash.
.PP
Examples:
.RS 4
.nf
tool \-\-a 1

# after a blank line, the same block
    indented further
.fi
.RE
More prose.
.SH OPTIONS
.TP
\fB\-\-flag value, \-f value\fR
what it does (default: 1)
.SH COMMANDS
.SS "tool sub \(dqx\(dq"
.PP
A sub.
.PP
Sub help.
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
