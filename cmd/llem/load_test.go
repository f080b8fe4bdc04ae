package main_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llem/llem/loadgen/testserver"
)

// llem load under a real llem record on the simulated GPU, against a
// loopback endpoint that fails some requests: the summary passes through,
// the recording has the phases and every request, and llem analyze counts
// the ok requests' tokens only.
func TestLoadUnderRecord(t *testing.T) {
	srv := &testserver.Server{TokenDelay: 2 * time.Millisecond, Fault: func(n int) testserver.Fault {
		switch {
		case n%5 == 3:
			return testserver.Fault{Status: 500}
		case n%7 == 4:
			return testserver.Fault{Drop: true, After: 3}
		}
		return testserver.Fault{}
	}}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	dir := filepath.Join(t.TempDir(), "run")
	r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", dir, "--idle-before", "1s", "--idle-after", "1s",
		"--", llemBin, "load", "--url", hs.URL+"/v1", "--model", "tiny", "--concurrency", "4",
		"--warmup-requests", "4", "--requests", "40", "--prompt-tokens", "20", "--max-tokens", "16")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"llem load: " + hs.URL + "/v1/chat/completions, model tiny, closed loop of 4 clients",
		"x http_500", "x dropped", "TTFT", "events: sent to llem record"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the summary lacks %q:\n%s", want, r.stdout)
		}
	}

	served := srv.Requests()
	failed := 0
	for n := range served {
		if n%5 == 3 || n%7 == 4 {
			failed++
		}
	}
	a := llem(t, nil, "analyze", "--json", dir)
	if a.code != 0 {
		t.Fatalf("analyze: %s", a.stderr)
	}
	var doc struct {
		Runs []struct {
			Windows []struct {
				Kind, Name   string
				Measured     bool
				OutputTokens float64 `json:"output_tokens"`
				Requests     int
			}
			Requests struct {
				Total    int
				Problems []string
			}
			Latency *json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(a.stdout), &doc); err != nil || len(doc.Runs) != 1 {
		t.Fatalf("analyze --json: %v", err)
	}
	run := doc.Runs[0]
	if run.Requests.Total != len(served) {
		t.Errorf("analyze found %d requests, the server %d", run.Requests.Total, len(served))
	}
	wantProblem := fmt.Sprintf("%d x requests that failed (request_end with an error attribute)", failed)
	if len(run.Requests.Problems) != 1 || !strings.HasPrefix(run.Requests.Problems[0], wantProblem) {
		t.Errorf("problems %q, want %d failed", run.Requests.Problems, failed)
	}
	var measured, whole float64
	var measuredReqs, wholeReqs int
	for _, w := range run.Windows {
		if w.Measured && w.Name == "measure" {
			measured, measuredReqs = w.OutputTokens, w.Requests
		}
		if w.Kind == "run" {
			whole, wholeReqs = w.OutputTokens, w.Requests
		}
	}
	ok := len(served) - failed
	if whole != float64(16*ok) || wholeReqs != ok {
		t.Errorf("the run's window: %v output tokens, %d requests; want 16 x %d ok requests (failed ones count nothing)", whole, wholeReqs, ok)
	}
	if measured <= 0 || measured > whole || measuredReqs < 40-failed || run.Latency == nil {
		t.Errorf("the measure window: %v output tokens, %d requests", measured, measuredReqs)
	}
}

// Bad input names the flag or the file and line, exit status 2.
func TestLoadUsageErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "p.jsonl")
	os.WriteFile(bad, []byte("{\"prompt\": \"ok\"}\n{\"prompt\": \"x\", \"max_token\": 3}\n"), 0o644)
	base := []string{"load", "--url", "http://127.0.0.1:1/v1", "--model", "m"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"load"}, "load: --url: \"\" is not an http(s) URL"},
		{append(base, "--requests", "5"), "load: --concurrency: 0: a closed loop needs at least 1 client"},
		{append(base, "--concurrency", "2"), "load: --duration: the measure phase needs a duration or a number of requests"},
		{append(base, "--concurrency", "2", "--duration", "1s"), "load: --prompt-tokens: 0: give a prompts file"},
		{append(base, "--rate", "2", "--arrival", "bursty", "--duration", "1s", "--prompt-tokens", "5"), `load: --arrival: "bursty": want poisson or constant`},
		{append(base, "--concurrency", "2", "--duration", "1s", "--prompts", bad), "load: --prompts: " + bad + `:2: unknown key "max_token"`},
		{append(base, "--concurrency", "2", "--duration", "1s", "--prompt-tokens", "5", "--extra-body", "{"), "load: --extra-body:"},
		{append(base, "--concurrency", "2", "--duration", "1s", "--prompt-tokens", "5", "stray"), `load: unexpected argument "stray"`},
	} {
		r := llem(t, []string{"LLEM_EVENTS="}, tc.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "llem: "+tc.want) || strings.Contains(r.stderr, "panic") {
			t.Errorf("llem %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	// Every request fails: the summary is printed, exit status 1.
	r := llem(t, []string{"LLEM_EVENTS="}, append(base, "--concurrency", "2", "--requests", "2", "--prompt-tokens", "5")...)
	if r.code != 1 || !strings.Contains(r.stderr, "no request of the measure phase succeeded") || !strings.Contains(r.stdout, "x connect") {
		t.Errorf("a server that is down: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
