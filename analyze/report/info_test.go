package report

import (
	"math"
	"strings"
	"testing"

	"github.com/llem/llem/trace"
)

func TestDecimals(t *testing.T) {
	for _, c := range []struct {
		width float64
		want  int
	}{{59.12, 2}, {0.012, 5}, {12000, 0}, {1, 3}, {0, 6}, {math.NaN(), 6}} {
		if got := widthDecimals(c.width); got != c.want {
			t.Errorf("widthDecimals(%g) = %d, want %d", c.width, got, c.want)
		}
	}
}

// Data a run does not have reads "none", not 0 (a wall meter's import has
// no driver samples and no counter).
func TestInfoSaysNone(t *testing.T) {
	s := &trace.Summary{GPUs: []trace.GPUSummary{{Index: 0, Name: "meter", StateRows: 10, StateHz: 1}}}
	var b strings.Builder
	Info(&b, s)
	for _, want := range []string{"driver power  none\n", "energy        none (no counter)\n", "state         10 rows, 1.0 Hz\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("info lacks %q:\n%s", want, b.String())
		}
	}
}
