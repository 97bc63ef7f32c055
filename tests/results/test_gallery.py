"""The explanation gallery: one PNG per item with a panel per map and mask, atomic, and
an earlier report's PNGs removed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.results.gallery import SCALE, file_name, write_gallery


def _item(sample_id: str, raters: bool = True) -> dict:
    image = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    lesion = np.zeros((32, 32), dtype=bool)
    lesion[10:14, 10:14] = True
    return {
        "split": "ood_test",
        "sample_id": sample_id,
        "image": image,
        "maps": {"gradcam": lesion * 1.0, "integrated_gradients": np.full((32, 32), np.nan)},
        "lesion": lesion,
        "raters": np.stack([lesion, np.roll(lesion, 1, axis=0)]) if raters else None,
        "shortcut": None,
    }


def test_one_png_per_item_with_one_panel_per_view(tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    written = write_gallery([_item("a/1"), _item("b", raters=False)], folder)
    assert [p.name for p in written] == ["ood_test-a_1.png", "ood_test-b.png"]
    with Image.open(written[0]) as png:
        assert png.size[0] == 5 * (32 * SCALE + 4)  # image, 2 maps, masks, raters
        pixels = np.asarray(png.convert("RGB"))
    assert (pixels == (0, 255, 0)).all(axis=2).any()  # the lesion's green outline
    with Image.open(written[1]) as png:
        assert png.size[0] == 4 * (32 * SCALE + 4)
    old = folder / "ood_test-stale.png"
    old.write_bytes(b"x")
    write_gallery([_item("b")], folder)
    assert sorted(os.listdir(folder)) == ["ood_test-b.png"]  # stale and earlier ones go
    write_gallery([], folder)
    assert not folder.exists()
    assert file_name({"split": "id_test", "sample_id": "../x"}) == "id_test-.._x.png"
