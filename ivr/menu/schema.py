"""The JSON Schema of a dialplans file, for editors (yaml-language-server).

The lead writes it to schema/dialplan.schema.json; sample files point at it with
``# yaml-language-server: $schema=../schema/dialplan.schema.json``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ivr.menu.calendars import Calendar, CallerList
from ivr.menu.prompts import Prompt
from ivr.menu.verbs import AnyNode
from ivr.menu.verbs.base import NODE_ID_PATTERN, NodeId

_ID = {"pattern": NODE_ID_PATTERN}


class DialplanFile(BaseModel):
    """One file of dialplans/. All files together form one tree of uniquely named nodes."""

    model_config = ConfigDict(extra="forbid", title="12345 hotline dialplan")
    prompts: dict[str, Prompt] = Field(default_factory=dict, description="Named prompts")
    calendars: dict[str, Calendar] = Field(
        default_factory=dict, description="Named day lists (holidays, make-up workdays)"
    )
    caller_lists: dict[str, CallerList] = Field(
        default_factory=dict, description="Named lists of caller numbers or prefixes (0571*)"
    )
    entries: list[NodeId] = Field(
        default_factory=list, description="Nodes where calls may begin (lines point at them)"
    )
    nodes: dict[str, AnyNode] = Field(
        default_factory=dict, description="Nodes by id; each has a verb"
    )


def menu_json_schema() -> dict[str, Any]:
    schema = DialplanFile.model_json_schema(by_alias=True)
    for section in ("prompts", "calendars", "caller_lists", "nodes"):
        schema["properties"][section]["propertyNames"] = _ID
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "dialplan.schema.json",
        **schema,
    }
