"""GHN-2's gated GNN, run as wavefronts over topological levels.

A sweep visits the nodes in dependency order; node ``v`` receives

    m_v = sum_{u -> v} MLP(h_u) + sum_{u ~> v, 1 < hops <= s_max} MLP_sp(h_u) / hops(u, v)

from its already-updated predecessors (direct edges, then virtual edges), and is updated by
one GRU cell shared by every node and both sweeps: ``h_v = GRU(m_v, h_v)``. The backward
sweep does the same from successors in reverse order. All nodes of one level (over all
graphs of a batch) are updated in one GRU call; see :mod:`baselines.ghn2.batch` for why
this equals the node-by-node order.

Messages are computed once per node, right after its update, into a buffer
``[2 * position + kind, hid]`` that later levels gather from with one indexed read and a
batched weighted sum (padding has weight 0).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from baselines.ghn2.batch import GraphBatch, Sweep

__all__ = ["GatedGNN"]


class GatedGNN(nn.Module):
    def __init__(self, hid: int, mlp_hid: int | None = None, virtual_edges: bool = True,
                 sweeps: int = 1):
        super().__init__()
        mlp_hid = mlp_hid or hid
        self.hid, self.virtual_edges, self.sweeps = hid, virtual_edges, sweeps
        self.mlp = nn.Sequential(nn.Linear(hid, mlp_hid), nn.ReLU(), nn.Linear(mlp_hid, hid))
        self.mlp_sp = (nn.Sequential(nn.Linear(hid, mlp_hid), nn.ReLU(), nn.Linear(mlp_hid, hid))
                       if virtual_edges else None)
        self.gru = nn.GRUCell(hid, hid)

    def _message_fn(self):
        """``h [n, hid] -> [n, 2 * hid]``: per node its direct message (first ``hid``) and
        its virtual-edge message (last ``hid``; zeros without virtual edges). Both MLPs run
        as two matrix products (the second block-diagonal): few ops per level matter."""
        l1, l2 = self.mlp[0], self.mlp[2]
        if self.mlp_sp is None:
            w1, b1 = l1.weight, l1.bias
            w2 = torch.cat([l2.weight, torch.zeros_like(l2.weight)])
            b2 = torch.cat([l2.bias, torch.zeros_like(l2.bias)])
        else:
            v1, v2 = self.mlp_sp[0], self.mlp_sp[2]
            w1 = torch.cat([l1.weight, v1.weight])  # [2k, hid]
            b1 = torch.cat([l1.bias, v1.bias])
            w2 = torch.block_diag(l2.weight, v2.weight)  # [2 hid, 2k]
            b2 = torch.cat([l2.bias, v2.bias])

        def messages(h: torch.Tensor) -> torch.Tensor:
            return F.linear(F.relu(F.linear(h, w1, b1)), w2, b2)
        return messages

    def _sweep(self, x: torch.Tensor, sweep: Sweep, messages) -> torch.Tensor:
        xs = x.index_select(0, sweep.order)
        n, hid = xs.shape
        buf = xs.new_zeros(n, 2 * hid)  # row p: [direct | virtual] message of position p
        flat = buf.view(2 * n, hid)  # row 2p + kind, as the sweep's indices address it
        outs = []
        last = sweep.num_levels - 1
        for level, (s, e) in enumerate(sweep.bounds):
            idx = sweep.index[level]
            if idx is None:
                msg = xs.new_zeros(e - s, hid)
            else:
                gathered = flat.index_select(0, idx.view(-1)).view(e - s, -1, hid)
                msg = torch.bmm(sweep.weight[level].to(gathered.dtype), gathered).squeeze(1)
            h = self.gru(msg, xs[s:e])
            outs.append(h)
            if level < last:
                buf[s:e] = messages(h)
        return torch.cat(outs).index_select(0, sweep.position)

    def forward(self, x: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        messages = self._message_fn()
        for _ in range(self.sweeps):
            x = self._sweep(x, batch.forward_sweep, messages)
            x = self._sweep(x, batch.backward_sweep, messages)
        return x
