"""``starchat-tui eval``: pass@k on coding tasks in the sandbox, or a pairwise LLM judge."""

from __future__ import annotations

import argparse
import gc
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from ..errors import EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_OK, UsageError
from . import options
from .base import Command
from .options import add_model_flags, load_model, settings_from_args

DESCRIPTION = """\
Measure a model.

Functional correctness: ask the model every task of a HumanEval-format file, take the code block
from each answer, run it with the task's tests in the sandbox, and report pass@1 (and pass@k with
--samples N). One sample is greedy; several are sampled at temperature 0.8 (change it with -o).

  starchat-tui eval --model demo --tasks HumanEval.jsonl.gz
  starchat-tui eval --model bigcode/starcoder --tasks tasks.jsonl --samples 10 --out results.jsonl

Answers generated elsewhere are scored with --score, in the same sandbox, with no model loaded:

  starchat-tui eval --tasks HumanEval.jsonl.gz --score samples.jsonl --out results.jsonl

Pairwise judge, as in the StarChat write-up: two assistants (models, or JSONL files of saved answers)
answer every prompt; a judge model scores both answers from 1 to 8 with its reasons, in both orders
to cancel position bias; the result is A's wins, ties and losses.

  starchat-tui eval --judge JUDGE_MODEL --compare MODEL_A MODEL_B --prompts prompts.jsonl
"""

EPILOG = f"""\
tasks file: one JSON object per line with task_id, prompt, test (defining check(candidate)) and
entry_point, as in HumanEval; an optional instruction field is sent instead of the prompt.
prompts file: JSON lines with a "prompt" field, or a text file with one prompt per line.
answers file (for --compare): JSON lines with "prompt" and "answer" fields.
samples file (for --score): JSON lines, each one sample of one task: {{"task_id", "completion"}} where the
completion continues the task's prompt (HumanEval's own convention: prompt + completion + test is run),
or {{"task_id", "answer"}}, a chat reply whose code block is tested. Several rows for a task are several
samples; pass@k is estimated over all of them.
--concurrency N: answers generated at once, each in its own conversation, for an engine that can stream
several (a server); a model loaded here answers one task at a time whatever N is, generating that task's
--samples as one batch. Results stay in task order.
--out writes one JSON line per task (task_id, passed, n, correct, samples) or per prompt (scores,
outcome, the judge's reasons) as results arrive, so an interrupted run keeps what it finished.

{EXIT_CODES_HELP}
"""


class Eval(Command):
    name = "eval"
    help = "measure a model: pass@k on coding tasks in the sandbox, or a pairwise judge"
    description = DESCRIPTION
    epilog = EPILOG

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from ..eval.runner import DEFAULT_CONCURRENCY

        parser.add_argument("--tasks", metavar="FILE", help="HumanEval-format JSONL (.jsonl or .jsonl.gz)")
        parser.add_argument("--score", metavar="SAMPLES", help="score saved answers (JSONL) against --tasks; loads no model")
        parser.add_argument("--samples", type=int, metavar="N", help="answers per task (default 1)")
        parser.add_argument("-k", type=int, action="append", metavar="K",
                            help="report pass@K (repeatable; default 1, 10, 100 up to N)")
        parser.add_argument("--limit", type=int, metavar="N", help="only the first N tasks or prompts")
        parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                            help="seconds each answer may run (default 10)")
        parser.add_argument("--allow-unsafe", action="store_true", help="run answers even where no sandbox is available")
        parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                            help=f"answers generated at once where the engine can stream several (default {DEFAULT_CONCURRENCY})")
        parser.add_argument("--judge", metavar="MODEL", help="the judge model for a pairwise comparison")
        parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two models, or two JSONL files of answers")
        parser.add_argument("--prompts", metavar="FILE", help="the questions for --compare")
        parser.add_argument("--single-order", action="store_true",
                            help="judge each pair once (A first) instead of in both orders")
        parser.add_argument("--out", metavar="FILE", help="write one JSON line per task or prompt")
        parser.add_argument("--seed", type=int, default=0, help="seed for sampling (default 0)")
        # -m is the model measured with --tasks; -s and -o go to the model(s) under test.
        add_model_flags(parser, dry_run=False)

    def run(self, args: argparse.Namespace) -> int:
        if args.judge:
            return run_judge(args)
        if args.compare or args.prompts:
            raise UsageError("--compare and --prompts go with --judge MODEL")
        if not args.tasks:
            raise UsageError("give --tasks FILE.jsonl to measure pass@k, or --judge MODEL --compare A B --prompts FILE")
        if args.concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, not {args.concurrency}")
        if args.score:
            return run_score(args)
        return run_tasks(args)


say = partial(options.say, command="eval")


