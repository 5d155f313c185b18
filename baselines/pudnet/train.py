"""Train PudNet on the training episodes of an episode suite.

Each step draws a meta-batch of training episodes (deterministically from ``seed`` and the
step number, so a resumed run sees the same episodes), predicts the target's parameters
from each episode's support images, runs the target with them
(``torch.func.functional_call``, BatchNorm on batch statistics as in the evaluation) on the
episode's query images, and minimises the mean cross-entropy. Adam, gradient-norm
clipping, checkpoints (atomic) every ``ckpt_every`` steps and at the end; re-running the
same command resumes from the checkpoint.

    python -m baselines.pudnet.train --suite-file runs/root/episodes/episodes_intra.h5 \\
        --target convnet4 --device cpu --time-budget 600 --ckpt runs/pudnet/intra.pt

``--time-budget`` counts training steps (data preparation included; validation and
checkpoint writes excluded) and is summed over resumed runs.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from baselines.pudnet.model import PudNet, PudNetConfig, prepare_template
from deepnetsbench.episodes.suite import Episode, EpisodeSuite
from deepnetsbench.episodes.targets import build_target
from deepnetsbench.errors import BenchError
from deepnetsbench.options import root_option

__all__ = ["CKPT_FORMAT", "TrainSettings", "evaluate_split", "load_checkpoint",
           "predicted_model", "save_checkpoint", "train_pudnet"]

CKPT_FORMAT = "deepnets-bench/pudnet-ckpt/1"


@dataclass
class TrainSettings:
    """Everything a training run depends on (recorded in the checkpoint)."""

    target: str = "convnet4"
    meta_batch: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-5
    grad_clip: float = 5.0
    support_per_class: int | None = 20  # support images per class seen in training (None: all)
    query_per_class: int | None = 20  # query images per class per step (None: all)
    seed: int = 0
    amp: bool = False  # bf16 autocast of the target's forward pass, CUDA only

    def validate(self) -> None:
        if self.meta_batch < 1 or self.lr <= 0 or self.grad_clip <= 0:
            raise BenchError("meta_batch >= 1, lr > 0 and grad_clip > 0 are required",
                             "fix --meta-batch/--lr/--grad-clip")
        for name in ("support_per_class", "query_per_class"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise BenchError(f"--{name.replace('_', '-')} must be >= 1", "or omit it")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` to a temp file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save({"format": CKPT_FORMAT, **state}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                    ) -> tuple[PudNet, dict[str, Any]]:
    """The trained predictor (on ``device``, eval mode) and the checkpoint dict."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"PudNet checkpoint {path} not found",
                         "train one with `python -m baselines.pudnet.train` or fix the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling problem is a bad file
        raise BenchError(f"{path} is not a readable PudNet checkpoint ({type(err).__name__})",
                         "re-train it or restore the file") from None
    if not isinstance(state, dict) or state.get("format") != CKPT_FORMAT:
        raise BenchError(f"{path} is not a PudNet checkpoint of format {CKPT_FORMAT}",
                         "re-train it with this version")
    net = PudNet(PudNetConfig.from_dict(state["config"]))
    net.load_state_dict(state["model"])
    return net.to(device).eval(), state


# ----------------------------------------------------------------------------- evaluation


def predicted_model(net: PudNet, x: torch.Tensor, y: torch.Tensor, num_classes: int
                    ) -> torch.nn.Module:
    """A fresh target on ``x``'s device holding the parameters PudNet predicts."""
    params = net.predict(x, y, num_classes)
    model = build_target(net.config.target, num_classes, net.config.image_size).to(x.device)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])
    return model


def evaluate_split(net: PudNet, suite: EpisodeSuite, split: str = "val", limit: int = 5,
                   device: str | torch.device = "cpu") -> float:
    """Mean top-1 (percent) over the first ``limit`` episodes of ``split`` (the evaluation
    protocol: batch 64, BatchNorm batch statistics). For monitoring; the benchmark numbers
    come from the evaluator."""
    from deepnetsbench.eval.accuracy import evaluate_accuracy

    accs = []
    for i in range(min(limit, suite.num_episodes(split))):
        ep = suite.episode(split, i)
        t = suite.tensors(ep, device)
        model = predicted_model(net, t.support_x, t.support_y, ep.num_classes)
        accs.append(evaluate_accuracy(model, t.query_x, t.query_y, 64, device, "batch")[0])
    return float(np.mean(accs)) if accs else float("nan")


# ----------------------------------------------------------------------------- training


