"""PudNet as an evaluator method: ``--method baselines/pudnet/method.py --method-opt ckpt=...``.

PudNet reads the episode's support images (``task.support``), so it runs on the episode
suites (``episodes-intra``, ``episodes-inter``) only, for the target it was trained for.
The classifier's output c is generated from the support images labelled c, i.e. the
episode's c-th class: the label order is the episode's class order.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deepnetsbench.eval.methods import MethodBase, MethodMeta, Task

URL = "baselines/pudnet/method.py"  # shipped with the suite: its code is this file
PAPER = "https://arxiv.org/abs/2310.11862"  # Wang et al., Learning to Generate Parameters ...


class Method(MethodBase):
    """Predict all target parameters from the support set in one forward pass."""

    def __init__(self, ckpt: str | None = None, support_limit: int | None = None):
        from baselines.pudnet.train import load_checkpoint

        if not ckpt:
            raise ValueError("PudNet needs a checkpoint: pass --method-opt ckpt=PATH")
        self.net, state = load_checkpoint(ckpt, "cpu")
        self.support_limit = support_limit
        self.target = self.net.config.target
        self.meta = MethodMeta(
            name="pudnet", version="0.1", url=URL, num_params=self.net.num_params(),
            trained_on=(f"{state['suite_kind']} train episodes of {state['source']} "
                        f"({state['suite_file']}, sha256 {state['suite_sha256'][:12]}), "
                        f"{state['step']} steps x {state['settings']['meta_batch']} episodes, "
                        f"{state['elapsed_s']:.0f} s on {state['device']}"),
            description=f"PudNet reference baseline for {self.target} "
                        f"(checkpoint {Path(ckpt).name})",
            training_budget=(f"{state['elapsed_s'] / 60:.0f} min on {state['device']}, "
                             f"{state['step']} steps"),
            paper=PAPER)
        self.expected = {n: tuple(p.shape) for n, p in self._template(10).named_parameters()}

    def _template(self, num_classes: int) -> nn.Module:
        from deepnetsbench.episodes.targets import build_target

        return build_target(self.target, num_classes, self.net.config.image_size)

    def setup(self, device: torch.device) -> None:
        self.net.to(device).eval()

    def predict(self, model: nn.Module, task: Task) -> dict[str, torch.Tensor]:
        if task.support is None:
            raise ValueError("PudNet predicts from a support set: run it on an episode suite "
                             "(--suite episodes-intra or episodes-inter)")
        got = {n: tuple(p.shape) for n, p in model.named_parameters()}
        if got.keys() != self.expected.keys():
            raise ValueError(f"this checkpoint predicts {self.target} parameters; the task's "
                             "network is a different architecture (pass the matching target)")
        x, y = task.support
        if self.support_limit:
            x, y = x[: self.support_limit], y[: self.support_limit]
        return self.net.predict(x.to(task.device), y.to(task.device), task.num_classes)
