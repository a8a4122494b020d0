"""Checks of a whole menu tree.

``tree_problems`` needs only the tree (load_menus runs it); ``check_menus`` checks the
tree against what routing knows (lines, categories, units), given as plain values
because routing is configured elsewhere.

Loops: a caller who presses nothing must reach an end (often an elderly caller, who
should end with a person). So loops are checked along *silent* exits, the ones taken
without a key: goto, next of play/set/call, condition branches, and a menu's or collect's
failure after its tries. A strongly connected group of nodes that no silent exit leaves,
and in which nothing ends the call, is an endless loop. A menu without ``failure`` ends at
a person, so it always leaves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal

from ivr.menu.tree import MenuTree
from ivr.menu.verbs import MenuNode, ReturnNode, TransferNode
from ivr.menu.verbs.asking import AskingNode
from ivr.yamlsource import Problem

EMERGENCY_KEY = "0"


def tree_problems(tree: MenuTree) -> list[Problem]:
    problems: list[Problem] = []
    for node_id, node in tree.nodes.items():
        for path, message in node.problems():
            problems.append(tree.problem(node_id, path, message))
        for exit_ in node.exits():
            if exit_.target is not None and exit_.target not in tree.nodes:
                problems.append(tree.problem(node_id, exit_.path, f"unknown node {exit_.target!r}"))
        for path, ref in node.prompt_refs():
            if isinstance(ref, str):
                if ref not in tree.prompts:
                    problems.append(tree.problem(node_id, path, f"unknown prompt {ref!r}"))
            else:
                for sub, message in ref.problems():
                    problems.append(tree.problem(node_id, (*path, *sub), message))
        for use in node.names():
            known: Mapping[str, object] | None = {
                "calendar": tree.calendars,
                "caller_list": tree.caller_lists,
            }.get(use.kind)
            if known is not None and use.name not in known:
                what = use.kind.replace("_", " ")
                problems.append(tree.problem(node_id, use.path, f"unknown {what} {use.name!r}"))
    for name, prompt in tree.prompts.items():
        for sub, message in prompt.problems():
            problems.append(tree.source("prompts", name).problem(sub, f"prompts.{name}: {message}"))
    for entry in tree.entries:
        if entry not in tree.nodes:
            problems.append(
                tree.source("entries", entry).problem((), f"entries: unknown node {entry!r}")
            )
    problems.extend(_unreachable(tree))
    problems.extend(_endless_loops(tree))
    return sorted(set(problems))


def _targets(tree: MenuTree, node_id: str, *, silent_only: bool) -> Iterator[str]:
    for exit_ in tree.nodes[node_id].exits():
        target = exit_.target
        if target is not None and target in tree.nodes and (exit_.silent or not silent_only):
            yield target


def _reach(tree: MenuTree, starts: Iterable[str], *, silent_only: bool) -> set[str]:
    seen = {start for start in starts if start in tree.nodes}
    queue = deque(seen)
    while queue:
        for target in _targets(tree, queue.popleft(), silent_only=silent_only):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def _unreachable(tree: MenuTree) -> Iterator[Problem]:
    if not tree.nodes:
        return
    if not tree.entries:
        first = min(tree.nodes, key=tree.location)
        file, _ = tree.location(first)
        yield Problem(file, 1, "no entries: list the nodes where calls begin under 'entries:'")
        return
    reached = _reach(tree, tree.entries, silent_only=False)
    for node_id in tree.nodes:
        if node_id not in reached:
            yield tree.problem(node_id, (), "unreachable from any entry")


def _strongly_connected(tree: MenuTree) -> list[list[str]]:
    """Tarjan's algorithm over silent exits, iterative (trees may be large)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for root in tree.nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, _targets(tree, root, silent_only=True))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node_id, targets = work[-1]
            advanced = False
            for target in targets:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, _targets(tree, target, silent_only=True)))
                    advanced = True
                    break
                if target in on_stack:
                    low[node_id] = min(low[node_id], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node_id])
            if low[node_id] == index[node_id]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node_id:
                        break
                groups.append(group)
    return groups


def _endless_loops(tree: MenuTree) -> Iterator[Problem]:
    for group in _strongly_connected(tree):
        members = set(group)
        first = group[0]
        is_cycle = len(group) > 1 or first in _targets(tree, first, silent_only=True)
        if not is_cycle or any(_can_leave(tree, node_id, members) for node_id in group):
            continue
        start = min(group, key=tree.location)
        cycle = " -> ".join([*_cycle_from(tree, start, members), start])
        if any(isinstance(tree.nodes[node_id], AskingNode) for node_id in group):
            message = (
                f"a caller who presses nothing loops forever: {cycle}; "
                "let a failure path end (default: route to a person)"
            )
        else:
            message = f"endless loop: {cycle} (no menu, collect or condition can leave it)"
        yield tree.problem(start, (), message)


