"""Loading dialplans/*.yaml into one immutable MenuTree, with every problem reported as
``file:line: message``.

Two stages: the schema of each file (every node validated on its own against its
verb's model, so one bad node does not hide the others), then the checks of the whole
tree (unknown nodes, prompts and calendars, unreachable nodes, endless loops). The second
stage runs only on a schema-clean tree, where its findings are meaningful.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, RootModel

from ivr.home import Home
from ivr.menu.calendars import CALLER_PATTERN, Calendar, CallerList
from ivr.menu.checks import tree_problems
from ivr.menu.prompts import SOUND_PATH_PATTERN, Prompt
from ivr.menu.tree import MenuTree, Section, Source
from ivr.menu.verbs import VERBS, Node
from ivr.menu.verbs.base import NODE_ID_PATTERN, PHONE_KEY_PATTERN, NodeId, PathKey
from ivr.menu.verbs.condition import TIME_RANGE_PATTERN
from ivr.menu.verbs.transfer import TRANSFER_TARGET_PATTERN
from ivr.yamlsource import (
    ConfigError,
    Problem,
    YamlDocument,
    iter_yaml_files,
    load_yaml,
    validate_model,
)

SECTIONS: tuple[Section, ...] = ("prompts", "calendars", "caller_lists", "entries", "nodes")
NAME_PATTERN = NODE_ID_PATTERN
_FRIENDLY_PATTERNS = {
    PHONE_KEY_PATTERN: "not a phone key (0-9, * or #)",
    NODE_ID_PATTERN: "not a valid id (a letter, then letters, digits, _ . -)",
    TIME_RANGE_PATTERN: 'not a time range like "08:30-17:30"',
    SOUND_PATH_PATTERN: "not a sound path like sounds/welcome_zh (relative, no dots or spaces)",
    CALLER_PATTERN: "not a number or a prefix ending with * (0571*)",
    TRANSFER_TARGET_PATTERN: "not a transfer target (110, or a name of letters, digits, _ . -)",
}
M = TypeVar("M", bound=BaseModel)


class _Entries(RootModel[list[NodeId]]):
    model_config = ConfigDict(frozen=True)


def load_menus(home: Home) -> MenuTree:
    """Load every dialplans/*.yaml of the home as one tree; ConfigError lists all problems."""
    files = list(iter_yaml_files(home.dialplans_dir))
    if not files:
        raise ConfigError(
            [Problem(home.display(home.dialplans_dir), 1, "no dialplan files (*.yaml) found")]
        )
    return load_menu_files(files, display=home.display)


def load_menu_files(paths: Sequence[Path], *, display: Callable[[Path], str] = str) -> MenuTree:
    """Load the given files as one tree (tests and tools; ``load_menus`` for a home)."""
    problems: list[Problem] = []
    docs: list[YamlDocument] = []
    for path in paths:
        try:
            docs.append(load_yaml(path, display(path)))
        except ConfigError as exc:
            problems.extend(exc.problems)
        except ValueError as exc:
            # yamlsource lets PyYAML's constructor errors through (a date such as
            # 2025-13-01 raises ValueError without a line); still no traceback for admins.
            problems.append(Problem(display(path), 1, f"YAML value: {exc}"))
    tree = build_tree(docs, problems)
    if not problems:
        problems.extend(tree_problems(tree))
    if problems:
        raise ConfigError(problems)
    return tree


def build_tree(docs: Iterable[YamlDocument], problems: list[Problem]) -> MenuTree:
    """Merge documents into a tree; schema problems go to ``problems``."""
    nodes: dict[str, Node] = {}
    prompts: dict[str, Prompt] = {}
    calendars: dict[str, Calendar] = {}
    caller_lists: dict[str, CallerList] = {}
    entries: list[str] = []
    sources: dict[tuple[Section, str], Source] = {}

    def claim(section: Section, name: str, doc: YamlDocument, base: PathKey) -> bool:
        earlier = sources.get((section, name))
        if earlier is not None:
            what = "entry" if section == "entries" else section.rstrip("s").replace("_", " ")
            problems.append(
                doc.problem(
                    base, f"{what} {name!r} is already defined at {earlier.file}:{earlier.line}"
                )
            )
            return False
        sources[(section, name)] = Source(doc, base)
        return True

    for doc in docs:
        data = doc.data
        if data is None:
            continue
        if not isinstance(data, dict):
            problems.append(doc.problem((), "a dialplan file must be a mapping of sections"))
            continue
        for key in data:
            if key not in SECTIONS:
                problems.append(
                    doc.problem((key,), f"unknown section {key!r} (one of: {', '.join(SECTIONS)})")
                )
        for name, _ in _named_items(doc, "prompts", problems):
            prompt = _validate(Prompt, doc, ("prompts", name), problems)
            if prompt is not None and claim("prompts", name, doc, ("prompts", name)):
                prompts[name] = prompt
        for name, _ in _named_items(doc, "calendars", problems):
            calendar = _validate(Calendar, doc, ("calendars", name), problems)
            if calendar is not None and claim("calendars", name, doc, ("calendars", name)):
                calendars[name] = calendar
        for name, _ in _named_items(doc, "caller_lists", problems):
            callers = _validate(CallerList, doc, ("caller_lists", name), problems)
            if callers is not None and claim("caller_lists", name, doc, ("caller_lists", name)):
                caller_lists[name] = callers
        if "entries" in data:
            listed = _validate(_Entries, doc, ("entries",), problems)
            for index, entry in enumerate(listed.root if listed is not None else []):
                if claim("entries", entry, doc, ("entries", index)):
                    entries.append(entry)
        for node_id, value in _named_items(doc, "nodes", problems):
            node = _validate_node(doc, node_id, value, problems)
            if node is not None and claim("nodes", node_id, doc, ("nodes", node_id)):
                nodes[node_id] = node
    return MenuTree(
        nodes=nodes,
        prompts=prompts,
        calendars=calendars,
        caller_lists=caller_lists,
        entries=tuple(entries),
        sources=sources,
    )


def _named_items(doc: YamlDocument, section: str, problems: list[Problem]) -> list[tuple[str, Any]]:
    value = doc.data.get(section)
    if value is None:
        return []
    if not isinstance(value, dict):
        problems.append(doc.problem((section,), f"{section}: must be a mapping of names"))
        return []
    items = []
    for name, item in value.items():
        if not re.fullmatch(NAME_PATTERN, name):
            message = f"{section}.{name}: {_FRIENDLY_PATTERNS[NODE_ID_PATTERN]}"
            problems.append(doc.problem((section, name), message))
            continue
        items.append((name, item))
    return items


def _validate_node(
    doc: YamlDocument, node_id: str, value: Any, problems: list[Problem]
) -> Node | None:
    base: PathKey = ("nodes", node_id)
    verbs = ", ".join(sorted(VERBS))
    if not isinstance(value, dict):
        problems.append(doc.problem(base, f"nodes.{node_id}: must be a mapping with a verb"))
        return None
    verb = value.get("verb")
    if verb is None:
        problems.append(doc.problem(base, f"nodes.{node_id}: missing 'verb' (one of: {verbs})"))
        return None
    model = VERBS.get(verb) if isinstance(verb, str) else None
    if model is None:
        problems.append(
            doc.problem(
                (*base, "verb"), f"nodes.{node_id}.verb: unknown verb {verb!r} (one of: {verbs})"
            )
        )
        return None
    node = _validate(model, doc, base, problems)
    return node  # type: ignore[return-value]  # VERBS maps each verb to a Node class


def _validate(
    model: type[M], doc: YamlDocument, base: PathKey, problems: list[Problem]
) -> M | None:
    """Validate one part of a document; problems are named by their full dotted path."""
    try:
        return validate_model(model, doc, base=base)
    except ConfigError as exc:
        dotted = ".".join(str(part) for part in base)
        for problem in exc.problems:
            message = problem.message.replace(".[key]:", ":").replace("Value error, ", "")
            for pattern, friendly in _FRIENDLY_PATTERNS.items():
                message = message.replace(f"String should match pattern '{pattern}'", friendly)
            if message.startswith("(top level): "):
                message = f"{dotted}: {message.removeprefix('(top level): ')}"
            else:
                message = f"{dotted}.{message}"
            problems.append(Problem(problem.file, problem.line, message))
        return None


__all__ = ["build_tree", "load_menu_files", "load_menus"]
