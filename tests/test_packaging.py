"""What a user installs: a wheel built from this tree carries every module, theme and recipe."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (path,) = out.glob("starchat_tui-*.whl")
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def wheel_files(wheel) -> set[str]:
    return set(wheel.namelist())


@pytest.mark.slow
def test_every_module_is_in_the_wheel(wheel_files):
    sources = {str(p.relative_to(REPO)) for p in (REPO / "starchat_tui").rglob("*.py")}
    missing = sorted(sources - wheel_files)
    assert not missing, f"not packaged (add the package to pyproject.toml): {missing}"


@pytest.mark.slow
def test_shipped_themes_are_in_the_wheel(wheel_files):
    themes = {f"starchat_tui/themes/{p.name}" for p in (REPO / "starchat_tui" / "themes").glob("*.toml")}
    assert len(themes) >= 3
    assert themes <= wheel_files


@pytest.mark.slow
def test_training_recipes_are_in_the_wheel(wheel_files):
    recipes = {f"starchat_tui/recipes/{p.name}" for p in (REPO / "starchat_tui" / "recipes").iterdir() if p.suffix in (".yaml", ".json")}
    assert {"starchat_tui/recipes/starchat-alpha.yaml", "starchat_tui/recipes/zero3.json"} <= recipes <= wheel_files


@pytest.mark.slow
def test_the_console_script_is_declared(wheel, wheel_files):
    entry_points = next(name for name in wheel_files if name.endswith("entry_points.txt"))
    assert "starchat-tui = starchat_tui.cli:main" in wheel.read(entry_points).decode()


def test_installed_themes_load_through_the_package():
    from importlib.resources import files

    names = sorted(p.name for p in files("starchat_tui.themes").iterdir() if p.name.endswith(".toml"))
    assert names == sorted(p.name for p in Path(REPO / "starchat_tui" / "themes").glob("*.toml"))
