"""Issue 8, part 5: toll fraud and scanning, on the real stack with Debian's sipvicious.

Scanners run from other loopback addresses (127.0.0.2, 127.0.0.11, ...) than the test
phones (127.0.0.1), so a ban never hits the phones; each scan gets its own address so that
one scan's ban does not hide what another would find. Each test names the protection it
guards: remove that protection and the test fails.
"""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hotline_stack import HotlineStack

from ivr.firewall import NftFirewall
from ivr.home import ENGINE_ROOT
from ivr.sipp.peers import CitizenCall

BOUND = Path(__file__).with_name("sipvicious_bound.py")
AGENT_IDS = {f"{n}" for n in range(1001, 1017)}
#: What a cracker tries first: the account itself, keypad walks, the usual words.
COMMON_PASSWORDS = (
    "{user}", "1234", "12345", "123456", "password", "admin", "0000", "1111", "{user}{user}",
    "pass{user}", "hotline", "12345678", "asterisk", "secret", "qwerty", "000000", "test",
    "changeme", "sip{user}", "abc123",
)


@pytest.fixture(scope="module", autouse=True)
def scanners_installed() -> None:
    """sipvicious and nftables come with scripts/install-system.sh; installed if missing."""
    if not (shutil.which("svwar") and shutil.which("nft")):
        subprocess.run(["bash", str(ENGINE_ROOT / "scripts" / "install-system.sh")], check=True)
    assert shutil.which("svwar") and shutil.which("svcrack") and shutil.which("nft")


