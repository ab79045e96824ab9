"""The shipped recipes, in the ``starchat_tui.recipes`` package, findable by name.

``starchat-tui train starchat-alpha`` finds ``starchat_tui/recipes/starchat-alpha.yaml`` through
``importlib.resources``, in a source checkout and an installed wheel alike. A path to any YAML file always works.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def recipes_dir() -> Path:
    """The folder of the shipped recipes and DeepSpeed configs."""
    return Path(str(files("starchat_tui.recipes")))


def find_recipe(name: str) -> str:
    """``name`` itself when it is a file; else the shipped recipe of that name; else ``name`` unchanged."""
    if Path(name).expanduser().exists() or "/" in name:
        return name
    stem = name.removesuffix(".yaml").removesuffix(".yml")
    candidate = recipes_dir() / f"{stem}.yaml"
    return str(candidate) if candidate.is_file() else name


def shipped() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))
