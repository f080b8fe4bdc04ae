#!/usr/bin/python3
"""Write testdata/reference.json: scipy's trend numbers for the Go tests.

Why: analyze/trend must agree with the tools a reader would check it with.
For three seeded datasets this records the data and
  - scipy.stats.linregress: slope and intercept (least squares),
  - scipy.stats.theilslopes: the Theil-Sen slope (median of pairwise slopes),
  - Mann-Kendall computed by hand (scipy has no Mann-Kendall test):
    S = sum_{i<j} sign(y_j - y_i), Var(S) with the tie correction,
    Z with continuity correction, p = 2 * scipy.stats.norm.sf(|Z|),
  - drift_pct = slope * (t[-1] - t[0]) / mean(y) * 100.
The datasets stay under 2,000 samples, so the Go code uses every sample and
the numbers are comparable exactly (no subsampling).

Run with Debian's scipy (CI does not need it; the JSON is committed):

    apt-get install -y python3-scipy
    /usr/bin/python3 analyze/trend/gen_reference.py
"""

import json
import os

import numpy as np
import scipy
from scipy import stats

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "reference.json")


def datasets():
    """Power-like series: noisy linear rise, thermal approach with integer-watt
    ties, and a slow decline on irregular timestamps."""
    rng = np.random.RandomState(20250101)
    t1 = np.arange(60) * 0.1
    y1 = 250.0 + 0.5 * t1 + rng.normal(0.0, 2.0, size=t1.size)

    t2 = np.arange(500) * 0.2
    y2 = np.round(300.0 + 12.0 * (1.0 - np.exp(-t2 / 30.0)) + rng.normal(0.0, 1.5, size=t2.size))

    t3 = np.cumsum(rng.uniform(0.05, 0.15, size=1500))
    y3 = np.round(400.0 - 0.02 * t3 + rng.normal(0.0, 3.0, size=t3.size), 1)
    return {
        "linear_rise_n60": (t1, y1),
        "thermal_ties_n500": (t2, y2),
        "decline_irregular_n1500": (t3, y3),
    }


def mann_kendall(y):
    n = y.size
    diff = y[np.newaxis, :] - y[:, np.newaxis]  # diff[i, j] = y[j] - y[i]
    s = float(np.sign(diff[np.triu_indices(n, k=1)]).sum())
    _, counts = np.unique(y, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - np.sum(counts * (counts - 1) * (2 * counts + 5))) / 18.0
    if s > 0:
        z = (s - 1) / np.sqrt(var)
    elif s < 0:
        z = (s + 1) / np.sqrt(var)
    else:
        z = 0.0
    p = 2 * stats.norm.sf(abs(z))
    return s, float(var), float(z), float(p)


def main():
    cases = []
    for name, (t, y) in datasets().items():
        lr = stats.linregress(t, y)
        ts = stats.theilslopes(y, t)
        s, var, z, p = mann_kendall(y)
        cases.append({
            "name": name,
            "t": t.tolist(),
            "y": y.tolist(),
            "slope": float(lr.slope),
            "intercept": float(lr.intercept),
            "drift_pct": float(lr.slope * (t[-1] - t[0]) / np.mean(y) * 100),
            "theil_sen_slope": float(ts[0]),
            "mk_s": s,
            "mk_var": var,
            "mk_z": z,
            "mk_p": p,
        })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"scipy_version": scipy.__version__, "numpy_version": np.__version__,
                   "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
