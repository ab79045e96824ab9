"""The layers of the code base, checked: each part imports only the parts below it (pyproject's contract)."""

from __future__ import annotations

import os

import pytest
from conftest import REPO


def test_every_part_imports_only_the_parts_below_it(capsys):
    from importlinter.cli import lint_imports

    os.chdir(REPO)  # the contract lives in pyproject.toml
    code = lint_imports()
    report = capsys.readouterr().out
    assert code == 0, report
    assert "0 broken" in report


@pytest.mark.parametrize("package", ["chat", "session"])
def test_the_chat_core_imports_no_ui_and_no_torch(package):
    import ast

    banned = ("textual", "prompt_toolkit", "torch", "transformers")
    for path in (REPO / "starchat_tui" / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                assert not name.startswith(banned), f"{path.relative_to(REPO)} imports {name}"
