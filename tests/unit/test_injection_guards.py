"""Issue 8.4 without a PBX: the rendered dialplan runs no shell and feeds no caller text to
MixMonitor, caller ID reaches the controller intact through base64, and the tickets CLI
shows hostile caller text escaped (rich markup and terminal controls alike)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import UTC, datetime

from test_tickets_cli import _run

from ivr.deployment import load_deployment
from ivr.features.hotline import caller_id_argument
from ivr.home import ENGINE_ROOT, Home
from ivr.pbx.plan import build_plan
from ivr.pbx.render import render_files
from ivr.secrets import SecretStore
from ivr.settings import database_url
from ivr.tickets import TicketStore

#: Dialplan functions and applications that run a shell, or evaluate text as dialplan.
SHELL_RUNNERS = re.compile(r"\b(System|TrySystem|SHELL|EVAL|Exec|TryExec)\(", re.IGNORECASE)
#: Variables whose value comes from the caller.
CALLER_TEXT = re.compile(r"\$\{(CALLERID|CONNECTEDLINE|EXTEN|PJSIP_HEADER|SIP_HEADER|IVR_)")
HOSTILE = "13900000911\r\nEXEC System id \x1b]0;owned\x07 \u009b31m [bold]x[/bold] \x7f"


def rendered_dialplan() -> str:
    home = Home(ENGINE_ROOT)
    deployment = load_deployment(home, check_prompt_files=False)

    class NoSecrets(SecretStore):
        def get(self, name: str) -> str:
            return "x" * 32

    plan = build_plan(deployment.settings, deployment.routing, NoSecrets(home.secrets_file), "/h")
    return render_files(plan)["extensions.conf"]


def test_the_dialplan_runs_no_shell_and_records_with_fixed_options() -> None:
    dialplan = rendered_dialplan()
    assert not SHELL_RUNNERS.findall(dialplan)
    for line in dialplan.splitlines():
        if "MixMonitor(" in line:
            assert not CALLER_TEXT.search(line), line


def test_citizens_reach_only_the_hotline_numbers() -> None:
    """Dialled digits are filtered by exact extensions: no pattern in the citizens' context
    matches letters, '*' or an arbitrary long string."""
    dialplan = rendered_dialplan()
    citizens = dialplan.split("[from-citizens]", 1)[1].split("\n[", 1)[0]
    extensions = re.findall(r"^exten => ([^,]+),", citizens, re.MULTILINE)
    assert extensions
    for extension in extensions:
        assert re.fullmatch(r"\d{3,15}", extension), extension


def test_the_controller_records_with_its_own_file_name_and_options() -> None:
    source = (ENGINE_ROOT / "ivr" / "features" / "hotline.py").read_text()
    [call] = re.findall(r'exec\(\s*"MixMonitor",([^)]*)\)', source)
    assert "caller" not in call.lower() and "session" not in call


def test_caller_id_arrives_intact_in_base64() -> None:
    assert caller_id_argument(base64.b64encode(HOSTILE.encode()).decode()) == HOSTILE
    assert caller_id_argument(base64.b64encode(b"\xff\xfe(ok").decode()) == "\ufffd\ufffd(ok"
    assert caller_id_argument("") is None
    assert caller_id_argument("not base64!") is None


def _seed_hostile(home: Home) -> str:
    async def main() -> str:
        async with TicketStore(database_url(home)) as store:
            return await store.open_call(
                "L1",
                line="12345",
                caller=HOSTILE,
                caller_name=HOSTILE,
                created_at=datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
            )

    return asyncio.run(main())


def _terminal_controls(output: str) -> set[str]:
    return {c for c in output if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F}


def test_cli_shows_hostile_caller_text_escaped(tmp_path: object) -> None:
    home = Home(tmp_path)  # type: ignore[arg-type]
    ticket = _seed_hostile(home)
    for args in (["list"], ["show", ticket]):
        code, out, _ = _run(home, *args)
        assert code == 0
        assert not _terminal_controls(out), args
    code, out, _ = _run(home, "show", ticket)
    assert "\\r\\nEXEC System id \\x1b]0;owned\\x07 \\x9b31m [bold]x[/bold] \\x7f" in out
    code, out, _ = _run(home, "show", ticket, "--json")
    assert not _terminal_controls(out)
    assert json.loads(out)["caller_name"] == HOSTILE  # scripts still get it intact
