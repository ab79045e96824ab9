"""`starchat-tui review --staged | --base REF | --commit SHA` on a real temporary git repository."""

from __future__ import annotations

import json
import subprocess

import pytest

from starchat_tui import cli

BEFORE = "def div(a, b):\n    return a / b\n"
AFTER = "def div(a, b):\n    if b == 0:\n        return None\n    return a / b\n"


def git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository with one commit on main, a branch `feature` with one more, and a staged change."""
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    git(folder, "config", "user.email", "dev@example.com")
    git(folder, "config", "user.name", "Dev")
    (folder / "calc.py").write_text(BEFORE)
    git(folder, "add", "calc.py")
    git(folder, "commit", "-q", "-m", "add div")
    git(folder, "checkout", "-q", "-b", "feature")
    (folder / "calc.py").write_text(AFTER)
    git(folder, "commit", "-q", "-am", "guard against zero")
    (folder / "notes.py").write_text("TODO = 'write the tests'\n")
    git(folder, "add", "notes.py")
    monkeypatch.chdir(folder)
    return folder


def review(capsys, *args):
    code = cli.main(["review", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("starchat-tui: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_staged_changes_are_the_prompt(repo, capsys, tiny_model):
    code, prompt, err = review(capsys, "--staged", "--dry-run", "-m", tiny_model)
    assert code == 0, err
    assert "Review the following staged changes (a unified diff" in prompt
    staged = git(repo, "diff", "--staged", "-U10")
    assert f"staged changes:\n```diff\n{staged}```" in prompt
    assert "calc.py" not in prompt, "only what is staged: the committed change is not in it"


def test_base_reviews_the_branch_commits_with_context(repo, capsys, tiny_model):
    code, prompt, err = review(capsys, "--base", "main", "--dry-run", "-m", tiny_model)
    assert code == 0, err
    assert "Review the following changes since main" in prompt
    assert "+    if b == 0:\n+        return None\n" in prompt
    assert " def div(a, b):\n" in prompt, "the unchanged lines around the change are context"
    assert "notes.py" not in prompt, "staged but not committed: not part of the branch"


def test_commit_reviews_one_commit_with_its_message(repo, capsys, tiny_model):
    code, prompt, err = review(capsys, "--commit", "HEAD", "--dry-run", "-m", tiny_model)
    assert code == 0, err
    assert "The commit message:\nguard against zero" in prompt
    assert "+    if b == 0:" in prompt
    root = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    code, prompt, err = review(capsys, "--commit", root, "--dry-run", "-m", tiny_model)
    assert code == 0, err
    assert "new file mode" in prompt and "+    return a / b" in prompt, "a root commit is its whole tree"


def test_paths_limit_the_diff(repo, capsys, tiny_model):
    (repo / "calc.py").write_text(AFTER + "\n\ndef mul(a, b):\n    return a * b\n")
    git(repo, "add", "calc.py")
    code, prompt, err = review(capsys, "--staged", "notes.py", "--dry-run", "-m", tiny_model)
    assert code == 0, err
    assert "notes.py" in prompt and "def mul" not in prompt


def test_bad_ref_outside_a_repository_and_empty_diff(repo, capsys, tiny_model, tmp_path, monkeypatch):
    code, out, err = review(capsys, "--commit", "no-such-ref", "-m", tiny_model)
    assert code == 2 and out == ""
    assert "--commit no-such-ref: no such commit or branch" in one_error(err)
    code, out, err = review(capsys, "--base=--output=x", "-m", tiny_model)
    assert code == 2 and "cannot start with '-'" in one_error(err), "git must not read a ref as its option"
    git(repo, "commit", "-q", "-m", "notes")
    code, out, err = review(capsys, "--staged", "-m", tiny_model)
    assert (code, out) == (0, "")
    assert "nothing to review: there are no staged changes (git add" in err
    assert "error" not in err and "loading" not in err, "no model is loaded for nothing"
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    code, out, err = review(capsys, "--staged", "-m", tiny_model)
    assert code == 2
    assert "not inside a git repository" in one_error(err)
    code, out, err = review(capsys, "--staged", "-", "-m", tiny_model)
    assert code == 2 and "does not go with --staged" in one_error(err)


def big_module(name: str) -> str:
    return "".join(f"{name}_{i} = {i} * {i}\n" for i in range(60))


def test_a_diff_too_big_for_the_context_is_reviewed_file_by_file(repo, capsys, tiny_model):
    for name in ("alpha", "beta"):
        (repo / f"{name}.py").write_text(big_module(name))
    git(repo, "add", "alpha.py", "beta.py")
    args = ("--staged", "-m", tiny_model, "-o", "max_new_tokens=20", "-o", "temperature=0")
    code, prompts, err = review(capsys, *args, "--dry-run")
    assert code == 0, err
    assert "reviewing it file by file (3 requests)" in err
    assert [line for line in prompts.splitlines() if line.startswith("## ")] == ["## alpha.py", "## beta.py", "## notes.py"]
    alpha = prompts.split("## beta.py")[0]
    assert "alpha_1 = 1 * 1" in alpha and "beta_1" not in alpha, "each request holds one file's diff"
    code, answers, err = review(capsys, *args)
    assert code == 0, err
    assert "reviewing it file by file (3 requests)" in err
    headers = [line for line in answers.splitlines() if line.startswith("## ")]
    assert headers == ["## alpha.py", "## beta.py", "## notes.py"]


def test_a_staged_review_gets_an_answer(repo, capsys, tiny_model):
    code, out, err = review(capsys, "--staged", "-m", tiny_model, "-o", "max_new_tokens=20", "--format", "jsonl")
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events][0] == "start" and events[-1]["type"] == "end"
    assert events[-1]["stats"]["prompt_tokens"] > 0
