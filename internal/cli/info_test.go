package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/llem/llem/trace"
)

// llem info reads a damaged run and says what is lost; it still exits 0.
func TestInfoShowsDamage(t *testing.T) {
	run := damagedRun(t, t.TempDir(), "damaged")
	r := runLlem(t, "", "info", run)
	if r.code != 0 {
		t.Fatalf("exit %d, %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"damaged   [segment_unreadable] energy/part-000004.parquet: not a readable Parquet file",
		"ignored   [stray_file] device_state/part-000003 (copy).parquet",
		"ignored   [segment_foreign] driver_power/part-000012.parquet: a segment of run 8e43702356a8904b",
		"(llem check " + run + " verifies every segment)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in\n%s", want, r.stdout)
		}
	}
	r = runLlem(t, "", "info", "--json", run)
	var s []trace.Summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || len(s) != 1 || len(s[0].Damage) != 3 || len(s[0].Gaps) != 1 {
		t.Errorf("--json: %v %+v", err, s)
	}
}
