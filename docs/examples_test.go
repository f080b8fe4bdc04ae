// Package docs holds llem's documentation; its test runs the examples.
package docs

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An example is a ```console block of a document: each line that starts
// with "$ " is a shell command, the lines after it (to the next command or
// the block's end) its output, standard error included. A line "..." in
// the output stands for any number of lines. The commands of a block run
// in one shell, in order, in a directory where testdata/ and examples/ are
// the repository's and llem (also as bin/llem) is built from this tree.
type example struct {
	doc, cmd string
	line     int
	want     []string
	got      []string // after the run
}

var update = flag.Bool("update", false, "rewrite the documented outputs from the commands' own (keeping each \"...\" elision)")

func examples(t *testing.T, doc string) [][]example {
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks [][]example
	var block []example
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !in && strings.TrimSpace(line) == "```console":
			in, block = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, block)
		case in && strings.HasPrefix(line, "$ "):
			block = append(block, example{doc: doc, cmd: line[2:], line: n})
		case in && len(block) > 0:
			block[len(block)-1].want = append(block[len(block)-1].want, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

func TestExamples(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to run the examples")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "llem"), "./cmd/llem")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	docs, _ := filepath.Glob("*.md")
	docs = append(docs, "../README.md")
	ran := 0
	for _, doc := range docs {
		dir := workDir(t, root, bin) // a document's blocks share their files
		blocks := examples(t, doc)
		for _, block := range blocks {
			runBlock(t, dir, bin, block)
			ran += len(block)
		}
		if *update {
			rewrite(t, doc, blocks)
		}
	}
	if ran < 10 {
		t.Errorf("only %d documented commands ran: the docs' console examples are not being found", ran)
	}
}

const sep = "@@llem-example-end@@"

// workDir is a directory where testdata/ and examples/ are the
// repository's and bin/ holds the llem built for the test.
func workDir(t *testing.T, root, bin string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"testdata", "examples"} {
		if err := os.Symlink(filepath.Join(root, d), filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bin, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runBlock(t *testing.T, dir, bin string, block []example) {
	t.Helper()
	var script strings.Builder
	script.WriteString("exec 2>&1\n")
	for _, ex := range block {
		// The command's exit status survives the separator for a later $?.
		fmt.Fprintf(&script, "%s\n__rc=$?; echo %s; (exit $__rc)\n", ex.cmd, sep)
	}
	cmd := exec.Command("sh", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "LLEM_EVENTS=")
	out, _ := cmd.Output()
	outputs := strings.Split(string(out), sep+"\n")
	for i, ex := range block {
		got := ""
		if i < len(outputs) {
			got = outputs[i]
		}
		block[i].got = strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if got == "" {
			block[i].got = nil
		}
		if !*update && !matches(block[i].got, trimBlank(ex.want)) {
			t.Errorf("%s:%d: $ %s\n--- got\n%s\n--- want (the document)\n%s", ex.doc, ex.line, ex.cmd, got, strings.Join(ex.want, "\n"))
		}
	}
}

// trimBlank drops the blank lines that end an output: the document's
// space before the next command.
func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// matches compares output lines with the documented ones, where "..."
// matches any run of lines.
func matches(got, want []string) bool {
	if len(want) == 0 {
		return len(got) == 0 || (len(got) == 1 && got[0] == "")
	}
	if want[0] == "..." {
		for k := 0; k <= len(got); k++ {
			if matches(got[k:], want[1:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && strings.TrimRight(got[0], " ") == strings.TrimRight(want[0], " ") && matches(got[1:], want[1:])
}

// rewrite puts each command's output in place of the documented one. An
// output documented with "..." keeps its shape: as many lines before and
// after the elision as the document had.
func rewrite(t *testing.T, doc string, blocks [][]example) {
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	// From the last command up, so that earlier line numbers hold.
	var all []example
	for _, bl := range blocks {
		all = append(all, bl...)
	}
	for k := len(all) - 1; k >= 0; k-- {
		ex := all[k]
		out := trimBlank(ex.got)
		blanks := len(ex.want) - len(trimBlank(ex.want))
		want := trimBlank(ex.want)
		for i, w := range want {
			if w == "..." {
				head, tail := i, len(want)-i-1
				if head+tail < len(out) {
					out = append(append(append([]string{}, out[:head]...), "..."), out[len(out)-tail:]...)
				}
				break
			}
		}
		for range blanks {
			out = append(out, "")
		}
		start := ex.line // the command's line, 1-based: its output follows
		lines = append(lines[:start], append(append([]string{}, out...), lines[start+len(ex.want):]...)...)
	}
	if err := os.WriteFile(doc, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}
