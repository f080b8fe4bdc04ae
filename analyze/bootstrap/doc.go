// Package bootstrap computes bootstrap confidence intervals for one sample:
// the bias-corrected and accelerated (BCa) interval, and the percentile and
// basic intervals for comparison.
//
// The BCa interval follows scipy.stats.bootstrap(method='BCa') (scipy 1.10,
// scipy/stats/_resampling.py) step for step, which in turn follows Efron &
// Tibshirani, "An Introduction to the Bootstrap" (1993), sections 14.3 and
// 15.4 (eq. 14.14, 15.36), and Efron, "Better bootstrap confidence
// intervals", JASA 82 (1987):
//
//   - theta-hat is the statistic of the data; theta* its values on B
//     resamples drawn with replacement.
//   - Bias correction: z0 = Phi^-1((#{theta* < theta-hat} + #{theta* <= theta-hat}) / (2B)).
//   - Acceleration from the jackknife: with theta_(i) the statistic without
//     observation i, U_i = (n-1)(mean(theta_(.)) - theta_(i)) and
//     a = sum U^3 / (6 (sum U^2)^(3/2)).
//   - alpha1 = Phi(z0 + (z0+z_a)/(1 - a(z0+z_a))), alpha2 likewise with
//     z_(1-a), where a = (1-confidence)/2 and z_p = Phi^-1(p).
//   - The bounds are the alpha1 and alpha2 percentiles of theta*, with
//     numpy's default 'linear' interpolation.
//
// BCa corrects the percentile interval for bias and skew, which matters for
// right-skewed energy and latency samples (methodology audit, CP-5).
//
// Where the method gives no interval (all values equal, fewer than two
// values, a flat jackknife or a bootstrap distribution with one value) the
// Interval is marked Degenerate, its bounds are NaN (null in JSON) and Note
// says why: the package never prints numbers that are not an interval.
//
// Speed: the mean and the median have closed-form jackknives (O(n) and
// O(n log n) instead of the generic O(n^2)), resamples are drawn without
// allocation, and resamples run in parallel in fixed chunks, each chunk with
// its own PCG stream seeded from Options, so results do not depend on the
// number of CPUs.
package bootstrap
