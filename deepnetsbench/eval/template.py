"""The file ``deepnets-bench new-method`` writes: a working method to start from."""

from __future__ import annotations

import os
from pathlib import Path

from deepnetsbench.errors import BenchError

__all__ = ["TEMPLATE", "write_template"]

TEMPLATE = '''\
"""A parameter-prediction method for deepnets-bench.

Try it first on a tiny mock run (seconds on a CPU, no download):

    deepnets-bench eval --mock --method {filename}

then on the real suite:

    deepnets-bench eval --method {filename} --split test --dataset cifar10 --device cuda

The protocol (docs/protocol.md), in short:
  * This file runs in a worker process of its own. For every architecture of the split it
    builds the network for the dataset (its classes and resolution), moves it to the
    device and calls predict(model, task); the evaluator copies the returned tensors, by
    name, into a network it built itself and scores that one.
  * Only predict() is timed (device-synchronised, in the worker) and limited by
    --time-limit (default 300 s per architecture: an overrunning worker is killed).
  * The prediction must give every parameter of the model with its exact shape, finite.
    BatchNorm running statistics are not needed: the network is scored with the statistics
    of each test batch (batch size 64), top-1 and top-5 on the official test images.
  * An exception, NaN/Inf, a wrong shape, a crash or a timeout fails that architecture only.
  * predict() gets the architecture, never the test set. To step through it with a
    debugger, add --in-process (such results cannot be submitted).

Options given as --method-opt key=value arrive as keyword arguments of Method.__init__.
"""

import math

import torch

from deepnetsbench.eval.methods import MethodBase, MethodMeta, Task


class Method(MethodBase):
    # Shown on the leaderboard and stored in the results file.
    meta = MethodMeta(
        name="my-method",
        version="0.1",
        url="",                  # public code link
        num_params=0,            # parameters of your predictor (e.g. a GHN: ~1.6 M)
        trained_on=None,         # e.g. "DeepNets-1M train, CIFAR-10 train"
        training_budget=None,    # e.g. "70 min on 4 CPU cores, 6000 steps" (shown with scores)
        paper="",                # http(s) link to your paper
        description="Kaiming-normal weights (template: replace with your predictor)",
    )

    def __init__(self, gain: float = math.sqrt(2.0)):
        # Keyword arguments come from --method-opt (e.g. --method-opt gain=1.0).
        self.gain = float(gain)
        self.device = torch.device("cpu")

    def setup(self, device: torch.device) -> None:
        """Called once before the first architecture: load a checkpoint, move to device."""
        self.device = device

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, task: Task) -> dict[str, torch.Tensor] | None:
        """Return {{parameter name: tensor}} for every parameter of ``model`` -- or fill
        ``model`` in place and return None.

        ``task`` tells you about the target:
          task.arch.name, task.arch.index   e.g. "test/00042", 42
          task.arch.spec                    the ArchSpec (genotype, width; None for
                                            predefined torchvision models)
          task.graph                        its computational graph (built lazily, on first
                                            use): node_types, shapes, edges, param_names
          task.num_classes, task.image_size, task.classes, task.dataset
          task.device                       where the model is (and your output should be)
          task.seed                         use it for any randomness (reproducible runs)
          task.support                      None here; dataset-episode suites pass the
                                            episode's training images and labels
        """
        g = torch.Generator(device=task.device).manual_seed(task.seed)
        out = {{}}
        for name, p in model.named_parameters():
            if p.dim() >= 2:  # conv / linear weights: [out, in, *kernel]
                fan_in = p[0].numel()
                out[name] = torch.randn(p.shape, generator=g, device=p.device) * (
                    self.gain / math.sqrt(fan_in))
            elif name.endswith("weight"):  # norm weights
                out[name] = torch.ones_like(p)
            else:  # biases
                out[name] = torch.zeros_like(p)
        return out
'''


def write_template(path: str | os.PathLike, force: bool = False) -> Path:
    """Write the template to ``path`` (refusing to overwrite unless ``force``)."""
    path = Path(path)
    if path.suffix != ".py":
        raise BenchError(f"{path} is not a .py file", "give a name ending in .py, e.g. mine.py")
    if path.exists() and not force:
        raise BenchError(f"{path} already exists", "pick another name or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    from deepnetsbench.results import atomic_write_text

    atomic_write_text(path, TEMPLATE.format(filename=path.name))
    return path
