"""The cascading-randomisation sanity check: a real attribution method passes, an
"explainer" that returns the input image fails."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.scoring.attribution import attribute
from benchmark.scoring.sanity import MAX_RANK_CORRELATION, cascading_randomisation


def _net() -> torch.nn.Module:
    torch.manual_seed(3)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 2),
    )


def _images() -> np.ndarray:
    return np.random.default_rng(0).random((6, 1, 16, 16)).astype(np.float32)


def test_gradcam_passes_the_randomisation_check() -> None:
    result = cascading_randomisation(
        _net(), _images(), lambda m, x: attribute(m, x, "gradcam"), seed=1
    )
    assert [s.layer for s in result.steps] == ["6", "2", "0"]  # output side first
    assert result.passed, result.reason
    assert result.steps[-1].rank_correlation < MAX_RANK_CORRELATION
    assert all(np.isfinite(s.ssim) for s in result.steps)


def test_an_explainer_that_returns_the_image_fails() -> None:
    result = cascading_randomisation(_net(), _images(), lambda m, x: x[:, 0], seed=1)
    assert not result.passed
    assert all(s.rank_correlation == 1.0 and s.ssim == 1.0 for s in result.steps)
    assert "barely depend on the model" in result.reason


def test_layers_randomised_in_blocks_name_each_block_by_its_last_layer() -> None:
    seen: list[int] = []

    def explainer(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
        seen.append(len(x))
        return attribute(module, x, "gradcam")

    result = cascading_randomisation(_net(), _images(), explainer, seed=1, blocks=2)
    assert [s.layer for s in result.steps] == ["2", "0"]  # blocks [6, 2] then [0]
    one_by_one = cascading_randomisation(_net(), _images(), explainer, seed=1, blocks=None)
    assert len(one_by_one.steps) == 3
    assert len(seen) == 1 + 2 + 1 + 3  # the trained maps, then one per step
