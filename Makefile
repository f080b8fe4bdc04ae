# llem: see README.md. Every target works on a fresh machine with Go and gcc.
export CGO_CFLAGS ?= -Wno-deprecated-declarations
GO      ?= go
BIN     := bin/llem
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/llem/llem/internal/cli.Version=$(VERSION)
DEMO    := out/demo

.PHONY: all build release check-glibc test test-go test-interop test-python fuzz demo bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/llem

# The binary to copy to other machines (a cluster's nodes): no debug
# information, no build paths. NVML is loaded at run time, so it runs
# without a GPU; it needs the glibc that docs/multinode.md states.
RELEASE := bin/llem-linux-$(shell $(GO) env GOARCH)
release:
	$(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(RELEASE) ./cmd/llem

# The man page, from the binary's own help (llem man), and its install.
PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man/man1
.PHONY: man install-man
man: build
	$(BIN) man > bin/llem.1
install-man: man
	install -d $(DESTDIR)$(MANDIR)
	install -m 644 bin/llem.1 $(DESTDIR)$(MANDIR)/llem.1

# CI: the release binary needs exactly the glibc docs/multinode.md claims.
check-glibc: release
	.ci/glibc-check.sh $(RELEASE) docs/multinode.md

# The test command of the README and of CI.
test: test-go test-interop test-python fuzz

test-go:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# Independent readers (Apache Arrow's Parquet, embedded DuckDB: cgo) read what
# llem writes, and the docs' SQL gives llem's answers (trace/interop/doc.go).
test-interop:
	cd trace/interop && $(GO) test -count=1 ./...

test-python:
	python3 -m unittest discover -s clients/python -p 'test_*.py' -v

# A short run of every fuzz target (go test -fuzz takes one target at a time),
# bounded by executions, each about 3 to 15 s on the 2-core CI machine. Not by
# time: Go 1.26's fuzz coordinator can fail a run whose -fuzztime deadline
# meets a worker mid-call with a bare "context deadline exceeded" (a race in
# internal/fuzz, go.dev/issue/75804, fixed in Go 1.27), and it did here once
# in a dozen runs of FuzzSegment. FUZZTIME=30s (say) overrides every count.
FUZZTIME ?=
fuzz:
	$(GO) test ./events/ -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(or $(FUZZTIME),40000x)
	$(GO) test ./events/ -run '^$$' -fuzz '^FuzzScanSimple$$' -fuzztime $(or $(FUZZTIME),400000x)
	$(GO) test ./trace/imports/nvsmi -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(or $(FUZZTIME),100000x)
	$(GO) test ./trace/imports/ptdaemon -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(or $(FUZZTIME),20000x)
	$(GO) test ./trace/imports/dcgm -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(or $(FUZZTIME),100000x)
	$(GO) test ./trace -run '^$$' -fuzz '^FuzzSegment$$' -fuzztime $(or $(FUZZTIME),3000x)
	$(GO) test ./loadgen -run '^$$' -fuzz '^FuzzParsePrompt$$' -fuzztime $(or $(FUZZTIME),140000x)
	$(GO) test ./loadgen -run '^$$' -fuzz '^FuzzStream$$' -fuzztime $(or $(FUZZTIME),40000x)

# On a machine with no GPU: summarise a shipped real H100 run, check its
# counter against its instant power, replay it through the recorder at 20x,
# and record a simulated GPU with events from the Python client.
REAL := testdata/runs/h100-bs8-cycles
demo: build
	rm -rf $(DEMO)
	$(BIN) info $(REAL)
	$(BIN) analyze --quiet $(REAL)
	$(GO) run ./bench/gpu/checkrun $(REAL)
	$(BIN) record --device replay:$(REAL) --replay-speed 20 --quiet --out $(DEMO)/replay -- sleep 8
	$(BIN) info $(DEMO)/replay
	$(BIN) record --device sim --seed 7 --quiet --idle-before 3s --idle-after 3s \
		--cycles 2 --cooldown 2s --out $(DEMO)/sim -- python3 examples/sim_client.py
	$(BIN) info $(DEMO)/sim
	$(BIN) analyze --quiet $(DEMO)/sim
	$(BIN) plot --kind timeline -o $(DEMO)/timeline.png $(REAL)
	$(BIN) report -o $(DEMO)/report.html $(REAL)
	$(BIN) figures --quiet examples/figures.toml
	@echo "demo runs written to $(DEMO)/replay and $(DEMO)/sim"
	@echo "timeline of $(REAL): $(DEMO)/timeline.png; report: $(DEMO)/report.html"
	@echo "figures and tables of examples/figures.toml: out/figures/ (provenance: out/figures/provenance.json)"

# The figures and tables of examples/figures.toml from the shipped runs,
# with their provenance (docs/figures.md).
.PHONY: figures
figures: build
	$(BIN) figures examples/figures.toml
	@echo "figures written to out/figures/ (provenance: out/figures/provenance.json)"

# Go benchmarks (BCa: BenchmarkBCaMean10k), then llem analyze on the
# synthetic 1-hour 8-GPU run (docs/performance.md).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench/analyze

# llem analyze at 1 h and 4 h of 8 GPUs and on 100 runs, beside the DuckDB
# query a user would write instead (bench/scale, a module of its own;
# docs/performance.md, issue 12). Generates its runs into out/bench once.
.PHONY: bench-scale
bench-scale: build
	cd bench/scale && CGO_CFLAGS=-Wno-deprecated-declarations $(GO) run . -llem ../../bin/llem -durations 1h,4h -sweep 100

# The recorder's event path without a GPU: CPU per event at 1k, 10k and
# 50k token events/s from 8 connections, and the most one core takes
# (docs/performance.md). make bench runs it too, for 1 s per rate.
.PHONY: bench-events
bench-events:
	$(GO) test -run '^$$' -bench EventPath -benchtime 5s ./record/eventsrv

# Only the timing of llem analyze on the synthetic 1-hour run; generates it
# into out/bench/synth-1h the first time.
.PHONY: bench-analyze
bench-analyze: build
	$(GO) run ./bench/analyze

clean:
	rm -rf bin out

# Binaries for the GPU machine (built here with cgo, carried there).
gpu-bins: build
	$(GO) test -c -o bin/nvml.test ./record/nvml
