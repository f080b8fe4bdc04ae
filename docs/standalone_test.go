package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The docs stand alone: they cite published sources (sources.md), never
// files outside the repository, and every relative link resolves.
func TestDocsStandAlone(t *testing.T) {
	files, _ := filepath.Glob("*.md")
	files = append(files, "../README.md")
	help, _ := filepath.Glob("../internal/cli/help/*.txt")
	link := regexp.MustCompile(`\]\(([^)#]+)(#[^)]*)?\)`)
	code := regexp.MustCompile("(?s)```.*?```|`[^`\n]*`") // code is not prose: no links in it
	for _, f := range append(files, help...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if strings.Contains(text, "../shared") {
			t.Errorf("%s cites ../shared, which is not in the repository: cite docs/sources.md", f)
		}
		for _, m := range link.FindAllStringSubmatch(code.ReplaceAllString(text, ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", f, target)
			}
		}
	}
}
