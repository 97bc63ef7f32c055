"""The task-format reference, rendered from the pydantic schema so it cannot drift.

:func:`render_reference` walks ``TaskSpec.model_json_schema()`` and writes one Markdown
section per model reachable from :class:`~benchmark.tasks.spec.TaskSpec`, depth-first in
field order: where the model sits in a spec, its docstring, and one row per field (path,
type, default or "required", the constraints the schema states, the field description).
Defaults made by a factory, which the JSON schema leaves out, come from ``model_fields``.
The output has no timestamps and depends only on the schema, so rendering twice gives the
same text. ``benchmarks/release/task_format.py`` writes it to ``docs/task-format.md``.
"""

from __future__ import annotations

import json
import re
from typing import Any, get_args

from pydantic import BaseModel

from benchmark.tasks.spec import TaskSpec

#: Where dict values and list items sit in a field path.
KEY = "<key>"
ITEM = "[]"

#: JSON-schema keyword -> how the reference states it (a unit is made plural after 1).
_CONSTRAINTS = (
    ("minimum", "≥ {}", ""),
    ("exclusiveMinimum", "> {}", ""),
    ("maximum", "≤ {}", ""),
    ("exclusiveMaximum", "< {}", ""),
    ("minItems", "at least {}", "item"),
    ("maxItems", "at most {}", "item"),
    ("minProperties", "at least {}", "entry"),
    ("maxProperties", "at most {}", "entry"),
    ("minLength", "at least {}", "character"),
    ("maxLength", "at most {}", "character"),
    ("pattern", "matches `{}`", ""),
)


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from ``root``'s fields, by class name."""
    found: dict[str, type[BaseModel]] = {}
    stack: list[Any] = [root]
    while stack:
        tp = stack.pop()
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ not in found:
                found[tp.__name__] = tp
                stack.extend(f.annotation for f in tp.model_fields.values())
        else:
            stack.extend(get_args(tp))
    return found


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _anchor(name: str) -> str:
    return f"[{name}](#{name.lower()})"


def _md(text: str) -> str:
    """Docstring markup as Markdown: ``x`` and :role:`x` become `x`."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`").strip()


def _type(schema: dict[str, Any]) -> str:
    name = _ref_name(schema)
    if name is not None:
        return _anchor(name)
    if "oneOf" in schema:
        text = " or ".join(_type(s) for s in schema["oneOf"])
        key = schema.get("discriminator", {}).get("propertyName")
        return f"{text}, chosen by `{key}`" if key else text
    if "anyOf" in schema:
        parts = [_type(s) for s in schema["anyOf"]]
        return " or ".join(f"({p})" if " " in p else p for p in parts)
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        inner = _type(schema.get("items", {}))
        return f"list of ({inner})" if " or " in inner else f"list of {inner}"
    if kind == "object":
        values = schema.get("additionalProperties", True)
        inner = "any value" if values is True else _type(values)
        return f"map of string to ({inner})" if " or " in inner else f"map of string to {inner}"
    if kind == "null":
        return "`null`"
    if isinstance(kind, str):
        return schema.get("format", kind)
    return "any value"


def _constraints(schema: dict[str, Any]) -> list[str]:
    """The constraints the schema states, on the field or on its non-null alternatives."""
    found = [_bound(text, schema[key], unit) for key, text, unit in _CONSTRAINTS if key in schema]
    for alt in schema.get("anyOf", []):
        found += _constraints(alt)
    return found


def _bound(text: str, value: Any, unit: str) -> str:
    if not unit:
        return text.format(value)
    plural = "entries" if unit == "entry" else unit + "s"
    return f"{text.format(value)} {unit if value == 1 else plural}"


def _children(schema: dict[str, Any], path: str) -> list[tuple[str, str]]:
    """(model name, path) of every model a field's schema holds, in schema order."""
    name = _ref_name(schema)
    if name is not None:
        return [(name, path)]
    out: list[tuple[str, str]] = []
    for key in ("anyOf", "oneOf"):
        for alt in schema.get(key, []):
            out += _children(alt, path)
    if schema.get("type") == "array" and "items" in schema:
        out += _children(schema["items"], path + ITEM)
    values = schema.get("additionalProperties")
    if schema.get("type") == "object" and isinstance(values, dict):
        out += _children(values, f"{path}.{KEY}")
    return out


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _walk(defs: dict[str, Any], root: dict[str, Any]) -> dict[str, list[str]]:
    """Model name -> the paths where it occurs, models in depth-first field order."""
    paths: dict[str, list[str]] = {}

    def visit(name: str, path: str) -> None:
        first = name not in paths
        paths.setdefault(name, [])
        if path not in paths[name]:
            paths[name].append(path)
        if not first:
            return
        schema = root if name == root["title"] else defs[name]
        for field, prop in schema.get("properties", {}).items():
            for child, child_path in _children(prop, _join(path, field)):
                visit(child, child_path)

    visit(root["title"], "")
    return paths


