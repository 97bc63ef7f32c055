"""How far a deployment sample moved from the development sample: two-sample statistics.

Conventions: ``x_ref`` (n, d) is the reference sample (the training split's
representation), ``x`` (m, d) the sample tested against it; rows are examples.

- **MMD²** (Gretton et al., 2012) with a Gaussian RBF kernel
  ``k(a, b) = exp(-|a - b|² / (2 σ²))``; σ by the median heuristic on the reference sample
  (:func:`median_bandwidth`: σ² is half the lower median of the squared distances between
  distinct reference rows, as alibi-detect's ``sigma_median``); the unbiased estimator
  (diagonals of the within-sample blocks left out). The permutation test reassigns the
  pooled rows to two samples of sizes n and m; the p-value is the share of permutations
  whose MMD² is at least the observed one (alibi-detect's ``MMDDrift`` convention), and
  the threshold τ is the (1 − α) quantile of the permutation MMD²s: the sample is flagged
  as shifted when p < α. Hand-written rather than alibi-detect's (which draws one
  permutation at a time, and clashes with this environment): the kernel matrix is computed
  once and every permutation's within-sample sums come from one matrix product, in column
  blocks so memory stays bounded (``benchmarks/performance/shift_statistics.py`` measures
  it against alibi-detect; docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

#: Kernel rows computed at once: a (block, n + m) float64 slab, and its product with the
#: permutation indicators; 2,048 rows at n + m = 20,000 is 330 MB.
KERNEL_BLOCK_ROWS = 2048


@dataclass(frozen=True)
class MMDTest:
    """One MMD² permutation test (module docstring): the statistic, its p-value, the
    threshold τ at level ``alpha``, the bandwidth σ, and whether p < alpha."""

    mmd2: float
    p_value: float
    threshold: float
    sigma: float
    alpha: float
    n_permutations: int

    @property
    def shifted(self) -> bool:
        return self.p_value < self.alpha


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a_i - b_j|² (n_a, n_b), clipped at 0 against rounding."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def median_bandwidth(x_ref: np.ndarray) -> float:
    """σ of the median heuristic: sqrt(½ · the lower median of |a_i − a_j|² over pairs of
    distinct reference rows). NaN with fewer than 2 rows or when every row is the same."""
    x = np.asarray(x_ref, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    d = _squared_distances(x, x)
    off = d[~np.eye(len(x), dtype=bool)]
    median = np.partition(off, len(off) // 2 - 1)[len(off) // 2 - 1]
    return float(np.sqrt(0.5 * median)) if median > 0 else float("nan")


def permutations(n_total: int, n_permutations: int, seed: int) -> np.ndarray:
    """(n_permutations, n_total) seeded permutations of the pooled rows; in each, the first
    n_ref positions name the rows that play the reference sample."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_total) for _ in range(n_permutations)])


