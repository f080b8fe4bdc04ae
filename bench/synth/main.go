package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var c Config
	flag.StringVar(&c.Out, "out", "", "run directory to write (created; must be empty or absent)")
	flag.IntVar(&c.GPUs, "gpus", 8, "number of GPUs")
	flag.DurationVar(&c.Duration, "duration", time.Hour, "length of the recording")
	flag.Int64Var(&c.Seed, "seed", 1, "random seed: the same flags write byte-identical files")
	flag.IntVar(&c.Cycles, "cycles", 5, "cycles (runs of the workload) separated by cool-downs")
	flag.IntVar(&c.Concurrency, "concurrency", 32, "closed-loop clients during each measure phase")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench/synth -out DIR [-gpus 8] [-duration 1h] [-seed 1]\n\n"+
			"Writes a synthetic llem run (the current trace format) that looks like an 8-GPU H100 recording.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if c.Out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if c.GPUs <= 0 || c.Cycles <= 0 || c.Concurrency <= 0 || c.Duration <= 0 {
		fmt.Fprintln(os.Stderr, "synth: -gpus, -cycles, -concurrency and -duration must be positive")
		os.Exit(2)
	}
	if _, err := Generate(c, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "synth: %v\n", err)
		os.Exit(1)
	}
}
