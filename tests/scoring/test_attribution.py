"""Attribution maps: shapes, where Grad-CAM looks, IG's completeness, occlusion without
gradients, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.scoring.attribution import attribute, gradcam_layer, predict_forward
from benchmark.stats.alignment import pointing_game


class Bright(torch.nn.Module):
    """Logit 1 = mean of a 3x3 box blur of the image (more light, more 'lesion')."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
        torch.nn.init.constant_(self.conv.weight, 1.0 / 9)
        self.head = torch.nn.Linear(1, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[0.0], [4.0]]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.conv(x))
        return self.head(a.mean(dim=(2, 3)))


def _images() -> tuple[np.ndarray, np.ndarray]:
    """Four 1x12x12 images, each with a bright 3x3 patch at its own place (the mask)."""
    x = np.full((4, 1, 12, 12), 0.05, dtype=np.float32)
    mask = np.zeros((4, 12, 12), dtype=bool)
    for i, (r, c) in enumerate([(1, 1), (1, 8), (8, 1), (8, 8)]):
        x[i, 0, r : r + 3, c : c + 3] = 1.0
        mask[i, r : r + 3, c : c + 3] = True
    return x, mask


def test_gradcam_and_ig_point_at_the_bright_patch() -> None:
    torch.manual_seed(0)
    model = Bright()
    x, mask = _images()
    assert gradcam_layer(model)[0] == "conv"
    for method in ("gradcam", "integrated_gradients", "occlusion"):
        maps = attribute(model, x, method, batch_size=3, window=3)
        assert maps.shape == (4, 12, 12) and np.isfinite(maps).all(), method
        assert pointing_game(maps, mask, tolerance=1).tolist() == [1.0] * 4, method
    gradcam = attribute(model, x, "gradcam")
    assert (gradcam >= 0).all()  # ReLU applied


def test_integrated_gradients_is_complete() -> None:
    """IG's maps sum to the target logit at the image minus at the zero baseline."""
    model = Bright()
    x, _ = _images()
    maps = attribute(model, x, "integrated_gradients", steps=64)
    with torch.no_grad():
        logit = model(torch.as_tensor(x))[:, 1] - model(torch.zeros(4, 1, 12, 12))[:, 1]
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), logit.numpy(), rtol=1e-3)


def test_occlusion_serves_a_model_without_gradients() -> None:
    model = Bright()
    x, mask = _images()

    def predict_proba(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(torch.as_tensor(batch)), dim=1).numpy()

    maps = attribute(predict_forward(predict_proba), x, "occlusion", window=3)
    assert maps.shape == (4, 12, 12)
    assert pointing_game(maps, mask, tolerance=1).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="needs a torch module"):
        attribute(predict_forward(predict_proba), x, "gradcam")
    with pytest.raises(ValueError, match="unknown attribution method 'lime'"):
        attribute(model, x, "lime")
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        attribute(model, x[:, 0], "gradcam")
