"""2-D maps of the reference and deployment representations (the shift_diagnostics
probe's figures): t-SNE (scikit-learn) and UMAP (umap-learn), one PNG each, with one panel
per colouring (split, site, each group attribute).

Both maps are seeded (UMAP with ``random_state``, which also makes it single-threaded), on
the rows the probe compared (at most ``map_rows`` per sample, a seeded subsample); t-SNE's
perplexity is min(30, (n - 1) / 3) with a PCA start. A map shows where samples sit apart;
its distances are not the MMD's (the statistics are in the report).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np

from benchmark.common.optional import heavy
from benchmark.errors import MedFailError

#: Most categories one panel colours (the rarest beyond it are drawn as "other").
MAX_CATEGORIES = 9
PANEL_INCHES, DPI = 3.2, 100


def tsne(z: np.ndarray, seed: int) -> np.ndarray:
    """t-SNE coordinates (n, 2) of the rows of ``z``."""
    from sklearn.manifold import TSNE

    perplexity = max(2.0, min(30.0, (len(z) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z)


def umap(z: np.ndarray, seed: int) -> np.ndarray:
    """UMAP coordinates (n, 2) of the rows of ``z`` (15 neighbours, or fewer rows - 1)."""
    with warnings.catch_warnings():  # umap-learn warns that TensorFlow is absent: not used
        warnings.simplefilter("ignore", ImportWarning)
        UMAP = heavy("umap", "UMAP")
    reducer = UMAP(n_neighbors=min(15, len(z) - 1), random_state=seed, n_jobs=1)
    return np.asarray(reducer.fit_transform(z))


METHODS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {"tsne": tsne, "umap": umap}


def _categories(labels: np.ndarray) -> np.ndarray:
    """Labels as strings, the rarest beyond :data:`MAX_CATEGORIES` as ``other``."""
    labels = np.asarray(labels).astype(str)
    values, counts = np.unique(labels, return_counts=True)
    kept = set(values[np.argsort(-counts, kind="stable")][:MAX_CATEGORIES])
    return np.where(np.isin(labels, list(kept)), labels, "other")


def render(xy: np.ndarray, colourings: dict[str, np.ndarray], title: str) -> bytes:
    """One PNG: a scatter of ``xy`` per colouring (its name above the panel)."""
    plt = heavy("matplotlib.pyplot")
    n = len(colourings)
    fig, axes = plt.subplots(1, n, figsize=(PANEL_INCHES * n, PANEL_INCHES + 0.4), squeeze=False)
    for ax, (name, labels) in zip(axes[0], colourings.items(), strict=True):
        cats = _categories(labels)
        for i, cat in enumerate(sorted(set(cats))):
            at = cats == cat
            ax.scatter(xy[at, 0], xy[at, 1], s=5, alpha=0.6, color=f"C{i}", label=cat)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=6, markerscale=2, loc="best", frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def maps(
    z: np.ndarray, colourings: dict[str, np.ndarray], seed: int, what: str
) -> tuple[dict[str, bytes], list[str]]:
    """``shift-<method>.png`` for each method of :data:`METHODS` that runs here, and a
    warning for each that does not (umap-learn missing, too few rows)."""
    figures, warnings = {}, []
    if len(z) < 5:
        return {}, [f"shift maps: {len(z)} rows are too few to map"]
    for name, method in METHODS.items():
        try:
            xy = method(np.nan_to_num(z), seed)
        except (MedFailError, ValueError) as e:
            warnings.append(f"shift maps: no {name} map ({type(e).__name__}: {e})")
            continue
        figures[f"shift-{name}.png"] = render(xy, colourings, f"{name} of {what}")
    return figures, warnings
