package bootstrap

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ReadColumn reads one number per line, for `llem bootstrap`. Blank lines and
// lines starting with '#' (after leading spaces) are skipped. A line that is
// not a finite number is an error naming its line number and text, because a
// silently dropped value would change the interval.
func ReadColumn(r io.Reader) ([]float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var out []float64
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text()) // also drops a CRLF's \r
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q is not a number", line, text)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("line %d: %q is not a finite number", line, text)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading values: %w", err)
	}
	return out, nil
}
