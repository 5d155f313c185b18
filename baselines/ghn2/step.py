"""One GHN training step's forward and backward: predict the meta-batch, run every network
on the same image batch, back-propagate the mean loss into the GHN.

The loss is the mean over the meta-batch of each network's cross-entropy (label-smoothed,
``epsilon = 0.1``, on ImageNet), as in the released training code. Memory: each network
runs forward and backward on its own (its predicted tensors are detached leaves), then one
backward pass carries all their gradients into the GHN -- the same gradient as one big
backward, with one network's activations alive at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.ghn2.archs import Net
from baselines.ghn2.model import GHN2

__all__ = ["net_losses"]


def net_losses(ghn: GHN2, nets: list[Net], x: torch.Tensor, y: torch.Tensor,
               amp: bool = False, channels_last: bool = True, label_smoothing: float = 0.0,
               meta_batch: int | None = None, seeds: list[int] | None = None
               ) -> tuple[torch.Tensor, list[float], list[float]]:
    """Predict, run every net, back-propagate into the GHN. Returns (mean loss, per-net
    losses, per-net accuracies); gradients are left in ``ghn``'s ``.grad``.

    ``meta_batch``: the number of nets the mean runs over (default ``len(nets)``; a rank of
    a distributed run passes the global count, so that summing ranks' gradients gives the
    gradient of the global mean). ``amp``: the networks under bf16 autocast (on any
    device; the GHN stays float32). ``seeds``: one per net, for its dropout masks (drawn from
    a forked RNG, so that a net's masks depend on its seed only -- not on which rank runs
    it, nor on what ran before). ``channels_last`` runs the networks on NHWC images: the
    same result, and oneDNN's convolutions (depthwise ones above all) are ~1.3x faster per
    CPU step that way."""
    total = meta_batch or len(nets)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    preds = ghn.predict_params([n.graph for n in nets], [n.shapes for n in nets])
    leaves, grads = [], []
    losses, accs = [], []
    devices = [x.device] if x.device.type == "cuda" else []
    for j, (net, params) in enumerate(zip(nets, preds)):  # dead parameters are never run
        detached = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        with torch.random.fork_rng(devices=devices, enabled=seeds is not None):
            if seeds is not None:
                torch.manual_seed(seeds[j])
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16,
                                enabled=amp):
                logits = torch.func.functional_call(net.model, detached, (x,))
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        (loss / total).backward()
        losses.append(float(loss.detach()))
        accs.append(float((logits.detach().argmax(1) == y).float().mean()))
        for k, v in params.items():
            g = detached[k].grad
            if g is not None:
                leaves.append(v)
                grads.append(g)
    if leaves:
        torch.autograd.backward(leaves, grads)
    return torch.tensor(sum(losses) / max(1, len(losses))), losses, accs
