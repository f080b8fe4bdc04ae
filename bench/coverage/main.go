// Command coverage is the coverage study behind the default interval of
// `llem analyze` over cycles (docs/results.md, "Confidence intervals"):
// for n = 3, 5, 10, 20 and 50 samples from a normal, a log-normal and an
// exponential (skewed) distribution, how often the 95% BCa, percentile and
// Student-t intervals of the mean contain the true mean. It prints a
// Markdown table. Seeded: the same flags give the same table.
//
//	go run ./bench/coverage            # 2,000 replications a cell, ~1 min on 2 cores
//	go run ./bench/coverage -reps 500  # quicker, coarser
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/llem/llem/analyze/bootstrap"
)

type dist struct {
	name string
	mean float64
	draw func(r *rand.Rand) float64
}

var dists = []dist{
	{"normal", 0, func(r *rand.Rand) float64 { return r.NormFloat64() }},
	{"log-normal (sigma 0.5)", math.Exp(0.125), func(r *rand.Rand) float64 { return math.Exp(0.5 * r.NormFloat64()) }},
	{"exponential (skewed)", 1, func(r *rand.Rand) float64 { return r.ExpFloat64() }},
}

func main() {
	reps := flag.Int("reps", 2000, "replications per cell")
	resamples := flag.Int("resamples", 2000, "bootstrap resamples")
	seed := flag.Uint64("seed", 1, "seed")
	flag.Parse()
	fmt.Printf("95%% intervals of the mean, %d replications a cell, %d resamples (coverage in %%; binomial sd ~%.1f points)\n\n",
		*reps, *resamples, 100*math.Sqrt(0.95*0.05/float64(*reps)))
	fmt.Println("| data | n | BCa | percentile | Student-t |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for _, d := range dists {
		for _, n := range []int{3, 5, 10, 20, 50} {
			r := rand.New(rand.NewPCG(*seed, uint64(n)))
			var bca, pct, tt int
			for rep := range *reps {
				x := make([]float64, n)
				for i := range x {
					x[i] = d.draw(r)
				}
				opts := bootstrap.Options{Resamples: *resamples, Seed: uint64(rep)}
				if iv, err := bootstrap.BCa(x, bootstrap.Mean, opts); err == nil && covers(iv, d.mean) {
					bca++
				}
				if iv, err := bootstrap.Percentile(x, bootstrap.Mean, opts); err == nil && covers(iv, d.mean) {
					pct++
				}
				if iv, err := bootstrap.StudentT(x, 0.95); err == nil && covers(iv, d.mean) {
					tt++
				}
			}
			f := func(k int) float64 { return 100 * float64(k) / float64(*reps) }
			fmt.Printf("| %s | %d | %.1f | %.1f | %.1f |\n", d.name, n, f(bca), f(pct), f(tt))
		}
	}
	os.Stdout.Sync()
}

func covers(iv bootstrap.Interval, mu float64) bool {
	return !iv.Degenerate && iv.Low <= mu && mu <= iv.High
}
