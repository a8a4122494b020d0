#!/usr/bin/python3
"""Bench only: the 12345 consultation path as a classic AGI script (pyst2), one process
per call, started by Asterisk inside its root. Arguments: welcome, main choices, district
choice, to-person prompt paths, queue, queue timeout. Issues the same AGI commands the
controller's menu does for this path."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from asterisk.agi import AGI  # type: ignore[import-not-found]


def main() -> None:
    agi = AGI()
    welcome, choices, district, to_person, queue, queue_timeout = sys.argv[1:7]
    agi.set_variable("CHANNEL(language)", "zh")
    key = ""
    for _ in range(3):
        pressed = agi.stream_file(welcome, "0123456789*#")
        key = pressed or agi.get_data(choices, 5000, 1)
        if key:
            break
    if key == "1":
        agi.set_variable("category", "consultation")
        for _ in range(2):
            area = agi.get_data(district, 5000, 1)
            if area == "1":
                agi.set_variable("location", "d-east")
                break
    agi.stream_file(to_person)
    agi.appexec("Queue", f"{queue},rt,,,{queue_timeout}")


if __name__ == "__main__":
    main()
