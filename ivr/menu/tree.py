"""The loaded menu tree: every node of every dialplans file, immutable.

Hot reload loads a new tree and swaps the reference; a call keeps the tree it started
with. The tree knows where each node, prompt, calendar and entry was written, so every
later check can name ``file:line``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeVar

from ivr.menu.calendars import Calendar, CallerList
from ivr.menu.prompts import Prompt
from ivr.menu.verbs import Node
from ivr.menu.verbs.base import PathKey
from ivr.yamlsource import Problem, YamlDocument

K = TypeVar("K")
V = TypeVar("V")
Section = Literal["nodes", "prompts", "calendars", "caller_lists", "entries"]


@dataclass(frozen=True)
class Source:
    """Where one named thing was written: a document and its key path in it."""

    doc: YamlDocument = field(repr=False)
    base: PathKey

    @property
    def file(self) -> str:
        return self.doc.file

    @property
    def line(self) -> int:
        return self.doc.line_of(self.base)

    def problem(self, path: PathKey, message: str) -> Problem:
        return self.doc.problem((*self.base, *path), message)


def _frozen(mapping: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class MenuTree:
    nodes: Mapping[str, Node]
    prompts: Mapping[str, Prompt]
    calendars: Mapping[str, Calendar]
    caller_lists: Mapping[str, CallerList]
    #: Nodes where a call may begin (the ``entries:`` lists of all files).
    entries: tuple[str, ...]
    sources: Mapping[tuple[Section, str], Source] = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("nodes", "prompts", "calendars", "caller_lists", "sources"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def source(self, section: Section, name: str) -> Source:
        return self.sources[(section, name)]

    def location(self, node_id: str) -> tuple[str, int]:
        """``(file, line)`` of a node."""
        source = self.source("nodes", node_id)
        return source.file, source.line

    def problem(self, node_id: str, path: PathKey, message: str) -> Problem:
        """A problem at ``path`` inside a node, named like schema problems are."""
        dotted = ".".join(str(part) for part in ("nodes", node_id, *path))
        return self.source("nodes", node_id).problem(path, f"{dotted}: {message}")

    def all_prompts(self) -> Iterator[tuple[Source, PathKey, Prompt]]:
        """Every prompt (library and inline) with where it was written."""
        for name, prompt in self.prompts.items():
            yield self.source("prompts", name), (), prompt
        for node_id, node in self.nodes.items():
            for path, ref in node.prompt_refs():
                if isinstance(ref, Prompt):
                    yield self.source("nodes", node_id), path, ref
