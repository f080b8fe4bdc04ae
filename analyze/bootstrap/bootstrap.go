package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/llem/llem/analyze/internal/nullable"
	"gonum.org/v1/gonum/mathext"
)

// Defaults, as scipy.stats.bootstrap and the methodology audit (CP-5)
// recommend: 2,000 resamples for a 95% interval.
const (
	DefaultResamples  = 2000
	DefaultConfidence = 0.95
)

// Method names, as written in Interval.Method.
const (
	MethodBCa        = "bca"
	MethodPercentile = "percentile"
	MethodBasic      = "basic"
)

// pcgStream is the second PCG seed word when Options.Rand is nil, so that a
// single uint64 seed names the whole run.
const pcgStream = 0x6c6c656d2d627374 // "llem-bst"

// Options control a bootstrap. The zero value means 2,000 resamples, 95%
// confidence and seed 0.
type Options struct {
	Resamples  int     // number of resamples B; 0 means DefaultResamples
	Confidence float64 // confidence level in (0, 1); 0 means DefaultConfidence
	Seed       uint64  // seeds a math/rand/v2 PCG when Rand is nil; recorded in the Interval
	// Rand, if set, replaces the PCG seeded from Seed. It is read from one
	// goroutine only, to seed the per-chunk streams, so it need not be
	// safe for concurrent use. The Interval still records Seed, so a caller
	// that injects a source should record how to rebuild it.
	Rand rand.Source
}

func (o Options) resolve() (Options, error) {
	if o.Resamples == 0 {
		o.Resamples = DefaultResamples
	}
	if o.Confidence == 0 {
		o.Confidence = DefaultConfidence
	}
	if o.Resamples < 1 {
		return o, fmt.Errorf("resamples must be at least 1, got %d", o.Resamples)
	}
	if !(o.Confidence > 0 && o.Confidence < 1) { // also rejects NaN
		return o, fmt.Errorf("confidence must be in (0, 1), got %g", o.Confidence)
	}
	if o.Rand == nil {
		o.Rand = rand.NewPCG(o.Seed, pcgStream)
	}
	return o, nil
}

// MethodName is how a method is called in text: BCa, Student-t,
// percentile, basic.
func MethodName(method string) string {
	switch method {
	case MethodBCa:
		return "BCa"
	case MethodStudentT:
		return "Student-t"
	}
	return method
}

// An IntervalFunc computes one kind of interval (BCa, Percentile, Basic).
type IntervalFunc func(x []float64, stat Stat, opts Options) (Interval, error)

// MethodNamed is the interval of a method name (MethodBCa, MethodPercentile
// or MethodBasic, any case).
func MethodNamed(name string) (IntervalFunc, bool) {
	switch strings.ToLower(name) {
	case MethodBCa:
		return BCa, true
	case MethodPercentile:
		return Percentile, true
	case MethodBasic:
		return Basic, true
	}
	return nil, false
}

// Interval is a bootstrap confidence interval. When Degenerate is true there
// is no interval: Low and High are NaN (null in JSON) and Note says why.
type Interval struct {
	Estimate   float64 // the statistic of the data (theta-hat)
	Low, High  float64
	Confidence float64
	Method     string
	N          int // number of values
	Resamples  int
	Seed       uint64
	Degenerate bool
	Note       string
	// Alternative is another method's interval of the same data, shown
	// beside this one (analyze: Student-t beside BCa, or BCa beside
	// Student-t at small n).
	Alternative *Interval
}

// intervalJSON is the wire form: the project's {estimate, ci_low, ci_high,
// confidence, method, n} plus what is needed to reproduce it. Pointers carry
// NaN as null, since JSON has no NaN and encoding/json refuses to write one.
type intervalJSON struct {
	Estimate   *float64 `json:"estimate"`
	Low        *float64 `json:"ci_low"`
	High       *float64 `json:"ci_high"`
	Confidence float64  `json:"confidence"`
	Method     string   `json:"method"`
	N          int      `json:"n"`
	Resamples  int      `json:"resamples"`
	Seed       uint64   `json:"seed"`
	Degenerate bool     `json:"degenerate"`
	Note       string   `json:"note,omitempty"`
	// Alternative: another method's interval of the same data.
	Alternative *Interval `json:"alternative,omitempty"`
}

