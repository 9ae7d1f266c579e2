"""EDGE: reading a config file and its YAML: size limits, a loader that refuses duplicate keys,
impossible dates and alias bombs, and one-line messages for YAML and validation errors.

:mod:`rs_change.config` builds its models on these; nothing here knows the models' keys.
"""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

#: Largest config file read (a config is a few kB; ``rs-change validate /dev/zero`` must not read forever).
MAX_CONFIG_BYTES = 1 << 20


def read_config_text(path: Path) -> str:
    """The text of a config file, or a one-line :class:`ConfigError` naming the file and the fix."""
    try:
        return read_small_file(path, MAX_CONFIG_BYTES, "config").decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found; check the path (or write one with `rs-change init`)"
        ) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the config ({exc.__class__.__name__}); give a readable YAML file"
        ) from None


def parse_yaml(text: str, source: str) -> Any:
    """The plain YAML value of ``text``, or a one-line :class:`ConfigError` naming ``source`` and the place."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader: plain YAML only)
    except _YamlValueError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}{where}: {exc.problem}") from None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}{where}: {exc.problem}; rs-change reads plain YAML only (no tags)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}{where}: YAML syntax error: {problem}; fix the YAML there") from None


def read_small_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or a :class:`ConfigError`.

    Opened without blocking and checked after opening (no race with a swapped path): a FIFO, a
    device such as /dev/zero or a socket is refused in one line instead of hanging or reading
    without end.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(str(path))
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file (a FIFO, device or socket); give a {what} file")
        if st.st_size > limit:
            raise ConfigError(
                f"{path}: {st.st_size:,} bytes, too large for a {what} file (at most {limit:,}); give the {what} file"
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ConfigError(f"{path}: too large for a {what} file (at most {limit:,} bytes); give the {what} file")
    return data


class _YamlValueError(yaml.MarkedYAMLError):
    """A YAML value rs-change refuses (duplicate key, impossible date); ``problem`` says the fix."""


class _Loader(yaml.SafeLoader):
    """PyYAML's SafeLoader (no tags), refusing duplicate keys (PyYAML keeps the last one silently)
    and impossible dates (PyYAML raises a bare ValueError for 2020-02-30).
    """

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first
                except TypeError:
                    continue  # unhashable: reported by PyYAML itself
                if seen:
                    raise _YamlValueError(
                        None,
                        None,
                        f"duplicate key `{key}` (first given at line {first[key]}); give each key once",
                        key_node.start_mark,
                    )
                first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: Any) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise _YamlValueError(
                None, None, f"`{node.value}` is not a date ({exc}); give a real date as YYYY-MM-DD", node.start_mark
            ) from None

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expanded_size(node)
        return node


#: Most values a config may hold once its YAML aliases (``*name``) are expanded: a few hundred in a
#: real config; a "billion laughs" file of nested aliases would expand to billions.
MAX_YAML_VALUES = 100_000


def _check_expanded_size(root: Any) -> None:
    """Refuse a YAML document whose aliases expand to more than :data:`MAX_YAML_VALUES` values
    (counted on the node graph, each shared node once per use, without expanding anything).
    """
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        done = sizes.get(id(node))
        if done is not None:
            return done
        sizes[id(node)] = MAX_YAML_VALUES + 1  # a recursive alias counts as too large
        if isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            n = 1
        sizes[id(node)] = n = min(n, MAX_YAML_VALUES + 1)
        return n

    if root is not None and size(root) > MAX_YAML_VALUES:
        raise _YamlValueError(
            None,
            None,
            f"its aliases (*name) expand to more than {MAX_YAML_VALUES:,} values; "
            "write the values out instead of nesting aliases",
            root.start_mark,
        )


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _construct_map(loader: _Loader, node: Any) -> Any:
    """SafeLoader's mapping constructor, on :class:`_Loader` (so its ``construct_mapping`` runs)."""
    return loader.construct_yaml_map(node)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)



def _valid_keys(root: Any, loc: tuple[Any, ...]) -> list[str]:
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        ann = field.annotation
        for cand in getattr(ann, "__args__", ()) + (ann,):
            inner = getattr(cand, "__args__", None)
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                model = cand
                break
            if inner:
                sub = [c for c in inner if isinstance(c, type) and issubclass(c, BaseModel)]
                if sub:
                    model = sub[0]
                    break
    return [k for k in getattr(model, "model_fields", {}) if k != "base_dir"]


def validation_message(exc: ValidationError, root: Any) -> str:
    """One line for the first problem of a pydantic error: the key, what is wrong, the fix.

    ``root`` is the model validated (its keys are the suggestions for a misspelt key).

    An unknown key is reported before a missing one: a misspelt key (``pth:``) makes both, and
    "unknown key `pth`; did you mean `path`?" is the useful line.
    """
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function"))))
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        valid = _valid_keys(root, loc)
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"valid keys: {', '.join(valid)}"
        return f"unknown key `{key}`; {hint}"
    if err["type"] == "missing":
        return f"missing key `{key}`; add it"
    msg = err["msg"].removeprefix("Value error, ")
    if key.endswith("__root__") or err["type"] == "value_error":
        where = ".".join(str(p) for p in loc)
        return f"{where + ': ' if where else ''}{msg}"
    got = repr(err.get("input"))
    return f"`{key}`: {msg} (got {got if len(got) <= 80 else got[:77] + '...'})"
