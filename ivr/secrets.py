"""Secrets of one deployment: never committed, never a working default.

Each secret comes from the environment (``IVR_SECRET_<NAME>``) or, failing that, from the
home's git-ignored var/secrets.yaml, where a long random one is generated on first use.
"""

from __future__ import annotations

import os
import re
import secrets as _random
from pathlib import Path

import yaml

from ivr.home import Home

AMI_USER = "hotline"
AMI_SECRET = "ami"


def agent_secret_name(agent_id: str) -> str:
    return f"agent-{agent_id}"


def env_name(name: str) -> str:
    return "IVR_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class SecretStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._values: dict[str, str] | None = None

    @classmethod
    def for_home(cls, home: Home) -> SecretStore:
        return cls(home.secrets_file)

    def _load(self) -> dict[str, str]:
        if self._values is None:
            loaded = yaml.safe_load(self._path.read_text()) if self._path.exists() else None
            self._values = {str(k): str(v) for k, v in (loaded or {}).items()}
        return self._values

    def get(self, name: str) -> str:
        from_env = os.environ.get(env_name(name))
        if from_env:
            return from_env
        values = self._load()
        if name not in values:
            # 24 random bytes: far beyond what a SIP password cracker can walk.
            values[name] = _random.token_urlsafe(24)
            self._save(values)
        return values[name]

    def _save(self, values: dict[str, str]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(dict(sorted(values.items())), handle)
        tmp.replace(self._path)
