"""Synthetic dialplans of any size, to time loading and validation (bench/)."""

from __future__ import annotations

import yaml


def generate_dialplan(node_count: int, *, fan_out: int = 8) -> str:
    """YAML text of one valid, emergency-ready dialplan with about ``node_count`` nodes:
    a tree of menus (``fan_out`` options each, key 0 = 110) whose leaves set a category
    and route. Load it with ``load_menu_files`` to time the whole validation."""
    if node_count < 3:
        raise ValueError("node_count must be at least 3")
    fan_out = max(1, min(fan_out, 9))
    nodes: dict[str, dict[str, object]] = {
        "emergency": {"verb": "transfer", "target": "110", "prompt": "emergency"},
    }
    pending = ["n0"]
    created = 1
    leaves: list[str] = []
    while pending:
        node_id = pending.pop(0)
        if created + fan_out + 1 <= node_count - len(pending):
            options: dict[str, str] = {"0": "emergency"}
            for key in range(1, fan_out + 1):
                child = f"n{created}"
                created += 1
                options[str(key)] = child
                pending.append(child)
            nodes[node_id] = {"verb": "menu", "prompt": "choose", "options": options}
        else:
            leaves.append(node_id)
    for node_id in leaves:
        route_id = f"{node_id}_route"
        nodes[node_id] = {"verb": "set", "variables": {"category": "help"}, "next": route_id}
        nodes[route_id] = {"verb": "route", "priority": 0}
    document = {
        "prompts": {
            "choose": {"zh": "请选择", "en": "Please choose"},
            "emergency": {"zh": "正在转接110", "en": "Connecting you to 110"},
        },
        "entries": ["n0"],
        "nodes": nodes,
    }
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
