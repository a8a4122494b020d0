"""The FastAGI wire format: reply parsing, argument quoting, header lines, script names."""

from __future__ import annotations

import pytest

from ivr.agi.protocol import (
    AgiProtocolError,
    AgiResult,
    build_command,
    parse_header_line,
    parse_reply,
    quote_argument,
    script_name,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=0", AgiResult(200, "0")),
        ("200 result=49 endpos=12345", AgiResult(200, "49", None, {"endpos": "12345"})),
        ("200 result= (timeout)", AgiResult(200, "", "timeout")),
        ("200 result=12 (timeout)", AgiResult(200, "12", "timeout")),
        ("200 result=-1", AgiResult(200, "-1")),
        ("200 result=1 (hello world)", AgiResult(200, "1", "hello world")),
        ("200 result=1 (f(x) (y))", AgiResult(200, "1", "f(x) (y)")),
        (
            "200 result=35 (dtmf) endpos=800",
            AgiResult(200, "35", "dtmf", {"endpos": "800"}),
        ),
        ("200 result=1 ()", AgiResult(200, "1", "")),
        ("511 Command Not Permitted on a dead channel", None),
        ("510 Invalid or unknown command", None),
    ],
)
def test_parse_reply(line: str, expected: AgiResult | None) -> None:
    reply = parse_reply(line)
    if expected is None:
        assert reply.code == int(line[:3])
        assert reply.data == line[4:]
    else:
        assert reply == expected


@pytest.mark.parametrize("line", ["HANGUP", "", "20 result=1", "hello", "200 nothing"])
def test_parse_reply_rejects_garbage(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply(line)


def test_arguments_are_quoted_and_escaped() -> None:
    assert quote_argument("") == '""'
    assert quote_argument('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert build_command("STREAM FILE", ["/x/y", "12#"]) == 'STREAM FILE "/x/y" "12#"\n'


@pytest.mark.parametrize("bad", ["a\nEXEC System rm", "a\rb", "nul\x00"])
def test_line_breaks_in_arguments_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        build_command("SET VARIABLE", ["NAME", bad])
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        build_command(f"VERBOSE {bad}", [])


def test_header_lines() -> None:
    assert parse_header_line("agi_callerid: 10086") == ("agi_callerid", "10086")
    assert parse_header_line("agi_arg_1: ") == ("agi_arg_1", "")
    assert parse_header_line("agi_arg_2:") == ("agi_arg_2", "")
    assert parse_header_line("agi_calleridname: 张三: x") == ("agi_calleridname", "张三: x")
    for garbage in ["GET / HTTP/1.1", "Host: example", "agi callerid: 1"]:
        with pytest.raises(AgiProtocolError):
            parse_header_line(garbage)


@pytest.mark.parametrize(
    ("variables", "name"),
    [
        ({"agi_network_script": "ivr"}, "ivr"),
        ({"agi_network_script": "/ivr?line=12345"}, "ivr"),
        ({"agi_request": "agi://127.0.0.1:4573/ivr?x=1"}, "ivr"),
        ({"agi_request": "agi://127.0.0.1/"}, ""),
        ({}, ""),
    ],
)
def test_script_name(variables: dict[str, str], name: str) -> None:
    assert script_name(variables) == name
