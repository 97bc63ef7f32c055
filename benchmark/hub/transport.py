"""Publish built tasks to a remote and pull them back, verified.

Two kinds of remote:

- ``hf://datasets/ORG/NAME``: a Hugging Face dataset repo holding one task. The build's
  files sit at the repo root; each task version is a tag named by the version (``1.0.0``),
  so ``datasets.load_dataset("ORG/NAME", revision="1.0.0")`` reads it too.
- any other fsspec URL or local path: a mirror of many tasks, laid out as
  ``<URL>/<task id>/<version>/`` (a local directory works as a remote in tests).

Versions are immutable on the remote: publishing a version that exists with other content
is refused; publishing identical content again is a no-op. ``pull`` downloads into a
temporary folder beside the cache entry, verifies every file against the manifest, the
spec's content against the manifest and (where a local spec exists) the manifest against
the spec's pin, and only then renames it into place. A failed pull leaves the cache as it was.
The failure-case catalogue (``medfail-cases``, :mod:`benchmark.hub.catalogue_dataset`) is
published and pulled the same way; its ``spec.yaml`` is the catalogue spec.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import fsspec
from pydantic import ValidationError

from benchmark.common.files import replace_dir, staging
from benchmark.common.optional import heavy
from benchmark.common.safe_yaml import MAX_BYTES
from benchmark.errors import HubError, ManifestMismatchError, MedFailError, SpecError, one_line
from benchmark.tasks.cache import task_dir
from benchmark.tasks.manifest import MANIFEST, Manifest, verify_dir
from benchmark.tasks.spec import is_valid_ref


class PulledSpec(Protocol):
    """What a pull checks of a spec: a task's or the catalogue's (the parser is the caller's)."""

    @property
    def ref(self) -> str: ...

    @property
    def manifest_sha256(self) -> str | None: ...

    def sha256(self) -> str: ...


#: ``parse(data, where)``: the spec ``spec.yaml`` holds, or an error naming ``where``.
SpecParser = Callable[[bytes, str], PulledSpec]

Step = Callable[[str], None]
SPEC_FILE = "spec.yaml"
#: Largest remote manifest read (a task of 10,000 shards lists about 2 MB).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
HF_URL = re.compile(r"^hf://datasets/(?P<repo>[\w.-]+/[\w.-]+)/?$")


@dataclass(frozen=True)
class Remote:
    """Where one task version lives on a remote."""

    fs: fsspec.AbstractFileSystem
    base: str  # folder holding manifest.json, README.md, spec.yaml, data/
    hf_repo: str | None = None

    def path(self, rel: str) -> str:
        return f"{self.base}/{rel}"


def remote_for(url: str, task_id: str, version: str) -> Remote:
    """Map a publish/pull URL to the folder of ``task_id@version``."""
    if url.startswith("hf://"):
        match = HF_URL.match(url)
        if match is None:
            raise HubError(f"not a Hugging Face dataset URL: {url!r}; use hf://datasets/ORG/NAME")
        HfFileSystem = heavy("huggingface_hub", "HfFileSystem")

        repo = match["repo"]
        return Remote(HfFileSystem(), f"datasets/{repo}@{version}", hf_repo=repo)
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as e:
        raise HubError(f"cannot open remote {url!r}: {one_line(e)}") from e
    return Remote(fs, f"{root.rstrip('/')}/{task_id}/{version}")


def _hf_has_version(repo: str, version: str) -> bool:
    HfApi = heavy("huggingface_hub", "HfApi")
    RepositoryNotFoundError = heavy("huggingface_hub.errors", "RepositoryNotFoundError")

    try:
        refs = HfApi().list_repo_refs(repo, repo_type="dataset")
    except RepositoryNotFoundError:
        return False
    return any(tag.name == version for tag in refs.tags)


def _remote_manifest(remote: Remote, version: str) -> Manifest | None:
    try:
        if remote.hf_repo is not None and not _hf_has_version(remote.hf_repo, version):
            return None
        if not remote.fs.exists(remote.path(MANIFEST)):
            return None
        return Manifest.model_validate_json(_fetch_small(remote, MANIFEST, MAX_MANIFEST_BYTES))
    except ValidationError as e:
        raise HubError(
            f"{remote.path(MANIFEST)} is not a valid manifest: {e.errors()[0]['msg']}"
        ) from e
    except MedFailError:
        raise
    except Exception as e:  # fsspec backends raise their own error types
        raise HubError(f"cannot read {remote.path(MANIFEST)}: {one_line(e)}") from e


def _fetch_small(remote: Remote, rel: str, limit: int) -> bytes:
    """A small remote file, whole; one over ``limit`` bytes is refused before it is read."""
    size = remote.fs.size(remote.path(rel))
    if size is not None and size > limit:
        raise HubError(f"{remote.path(rel)}: {size} bytes, over the {limit}-byte limit; refused")
    data = remote.fs.cat_file(remote.path(rel))
    if len(data) > limit:
        raise HubError(f"{remote.path(rel)}: over the {limit}-byte limit; refused")
    return data


def publish(local: Path, url: str, *, step: Step | None = None) -> str:
    """Upload the verified build at ``local`` to ``url``; return where it went."""
    step = step or (lambda _: None)
    manifest = verify_dir(local)
    remote = remote_for(url, manifest.task, manifest.version)
    existing = _remote_manifest(remote, manifest.version)
    where = f"{url} ({manifest.task}@{manifest.version})"
    if existing is not None:
        if existing.content_sha256 == manifest.content_sha256:
            return f"{where}: already published with the same content"
        raise HubError(
            f"{where} already exists with other content (content_sha256 "
            f"{existing.content_sha256}); published versions are immutable"
        )
    rels = [*manifest.files, *manifest.extras]
    if remote.hf_repo is not None:
        _publish_hf(remote.hf_repo, local, manifest.version, step)
        return where
    fs = remote.fs
    parent = remote.base.rsplit("/", 1)[0]
    staging_base = f"{parent}/.tmp-{manifest.version}-{secrets.token_hex(4)}"
    try:
        for rel in [*rels, MANIFEST]:  # the manifest last: without it a remote copy is void
            step(rel)
            fs.makedirs(f"{staging_base}/{rel}".rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(local / rel), f"{staging_base}/{rel}")
        if fs.exists(remote.base):
            fs.rm(remote.base, recursive=True)  # debris of an upload without a manifest
        fs.mv(staging_base, remote.base, recursive=True)
    except Exception as e:
        if fs.exists(staging_base):
            fs.rm(staging_base, recursive=True)
        raise HubError(f"upload to {where} failed: {one_line(e)}") from e
    return where


def _publish_hf(repo: str, local: Path, version: str, step: Step) -> None:
    """One commit with every file, then a tag named by the version."""
    HfApi = heavy("huggingface_hub", "HfApi")

    api = HfApi()
    step(f"uploading to {repo}")
    try:
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo,
            repo_type="dataset",
            folder_path=str(local),
            commit_message=f"MedFail task version {version}",
            delete_patterns=["data/*"],  # this commit holds exactly this version's shards
        )
        api.create_tag(repo, tag=version, repo_type="dataset", revision=commit.oid)
    except Exception as e:  # network and hub errors come in many types
        raise HubError(f"publishing to hf://datasets/{repo} failed: {one_line(e)}") from e


