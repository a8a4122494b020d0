"""Shared by the deployment and admin CLI tests: a copy of the repository's sample home
that a test may edit, and edits that say on which line they landed."""

from __future__ import annotations

import shutil
from pathlib import Path

from ivr.home import Home
from ivr.menu import MenuTree
from ivr.menu.prompt_build import synthesized_path
from ivr.menu.prompts import LANGUAGES

REPO = Path(__file__).resolve().parents[2]
#: What an admin edits; the rest of the repository is not part of a home.
HOME_FOLDERS = ("config", "routing", "dialplans")


def copy_sample_home(target: Path) -> Home:
    """The repository's own config/, routing/ and dialplans/, copied to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for folder in HOME_FOLDERS:
        shutil.copytree(REPO / folder, target / folder)
    return Home(target.resolve())


def edit(home: Home, relative: str, old: str, new: str) -> int:
    """Replace the one occurrence of ``old`` in a file of the home; the 1-based line of it."""
    path = home.root / relative
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {relative}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def line_of(home: Home, relative: str, snippet: str) -> int:
    text = (home.root / relative).read_text(encoding="utf-8")
    assert text.count(snippet) == 1, f"{snippet!r} must occur once in {relative}"
    return text[: text.index(snippet)].count("\n") + 1


def fake_built_prompts(tree: MenuTree, home: Home) -> int:
    """Empty sound files where ``ivr prompts build`` would put them; how many."""
    count = 0
    for _, _, prompt in tree.all_prompts():
        for language in LANGUAGES:
            text = prompt.text(language)
            if prompt.recorded(language) is None and text is not None:
                path = synthesized_path(home, language, text)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                count += 1
    return count
