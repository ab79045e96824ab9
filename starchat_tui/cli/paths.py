"""``starchat-tui paths``: the folders starchat-tui reads and writes."""

from __future__ import annotations

import argparse
import os

from ..errors import EXIT_OK
from .base import Command


class Paths(Command):
    name = "paths"
    help = "print the folders starchat-tui reads and writes"
    description = "Print the folders starchat-tui uses."

    def run(self, args: argparse.Namespace) -> int:
        from .. import config

        hf_home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
        for label, path in (
            ("config", config.config_dir()),
            ("config file", config.config_file()),
            ("data", config.data_dir()),
            ("cache", config.cache_dir()),
            ("hf cache", os.environ.get("HF_HUB_CACHE") or os.path.join(hf_home, "hub")),
        ):
            print(f"{label:<12} {path}")
        return EXIT_OK
