"""Runs a menu tree for one call over a Channel and says how it ended."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ivr.channel import CallerHungUp, Channel
from ivr.menu.outcome import Goodbye, Outcome
from ivr.menu.runtime import CallStart, CallState, MenuResult
from ivr.menu.tree import MenuTree
from ivr.menu.verbs.base import Call, Finish, Next, Return

#: Nodes one call may enter before the interpreter gives up and routes to a person: a
#: guard against loops the checks cannot see (a return without call, a caller pressing
#: the same wrong way round forever). Real paths are a dozen nodes long.
MAX_STEPS = 200

OnNode = Callable[[str], Awaitable[None] | None]


async def run_menu(
    tree: MenuTree,
    channel: Channel,
    call: CallStart,
    *,
    on_node: OnNode | None = None,
    max_steps: int = MAX_STEPS,
) -> MenuResult:
    """Walk the tree from ``call.entry``. Never raises for a caller hang-up (the result
    is ``Goodbye("caller_hung_up")`` with the path so far); ``on_node`` (plain or async)
    is called with each node id as it is entered."""
    state = CallState(
        tree=tree,
        channel=channel,
        call=call,
        language=call.language,
        variables=dict(call.preset),
    )
    try:
        outcome = await _walk(state, on_node, max_steps)
    except CallerHungUp:
        outcome = Goodbye("caller_hung_up")
    return state.result(outcome)


async def _walk(state: CallState, on_node: OnNode | None, max_steps: int) -> Outcome:
    node_id = state.call.entry
    for _ in range(max_steps):
        node = state.tree.nodes.get(node_id)
        if node is None:  # checks forbid it; a person is still the right place to end
            return state.route_to_person()
        state.path.append(node_id)
        if on_node is not None:
            notified = on_node(node_id)
            if inspect.isawaitable(notified):
                await notified
        step = await node.run(state)
        if isinstance(step, Finish):
            return step.outcome
        if isinstance(step, Next):
            node_id = step.target
        elif isinstance(step, Call):
            state.return_stack.append(step.return_to)
            node_id = step.target
        elif isinstance(step, Return):
            if not state.return_stack:
                return state.route_to_person()
            node_id = state.return_stack.pop()
    return state.route_to_person()
