"""Heavy dependencies, imported where they are first needed, never at start-up.

``import benchmark`` and ``medfail --help`` stay fast because MONAI, scikit-image, ART,
Hugging Face and friends load only inside the functions that use them, through
:func:`heavy` (MONAI's ``optional_import`` habit): one place that imports them, and one
clear error naming the package to install when one is missing. Torch is imported
normally by the modules that need it, so the layer contracts can see who uses it.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

from benchmark.errors import MedFailError

#: Import name -> the pip package that provides it, where the two differ.
PIP_NAMES = {
    "PIL": "pillow",
    "art": "adversarial-robustness-toolbox",
    "dice_ml": "dice-ml",
    "huggingface_hub": "huggingface-hub",
    "pywt": "PyWavelets",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "sksurv": "scikit-survival",
    "umap": "umap-learn",
}


def heavy(module: str, *names: str) -> Any:
    """``module`` itself, or its attributes ``names`` (one, or a tuple of several), as
    ``from module import name`` would give them (a submodule is imported if needed)."""
    try:
        found = import_module(module)
        values = [_attribute(found, module, name) for name in names]
    except ModuleNotFoundError as e:
        top = (e.name or module).split(".")[0]
        raise MedFailError(
            f"MedFail needs the package {PIP_NAMES.get(top, top)!r} here and it is not "
            f"installed; reinstall with: pip install -c constraints.txt -e ."
        ) from e
    if not names:
        return found
    return values[0] if len(values) == 1 else tuple(values)


def _attribute(found: ModuleType, module: str, name: str) -> Any:
    if hasattr(found, name):
        return getattr(found, name)
    return import_module(f"{module}.{name}")
