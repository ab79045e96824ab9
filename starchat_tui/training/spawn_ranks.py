"""Starting the training processes, so users never write a launch command.

* one process, no DeepSpeed: the run happens in this process;
* several processes or nodes, or DeepSpeed: torchrun, called in this process so its failures come
  back as the worker's own exit code and one-line error, not a launcher traceback;
* a hostfile: the DeepSpeed launcher, which reaches the other nodes over ssh/pdsh.

Every worker gets the fully resolved config as one encoded argument, so all ranks on all nodes train
on exactly the same settings without a shared file system.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK
from .config import LaunchOptions, TrainConfig, default_threads

WORKER = "starchat_tui.training.rank"
DEFAULT_PORT = 29500


def needs_launcher(options: LaunchOptions, config: TrainConfig) -> bool:
    """DeepSpeed always gets a process group, even for one process."""
    return options.distributed or bool(config.training.get("deepspeed"))


def worker_args(config: TrainConfig) -> list[str]:
    return ["--resolved", config.encoded()]


def torchrun_args(options: LaunchOptions, config: TrainConfig) -> list[str]:
    args = ["--nproc-per-node", str(options.nproc_per_node), "--nnodes", str(options.nnodes)]
    if options.nnodes == 1 and options.master_port is None:
        args.append("--standalone")  # a free local port, no rendezvous setup
    else:
        args += [
            "--node-rank", str(options.node_rank),
            "--master-addr", options.master_addr or "127.0.0.1",
            "--master-port", str(options.master_port or DEFAULT_PORT),
        ]
    return args + ["--module", WORKER, *worker_args(config)]


def deepspeed_command(options: LaunchOptions, config: TrainConfig) -> list[str]:
    command = [sys.executable, "-m", "deepspeed.launcher.runner", "--hostfile", os.path.expanduser(options.hostfile)]
    if options.nnodes > 1:
        command += ["--num_nodes", str(options.nnodes)]
    if options.nproc_per_node > 1:
        command += ["--num_gpus", str(options.nproc_per_node)]
    if options.master_addr:
        command += ["--master_addr", options.master_addr]
    command += ["--master_port", str(options.master_port or DEFAULT_PORT)]
    return command + ["--module", WORKER, *worker_args(config)]


def worker_environment(options: LaunchOptions, *, debug: bool) -> dict[str, str]:
    """Variables every worker needs: threads per process, DeepSpeed's CPU backend on CPU machines."""
    import torch

    env = {}
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = default_threads(options.nproc_per_node)
    if not torch.cuda.is_available():
        env.setdefault("DS_ACCELERATOR", os.environ.get("DS_ACCELERATOR", "cpu"))
    if debug:
        env["STARCHAT_TUI_DEBUG"] = "1"
    return env


def _torchrun(argv: list[str]) -> int:
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # The workers report their own errors; torchrun's account of the same failure is noise. Its modules
    # give each logger its own level, so each is quietened by name.
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher", "torch.distributed.run")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(get_args_parser().parse_args(argv))
    except ChildFailedError as error:
        _, failure = error.get_first_failure()
        if failure.exitcode > 0:
            return failure.exitcode
        return EXIT_INTERRUPTED if failure.exitcode == -signal.SIGINT else EXIT_INTERNAL
    except SignalException as error:
        return EXIT_INTERRUPTED if error.sigval == signal.SIGINT else 128 + int(error.sigval)
    return EXIT_OK


def launch(options: LaunchOptions, config: TrainConfig, *, debug: bool = False) -> int:
    """Start the workers and wait; returns the exit code of the first one that failed (or 0)."""
    os.environ.update(worker_environment(options, debug=debug))
    if options.hostfile:
        try:
            return subprocess.call(deepspeed_command(options, config))
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return _torchrun(torchrun_args(options, config))
