"""The fitted polynomials behind BalEnt's Beta entropy, derived again from their definitions.

``strategies.balent.beta_entropy.LGAMMA_TERMS`` and ``PSI_TERMS`` (lgamma's and psi's remainders after
Stirling's form, y >= 8) and the logarithm's polynomial in ``strategies/balent/posterior_term_kernel.h``
(``LOG_A1..7``) are Chebyshev interpolants of 50-digit values on their intervals. This file
fits them again with mpmath, checks that the stored constants are those fits, and measures each
one's worst error on a dense grid against the bound the code's comments state.
"""
from __future__ import annotations

import re

import pytest
import torch

from strategies.balent import beta_entropy, native_kernel
from tests.test_strategies.conftest import require_native_kernel

mpmath = pytest.importorskip("mpmath")

Z_MAX = 1.0 / beta_entropy.SHIFT ** 2  # z = 1/y^2 for y >= SHIFT
F_MAX = (2 ** 0.5 - 1) / (2 ** 0.5 + 1)  # |f| of the log's reduced argument
C_SOURCE = native_kernel.KERNEL


def _lgamma_remainder_times_y(z):
    """y r(y), r(y) = lgamma(y) - (y - 1/2) log y + y - log(2 pi)/2, as a function of z = 1/y^2."""
    if z == 0:
        return mpmath.mpf(1) / 12
    y = 1 / mpmath.sqrt(z)
    return (mpmath.loggamma(y) - ((y - 0.5) * mpmath.log(y) - y + mpmath.log(2 * mpmath.pi) / 2)) * y


def _psi_remainder_over_z(z):
    """t(y) / z, t(y) = log y - 1/(2y) - psi(y)."""
    if z == 0:
        return mpmath.mpf(1) / 12
    y = 1 / mpmath.sqrt(z)
    return (mpmath.log(y) - 1 / (2 * y) - mpmath.digamma(y)) / z


def _atanh_remainder(u):
    """A(u) with atanh(f) = f + f^3 A(f^2): 1/3 + u/5 + u^2/7 + ..."""
    if u == 0:
        return mpmath.mpf(1) / 3
    f = mpmath.sqrt(u)
    return (mpmath.atanh(f) - f) / (f * u)


def _fit(function, upper: float, terms: int) -> list[float]:
    """Coefficients (constant first) of the Chebyshev interpolant of ``function`` on [0, upper]."""
    with mpmath.workdps(50):
        polynomial = mpmath.chebyfit(function, [0, mpmath.mpf(upper)], terms)
    return [float(c) for c in reversed(polynomial)]


def _c_log_coefficients() -> list[float]:
    found = dict(re.findall(r"#define LOG_A(\d) ([0-9.e+-]+)", C_SOURCE.read_text()))
    return [float(found[str(i)]) for i in range(1, len(found) + 1)]


@pytest.mark.parametrize("stored,function,upper", [
    (beta_entropy.LGAMMA_TERMS, _lgamma_remainder_times_y, Z_MAX),
    (beta_entropy.PSI_TERMS, _psi_remainder_over_z, Z_MAX),
    (_c_log_coefficients(), _atanh_remainder, F_MAX ** 2),
], ids=["lgamma", "psi", "log"])
def test_the_stored_coefficients_are_the_fit(stored: list[float], function, upper: float) -> None:
    assert len(stored) in (6, 7)
    assert stored == pytest.approx(_fit(function, upper, len(stored)), rel=1e-12, abs=1e-18)


def _worst(stored: list[float], function, upper: float, weight) -> float:
    """Worst |weight(x) (polynomial(x) - function(x))| over 400 points of [0, upper], by mpmath."""
    worst = 0.0
    with mpmath.workdps(40):
        for i in range(401):
            x = mpmath.mpf(upper) * i / 400
            value = mpmath.polyval(list(reversed([mpmath.mpf(c) for c in stored])), x)
            worst = max(worst, float(abs(weight(x) * (value - function(x)))))
    return worst


def test_the_remainders_are_within_their_stated_errors() -> None:
    """r(y) = y^-1 R(z) within 5e-18 and t(y) = z T(z) within 8e-18 for every y >= 8 (the 8-term
    Stirling series left 8e-17 and 2e-16 at y = 8)."""
    r_error = _worst(beta_entropy.LGAMMA_TERMS, _lgamma_remainder_times_y, Z_MAX, mpmath.sqrt)
    t_error = _worst(beta_entropy.PSI_TERMS, _psi_remainder_over_z, Z_MAX, lambda z: z)
    assert r_error <= 5e-18 and t_error <= 8e-18, (r_error, t_error)


def test_the_log_polynomial_is_within_its_stated_error() -> None:
    """2 f^3 A(f^2) within 2e-18 of its exact value for every |f| <= 0.172."""
    error = _worst(_c_log_coefficients(), _atanh_remainder, F_MAX ** 2,
                   lambda u: 2 * mpmath.sqrt(u) ** 3)
    assert error <= 2e-18, error


def test_the_compiled_log_matches_the_40_digit_log() -> None:
    """The native kernel's own logarithm, over 300 decades, every mantissa range and next to 1, within
    2 units of rounding (2^-52) relative (the worst, 1.5 units next to 1, is the rounding of f;
    the series to f^19 it replaced had the same)."""
    require_native_kernel()
    x = torch.cat([torch.logspace(-150, 150, 3001, dtype=torch.float64),
                   torch.linspace(0.5, 2.0, 3001, dtype=torch.float64),
                   1.0 + torch.logspace(-15, -1, 200, dtype=torch.float64)])
    out = native_kernel.log_positive(x)
    with mpmath.workdps(40):
        exact = [float(mpmath.log(mpmath.mpf(v))) for v in x.tolist()]
    exact = torch.tensor(exact, dtype=torch.float64)
    error = ((out - exact).abs() / exact.abs().clamp(min=1e-300)).max().item()
    assert error <= 2 * 2.0 ** -52, error
