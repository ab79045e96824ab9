"""What a sandboxed run hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT_EXIT_CODE = 124  # what timeout(1) uses; `starchat-tui run` exits with it too


@dataclass
class Result:
    """The outcome of one run.

    ``stdout`` and ``stderr`` are the raw text (undecodable bytes replaced); pass them through
    ``starchat_tui.chat.inert.make_inert`` before showing them in a terminal. ``exit_code`` follows the
    shell: the snippet's status, 128 + N when signal N killed it, 124 when it timed out. ``stopped``
    says in words why the sandbox ended the run early (timeout, output cap, memory, disk, cancel), or is
    None. ``images`` are the PNG/JPEG/GIF files the run created or changed at the top of ``workdir``:
    ``plt.show()`` and figures left open are saved there as ``plot-N.png``. ``note`` explains a failure
    that comes from the machine rather than the snippet (a stand-in interpreter without the user's packages).
    """

    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool = False
    truncated: bool = False
    duration: float = 0.0
    backend: str = "none"
    images: list[Path] = field(default_factory=list)
    workdir: Path | None = None
    stopped: str | None = None
    language: str = "python"
    note: str | None = None  # one line on why the run could not be what the user expected, and the fix

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.stopped is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "truncated": self.truncated,
            "duration": round(self.duration, 4),
            "backend": self.backend,
            "images": [str(path) for path in self.images],
            "workdir": str(self.workdir) if self.workdir else None,
            "stopped": self.stopped,
            "language": self.language,
            "note": self.note,
        }