// MarshalJSON writes NaN (no interval) as null.
func (iv Interval) MarshalJSON() ([]byte, error) {
	return json.Marshal(intervalJSON{
		Estimate: nullable.Ptr(iv.Estimate), Low: nullable.Ptr(iv.Low), High: nullable.Ptr(iv.High),
		Confidence: iv.Confidence, Method: iv.Method, N: iv.N, Resamples: iv.Resamples,
		Seed: iv.Seed, Degenerate: iv.Degenerate, Note: iv.Note, Alternative: iv.Alternative,
	})
}

// UnmarshalJSON reads null back as NaN.
func (iv *Interval) UnmarshalJSON(b []byte) error {
	var w intervalJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*iv = Interval{
		Estimate: nullable.Value(w.Estimate), Low: nullable.Value(w.Low), High: nullable.Value(w.High),
		Confidence: w.Confidence, Method: w.Method, N: w.N, Resamples: w.Resamples,
		Seed: w.Seed, Degenerate: w.Degenerate, Note: w.Note, Alternative: w.Alternative,
	}
	return nil
}

// BCa returns the bias-corrected and accelerated interval of stat on x, as
// scipy.stats.bootstrap(method='BCa') computes it. Errors are for bad input
// (options, non-finite values); data that admit no interval give a
// Degenerate Interval, not an error.
func BCa(x []float64, stat Stat, opts Options) (Interval, error) {
	return compute(x, stat, opts, MethodBCa)
}

// BCaMeans is BCa(x, Mean, opts) for each x of xs, the same intervals and
// errors, but samples of one length share each resample's indices: with
// Rand nil, every call seeds its streams from Seed alike and draws the
// same indices for samples of one length, so the latency's means of
// TTFT, TPOT and E2E over the same requests need one draw, not three.
// With Rand set, the calls are made one after the other, as they read
// one source in turn.
func BCaMeans(xs [][]float64, opts Options) ([]Interval, []error) {
	ivs, errs := make([]Interval, len(xs)), make([]error, len(xs))
	if opts.Rand != nil {
		for i, x := range xs {
			ivs[i], errs[i] = BCa(x, Mean, opts)
		}
		return ivs, errs
	}
	var lengths []int
	byLength := map[int][]int{} // the samples still to resample, by length
	resolved := make([]Options, len(xs))
	for i, x := range xs {
		var done bool
		ivs[i], resolved[i], done, errs[i] = prepare(x, Mean, opts, MethodBCa)
		if !done && errs[i] == nil {
			if byLength[len(x)] == nil {
				lengths = append(lengths, len(x))
			}
			byLength[len(x)] = append(byLength[len(x)], i)
		}
	}
	for _, n := range lengths {
		group := byLength[n]
		samples := make([][]float64, len(group))
		for k, i := range group {
			samples[k] = xs[i]
		}
		o := resolved[group[0]] // a source of its own, seeded from Seed
		dists := distributions(samples, Mean, o.Resamples, o.Rand, defaultWorkers())
		for k, i := range group {
			ivs[i], errs[i] = finish(ivs[i], xs[i], Mean, resolved[i], MethodBCa, dists[k])
		}
	}
	return ivs, errs
}

// Percentile returns the percentile interval: the (1-c)/2 and (1+c)/2
// percentiles of theta*. Adequate for symmetric statistics; for comparison.
func Percentile(x []float64, stat Stat, opts Options) (Interval, error) {
	return compute(x, stat, opts, MethodPercentile)
}

// Basic returns the basic (reverse percentile) interval:
// (2 theta-hat - P_(1+c)/2, 2 theta-hat - P_(1-c)/2).
func Basic(x []float64, stat Stat, opts Options) (Interval, error) {
	return compute(x, stat, opts, MethodBasic)
}

// Distribution returns the bootstrap distribution theta* (Options.Resamples
// values) of stat on x, as BCa, Percentile and Basic draw it for the same
// options.
func Distribution(x []float64, stat Stat, opts Options) ([]float64, error) {
	opts, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if err := checkInput(x, stat); err != nil {
		return nil, err
	}
	if len(x) == 0 {
		return nil, errors.New("bootstrap: no values")
	}
	return distribution(x, stat, opts.Resamples, opts.Rand, defaultWorkers()), nil
}