async def sipvicious(tool: str, source: str, *args: str, timeout: float = 60.0) -> str:
    """Run a sipvicious tool from ``source``; its whole output."""
    process = await asyncio.create_subprocess_exec(
        "/usr/bin/python3", str(BOUND), tool, source, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out.decode(errors="replace")


def table_rows(output: str) -> dict[str, str]:
    """The result table of svwar (extension -> reqauth/noauth/weird) or svcrack
    (extension -> password)."""
    rows = re.findall(r"^\|\s*(\S+)\s*\|\s*(.+?)\s*\|$", output, re.MULTILINE)
    return {key: value for key, value in rows if key not in ("Extension", "SIP")}


def sip_options(source: str, port: int, timeout: float = 1.0) -> str | None:
    """One OPTIONS from ``source``; the status line of the reply, None when nothing came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        branch = uuid.uuid4().hex
        sock.sendto(
            (
                f"OPTIONS sip:12345@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {source}:{local};branch=z9hG4bK{branch};rport\r\n"
                f"From: <sip:probe@{source}>;tag={branch[:8]}\r\n"
                f"To: <sip:12345@127.0.0.1>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
        try:
            return sock.recv(65536).decode(errors="replace").splitlines()[0]
        except TimeoutError:
            return None


def final_response(call: CitizenCall) -> int | None:
    """The final status code the PBX gave the INVITE, from SIPp's message trace."""
    text = call.message_file.read_text(errors="replace") if call.message_file.exists() else ""
    codes = [int(code) for code in re.findall(r"^SIP/2.0 (\d{3})", text, re.MULTILINE)]
    return next((code for code in codes if code >= 200), None)


async def test_svmap_and_svwar_find_no_agent_extension_to_use(hotline: HotlineStack) -> None:
    """Guards: agents' endpoints demand digest auth (pjsip.conf.j2 auth=), and the PBX does
    not tell its make and version. svwar by REGISTER, INVITE and OPTIONS over 1000-1100 and
    2000-2100 finds agents only as "needs authentication", nothing it can use."""
    port = str(hotline.settings.pbx.sip_port)
    mapped = await sipvicious("svmap", "127.0.0.10", "-p", port, "127.0.0.1")
    assert f"127.0.0.1:{port}" in mapped and "hotline-12345" in mapped, mapped
    assert "asterisk" not in mapped.lower(), mapped

    ranges = "1000-1100,2000-2100"
    scans = await asyncio.gather(
        *(
            sipvicious("svwar", f"127.0.0.{11 + n}", "--force", "-m", method, "-p", port,
                       "-e", ranges, "127.0.0.1")
            for n, method in enumerate(("REGISTER", "INVITE", "OPTIONS"))
        )
    )
    for method, output in zip(("REGISTER", "INVITE", "OPTIONS"), scans, strict=True):
        found = table_rows(output)
        usable = {ext: status for ext, status in found.items() if status != "reqauth"}
        assert usable == {}, f"{method} scan found usable extensions:\n{output}"
        assert set(found) <= AGENT_IDS, output
    # The scan did reach the PBX: agents are seen, and seen to need a password.
    assert set(table_rows(scans[1])) == AGENT_IDS, scans[1]


async def test_svcrack_cracks_no_generated_secret(
    hotline_factory, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """Guards: agents' secrets are generated, long and random (ivr/secrets.py). A weak one
    set by hand for agent 1016 is cracked at once, showing the cracker works here; the
    generated one of 1001 survives the usual guesses (each source tries fewer than
    security.max_failures, so the ban is not what stops it)."""
    monkeypatch.setenv("IVR_SECRET_AGENT_1016", "123456")
    stack: HotlineStack = await hotline_factory()
    port = str(stack.settings.pbx.sip_port)
    work = stack.home.var_dir / "crack"
    work.mkdir(parents=True)

    def wordlist(user: str, words: tuple[str, ...], name: str) -> str:
        path = work / name
        path.write_text("".join(word.format(user=user) + "\n" for word in words))
        return str(path)

    chunks = [COMMON_PASSWORDS[i : i + 4] for i in range(0, len(COMMON_PASSWORDS), 4)]
    weak, *strong = await asyncio.gather(
        sipvicious("svcrack", "127.0.0.20", "-u", "1016", "-p", port,
                   "-d", wordlist("1016", ("{user}", "1234", "123456"), "weak.txt"), "127.0.0.1"),
        *(
            sipvicious("svcrack", f"127.0.0.{21 + n}", "-u", "1001", "-p", port,
                       "-d", wordlist("1001", chunk, f"strong{n}.txt"), "127.0.0.1")
            for n, chunk in enumerate(chunks)
        ),
    )
    assert table_rows(weak) == {"1016": "123456"}, weak
    for output in strong:
        assert table_rows(output) == {}, output
        assert "found nothing" in output, output


async def test_a_password_cracker_is_banned_and_nobody_else(hotline: HotlineStack) -> None:
    """Guards: the controller's security guard (ivr/guard.py, ivr/firewall.py) bans a source
    with security.max_failures failed authentications: its SIP packets are dropped, while
    other sources and a citizen's call from 127.0.0.1 go on working."""
    port = hotline.settings.pbx.sip_port
    assert sip_options("127.0.0.2", port) is not None  # answered before the attack
    words = hotline.home.var_dir / "words.txt"
    words.write_text("".join(w.format(user="1001") + "\n" for w in COMMON_PASSWORDS))

    cracked = await sipvicious(
        "svcrack", "127.0.0.2", "-u", "1001", "-p", str(port), "-d", str(words), "127.0.0.1"
    )

    assert table_rows(cracked) == {}, cracked
    deadline = time.monotonic() + 10
    while sip_options("127.0.0.2", port, timeout=0.5) is not None:
        assert time.monotonic() < deadline, "127.0.0.2 still answered after the attack"
    assert await NftFirewall(port).banned() == ["127.0.0.2"]
    assert sip_options("127.0.0.3", port) is not None
    ticket = await hotline.call("12345", "13900000801", keys="11", first_key_delay_ms=800)
    assert ticket["outcome"] == "answered" and ticket["agent"], ticket
    assert "source banned" in hotline.controller_log()


async def test_unauthenticated_calls_reach_the_hotline_numbers_only(
    hotline: HotlineStack,
) -> None:
    """Guards: from-citizens holds the hotline numbers and nothing else (no 110, no pattern),
    and the 110 trunk is never identified by the From user (identify_by = ip,header). No
    INVITE from the unauthenticated side reaches an agent or the 110 centre."""
    targets = (
        "1001", "110", "008613800000000", "9011861380000000", "013800000000", "00110", "s",
        "Local%2F1001%40from-agents", "12345*1001", "_X.", "i", "h",
    )
    calls = [
        hotline.citizen(target, "13900000901", talk_seconds=2, wait_timeout_seconds=5)
        for target in targets
    ]
    await asyncio.gather(*(call.run() for call in calls))
    refused = {target: final_response(call) for target, call in zip(targets, calls, strict=True)}
    assert {target: code for target, code in refused.items() if not code or code < 400} == {}
    for phone in hotline.phones.phones:
        assert phone.received_invites() == [], f"{phone.user} got an INVITE"

    # A peer calling itself the 110 trunk, asking for a "hand-over" of 110's own matter
    # (which would be sent straight back out to 110): it is only a citizen in the menus.
    forged = hotline.citizen(
        "12345", "trunk-110", extra_headers=("X-Handover-Category: fire",),
        talk_seconds=2, wait_timeout_seconds=4,
    )
    await forged.run()
    assert final_response(forged) == 200  # the hotline answers, as for any citizen
    centre = hotline.phones.phones[-1]
    assert centre.user == "110" and centre.received_invites() == []


def ami_exchange(source: str, host: str, port: int, secret: str) -> str:
    """Connect from ``source``, log in, return what AMI answered."""
    with socket.create_connection((host, port), timeout=5, source_address=(source, 0)) as sock:
        reply = b""
        sock.sendall(f"Action: Login\r\nUsername: hotline\r\nSecret: {secret}\r\n\r\n".encode())
        while b"Message:" not in reply or not reply.endswith(b"\r\n\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply.decode(errors="replace")


async def test_ami_is_loopback_only_behind_an_acl_and_a_generated_secret(
    hotline: HotlineStack,
) -> None:
    """Guards: manager.conf.j2's bindaddr (loopback), its deny/permit ACL (127.0.0.1 only)
    and the generated secret; and that every secret of a fresh home is long and random."""
    port = hotline.settings.pbx.ami_port
    secrets = yaml.safe_load(hotline.home.secrets_file.read_text())

    with pytest.raises(ConnectionRefusedError):  # nothing listens on other addresses
        socket.create_connection(("127.0.0.2", port), timeout=5).close()
    assert "Success" in ami_exchange("127.0.0.1", "127.0.0.1", port, secrets["ami"])
    assert "Authentication failed" in ami_exchange("127.0.0.1", "127.0.0.1", port, "hotline")
    # The right secret from a source the ACL does not permit.
    assert "Authentication failed" in ami_exchange("127.0.0.2", "127.0.0.1", port, secrets["ami"])

    assert hotline.home.secrets_file.stat().st_mode & 0o077 == 0
    assert {"ami", *(f"agent-{agent}" for agent in AGENT_IDS)} <= set(secrets)
    assert len(set(secrets.values())) == len(secrets)
    for name, value in secrets.items():
        counts = Counter(value)
        entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
        assert len(value) >= 32, name
        assert entropy * len(value) >= 120, f"{name}: {entropy * len(value):.0f} bits"
