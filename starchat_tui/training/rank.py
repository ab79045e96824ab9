"""The process that trains: one per rank, started by :mod:`starchat_tui.training.spawn_ranks`.

It also runs under a launcher of the user's choosing, with the same arguments as ``starchat-tui
train``::

    torchrun --nproc-per-node 8 -m starchat_tui.training.rank recipe.yaml --deepspeed zero3
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn

from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, StarchatError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug (tracebacks) is starchat-tui's, for a worker started by hand; TrainingArguments' own
    # `debug` field stays reachable from the YAML.
    debug = os.environ.get("STARCHAT_TUI_DEBUG") == "1" or "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    rank = int(os.environ.get("RANK", "0"))
    try:
        from .config import TrainConfig, parse_invocation
        from .progress import ProgressPrinter
        from .trainer import quiet_libraries, run_training

        quiet_libraries()
        config = TrainConfig.decoded(argv[1]) if argv[:1] == ["--resolved"] else parse_invocation(argv).config
        run_training(config, on_progress=ProgressPrinter())
        return EXIT_OK
    except StarchatError as error:
        if debug:
            traceback.print_exc()
        if first_to_report(str(error)):  # every rank hits the same problem; say it once
            print(f"starchat-tui: error: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:  # our bug, or a library's: one line per rank, the traceback with --debug
        if debug:
            traceback.print_exc()
        print(f"starchat-tui: internal error on rank {rank}: {type(error).__name__}: {error} "
              "(rerun with --debug for the traceback)", file=sys.stderr, flush=True)
        return EXIT_INTERNAL


def first_to_report(message: str) -> bool:
    """Whether this rank is the first on its machine to report ``message``.

    Not simply rank 0: the launcher stops the other ranks as soon as one fails, so when another rank
    gets there first, rank 0 is killed before it can say anything.
    """
    import hashlib
    import tempfile

    run = os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("MASTER_PORT")
    if not run:  # not under a launcher: the only rank
        return True
    digest = hashlib.sha256(f"{run}:{message}".encode()).hexdigest()[:16]
    try:
        os.close(os.open(os.path.join(tempfile.gettempdir(), f"starchat-tui-rank-error-{digest}"),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    except OSError:  # no usable temp folder: saying it twice beats not at all
        return True
    return True


def end_rank(code: int) -> NoReturn:
    """End this rank with ``code``, skipping the interpreter's teardown.

    After ZeRO-3, DeepSpeed still holds its gloo process groups (``deepspeed.utils.groups``, the
    ``zero.Init`` context, every parameter's ``ds_process_group``), so ``destroy_process_group()`` cannot
    free them, and their C++ threads (``pt_gloo_runloop``, ``gloo_tcp_loop``) keep running while Python
    and then the C++ runtime tear down around them. On a loaded machine that can abort a rank that has
    already saved the model ("terminate called without an active exception"), and the run exits 1.
    Everything worth keeping is written by now; the atexit handlers (loggers such as W&B flush there)
    still run, and so does the flush of our own output.
    """
    import atexit

    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


if __name__ == "__main__":
    end_rank(main())
