"""bench.report.stats: the two-level bootstrap interval and the minimum detectable difference, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.report.stats import minimum_detectable_difference, two_level_bootstrap


def test_one_seed_bootstrap_is_the_normal_interval_of_the_mean() -> None:
    # one seed: a request bootstrap; for n = 5000 requests the percentile interval of the mean is
    # mean ± 1.96 · sd / sqrt(n) up to the bootstrap's own noise (well under 10% of the half-width)
    n = 5000
    d = np.random.default_rng(7).normal(0.03, 0.2, n)
    half = 1.959964 * d.std() / math.sqrt(n)
    low, high = two_level_bootstrap(d[None, :], n_boot=4000, seed=1)
    assert low == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.1 * half)
    assert two_level_bootstrap([d], n_boot=4000, seed=1) == (low, high)  # a list of one seed's array: the same
    assert two_level_bootstrap(d, n_boot=4000, seed=1) == (low, high)  # a 1-d array is one seed


def test_bootstrap_is_reproducible_and_seeded() -> None:
    d = np.random.default_rng(3).normal(0.0, 0.3, (5, 800))
    first = two_level_bootstrap(d, n_boot=500, seed=11)
    assert two_level_bootstrap(d, n_boot=500, seed=11) == first
    assert two_level_bootstrap(d, n_boot=500, seed=12) != first
    assert first[0] < d.mean() < first[1]


def test_constant_difference_gives_a_zero_width_interval() -> None:
    assert two_level_bootstrap(np.full((3, 40), 0.1)) == (0.1, 0.1)
    assert two_level_bootstrap(np.zeros((1, 5))) == (0.0, 0.0)


def test_seed_level_resampling_by_hand() -> None:
    # two seeds, each constant over its requests (0.1 and 0.3): resampling requests changes nothing, and
    # resampling the two seeds gives the mean 0.1, 0.2 or 0.3 with probability 1/4, 1/2, 1/4, so the
    # central 95% interval is (0.1, 0.3): the seed level is resampled, not only the requests
    low, high = two_level_bootstrap(np.array([[0.1] * 30, [0.3] * 30]), n_boot=2000, seed=0)
    assert (low, high) == (pytest.approx(0.1), pytest.approx(0.3))


def test_seeds_share_the_request_draw() -> None:
    # every seed has the same per-request differences: resampling seeds is then a no-op and, because one
    # draw uses the same request indices for every seed, the interval is exactly the one-seed interval
    row = np.random.default_rng(5).normal(0.02, 0.25, 300)
    one = two_level_bootstrap(row[None, :], n_boot=1000, seed=4)
    three = two_level_bootstrap(np.stack([row, row, row]), n_boot=1000, seed=4)
    assert three == pytest.approx(one, abs=0.2 * (one[1] - one[0]))
    width_one = one[1] - one[0]
    # a larger seed-to-seed spread widens the interval
    spread = np.stack([row - 0.05, row, row + 0.05])
    wide = two_level_bootstrap(spread, n_boot=1000, seed=4)
    assert wide[1] - wide[0] > width_one


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        two_level_bootstrap(np.zeros((2, 0)))
    with pytest.raises(ValueError):
        two_level_bootstrap(np.array([[0.1, math.nan]]))
    with pytest.raises(ValueError):
        two_level_bootstrap([np.zeros(3), np.zeros(4)])  # seeds over different requests
    with pytest.raises(ValueError):
        two_level_bootstrap(np.ones((1, 3)) * np.arange(3), level=1.5)


def test_minimum_detectable_difference_by_hand() -> None:
    # (z_0.975 + z_0.8) = 1.959964 + 0.841621 = 2.801585; sd 0.2, n 1000: 2.801585 · 0.2 / 31.6228 = 0.017719
    assert minimum_detectable_difference(0.2, 1000) == pytest.approx(0.017719, abs=1e-6)
    assert minimum_detectable_difference(0.3, 2226) == pytest.approx(2.801585 * 0.3 / math.sqrt(2226), rel=1e-6)
    # alpha 0.01, power 0.9: z_0.995 + z_0.9 = 2.575829 + 1.281552 = 3.857381
    assert minimum_detectable_difference(1.0, 100, alpha=0.01, power=0.9) == pytest.approx(0.3857381, rel=1e-6)
    assert minimum_detectable_difference(0.0, 50) == 0.0
    assert math.isnan(minimum_detectable_difference(0.2, 0))