func checkInput(x []float64, stat Stat) error {
	if stat.Func == nil {
		return errors.New("bootstrap: statistic has no Func")
	}
	if uint64(len(x)) > maxN {
		return fmt.Errorf("bootstrap: %d values; at most %d can be resampled", len(x), uint64(maxN))
	}
	var maxAbs float64
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("bootstrap: value %d is %g; only finite values can be bootstrapped", i+1, v)
		}
		maxAbs = max(maxAbs, math.Abs(v))
	}
	// A resample's sum is at most n times the largest value: keep every
	// sum a statistic or the jackknife takes finite, or an interval would
	// print as +Inf.
	if maxAbs > math.MaxFloat64/float64(len(x)+1) {
		return fmt.Errorf("bootstrap: values up to %g overflow float64 when %d of them are summed; rescale them (other units)", maxAbs, len(x))
	}
	return nil
}

func compute(x []float64, stat Stat, opts Options, method string) (Interval, error) {
	iv, opts, done, err := prepare(x, stat, opts, method)
	if done || err != nil {
		return iv, err
	}
	return finish(iv, x, stat, opts, method, distribution(x, stat, opts.Resamples, opts.Rand, defaultWorkers()))
}

// prepare checks the input and gives the interval so far: done when it
// is already final (degenerate data need no resampling).
func prepare(x []float64, stat Stat, opts Options, method string) (iv Interval, o Options, done bool, err error) {
	opts, err = opts.resolve()
	if err != nil {
		return Interval{}, opts, true, err
	}
	if err := checkInput(x, stat); err != nil {
		return Interval{}, opts, true, err
	}
	iv = Interval{
		Estimate: math.NaN(), Low: math.NaN(), High: math.NaN(),
		Confidence: opts.Confidence, Method: method, N: len(x),
		Resamples: opts.Resamples, Seed: opts.Seed,
	}
	degenerate := func(note string) (Interval, Options, bool, error) {
		iv.Degenerate, iv.Note = true, note
		return iv, opts, true, nil
	}
	if len(x) == 0 {
		return degenerate("no values: nothing to estimate")
	}
	iv.Estimate = stat.Func(x)
	if len(x) < 2 {
		return degenerate("n = 1: a bootstrap needs at least two values")
	}
	if allEqual(x) {
		return degenerate(fmt.Sprintf("all %d values are equal (%g): every resample is the same, so there is no interval", len(x), x[0]))
	}
	return iv, opts, false, nil
}

// finish makes the interval of method from the bootstrap distribution
// theta* (sorted in place).
func finish(iv Interval, x []float64, stat Stat, opts Options, method string, sorted []float64) (Interval, error) {
	degenerate := func(note string) (Interval, error) {
		iv.Degenerate, iv.Note = true, note
		return iv, nil
	}
	slices.Sort(sorted)
	if sorted[0] == sorted[len(sorted)-1] {
		return degenerate(fmt.Sprintf("all %d resamples give the same %s (%g): the bootstrap distribution is one point, so there is no interval", opts.Resamples, stat.Name, sorted[0]))
	}

	alpha := (1 - opts.Confidence) / 2
	switch method {
	case MethodPercentile:
		iv.Low = percentileSorted(sorted, alpha)
		iv.High = percentileSorted(sorted, 1-alpha)
	case MethodBasic:
		lo, hi := percentileSorted(sorted, alpha), percentileSorted(sorted, 1-alpha)
		iv.Low, iv.High = 2*iv.Estimate-hi, 2*iv.Estimate-lo
	case MethodBCa:
		p := bcaSorted(iv.Estimate, sorted, acceleration(jackknifeU(x, stat)), opts.Confidence)
		if math.IsNaN(p.Accel) {
			return degenerate(fmt.Sprintf("every leave-one-out %s is the same, so the jackknife acceleration is 0/0 and BCa gives no interval (for the median this happens when the middle values tie; the percentile interval is still defined)", stat.Name))
		}
		if math.IsNaN(p.Low) || math.IsNaN(p.High) {
			return degenerate(fmt.Sprintf("the estimate lies outside the bootstrap distribution (bias correction z0 = %g), so BCa gives no interval", p.Z0))
		}
		iv.Low, iv.High = p.Low, p.High
	default:
		panic("bootstrap: unknown method " + method)
	}
	return iv, nil
}

