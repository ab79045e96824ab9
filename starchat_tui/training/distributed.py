"""Process-group setup that transformers and accelerate do not do on their own: DeepSpeed on CPU.

accelerate only starts DeepSpeed on an accelerator; on a CPU-only machine it quietly falls back to one
plain process, while DeepSpeed's ``zero.Init`` still sees every rank and the batch-size check between
the two fails. So on CPU we start DeepSpeed's process group ourselves (``DS_ACCELERATOR=cpu``, gloo;
the optimizer is the Trainer's torch AdamW, since our configs have no optimizer block, so no compiled
DeepSpeed ops are needed) and hand accelerate that state with
``use_configured_state``. On GPUs nothing here runs and the normal path is untouched.
"""

from __future__ import annotations

import os
import socket


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def is_local_main_process() -> bool:
    return int(os.environ.get("LOCAL_RANK", "0")) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _single_process_env() -> None:
    """A one-process 'group' for DeepSpeed when nothing launched us (the Python API, tests)."""
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("LOCAL_WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))


def prepare(deepspeed: bool) -> dict:
    """Set up the process group if this machine needs our help; returns TrainingArguments overrides."""
    import torch

    if torch.cuda.is_available():
        if deepspeed:
            _single_process_env()
        return {}
    no_pinning = {"dataloader_pin_memory": False}  # pinned memory only helps copies to a GPU
    if not deepspeed:
        # Several CPU processes train with DDP over gloo, which accelerate only does when told "cpu".
        return {"use_cpu": True, **no_pinning} if world_size() > 1 else no_pinning

    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    _single_process_env()
    import deepspeed as ds

    # DeepSpeed would otherwise compile a shared-memory all-reduce kernel on first use (tens of seconds,
    # and a C++ toolchain); it only speeds up inference all-reduce, never ZeRO training collectives.
    import deepspeed.ops
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    if not torch.distributed.is_initialized():
        ds.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)
    state = PartialState(cpu=False)
    state.backend = "gloo"
    state.distributed_type = DistributedType.DEEPSPEED
    state.num_processes = torch.distributed.get_world_size()
    state.process_index = torch.distributed.get_rank()
    state.local_process_index = int(os.environ.get("LOCAL_RANK", "0"))
    state.device = torch.device("cpu")
    return {"accelerator_config": {"use_configured_state": True}, **no_pinning}


def shutdown() -> None:
    """Leave the process group cleanly so the next run in this process (tests, the API) starts fresh."""
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