def open_out(path: str | None) -> TextIO | None:
    if not path:
        return None
    target = Path(path).expanduser()
    if not target.parent.is_dir():
        raise UsageError(f"--out {path}: folder {target.parent} does not exist")
    try:
        return target.open("w", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--out {path}: cannot write it ({error.strerror})") from None


def load(model: str, args: argparse.Namespace):
    return load_model(settings_from_args(args), model, progress=say)


def first_tasks(tasks: list[Any], limit: int | None) -> list[Any]:
    if limit is None:
        return tasks
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    return tasks[:limit]


def run_tasks(args: argparse.Namespace) -> int:
    from ..config import parse_options
    from ..eval.runner import evaluate, require_sandbox
    from ..eval.tasks import load_tasks

    tasks = load_tasks(args.tasks)
    tasks = first_tasks(tasks, args.limit)
    samples = 1 if args.samples is None else args.samples
    if samples < 1:
        raise UsageError(f"--samples must be at least 1, not {samples}")
    if args.k and max(args.k) > samples:
        raise UsageError(f"pass@{max(args.k)} needs --samples {max(args.k)} or more")
    options = parse_options(args.option)
    require_sandbox(args.allow_unsafe)  # before the model loads: minutes saved when it would be refused
    out = open_out(args.out)
    model = settings_from_args(args).model
    engine = load(model, args)
    streams = min(args.concurrency, engine.concurrent_streams)
    say(f"{len(tasks)} tasks from {args.tasks}, {samples} sample(s) each"
        + (f", {streams} answers at once" if streams > 1 else ""))
    return report_results(
        "model", model, args, out,
        lambda on_result: evaluate(engine, tasks, samples=samples, ks=args.k, options=options, system=args.system,
                                   timeout=args.timeout, allow_unsafe=args.allow_unsafe, seed=args.seed,
                                   concurrency=args.concurrency, on_result=on_result),
        len(tasks),
    )


def run_score(args: argparse.Namespace) -> int:
    """Score saved answers: the same checks and report as run_tasks, and no model (nor torch) loads."""
    from ..eval.runner import require_sandbox
    from ..eval.score import check_score_ks, load_samples, sample_counts, score
    from ..eval.tasks import load_tasks

    for flag, given in (("--model", args.model), ("--samples", args.samples), ("-o", args.option)):
        if given:
            raise UsageError(f"--score checks answers already written, so {flag} has nothing to do; drop it")
    tasks = load_tasks(args.tasks)
    submissions = load_samples(args.score, tasks)  # against every task: a row outside --limit is still no typo
    tasks = first_tasks(tasks, args.limit)
    counts = sample_counts(tasks, submissions)
    check_score_ks(args.k, counts)
    require_sandbox(args.allow_unsafe)
    out = open_out(args.out)
    say(f"{sum(counts.values())} samples of {len(counts)} tasks (of {len(tasks)} in {args.tasks}) from {args.score}")
    return report_results(
        "samples", args.score, args, out,
        lambda on_result: score(tasks, submissions, ks=args.k, timeout=args.timeout, allow_unsafe=args.allow_unsafe,
                                on_result=on_result),
        len(counts),
    )


def report_results(label: str, source: str, args: argparse.Namespace, out: TextIO | None,
                   run: Callable[[Callable[..., None]], Any], total: int) -> int:
    """Run an evaluation or a scoring with a progress bar and --out written as each task finishes, then report."""
    from ..eval.progress import ProgressBar
    from ..eval.runner import EvalInterrupted

    bar = ProgressBar("eval", total)
    done_samples = passed = 0

    def on_result(result, done: int, total: int) -> None:
        nonlocal done_samples, passed
        done_samples += result.n
        passed += result.correct
        bar.update(done, f"pass@1 {100 * passed / max(done_samples, 1):.1f}%")
        if out:
            out.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
            out.flush()

    try:
        report = run(on_result)
    except EvalInterrupted as stop:
        bar.close()
        print_report(label, source, args.tasks, stop.report)
        say(f"interrupted; the {len(stop.report.results)} finished tasks are above" + (f" and in {args.out}" if out else ""))
        return EXIT_INTERRUPTED
    finally:
        if out:
            out.close()
    print_report(label, source, args.tasks, report)
    return EXIT_OK


def print_report(label: str, name: str, source: str, report: Any) -> None:
    print(f"{label:<9} {name}")
    print(f"tasks     {len(report.results)} of {report.total_tasks} from {source}")
    for k, value in report.pass_at.items():
        print(f"pass@{k:<4} {100 * value:.1f}%")
    print(f"time      {report.seconds:.0f} s (sandbox: {report.backend})")


# ---------------------------------------------------------------------------------------------------
# Pairwise judge


def load_prompts(path: str) -> list[str]:
    from ..eval.rows import json_rows

    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"--prompts {path}: no such file")
    prompts: list[str] = []
    if is_answers_file(path):
        for where, row in json_rows(file, "prompt"):
            prompt = _field(row, ("prompt", "instruction", "question"))
            if prompt is None:
                raise UsageError(f"{where}: no prompt field (expected {{\"prompt\": \"...\"}})")
            prompts.append(prompt)
    else:
        text = file.read_text(encoding="utf-8", errors="replace")
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise UsageError(f"--prompts {path}: no prompts in it")
    return prompts