def _where(paths: list[str]) -> str:
    if paths == [""]:
        return "The whole spec: the top-level mapping of `tasks/<id>/<version>.yaml`."
    return "At " + ", ".join(f"`{p}`" for p in paths) + "."


def _stem(paths: list[str]) -> str:
    """The field-path prefix of a model's rows: its one path, or its paths in braces."""
    if len(paths) == 1:
        return paths[0]
    heads = {p.rpartition(".")[0] for p in paths}
    if len(heads) == 1:
        head = heads.pop()
        return _join(head, "{" + ",".join(p.rpartition(".")[2] for p in paths) + "}")
    return "{" + ",".join(paths) + "}"


def _default(cls: type[BaseModel], field: str, prop: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    if "default" in prop:
        value = prop["default"]
    else:  # a default_factory: the JSON schema leaves it out
        value = cls.model_fields[field].get_default(call_default_factory=True)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section(
    name: str, schema: dict[str, Any], paths: list[str], cls: type[BaseModel], strict: bool
) -> list[str]:
    lines = [f"## {name}", "", _where(paths)]
    if schema.get("description"):
        lines += ["", _md(schema["description"])]
    if not strict and schema.get("additionalProperties") is False:
        lines += ["", "Unknown keys are refused."]
    lines += ["", "| field | type | default | constraints and notes |", "|---|---|---|---|"]
    required = set(schema.get("required", []))
    stem = _stem(paths)
    for field, prop in schema.get("properties", {}).items():
        notes = _constraints(prop)
        if prop.get("description"):
            notes.append(_md(prop["description"]))
        row = (
            f"`{_join(stem, field)}`",
            _type(prop),
            _default(cls, field, prop, field in required),
            "; ".join(notes),
        )
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return [*lines, ""]


def render_reference() -> str:
    """Markdown describing every field of :class:`TaskSpec` and its nested models."""
    root = TaskSpec.model_json_schema()
    defs: dict[str, Any] = root.get("$defs", {})
    classes = _models(TaskSpec)
    paths = _walk(defs, root)
    schemas = {name: root if name == root["title"] else defs[name] for name in paths}
    strict = all(s.get("additionalProperties") is False for s in schemas.values())
    lines = [
        "# Task format reference",
        "",
        "Every field of a task spec (`tasks/<id>/<version>.yaml`), rendered from the pydantic",
        "models in `benchmark/tasks/spec.py`: one section per model, reached depth-first from",
        "`TaskSpec`, fields in declaration order. A path segment `<key>` is a key of your",
        "choosing; `[]` is an item of a list. The default column says `required` or gives",
        "the value used when the key is left out.",
        "",
        *(["Unknown keys are refused in every mapping of the spec."] if strict else []),
        "Only the constraints the JSON schema states are listed. Rules that span fields or",
        "check names (the id and version form, taxonomy paths, probe names, split fractions",
        "summing to 1, the positive class, leakage between features and the label) are",
        "enforced by validators in `benchmark/tasks/spec.py`; an error names the file and",
        "the field.",
        "",
    ]
    for name, where in paths.items():
        lines += _section(name, schemas[name], where, classes[name], strict)
    return "\n".join(lines).rstrip("\n") + "\n"
