"""Where a deployment's files are: the home directory holding config/, dialplans/ and
routing/ (chosen with ``--home`` or ``IVR_HOME``), plus the run-time folders below it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The engine's own source tree (Asterisk templates, scripts); not the deployment's home.
ENGINE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Home:
        chosen = home if home is not None else os.environ.get("IVR_HOME") or os.getcwd()
        return cls(Path(chosen).resolve())

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def dialplans_dir(self) -> Path:
        return self.root / "dialplans"

    @property
    def routing_dir(self) -> Path:
        return self.root / "routing"

    @property
    def recordings_dir(self) -> Path:
        return self.root / "recordings"

    @property
    def var_dir(self) -> Path:
        """Run-time state (rendered PBX files, database, caches, secrets); git-ignored."""
        return self.root / "var"

    @property
    def prompts_dir(self) -> Path:
        """Synthesized prompts, named by the hash of what they say."""
        return self.var_dir / "prompts"

    @property
    def secrets_file(self) -> Path:
        return self.var_dir / "secrets.yaml"

    def display(self, path: Path) -> str:
        """A path as shown in messages: relative to the home when it lies inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)
