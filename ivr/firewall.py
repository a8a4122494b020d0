"""Bans that really drop a source's packets: an nftables set on the PBX's SIP port.

Why nftables rather than a PJSIP ACL (asterisk/templates/acl.conf.j2):

- The kernel drops the packets, so a flood from a banned source costs Asterisk nothing;
  an ACL still has PJSIP parse every request and log a FailedACL event for it.
- Each ban is a set element with a timeout: the kernel lifts it by itself, even when the
  controller has died, and nothing has to remember to undo it.
- An ACL lives in pjsip.conf, which is rendered from the deployment by the stack, not by
  the controller; banning would mean rewriting it and reloading res_pjsip while calls run.

It needs CAP_NET_ADMIN (root) and the ``nft`` tool (scripts/install-system.sh). Without them
:meth:`NftFirewall.start` raises :class:`FirewallUnavailable` and the controller runs on,
logging the bans it could not make. Each PBX gets its own table, named after its SIP port,
so several hotlines on one machine (the test suite) never touch each other's bans.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil

import structlog

log = structlog.get_logger(__name__)


class FirewallUnavailable(RuntimeError):
    """The kernel rules cannot be made here (no nft, or not allowed)."""


class NftFirewall:
    def __init__(self, sip_port: int, nft: str = "nft") -> None:
        self.sip_port = sip_port
        self.table = f"ivr_guard_{sip_port}"
        self._nft = nft

    def ruleset(self) -> str:
        """The table: two sets of banned sources and one chain dropping their SIP packets,
        hooked before the default filter priority so another firewall's accept cannot
        bypass it. Every statement is idempotent ("add" keeps existing elements, the chain
        is flushed before its rules go in): a restarted controller keeps its bans."""
        table = f"inet {self.table}"
        drops = [
            f"add rule {table} input {proto} dport {self.sip_port} {family} saddr @{name} drop"
            for proto in ("udp", "tcp")
            for family, name in (("ip", "banned_ipv4"), ("ip6", "banned_ipv6"))
        ]
        return "\n".join(
            [
                f"add table {table}",
                f"add set {table} banned_ipv4 {{ type ipv4_addr; flags timeout; }}",
                f"add set {table} banned_ipv6 {{ type ipv6_addr; flags timeout; }}",
                f"add chain {table} input {{ type filter hook input priority filter - 10; }}",
                f"flush chain {table} input",
                *drops,
                "",
            ]
        )

    async def start(self) -> None:
        """Create the table (kept as it is when it exists, bans included)."""
        if shutil.which(self._nft) is None:
            raise FirewallUnavailable(f"{self._nft} not found (install nftables)")
        await self._run("-f", "-", script=self.ruleset())

    async def ban(self, address: str, seconds: int) -> None:
        ip = ipaddress.ip_address(address)  # never format anything else into a command
        family = "banned_ipv4" if ip.version == 4 else "banned_ipv6"
        await self._run(
            "add", "element", "inet", self.table, family, f"{{ {ip} timeout {int(seconds)}s }}"
        )

    async def banned(self) -> list[str]:
        """Addresses banned right now (expired ones are gone from the kernel's sets)."""
        found: list[str] = []
        for family in ("banned_ipv4", "banned_ipv6"):
            text = await self._run("list", "set", "inet", self.table, family)
            if "elements = {" in text:
                body = text.split("elements = {", 1)[1].split("}", 1)[0]
                found += [item.split()[0] for item in body.split(",") if item.strip()]
        return found

    async def close(self) -> None:
        """Remove the table: the PBX is going away with the controller."""
        await self._run("delete", "table", "inet", self.table, check=False)

    async def _run(self, *args: str, script: str | None = None, check: bool = True) -> str:
        process = await asyncio.create_subprocess_exec(
            self._nft,
            *args,
            stdin=asyncio.subprocess.PIPE if script is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(script.encode() if script is not None else None)
        if process.returncode != 0:
            if check:
                raise FirewallUnavailable(
                    f"nft {' '.join(args)} failed: {err.decode(errors='replace').strip()}"
                )
            return ""
        return out.decode(errors="replace")
