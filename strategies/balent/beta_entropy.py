"""The differential entropy of Beta(1 + alpha, beta) in float64, as eager torch evaluates it.

h(a, b) = log B(a, b) - (a-1) psi(a) - (b-1) psi(b) + (a+b-2) psi(a+b), at a = 1 + alpha, b = beta,
s = a + b = 1 + k (k = alpha + beta), evaluated with arithmetic, ONE sqrt and ONE log per value
instead of three lgamma and three digamma calls (scalar code in torch, each 35 to 70 times
the cost of a multiply on this CPU). Every argument x in {a, b, s} is shifted up by 8 with the recurrences

    lgamma(x) = lgamma(y) - log P(x),   psi(x) = psi(y) - D(x),   y = x + 8,
    P(x) = x (x+1) ... (x+7),           D(x) = 1/x + 1/(x+1) + ... + 1/(x+7),

and lgamma(y), psi(y) come from Stirling's form at y >= 8 with its remainders r(y) (lgamma) and
t(y) (psi) as short polynomials (below). Substituted into h, the terms that grow like x log x
cancel analytically and every logarithm gathers into one:

    h = log W + (HALF_LOG_2PI_E - 8) - 9/2 (1/y_a + 1/y_b) + 5/y_s + r_a + r_b - r_s
        + alpha (t_a + D_a) + (beta - 1)(t_b + D_b) - (k - 1)(t_s + D_s),
    W = (y_a y_b / y_s)^(8 + 1/2) P(s) / (P(a) P(b) y_s),

with r(y) = lgamma(y) - (y - 1/2) log y + y - log(2 pi)/2 = y^-1 R(z) and
t(y) = log y - 1/(2y) - psi(y) = z T(z), z = 1/y^2 in (0, 1/64]. R and T are the functions of
the Stirling series (R = 1/12 - z/360 + ..., T = 1/12 - z/120 + ...), taken here as 6-term
polynomials fitted to them on that interval (Chebyshev interpolation of their 50-digit values;
tests/test_strategies/test_series_fits.py derives them again): absolute error below 5e-18 in r
and 8e-18 in t, where the 8-term series they replace leaves 8e-17 and 2e-16 at y = 8. W is
formed by products only (no overflow or underflow for arguments below 1e18; BalEnt's reach 1e9),
so its log is accurate to float64 rounding; the remaining sum cancels to ~8 units of rounding at
worst (the D terms of large x, ~8 each). Worst error against a 40-digit evaluation over alpha,
beta in [1e-12, 1e9]: 4.2e-15 absolute (at a = 8.9, b = 7.9;
tests/test_strategies/test_uncertainty.py).

``beta_entropy`` is the public function; ``beta_entropy_into`` the form the torch kernel
(``strategies.balent.torch_kernel``) calls on its blocks. The native kernel
(``posterior_term.c``) evaluates the same formula with the same constants, which it takes from
here. Written for eager torch on large flat float64 tensors: the three arguments are stacked into
one ``[3, n]`` buffer so that each operation is one pass over all three, every function writes
into buffers of a ``Workspace`` reused across blocks (a fresh multi-megabyte temporary costs more
than the arithmetic done on it), and products are formed in pairs to keep the pass count down.
"""
from __future__ import annotations

import math

import torch

from strategies.balent.formula import REF_BETA_FN_EPS

SHIFT = 8  # the recurrence's shift; the code below forms P(x) in four pairs (x+i)(x+7-i)
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
HALF_LOG_2PI_E = HALF_LOG_2PI + 0.5
LOG_REF_BETA_FN_EPS = math.log(REF_BETA_FN_EPS)  # the public reference code adds 1e-32 to B(a, b)
# r(y) = y^-1 * sum_k LGAMMA_TERMS[k] z^k and t(y) = z * sum_k PSI_TERMS[k] z^k, z = y^-2 <= 1/64:
# the polynomials fitted to y r(y) and t(y) / z on [0, 1/64] (see the module's docstring)
LGAMMA_TERMS = [0.0833333333333333, -0.002777777777606244, 0.0007936506649488252,
                -0.0005952025951802712, 0.0008372834512071336, -0.0016526004455595122]
PSI_TERMS = [0.08333333333333287, -0.008333333331168558, 0.003968252342841619,
             -0.004166217650696842, 0.007519088230747095, -0.017711160415846534]