def _check_spec(spec: PulledSpec, manifest: Manifest, where: str) -> None:
    if spec.sha256() != manifest.spec_sha256:
        raise ManifestMismatchError(
            f"{where}: the remote build was made from other spec content than {spec.ref}",
            {MANIFEST: "spec_sha256 differs from the spec"},
        )


def _remote_spec(
    data: bytes, parse: SpecParser, task_id: str, version: str, manifest: Manifest, where: str
) -> PulledSpec:
    """The remote's spec, parsed by ``parse``; it must be the requested task version's and
    the one the manifest was built from."""
    spec = parse(data, f"{where}: {SPEC_FILE}")
    if spec.ref != f"{task_id}@{version}":
        raise HubError(f"{where}: the remote {SPEC_FILE} is the spec of {spec.ref}; refused")
    _check_spec(spec, manifest, where)
    return spec


def pull(
    task_id: str,
    version: str,
    url: str,
    *,
    parse: SpecParser,
    local_spec: PulledSpec | None = None,
    root: Path | None = None,
    step: Step | None = None,
) -> Manifest:
    """Download ``task_id@version`` from ``url`` into the cache, verified; return its manifest.

    ``parse`` reads the remote ``spec.yaml`` (a task spec's parser, or the catalogue's);
    ``local_spec``, when this installation has the version, must be the one it was built
    from, and its pin must match."""
    step = step or (lambda _: None)
    if not is_valid_ref(task_id, version):
        raise HubError(f"not a valid task reference: {task_id}@{version}")
    remote = remote_for(url, task_id, version)
    where = f"{url} ({task_id}@{version})"
    manifest = _remote_manifest(remote, version)
    if manifest is None:
        raise HubError(f"{where}: no manifest.json at {remote.base}; is it published?")
    if (manifest.task, manifest.version) != (task_id, version):
        raise HubError(f"{where}: the remote manifest is for {manifest.task}@{manifest.version}")
    try:
        spec_bytes = _fetch_small(remote, SPEC_FILE, MAX_BYTES)
    except FileNotFoundError as e:
        raise HubError(f"{where}: no {SPEC_FILE} on the remote") from e
    _remote_spec(spec_bytes, parse, task_id, version, manifest, where)  # refused before any write
    final = task_dir(task_id, version, root)
    with staging(final) as tmp:
        for rel in [*manifest.files, *manifest.extras]:
            step(rel)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            listed = (manifest.files | manifest.extras)[rel].bytes
            try:
                served = remote.fs.size(remote.path(rel))
                if served is not None and served != listed:  # before a byte is fetched
                    raise ManifestMismatchError(
                        f"{where}: {rel} is {served} bytes on the remote, the manifest says "
                        f"{listed}; refused",
                        {rel: f"{served} bytes, listed as {listed}"},
                    )
                remote.fs.get_file(remote.path(rel), str(tmp / rel))
            except MedFailError:
                raise
            except FileNotFoundError as e:
                raise ManifestMismatchError(
                    f"{where}: {rel} is listed in the manifest but missing on the remote",
                    {rel: "missing on the remote"},
                ) from e
            except Exception as e:
                raise HubError(f"{where}: downloading {rel} failed: {one_line(e)}") from e
        (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        pin = local_spec.manifest_sha256 if local_spec is not None else None
        try:
            verify_dir(tmp, pin)
        except ManifestMismatchError as e:
            raise ManifestMismatchError(
                f"pull refused, the cache is untouched: {e}".replace(str(tmp), where), e.problems
            ) from e
        remote_spec = _remote_spec(
            (tmp / SPEC_FILE).read_bytes(), parse, task_id, version, manifest, where
        )
        if local_spec is not None:
            _check_spec(local_spec, manifest, where)
        elif remote_spec.manifest_sha256 not in (None, manifest.content_sha256):
            raise SpecError(f"{where}: the remote spec pins another build than the one published")
        replace_dir(tmp, final)
    return manifest
