"""``record``: take a voice message (after hours, say) under recordings/YYYY/MM/DD/."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.channel import CallerHungUp
from ivr.menu.outcome import VoiceMessage
from ivr.menu.prompts import PromptRef, Prompts, as_list, iter_refs
from ivr.menu.verbs.base import ENDS, Exit, Finish, Next, NodeBase, NodeId, PathKey, Step

if TYPE_CHECKING:
    from ivr.menu.runtime import CallState


class RecordNode(NodeBase):
    verb: Literal["record"]
    prompt: Prompts = Field(description='Instructions ("speak after the tone, press # to end")')
    max_seconds: int = Field(default=120, ge=5, le=600)
    silence_seconds: int = Field(default=5, ge=1, le=30, description="Silence that ends it")
    min_seconds: float = Field(default=1.0, ge=0, description="Shorter counts as no message")
    beep: bool = True
    thanks: Prompts | None = Field(default=None, description="Said after a message was taken")
    empty: NodeId | None = Field(
        default=None, description="Where to go when nothing was said; default: route to a person"
    )

    def exits(self) -> Iterator[Exit]:
        yield ENDS
        yield Exit(("empty",), self.empty, silent=True)

    def prompt_refs(self) -> Iterator[tuple[PathKey, PromptRef]]:
        yield from iter_refs(("prompt",), self.prompt)
        yield from iter_refs(("thanks",), self.thanks)

    async def run(self, state: CallState) -> Step:
        await state.play(as_list(self.prompt))
        path = state.recording_path()
        result = await state.channel.record(
            path,
            max_seconds=self.max_seconds,
            silence_seconds=self.silence_seconds,
            beep=self.beep,
        )
        if result.seconds < self.min_seconds:
            if result.ended_by == "hangup":
                raise CallerHungUp()
            return Next(self.empty) if self.empty else Finish(state.route_to_person())
        # the message is taken: a hang-up during the thanks must not lose it
        with contextlib.suppress(CallerHungUp):
            await state.play(as_list(self.thanks))
        return Finish(VoiceMessage(recording=path, seconds=result.seconds))
