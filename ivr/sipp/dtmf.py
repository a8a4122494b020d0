"""RFC 4733 key presses as pcap files for SIPp's ``play_pcap_audio``.

The captures shipped with sip-tester all carry one RTP timestamp, and a receiver takes an
event with the timestamp of the previous one for a retransmission: pressing the same key
twice would be heard once. Each press here gets its own timestamp and sequence numbers.
"""

from __future__ import annotations

import struct
from pathlib import Path

EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
PAYLOAD_TYPE = 101  # telephone-event/8000 as offered in the citizen's SDP
PACKET_MS = 20
SAMPLES_PER_PACKET = 8000 * PACKET_MS // 1000
VOLUME = 10
END_REPEATS = 3  # the end packet is sent three times, as RFC 4733 recommends


def _frame(rtp: bytes) -> bytes:
    """Ethernet + IPv4 + UDP around one RTP packet (SIPp rewrites addresses and ports)."""
    udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
    ip_header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        bytes([127, 0, 0, 1]),
        bytes([127, 0, 0, 1]),
    )
    ethernet = b"\x00" * 12 + b"\x08\x00"
    return ethernet + ip_header + udp


def dtmf_pcap(
    key: str, *, ssrc: int, first_sequence: int, timestamp: int, duration_ms: int = 160
) -> tuple[bytes, int]:
    """One key press as pcap bytes, and the next free sequence number."""
    event = EVENT_CODES[key]
    packets: list[bytes] = []
    steps = max(1, duration_ms // PACKET_MS)
    sequence = first_sequence
    for step in range(steps + END_REPEATS):
        end = step >= steps
        duration = SAMPLES_PER_PACKET * min(step + 1, steps)
        marker = 0x80 if step == 0 else 0
        header = struct.pack(
            "!BBHII", 0x80, marker | PAYLOAD_TYPE, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
        )
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | VOLUME, duration)
        packets.append(_frame(header + payload))
        if not end or step == steps + END_REPEATS - 1:
            sequence += 1
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for index, packet in enumerate(packets):
        at_us = min(index, steps) * PACKET_MS * 1000
        out.append(
            struct.pack("<IIII", at_us // 1_000_000, at_us % 1_000_000, len(packet), len(packet))
        )
        out.append(packet)
    return b"".join(out), sequence


def write_key_presses(directory: Path, name: str, keys: str, ssrc: int) -> list[Path]:
    """A pcap per key of ``keys`` with timestamps a second apart, as a phone would send."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    sequence = 1000
    for index, key in enumerate(keys):
        data, sequence = dtmf_pcap(
            key, ssrc=ssrc, first_sequence=sequence, timestamp=8000 * (index + 1)
        )
        path = directory / f"{name}-{index}.pcap"
        path.write_bytes(data)
        paths.append(path)
    return paths
