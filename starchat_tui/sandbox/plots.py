"""Plots from snippets: the matplotlib hook that goes in with each run, and the images that come out.

Every example in the StarChat write-up asks for a chart, so a run that draws one must show it. Snippets
get ``MPLBACKEND=module://_starchat_plots`` (see mpl_backend.py): no window ever opens, and ``plt.show()``
or a figure left open becomes ``plot-N.png`` in the work dir. Afterwards the run reports every image
file it created or changed at the top of the work dir, so ``plt.savefig("chart.png")`` counts too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BACKEND_MODULE = "_starchat_plots"
BACKEND_SOURCE = Path(__file__).with_name("mpl_backend.py")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
MAX_IMAGES = 32

Snapshot = dict[str, tuple[int, int]]


def install_backend(run_dir: Path) -> None:
    """Put the backend module beside the snippet; the snippet's folder is first on its sys.path."""
    target = run_dir / f"{BACKEND_MODULE}.py"
    shutil.copyfile(BACKEND_SOURCE, target)
    target.chmod(0o644)  # the sandbox uid may not be us


def environment(workdir: Path, config_dir: Path) -> dict[str, str]:
    return {
        "MPLBACKEND": f"module://{BACKEND_MODULE}",
        "MPLCONFIGDIR": str(config_dir),  # shared between runs: matplotlib's font cache takes ~0.5 s to build
        "STARCHAT_PLOT_DIR": str(workdir),
    }


def snapshot(workdir: Path) -> Snapshot:
    """Image files at the top of ``workdir``: name -> (mtime_ns, size). Symlinks are never images."""
    found: Snapshot = {}
    try:
        entries = os.scandir(workdir)
    except OSError:
        return found
    with entries:
        for entry in entries:
            if entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file(follow_symlinks=False):
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                found[entry.name] = (info.st_mtime_ns, info.st_size)
    return found


def new_images(workdir: Path, before: Snapshot) -> list[Path]:
    """Images the run created or changed, oldest first (the order the snippet drew them)."""
    after = snapshot(workdir)
    changed = [name for name, stamp in after.items() if before.get(name) != stamp]
    changed.sort(key=lambda name: (after[name][0], name))
    return [workdir / name for name in changed[:MAX_IMAGES]]
