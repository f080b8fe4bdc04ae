#!/usr/bin/python3
"""Write analyze/compare/testdata/reference.json: scipy's numbers for the Go tests.

Why: `llem compare` claims that its Mann-Whitney U test and its two-sample BCa
interval of a ratio of means compute what scipy computes. This script records,
for fixed samples, what scipy says:

- U tests. Without ties and at most 50 values a sample (Go: exact):
  scipy.stats.mannwhitneyu(method='exact'). With ties and at most 9 values a
  sample (Go: exact given the ties): scipy.stats.permutation_test on the U
  statistic with every permutation enumerated (n_resamples=inf), whose
  two-sided p is twice the smaller tail, as in Go. Otherwise (Go: normal):
  scipy.stats.mannwhitneyu(method='asymptotic'), with its tie correction and
  continuity correction. The U statistic is always mannwhitneyu's (that of x).
- Ratio intervals: scipy.stats.bootstrap((a, b), mean(b)/mean(a), method='BCa')
  resamples each sample independently. The random resamples cannot be shared
  between numpy and Go, so each case records scipy's bootstrap distribution
  (theta*) and its interval from exactly that theta*, with the acceleration
  and levels of the private scipy.stats._resampling._bca_interval. The Go test
  feeds the same theta* to its own acceleration and BCa code.

Run with Debian's scipy (CI does not need it; the JSON is committed):

    apt-get install -y python3-scipy
    /usr/bin/python3 analyze/compare/gen_reference.py

Written against scipy 1.10.
"""

import json
import math
import os
import sys

import numpy as np
import scipy
from scipy import stats
from scipy.stats import _resampling

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "reference.json")
EXACT_LIMIT, EXACT_TIES_LIMIT = 50, 9  # as analyze/compare/mannwhitney.go
RESAMPLES = 999
CONFIDENCE = 0.95

# Energy per output token (J) of each cycle of the shipped H100 runs
# testdata/runs/h100-bs8-cycles and h100-bs32-cycles, as
# `llem compare --json` gives them.
BS8 = [0.9870182630280748, 0.8987650450843383, 0.9141416254864587, 1.1104036422641768, 0.8602146211553908]
BS32 = [0.21935719550513483, 0.22343153234065383, 0.22411491588424656, 0.2428691651933729, 0.2024667444236508]


def u_statistic(x, y, axis=-1):
    # Only the statistic is used; the method does not change it.
    return stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", axis=axis).statistic


def has_ties(x, y):
    v = np.concatenate([x, y])
    return len(np.unique(v)) < len(v)


def utest_case(name, x, y):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ties = has_ties(x, y)
    n1, n2 = len(x), len(y)
    if not ties and n1 <= EXACT_LIMIT and n2 <= EXACT_LIMIT:
        method = "exact"
        r = stats.mannwhitneyu(x, y, alternative="two-sided", method="exact")
        u, p = float(r.statistic), float(r.pvalue)
        source = "scipy.stats.mannwhitneyu(method='exact')"
    elif ties and n1 <= EXACT_TIES_LIMIT and n2 <= EXACT_TIES_LIMIT:
        method = "exact_ties"
        r = stats.permutation_test((x, y), u_statistic, permutation_type="independent",
                                   vectorized=True, n_resamples=np.inf, alternative="two-sided")
        u, p = float(r.statistic), float(r.pvalue)
        source = "scipy.stats.permutation_test(U, n_resamples=inf)"
    else:
        method = "normal"
        r = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
        u, p = float(r.statistic), float(r.pvalue)
        source = "scipy.stats.mannwhitneyu(method='asymptotic')"
    return {"name": name, "x": [float(v) for v in x], "y": [float(v) for v in y], "ties": bool(ties),
            "method": method, "source": source, "u": u, "p": p}


