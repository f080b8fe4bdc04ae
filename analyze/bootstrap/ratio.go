package bootstrap

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// ratioStream is the second PCG seed word of the two-sample bootstrap, so
// that one uint64 seed names it (and it draws other numbers than the
// one-sample bootstrap of the same seed).
const ratioStream = 0x6c6c656d2d636d70 // "llem-cmp"

// RatioOfMeans is the statistic compared: mean(b) / mean(a).
func RatioOfMeans(a, b []float64) float64 { return mean(b) / mean(a) }

// RatioDistribution returns the two-sample bootstrap distribution of
// mean(b)/mean(a): for each of the resamples, a resample of a and one of
// b, each drawn with replacement from its own sample and independently of
// the other (the two configurations were measured independently, so
// neither sample's values are paired with the other's). One PCG seeded
// from seed draws every index, in order: the result does not depend on the
// machine.
func RatioDistribution(a, b []float64, resamples int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, ratioStream))
	out := make([]float64, resamples)
	na, nb := len(a), len(b)
	for i := range out {
		sa := 0.0
		for range na {
			sa += a[r.IntN(na)]
		}
		sb := 0.0
		for range nb {
			sb += b[r.IntN(nb)]
		}
		out[i] = (sb / float64(nb)) / (sa / float64(na))
	}
	return out
}

// RatioAcceleration is the BCa acceleration of mean(b)/mean(a) from the
// jackknife of both samples, as scipy.stats.bootstrap computes it for
// several samples (scipy/stats/_resampling.py, _bca_interval): each
// observation of each sample is left out in turn, the other sample kept
// whole; with theta_(ji) the ratio without observation i of sample j and
// U_ji = (n_j - 1)(mean_i theta_(ji) - theta_(ji)),
//
//	a = sum_j (sum_i U_ji^3 / n_j^3) / (6 (sum_j sum_i U_ji^2 / n_j^2)^(3/2)).
//
// NaN when every U is 0 (both samples constant) or a sample has fewer
// than two values.
func RatioAcceleration(a, b []float64) float64 {
	if len(a) < 2 || len(b) < 2 {
		return math.NaN()
	}
	ma, mb := mean(a), mean(b)
	sa, sb := ma*float64(len(a)), mb*float64(len(b))
	looA := make([]float64, len(a))
	for i, v := range a {
		looA[i] = mb / ((sa - v) / float64(len(a)-1))
	}
	looB := make([]float64, len(b))
	for i, v := range b {
		looB[i] = ((sb - v) / float64(len(b)-1)) / ma
	}
	var num, den float64
	for _, loo := range [][]float64{looA, looB} {
		n := float64(len(loo))
		var s2, s3 float64
		for _, u := range uFromLeaveOneOut(loo) {
			s2 += u * u
			s3 += u * u * u
		}
		num += s3 / (n * n * n)
		den += s2 / (n * n)
	}
	return num / (6 * math.Pow(den, 1.5))
}

// RatioBCa is the BCa interval of mean(b)/mean(a) from the two-sample
// bootstrap (RatioDistribution) with the two-sample jackknife acceleration
// (RatioAcceleration): what scipy.stats.bootstrap((a, b), method='BCa')
// computes for the same resamples. Where there is no interval, the
// Interval is Degenerate with NaN bounds and a Note saying why.
func RatioBCa(a, b []float64, opts Options) Interval {
	if opts.Resamples == 0 {
		opts.Resamples = DefaultResamples
	}
	if opts.Confidence == 0 {
		opts.Confidence = DefaultConfidence
	}
	iv := Interval{Estimate: math.NaN(), Low: math.NaN(), High: math.NaN(), Confidence: opts.Confidence,
		Method: MethodBCa, N: len(a) + len(b), Resamples: opts.Resamples, Seed: opts.Seed}
	degenerate := func(format string, args ...any) Interval {
		iv.Degenerate, iv.Note = true, fmt.Sprintf(format, args...)
		return iv
	}
	if len(a) == 0 || len(b) == 0 {
		return degenerate("no values in one of the samples: nothing to compare")
	}
	iv.Estimate = RatioOfMeans(a, b)
	if !finite(iv.Estimate) {
		return degenerate("the baseline's mean is 0: the ratio is not defined")
	}
	if len(a) < 2 || len(b) < 2 {
		return degenerate("n = %d and %d: the two-sample bootstrap needs at least two values in each sample", len(a), len(b))
	}
	dist := RatioDistribution(a, b, opts.Resamples, opts.Seed)
	for _, t := range dist {
		if !finite(t) {
			return degenerate("a resample of the baseline has mean 0: the ratio is not defined on every resample")
		}
	}
	return ratioInterval(iv, dist, RatioAcceleration(a, b))
}

// ratioInterval fills iv's bounds from theta* and the acceleration.
func ratioInterval(iv Interval, dist []float64, accel float64) Interval {
	if slices.Min(dist) == slices.Max(dist) {
		iv.Degenerate = true
		iv.Note = fmt.Sprintf("all %d resamples give the same ratio (%g): there is no interval", len(dist), dist[0])
		return iv
	}
	p := BCaFromDistribution(iv.Estimate, dist, accel, iv.Confidence)
	if math.IsNaN(p.Accel) {
		iv.Degenerate = true
		iv.Note = "every leave-one-out ratio is the same, so the jackknife acceleration is 0/0 and BCa gives no interval"
		return iv
	}
	if math.IsNaN(p.Low) || math.IsNaN(p.High) {
		iv.Degenerate = true
		iv.Note = fmt.Sprintf("the ratio lies outside its bootstrap distribution (bias correction z0 = %g), so BCa gives no interval", p.Z0)
		return iv
	}
	iv.Low, iv.High = p.Low, p.High
	return iv
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
