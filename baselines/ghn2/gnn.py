"""The node-update networks of the GHNs: GHN-2's gated GNN, run as wavefronts, and the
MLP hypernetwork of the ablation.

Gated GNN: a sweep visits the nodes in dependency order; node ``v`` receives

    m_v = sum_{u -> v} MLP(h_u)  +  [ve] sum_{u ~> v, hops <= s_max} MLP_ve(h_u) / hops(u, v)

from its already-updated predecessors -- the direct edges enter *both* sums (with
``hops = 1`` in the second), as in the released model -- and is updated by one GRU cell
shared by every node and both sweeps: ``h_v = GRU(m_v, h_v)``. The backward sweep does the
same from successors in reverse order. Both message MLPs are ``Linear -> ReLU -> Linear ->
ReLU`` with a hidden layer of ``hid / 2`` (``hid`` for GHN-1, which has no virtual edges).

All nodes of one level (over all graphs of a batch) are updated in one GRU call; see
:mod:`baselines.ghn2.batch` for why this equals the node-by-node order. Messages are computed
once per node, right after its update, into a buffer ``[2 * position + kind, hid]`` (kind 0:
``MLP(h)``, kind 1: ``MLP_ve(h)``) that later levels gather from with one indexed read and a
batched weighted sum (a direct edge reads both kinds; padding has weight 0).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from baselines.ghn2.batch import GraphBatch, Sweep

__all__ = ["MLP", "GatedGNN", "NodeMLP"]


class MLP(nn.Module):
    """``Linear -> ReLU -> ... -> Linear [-> ReLU]`` as ``self.fc`` (the layout of the
    released checkpoints: linear layers at even indices)."""

    def __init__(self, in_features: int, sizes: tuple[int, ...], last_relu: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        for j, n in enumerate(sizes):
            layers.append(nn.Linear(in_features if j == 0 else sizes[j - 1], n))
            if j < len(sizes) - 1 or last_relu:
                layers.append(nn.ReLU())
        self.fc = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class NodeMLP(nn.Module):
    """The MLP hypernetwork: every node on its own, edges ignored."""

    needs_edges = False

    def __init__(self, hid: int):
        super().__init__()
        self.fc = MLP(hid, (hid, hid)).fc

    def forward(self, x: torch.Tensor, batch: GraphBatch | None = None) -> torch.Tensor:
        return self.fc(x)


class GatedGNN(nn.Module):
    needs_edges = True

    def __init__(self, hid: int, ve: bool = True):
        super().__init__()
        self.hid, self.ve = hid, ve
        self.mlp = MLP(hid, (hid // 2 if ve else hid, hid))
        self.mlp_ve = MLP(hid, (hid // 2, hid)) if ve else None
        self.gru = nn.GRUCell(hid, hid)

    def _message_fn(self):
        """``h [n, hid] -> [n, 2 * hid]``: per node ``[MLP(h) | MLP_ve(h)]`` (``[n, hid]``,
        ``MLP(h)`` only, without virtual edges). Both MLPs run as two matrix products (the
        second block-diagonal): few ops per level matter."""
        l1, l2 = self.mlp.fc[0], self.mlp.fc[2]
        if self.mlp_ve is None:
            w1, b1, w2, b2 = l1.weight, l1.bias, l2.weight, l2.bias
        else:
            v1, v2 = self.mlp_ve.fc[0], self.mlp_ve.fc[2]
            w1 = torch.cat([l1.weight, v1.weight])  # [k + k_ve, hid]
            b1 = torch.cat([l1.bias, v1.bias])
            w2 = torch.block_diag(l2.weight, v2.weight)  # [2 hid, k + k_ve]
            b2 = torch.cat([l2.bias, v2.bias])

        def messages(h: torch.Tensor) -> torch.Tensor:
            return F.relu(F.linear(F.relu(F.linear(h, w1, b1)), w2, b2))
        return messages

    def _sweep(self, x: torch.Tensor, sweep: Sweep, messages) -> torch.Tensor:
        """One sweep. Every node is updated once per sweep from its state before it, so the
        hidden-side GRU gates of all nodes are one matrix product up front; per level remain
        the gather, the input-side gates and the element-wise GRU update."""
        xs = x.index_select(0, sweep.order)
        n, hid = xs.shape
        gru = self.gru
        gh = F.linear(xs, gru.weight_hh, gru.bias_hh)  # [n, 3 hid]: r, z, n
        buf = xs.new_zeros(n, 2 * hid)  # row p: [direct | virtual] message of position p
        flat = buf.view(2 * n, hid)  # row 2p + kind, as the sweep's indices address it
        width = 2 * hid if self.mlp_ve is not None else hid
        weights = [w if w is None or w.dtype == xs.dtype else w.to(xs.dtype)
                   for w in sweep.weight]
        outs = []
        last = sweep.num_levels - 1
        # per-level views by one split each: slicing per level would make the backward
        # pass write a full-size gradient for every level (172 levels on 1,400 nodes)
        sizes = [e - s for s, e in sweep.bounds]
        gh_levels, xs_levels = gh.split(sizes), xs.split(sizes)
        for level, (s, e) in enumerate(sweep.bounds):
            idx = sweep.index[level]
            if idx is None:
                gi = gru.bias_ih.expand(e - s, -1)
            else:
                gathered = flat.index_select(0, idx.view(-1)).view(e - s, -1, hid)
                msg = torch.bmm(weights[level], gathered).squeeze(1)
                gi = F.linear(msg, gru.weight_ih, gru.bias_ih)
            g_h = gh_levels[level]
            rz = torch.sigmoid(gi[:, :2 * hid] + g_h[:, :2 * hid])
            cand = torch.tanh(torch.addcmul(gi[:, 2 * hid:], rz[:, :hid], g_h[:, 2 * hid:]))
            h = torch.lerp(cand, xs_levels[level], rz[:, hid:])  # (1 - z) * cand + z * h
            outs.append(h)
            if level < last:
                buf[s:e, :width] = messages(h)
        return torch.cat(outs).index_select(0, sweep.position)

    def forward(self, x: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        messages = self._message_fn()
        x = self._sweep(x, batch.forward_sweep, messages)
        return self._sweep(x, batch.backward_sweep, messages)