def _can_leave(tree: MenuTree, node_id: str, members: set[str]) -> bool:
    node = tree.nodes[node_id]
    if isinstance(node, ReturnNode):
        return True  # goes back to a caller's next, outside what this check can see
    return any(
        exit_.silent and (exit_.target is None or exit_.target not in members)
        for exit_ in node.exits()
    )


def _cycle_from(tree: MenuTree, start: str, members: set[str]) -> list[str]:
    """Shortest silent path from ``start`` back to itself inside one group."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node_id = queue.popleft()
        for target in _targets(tree, node_id, silent_only=True):
            if target not in members:
                continue
            if target == start:
                path = [node_id]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return list(reversed(path))
            if target not in previous:
                previous[target] = node_id
                queue.append(target)
    return [start]


def check_menus(
    tree: MenuTree,
    *,
    entries: Mapping[str, str],
    emergency_required: Iterable[str] = (),
    known_categories: Iterable[str] | None = None,
    known_units: Iterable[str] | None = None,
    line_locations: Mapping[str, tuple[str, int]] | None = None,
) -> list[Problem]:
    """Check the tree against routing: ``entries`` maps each line number to its entry
    node; lines in ``emergency_required`` must offer key 0 (transfer to 110) at their
    first menu; categories and units used in the tree must be known (None: not checked).
    ``line_locations`` gives the file:line where each line is configured, for messages
    about a line; without it they name the line (``line 12345``)."""
    problems: list[Problem] = []

    def at_line(line: str, message: str) -> Problem:
        file, number = (line_locations or {}).get(line, (f"line {line}", 1))
        return Problem(file, number, message)

    for line, entry in entries.items():
        if entry not in tree.nodes:
            problems.append(at_line(line, f"line {line}: unknown entry node {entry!r}"))
        elif entry not in tree.entries:
            problems.append(
                at_line(line, f"line {line}: node {entry!r} is not listed under 'entries:'")
            )
    for line in sorted(set(emergency_required)):
        line_entry = entries.get(line)
        if line_entry is None:
            problems.append(at_line(line, f"line {line}: no entry node"))
        elif line_entry in tree.nodes:
            problems.extend(_emergency_problems(tree, line, line_entry))
    known: dict[Literal["category", "unit"], set[str] | None] = {
        "category": None if known_categories is None else set(known_categories),
        "unit": None if known_units is None else set(known_units),
    }
    for node_id, node in tree.nodes.items():
        for use in node.names():
            if use.kind not in ("category", "unit"):
                continue
            names = known[use.kind]
            if names is not None and use.name not in names:
                listing = ", ".join(sorted(names)) or "none"
                problems.append(
                    tree.problem(
                        node_id, use.path, f"unknown {use.kind} {use.name!r} (known: {listing})"
                    )
                )
    return sorted(set(problems))


def first_menus(tree: MenuTree, entry: str) -> list[str]:
    """Menus a call reaches from ``entry`` before the caller presses anything."""
    found: list[str] = []
    seen = {entry}
    queue = deque([entry])
    while queue:
        node_id = queue.popleft()
        if isinstance(tree.nodes[node_id], MenuNode):
            found.append(node_id)
            continue
        for target in _targets(tree, node_id, silent_only=True):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return found


def leads_to_emergency(tree: MenuTree, node_id: str) -> bool:
    """Whether ``node_id`` reaches a transfer to 110 without further keys."""
    return any(
        isinstance(node, TransferNode) and node.is_emergency
        for node in (tree.nodes[n] for n in _reach(tree, [node_id], silent_only=True))
    )


def _emergency_problems(tree: MenuTree, line: str, entry: str) -> Iterator[Problem]:
    menus = first_menus(tree, entry)
    if not menus:
        yield tree.problem(
            entry,
            (),
            f"line {line} must offer key {EMERGENCY_KEY} for emergencies, "
            f"but entry {entry!r} reaches no menu",
        )
    for menu_id in menus:
        menu = tree.nodes[menu_id]
        assert isinstance(menu, MenuNode)
        emergency = menu.options.get(EMERGENCY_KEY)
        if (
            emergency is None
            or emergency not in tree.nodes
            or not leads_to_emergency(tree, emergency)
        ):
            yield tree.problem(
                menu_id,
                ("options",),
                f"first menu {menu_id!r} of line {line} must offer key {EMERGENCY_KEY} "
                "leading to an emergency transfer (110)",
            )