func allEqual(x []float64) bool {
	for _, v := range x[1:] {
		if v != x[0] {
			return false
		}
	}
	return true
}

// BCaParams are the intermediate and final numbers of a BCa interval.
type BCaParams struct {
	Z0             float64 // bias correction
	Accel          float64 // acceleration a-hat, as given
	Alpha1, Alpha2 float64 // adjusted percentile levels, as fractions
	Low, High      float64 // the interval; NaN where BCa gives none
}

// BCaFromDistribution computes the BCa interval from a given estimate,
// bootstrap distribution theta* (not modified) and acceleration, with no
// resampling: the deterministic core of BCa, exposed so that it can be
// checked against scipy's numbers for the same theta*.
func BCaFromDistribution(thetaHat float64, thetaStar []float64, accel, confidence float64) BCaParams {
	sorted := slices.Clone(thetaStar)
	slices.Sort(sorted)
	return bcaSorted(thetaHat, sorted, accel, confidence)
}

func bcaSorted(thetaHat float64, sorted []float64, accel, confidence float64) BCaParams {
	p := BCaParams{Accel: accel, Low: math.NaN(), High: math.NaN(), Alpha1: math.NaN(), Alpha2: math.NaN()}
	if len(sorted) == 0 {
		p.Z0 = math.NaN()
		return p
	}
	// scipy's _percentile_of_score ("mean" kind): ties count half.
	var less, lessEq int
	for _, t := range sorted {
		if t < thetaHat {
			less++
		}
		if t <= thetaHat {
			lessEq++
		}
	}
	p.Z0 = normalQuantile(float64(less+lessEq) / float64(2*len(sorted)))

	alpha := (1 - confidence) / 2
	za := normalQuantile(alpha)
	num1 := p.Z0 + za
	p.Alpha1 = normalCDF(p.Z0 + num1/(1-accel*num1))
	num2 := p.Z0 - za // z_(1-alpha) = -z_alpha, as scipy writes it
	p.Alpha2 = normalCDF(p.Z0 + num2/(1-accel*num2))
	// NaN levels (0/0 acceleration, or infinite z0 against a nonzero
	// acceleration) give NaN bounds, as scipy's _percentile_along_axis does.
	p.Low = percentileSorted(sorted, p.Alpha1)
	p.High = percentileSorted(sorted, p.Alpha2)
	return p
}

// normalQuantile is Phi^-1 (scipy.special.ndtri); NaN for NaN.
func normalQuantile(p float64) float64 {
	if math.IsNaN(p) {
		return p
	}
	return mathext.NormalQuantile(p)
}

// normalCDF is Phi (scipy.special.ndtr); erfc keeps precision in the lower tail.
func normalCDF(z float64) float64 {
	return 0.5 * math.Erfc(-z/math.Sqrt2)
}

// percentileSorted is numpy.percentile(a, 100*p) with the default 'linear'
// method (Hyndman & Fan type 7) on sorted data, copying numpy 1.24's
// arithmetic so that results match to the last bit where possible: scipy
// passes q = 100*p and numpy divides by 100 again; the virtual index is
// (n-1)*q; and numpy's _lerp interpolates from the nearer end. float64()
// conversions stop the compiler fusing a multiply-add (it may on arm64),
// which numpy does not do.
func percentileSorted(s []float64, p float64) float64 {
	if math.IsNaN(p) {
		return math.NaN()
	}
	q := float64(p*100) / 100
	n := len(s)
	vi := float64(n-1) * q
	if vi >= float64(n-1) {
		return s[n-1]
	}
	if vi < 0 {
		return s[0]
	}
	below := math.Floor(vi)
	i := int(below)
	t := vi - below
	a, b := s[i], s[i+1]
	d := b - a
	if t >= 0.5 {
		return b - float64(d*(1-t))
	}
	return a + float64(d*t)
}