def _kernel_sums(
    z: np.ndarray, sigma: float, members: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """For 0/1 membership rows ``members`` (p, N) over the pooled sample ``z`` (N, d):
    a'K₀a and a'K₀1 per row, and 1'K₀1, where K₀ is the RBF kernel matrix with a zero
    diagonal. K₀ is built in blocks of :data:`KERNEL_BLOCK_ROWS` rows, never whole."""
    quad = np.zeros(len(members))
    linear = np.zeros(len(members))
    total = 0.0
    for start in range(0, len(z), KERNEL_BLOCK_ROWS):
        stop = min(start + KERNEL_BLOCK_ROWS, len(z))
        block = np.exp(-_squared_distances(z[start:stop], z) / (2.0 * sigma**2))
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0  # K₀: no diagonal
        rows = block.sum(1)  # K₀ is symmetric: these are also its column sums
        total += float(rows.sum())
        linear += members[:, start:stop] @ rows
        quad += ((members @ block.T) * members[:, start:stop]).sum(1)
    return quad, linear, total


def _mmd2(quad: np.ndarray, linear: np.ndarray, total: float, n: int, m: int) -> np.ndarray:
    """Unbiased MMD² from the kernel sums of the reference rows ``a`` (n of them)."""
    within_ref = quad
    between = linear - quad
    within_test = total - 2.0 * linear + quad
    return within_ref / (n * (n - 1)) + within_test / (m * (m - 1)) - 2.0 * between / (n * m)


def mmd_test(
    x_ref: np.ndarray,
    x: np.ndarray,
    *,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    sigma: float | None = None,
    perms: np.ndarray | None = None,
) -> MMDTest:
    """The MMD² permutation test of ``x`` against ``x_ref`` (module docstring). ``sigma``
    None: the median heuristic on ``x_ref``; ``perms``: permutations of the pooled rows
    (reference first) to use instead of drawing ``n_permutations`` with ``seed`` (parity
    with another implementation's draws). A ValueError names what makes the test
    undefined (fewer than 2 rows in a sample, features that differ in number, NaN)."""
    a, b = np.asarray(x_ref, dtype=np.float64), np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"two (rows, features) samples with equal features; got {a.shape}, {b.shape}"
        )
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"MMD needs at least 2 rows per sample; got {len(a)} and {len(b)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("MMD is undefined with NaN or infinite features")
    sigma = median_bandwidth(a) if sigma is None else float(sigma)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError("the median-heuristic bandwidth is 0: every reference row is the same")
    z = np.concatenate([a, b])
    n, m = len(a), len(b)
    order = permutations(len(z), n_permutations, seed) if perms is None else np.asarray(perms)
    members = np.zeros((1 + len(order), len(z)))
    members[0, :n] = 1.0  # the observed split
    np.put_along_axis(members[1:], order[:, :n], 1.0, axis=1)
    stats = _mmd2(*_kernel_sums(z, sigma, members), n, m)
    observed, null = float(stats[0]), stats[1:]
    return MMDTest(
        mmd2=observed,
        p_value=float((null >= observed).mean()),
        threshold=float(np.quantile(null, 1.0 - alpha)),
        sigma=sigma,
        alpha=alpha,
        n_permutations=len(null),
    )


#: Histogram bins of :func:`kl_divergence`, and the pseudo-count added to every bin of
#: both histograms (additive smoothing, so an empty bin is not an infinite divergence).
KL_BINS = 20
KL_SMOOTHING = 0.5


def histograms(
    ref: np.ndarray, x: np.ndarray, bins: int = KL_BINS, smoothing: float = KL_SMOOTHING
) -> tuple[np.ndarray, np.ndarray]:
    """The smoothed probability histograms of one feature in ``ref`` and ``x``, on ``bins``
    equal-width bins spanning both samples' range (plus ``smoothing`` counts per bin)."""
    low, high = float(min(ref.min(), x.min())), float(max(ref.max(), x.max()))
    edges = np.linspace(low, high, bins + 1) if high > low else np.array([low - 0.5, low + 0.5])
    p = np.histogram(ref, edges)[0] + smoothing
    q = np.histogram(x, edges)[0] + smoothing
    return p / p.sum(), q / q.sum()


