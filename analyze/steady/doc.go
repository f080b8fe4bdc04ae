// Package steady decides whether, and from which sample on, a GPU power
// series has reached a steady state.
//
// Two signal-based methods are offered; llem reports both.
//
// # Changepoints and classification (Barrett et al.)
//
// Detect follows Barrett, Bolz-Tereick, Killick, Mount and Tratt, "Virtual
// Machine Warmup Blows Hot and Cold" (OOPSLA 2017), as their code
// softdevteam/warmup_stats does it (warmup/outliers.py,
// bin/mark_changepoints_in_json, which calls R's changepoint package):
//
//  1. Outliers. For each sample i a rolling window [i-w/2, i+w/2) of w = 200
//     samples, clamped to the series, gives median m and the band
//     m +/- 3*(P90 - P10) (percentiles with linear interpolation, as numpy).
//     Samples outside the band are outliers and are left out of the
//     changepoint fit. Edges, as warmup_stats: at the end the window is cut
//     short at the last sample (it still holds at least w/2 samples); at the
//     start, a sample whose window would reach before the first sample and
//     so holds fewer than w samples is never flagged. The start of a run is
//     where warmup lives, and a short ramp at the start would otherwise look
//     like outliers of the plateau and be removed, hiding the warmup.
//     Non-finite samples (NaN, Inf) are always outliers.
//  2. Changepoints. PELT (Killick, Fearnhead and Eckley, JASA 2012) on mean
//     and variance with the normal cost n*(log 2*pi + log sigma^2 + 1),
//     sigma^2 the maximum-likelihood variance floored at 1e-11, penalty
//     15*ln(n) (n = points fitted, see below) and minimum segment length
//     2, as R's cpt.meanvar(method="PELT", penalty="Manual") with the same
//     pruning rule and tie-breaking.
//  3. Classification against the last segment, which is the candidate
//     steady state. Its bounds are mean +/- max(variance, delta). Scanning the
//     earlier segments from the end: a segment whose mean +/- variance
//     overlaps the bounds is equivalent to the steady state; the first
//     non-equivalent one decides, except that a warmup keeps scanning and is
//     overruled by an earlier slowdown (as warmup_stats). A non-equivalent
//     segment that ends in the last 25% of the series means "none" (no
//     steady state). All equivalent: "flat". The steady state starts at the
//     first of the segments at the end that are all equivalent to the last
//     one (for a flat series, at the start), as Barrett et al. report a flat
//     execution steady from its first iteration: changepoints that noise
//     cuts inside a steady state must not shorten it.
//
// # Changepoint convention
//
// Changepoints are the end indices (exclusive) of the segments, in the
// indices of the input series, and include len(x): this is what R's
// changepoint package stores in cpts (1-based inclusive ends are 0-based
// exclusive ends). Segment k covers x[Start:End]. For 50 values of one level
// and 50 of another, Changepoints is [50 100]. Outliers between two segments
// belong to the later one; segment means and variances are taken over the
// samples that were not outliers (as R's param.est on the data the fit saw).
//
// # Warmup and slowdown for power
//
// Barrett's series are iteration times, where an earlier segment that is
// slower (higher time) than the steady state is warmup and a faster one is
// slowdown. llem applies the method to power in W, where the physics runs the
// other way round, so the default mapping is:
//
//   - warmup: an earlier segment BELOW the steady level. The GPU is still
//     ramping up: clocks rising out of idle, the batch filling, and the die
//     heating, which raises leakage power for 45-90 s after load starts
//     (methodology audit CP-2). Energy measured there is too low.
//   - slowdown: an earlier segment ABOVE the steady level. Power fell and
//     stayed down, which on a GPU means thermal or power-cap throttling
//     lowered the clocks, so the work also runs slower.
//
// Options.Times switches to Barrett's own direction, for series of
// iteration or token latencies where higher means slower.
//
// # Delta and the variance in the bounds
//
// Barrett's delta is 0.001 s. For power the default is 1% of the steady
// segment's mean (3 W at 300 W, 7 W at 700 W). The power sensor does not
// resolve smaller differences reliably: nvidia-smi documents power.draw as
// accurate to about +/-5 W (a figure from Fermi-era boards; none newer is
// published), and a relative delta scales with the board instead of being
// too tight on a 700 W H100 and too loose on a 70 W L4. Options.Delta sets an
// absolute value (in the units of the series) instead.
//
// The bounds add the variance, not the standard deviation, to the mean, as
// the paper and warmup_stats do. For iteration times in seconds the
// variance is tiny and delta dominates; for power in W the variance is in W^2,
// so noisy power (sigma = 10 W gives +/-100 W) makes every segment look
// equivalent. Options.StdDevBounds uses the standard deviation instead; it is
// off by default to stay with the published method. Both are tested.
//
// # Series length and resampling
//
// Give Detect the power resampled to 100 ms bin means (1 h = 36,000 bins),
// not the raw 50 Hz polls: the sensor updates every 20-100 ms (Yang et al.,
// SC24), so raw polls repeat one value several times in a row, and a run of
// equal values has variance 0, floored to 1e-11, whose cost is so low that
// PELT cuts a segment around it.
//
// PELT's pruning only removes candidates that lie before a changepoint, so a
// long stretch without one costs O(n^2) (Killick et al. prove linear time
// only when changepoints grow with n): 2.3 s for 18,000 samples with one
// long plateau. Detect therefore fits at most Options.MaxFitPoints (2,000,
// the length of Barrett's series) points: a longer series, after outlier
// removal, is fitted as the means of 2,000 consecutive blocks, with the
// penalty 15*ln(2000). Changepoints then fall on block edges (1.8 s for 1 h
// of 100 ms bins), which is fine for finding where the steady state starts;
// segment means and variances are still over the individual samples. PELT
// itself is exact and can be called on any series.
//
// # MSER-5
//
// MSER5 implements the Marginal Standard Error Rule on batch means of 5
// (White 1997; Spratt 1998), see its comment.
package steady
