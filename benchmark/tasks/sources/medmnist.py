"""``medmnist``: the MedMNIST v3 2D data sets, read from their official ``.npz`` files.

Not through the ``medmnist`` package: it depends on torchvision, which pulls a CUDA torch.
Each file holds ``{train,val,test}_images`` (uint8, ``(n, H, W)`` grey or ``(n, H, W, 3)``
RGB) and ``{train,val,test}_labels`` (``(n, 1)`` class index, or ``(n, 14)`` 0/1 for
ChestMNIST). Files are found, in order, at ``params.path``, in ``$MEDMNIST_ROOT``, in the
``medmnist`` package's default folder ``~/.medmnist``, and in MedFail's download cache
(``<cache>/downloads/medmnist``); otherwise they are downloaded from Zenodo with pooch
(progress bar), unless ``MEDFAIL_OFFLINE=1``. Every file is checked against the official
MD5 (from MedMNIST's ``info.py``, v3.0.2) before it is read: a truncated or altered file is
an error naming it, never a silent rebuild on other bytes.

The raw table has one row per image: ``sample_id`` (``<split>-<index>``), ``medmnist_split``
(the official split), ``index``, ``label`` (class index as text) and ``label_name``; for
ChestMNIST one 0/1 column per finding instead. MedMNIST carries no patient ids and no
demographics, so rows are the resampling unit and tasks on it have no fairness probe.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from benchmark.common.optional import heavy
from benchmark.errors import BuildError, DataUnavailableError
from benchmark.tasks.cache import cache_root
from benchmark.tasks.sources.base import (
    Source,
    SourceContext,
    SourceData,
    SourceParams,
    normalise_columns,
)

ZENODO = "https://zenodo.org/records/10519652/files"
ENV_ROOT = "MEDMNIST_ROOT"
ENV_OFFLINE = "MEDFAIL_OFFLINE"
MEDMNIST_HOME = Path("~/.medmnist")  # where the ``medmnist`` package keeps its downloads
SPLITS = ("train", "val", "test")
Size = Literal[28, 64, 128, 224]


@dataclass(frozen=True)
class MedMNISTInfo:
    """One data set: channels, class names, licence, and the official MD5 per image size."""

    channels: int
    classes: tuple[str, ...]
    license: str
    md5: dict[int, str]
    n_samples: tuple[int, int, int]  # train, val, test
    multi_label: bool = False


_ORGANS = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)

#: MedMNIST v3.0.2 ``INFO`` (github.com/MedMNIST/MedMNIST, medmnist/info.py): 2D sets only.
DATASETS: dict[str, MedMNISTInfo] = {
    "pathmnist": MedMNISTInfo(
        3,
        (
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ),
        "CC BY 4.0",
        {
            28: "a8b06965200029087d5bd730944a56c1",
            64: "55aa9c1e0525abe5a6b9d8343a507616",
            128: "ac42d08fb904d92c244187169d1fd1d9",
            224: "2c51a510bcdc9cf8ddb2af93af1eadec",
        },
        (89996, 10004, 7180),
    ),
    "chestmnist": MedMNISTInfo(
        1,
        (
            "atelectasis",
            "cardiomegaly",
            "effusion",
            "infiltration",
            "mass",
            "nodule",
            "pneumonia",
            "pneumothorax",
            "consolidation",
            "edema",
            "emphysema",
            "fibrosis",
            "pleural",
            "hernia",
        ),
        "CC BY 4.0",
        {
            28: "02c8a6516a18b556561a56cbdd36c4a8",
            64: "9de6cd0b934ebb5b7426cfba5efbae16",
            128: "db107e5590b27930b62dbaf558aebee3",
            224: "45bd33e6f06c3e8cdb481c74a89152aa",
        },
        (78468, 11219, 22433),
        multi_label=True,
    ),
    "dermamnist": MedMNISTInfo(
        3,
        (
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ),
        "CC BY-NC 4.0",
        {
            28: "0744692d530f8e62ec473284d019b0c7",
            64: "b70a2f5635c6199aeaa28c31d7202e1f",
            128: "2defd784463fa5243564e855ed717de1",
            224: "8974907d8e169bef5f5b96bc506ae45d",
        },
        (7007, 1003, 2005),
    ),
    "octmnist": MedMNISTInfo(
        1,
        ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
        "CC BY 4.0",
        {
            28: "c68d92d5b585d8d81f7112f81e2d0842",
            64: "e229e9440236b774d9f0dfef9d07bdaf",
            128: "0a97e76651ace45c5d943ee3f65b63ae",
            224: "abc493b6d529d5de7569faaef2773ba3",
        },
        (97477, 10832, 1000),
    ),
    "pneumoniamnist": MedMNISTInfo(
        1,
        ("normal", "pneumonia"),
        "CC BY 4.0",
        {
            28: "28209eda62fecd6e6a2d98b1501bb15f",
            64: "8f4eceb4ccffa70c672198ea285246c6",
            128: "05b46931834c231683c68f40c47b2971",
            224: "d6a3c71de1b945ea11211b03746c1fe1",
        },
        (4708, 524, 624),
    ),
    "retinamnist": MedMNISTInfo(
        3,
        ("0", "1", "2", "3", "4"),
        "CC BY 4.0",
        {
            28: "bd4c0672f1bba3e3a89f0e4e876791e4",
            64: "afda852cc34dcda56f86ad2b2457dbcc",
            128: "e48e916a24454daf90583d4e6efb1a18",
            224: "eae7e3b6f3fcbda4ae613ebdcbe35348",
        },
        (1080, 120, 400),
    ),
    "breastmnist": MedMNISTInfo(
        1,
        ("malignant", "normal, benign"),
        "CC BY 4.0",
        {
            28: "750601b1f35ba3300ea97c75c52ff8f6",
            64: "742edef2a1fd1524b2efff4bd7ba9364",
            128: "363e4b3f8d712e9b5de15470a2aaadf1",
            224: "b56378a6eefa9fed602bb16d192d4c8b",
        },
        (546, 78, 156),
    ),
    "bloodmnist": MedMNISTInfo(
        3,
        (
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ),
        "CC BY 4.0",
        {
            28: "7053d0359d879ad8a5505303e11de1dc",
            64: "2b94928a2ae4916078ca51e05b6b800b",
            128: "adace1e0ed228fccda1f39692059dd4c",
            224: "b718ff6835fcbdb22ba9eacccd7b2601",
        },
        (11959, 1712, 3421),
    ),
    "tissuemnist": MedMNISTInfo(
        1,
        (
            "Collecting Duct, Connecting Tubule",
            "Distal Convoluted Tubule",
            "Glomerular endothelial cells",
            "Interstitial endothelial cells",
            "Leukocytes",
            "Podocytes",
            "Proximal Tubule Segments",
            "Thick Ascending Limb",
        ),
        "CC BY 4.0",
        {
            28: "ebe78ee8b05294063de985d821c1c34b",
            64: "123ece2eba09d0aa5d698fda57103344",
            128: "61b955355d7425a89687b06cca3ce0c2",
            224: "b077128c4a949f0a4eb01517f9037b9c",
        },
        (165466, 23640, 47280),
    ),
    "organamnist": MedMNISTInfo(
        1,
        _ORGANS,
        "CC BY 4.0",
        {
            28: "68e3f8846a6bd62f0c9bf841c0d9eacc",
            64: "2dcccc29b88e6da5a01161ef20cda288",
            128: "eeae80d0a227a8d099027e1b3cfd3b60",
            224: "50747347e05c87dd3aaf92c49f9f3170",
        },
        (34561, 6491, 17778),
    ),
    "organcmnist": MedMNISTInfo(
        1,
        _ORGANS,
        "CC BY 4.0",
        {
            28: "b9ceb9546e10131b32923c5bbeaea2b1",
            64: "3ce34a8724ea6f548e6db4744d03b6a9",
            128: "773c1f009daa3fe5d9a2a201b2a7ed94",
            224: "050f5e875dc056f6768abf94ec9995d1",
        },
        (12975, 2392, 8216),
    ),
    "organsmnist": MedMNISTInfo(
        1,
        _ORGANS,
        "CC BY 4.0",
        {
            28: "9ab87b696fb54e2a387ebe992d6ed5f1",
            64: "53a6d115339d874c25e309a994ff46d3",
            128: "ded0c5fa01a95dc4978b956f613e9b8e",
            224: "b354719e553fbbb2513d5533f52a4cb1",
        },
        (13932, 2452, 8827),
    ),
}

Flag = Literal[
    "pathmnist",
    "chestmnist",
    "dermamnist",
    "octmnist",
    "pneumoniamnist",
    "retinamnist",
    "breastmnist",
    "bloodmnist",
    "tissuemnist",
    "organamnist",
    "organcmnist",
    "organsmnist",
]


def file_name(flag: str, size: int) -> str:
    """The official file name: ``pathmnist.npz`` at 28 px, ``pathmnist_64.npz`` otherwise."""
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def url(flag: str, size: int) -> str:
    return f"{ZENODO}/{file_name(flag, size)}?download=1"


def download_dir() -> Path:
    return cache_root() / "downloads" / "medmnist"


def how_to_obtain(flag: str, size: int) -> str:
    name = file_name(flag, size)
    return (
        f"Download {url(flag, size)} (MD5 {DATASETS[flag].md5[size]}) and put {name} in "
        f"${ENV_ROOT}, ~/.medmnist or {download_dir()}, or give its path as source.params.path; "
        f"MedFail downloads it itself when online (unset {ENV_OFFLINE})."
    )


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_md5(path: Path, flag: str, size: int) -> Path:
    """``path`` if its MD5 is the official one, else a BuildError naming the file."""
    expected = DATASETS[flag].md5[size]
    got = md5_file(path)
    if got != expected:
        raise BuildError(
            f"{path}: MD5 {got} is not the official {expected} of {file_name(flag, size)} "
            f"({path.stat().st_size:,} bytes): the file is truncated, altered or another "
            f"version. Delete it and obtain it again. {how_to_obtain(flag, size)}"
        )
    return path


def candidates(flag: str, size: int, path: Path | None = None) -> list[Path]:
    """Where the file is looked for, in order."""
    name = file_name(flag, size)
    found = [path] if path is not None else []
    if os.environ.get(ENV_ROOT):
        found.append(Path(os.environ[ENV_ROOT]).expanduser() / name)
    found += [MEDMNIST_HOME.expanduser() / name, download_dir() / name]
    return found


def fetch(
    flag: str,
    size: int,
    path: Path | None = None,
    *,
    progress: bool = True,
    offline: bool = False,
) -> Path:
    """The verified local file of ``flag`` at ``size``; downloaded when absent, unless
    ``offline`` or ``$MEDFAIL_OFFLINE`` is set.

    An explicit ``path`` must exist. A file found but failing its MD5 is an error (it is
    never silently replaced); a download failing its MD5 is deleted and reported.
    """
    if flag not in DATASETS or size not in DATASETS[flag].md5:
        raise BuildError(f"medmnist: no data set {flag!r} at size {size}")
    if path is not None and not path.is_file():
        raise DataUnavailableError(
            f"medmnist: {path} (source.params.path) is missing. {how_to_obtain(flag, size)}"
        )
    for candidate in candidates(flag, size, path):
        if candidate.is_file():
            return check_md5(candidate, flag, size)
    if offline or os.environ.get(ENV_OFFLINE, "") not in ("", "0"):
        raise DataUnavailableError(
            f"medmnist: {file_name(flag, size)} is not on this machine and downloads are off "
            f"(offline build or {ENV_OFFLINE}). {how_to_obtain(flag, size)}"
        )
    return download(url(flag, size), download_dir(), file_name(flag, size), flag, size, progress)


def download(
    address: str, folder: Path, name: str, flag: str, size: int, progress: bool = True
) -> Path:
    """Download with pooch into ``folder/name``, checked against the official MD5."""
    pooch = heavy("pooch")

    folder.mkdir(parents=True, exist_ok=True)
    try:
        got = pooch.retrieve(
            address,
            known_hash=f"md5:{DATASETS[flag].md5[size]}",
            fname=name,
            path=folder,
            progressbar=progress,
        )
    except ValueError as e:  # pooch: the hash of the downloaded file does not match
        raise BuildError(
            f"medmnist: the download of {name} from {address} failed its MD5 check and was "
            f"discarded (truncated or altered): {e}"
        ) from e
    except Exception as e:  # requests raises many types when the network is closed
        raise DataUnavailableError(
            f"medmnist: cannot download {name} from {address} ({type(e).__name__}: {e}). "
            f"{how_to_obtain(flag, size)}"
        ) from e
    return Path(got)


def read_npz(path: Path, flag: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split -> (images ``(n, C, H, W)`` uint8, labels ``(n, k)``), shapes checked."""
    info = DATASETS[flag]
    out = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for split in SPLITS:
                for key in (f"{split}_images", f"{split}_labels"):
                    if key not in data.files:
                        raise BuildError(f"{path}: no array {key!r}; it holds {data.files}")
                images, labels = data[f"{split}_images"], data[f"{split}_labels"]
                out[split] = (images, labels)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise BuildError(f"{path}: not a readable MedMNIST .npz file: {e}") from e
    for split, (images, labels) in out.items():
        grey = images.ndim == 3 and info.channels == 1
        rgb = images.ndim == 4 and images.shape[-1] == 3 and info.channels == 3
        if images.dtype != np.uint8 or not (grey or rgb):
            raise BuildError(
                f"{path}: {split}_images has dtype {images.dtype} and shape {images.shape}; "
                f"{flag} has {info.channels} channel(s) of uint8"
            )
        width = len(info.classes) if info.multi_label else 1
        if labels.shape != (len(images), width):
            raise BuildError(
                f"{path}: {split}_labels has shape {labels.shape}, expected "
                f"({len(images)}, {width})"
            )
        top = len(info.classes) - 1 if not info.multi_label else 1
        if labels.min(initial=0) < 0 or labels.max(initial=0) > top:
            raise BuildError(f"{path}: {split}_labels has values outside 0..{top}")
        images = images[:, None] if grey else np.moveaxis(images, -1, 1)
        out[split] = (np.ascontiguousarray(images), labels)
    return out


