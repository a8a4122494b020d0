"""YAML files as admins write them: loaded with the line of every value, so that every
problem found later (schema, graph, references) can be reported as ``file:line: message``.

One loader serves config/, dialplans/ and routing/; nothing else in the package parses YAML.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one place of one file."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(Exception):
    """Raised with every problem found, so an admin sees them all at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class YamlDocument:
    """The plain data of one YAML file plus where each value stands in it."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int:
        """Line of the value at ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        return Problem(self.file, self.line_of(path), message)


# libyaml's parser, where PyYAML was built with it, parses about three times faster: it
# decides whether a large tree reloads within a second.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate keys: PyYAML would silently keep the last one,
    and an admin's second ``"1":`` option would vanish without a word."""


def _walk(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _Loader.construct_object(_LOADER_SINGLETON, key_node, deep=True)
            if isinstance(key, list | dict):
                raise ConfigError(
                    [Problem(file, key_node.start_mark.line + 1, "a key must be a scalar")]
                )
            if key in result:
                raise ConfigError(
                    [Problem(file, key_node.start_mark.line + 1, f"duplicate key {key!r}")]
                )
            key = str(key) if not isinstance(key, str) else key
            result[key] = _walk(value_node, (*path, key), lines, file)
            lines.setdefault((*path, key), key_node.start_mark.line + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    try:
        return _Loader.construct_object(_LOADER_SINGLETON, node, deep=True)
    except (ValueError, yaml.constructor.ConstructorError) as exc:
        # PyYAML raises a bare ValueError for values such as the date 2025-13-01.
        raise ConfigError(
            [Problem(file, node.start_mark.line + 1, f"bad value {node.value!r}: {exc}")]
        ) from exc


_LOADER_SINGLETON = _Loader("")


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse YAML text; a syntax error becomes a Problem at its line."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError([Problem(file, line, f"YAML syntax: {exc.problem or exc}")]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, 1, f"YAML syntax: {exc}")]) from exc
    lines: dict[PathKey, int] = {}
    data = None if node is None else _walk(node, (), lines, file)
    lines.setdefault((), 1)
    return YamlDocument(file=file, data=data, lines=lines)


def load_yaml(path: Path, display_name: str | None = None) -> YamlDocument:
    """Load one YAML file; ``display_name`` is how the file is named in problems."""
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([Problem(name, 1, "file not found")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(name, 1, f"not UTF-8 text: {exc.reason}")]) from exc
    return parse_yaml(text, name)


M = TypeVar("M", bound=BaseModel)


def _format_error(error: Any) -> str:
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{loc}: {message}"


def validate_model(model: type[M], doc: YamlDocument, *, base: PathKey = ()) -> M:
    """Validate ``doc.data`` (or the part of it at ``base``) against a pydantic model;
    every schema error becomes a Problem at the line of the offending value."""
    data: Any = doc.data
    for part in base:
        data = data[part]
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = _trim_union_tags(tuple(error["loc"]), doc, base)
            problems.append(
                Problem(doc.file, doc.line_of((*base, *loc)), _format_error({**error, "loc": loc}))
            )
        raise ConfigError(problems) from exc


def _trim_union_tags(loc: PathKey, doc: YamlDocument, base: PathKey) -> PathKey:
    """pydantic puts union member names into ``loc`` (``nodes.main.MenuNode.options``);
    drop the parts that are not real keys so the location names what the admin wrote."""
    kept: list[str | int] = []
    for part in loc:
        candidate = (*base, *kept, part)
        if candidate in doc.lines or isinstance(part, int):
            kept.append(part)
        elif not any(key[: len(candidate)] == candidate for key in doc.lines):
            # Not a key of the file: a union tag or a missing field. Keep missing fields
            # (they name what is missing) but not tags, which are CamelCase class names.
            if isinstance(part, str) and not part[:1].isupper():
                kept.append(part)
        else:
            kept.append(part)
    return tuple(kept)


def iter_yaml_files(directory: Path) -> Iterator[Path]:
    """YAML files of one directory in a stable order."""
    if directory.is_dir():
        yield from sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"})
