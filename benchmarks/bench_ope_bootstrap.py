"""The ``ope`` lens's bootstrap: seven estimators, one resample at a time versus all at once.

    .venv/bin/python benchmarks/bench_ope_bootstrap.py --episodes 38701 --horizon 12

Random logged episodes of the real KuaiRand-Pure sample's test split shape (38,701 episodes,
H = 12, variable lengths). Times the reference (:func:`bootstrap_ci` once per estimator, each
resample built by :meth:`LoggedEpisodes.take`, as the lens did) against
:func:`bootstrap_intervals` (every estimator from one block of resample counts), with the
lens's ``n_boot`` (500), and prints the largest relative difference of the interval ends.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from noetik.evaluation.ope.estimators import (
    LoggedEpisodes,
    OPEEstimate,
    bootstrap_ci,
    bootstrap_intervals,
    direct_method,
    dr_estimate,
    is_estimate,
    pdis_estimate,
    wis_estimate,
    wpdis_estimate,
)


def episodes(n: int, h: int, seed: int) -> LoggedEpisodes:
    """``n`` random episodes padded to ``h`` (lengths uniform in 1..h)."""
    rng = np.random.default_rng(seed)
    mask = np.arange(h)[None, :] < rng.integers(1, h + 1, size=n)[:, None]
    return LoggedEpisodes(
        rewards=rng.uniform(size=(n, h)),
        behavior_prob=rng.uniform(1e-4, 1e-2, (n, h)),
        target_prob=rng.uniform(1e-5, 1e-2, (n, h)),
        mask=mask,
        gamma=0.99,
        q_hat=rng.uniform(size=(n, h)),
        v_hat=rng.uniform(size=(n, h)),
    )


def main() -> None:
    """Time both and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=38_701)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--n-boot", type=int, default=500)
    args = parser.parse_args()
    data = episodes(args.episodes, args.horizon, seed=0)
    discounts = 0.99 ** np.arange(args.horizon)

    def logged_value(d: LoggedEpisodes) -> OPEEstimate:
        g = (d.rewards * discounts).sum(axis=1)
        return OPEEstimate(float(g.mean()), g, None)

    fns: dict[str, Callable[[LoggedEpisodes], OPEEstimate]] = {
        "logged_value": logged_value,
        "dm": direct_method,
        "is": partial(is_estimate, clip=None),
        "wis": partial(wis_estimate, clip=None),
        "pdis": partial(pdis_estimate, clip=None),
        "wpdis": partial(wpdis_estimate, clip=None),
        "dr": partial(dr_estimate, clip=None),
    }
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    tic = time.perf_counter()
    fast = bootstrap_intervals(
        data, None, args.n_boot, 0, 0.05, means={"logged_value": logged_value(data).per_episode}
    )
    fast_s = time.perf_counter() - tic
    tic = time.perf_counter()
    reference = {name: bootstrap_ci(fn, data, args.n_boot, 0, 0.05) for name, fn in fns.items()}
    reference_s = time.perf_counter() - tic
    diff = max(
        abs(a - b) / max(abs(b), 1e-300)
        for name in fns
        for a, b in zip(fast[name], reference[name], strict=True)
    )
    print(f"{args.episodes} episodes x H={args.horizon}, n_boot={args.n_boot}")
    print(f"reference (bootstrap_ci x 7): {reference_s:.1f} s")
    print(f"bootstrap_intervals:          {fast_s:.2f} s  ({reference_s / fast_s:.0f}x)")
    print(f"largest relative difference of an interval end: {diff:.1e}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
