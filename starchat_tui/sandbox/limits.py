"""How much a snippet may use: memory, CPU, files, processes, output, /tmp and disk."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import UsageError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Ceilings for one run. Every value is enforced whatever the backend; see ``rlimits()``.

    ``memory`` caps each process's address space (RLIMIT_AS) and the whole run's resident memory (the
    supervisor's watchdog). ``processes`` is a budget *on top of* the processes and threads the sandbox
    user already has, because RLIMIT_NPROC counts them all. ``cpu_seconds`` defaults to the timeout
    plus 5 s, a backstop for the wall-clock timeout.
    """

    memory: int = 2048 * MiB
    cpu_seconds: float | None = None
    file_size: int = 256 * MiB
    open_files: int = 256
    processes: int = 128
    output: int = 1 * MiB
    tmp_size: int = 128 * MiB
    disk: int = 512 * MiB

    # config.toml [sandbox] key -> (field, multiplier)
    CONFIG_KEYS = {
        "memory_mb": ("memory", MiB),
        "cpu_seconds": ("cpu_seconds", 1),
        "file_size_mb": ("file_size", MiB),
        "open_files": ("open_files", 1),
        "processes": ("processes", 1),
        "output_kb": ("output", 1024),
        "tmp_mb": ("tmp_size", MiB),
        "disk_mb": ("disk", MiB),
    }

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
                raise UsageError(f"sandbox limit {item.name} must be a positive number, not {value!r}")

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> Limits:
        """Limits from config.toml's ``[sandbox]`` table (``memory_mb = 1024``, ``output_kb = 512``, ...)."""
        values: dict[str, Any] = {}
        for key, (name, scale) in cls.CONFIG_KEYS.items():
            if key in section:
                raw = section[key]
                if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                    raise UsageError(f"config.toml [sandbox] {key} must be a number, not {raw!r}")
                values[name] = raw * scale if scale == 1 else int(raw * scale)
        return replace(cls(), **values)

    def rlimits(self, timeout: float) -> list[tuple[int, int]]:
        """(RLIMIT_*, value) pairs for setrlimit; RLIMIT_NPROC is added by the supervisor (it needs a count)."""
        import resource

        cpu = self.cpu_seconds if self.cpu_seconds is not None else timeout + 5
        return [
            (resource.RLIMIT_AS, int(self.memory)),
            (resource.RLIMIT_CPU, max(1, math.ceil(cpu))),
            (resource.RLIMIT_FSIZE, int(self.file_size)),
            (resource.RLIMIT_NOFILE, int(self.open_files)),
            (resource.RLIMIT_CORE, 0),
        ]
