// Package importtest holds what the importers' tests share: import into a
// fresh run and read every table back, write an input file, find a
// warning.
package importtest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/llem/llem/trace"
	"github.com/llem/llem/trace/imports"
)

// Run is an imported run read back.
type Run struct {
	Dir    string
	Meta   *trace.Meta
	States []trace.DeviceState
	Energy []trace.EnergyRead
	Events []trace.Event
}

// Import creates a run of format from files in a temporary directory,
// lets fn import into it, closes it and reads it back. fn's result (the
// importer's own account) is returned beside the run.
func Import[R any](t testing.TB, format string, files []string, fn func(w *imports.Writer) (R, error)) (Run, R) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	w, err := imports.Create(dir, format, files)
	if err != nil {
		t.Fatal(err)
	}
	w.LlemVersion = "test"
	res, err := fn(w)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := trace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	run := Run{Dir: dir, Meta: r.Meta}
	if run.States, err = trace.ReadTable[trace.DeviceState](r, trace.TableState); err != nil {
		t.Fatal(err)
	}
	if run.Energy, err = trace.ReadTable[trace.EnergyRead](r, trace.TableEnergy); err != nil {
		t.Fatal(err)
	}
	if run.Events, err = trace.ReadTable[trace.Event](r, trace.TableEvents); err != nil {
		t.Fatal(err)
	}
	return run, res
}

// WriteFile writes content to a file called name in a temporary directory.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Warning is the first warning of m with code whose message contains
// contains, or nil.
func Warning(m *trace.Meta, code, contains string) *trace.Warning {
	for i, w := range m.Warnings {
		if w.Code == code && strings.Contains(w.Message, contains) {
			return &m.Warnings[i]
		}
	}
	return nil
}

// SameState compares two state rows field by field (nil and nil equal).
func SameState(a, b trace.DeviceState) bool {
	return a.GPU == b.GPU && a.TimestampNs == b.TimestampNs && eq(a.InstantPowerMw, b.InstantPowerMw) &&
		eq(a.AveragePowerMw, b.AveragePowerMw) && eq(a.TemperatureC, b.TemperatureC) && eq(a.SMClockMHz, b.SMClockMHz) &&
		eq(a.MemClockMHz, b.MemClockMHz) && eq(a.PState, b.PState) && eq(a.GPUUtilPct, b.GPUUtilPct) &&
		eq(a.MemUtilPct, b.MemUtilPct) && eq(a.ClockEventReasons, b.ClockEventReasons) && eq(a.MemoryUsedBytes, b.MemoryUsedBytes)
}

func eq[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// Show prints a state row, nulls as "null", for test messages.
func Show(s trace.DeviceState) string {
	f := func(v any) string {
		switch p := v.(type) {
		case *int64:
			if p != nil {
				return strconv.FormatInt(*p, 10)
			}
		case *int32:
			if p != nil {
				return strconv.FormatInt(int64(*p), 10)
			}
		}
		return "null"
	}
	return fmt.Sprintf("gpu %d ts %d instant %s average %s temp %s sm %s mem %s pstate %s util %s memutil %s reasons %s used %s",
		s.GPU, s.TimestampNs, f(s.InstantPowerMw), f(s.AveragePowerMw), f(s.TemperatureC), f(s.SMClockMHz), f(s.MemClockMHz),
		f(s.PState), f(s.GPUUtilPct), f(s.MemUtilPct), f(s.ClockEventReasons), f(s.MemoryUsedBytes))
}

// Tree reads every file under dir, by path relative to it: two imports
// of the same input must give the same tree, byte for byte.
func Tree(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	tree := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		tree[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}
