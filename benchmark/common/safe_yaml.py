"""YAML that no file can use against its reader: the one parser for specs, entries and cases.

Hostile YAML attacks the parser, not the schema behind it, so these limits hold before any
schema sees the data:

- at most :data:`MAX_BYTES` bytes of UTF-8 text (a non-UTF-8 file is an error);
- no aliases (``*name``): they let 1.5 KB expand to gigabytes ("billion laughs"), and no
  MedFail file needs them;
- nesting at most :data:`MAX_DEPTH` levels (deeper input would exhaust Python's stack);
- no duplicate mapping keys, no unhashable keys, no ``!!binary``, ``!!set``, ``!!omap`` or
  ``!!pairs`` values, integers within 64 bits, and values that YAML cannot construct (an
  impossible date such as ``2026-02-30``) are errors, not tracebacks;
- only regular files are read (a link to ``/dev/zero`` is refused), and the read itself is
  bounded.

Every refusal raises the caller's error class with one line naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchmark.common.files import read_limited
from benchmark.errors import one_line

#: Largest YAML file read, in bytes (the largest built-in spec is about 6 KB).
MAX_BYTES = 256 * 1024
#: Deepest nesting of mappings and sequences (built-in files nest at most 6 levels).
MAX_DEPTH = 32


class _Refused(yaml.YAMLError):
    """A limit of this module, raised from inside the loader."""


class _HardenedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, with a depth limit and unique hashable keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _Refused(f"aliases (*name) are not allowed (line {mark.line + 1})")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


#: Tags that build values no MedFail file holds (bytes, sets, ordered pairs); refused.
_REFUSED_TAGS = ("binary", "set", "omap", "pairs")
#: Integers are 64-bit: a longer one could not be hashed or compared sensibly.
_INT_LIMIT = 2**63


def _construct_int(loader: _HardenedLoader, node: yaml.ScalarNode) -> int:
    value = yaml.SafeLoader.construct_yaml_int(loader, node)
    if not -_INT_LIMIT <= value < _INT_LIMIT:
        raise _Refused(f"an integer beyond 64 bits (line {node.start_mark.line + 1})")
    return value


def _construct_mapping(loader: _HardenedLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:
            raise _Refused(
                f"a mapping key must be a plain value (line {key_node.start_mark.line + 1})"
            ) from None
        if duplicate:
            raise _Refused(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node)


_HardenedLoader.yaml_constructors = {
    tag: build
    for tag, build in yaml.SafeLoader.yaml_constructors.items()
    if tag is None or tag.rpartition(":")[2] not in _REFUSED_TAGS
}
_HardenedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_HardenedLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str | bytes, where: str, error: type[Exception]) -> Any:
    """Parse one YAML document under the limits above; problems raise ``error(message)``."""
    if isinstance(text, bytes):
        text = _decode(text, where, error)
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise error(f"{where}: larger than {MAX_BYTES // 1024} KiB; refused")
    try:
        return yaml.load(text, Loader=_HardenedLoader)
    except _Refused as e:
        raise error(f"{where}: refused: {e}") from e
    except yaml.YAMLError as e:
        detail = " ".join(str(e).split())
        raise error(f"{where}: not valid YAML: {detail}") from e
    except (ValueError, TypeError, OverflowError) as e:  # e.g. a date that does not exist
        raise error(f"{where}: a value cannot be read: {one_line(e)}") from e


def read_yaml(path: Path, error: type[Exception], where: str | None = None) -> Any:
    """Read and parse ``path``; an unreadable, oversized, non-regular or non-UTF-8 file is
    ``error``."""
    where = where or str(path)
    return load_yaml(read_limited(path, MAX_BYTES, error, where), where, error)


def _decode(data: bytes, where: str, error: type[Exception]) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{where}: not UTF-8 text (byte {e.start}); refused") from e
