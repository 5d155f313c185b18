"""``torchrun --nproc-per-node G -m deepnetsbench eval ...``: one shard per rank, one file.

Rank r evaluates shard r+1 of G (:mod:`deepnetsbench.eval.shards`) on its own device
(``cuda:<LOCAL_RANK>`` when ``--device`` is cuda, else the CPU) into
``OUT-shard<r+1>of<G>.json`` with its own journal; when every rank is done, rank 0 merges the
shards into ``OUT``. Re-running the same command resumes every shard and merges again.

The ranks talk over a gloo process group (CPU, whatever the device): rank 0 prepares the
inputs first (a mock split is generated once, not G times at once), and all ranks report
how their shard ended before rank 0 merges, so one failing rank stops the run with its
reason instead of leaving the others waiting. The group's timeout bounds how long a rank
that finished waits for the slowest one (:data:`WAIT_TIMEOUT`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, NamedTuple

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.shards import Shard, evaluate_shard, merge_files, plan_shard, shard_out

__all__ = ["WAIT_TIMEOUT", "TorchrunEnv", "evaluate_split", "rank_device", "run_distributed",
           "torchrun_env", "wants_distributed"]

WAIT_TIMEOUT = timedelta(hours=48)


class TorchrunEnv(NamedTuple):
    """The rank layout torchrun sets in the environment."""

    rank: int
    world_size: int
    local_rank: int


def torchrun_env(environ: Mapping[str, str] | None = None) -> TorchrunEnv | None:
    """The torchrun rank layout, or None outside torchrun (no ``WORLD_SIZE``/``RANK``)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_RANK", rank))
    except ValueError:
        raise BenchError("RANK/WORLD_SIZE/LOCAL_RANK are not integers",
                         "launch with torchrun, which sets them") from None
    return TorchrunEnv(rank, world, local)


def wants_distributed(flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """``--distributed``, or launched by torchrun with more than one process."""
    env = torchrun_env(environ)
    return flag or (env is not None and env.world_size > 1)


def rank_device(device: str, local_rank: int) -> str:
    """The device of a rank: ``cuda``/``cuda:i`` become ``cuda:<local_rank>``; others stay."""
    if not device.startswith("cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        raise BenchError(f"--device {device} under torchrun, but CUDA is not available",
                         "pass --device cpu or run on a machine with GPUs")
    if local_rank >= torch.cuda.device_count():
        raise BenchError(f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} "
                         "visible)", "launch at most one process per GPU (--nproc-per-node)")
    torch.cuda.set_device(local_rank)
    return f"cuda:{local_rank}"


def _outcome(fn: Any) -> tuple[Any, str | None, BaseException | None]:
    try:
        return fn(), None, None
    except BenchError as err:
        return None, err.one_line(), err
    except Exception as err:  # noqa: BLE001 - reported to rank 0, then re-raised here
        return None, f"{type(err).__name__}: {err}", err


def run_distributed(method_spec: str, cfg: Any, options: Mapping[str, Any] | None = None,
                    hooks: Sequence[Any] = (), console: Any = None) -> Any:
    """Evaluate this rank's shard of the run ``cfg``; on rank 0 also merge into ``cfg.out``.

    Returns the merged Results on rank 0 and None on the other ranks."""
    import torch.distributed as dist

    env = torchrun_env()
    if env is None:
        raise BenchError("--distributed needs the environment torchrun sets (RANK, WORLD_SIZE)",
                         "launch: torchrun --nproc-per-node G -m deepnetsbench eval ...")
    shard = Shard(env.rank + 1, env.world_size)
    device = rank_device(cfg.device, env.local_rank)
    rank_cfg = replace(cfg, device=device, out=shard_out(cfg.out, shard),
                       progress=cfg.progress and env.rank == 0)
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=WAIT_TIMEOUT)
    try:
        # Rank 0 opens the inputs first, so that shared files are created once.
        plan, why, err = _outcome(lambda: plan_shard(rank_cfg, shard)) if env.rank == 0 else (
            None, None, None)
        dist.barrier()
        if env.rank != 0:
            plan, why, err = _outcome(lambda: plan_shard(rank_cfg, shard))
        if why is None:
            _, why, err = _outcome(lambda: evaluate_shard(method_spec, rank_cfg, shard, options,
                                                          hooks, console, plan))
        reports: list[Any] = [None] * env.world_size
        dist.all_gather_object(reports, why)
        if err is not None:
            raise err
        failed = [(r, msg) for r, msg in enumerate(reports) if msg is not None]
        merged = None
        if env.rank == 0:
            if failed:
                r, msg = failed[0]
                raise BenchError(f"rank {r} (shard {r + 1}/{env.world_size}) failed: {msg}",
                                 "fix it and re-run the same command (finished shards resume)")
            paths = [shard_out(cfg.out, Shard(k, env.world_size))
                     for k in range(1, env.world_size + 1)]
            merged, _ = merge_files(paths, cfg.out)
        return merged
    finally:
        dist.destroy_process_group()


def evaluate_split(method_spec: str, cfg: Any, options: Mapping[str, Any] | None = None,
                   hooks: Sequence[Any] = (), shard: str | None = None,
                   distributed: bool = False, default_out: bool = False) -> Any:
    """What ``eval --shard K/N`` or ``eval`` under torchrun/``--distributed`` runs.

    With ``default_out`` (no ``--out`` given) a shard writes ``<default>-shardKofN.json``
    (``cfg.out`` is set to it, for the caller's report). Returns the Results to report, or
    None on a torchrun rank other than 0."""
    if shard and wants_distributed(distributed):
        raise BenchError("--shard and torchrun/--distributed both split the run",
                         "use one of them: under torchrun every rank takes its own shard")
    if shard:
        part = Shard.parse(shard)
        if default_out:
            cfg.out = shard_out(cfg.out, part)
        return evaluate_shard(method_spec, cfg, part, options, hooks)
    return run_distributed(method_spec, cfg, options, hooks)