class MedMNISTParams(SourceParams):
    dataset: Flag
    size: Size = 28
    path: str | None = Field(default=None, description="an explicit .npz file (optional)")


class MedMNISTSource(Source):
    name = "medmnist"
    Params = MedMNISTParams

    def load(self, params: MedMNISTParams, ctx: SourceContext) -> SourceData:
        from benchmark.tasks.sources.files import resolve_path

        flag, size = params.dataset, params.size
        explicit = None
        if params.path is not None:
            explicit = resolve_path(
                params.path, ctx.spec_dir, dataset="medmnist", how=how_to_obtain(flag, size)
            )
        path = fetch(flag, size, explicit, offline=ctx.offline)
        info = DATASETS[flag]
        parts, images = [], []
        for split, (imgs, labels) in read_npz(path, flag).items():
            n = len(imgs)
            frame = pd.DataFrame(
                {
                    "sample_id": [f"{split}-{i:06d}" for i in range(n)],
                    "medmnist_split": split,
                    "index": np.arange(n),
                }
            )
            if info.multi_label:
                for j, finding in enumerate(info.classes):
                    frame[finding.replace(" ", "_")] = labels[:, j].astype(np.int64)
            else:
                frame["label"] = labels[:, 0].astype(np.int64).astype(str)
                frame["label_name"] = [info.classes[k] for k in labels[:, 0]]
            parts.append(frame)
            images.append(imgs)
        counts = {s: len(p) for s, p in zip(SPLITS, parts, strict=True)}
        notes = (
            f"File `{path.name}` (official MD5 `{info.md5[size]}`, checked), MedMNIST v3 "
            f"({ZENODO}). Images {size}x{size}, {info.channels} channel(s); official split "
            f"sizes {counts}. Licence of the data set: {info.license}. MedMNIST gives no "
            "patient ids: images of one patient (or slide) may sit in different splits, and "
            "the bootstrap resamples images, so CIs can be optimistic."
        )
        return SourceData(
            frame=normalise_columns(pd.concat(parts, ignore_index=True)),
            provenance=f"MedMNIST v3 `{flag}` at {size} px, {path.name}",
            arrays={"inputs": np.concatenate(images)},
            notes=notes,
        )
