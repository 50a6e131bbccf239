"""The config reference, generated from the dataclasses: every key with its type, default,
valid range or choices and one line of doc.

The doc of a field is its attribute docstring (a string right below it) or, failing that,
the comment block right above it; the range comes from :data:`mcsan.core.validate.RANGES`,
choices from the field's ``Literal`` type. ``mcsan config --show`` prints it and
``docs/CONFIG.md`` is :func:`reference_markdown` (a test keeps the two in step).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import textwrap
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from mcsan.config.run import RunConfig, config_from_dict, load_config
from mcsan.core.typed_yaml import config_differences, to_dict
from mcsan.core.validate import RANGES, choices


@dataclass(frozen=True)
class ConfigKey:
    """One key of the run config."""

    key: str
    type: str
    default: Any
    valid: str
    doc: str


@cache
def field_docs(cls: type) -> dict[str, str]:
    """{field: its doc} from the class source: attribute docstring, else comment above."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for i, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        after = body[i + 1] if i + 1 < len(body) else None
        if (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            text = after.value.value
        else:
            comment: list[str] = []
            row = node.lineno - 2
            while row >= 0 and lines[row].strip().startswith("#"):
                comment.insert(0, lines[row].strip().lstrip("#").strip())
                row -= 1
            text = " ".join(comment)
        docs[node.target.id] = " ".join(text.split())
    return docs


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (up to a full stop followed by a space)."""
    match = re.search(r"(?<![.e]\.g)(?<!i\.e)\.\s", text + " ")
    return text[: match.start() + 1] if match else text


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "choice"
    text = str(tp) if not isinstance(tp, type) else tp.__name__
    return text.replace("typing.", "").replace("NoneType", "None")


def _valid(section: str, name: str, cls: type) -> str:
    allowed = choices(cls).get(name)
    if allowed:
        return " | ".join(str(a) for a in allowed)
    valid = RANGES.get(section, {}).get(name)
    return str(valid) if valid is not None else ""


def reference(cfg: RunConfig | None = None) -> list[ConfigKey]:
    """Every key of the run config (``cfg``'s values, or the defaults), in section order."""
    cfg = cfg or RunConfig()
    keys: list[ConfigKey] = []
    hints = typing.get_type_hints(RunConfig)
    for top in dataclasses.fields(RunConfig):
        value = getattr(cfg, top.name)
        if not dataclasses.is_dataclass(value):
            doc = field_docs(RunConfig).get(top.name, "")
            keys.append(ConfigKey(top.name, _type_name(hints[top.name]), value, "", doc))
            continue
        cls = type(value)
        section_hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            keys.append(ConfigKey(
                f"{top.name}.{f.name}", _type_name(section_hints[f.name]),
                to_dict(getattr(value, f.name)), _valid(top.name, f.name, cls),
                first_sentence(docs.get(f.name, "")),
            ))
    return keys


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


def reference_text(config: str | None = None) -> str:
    """The reference as aligned plain text (``mcsan config --show``)."""
    cfg = load_config(config) if config else None
    rows = [(k.key, k.type, _show(k.default), k.valid, k.doc) for k in reference(cfg)]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    head = "value" if config else "default"
    out = [f"{'key':<{width[0]}}  {'type':<{width[1]}}  {head:<{width[2]}}  valid  doc"]
    for key, type_, default, valid, doc in rows:
        out.append(f"{key:<{width[0]}}  {type_:<{width[1]}}  {default:<{width[2]}}  "
                   f"{valid or '-'}  {doc}")
    return "\n".join(out)


def preset_changes(name: str) -> dict[str, Any]:
    """{key: value} that the shipped config ``name`` sets differently from the defaults
    (paths left out: they depend on the folder the config is read from)."""
    default = config_from_dict({}).to_dict()
    preset = load_config(name).to_dict()
    changed = config_differences(default, preset, ignore=("data.root", "data.parse_cache"))
    out = {}
    for key in changed:
        value: Any = preset
        for part in key.split("."):
            value = value[part]
        out[key] = value
    return out


def reference_markdown() -> str:
    """docs/CONFIG.md: every key with its default, then what each shipped config changes."""
    from mcsan.config.presets import builtin_names

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = [
        "# Config reference",
        "",
        "Generated from the dataclasses by `mcsan config --show --markdown` (a test checks it",
        "matches the code). Set a key in a YAML file (`--config FILE`) or on the command line",
        "(`--set model.embed_dim=512`); `mcsan config --show --config world` lists the values a",
        "shipped config gives.",
    ]
    section = None
    for key in reference():
        name = key.key.partition(".")[0] if "." in key.key else "run"
        if name != section:
            section = name
            out += ["", f"## `{name}`", "", "| key | type | default | valid | doc |",
                    "|---|---|---|---|---|"]
        out.append(f"| `{key.key}` | {cell(key.type)} | `{cell(_show(key.default))}` | "
                   f"{cell(key.valid)} | {cell(key.doc)} |")
    out += ["", "## What the shipped configs change", ""]
    for name in builtin_names():
        out += [f"### `{name}`", "", "| key | value |", "|---|---|"]
        out += [f"| `{k}` | `{cell(_show(v))}` |" for k, v in preset_changes(name).items()]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
