"""Measuring models: ``starchat-tui eval`` and its Python API.

    from starchat_tui.eval.tasks import load_tasks          # HumanEval-format JSONL
    from starchat_tui.eval.runner import evaluate            # answers run in the sandbox, pass@k
    from starchat_tui.eval.score import load_samples, score  # the same for answers generated elsewhere
    from starchat_tui.eval.judge import judge_pair, parse_scores   # pairwise LLM-as-judge, 1-8

Importing this package costs nothing; torch and the models load when an evaluation runs.
"""
