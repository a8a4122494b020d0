"""Synthesizing text prompts into sound files, and checking that every prompt can play.

An edge module: it runs espeak-ng and sox and touches files. Each text prompt becomes
``<home>/var/prompts/<hash>.wav`` (8 kHz mono 16-bit, what Asterisk plays without
transcoding), named by the hash of voice, speed and text, so a file is rebuilt only when
what it says changes and a stale file can never be played for a new text.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ivr.home import Home
from ivr.menu.prompts import LANGUAGE_NAMES, LANGUAGES, VOICES, strip_wav, synthesized_name
from ivr.menu.tree import MenuTree, Source
from ivr.menu.verbs.base import PathKey
from ivr.yamlsource import Problem

SOUND_SUFFIX = ".wav"


@dataclass
class PromptBuildReport:
    built: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    failed: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{len(self.built)} built, {len(self.unchanged)} unchanged, {len(self.failed)} failed"
        ]
        lines.extend(str(problem) for problem in self.failed)
        return "\n".join(lines)


def _texts(tree: MenuTree) -> Iterator[tuple[Source, PathKey, str, str]]:
    """(where, path, language, text) of every text that is spoken (no recording given)."""
    for source, path, prompt in tree.all_prompts():
        for language in LANGUAGES:
            text = prompt.text(language)
            if prompt.recorded(language) is None and text is not None:
                yield source, path, language, text


def synthesized_path(home: Home, language: str, text: str) -> Path:
    return home.prompts_dir / (synthesized_name(VOICES[language], text) + SOUND_SUFFIX)


def build_prompts(tree: MenuTree, home: Home) -> PromptBuildReport:
    """Synthesize every text prompt not yet built; a failure is reported, not raised."""
    report = PromptBuildReport()
    home.prompts_dir.mkdir(parents=True, exist_ok=True)
    done: set[Path] = set()
    for source, path, language, text in _texts(tree):
        target = synthesized_path(home, language, text)
        if target in done:
            continue
        done.add(target)
        if target.exists():
            report.unchanged.append(target)
            continue
        error = _synthesize(language, text, target)
        if error is None:
            report.built.append(target)
        else:
            report.failed.append(source.problem(path, f"cannot synthesize {language}: {error}"))
    return report


def _synthesize(language: str, text: str, target: Path) -> str | None:
    voice = VOICES[language]
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        raw = Path(scratch) / "espeak.wav"
        converted = Path(scratch) / "out.wav"
        commands = [
            ["espeak-ng", "-v", voice.name, "-s", str(voice.speed), "-w", str(raw), "--", text],
            ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(converted)],
        ]
        for command in commands:
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"{command[0]}: {exc}"
            if done.returncode != 0:
                return f"{command[0]} failed: {done.stderr.strip() or done.returncode}"
        converted.replace(target)  # atomic: a call never plays a half-written file
    return None


def check_prompts(tree: MenuTree, home: Home) -> list[Problem]:
    """Every prompt must be playable in every language: its recorded file exists, or its
    text has been synthesized (run the prompt build)."""
    problems: list[Problem] = []
    for source, path, prompt in tree.all_prompts():
        for language in LANGUAGES:
            recorded = prompt.recorded(language)
            if recorded is not None:
                file = home.root / (strip_wav(recorded) + SOUND_SUFFIX)
                if not file.is_file():
                    problems.append(
                        source.problem(
                            (*path, "file", language),
                            f"recorded {LANGUAGE_NAMES[language]} prompt not found: "
                            f"{home.display(file)}",
                        )
                    )
                continue
            text = prompt.text(language)
            if text is not None and not synthesized_path(home, language, text).is_file():
                problems.append(
                    source.problem(
                        (*path, language),
                        f"{LANGUAGE_NAMES[language]} prompt not synthesized yet "
                        "(build the prompts)",
                    )
                )
    return sorted(set(problems))
