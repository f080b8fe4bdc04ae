package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llem/llem/trace"
)

const importData = "../../testdata/imports/"

func TestImportThenAnalyze(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	r := runLlem(t, "", "import", "nvidia-smi", importData+"units.csv", "-o", run)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"imported 4 rows from 1 file(s): 1 GPU(s), 0.3 s from 2024-05-02 10:00:00.012", "0 of 4 lines skipped", "see: llem analyze " + run + "\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout %q, want %q", r.stdout, want)
		}
	}
	m, err := trace.ReadMeta(run)
	if err != nil {
		t.Fatal(err)
	}
	if m.Device != "import:nvidia-smi" || m.LlemVersion == "" || m.Source == nil || len(m.Source.Files) != 1 {
		t.Errorf("meta %+v", m)
	}

	a := runLlem(t, "", "analyze", "--json", "--quiet", run)
	if a.code != 0 {
		t.Fatalf("analyze: exit %d, stderr %q", a.code, a.stderr)
	}
	var doc struct {
		Runs []struct {
			Device  string           `json:"device"`
			Windows []map[string]any `json:"windows"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(a.stdout), &doc); err != nil {
		t.Fatalf("analyze --json: %v\n%s", err, a.stdout)
	}
	if len(doc.Runs) != 1 || doc.Runs[0].Device != "import:nvidia-smi" || len(doc.Runs[0].Windows) == 0 {
		t.Fatalf("analyze --json: %s", a.stdout)
	}
	if e, ok := doc.Runs[0].Windows[0]["energy_integrated_j"].(float64); !ok || e <= 0 {
		t.Errorf("energy_integrated_j %v: want the integral of power.draw.instant", doc.Runs[0].Windows[0]["energy_integrated_j"])
	}
}

// A log whose only power column is power.draw (the 1 s average) is
// analysed from it, with a warning saying so.
func TestImportAverageOnlyThenAnalyze(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if r := runLlem(t, "", "import", "nvidia-smi", importData+"MLPerf_data.csv", "-o", run); r.code != 0 {
		t.Fatalf("import: exit %d, stderr %q", r.code, r.stderr)
	}
	a := runLlem(t, "", "analyze", "--json", "--quiet", run)
	if a.code != 0 {
		t.Fatalf("analyze: exit %d, stderr %q", a.code, a.stderr)
	}
	var doc struct {
		Runs []struct {
			Warnings []struct{ Code string } `json:"warnings"`
			Windows  []struct {
				EnergyIntegratedJ *float64 `json:"energy_integrated_j"`
				GPUs              []struct {
					IntegratedFrom string `json:"integrated_from"`
				} `json:"gpus"`
			} `json:"windows"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(a.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	w := doc.Runs[0].Windows[0]
	if w.EnergyIntegratedJ == nil || *w.EnergyIntegratedJ <= 0 || w.GPUs[0].IntegratedFrom != "average_power" {
		t.Errorf("run window: %+v", w)
	}
	found := false
	for _, wn := range doc.Runs[0].Warnings {
		found = found || wn.Code == "average_power_only"
	}
	if !found {
		t.Errorf("no average_power_only warning: %+v", doc.Runs[0].Warnings)
	}
}

// TestImportOutAnywhere: -o may come before the format, before the files
// or after them.
func TestImportOutAnywhere(t *testing.T) {
	for i, args := range [][]string{
		{"import", "-o", "RUN", "nvidia-smi", importData + "units.csv"},
		{"import", "nvidia-smi", "-o", "RUN", importData + "units.csv"},
		{"import", "nvidia-smi", importData + "units.csv", "--out=RUN"},
		{"import", "nvidia-smi", importData + "units.csv", importData + "multi_gpu.csv", "-o", "RUN"},
	} {
		run := filepath.Join(t.TempDir(), "run")
		for k := range args {
			args[k] = strings.Replace(args[k], "RUN", run, 1)
		}
		r := runLlem(t, "", args...)
		if r.code != 0 {
			t.Errorf("%d %v: exit %d, stderr %q", i, args, r.code, r.stderr)
			continue
		}
		if _, err := trace.ReadMeta(run); err != nil {
			t.Errorf("%d %v: %v", i, args, err)
		}
	}
}

func TestImportBadCommandLine(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "ganglia", "x.csv", "-o", run}, `unknown format "ganglia"; known formats: nvidia-smi`},
		{[]string{"import"}, "no format given"},
		{[]string{"import", "nvidia-smi", importData + "units.csv"}, "no output directory: give -o RUN"},
		{[]string{"import", "nvidia-smi", "-o", run}, "no input file"},
		{[]string{"import", "nvidia-smi", importData + "units.csv", "-o"}, "import nvidia-smi: -o needs a value"},
		{[]string{"import", "nvidia-smi", importData + "units.csv", "--fast", "-o", run}, "import nvidia-smi: unknown flag --fast"},
		{[]string{"import", "nvidia-smi", "--bogus", importData + "units.csv"}, "bogus"},
	} {
		r := runLlem(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("a refused command created %s", run)
	}
}

