"""The commented YAML template that ``rs-change init`` writes, generated from the config models:
every section and key with its description as a comment and its default as the value.
"""

from __future__ import annotations

import datetime as _dt
import textwrap
from typing import Any, Optional

import yaml
from pydantic import BaseModel


def render(root: Any, scene_model: Any, scene_examples: list[Any]) -> str:
    """The commented YAML that ``rs-change init`` writes, generated from the models: every
    section and key with its description as a comment and its default as the value; keys without
    a default are commented out (with the field's example), and the scenes are
    ``scene_examples`` (the sample NAIP tiles: valid as written; replace their ``date`` and
    ``path`` with yours).

    Parameters
    ----------
    root : type
        The run's model (``RunConfig``): one section per field.
    scene_model : type
        The model of one ``scenes:`` item (``SceneConfig``).
    scene_examples : list of dict
        The scenes written, the first with every key described.
    """
    out = [
        "# rs-change run configuration: every key with its default, generated from rs_change.config.",
        "# Commented keys (#) are optional; paths are relative to this file. Replace the scenes with yours,",
        "# then `rs-change validate THIS.yaml` checks it and `rs-change run THIS.yaml` runs it.",
    ]
    for name, f in root.model_fields.items():
        if f.exclude:
            continue
        model = _sub_model(f.annotation)
        out += ["", *_comment(f.description or (model.__doc__ or "").strip().splitlines()[0], "")]
        if name == "scenes":  # the first example with every key described, the others as given
            out.append("scenes:")
            for i, example in enumerate(scene_examples):
                out += _fields(scene_model, "    ", example, item=True, brief=i > 0)
        elif f.default is None:  # an optional section (aoi): commented out
            out += [f"# {name}:", *_fields(model, "#   ")]
        else:
            out += [f"{name}:", *_fields(model, "  ")]
    return "\n".join(out) + "\n"


def _sub_model(annotation: Any) -> Any:
    """The pydantic model in an annotation such as ``Optional[AoiConfig]`` or ``list[SceneConfig]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _sub_model(arg)
        if found is not None:
            return found
    return None


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 100 - len(indent))]


def _yaml_value(v: Any) -> str:
    if isinstance(v, _dt.date):
        return v.isoformat()  # unquoted: YAML reads it back as a date
    if isinstance(v, tuple):
        v = list(v)
    return yaml.safe_dump(v, default_flow_style=True, sort_keys=False, width=1_000_000).removesuffix("...\n").strip()


def _fields(
    model: Any, indent: str, values: Optional[dict[str, Any]] = None, *, item: bool = False, brief: bool = False
) -> list[str]:
    """``model``'s keys at ``indent``, each after its description: ``key: value`` from ``values``,
    else ``key: default``; a key without default is commented out (with the field's first
    example), an optional sub-model (``qa``) is its keys commented out.  ``item``: the first key
    starts a list item (``- ``); ``brief``: only the keys in ``values``, without descriptions.
    """
    values = values or {}
    lines: list[str] = []
    first = item
    for name, f in model.model_fields.items():
        if brief and name not in values:
            continue
        if not brief:
            lines += _comment(f.description or "", indent)
        examples = f.examples or []
        if name in values:
            line = f"{indent}{name}: {_yaml_value(values[name])}"
        elif f.default is None or f.is_required():  # optional, or required inside an optional section (stac.url)
            sub = _sub_model(f.annotation)
            if sub is not None:
                lines += [f"{indent}# {name}:", *_fields(sub, indent + "#   ")]
                continue
            line = f"{indent}# {name}:" + (f" {_yaml_value(examples[0])}" if examples else "")
        else:
            line = f"{indent}{name}: {_yaml_value(f.get_default(call_default_factory=True))}"
        if first and not line[len(indent) :].startswith("#"):
            line, first = indent[:-2] + "- " + line[len(indent) :], False
        lines.append(line)
    return lines