class Workspace:
    """Named flat buffers of ``numel`` elements, allocated once and reused (``ws(name, n)``).

    One namespace for every function given the workspace: a name holds one buffer, so callers
    use distinct names for data that must stay alive across calls.
    """

    def __init__(self, numel: int, device: torch.device | str) -> None:
        self.numel, self.device = numel, device
        self._buffers: dict[str, torch.Tensor] = {}
        self._constants: dict[float, torch.Tensor] = {}

    def __call__(self, name: str, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.numel() < n:
            size = max(n, self.numel)
            buf = self._buffers[name] = torch.empty(size, dtype=dtype, device=self.device)
        return buf[:n]

    def constant(self, value: float) -> torch.Tensor:
        """A 0-d float64 tensor (``torch.addcmul`` takes its addend as a tensor)."""
        if value not in self._constants:
            self._constants[value] = torch.tensor(value, dtype=torch.float64, device=self.device)
        return self._constants[value]


def beta_entropy(a: torch.Tensor, b: torch.Tensor, *, floored: bool = False) -> torch.Tensor:
    """Differential entropy of Beta(a, b), computed in float64 (a, b > 0; broadcast together).

    ``log B(a, b) - (a-1) psi(a) - (b-1) psi(b) + (a+b-2) psi(a+b)``, evaluated without the
    cancellation of its large terms (see this module's docstring). With ``floored=True`` log B
    is the reference code's floored ``log(B(a, b) + 1e-32)``. Callers mask invalid fits themselves.
    """
    a, b = torch.broadcast_tensors(a.to(torch.float64), b.to(torch.float64))
    shape, n = a.shape, a.numel()
    ws = Workspace(n, a.device)
    x = ws("x", 3 * n).view(3, n)
    x[0].copy_(a.reshape(-1))
    x[1].copy_(b.reshape(-1))
    torch.add(x[0], x[1], out=x[2])
    alpha, k = torch.sub(x[0], 1.0), torch.sub(x[2], 1.0)
    h = torch.empty(n, dtype=torch.float64, device=a.device)
    beta_entropy_into(x, alpha, k, h, ws, floored)
    return h.reshape(shape)


def _polynomial_into(z: torch.Tensor, coefficients: list[float], out: torch.Tensor,
                     ws: Workspace) -> torch.Tensor:
    """``out = sum_k coefficients[k] z^k`` by Horner, one fused multiply-add pass per term."""
    out.fill_(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        torch.addcmul(ws.constant(c), out, z, out=out)
    return out


def _shift_into(x: torch.Tensor, y: torch.Tensor, inverse: torch.Tensor, d: torch.Tensor,
                ws: Workspace) -> None:
    """``y = x + 8``, ``inverse = 1 / P(x)`` and ``d = D(x)`` for x > 0 (all flat, same size).

    P(x) = u (u+6) (u+10)(u+12) with u = x (x+7), the pairs (x+i)(x+7-i); D(x) = P'(x)/P(x) =
    (2x+7) (1/u + 1/(u+6) + 1/(u+10) + 1/(u+12)), the four reciprocals summed over a common
    denominator (positive terms only: no cancellation).
    """
    n = x.numel()
    u = torch.add(x, 7.0, out=ws("u", n)).mul_(x)
    low = torch.add(u, 6.0, out=ws("low", n)).mul_(u)  # u (u + 6)
    high = torch.add(u, 11.0, out=ws("high", n)).square_().sub_(1.0)  # (u + 10)(u + 12)
    low_sum = u.mul_(2.0).add_(6.0)  # u + (u + 6)
    numerator = torch.mul(low_sum, high, out=d)
    numerator.addcmul_(low_sum.add_(16.0), low)  # + ((u + 10) + (u + 12)) u (u + 6)
    torch.mul(high, low, out=inverse).reciprocal_()  # 1 / P(x)
    numerator.mul_(inverse).mul_(torch.mul(x, 2.0, out=u).add_(7.0))  # D(x)
    torch.add(x, float(SHIFT), out=y)


def beta_entropy_into(x: torch.Tensor, alpha: torch.Tensor, k: torch.Tensor, h: torch.Tensor,
                      ws: Workspace, floored: bool = False) -> None:
    """``h`` = entropy of Beta(a, b) for the rows a, b, s = a + b of ``x`` ``[3, n]`` (positive),
    with ``alpha = a - 1`` and ``k = s - 1`` given by the caller (who may know them more exactly
    than a subtraction would give them). ``h``, ``alpha``, ``k``: flat contiguous float64 ``[n]``;
    ``x`` is used as scratch. ``floored``: log B(a, b) replaced by log(B(a, b) + 1e-32), as the
    public reference code computes it.
    """
    n = h.numel()
    beta = x[1]
    y, inverse, d = (ws(name, 3 * n) for name in ("y", "inverse", "d"))
    _shift_into(x.view(-1), y, inverse, d, ws)
    # the shift's scratch buffers (u, low, high) are free again: w, z, r reuse them
    w = torch.reciprocal(y, out=ws("u", 3 * n))  # 1/y
    z = torch.mul(w, w, out=ws("low", 3 * n))
    r = _polynomial_into(z, LGAMMA_TERMS, ws("high", 3 * n), ws).mul_(w)  # r(y)
    t = _polynomial_into(z, PSI_TERMS, ws("t", 3 * n), ws).mul_(z)  # t(y)
    y3, inverse3, w3, r3 = (v.view(3, n) for v in (y, inverse, w, r))
    if floored:
        _log_beta_function_into(y3, inverse3, r3, ws("log_b", n), ws)
    # log W, W = (y_a y_b / y_s)^(8 + 1/2) P_s / (P_a P_b y_s)
    v = torch.mul(y3[0], y3[1], out=ws("ratio", n)).mul_(w3[2])  # y_a y_b / y_s
    torch.mul(v, v, out=h).square_().square_().mul_(v.sqrt_())
    h.mul_(inverse3[0]).mul_(inverse3[1]).div_(inverse3[2]).mul_(w3[2]).log_()
    h.add_(HALF_LOG_2PI_E - SHIFT)
    h.add_(torch.add(w3[0], w3[1], out=v), alpha=-(SHIFT + 1) / 2)
    h.add_(w3[2], alpha=(SHIFT + 2) / 2)  # (SHIFT + 1)/2 from G(s), 1/2 from psi(s)
    h.add_(r3[0]).add_(r3[1]).sub_(r3[2])
    e = t.add_(d).view(3, n)  # t(y) + D(x): what psi loses to its Stirling form
    h.addcmul_(alpha, e[0])
    h.addcmul_(beta, e[1]).sub_(e[1])
    h.addcmul_(k, e[2], value=-1.0).add_(e[2])
    if floored:  # + log(B + 1e-32) - log B = softplus(log 1e-32 - log B)
        log_b = ws("log_b", n)
        h.add_(torch.nn.functional.softplus(log_b.neg_().add_(LOG_REF_BETA_FN_EPS), threshold=40))


def _log_beta_function_into(y: torch.Tensor, inverse: torch.Tensor, r: torch.Tensor,
                            out: torch.Tensor, ws: Workspace) -> None:
    """``out = log B(a, b)`` from the shifted Stirling form (rows: a, b, s):

    sum over the rows with signs +, +, - of (y - 1/2) log y - y + log(2 pi)/2 + r(y) - log P(x),
    the y log y terms written as (y_a - 1/2) log(y_a / y_s) + (y_b - 1/2) log(y_b / y_s) +
    (SHIFT - 1/2) log y_s so that they do not cancel (y_a + y_b - y_s = SHIFT).
    """
    n = out.numel()
    tmp = ws("tmp", n)
    torch.div(y[0], y[2], out=out).log_().mul_(torch.sub(y[0], 0.5, out=tmp))
    ratio_b = torch.div(y[1], y[2], out=ws("ratio_b", n)).log_()
    out.addcmul_(ratio_b, torch.sub(y[1], 0.5, out=tmp))
    out.add_(torch.log(y[2], out=tmp), alpha=SHIFT - 0.5)
    out.add_(HALF_LOG_2PI - SHIFT).add_(r[0]).add_(r[1]).sub_(r[2])
    # - log P_a - log P_b + log P_s
    out.add_(torch.mul(inverse[0], inverse[1], out=tmp).div_(inverse[2]).log_())
