"""Admins and supervisors on the real stack: a menu edit reaches the next call with no
restart, and an agent logged out over AMI is routed around."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hotline_stack import HotlineStack


async def test_a_menu_edit_serves_the_next_call_without_restart(hotline: HotlineStack) -> None:
    menu = hotline.home.root / "dialplans" / "12345.yaml"
    text = menu.read_text()
    # The admin adds key 5 to the first menu: praise, straight away.
    menu.write_text(text.replace('      "9": main_language\n',
                                 '      "9": main_language\n      "5": praise\n', 1))
    checked = hotline.cli("validate", "--no-prompt-files")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    simulated = hotline.cli("simulate", "12345", "--caller", "13900000401", "--keys", "52",
                    "--at", "2026-11-25T10:00:00", "--json")
    assert simulated.returncode == 0, simulated.stderr
    planned: list[str] = json.loads(simulated.stdout)["path"]
    await asyncio.sleep(1.5)  # the controller's watcher applies it within a second

    ticket = await hotline.call("12345", "13900000401", keys="52")

    assert "praise" in ticket["ivr_path"]
    assert ticket["ivr_path"] == planned
    assert ticket["category"] == "praise"

    # A broken edit is refused and the running menus keep serving.
    menu.write_text(text.replace("verb: menu", "verb: menuu", 1))
    await asyncio.sleep(1.5)
    assert "configuration change rejected" in hotline.controller_log()
    after = await hotline.call("12345", "13900000402", keys="11")
    assert after["ivr_path"][:3] == ["hotline_12345", "main_menu", "consultation"]


async def test_a_logged_out_agent_is_routed_around(hotline: HotlineStack) -> None:
    out = hotline.cli("agents", "logout", "1009")
    assert out.returncode == 0, out.stderr
    listed: list[dict[str, Any]] = json.loads(hotline.cli("agents", "list", "--json").stdout)
    assert {row["agent"]: row["state"] for row in listed}["1009"] == "logged out"
    await asyncio.sleep(0.5)

    # East district, but its only agent is out: the city takes the call.
    ticket = await hotline.call("12345", "13900000403", keys="11")
    assert ticket["agent"] in {"1001", "1002"} and ticket["unit"] == "city"

    assert hotline.cli("agents", "login", "1009").returncode == 0
    await asyncio.sleep(0.5)
    back = await hotline.call("12345", "13900000404", keys="11")
    assert back["agent"] == "1009"
