"""The shipped recipes in the top-level ``training/`` folder, findable by name.

``starchat-tui train starchat-alpha`` finds ``training/starchat-alpha.yaml``: in a source checkout
directly, and in an installed package through ``starchat_tui.recipes`` when the build maps the folder
there (as it does ``themes/``). A path to any YAML file always works.
"""

from __future__ import annotations

from pathlib import Path


def recipes_dir() -> Path:
    """The top-level ``training/`` folder of a source checkout (absent in an installed wheel)."""
    return Path(__file__).resolve().parents[2] / "training"


def _installed() -> Path | None:
    try:
        from importlib.resources import files

        return Path(str(files("starchat_tui.recipes")))
    except (ModuleNotFoundError, TypeError):
        return None


def find_recipe(name: str) -> str:
    """``name`` itself when it is a file; else the shipped recipe of that name; else ``name`` unchanged."""
    if Path(name).expanduser().exists() or "/" in name:
        return name
    stem = name.removesuffix(".yaml").removesuffix(".yml")
    for folder in (recipes_dir(), _installed()):
        if folder is not None and (folder / f"{stem}.yaml").is_file():
            return str(folder / f"{stem}.yaml")
    return name


def shipped() -> list[str]:
    folder = recipes_dir() if recipes_dir().is_dir() else _installed()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder else []
