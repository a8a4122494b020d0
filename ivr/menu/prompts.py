"""Prompts: what the caller hears, per language, as recorded files or text to synthesize.

A prompt reference in a node is either the name of a prompt in a ``prompts:`` library
section or an inline prompt ``{zh: "...", en: "..."}``. Each language needs a recorded file
or a text; a recorded file, where given, wins. Resolution gives a sound path relative to
the home directory without extension, as the AGI session and Asterisk want it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from ivr.home import Home

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
DEFAULT_LANGUAGE: Language = "zh"
LANGUAGE_NAMES: dict[str, str] = {"zh": "Mandarin (zh)", "en": "English (en)"}


class Voice(BaseModel):
    """An espeak-ng voice and a speed (words per minute) slower than its default of 175,
    because many callers are elderly."""

    model_config = ConfigDict(frozen=True)
    name: str
    speed: int


VOICES: dict[str, Voice] = {"zh": Voice(name="cmn", speed=130), "en": Voice(name="en", speed=140)}

#: Where synthesized prompts live, relative to the home (derived, so it cannot drift).
PROMPTS_SUBDIR = PurePosixPath(Home(Path("/")).prompts_dir.relative_to(Path("/")).as_posix())

#: Relative, no "..", no spaces or dots (Asterisk's Playback splits on them); ".wav" optional.
SOUND_PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_/-]*(\.wav)?$"
SoundPath = Annotated[
    str,
    Field(
        pattern=SOUND_PATH_PATTERN,
        description="Recorded file relative to the home, e.g. sounds/welcome_zh (.wav optional)",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class RecordedFiles(_Strict):
    zh: SoundPath | None = None
    en: SoundPath | None = None


class Prompt(_Strict):
    """One prompt in both languages: a text to speak and/or a recorded file per language."""

    zh: str | None = Field(default=None, description="Mandarin text, spoken with espeak-ng cmn")
    en: str | None = Field(default=None, description="English text, spoken with espeak-ng en")
    file: RecordedFiles | None = Field(
        default=None, description="Recorded files per language; a file wins over the text"
    )

    def recorded(self, language: str) -> str | None:
        return None if self.file is None else getattr(self.file, language, None)

    def text(self, language: str) -> str | None:
        value = getattr(self, language, None)
        return value if isinstance(value, str) and value.strip() else None

    def problems(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        for language in LANGUAGES:
            if self.recorded(language) is None and self.text(language) is None:
                yield (), f"prompt has no {LANGUAGE_NAMES[language]} text or recorded file"


def _ref_kind(value: Any) -> str:
    return "Name" if isinstance(value, str) else "Inline"


def _prompts_kind(value: Any) -> str:
    return "Many" if isinstance(value, list) else "One"


#: The name of a library prompt, or an inline prompt.
PromptRef = Annotated[
    Annotated[str, Tag("Name")] | Annotated[Prompt, Tag("Inline")], Discriminator(_ref_kind)
]
#: One prompt reference or a list of them, played in order.
Prompts = Annotated[
    Annotated[PromptRef, Tag("One")] | Annotated[list[PromptRef], Tag("Many")],
    Discriminator(_prompts_kind),
]


def as_list(prompts: Prompts | None) -> list[PromptRef]:
    if prompts is None:
        return []
    return list(prompts) if isinstance(prompts, list) else [prompts]


def iter_refs(
    path: tuple[str | int, ...], prompts: Prompts | None
) -> Iterator[tuple[tuple[str | int, ...], PromptRef]]:
    """Each prompt reference with its path inside the node (for file:line messages)."""
    if isinstance(prompts, list):
        for index, ref in enumerate(prompts):
            yield (*path, index), ref
    elif prompts is not None:
        yield path, prompts


def synthesized_name(voice: Voice, text: str) -> str:
    """Content hash of what is said and how: a changed text or voice is a new file."""
    digest = hashlib.sha256(f"{voice.name}\n{voice.speed}\n{text}".encode()).hexdigest()
    return digest[:24]


def strip_wav(path: str) -> str:
    return path[: -len(".wav")] if path.endswith(".wav") else path


def resolve_prompt(prompt: Prompt, language: str) -> str:
    """Sound path (relative to the home, no extension) of a prompt in a language; falls
    back to Mandarin, which validation makes sure every prompt has."""
    for lang in (language, DEFAULT_LANGUAGE):
        recorded = prompt.recorded(lang)
        if recorded is not None:
            return strip_wav(recorded)
        text = prompt.text(lang)
        if text is not None:
            return str(PROMPTS_SUBDIR / synthesized_name(VOICES[lang], text))
    raise ValueError("prompt has neither text nor recorded file")


def resolve_all(
    library: Mapping[str, Prompt], refs: Sequence[PromptRef], language: str
) -> list[str]:
    """Resolve references; library names are looked up in ``library``."""
    paths = []
    for ref in refs:
        prompt = library[ref] if isinstance(ref, str) else ref
        paths.append(resolve_prompt(prompt, language))
    return paths
