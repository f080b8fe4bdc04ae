package report

import (
	"math"
	"testing"
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
