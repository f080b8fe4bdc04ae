// Package importtest holds what the importers' tests share: import into a
// fresh run and read every table back, write an input file, find a
// warning.
package importtest

import (
	"os"
	"path/filepath"
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
