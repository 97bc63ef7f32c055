"""Shortcut decorrelation for the ``shortcut-decorrelated`` baseline: the reference model
for which the marker carries no label information.

A task that records its shortcut's pixels (``features.array.shortcut_masks``: a burned-in
marker's glyph) lets a model be trained on data where the marker no longer predicts the
label: in each class, unmarked training (and validation) images receive a marker until the
class's marker rate equals the highest class's, each copied pixel for pixel (values,
noise and position) from a marked image drawn at random (seeded). The marker then appears
at one rate whatever the label, and some images of every class stay unmarked, so neither
its presence nor its absence tells the label.

Two simpler designs leak, measured on ``synth-cxr-shortcut@1.1.0`` (2026-12-06): painting
the marker *out* (filling the glyph with pixels of the ring around it) left a texture that
a logistic regression on the corner told apart from real background at val AUROC 0.92; and
marking *every* image left a model that had never seen an unmarked image, which read the
marker's absence at test time as "no lesion" (id_test AUROC 0.79 against 0.53 on the
decorrelated ood_test). This is the counterfactual augmentation DeGrave et al. (2021)
suggest, with privileged annotations (the entry's ``uses_annotations`` flag); the test
splits are not touched.
"""

from __future__ import annotations

import numpy as np


def spread_shortcuts(
    images: np.ndarray, masks: np.ndarray, labels: np.ndarray, seed: int
) -> np.ndarray:
    """A copy of ``images`` (n, C, H, W) in which, per class of ``labels``, random unmarked
    images (``masks`` (n, H, W) row empty) get the shortcut pixels of a random marked image
    until the class's share of marked images equals the largest class share."""
    x = np.array(images, copy=True)
    m = np.asarray(masks, dtype=bool)
    y = np.asarray(labels)
    if m.shape != (x.shape[0], *x.shape[2:]) or y.shape != (x.shape[0],):
        raise ValueError(f"masks {m.shape} and labels {y.shape} do not match images {x.shape}")
    marked = m.any(axis=(1, 2))
    donors = np.flatnonzero(marked)
    if not len(donors):
        return x
    classes = np.unique(y)
    target = max(marked[y == c].mean() for c in classes)
    rng = np.random.default_rng(seed)
    for c in classes:
        members = np.flatnonzero(y == c)
        short = round(target * len(members)) - int(marked[members].sum())
        unmarked = members[~marked[members]]
        chosen = rng.permutation(unmarked)[: max(short, 0)]
        for target_row, donor in zip(chosen, rng.choice(donors, len(chosen)), strict=True):
            x[target_row][:, m[donor]] = x[donor][:, m[donor]]
    return x
