"""The YAML IVR menu engine: dialplans/*.yaml -> an immutable MenuTree, checked as a whole,
run per call over a Channel, ending in one Outcome (route, transfer, voice message,
goodbye).

Public API:
    load_menus(home) -> MenuTree                       (ConfigError with all problems)
    check_menus(tree, *, entries, emergency_required, known_categories, known_units,
                line_locations=None) -> list[Problem]
    menu_json_schema() -> dict
    run_menu(tree, channel, call: CallStart, *, on_node=None) -> MenuResult
    simulate(tree, *, line, caller, keys, at, entry, preset, ...) -> MenuResult
    build_prompts(tree, home) -> PromptBuildReport;  check_prompts(tree, home)
"""

from ivr.menu.checks import EMERGENCY_KEY, check_menus, first_menus
from ivr.menu.generate import generate_dialplan
from ivr.menu.interpreter import MAX_STEPS, run_menu
from ivr.menu.load import load_menu_files, load_menus
from ivr.menu.outcome import Goodbye, Outcome, RouteTo, TransferTo, VoiceMessage
from ivr.menu.prompt_build import PromptBuildReport, build_prompts, check_prompts
from ivr.menu.runtime import CallStart, MenuResult
from ivr.menu.schema import menu_json_schema
from ivr.menu.simulator import ScriptedChannel, simulate
from ivr.menu.tree import MenuTree

__all__ = [
    "EMERGENCY_KEY",
    "MAX_STEPS",
    "CallStart",
    "Goodbye",
    "MenuResult",
    "MenuTree",
    "Outcome",
    "PromptBuildReport",
    "RouteTo",
    "ScriptedChannel",
    "TransferTo",
    "VoiceMessage",
    "build_prompts",
    "check_menus",
    "check_prompts",
    "first_menus",
    "generate_dialplan",
    "load_menu_files",
    "load_menus",
    "menu_json_schema",
    "run_menu",
    "simulate",
]
