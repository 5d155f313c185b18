"""Fine-tuning protocol: k epochs from the predicted parameters vs the same from random init.

GHN-2 studied predicted parameters as an initialisation; GHN-3 reports "predicted init + 1
epoch of SGD". The fair comparison is the same training, same seed, same data order and
augmentation, started once from the predicted parameters and once from a random
initialisation. Both runs use the reference trainer and the accuracy protocol.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from deepnetsbench.errors import BenchError
from deepnetsbench.training.curve import Curve
from deepnetsbench.training.trainer import Budget, TrainConfig, train

__all__ = ["FinetuneResult", "finetune", "load_predicted", "random_init"]


@dataclass
class FinetuneResult:
    """Accuracies (percent) after ``epochs`` of training from predicted vs random init.

    ``initial_*``: the predicted parameters before any training (the time-0 point).
    ``gain_top1``: ``top1 - from_random_top1`` (positive: the prediction helped).
    """

    top1: float
    top5: float
    from_random_top1: float
    from_random_top5: float
    initial_top1: float
    initial_top5: float
    epochs: float
    curve: Curve
    random_curve: Curve

    @property
    def gain_top1(self) -> float:
        return self.top1 - self.from_random_top1

    def to_dict(self) -> dict[str, Any]:
        return {
            "top1": self.top1, "top5": self.top5,
            "from_random_top1": self.from_random_top1,
            "from_random_top5": self.from_random_top5,
            "initial_top1": self.initial_top1, "initial_top5": self.initial_top5,
            "epochs": self.epochs, "gain_top1": self.gain_top1,
            "curve": self.curve.to_dict(), "random_curve": self.random_curve.to_dict(),
        }


def load_predicted(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load predicted parameters into ``model``.

    Every parameter must be present (a prediction covers all parameters); buffers such as
    BatchNorm running statistics may be missing (they are not predicted).
    """
    result = model.load_state_dict(dict(state_dict), strict=False)
    param_names = {n for n, _ in model.named_parameters()}
    missing = [k for k in result.missing_keys if k in param_names]
    if missing or result.unexpected_keys:
        raise BenchError(
            f"predicted parameters do not match the model (missing {missing[:5]}, "
            f"unexpected {list(result.unexpected_keys)[:5]})",
            "predict a state dict with exactly the model's parameter names",
        )


def random_init(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` re-initialised with each module's ``reset_parameters``.

    Parameters owned by modules without ``reset_parameters`` keep their values; pass your
    own ``random_model`` factory to :func:`finetune` for such architectures.
    """
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in fresh.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    return fresh


def finetune(
    model: nn.Module,
    init_state_dict: Mapping[str, torch.Tensor] | None,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    epochs: float = 1,
    config: TrainConfig | None = None,
    device: str | torch.device = "cpu",
    random_model: Callable[[], nn.Module] | None = None,
    postprocess: Callable[[nn.Module], Any] | None = None,
    eval_every: float | None = None,
) -> FinetuneResult:
    """Train ``epochs`` from the predicted parameters and, identically, from random init.

    ``init_state_dict``: the predicted parameters (None: ``model`` already holds them).
    ``model`` itself is not modified; both runs train copies. ``random_model``: factory of
    the randomly initialised network (default: :func:`random_init` of ``model`` with
    ``config.seed``). ``postprocess``: applied to the predicted copy before training (e.g.
    ``lambda m: add_noise(m, 3e-5)``). ``eval_every``: evaluation interval in epochs for the
    recorded curves (None: only start and end).
    """
    config = config or TrainConfig()
    budget = Budget(epochs=epochs)
    if config.schedule_epochs is None:
        config = replace(config, schedule_epochs=float(epochs))

    predicted = copy.deepcopy(model)
    if init_state_dict is not None:
        load_predicted(predicted, init_state_dict)
    if postprocess is not None:
        postprocess(predicted)
    rand = random_model() if random_model is not None else random_init(model, config.seed)

    curve = train(predicted, train_x, train_y, test_x, test_y, config, device, budget,
                  eval_every=eval_every)
    random_curve = train(rand, train_x, train_y, test_x, test_y, config, device, budget,
                         eval_every=eval_every)
    first, last, rlast = curve.points[0], curve.final, random_curve.final
    return FinetuneResult(
        top1=last.top1, top5=last.top5,
        from_random_top1=rlast.top1, from_random_top5=rlast.top5,
        initial_top1=first.top1, initial_top5=first.top5,
        epochs=float(epochs), curve=curve, random_curve=random_curve,
    )