def utest_cases():
    rng = np.random.RandomState(20261127)
    cases = [
        ("separated_5v5", [1, 2, 3, 4, 5], [6, 7, 8, 9, 10]),
        ("h100_energy_per_token_bs8_vs_bs32", BS8, BS32),
        ("interleaved_4v6", [1.5, 3.2, 4.8, 7.7], [0.4, 2.2, 5.1, 6.3, 8.9, 9.4]),
        ("n1_1v4", [2.5], [1.0, 3.0, 4.0, 5.0]),
        ("n2v3", [10.0, 11.0], [10.5, 12.0, 9.0]),
        ("middle_p1_2v2", [1.0, 4.0], [2.0, 3.0]),
        ("random_12v15", rng.normal(0, 1, 12), rng.normal(0.8, 1, 15)),
        ("random_30v50", rng.normal(10, 2, 30), rng.normal(11, 2, 50)),
        ("random_50v50", rng.lognormal(0, 1, 50), rng.lognormal(0.3, 1, 50)),
        ("ties_5v5", [1.0, 2.0, 2.0, 3.0, 5.0], [2.0, 3.0, 3.0, 4.0, 6.0]),
        ("ties_4v6_integers", [3, 1, 4, 1], [5, 9, 2, 6, 5, 3]),
        ("ties_3v3", [1.0, 2.0, 2.0], [2.0, 3.0, 3.0]),
        ("ties_all_but_one_3v3", [1.0, 1.0, 1.0], [1.0, 1.0, 2.0]),
        ("ties_9v9_rounded", np.round(rng.normal(5, 2, 9)), np.round(rng.normal(6.5, 2, 9))),
        ("ties_8v9_separated", [1, 1, 2, 2, 3, 3, 4, 4], [5, 5, 6, 6, 7, 7, 8, 8, 9]),
        ("random_60v80", rng.normal(0, 1, 60), rng.normal(0.3, 1, 80)),
        ("random_51v51", rng.exponential(1, 51), rng.exponential(1.4, 51)),
        ("ties_10v12_normal", np.round(rng.normal(3, 1, 10)), np.round(rng.normal(4, 1, 12))),
        ("ties_200v150_heavy", np.round(rng.normal(2, 1.5, 200)), np.round(rng.normal(2.4, 1.5, 150))),
        ("ties_identical_15v15", np.repeat([1.0, 2.0, 3.0], 5), np.repeat([1.0, 2.0, 3.0], 5)),
    ]
    return [utest_case(name, x, y) for name, x, y in cases]


def num(v):
    v = float(v)
    return None if math.isnan(v) else v


def ratio(a, b, axis=-1):
    return np.mean(b, axis=axis) / np.mean(a, axis=axis)


def ratio_case(name, a, b, seed):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    res = stats.bootstrap((a, b), ratio, vectorized=True, paired=False, confidence_level=CONFIDENCE,
                          n_resamples=RESAMPLES, method="BCa", random_state=np.random.RandomState(seed))
    theta_b = res.bootstrap_distribution
    alpha = (1 - CONFIDENCE) / 2
    alpha_1, alpha_2, a_hat = _resampling._bca_interval(
        (a, b), ratio, axis=-1, alpha=alpha, theta_hat_b=theta_b, batch=None)
    return {"name": name, "a": [float(v) for v in a], "b": [float(v) for v in b],
            "theta_hat": float(ratio(a, b)), "theta_star": [float(v) for v in theta_b],
            "acceleration": num(a_hat), "alpha1": num(alpha_1), "alpha2": num(alpha_2),
            "bca": [num(res.confidence_interval.low), num(res.confidence_interval.high)]}


def ratio_cases():
    rng = np.random.RandomState(7)
    cases = [
        ("h100_energy_per_token_bs8_vs_bs32", BS8, BS32),
        ("lognormal_20v30", rng.lognormal(0, 0.8, 20), rng.lognormal(0.2, 0.8, 30)),
        ("normal_8v8", rng.normal(100, 10, 8), rng.normal(90, 10, 8)),
        ("constant_baseline_6v7", [2.0] * 6, rng.normal(2.2, 0.3, 7)),
        ("exponential_50v40", rng.exponential(2, 50), rng.exponential(1.5, 40)),
    ]
    return [ratio_case(name, a, b, 500 + i) for i, (name, a, b) in enumerate(cases)]


def main():
    doc = {
        "generator": "analyze/compare/gen_reference.py",
        "scipy_version": scipy.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "confidence": CONFIDENCE,
        "resamples": RESAMPLES,
        "utests": utest_cases(),
        "ratios": ratio_cases(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"wrote {len(doc['utests'])} U tests and {len(doc['ratios'])} ratio intervals to "
          f"{os.path.relpath(OUT)} (scipy {scipy.__version__})")


if __name__ == "__main__":
    main()
