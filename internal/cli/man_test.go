package cli

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// walkCommands calls fn with "llem NAME..." for every command --help
// documents.
func walkCommands(fn func(path string, c *ucli.Command)) {
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			p := path + " " + c.Name
			fn(p, c)
			walk(p, c.Subcommands)
		}
	}
	walk("llem", newApp(nil, nil, nil).Commands)
}

// roffMacro: the requests the page may use; any other line that starts
// with . or ' would be text that troff swallowed as an unknown request.
var roffMacro = regexp.MustCompile(`^\.(TH|SH|SS|PP|TP|RS|RE|nf|fi|nh|ad|B)( |$)`)

// llem man: every command and subcommand has its section with its usage,
// its whole --help description and every visible flag, and nothing is
// taken for a request.
func TestManPage(t *testing.T) {
	r := runLlem(t, "", "man")
	if r.code != 0 {
		t.Fatalf("llem man: exit %d: %s", r.code, r.stderr)
	}
	page := r.stdout
	if !strings.HasPrefix(page, ".TH LLEM 1 ") {
		t.Errorf("page starts %q", page[:min(40, len(page))])
	}
	for i, ln := range strings.Split(page, "\n") {
		if (strings.HasPrefix(ln, ".") || strings.HasPrefix(ln, "'")) && !roffMacro.MatchString(ln) {
			t.Errorf("line %d: %q is read as a roff request", i+1, ln)
		}
	}
	// Every hyphen is \- (a plain - may print as a Unicode hyphen, and a
	// flag copied from the page would not work).
	if n := strings.Count(strings.ReplaceAll(page, `\-`, ""), "-"); n > 0 {
		t.Errorf("%d hyphens not written as \\-", n)
	}
	// The page's text, with the escapes undone, as a reader sees it.
	text := strings.NewReplacer(`\-`, "-", `\e`, `\`, `\&`, "", `\fB`, "", `\fR`, "", `\fI`, "", `\(dq`, `"`).Replace(page)
	walkCommands(func(path string, c *ucli.Command) {
		if !strings.Contains(text, "\n.SS \""+path+" ") && !strings.Contains(text, "\n.SS \""+path+"\"") {
			t.Errorf("no section for %s", path)
		}
		// Every line of the description, as prose or as an example.
		for _, ln := range strings.Split(c.Description, "\n") {
			if ln = strings.TrimSpace(ln); ln != "" && !strings.Contains(text, ln) {
				t.Errorf("%s: the page lacks its help line %q", path, ln)
			}
		}
		for _, f := range c.VisibleFlags() {
			if !strings.Contains(text, "--"+f.Names()[0]) {
				t.Errorf("%s: the page lacks --%s", path, f.Names()[0])
			}
		}
	})
}

// The page formats without a warning and reads as the help does: flags
// with ASCII hyphens, examples line by line. Where groff is missing
// (apt-get install groff-base; CI installs it) only TestManPage runs.
func TestManPageRenders(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not found: the page's formatting is not checked")
	}
	page := runLlem(t, "", "man").stdout
	var out, errb bytes.Buffer
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-rLL=100n", "-P-c", "-P-b", "-P-o", "-P-u") // plain text: no overstriking
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(page), &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"llem - measure the energy of LLM inference",
		"llem record [flags] -- COMMAND [ARGS...]",
		// examples of record's help line by line, their indentation kept
		"\n           llem record --device sim --seed 1 -- sleep 20\n",
		"\n               --model NAME --concurrency 32 --warmup 60s",
		"--cycles value",
		"llem import nvidia-smi",
		"llem completion bash|zsh",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("formatted page lacks %q", want)
		}
	}
	if strings.ContainsRune(got, '\u2010') || strings.ContainsRune(got, '\u2212') {
		// (Debian's groff prints a plain - as ASCII in man pages anyway;
		// TestManPage checks the page escapes every one.)
		t.Errorf("formatted page has Unicode hyphens or minus signs: copied flags would not work")
	}
}

func TestCompletionArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"completion", "bash"}, 0, "complete -o filenames -F _llem_complete llem"},
		{[]string{"completion", "zsh"}, 0, "#compdef llem"},
		{[]string{"completion"}, 2, "give one shell"},
		{[]string{"completion", "bash", "zsh"}, 2, "give one shell"},
		{[]string{"completion", "fish"}, 2, `give bash or zsh, got "fish"`},
	} {
		r := runLlem(t, "", c.args...)
		if r.code != c.code || !strings.Contains(r.stdout+r.stderr, c.want) {
			t.Errorf("llem %v: exit %d, want %d and %q:\n%s%s", c.args, r.code, c.code, c.want, r.stdout, r.stderr)
		}
	}
}
