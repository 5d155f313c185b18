"""GHN-2 as a deepnets-bench method plugin.

    deepnets-bench eval --method baselines/ghn2/method.py --split test
    deepnets-bench eval --method baselines/ghn2/method.py --method-opt ckpt=runs/ghn2/final.pt
    deepnets-bench eval --method baselines/ghn2/method.py --method-opt noise=3e-5 \\
        --method-opt orth=1 --method-opt start_layer=10

Options (``--method-opt key=value``):

* ``ckpt``: a checkpoint of :mod:`baselines.ghn2.train` or a released (official ppuda)
  checkpoint such as ``ghn2_cifar10.pt``, ``ghn1_imagenet.pt``, ``mlp_cifar10.pt`` -- GHN-2,
  GHN-1 or the MLP hypernetwork, whichever the file holds (default: the reference
  checkpoint ``baselines/ghn2/ckpt/ghn2_cifar10_cpu.pt`` when present); ``ckpt=random``
  uses an untrained GHN-2 (seed 0), for smoke tests only;
* ``noise`` (beta, e.g. 3e-5) and ``orth`` (0/1): the post-processing of the GHN-2
  fine-tuning study, applied to layers with index ``>= start_layer`` that have more than
  ``min_channels`` (64) output channels; noise first, then the orthogonal re-init (noise
  breaks the exact row repeats of channel tiling, which QR cannot orthogonalise);
* ``device``: run the GHN elsewhere than the evaluated network (default: the task's).

The graph is the task's (derived from the spec, or traced once per predefined model);
a model the graph does not describe is traced with ``graph_from_module``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from baselines.ghn2.checkpoint import OFFICIAL, describe, load_ghn
from baselines.ghn2.model import GHN2, GHN2Config
from deepnetsbench.errors import BenchError
from deepnetsbench.eval.methods import MethodBase, MethodMeta, Task
from deepnetsbench.graph.graph import Graph

__all__ = ["Method", "make_method", "DEFAULT_CKPT"]

DEFAULT_CKPT = Path(__file__).resolve().parent / "ckpt" / "ghn2_cifar10_cpu.pt"
URL = "baselines/ghn2/method.py"  # shipped with the suite: the code that ran is this file
PAPER = "https://arxiv.org/abs/2110.13100"  # Knyazev et al., NeurIPS 2021 (GHN-2, GHN-1, MLP)


def graph_matches(graph: Graph, model: nn.Module) -> bool:
    """Whether ``graph`` names only parameters of ``model``, with their shapes."""
    params = dict(model.named_parameters())
    named = 0
    for i, name in enumerate(graph.param_names):
        if name is None:
            continue
        p = params.get(name)
        if p is None:
            return False
        shape = graph.param_shape(i)
        if len(p.shape) <= 4 and tuple(p.shape) != shape:
            return False
        named += 1
    return named > 0 or not params


def training_budget(train: dict) -> str | None:
    """The compute a checkpoint of ours was trained with, as the leaderboard shows it
    (``"70 min on cpu, 6000 steps"``); None when the checkpoint does not record it."""
    elapsed = train.get("elapsed_s") if isinstance(train, dict) else None
    if not isinstance(elapsed, int | float):
        return None
    device = (train.get("config") or {}).get("device", "?")
    hours = elapsed / 3600
    took = f"{hours:.1f} h" if hours >= 2 else f"{elapsed / 60:.0f} min"
    steps = train.get("step")
    return f"{took} on {device}" + (f", {steps} steps" if isinstance(steps, int) else "")


class Method(MethodBase):
    """GHN-2, GHN-1 or the MLP hypernetwork (Knyazev et al., 2021), reimplemented in
    :mod:`baselines.ghn2`."""

    def __init__(self, ckpt: str | None = None, noise: float = 0.0, orth: bool = False,
                 start_layer: int = 0, min_channels: int = 64, device: str | None = None):
        self.noise, self.orth = float(noise), bool(orth)
        self.start_layer, self.min_channels = int(start_layer), int(min_channels)
        self.device_opt = device
        if self.noise < 0:
            raise BenchError(f"noise must be >= 0, got {noise}", "pass e.g. noise=3e-5")
        trained_on = budget = None
        if ckpt in ("random", "none"):
            torch.manual_seed(0)
            self.ghn = GHN2(GHN2Config())
            version, read = "1-untrained", "an untrained GHN-2 (seed 0)"
        else:
            path = Path(ckpt).expanduser() if ckpt else DEFAULT_CKPT
            if not path.is_file():
                raise BenchError(
                    f"GHN checkpoint {path} not found",
                    "train one (`python -m baselines.ghn2.train --out runs/ghn2`) and pass "
                    "--method-opt ckpt=runs/ghn2/final.pt, pass a released checkpoint "
                    "(ckpt=ghn2_cifar10.pt), or ckpt=random for a smoke test")
            self.ghn, info = load_ghn(path)
            read = f"{describe(info)} {path.name}"
            if info["format"] == OFFICIAL:
                trained_on = f"the official ppuda release ({path.name})"
                version = "official"
            else:
                archs, data = info.get("archs", {}), info.get("data", {})
                steps = info.get("train", {}).get("step")
                trained_on = (f"{archs.get('source', '?')} ({steps} steps), "
                              f"{data.get('dataset', '?')} {data.get('train_images', '?')} images")
                version = "2"
                budget = training_budget(info.get("train", {}))
        self.ghn.eval()
        post = []
        if self.noise:
            post.append(f"noise beta={self.noise:g}")
        if self.orth:
            post.append("orthogonal re-init")
        where = (f" (layers >= {self.start_layer}, > {self.min_channels} channels)"
                 if post else "")
        kind = self.ghn.config.name
        self.meta = MethodMeta(
            name=kind + ("+" + "+".join("noise" if p.startswith("noise") else "orth"
                                          for p in post) if post else ""),
            version=version,
            url=URL,
            num_params=self.ghn.num_params,
            trained_on=trained_on,
            training_budget=budget,
            paper=PAPER,
            description=f"{kind} graph hypernetwork, {read}"
                        + (f"; post-processing: {', '.join(post)}{where}" if post else ""),
        )

    def setup(self, device: torch.device) -> None:
        self.ghn.to(torch.device(self.device_opt) if self.device_opt else device)

    @torch.no_grad()
    def predict(self, model: nn.Module, task: Task) -> None:
        graph = None
        try:
            graph = task.graph
        except Exception:  # noqa: BLE001 - any failure: trace the model itself below
            graph = None
        if graph is None or not graph_matches(graph, model):
            from deepnetsbench.graph.trace import graph_from_module

            size = max(task.image_size, int(getattr(task.arch, "image_size", 0) or 0))
            graph = graph_from_module(model, size)
        self.ghn.predict(model, graph)
        if self.noise or self.orth:
            from deepnetsbench.training.postprocess import add_noise, orthogonal_reinit

            if self.noise:
                gen = torch.Generator().manual_seed(int(task.seed))
                add_noise(model, self.noise, self.min_channels, self.start_layer, gen)
            if self.orth:
                orthogonal_reinit(model, self.min_channels, self.start_layer)
        return None


def make_method(ckpt: str | None = None, noise: float = 0.0, orth: bool = False,
                start_layer: int = 0, min_channels: int = 64, device: str | None = None
                ) -> Method:
    """Factory used by the evaluator with the ``--method-opt`` values."""
    return Method(ckpt=ckpt, noise=noise, orth=orth, start_layer=start_layer,
                  min_channels=min_channels, device=device)
