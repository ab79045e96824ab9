"""bench/gpu.py: it refuses without CUDA, and its code path runs for real on a tiny shape on the CPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from conftest import REPO

GPU_BENCH = REPO / "bench" / "gpu.py"


def run_bench(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GPU_BENCH), *args], capture_output=True, text=True, env=env, timeout=300)


def test_refuses_without_cuda_in_one_line(cli_env):
    done = run_bench([], {**cli_env, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == ["bench/gpu.py: no CUDA GPU is visible to torch; run it on a GPU machine"]


def test_tiny_run_on_cpu_prints_the_table(cli_env):
    done = run_bench(["--device", "cpu", "--tiny", "--new-tokens", "8", "--repeats", "1"], cli_env)
    assert done.returncode == 0, done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("| gpu")]
    measures = [line.split("|")[2].strip() for line in table]
    assert measures[0].startswith("tiny shape: memory ceiling")
    assert any(m.startswith("decode bf16: Engine.stream vs bare generate") for m in measures)
    assert sum(m.startswith("TTFT ") for m in measures) == 2
    kv_row = next(line for line in table if "KV cache at" in line)
    measured, expected = kv_row.split("|")[3].split(" vs ")
    assert measured.strip() == expected.strip()  # the cache holds one head's key and value per layer: MQA


def test_the_device_name_picks_the_data_sheet_bandwidth():
    spec = importlib.util.spec_from_file_location("bench_gpu", GPU_BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    datasheet_gbs = bench.datasheet_gbs
    assert datasheet_gbs("NVIDIA H100 80GB HBM3") == 3350
    assert datasheet_gbs("NVIDIA H100 PCIe") == 2000
    assert datasheet_gbs("NVIDIA H200") == 4800
    assert datasheet_gbs("NVIDIA A100-SXM4-80GB") == 2039
    assert datasheet_gbs("NVIDIA A100 80GB PCIe") == 1935
    assert datasheet_gbs("NVIDIA A100-SXM4-40GB") == 1555
    assert datasheet_gbs("NVIDIA L40S") == 864
    assert datasheet_gbs("NVIDIA A10G") == 600
    assert datasheet_gbs("NVIDIA GeForce RTX 4090") is None
