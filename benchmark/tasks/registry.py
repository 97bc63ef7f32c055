"""Finding task specs: ``tasks/`` in this checkout, extra folders, and pulled builds.

Task roots are searched in order: the project's ``tasks/`` folder, then each folder in
``$MEDFAIL_TASKS_PATH`` (``os.pathsep``-separated). A task version pulled from a remote
without a local spec is found through the ``spec.yaml`` in its cache entry.
``ID`` without ``@VERSION`` means the newest *released* (pinned) version; if none is
released, the newest draft, and the resolution says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path

from benchmark.bundled import bundled
from benchmark.common.safe_yaml import read_yaml
from benchmark.errors import SpecError, TaskNotFoundError
from benchmark.tasks.cache import cache_root
from benchmark.tasks.spec import TaskSpec, is_valid_ref, load_spec, spec_from_data, version_key

ENV_TASKS_PATH = "MEDFAIL_TASKS_PATH"
BUILTIN_TASKS = bundled("tasks")


@dataclass(frozen=True)
class ResolvedTask:
    spec: TaskSpec
    spec_path: Path
    note: str = ""  # how the version was chosen, when the user gave none


def task_roots() -> list[Path]:
    roots = [BUILTIN_TASKS] if BUILTIN_TASKS.is_dir() else []
    extra = os.environ.get(ENV_TASKS_PATH, "")
    roots += [Path(p).expanduser() for p in extra.split(os.pathsep) if p]
    return roots


def _cached_specs(root: Path | None) -> dict[tuple[str, str], Path]:
    base = (root or cache_root()) / "tasks"
    return {
        (p.parent.parent.name, p.parent.name): p
        for p in base.glob("*/*/spec.yaml")  # skips dot-folders: debris of killed builds
        if is_valid_ref(p.parent.parent.name, p.parent.name)
    }


def scan(root: Path | None = None) -> tuple[dict[str, dict[str, Path]], dict[str, str]]:
    """Task id -> version -> spec file over every task root and the cache, and the
    conflicts (``ID@VERSION`` -> why) where two roots define one version differently.

    Nothing is parsed here, so one broken spec file never hides the others.
    """
    found: dict[str, dict[str, Path]] = {}
    conflicts: dict[str, str] = {}
    for troot in task_roots():
        for path in sorted(troot.glob("*/*.yaml")):
            task_id, ver = path.parent.name, path.stem
            if not is_valid_ref(task_id, ver):
                continue
            other = found.setdefault(task_id, {}).get(ver)
            if other is not None and not _same_bytes(other, path):
                conflicts[f"{task_id}@{ver}"] = f"defined twice, differently: {other}, {path}"
            found[task_id].setdefault(ver, path)
    for (task_id, ver), path in _cached_specs(root).items():
        found.setdefault(task_id, {}).setdefault(ver, path)
    return found, conflicts


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def discover(root: Path | None = None) -> dict[str, dict[str, Path]]:
    """Task id -> version -> spec file (:func:`scan` without the conflicts)."""
    return scan(root)[0]


def read_spec(path: Path) -> TaskSpec:
    """Load a spec from a task root, or from a cache entry's ``spec.yaml``."""
    if path.name != "spec.yaml":
        return load_spec(path)
    spec = spec_from_data(read_yaml(path, SpecError), str(path))
    if (spec.id, spec.version) != (path.parent.parent.name, path.parent.name):
        raise SpecError(f"{path}: spec says {spec.ref}, but it sits in the cache entry of another")
    return spec


def parse_ref(ref: str) -> tuple[str, str | None]:
    task_id, _, ver = ref.partition("@")
    if not task_id or (ref.count("@") and not ver) or ref.count("@") > 1:
        raise TaskNotFoundError(f"not a task reference: {ref!r}; use ID or ID@VERSION")
    return task_id, ver or None


def resolve(ref: str, root: Path | None = None) -> ResolvedTask:
    """The spec ``ref`` (``ID`` or ``ID@VERSION``) names; unknown ids/versions list what exists."""
    task_id, ver = parse_ref(ref)
    found, conflicts = scan(root)
    if task_id not in found:
        near = get_close_matches(task_id, list(found), n=3, cutoff=0.6)
        near += sorted(t for t in found if task_id and task_id in t and t not in near)[:3]
        hint = (
            f"did you mean {', '.join(near)}?"
            if near
            else f"{len(found)} tasks are known: medfail tasks list"
        )
        raise TaskNotFoundError(f"unknown task {task_id!r}; {hint}")
    versions = found[task_id]
    ordered = sorted(versions, key=version_key)
    if ver is not None:
        if ver not in versions:
            raise TaskNotFoundError(
                f"{task_id} has no version {ver!r}; versions: {', '.join(ordered)}"
            )
        if f"{task_id}@{ver}" in conflicts:
            raise SpecError(f"{task_id}@{ver} is {conflicts[f'{task_id}@{ver}']}")
        return ResolvedTask(read_spec(versions[ver]), versions[ver])
    specs, broken = {}, []
    for v in ordered:  # a broken version is skipped, and said so, not fatal to the others
        try:
            if f"{task_id}@{v}" in conflicts:
                raise SpecError(conflicts[f"{task_id}@{v}"])
            specs[v] = read_spec(versions[v])
        except SpecError:
            broken.append(v)
    if not specs:
        return ResolvedTask(read_spec(versions[ordered[-1]]), versions[ordered[-1]])  # raises
    released = [v for v in specs if specs[v].released]
    if released:
        chosen = released[-1]
        note = f"{task_id}: using {chosen}, the newest released version"
    else:
        chosen = list(specs)[-1]
        note = f"{task_id}: no released version; using the newest draft {chosen}"
    if broken:
        note += f" (skipped invalid version(s) {', '.join(broken)}: medfail tasks list shows why)"
    return ResolvedTask(specs[chosen], versions[chosen], note)
