"""The manifest of a built task, and verification that fails closed.

``manifest.json`` lists every data file with its sha256, size in bytes and row count,
plus the card and the spec copy (``extras``). Its ``content_sha256`` is the digest of the
task id, version, spec digest and data-file entries (canonical JSON): the value a released
spec pins as ``manifest_sha256``. Tool versions are recorded but left out of that digest,
so the pin speaks about data, not about who built it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import ValidationError, field_validator

from benchmark.common.hashing import sha256_file, sha256_json
from benchmark.common.schema import StrictModel
from benchmark.errors import ManifestMismatchError

MANIFEST = "manifest.json"
FORMAT = "medfail-manifest/1"
DATA_FILE = re.compile(r"^data/[A-Za-z0-9_][A-Za-z0-9_.-]*\.(parquet|npy)$")
EXTRA_FILES = frozenset({"README.md", "spec.yaml"})


class FileEntry(StrictModel):
    sha256: str
    bytes: int
    rows: int | None = None
    split: str | None = None


class Manifest(StrictModel):
    format: Literal["medfail-manifest/1"] = FORMAT
    task: str
    version: str
    spec_sha256: str
    content_sha256: str
    files: dict[str, FileEntry]
    extras: dict[str, FileEntry] = {}
    input_sha256: str | None = None
    medfail_version: str
    pyarrow_version: str

    @field_validator("files")
    @classmethod
    def _data_names(cls, files: dict[str, FileEntry]) -> dict[str, FileEntry]:
        bad = sorted(n for n in files if not DATA_FILE.match(n))
        if bad:
            raise ValueError(f"data file names must be data/<name>.parquet or .npy, got {bad}")
        return files

    @field_validator("extras")
    @classmethod
    def _extra_names(cls, extras: dict[str, FileEntry]) -> dict[str, FileEntry]:
        bad = sorted(set(extras) - EXTRA_FILES)
        if bad:
            raise ValueError(f"unknown extra files {bad}; allowed: {sorted(EXTRA_FILES)}")
        return extras

    @staticmethod
    def digest(task: str, version: str, spec_sha256: str, files: dict[str, FileEntry]) -> str:
        payload = {
            "task": task,
            "version": version,
            "spec_sha256": spec_sha256,
            "files": {k: v.model_dump() for k, v in sorted(files.items())},
        }
        return sha256_json(payload)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError as e:
            raise ManifestMismatchError(f"{path}: no manifest", {MANIFEST: "missing"}) from e
        except ValidationError as e:
            raise ManifestMismatchError(
                f"{path}: manifest is not valid: {e.errors()[0]['msg']}", {MANIFEST: "invalid"}
            ) from e


def file_entry(path: Path, rows: int | None = None, split: str | None = None) -> FileEntry:
    return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size, rows=rows, split=split)


def _check_file(root: Path, name: str, entry: FileEntry) -> str | None:
    path = root / name
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size < entry.bytes:
        return f"truncated: {size} bytes, expected {entry.bytes}"
    if size > entry.bytes:
        return f"grown: {size} bytes, expected {entry.bytes}"
    digest = sha256_file(path)
    if digest != entry.sha256:
        return f"altered: sha256 {digest}, expected {entry.sha256}"
    return None


def verify_dir(root: Path, expected_content: str | None = None) -> Manifest:
    """Re-hash every file under ``root`` against its manifest; return the manifest.

    Raises :class:`ManifestMismatchError` naming each missing, truncated, altered or
    unexpected file, a manifest whose digest does not match its own entries, and (if
    ``expected_content`` is given, the spec's pin) a build that is not the released one.
    """
    manifest = Manifest.read(root / MANIFEST)
    problems: dict[str, str] = {}
    for name, entry in {**manifest.files, **manifest.extras}.items():
        problem = _check_file(root, name, entry)
        if problem:
            problems[name] = problem
    known = {MANIFEST, *manifest.files, *manifest.extras}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel not in known:
            problems[rel] = "unexpected file (not in the manifest)"
    digest = Manifest.digest(manifest.task, manifest.version, manifest.spec_sha256, manifest.files)
    if digest != manifest.content_sha256:
        problems[MANIFEST] = f"content_sha256 {manifest.content_sha256} != digest of its entries"
    elif expected_content is not None and digest != expected_content:
        problems[MANIFEST] = f"content_sha256 {digest}, but the spec pins {expected_content}"
    if problems:
        lines = "; ".join(f"{name}: {what}" for name, what in problems.items())
        raise ManifestMismatchError(
            f"{manifest.task}@{manifest.version} at {root} failed verification: {lines}", problems
        )
    return manifest
