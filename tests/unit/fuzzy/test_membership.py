"""Membership functions: scikit-fuzzy inside the support, shoulders outside, NaN kept."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.fuzzy import check_fuzzy_params, membership

RNG_SEED = 20240601


def _random_triangles(rng: np.random.Generator, count: int) -> list[list[float]]:
    sets = [sorted(rng.uniform(-100, 100, 3).tolist()) for _ in range(count)]
    sets += [[a, a, c] for a, _, c in sets[:5]] + [[a, c, c] for a, _, c in sets[5:10]]
    return sets


def _random_trapezoids(rng: np.random.Generator, count: int) -> list[list[float]]:
    sets = [sorted(rng.uniform(-100, 100, 4).tolist()) for _ in range(count)]
    sets += [[a, a, c, d] for a, _, c, d in sets[:5]] + [[a, b, d, d] for a, b, _, d in sets[5:10]]
    sets += [[a, b, b, d] for a, b, _, d in sets[10:15]]
    return sets


def test_triangular_matches_skfuzzy_inside_support() -> None:
    import skfuzzy

    rng = np.random.default_rng(RNG_SEED)
    for params in _random_triangles(rng, 40):
        a, _, c = params
        x = np.concatenate([rng.uniform(a, c, 200), params])
        np.testing.assert_allclose(
            membership("triangular", params, x), skfuzzy.trimf(x, params), atol=1e-12
        )


def test_trapezoidal_matches_skfuzzy_inside_support() -> None:
    import skfuzzy

    rng = np.random.default_rng(RNG_SEED + 1)
    for params in _random_trapezoids(rng, 40):
        a, _, _, d = params
        x = np.concatenate([rng.uniform(a, d, 200), params])
        np.testing.assert_allclose(
            membership("trapezoidal", params, x), skfuzzy.trapmf(x, params), atol=1e-12
        )


def test_gaussian_matches_skfuzzy_everywhere() -> None:
    import skfuzzy

    rng = np.random.default_rng(RNG_SEED + 2)
    for _ in range(40):
        mean, sigma = rng.uniform(-50, 50), rng.uniform(0.1, 20)
        x = rng.uniform(mean - 6 * sigma, mean + 6 * sigma, 200)
        np.testing.assert_allclose(
            membership("gaussian", [mean, sigma], x), skfuzzy.gaussmf(x, mean, sigma), atol=1e-12
        )


def test_plain_triangle_is_zero_outside() -> None:
    x = np.array([-10.0, 25.0, 50.0, 75.0, 110.0])
    np.testing.assert_allclose(membership("triangular", [25, 50, 75], x), [0, 0, 1, 0, 0])


def test_right_shoulder_triangle_rsi_100_is_fully_overbought() -> None:
    x = np.array([50.0, 65.0, 82.5, 100.0, 120.0, np.inf])
    np.testing.assert_allclose(membership("triangular", [65, 100, 100], x), [0, 0, 0.5, 1, 1, 1])


def test_left_shoulder_triangle_is_one_below_its_peak() -> None:
    x = np.array([-np.inf, -5.0, 0.0, 17.5, 35.0, 50.0])
    np.testing.assert_allclose(membership("triangular", [0, 0, 35], x), [1, 1, 1, 0.5, 0, 0])


def test_trapezoid_shoulders() -> None:
    x = np.array([-20.0, -10.0, 0.0, 5.0, 10.0, 15.0, 20.0, 30.0])
    np.testing.assert_allclose(
        membership("trapezoidal", [-10, -10, 10, 20], x), [1, 1, 1, 1, 1, 0.5, 0, 0]
    )
    np.testing.assert_allclose(
        membership("trapezoidal", [-10, 0, 20, 20], x), [0, 0, 1, 1, 1, 1, 1, 1]
    )
    np.testing.assert_allclose(
        membership("trapezoidal", [-10, 0, 10, 20], x), [0, 0, 1, 1, 1, 0.5, 0, 0]
    )


def test_trapezoid_with_point_plateau_is_a_triangle() -> None:
    x = np.linspace(-20, 40, 61)
    np.testing.assert_allclose(
        membership("trapezoidal", [0, 10, 10, 30], x), membership("triangular", [0, 10, 30], x)
    )


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("triangular", [0, 50, 100]),
        ("triangular", [65, 100, 100]),
        ("triangular", [0, 0, 35]),
        ("trapezoidal", [0, 10, 20, 30]),
        ("trapezoidal", [0, 0, 20, 30]),
        ("gaussian", [50, 10]),
    ],
)
def test_nan_in_nan_out(kind: str, params: list[float]) -> None:
    x = np.array([np.nan, 10.0, np.nan, 90.0])
    out = membership(kind, params, x)
    assert out.shape == x.shape and out.dtype == np.float64
    assert np.isnan(out[[0, 2]]).all()
    assert np.isfinite(out[[1, 3]]).all()


def test_membership_accepts_lists_and_keeps_shape() -> None:
    out = membership("triangular", [0, 1, 2], [[0.5, 1.0], [1.5, 3.0]])  # type: ignore[arg-type]
    np.testing.assert_allclose(out, [[0.5, 1.0], [0.5, 0.0]])


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("triangular", [30, 20, 35], "triangular needs a <= b <= c, got [30, 20, 35]"),
        ("triangular", [0, 10], "triangular needs 3 parameters [a, b, c], got 2"),
        ("triangular", [5, 5, 5], "a < c (a single point is not a set), got [5, 5, 5]"),
        ("triangular", [0, float("nan"), 3], "triangular parameters must be finite"),
        ("trapezoidal", [0, 20, 10, 30], "trapezoidal needs a <= b <= c <= d, got [0, 20, 10, 30]"),
        ("trapezoidal", [0, 1, 2], "trapezoidal needs 4 parameters [a, b, c, d], got 3"),
        ("trapezoidal", [0, 0, 30, 30], "would be 1 everywhere"),
        ("trapezoidal", [4, 4, 4, 4], "trapezoidal needs a < d"),
        ("gaussian", [50, 0], "gaussian needs sigma > 0, got [50, 0]"),
        ("gaussian", [50, -2.5], "gaussian needs sigma > 0, got [50, -2.5]"),
        ("gaussian", [50], "gaussian needs 2 parameters [mean, sigma], got 1"),
        ("sigmoid", [1, 2], "type 'sigmoid'; known: gaussian, trapezoidal, triangular"),
        ("triangular", ["a", 1, 2], "triangular parameters must be numbers"),
    ],
)  # fmt: skip
def test_bad_parameters_are_described(kind: str, params: list[float], message: str) -> None:
    problem = check_fuzzy_params(kind, params)
    assert problem is not None and message in problem, problem
    with pytest.raises(ValueError, match=r"needs|must|unknown|everywhere"):
        membership(kind, params, np.array([1.0]))


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("triangular", [0, 50, 100]),
        ("triangular", [0, 0, 35]),
        ("triangular", [65, 100, 100]),
        ("trapezoidal", [0, 10, 20, 30]),
        ("trapezoidal", [0, 0, 20, 30]),
        ("trapezoidal", [0, 10, 10, 30]),
        ("gaussian", [0, 0.5]),
    ],
)
def test_good_parameters_pass(kind: str, params: list[float]) -> None:
    assert check_fuzzy_params(kind, params) is None
