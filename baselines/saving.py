"""Model files that are byte-identical for identical models.

``medfail sweep --verify`` retrains finished cells and compares model files by sha256, so a
file must depend on the model alone. Two writers do not: safetensors orders its header's
metadata keys at random (a hash map), and skops names objects after ``id()`` and dates
its zip members now. These writers fix both.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from pathlib import Path

import torch


def save_safetensors(state: dict[str, torch.Tensor], metadata: dict[str, str], path: str) -> None:
    """``safetensors.torch.save`` with the header's keys sorted (the tensor bytes and their
    offsets are safetensors' own; the header keeps its padded length)."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    data = save(tensors, metadata=metadata)
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(text) > size:
        raise ValueError("safetensors header grew when its keys were sorted")
    Path(path).write_bytes(data[:8] + text.ljust(size, b" ") + data[8 + size :])


_SKOPS_IDS = re.compile(r'(?<="__id__": )\d+|(?<=")\d+(?=\.npy")')


def dump_skops(estimator: object, path: Path) -> Path:
    """``skops.io.dump``, made byte-reproducible: skops names objects (``__id__``) and their
    array files after ``id()`` and dates every zip member now, so the same estimator saved
    twice differs (``medfail sweep --verify`` compares model files by sha256). Here each
    id becomes its rank of first appearance in ``schema.json`` (files renamed to match),
    and every member is dated 1980-01-01."""
    import skops.io as sio

    source = zipfile.ZipFile(io.BytesIO(sio.dumps(estimator)))
    schema = source.read("schema.json").decode()
    ids: dict[str, str] = {}
    for match in _SKOPS_IDS.finditer(schema):
        ids.setdefault(match.group(0), str(len(ids)))
    schema = _SKOPS_IDS.sub(lambda m: ids[m.group(0)], schema)
    members = [("schema.json", schema.encode())]
    for name in source.namelist():
        stem, _, ext = name.partition(".")
        if name != "schema.json":
            members.append((f"{ids[stem]}.{ext}", source.read(name)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as fixed:
        for name, data in sorted(members, key=lambda m: (m[0] != "schema.json", m[0])):
            member = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = source.getinfo("schema.json").compress_type
            fixed.writestr(member, data)
    Path(path).write_bytes(buffer.getvalue())
    return Path(path)