func TestImportRefusesNonEmptyOut(t *testing.T) {
	run := t.TempDir()
	if err := os.WriteFile(filepath.Join(run, "meta.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runLlem(t, "", "import", "nvidia-smi", importData+"units.csv", "-o", run)
	if r.code != 1 || !strings.Contains(r.stderr, run+" already exists and is not empty") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(run, "meta.json")); string(b) != "{}" {
		t.Errorf("the existing run was overwritten: %q", b)
	}
}

func TestImportBadFile(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	r := runLlem(t, "", "import", "nvidia-smi", importData+"no_timestamp.csv", "-o", run)
	if r.code != 1 || !strings.Contains(r.stderr, "no_timestamp.csv:1: no timestamp column") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("a failed import left %s", run)
	}
	r = runLlem(t, "", "import", "nvidia-smi", filepath.Join(t.TempDir(), "missing.csv"), "-o", run)
	if r.code != 1 || !strings.Contains(r.stderr, "missing.csv") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
	// Skipped lines are reported, and the import goes on.
	r = runLlem(t, "", "import", "nvidia-smi", importData+"bad_lines.csv", "-o", run)
	if r.code != 0 || !strings.Contains(r.stdout, "5 of 7 lines skipped") || !strings.Contains(r.stderr, "bad_lines.csv:3: 2 fields") {
		t.Errorf("bad lines: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestImportHelp(t *testing.T) {
	for _, args := range [][]string{
		{"import", "nvidia-smi", "--help"},
		{"import", "nvidia-smi", "x.csv", "--help"},
		{"import", "-h", "nvidia-smi"},
	} {
		r := runLlem(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "nvidia-smi --query-gpu=timestamp,index,") || !strings.Contains(r.stdout, "--format=csv -lms 100") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	r := runLlem(t, "", "import", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "nvidia-smi") || !strings.Contains(r.stdout, "FORMAT FILE... -o RUN") {
		t.Errorf("import --help: exit %d, stdout %q", r.code, r.stdout)
	}
}

const (
	mlperfData = importData + "mlperf-v4.1-h200x8/"
	splFile    = mlperfData + "performance_run_1_spl.txt"
	detailFile = mlperfData + "performance_run_1_mlperf_log_detail.txt"
	summFile   = mlperfData + "performance_run_1_mlperf_log_summary.txt"
	dmonFile   = importData + "dcgm/dmon_h100x2.txt"
)

// The real logs of an MLPerf power run: the import prints MLPerf's power
// figure and the throughput, and llem analyze reports the same mean power
// for the mlperf_power window.
func TestImportPTDaemonThenAnalyze(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	// --loadgen before the file, --summary and -o after it.
	r := runLlem(t, "", "import", "ptdaemon", "--loadgen", detailFile, splFile, "--summary", summFile, "-o", run)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		"imported 1160 rows from 3 file(s): 1 whole-system power analyzer, 1157.0 s from 2024-07-17 07:02:47.866",
		"0 of 1158 lines skipped",
		"mlperf_power: power_begin 07-17-2024 07:04:02.134 to power_end 07-17-2024 07:21:38.582 (1056.4 s): 1056 samples strictly inside, mean 4775.27 W (MLPerf's rule)\n",
		"mlperf summary: 13096.6 tokens/s (Tokens per second (inferred)), 189.806 samples/s (Samples per second)\n",
		"see: llem analyze " + run + "\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout %q, want %q", r.stdout, want)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr %q", r.stderr)
	}
	m, err := trace.ReadMeta(run)
	if err != nil {
		t.Fatal(err)
	}
	if m.Device != "import:ptdaemon" || len(m.Source.Files) != 3 || m.Source.Notes["mlperf_tokens_per_s"] != "13096.6" {
		t.Errorf("meta %+v", m.Source)
	}

	a := runLlem(t, "", "analyze", "--json", "--quiet", "--window", "mlperf_power", run)
	if a.code != 0 {
		t.Fatalf("analyze: exit %d, stderr %q", a.code, a.stderr)
	}
	var doc struct {
		Runs []struct {
			Device  string `json:"device"`
			Windows []struct {
				Name       string   `json:"name"`
				Measured   bool     `json:"measured"`
				MeanPowerW *float64 `json:"mean_power_w"`
				EPT        *float64 `json:"energy_per_output_token_j"`
			} `json:"windows"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(a.stdout), &doc); err != nil {
		t.Fatalf("analyze --json: %v\n%s", err, a.stdout)
	}
	found := false
	for _, w := range doc.Runs[0].Windows {
		if w.Name == "mlperf_power" && w.Measured {
			found = true
			if w.MeanPowerW == nil || *w.MeanPowerW < 4775.265 || *w.MeanPowerW > 4775.275 {
				t.Errorf("mean_power_w %v, want 4775.27", w.MeanPowerW)
			}
			// MLPerf's energy per token: the mean power over the summary's
			// 13096.6 tokens/s.
			if w.EPT == nil || math.Abs(*w.EPT-4775.27/13096.6) > 1e-5 {
				t.Errorf("energy_per_output_token_j %v, want 0.3646", w.EPT)
			}
		}
	}
	if !found || doc.Runs[0].Device != "import:ptdaemon" {
		t.Errorf("analyze --json: %s", a.stdout)
	}
}

func TestImportDCGMThenAnalyze(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	r := runLlem(t, "", "import", "dcgm", dmonFile, "--interval", "100", "--start=2024-05-02T10:00:00Z", "-o", run)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		"imported 160 rows from 1 file(s): 2 GPU(s), 3.9 s from 2024-05-02 10:00:00.000 (UTC), 0 of 80 lines skipped",
		"times: the given start + k x 100ms for sample k (40 samples)\n",
		"energy counter: 80 reads (TOTEC)\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout %q, want %q", r.stdout, want)
		}
	}
	if !strings.Contains(r.stderr, "warning: POWINST: 2 of 80 values absent (N/A 2)") {
		t.Errorf("stderr %q", r.stderr)
	}
	a := runLlem(t, "", "analyze", "--json", "--quiet", run)
	if a.code != 0 {
		t.Fatalf("analyze: exit %d, stderr %q", a.code, a.stderr)
	}
	var doc struct {
		Runs []struct {
			Device  string `json:"device"`
			Windows []struct {
				EnergyJ *float64 `json:"energy_j"`
			} `json:"windows"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(a.stdout), &doc); err != nil {
		t.Fatalf("analyze --json: %v\n%s", err, a.stdout)
	}
	if len(doc.Runs) != 1 || doc.Runs[0].Device != "import:dcgm" || doc.Runs[0].Windows[0].EnergyJ == nil || *doc.Runs[0].Windows[0].EnergyJ <= 0 {
		t.Errorf("analyze --json: %s", a.stdout)
	}
}

// The new formats' command lines: what is refused is a usage error (exit
// 2) and writes nothing.
func TestImportFormatFlags(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "dcgm", dmonFile, "-o", run}, "import dcgm: no sampling interval: " + dmonFile + " has no timestamps: give the sample interval, the -d of dcgmi dmon"},
		{[]string{"import", "dcgm", dmonFile, "--interval", "fast", "-o", run}, `--interval "fast" is not a positive duration`},
		{[]string{"import", "dcgm", dmonFile, "--interval", "100ms", "--start", "10:00", "-o", run}, `--start "10:00" is not an RFC 3339 time`},
		{[]string{"import", "dcgm", dmonFile, dmonFile, "--interval", "100ms", "-o", run}, "2 input files, it reads 1 at a time"},
		{[]string{"import", "dcgm", dmonFile, "--interval"}, "import dcgm: --interval needs a value"},
		{[]string{"import", "ptdaemon", splFile, summFile, "-o", run}, "2 input files, it reads 1 at a time; usage: llem import ptdaemon SPL_FILE [--loadgen"},
		{[]string{"import", "ptdaemon", splFile, "--loadgen-offset", "1h", "-o", run}, "--loadgen-offset without --loadgen"},
		{[]string{"import", "ptdaemon", splFile, "--loadgen", detailFile, "--loadgen-offset", "7", "-o", run}, `--loadgen-offset "7" is not a duration`},
		{[]string{"import", "ptdaemon", "--loadgen", detailFile, splFile, "--loadgen", summFile, "-o", run}, "--loadgen given twice"},
		{[]string{"import", "ptdaemon", splFile, "--interval", "1s", "-o", run}, "import ptdaemon: unknown flag --interval (llem import ptdaemon --help lists them)"},
		{[]string{"import", "nvidia-smi", importData + "units.csv", "--loadgen", detailFile, "-o", run}, "import nvidia-smi: unknown flag --loadgen"},
	} {
		r := runLlem(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("a refused command created %s", run)
	}
	// A bad file is exit 1, naming the file and line.
	r := runLlem(t, "", "import", "ptdaemon", summFile, "-o", run)
	if r.code != 1 || !strings.Contains(r.stderr, "performance_run_1_mlperf_log_summary.txt: none of the") ||
		!strings.Contains(r.stderr, `performance_run_1_mlperf_log_summary.txt:1: not a PTDaemon sample line`) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = runLlem(t, "", "import", "ptdaemon", splFile, "--loadgen", summFile, "-o", run)
	if r.code != 1 || !strings.Contains(r.stderr, "no :::MLLOG line: not a loadgen detail log") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	// Skipped lines are reported, and the import goes on.
	r = runLlem(t, "", "import", "dcgm", importData+"dcgm/dmon_bad_lines.txt", "--interval", "1s", "--start", "2024-05-02T10:00:00Z", "-o", run)
	if r.code != 0 || !strings.Contains(r.stdout, "4 of 10 lines skipped") || !strings.Contains(r.stderr, `dmon_bad_lines.txt:6: POWER: "7x.456" is not a number`) {
		t.Errorf("bad lines: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestImportNewFormatsHelp(t *testing.T) {
	for format, want := range map[string]string{
		"ptdaemon": "--loadgen FILE",
		"dcgm":     "dcgmi dmon -e 155,156,157,150,100,101,203,204 -d 100",
	} {
		r := runLlem(t, "", "import", format, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("%s --help: exit %d, stdout %q", format, r.code, r.stdout)
		}
	}
	r := runLlem(t, "", "import", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "formats: nvidia-smi, ptdaemon, dcgm") {
		t.Errorf("import --help: exit %d, stdout %q", r.code, r.stdout)
	}
}

// An imported run drives the recorder as a replayed device (issue 5): an
// archived nvidia-smi log can feed the whole pipeline.
func TestReplayAnImportedRun(t *testing.T) {
	dir := t.TempDir()
	imported := filepath.Join(dir, "imported")
	if r := runLlem(t, "", "import", "nvidia-smi", importData+"MLPerf_data.csv", "-o", imported); r.code != 0 {
		t.Fatalf("import: exit %d, stderr %q", r.code, r.stderr)
	}
	replayed := filepath.Join(dir, "replayed")
	r := runLlem(t, "", "record", "--device", "replay:"+imported, "--replay-speed", "20", "--quiet", "--out", replayed, "--", "sleep", "1")
	if r.code != 0 {
		t.Fatalf("record --device replay: exit %d, stderr %q", r.code, r.stderr)
	}
	run, err := trace.Open(replayed)
	if err != nil {
		t.Fatal(err)
	}
	if !run.Meta.Complete || run.Meta.Device != "replay:"+imported {
		t.Errorf("replayed run: complete %v, device %q", run.Meta.Complete, run.Meta.Device)
	}
	st, err := trace.ReadTable[trace.DeviceState](run, trace.TableState)
	if err != nil {
		t.Fatal(err)
	}
	withPower := 0
	for _, s := range st {
		if s.AveragePowerMw != nil {
			withPower++
		}
	}
	if withPower == 0 {
		t.Errorf("no power in %d replayed state rows", len(st))
	}
	if a := runLlem(t, "", "analyze", "--json", "--quiet", replayed); a.code != 0 {
		t.Errorf("analyze of the replayed run: exit %d, stderr %q", a.code, a.stderr)
	}
}
