package progress

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestMeter: the terminal meter redraws one line with the runs done and
// the share read, keeps a skipped run's message, and clears its line at
// the end so that the results start clean.
const bs8Run = "../../testdata/runs/h100-bs8-cycles"

func TestMeter(t *testing.T) {
	var b bytes.Buffer
	m := NewMeter(&b, []string{bs8Run, "testdata/none"})
	if m.total <= 0 {
		t.Fatalf("total bytes %d for %s", m.total, bs8Run)
	}
	m.RunStarted(0, 2, bs8Run)
	m.Read(m.total)
	m.RunDone(0, 2, bs8Run, nil)
	m.RunStarted(1, 2, "testdata/none")
	m.RunDone(1, 2, "testdata/none", errors.New("no meta.json"))
	m.Finish()
	out := b.String()
	for _, want := range []string{"1 of 2 run(s) analysed, 100% of", "llem: skipping testdata/none: no meta.json\n", "2 of 2 run(s) analysed"} {
		if !strings.Contains(out, want) {
			t.Errorf("meter output lacks %q:\n%q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("the meter's line is not cleared at the end: %q", out[max(0, len(out)-40):])
	}
	if strings.Contains(out, "\n\n") {
		t.Errorf("the meter wrote empty lines: %q", out)
	}
	m.Read(10) // after Finish: nothing more
	if b.String() != out {
		t.Error("the meter drew after Finish")
	}
}
