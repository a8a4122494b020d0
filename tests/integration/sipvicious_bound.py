"""Run one of Debian's sipvicious tools from a chosen source address:
``python3 sipvicious_bound.py svwar 127.0.0.11 <svwar arguments...>``.

svwar and svcrack 0.3.3 accept ``-b BINDINGIP`` but never pass it on to their scanner class
(svmap does), so they always send from the default route's address. The security tests scan
from other loopback addresses (127.0.0.2, ...) so that bans never hit 127.0.0.1, where the
test phones live; this hands the address to the class itself. Run with the system python3,
which has sipvicious's dependencies.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

sys.path.insert(0, "/usr/share/sipvicious")

SCANNER_CLASSES = {"svwar": "TakeASip", "svcrack": "ASipOfRedWine", "svmap": "DrinkOrSip"}


def main() -> int:
    tool, source = sys.argv[1], sys.argv[2]
    module = importlib.import_module(f"sipvicious.{tool}")
    scanner = getattr(module, SCANNER_CLASSES[tool])
    original = scanner.__init__

    def bound_init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["bindingip"] = source
        original(self, *args, **kwargs)

    scanner.__init__ = bound_init
    sys.argv = [tool, *sys.argv[3:]]
    result = module.main()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
