package bootstrap

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// MethodStudentT names the Student-t interval of a mean.
const MethodStudentT = "student_t"

// StudentT returns the classical interval of the mean, mean +/- t_(n-1) x
// s/sqrt(n), as scipy.stats.t.interval(c, n-1, loc=mean, scale=sem) gives
// it. It assumes roughly normal data but, unlike the bootstrap, does not
// under-cover at small n (docs/results.md, "Confidence intervals": the
// coverage study). No resampling: Resamples and Seed are 0. Fewer than
// two values or all equal: Degenerate.
func StudentT(x []float64, confidence float64) (Interval, error) {
	if confidence == 0 {
		confidence = DefaultConfidence
	}
	if !(confidence > 0 && confidence < 1) {
		return Interval{}, fmt.Errorf("confidence must be in (0, 1), got %g", confidence)
	}
	if err := checkInput(x, Mean); err != nil {
		return Interval{}, err
	}
	iv := Interval{Estimate: math.NaN(), Low: math.NaN(), High: math.NaN(), Confidence: confidence, Method: MethodStudentT, N: len(x)}
	if len(x) == 0 {
		iv.Degenerate, iv.Note = true, "no values: nothing to estimate"
		return iv, nil
	}
	iv.Estimate = mean(x)
	if len(x) < 2 {
		iv.Degenerate, iv.Note = true, "n = 1: an interval needs at least two values"
		return iv, nil
	}
	if allEqual(x) {
		iv.Degenerate, iv.Note = true, fmt.Sprintf("all %d values are equal (%g): no spread, so no interval", len(x), x[0])
		return iv, nil
	}
	var ss float64
	for _, v := range x {
		ss += (v - iv.Estimate) * (v - iv.Estimate)
	}
	n := float64(len(x))
	sem := math.Sqrt(ss/(n-1)) / math.Sqrt(n)
	q := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 1}.Quantile(1 - (1-confidence)/2)
	iv.Low, iv.High = iv.Estimate-q*sem, iv.Estimate+q*sem
	return iv, nil
}
