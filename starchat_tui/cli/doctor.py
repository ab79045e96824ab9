"""``starchat-tui doctor``: what this machine gives starchat-tui, and why.

The sandbox backend that runs code blocks and the reason it was chosen (each rung of the ladder that
was tried), who snippets run as, which interpreter runs Python snippets and whether plots can be
captured; then the device the model would load on. torch is imported here, inside ``main``, and only
for the device section, so ``starchat-tui --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from ..errors import EXIT_OK
from .base import Command


class Doctor(Command):
    name = "doctor"
    help = "show the sandbox backend, the device and why they were chosen"
    description = "Show the sandbox backend and the device starchat-tui would use, and why."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
        parser.add_argument(
            "--no-device", action="store_true",
            help="skip the device check (it imports torch, which takes a few seconds)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from ..config import config_file, load_settings

        settings = load_settings()
        sandbox = sandbox_report(settings.section("sandbox"))
        device = None if args.no_device else device_report(settings)
        path = config_file()
        if args.json:
            json.dump({"sandbox": sandbox, "device": device, "config": str(path), "config_found": path.is_file()},
                      sys.stdout)
            sys.stdout.write("\n")
        else:
            _print_text(sandbox, device, str(path), path.is_file())
        return EXIT_OK


def sandbox_report(section: dict[str, Any]) -> dict[str, Any]:
    from ..sandbox import languages
    from ..sandbox.probe import probe_backend

    info = probe_backend(section)
    report: dict[str, Any] = {
        "backend": info.name,
        "label": info.label,
        "safe": info.safe,
        "reason": info.reason,
        "tried": list(info.tried),
        "seccomp": info.seccomp,
        "runs_as": f"uid {info.uid}" if info.uid is not None else "your own uid",
        "languages": languages.names(section),
    }
    from ..sandbox.runner import interpreter_for

    stand_in = None
    try:
        lang = interpreter_for(languages.resolve("python", section), info)
    except Exception as error:  # noqa: BLE001 - a broken [sandbox] python is worth reporting, not crashing on
        python, plots = None, f"no python for snippets: {error}"
    else:
        python, stand_in = lang.command[0], lang.stand_in
        plots = _plot_support(python)
    report["python"] = python
    report["python_note"] = stand_in
    report["plots"] = plots
    return report


def _plot_support(python: str) -> str:
    """Whether snippets' ``plt.show()`` can be captured: does their python have matplotlib?"""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('matplotlib') is None)"
    try:
        found = subprocess.run([python, "-I", "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"could not ask {python} ({error})"
    if found:
        return "matplotlib found: plots are captured as PNG files"
    return f"matplotlib is not installed for {python}: install it there to capture plots"


def device_report(settings) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"torch": None, "note": "torch is not installed: pip install torch"}
    from ..engine.loading import choose_device, choose_dtype

    report: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if report["cuda"]:
        report["gpus"] = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    report["mps"] = bool(mps and mps.is_available())
    try:
        device = choose_device(settings.device)
        report["device"] = device
        report["dtype"] = str(choose_dtype(device, settings.dtype)).removeprefix("torch.")
        report["why"] = (
            f"--device/config asks for {settings.device}" if settings.device not in (None, "auto")
            else "auto: the first of cuda, mps, cpu that works"
        )
    except Exception as error:  # noqa: BLE001 - report it; doctor must not fail on what it diagnoses
        report["device"] = None
        report["note"] = str(error)
    return report


def _print_text(sandbox: dict[str, Any], device: dict[str, Any] | None, config_path: str, config_found: bool) -> None:
    red = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    verdict = "safe" if sandbox["safe"] else "NOT SAFE: snippets need --unsafe or a confirmation on every run"
    line = f"sandbox     {sandbox['label']} ({verdict})"
    print(f"\x1b[1;31m{line}\x1b[0m" if red and not sandbox["safe"] else line)
    print(f"  why       {sandbox['reason']}")
    for index, step in enumerate(sandbox["tried"]):
        print(f"  {'tried' if index == 0 else '':<9} {step}")
    print(f"  runs as   {sandbox['runs_as']}")
    print(f"  python    {sandbox['python'] or '-'}")
    if sandbox.get("python_note"):
        print(f"  problem   {sandbox['python_note']}")
    print(f"  plots     {sandbox['plots']}")
    print(f"  languages {', '.join(sandbox['languages'])}")
    if device is not None:
        if device.get("torch") is None:
            print(f"device      - ({device['note']})")
        else:
            chosen = device.get("device") or "none"
            print(f"device      {chosen}" + (f" ({device['dtype']})" if device.get("dtype") else ""))
            if device.get("why"):
                print(f"  why       {device['why']}")
            gpus = ", ".join(device.get("gpus", [])) or "not available"
            print(f"  torch     {device['torch']}; cuda: {gpus}; mps: {'available' if device['mps'] else 'not available'}")
            if device.get("note"):
                print(f"  problem   {device['note']}")
    print(f"config      {config_path} ({'found' if config_found else 'not found; defaults in use'})")
