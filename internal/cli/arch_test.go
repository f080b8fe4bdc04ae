package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// The layout's rule (README, "Layout"): trace stores, record and the
// importers write, analyze computes, plots/htmlreport/analyze/report draw,
// the CLI parses. These tests keep it so (issue 16).

// goFile is a parsed non-test Go file of the module, by its directory
// relative to the module root.
type goFile struct {
	dir  string
	path string
	fset *token.FileSet
	file *ast.File
}

func moduleFiles(t *testing.T) []goFile {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var files []goFile
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || (d.Name() == "interop" && p != root)) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		files = append(files, goFile{dir: filepath.ToSlash(rel), path: p, fset: fset, file: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// belowCLI: every package but the CLI, the binary and the benchmark
// harnesses (which run llem's command lines).
func belowCLI(dir string) bool {
	return dir != "internal/cli" && !strings.HasPrefix(dir, "cmd/") && !strings.HasPrefix(dir, "bench")
}

func importsOf(f goFile) []string {
	var out []string
	for _, im := range f.file.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		out = append(out, p)
	}
	return out
}

func TestNoCLIBelowTheCLI(t *testing.T) {
	for _, f := range moduleFiles(t) {
		if !belowCLI(f.dir) {
			continue
		}
		for _, p := range importsOf(f) {
			if strings.HasPrefix(p, "github.com/urfave/cli") {
				t.Errorf("%s imports %s: only internal/cli parses the command line", f.path, p)
			}
		}
	}
}

// Packages below the CLI name settings by key and options in words: a
// message with an llem flag in it would be wrong for a manifest, a config
// file or another caller.
func TestNoFlagNamesBelowTheCLI(t *testing.T) {
	flags := map[string]bool{}
	var walk func(cmds []*ucli.Command)
	walk = func(cmds []*ucli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				for _, n := range f.Names() {
					if len(n) > 1 {
						flags[n] = true
					}
				}
			}
			walk(c.Subcommands)
		}
	}
	walk(newApp(nil, nil, nil).Commands)
	if !flags["resamples"] || !flags["measure-phase"] {
		t.Fatalf("flags read from the app: %v", flags)
	}
	flagRe := regexp.MustCompile(`--([a-z][a-z0-9-]*)`)
	for _, f := range moduleFiles(t) {
		if !belowCLI(f.dir) {
			continue
		}
		ast.Inspect(f.file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			for _, m := range flagRe.FindAllStringSubmatch(lit.Value, -1) {
				if flags[m[1]] {
					t.Errorf("%s: a string names llem's flag --%s", f.fset.Position(lit.Pos()), m[1])
				}
			}
			return true
		})
	}
}

// plots draws what analyze computed: it imports no statistics.
func TestPlotsImportNoStatistics(t *testing.T) {
	stats := []string{"github.com/llem/llem/analyze/", "gonum.org/v1/gonum/stat"}
	allowed := map[string]bool{"github.com/llem/llem/analyze/methods": true} // replayed measurements, drawn
	for _, f := range moduleFiles(t) {
		if f.dir != "plots" && f.dir != "htmlreport" {
			continue
		}
		for _, p := range importsOf(f) {
			for _, s := range stats {
				if strings.HasPrefix(p, s) && !allowed[p] && !(f.dir == "htmlreport" && p == "github.com/llem/llem/analyze/bootstrap") {
					t.Errorf("%s imports %s: figures draw analyze's numbers, they do not compute their own", f.path, p)
				}
			}
		}
	}
}

func TestCLIStaysSmall(t *testing.T) {
	lines := 0
	for _, f := range moduleFiles(t) {
		if f.dir == "internal/cli" {
			lines += f.fset.Position(f.file.End()).Line
		}
	}
	// The budget grows with the commands, not with what each does: a
	// command's flags, help and wiring fit in 130 lines on average; more
	// means domain logic or formatting has crept in.
	commands := len(newApp(nil, nil, nil).Commands)
	if limit := 130 * commands; lines >= limit {
		t.Errorf("internal/cli holds %d lines of non-test code for %d commands (limit %d): domain logic and formatting belong in analyze, trace, record or the drawing packages",
			lines, commands, limit)
	}
}

func TestNoLongFunctionsInAnalyze(t *testing.T) {
	for _, f := range moduleFiles(t) {
		if f.dir != "analyze" && !strings.HasPrefix(f.dir, "analyze/") {
			continue
		}
		for _, d := range f.file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			if n := f.fset.Position(fd.End()).Line - f.fset.Position(fd.Pos()).Line + 1; n > 100 {
				t.Errorf("%s: %s is %d lines: split it into named steps", f.fset.Position(fd.Pos()), fd.Name.Name, n)
			}
		}
	}
}

// Every command's manual is there, with no placeholder left unfilled.
func TestHelpTexts(t *testing.T) {
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(path + " " + c.Name)
			if len(c.Description) < 80 || strings.Contains(c.Description, "{{") {
				t.Errorf("llem %s: description %q", name, c.Description)
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", newApp(nil, nil, nil).Commands)
}