def _field(row: Any, names: tuple[str, ...]) -> str | None:
    if isinstance(row, str):
        return row
    if isinstance(row, dict):
        for name in names:
            if isinstance(row.get(name), str):
                return row[name]
    return None


def is_answers_file(source: str) -> bool:
    from ..eval.rows import is_json_file

    path = Path(source).expanduser()
    return path.is_file() and is_json_file(path)


def load_answers(path: str, prompts: list[str]) -> list[str]:
    """Saved answers for each prompt, matched by the prompt's text."""
    from ..eval.rows import json_rows

    by_prompt: dict[str, str] = {}
    for where, row in json_rows(Path(path).expanduser(), "answer"):
        prompt = _field(row, ("prompt", "instruction", "question")) if isinstance(row, dict) else None
        reply = _field(row, ("answer", "response", "completion", "output")) if isinstance(row, dict) else None
        if prompt is None or reply is None:
            raise UsageError(f"{where}: expected {{\"prompt\": ..., \"answer\": ...}}")
        by_prompt[prompt.strip()] = reply
    missing = [p for p in prompts if p.strip() not in by_prompt]
    if missing:
        raise UsageError(f"{path}: no answer for {len(missing)} prompt(s), the first: {missing[0][:80]!r}")
    return [by_prompt[p.strip()] for p in prompts]


def model_answers(model: str, prompts: list[str], args: argparse.Namespace, label: str) -> list[str]:
    from ..chat.conversation import Conversation
    from ..config import parse_options
    from ..eval.progress import ProgressBar
    from ..eval.runner import seed_sampling

    engine = load(model, args)
    options = parse_options(args.option)
    seed_sampling(args.seed)
    bar = ProgressBar(f"answers {label}", len(prompts))
    answers = []
    try:
        for index, prompt in enumerate(prompts, 1):
            conversation = Conversation(system=args.system)
            conversation.add("user", prompt)
            for _ in engine.stream(conversation, **options):
                pass
            answers.append(conversation.messages[-1]["content"])
            bar.update(index)
    except KeyboardInterrupt:
        bar.close()
        raise
    del engine
    gc.collect()
    return answers


def run_judge(args: argparse.Namespace) -> int:
    from ..chat.inert import make_inert
    from ..eval.judge import Comparison, judge_pair, tally
    from ..eval.progress import ProgressBar

    if not args.compare or not args.prompts:
        raise UsageError("--judge needs --compare A B and --prompts FILE")
    if args.tasks or args.score:
        raise UsageError("--tasks (and --score) and --judge are separate runs; give one of them")
    prompts = load_prompts(args.prompts)
    if args.limit is not None:
        prompts = prompts[: max(args.limit, 1)]
    out = open_out(args.out)
    sources = []
    for source in args.compare:
        sources.append(load_answers(source, prompts) if is_answers_file(source) else None)
    try:
        answers = [
            given if given is not None else model_answers(source, prompts, args, label)
            for label, source, given in zip("AB", args.compare, sources)
        ]
        judge = load(args.judge, args)
        comparisons = []
        bar = ProgressBar("judging", len(prompts))
        for index, (prompt, a, b) in enumerate(zip(prompts, *answers), 1):
            comparison = judge_pair(judge, Comparison(prompt, a, b), both_orders=not args.single_order)
            comparisons.append(comparison)
            if out:
                out.write(json.dumps(comparison.as_dict(), ensure_ascii=False) + "\n")
                out.flush()
            bar.update(index)
    except KeyboardInterrupt:
        say("interrupted" + (f"; the finished comparisons are in {args.out}" if out else ""))
        return EXIT_INTERRUPTED
    finally:
        if out:
            out.close()

    a_name, b_name = args.compare
    for index, comparison in enumerate(comparisons, 1):
        scores = comparison.scores()
        shown = f"A {scores[0]:.1f} · B {scores[1]:.1f}" if scores else "unreadable verdict"
        first_line = make_inert(comparison.prompt.strip().splitlines()[0])[:70]
        print(f"[{index}] {shown} · {comparison.outcome:<8} {first_line}")
        reasons = next((v.reasons for v in comparison.verdicts_ab + comparison.verdicts_ba if v.reasons), "")
        if reasons:
            print("    " + make_inert(reasons.strip().splitlines()[0])[:200])
    counts = tally(comparisons)
    scored = [c.scores() for c in comparisons if c.scores()]
    print()
    print(f"A = {a_name}, B = {b_name}, judged by {args.judge}"
          + ("" if args.single_order else " (each pair in both orders)"))
    print(f"A: {counts['win']} wins, {counts['tie']} ties, {counts['loss']} losses"
          + (f"; {counts['unparsed']} unreadable verdicts" if counts["unparsed"] else ""))
    if scored:
        mean_a, mean_b = (sum(s[i] for s in scored) / len(scored) for i in (0, 1))
        print(f"mean score: A {mean_a:.2f}, B {mean_b:.2f} (1-8)")
    return EXIT_OK