def _finite_columns(ref: np.ndarray, x: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(column, its finite reference values, its finite values in ``x``) for each column
    with at least 2 finite values on both sides."""
    for j in range(ref.shape[1]):
        a, b = ref[:, j], x[:, j]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) >= 2 and len(b) >= 2:
            yield j, a, b


def kl_divergence(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """D_KL(P_x ‖ P_ref) in nats, per feature (column), on :func:`histograms` (the deployment
    histogram against the reference one) of the feature's finite values. NaN for a feature
    with fewer than 2 finite values on a side."""
    out = np.full(ref.shape[1], np.nan)
    for j, a, b in _finite_columns(ref, x):
        p, q = histograms(a, b)
        out[j] = float(np.sum(q * np.log(q / p)))
    return out


def wasserstein(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Wasserstein-1 distance per feature (column) between its finite values, in the
    feature's units (``scipy.stats.wasserstein_distance``). NaN for a feature with fewer
    than 2 finite values on a side."""
    from scipy.stats import wasserstein_distance

    out = np.full(ref.shape[1], np.nan)
    for j, a, b in _finite_columns(ref, x):
        out[j] = float(wasserstein_distance(a, b))
    return out


def domain_scores(
    ref: np.ndarray, x: np.ndarray, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The classifier two-sample test's held-out scores: a logistic regression (features
    standardised) fitted on a stratified half of the pooled rows to tell ``x`` (label 1)
    from ``ref`` (label 0), and applied to the other half. Returns the held-out rows
    (indices into the pooled ``ref`` then ``x``), their labels and scores; their AUROC is
    0.5 in expectation when the samples cannot be told apart (pooling the out-of-fold
    scores of a K-fold split instead is biased below 0.5 under no shift: each fold's model
    is fitted without that fold's rows)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z = np.concatenate([ref, x])
    labels = np.r_[np.zeros(len(ref), dtype=int), np.ones(len(x), dtype=int)]
    fit, held = train_test_split(
        np.arange(len(z)), test_size=0.5, stratify=labels, random_state=seed % 2**32
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(z[fit], labels[fit])
    held = np.sort(held)
    return held, labels[held], model.predict_proba(z[held])[:, 1]


def label_shift(
    y_val: np.ndarray,
    pred_val: np.ndarray,
    pred_target: np.ndarray,
    n_classes: int = 2,
    *,
    w_val: np.ndarray | None = None,
    w_target: np.ndarray | None = None,
) -> np.ndarray:
    """Black-box shift estimation (Lipton et al., 2018): the target's class prevalences
    q = w ⊙ p_val(y), with weights w = C⁻¹ μ, where C[i, j] = P(ŷ = i, y = j) on val and
    μ[i] = P(ŷ = i) on the target (hard decisions ``pred_*``). Under label shift alone
    (p(x | y) unchanged) q estimates the deployment prevalence; clipped to [0, 1] and
    renormalised. NaN when C is singular (a class never predicted on val).

    ``w_val`` (b, n_val) and ``w_target`` (b, n_target): bootstrap weights, one row per
    replicate; the result is then (b, n_classes). Without them, (n_classes,)."""
    if (w_val is None) != (w_target is None):
        raise ValueError("give bootstrap weights for both val and the target, or neither")
    y, p, t = (np.asarray(v, dtype=int) for v in (y_val, pred_val, pred_target))
    single = w_val is None
    wv = np.ones((1, len(y))) if w_val is None else np.asarray(w_val, dtype=np.float64)
    wt = np.ones((1, len(t))) if w_target is None else np.asarray(w_target, dtype=np.float64)
    cells = np.eye(n_classes * n_classes)[p * n_classes + y]  # one-hot of (pred, label)
    joint = (wv @ cells).reshape(-1, n_classes, n_classes) / wv.sum(1)[:, None, None]
    mu = (wt @ np.eye(n_classes)[t]) / wt.sum(1)[:, None]
    prior = (wv @ np.eye(n_classes)[y]) / wv.sum(1)[:, None]
    q = np.full((len(wv), n_classes), np.nan)
    solvable = np.abs(np.linalg.det(joint)) > 1e-12
    if solvable.any():
        w = np.linalg.solve(joint[solvable], mu[solvable][..., None])[..., 0]
        est = np.clip(w * prior[solvable], 0.0, 1.0)
        total = est.sum(1, keepdims=True)
        q[solvable] = np.where(total > 0, est / np.where(total > 0, total, 1.0), np.nan)
    return q[0] if single else q


def distances(
    ref: np.ndarray,
    x: np.ndarray,
    *,
    basis: np.ndarray | None = None,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[dict[str, float], str | None]:
    """The distance statistics between two standardised samples: ``mmd2``, ``mmd2_p_value``,
    ``mmd2_threshold``, ``shift_flagged`` (1.0 when p < alpha), and ``kl_max``,
    ``kl_mean``, ``wasserstein_max``, ``wasserstein_mean`` over the columns (of
    ``x @ basis`` when a basis is given, e.g. principal directions). A missing value is the
    reference mean (0) for the MMD. Returns the values and, when the MMD is undefined,
    why (its values are then NaN)."""
    nan = float("nan")
    values = dict.fromkeys(["mmd2", "mmd2_p_value", "mmd2_threshold", "shift_flagged"], nan)
    why = None
    try:
        test = mmd_test(
            np.nan_to_num(ref),
            np.nan_to_num(x),
            n_permutations=n_permutations,
            alpha=alpha,
            seed=seed,
        )
        values = {
            "mmd2": test.mmd2,
            "mmd2_p_value": test.p_value,
            "mmd2_threshold": test.threshold,
            "shift_flagged": float(test.shifted),
        }
    except ValueError as e:
        why = f"MMD undefined: {e}"
    a, b = (ref, x) if basis is None else (ref @ basis, x @ basis)
    for name, per_column in (("kl", kl_divergence(a, b)), ("wasserstein", wasserstein(a, b))):
        finite = per_column[np.isfinite(per_column)]
        values[f"{name}_max"] = float(finite.max()) if len(finite) else nan
        values[f"{name}_mean"] = float(finite.mean()) if len(finite) else nan
    return values, why
