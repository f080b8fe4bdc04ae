#!/usr/bin/python3
"""Write testdata/bootstrap/reference.json: scipy's own BCa numbers for the Go tests.

Why: the Go package must reproduce scipy.stats.bootstrap(method='BCa'). The
random resamples cannot be shared between numpy and Go, so for each case this
script records the data, scipy's bootstrap distribution (theta*) and scipy's
intervals computed from exactly that theta*. The Go test feeds the same theta*
and the same data to its own z0 / jackknife / percentile code and must agree to
~1e-9. The reference numbers come from scipy itself: the public
scipy.stats.bootstrap (intervals and theta*) and the private
scipy.stats._resampling._bca_interval (z0 inputs, alpha1, alpha2, a_hat).

Run with Debian's scipy (CI does not need it; the JSON is committed):

    apt-get install -y python3-scipy
    /usr/bin/python3 analyze/bootstrap/gen_reference.py

Written against scipy 1.10, where
_bca_interval(data, statistic, axis, alpha, theta_hat_b, batch)
returns (alpha_1, alpha_2, a_hat).
"""

import json
import math
import os
import sys

import numpy as np
import scipy
from scipy import stats
from scipy.special import ndtri
from scipy.stats import _resampling

RESAMPLES = 999
CONFIDENCE = 0.95
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   "..", "..", "testdata", "bootstrap", "reference.json")


def datasets():
    """Fixed datasets: skewed, symmetric, long-tailed, with and without ties."""
    rng = np.random.RandomState(20240611)
    lognormal30 = rng.lognormal(mean=0.0, sigma=1.0, size=30)
    normal50 = rng.normal(loc=100.0, scale=15.0, size=50)
    normal51 = rng.normal(loc=100.0, scale=15.0, size=51)  # odd n: median is one order statistic
    exponential200 = rng.exponential(scale=2.0, size=200)
    return {
        "lognormal30": lognormal30,
        "lognormal30_ties": np.round(lognormal30, 1),
        "normal50": normal50,
        "normal50_ties": np.round(normal50 / 5.0) * 5.0,
        "normal51": normal51,
        "exponential200": exponential200,
        "exponential200_ties": np.round(exponential200, 1),
        # The middle values tie, so every leave-one-out median is equal: the
        # jackknife acceleration is 0/0 and scipy gives no BCa interval.
        "median_flat_jackknife": np.array([1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 5.0, 8.0, 9.0, 10.0]),
    }


def num(v):
    """JSON has no NaN: write null, as the Go package does."""
    v = float(v)
    return None if math.isnan(v) else v


def case(name, x, stat_name, statistic, seed):
    kw = dict(confidence_level=CONFIDENCE, n_resamples=RESAMPLES, vectorized=True)
    bca = stats.bootstrap((x,), statistic, method="BCa",
                          random_state=np.random.RandomState(seed), **kw)
    pct = stats.bootstrap((x,), statistic, method="percentile",
                          random_state=np.random.RandomState(seed), **kw)
    basic = stats.bootstrap((x,), statistic, method="basic",
                            random_state=np.random.RandomState(seed), **kw)
    theta_b = bca.bootstrap_distribution
    # Same random state, same resamples: the three intervals share one theta*.
    assert np.array_equal(theta_b, pct.bootstrap_distribution)
    assert np.array_equal(theta_b, basic.bootstrap_distribution)

    alpha = (1 - CONFIDENCE) / 2
    theta_hat = float(statistic(x, axis=-1))
    alpha_1, alpha_2, a_hat = _resampling._bca_interval(
        (x,), statistic, axis=-1, alpha=alpha, theta_hat_b=theta_b, batch=None)
    z0 = ndtri(_resampling._percentile_of_score(theta_b, theta_hat, axis=-1))
    return {
        "name": name,
        "statistic": stat_name,
        "x": [float(v) for v in x],
        "theta_hat": theta_hat,
        "theta_star": [float(v) for v in theta_b],
        "z0": num(z0),
        "acceleration": num(a_hat),
        "alpha1": num(alpha_1),
        "alpha2": num(alpha_2),
        "bca": [num(bca.confidence_interval.low), num(bca.confidence_interval.high)],
        "percentile": [num(pct.confidence_interval.low), num(pct.confidence_interval.high)],
        "basic": [num(basic.confidence_interval.low), num(basic.confidence_interval.high)],
    }


def main():
    cases = []
    seed = 1000
    for name, x in datasets().items():
        for stat_name, statistic in (("mean", np.mean), ("median", np.median)):
            if name == "median_flat_jackknife" and stat_name == "mean":
                continue
            seed += 1
            cases.append(case(name, x, stat_name, statistic, seed))
    doc = {
        "generator": "analyze/bootstrap/gen_reference.py",
        "scipy_version": scipy.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "confidence": CONFIDENCE,
        "resamples": RESAMPLES,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)} (scipy {scipy.__version__})")


if __name__ == "__main__":
    main()