def _episode_batch(suite: EpisodeSuite, settings: TrainSettings, step: int,
                   device: torch.device) -> list[tuple[Episode, Any]]:
    n = suite.num_episodes("train")
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, step]))
    idx = rng.choice(n, min(settings.meta_batch, n), replace=False)
    out = []
    for i in idx:
        ep = suite.episode("train", int(i))
        s = None if settings.support_per_class is None else settings.support_per_class * ep.num_classes
        q = None if settings.query_per_class is None else settings.query_per_class * ep.num_classes
        out.append((ep, suite.tensors(ep, device, support_limit=s, query_limit=q)))
    return out


def train_pudnet(
    suite: EpisodeSuite,
    ckpt: str | os.PathLike,
    settings: TrainSettings | None = None,
    config: PudNetConfig | None = None,
    device: str = "cpu",
    max_steps: int | None = None,
    time_budget: float | None = None,
    ckpt_every: int = 50,
    val_every: int | None = 100,
    val_episodes: int = 5,
    log_every: int = 10,
    restart: bool = False,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Train (or resume) PudNet until ``max_steps`` or ``time_budget`` seconds; returns the
    final checkpoint dict (without tensors)."""
    from deepnetsbench.eval.accuracy import resolve_device

    if max_steps is None and time_budget is None:
        raise BenchError("no training budget", "pass --max-steps and/or --time-budget")
    settings = settings or TrainSettings()
    settings.validate()
    if settings.target not in suite.targets:
        raise BenchError(f"target {settings.target!r} is not declared by {suite.path.name}",
                         f"use one of {', '.join(suite.targets)}")
    if suite.num_episodes("train") == 0:
        raise BenchError(f"{suite.path.name} has no training episodes",
                         "rebuild it with --train-episodes > 0")
    config = config or PudNetConfig(target=settings.target, image_size=suite.image_size)
    if config.target != settings.target or config.image_size != suite.image_size:
        raise BenchError("the PudNet config does not match the target/suite image size",
                         "build PudNetConfig(target=..., image_size=suite.image_size)")
    dev = resolve_device(device)
    torch.manual_seed(settings.seed)
    net = PudNet(config).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    step, elapsed, history = 0, 0.0, []
    ckpt = Path(ckpt)
    if ckpt.exists() and not restart:
        _, state = load_checkpoint(ckpt)
        if state["config"] != config.to_dict() or state["settings"] != asdict(settings) \
                or state["suite_sha256"] != suite.sha256:
            raise BenchError(f"{ckpt} was trained with other settings or another suite",
                             "pass the same options to resume, --restart, or another --ckpt")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed, history = state["step"], state["elapsed_s"], state["history"]
        if log:
            log(f"resumed {ckpt} at step {step} ({elapsed:.0f} s trained)")
    templates: dict[int, torch.nn.Module] = {}
    amp = settings.amp and dev.type == "cuda"

    def state_dict() -> dict[str, Any]:
        return {"config": config.to_dict(), "settings": asdict(settings),
                "model": net.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "elapsed_s": elapsed, "history": history, "suite_sha256": suite.sha256,
                "suite_kind": suite.kind, "suite_file": suite.path.name,
                "source": suite.datasets[0]["name"], "device": str(dev),
                "num_params": net.num_params()}

    def done() -> bool:
        return (max_steps is not None and step >= max_steps) or (
            time_budget is not None and elapsed >= time_budget)

    losses: list[float] = []
    accs: list[float] = []
    net.train()
    try:
        while not done():
            _sync(dev)
            t0 = time.perf_counter()
            batch = _episode_batch(suite, settings, step, dev)
            supports = [(t.support_x, t.support_y, ep.num_classes) for ep, t in batch]
            params = net(supports)
            loss = torch.zeros((), device=dev)
            correct = total = 0
            for (ep, t), p in zip(batch, params):
                n = ep.num_classes
                if n not in templates:
                    templates[n] = prepare_template(
                        build_target(settings.target, n, suite.image_size)).to(dev)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    logits = functional_call(templates[n], p, (t.query_x,)).float()
                loss = loss + F.cross_entropy(logits, t.query_y) / len(batch)
                correct += int((logits.argmax(1) == t.query_y).sum())
                total += len(t.query_y)
            value = float(loss.detach())
            if not math.isfinite(value):  # before the update: the checkpoint stays sane
                raise BenchError(f"the training loss became {value} at step {step + 1}",
                                 "lower --lr or --grad-clip, or --restart")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), settings.grad_clip)
            opt.step()
            _sync(dev)
            elapsed += time.perf_counter() - t0
            step += 1
            losses.append(value)
            accs.append(100.0 * correct / max(1, total))
            if step % log_every == 0 or done():
                entry = {"step": step, "elapsed_s": round(elapsed, 2),
                         "loss": float(np.mean(losses)), "train_top1": float(np.mean(accs))}
                losses, accs = [], []
                if val_every and (step % val_every == 0 or done()) and \
                        suite.num_episodes("val"):
                    entry["val_top1"] = evaluate_split(net, suite, "val", val_episodes, dev)
                    net.train()
                history.append(entry)
                if log:
                    log(json.dumps(entry))
            if step % ckpt_every == 0:
                save_checkpoint(ckpt, state_dict())
    finally:
        save_checkpoint(ckpt, state_dict())  # also on Ctrl-C: nothing trained is lost
    final = state_dict()
    return {k: v for k, v in final.items() if k not in ("model", "optimizer")}


# ----------------------------------------------------------------------------- CLI


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--suite-file", default=None, help="Episode suite file (default: --suite's).")
@click.option("--suite", "kind", default="episodes-intra", show_default=True,
              type=click.Choice(["episodes-intra", "episodes-inter"]),
              help="Suite whose default file (under --root) is used without --suite-file.")
@root_option
@click.option("--target", default="convnet4", show_default=True,
              help="Target network whose parameters PudNet learns to predict.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:<i>.")
@click.option("--max-steps", type=int, default=None, help="Stop after N training steps.")
@click.option("--time-budget", type=float, default=None, help="Training seconds (total).")
@click.option("--meta-batch", type=int, default=4, show_default=True,
              help="Training episodes per step.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--weight-decay", type=float, default=1e-5, show_default=True,
              help="Adam weight decay.")
@click.option("--grad-clip", type=float, default=5.0, show_default=True,
              help="Gradient-norm clipping threshold.")
@click.option("--support-per-class", type=int, default=20, show_default=True,
              help="Support images per class used per training episode (0: all).")
@click.option("--query-per-class", type=int, default=20, show_default=True,
              help="Query images per class per training episode (0: all).")
@click.option("--hidden", type=int, default=128, show_default=True, help="GRU state size.")
@click.option("--rank", type=int, default=16, show_default=True,
              help="Rank of each generated weight block.")
@click.option("--chunk", type=int, default=64, show_default=True,
              help="Side of the generated weight blocks.")
@click.option("--no-class-conditioning", is_flag=True,
              help="Summarise the support set over all its images, not over per-class means.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the initialisation and the episode order.")
@click.option("--amp", is_flag=True, help="bf16 autocast of the target's forward (CUDA).")
@click.option("--ckpt", required=True, help="Checkpoint path (resumed when it exists).")
@click.option("--ckpt-every", type=int, default=50, show_default=True,
              help="Write the checkpoint every N steps (and at the end).")
@click.option("--val-every", type=int, default=100, show_default=True,
              help="Score validation episodes every N steps (0: never).")
@click.option("--val-episodes", type=int, default=5, show_default=True,
              help="Validation episodes scored each time.")
@click.option("--log-every", type=int, default=10, show_default=True,
              help="Print a log line every N steps.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--restart", is_flag=True, help="Ignore an existing checkpoint.")
def main(suite_file: str | None, kind: str, root: str | None, target: str, device: str,
         max_steps: int | None, time_budget: float | None, meta_batch: int, lr: float,
         weight_decay: float, grad_clip: float, support_per_class: int, query_per_class: int,
         hidden: int, rank: int, chunk: int, no_class_conditioning: bool, seed: int,
         amp: bool, ckpt: str, ckpt_every: int, val_every: int, val_episodes: int,
         log_every: int, threads: int | None, restart: bool) -> None:
    """Train PudNet on an episode suite's training episodes."""
    import sys

    if threads:
        torch.set_num_threads(threads)
    try:
        suite = EpisodeSuite(suite_file, kind=None if suite_file else kind, root=root)
        settings = TrainSettings(
            target=target, meta_batch=meta_batch, lr=lr, weight_decay=weight_decay,
            grad_clip=grad_clip, support_per_class=support_per_class or None,
            query_per_class=query_per_class or None, seed=seed, amp=amp)
        config = PudNetConfig(target=target, image_size=suite.image_size, hidden=hidden,
                              rank=rank, chunk=chunk,
                              class_conditioned=not no_class_conditioning)
        summary = train_pudnet(suite, ckpt, settings, config, device, max_steps, time_budget,
                               ckpt_every, val_every, val_episodes, log_every, restart)
    except BenchError as err:
        click.secho(f"error: {err.one_line()}", fg="red", err=True)
        sys.exit(2)
    click.echo(f"checkpoint {ckpt}: step {summary['step']}, {summary['elapsed_s']:.0f} s, "
               f"{summary['num_params']} parameters")


if __name__ == "__main__":
    main()
