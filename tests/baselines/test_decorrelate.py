"""The marker-decorrelated reference: unmarked images get real markers copied from marked
ones (values and position) until every class has the same marker rate, marked images stay
as they are, and the method needs a task that records its shortcut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from baselines.decorrelate import spread_shortcuts
from baselines.methods import families, methods_for
from benchmark.tasks.registry import resolve
from benchmark.tasks.task import Task


def test_each_class_reaches_the_highest_marker_rate_with_copied_markers() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.3, (20, 2, 8, 8)).astype(np.float32)
    labels = np.repeat([1, 0], 10)
    masks = np.zeros((20, 8, 8), dtype=bool)
    for i in range(8):  # 8 of 10 positives marked, one negative
        masks[i, 1:3, 5:7] = True
    masks[10, 2:4, 4:6] = True
    x[masks[:, None].repeat(2, axis=1)] = 0.9
    out = spread_shortcuts(x, masks, labels, seed=1)
    marked = masks.any(axis=(1, 2))
    assert np.array_equal(out[marked], x[marked])  # marked images: untouched
    changed = (out != x).any(axis=(1, 2, 3))
    assert changed[labels == 0].sum() == 7 and not changed[labels == 1].any()  # 8 of 10 each
    for i in np.flatnonzero(changed):
        diff = (out[i] != x[i]).any(axis=0)
        donor = next(d for d in np.flatnonzero(marked) if np.array_equal(diff, masks[d]))
        assert np.array_equal(out[i][:, masks[donor]], x[donor][:, masks[donor]])
    assert np.array_equal(out, spread_shortcuts(x, masks, labels, seed=1))  # seeded
    assert np.array_equal(spread_shortcuts(x, np.zeros_like(masks), labels, seed=0), x)
    with pytest.raises(ValueError, match="do not match"):
        spread_shortcuts(x, masks[:2], labels, seed=0)


def test_the_method_needs_recorded_shortcut_pixels(tiny_task) -> None:
    assert "shortcut-decorrelated" not in methods_for(tiny_task)
    with pytest.raises(Exception, match="trains on image inputs"):
        families("shortcut-decorrelated", tiny_task)
    unmarked = Task(resolve("synth-cxr-site-shift").spec, Path("."), None)  # spec only
    with pytest.raises(Exception, match="records none"):
        families("shortcut-decorrelated", unmarked)
