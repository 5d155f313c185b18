"""GHN-2: a graph hypernetwork that predicts all parameters of a network from its graph.

Pipeline (Knyazev et al., 2021), all sizes in :class:`GHN2Config`:

1. node features: a learned embedding of the node type (15 types) plus a shape encoding,
   four look-ups (out channels, in channels, kernel height, kernel width; large values are
   bucketed, see :func:`baselines.ghn2.batch.channel_bucket`) concatenated to ``hid`` dims;
2. a gated GNN (:mod:`baselines.ghn2.gnn`): one forward and one backward sweep over the
   DAG with a shared GRU cell, messages from direct neighbours and from virtual-edge
   neighbours (up to ``s_max`` hops, divided by the distance);
3. LayerNorm of the node states;
4. the decoder (:mod:`baselines.ghn2.decoder`).

``predict_params`` is differentiable (training calls the networks with
``torch.func.functional_call`` on its output); ``predict`` fills a model in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from baselines.ghn2.batch import CHANNEL_VOCAB, SPATIAL_VOCAB, GraphBatch
from baselines.ghn2.decoder import Decoder, ParamPlan, plan_params
from baselines.ghn2.gnn import GatedGNN
from deepnetsbench.errors import BenchError
from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.primitives import NODE_TYPES

__all__ = ["GHN2Config", "GHN2", "model_shapes"]


@dataclass
class GHN2Config:
    """Every size and switch of the hypernetwork. Defaults: the published CIFAR-10 model
    (~1.6 M parameters); ImageNet used ``hid=64`` (wider embeddings) and ``kernel=16``."""

    hid: int = 32  # node embedding / GNN state size
    num_classes: int = 10  # rows of the classifier head (larger heads are tiled)
    s_max: int = 50  # virtual edges up to this many hops
    virtual_edges: bool = True  # False: GHN-1
    gnn_sweeps: int = 1  # forward+backward sweep pairs
    layernorm: bool = True  # LayerNorm before decoding (False: GHN-1)
    normalize: bool = True  # per-operation normalisation of predictions (False: GHN-1)
    dec_channels: int = 128  # decoder: Linear(hid -> dec_channels * kernel^2)
    dec_mid: int = 256  # then 1x1 convs dec_channels -> dec_mid -> block^2
    block: int = 64  # predicted block: block x block x kernel x kernel
    kernel: int = 11  # s: 11 on CIFAR-10, 16 on ImageNet
    mlp_hid: int = 0  # hidden size of the message MLPs (0: hid)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GHN2Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BenchError(f"unknown GHN-2 config keys {unknown}",
                             "the checkpoint is from another version of baselines/ghn2")
        return cls(**d)


def model_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of ``model`` (shared parameters once, under their first name)."""
    seen, out = set(), {}
    for name, p in model.named_parameters():
        if id(p) not in seen:
            seen.add(id(p))
            out[name] = tuple(p.shape)
    return out


class GHN2(nn.Module):
    """The hypernetwork. ``GHN2(GHN2Config())``; see the module docstring."""

    def __init__(self, config: GHN2Config | None = None):
        super().__init__()
        self.config = config = config or GHN2Config()
        hid = config.hid
        if hid % 4:
            raise ValueError(f"hid must be a multiple of 4 (four shape embeddings), got {hid}")
        self.type_embed = nn.Embedding(len(NODE_TYPES), hid)
        q = hid // 4
        self.shape_embed = nn.ModuleList([
            nn.Embedding(CHANNEL_VOCAB, q), nn.Embedding(CHANNEL_VOCAB, q),
            nn.Embedding(SPATIAL_VOCAB, q), nn.Embedding(SPATIAL_VOCAB, q)])
        self.gnn = GatedGNN(hid, config.mlp_hid or hid, config.virtual_edges, config.gnn_sweeps)
        self.norm = nn.LayerNorm(hid) if config.layernorm else nn.Identity()
        self.decoder = Decoder(hid, config.dec_channels, config.dec_mid, config.block,
                               config.kernel, config.num_classes, config.normalize)
        self.last_missing: list[list[str]] = []

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.type_embed.weight.device

    # -- graph side ---------------------------------------------------------------------------
    def make_batch(self, graphs: Sequence[Graph], device: torch.device | str | None = None
                   ) -> GraphBatch:
        """Pack graphs for :meth:`encode` (cheap; training may build it in a worker)."""
        return GraphBatch(list(graphs), self.config.s_max, self.config.virtual_edges,
                          device or self.device)

    def embed(self, batch: GraphBatch) -> torch.Tensor:
        x = self.type_embed(batch.node_types)
        shape = torch.cat([emb(batch.shape_index[:, k]) for k, emb in enumerate(self.shape_embed)],
                          dim=1)
        return x + shape

    def encode(self, batch: GraphBatch) -> torch.Tensor:
        """Node states ``[N, hid]`` (LayerNorm'ed) of every node of the batch."""
        return self.norm(self.gnn(self.embed(batch), batch))

    # -- parameters ---------------------------------------------------------------------------
    def predict_params(self, graphs: Sequence[Graph],
                       shapes: Sequence[dict[str, tuple[int, ...]] | None] | None = None,
                       batch: GraphBatch | None = None) -> list[dict[str, torch.Tensor]]:
        """Differentiable prediction: one ``{name: tensor}`` per graph.

        ``shapes[g]`` is the target model's ``{name: shape}`` (:func:`model_shapes`); without
        it the graph's shapes are used. Tensors no node names are left out and listed in
        ``self.last_missing``."""
        graphs = list(graphs)
        shapes = list(shapes) if shapes is not None else [None] * len(graphs)
        if len(shapes) != len(graphs):
            raise ValueError(f"{len(graphs)} graphs but {len(shapes)} shape dicts")
        batch = batch or self.make_batch(graphs)
        plans = [plan_params(g, s) for g, s in zip(graphs, shapes)]
        self.last_missing = [p.missing for p in plans]
        h = self.encode(batch)
        return self.decoder.decode(h, plans, batch.offsets[:-1].tolist())

    def predict(self, models: nn.Module | Sequence[nn.Module],
                graphs: Graph | Sequence[Graph] | None = None, image_size: int = 32
                ) -> nn.Module | list[nn.Module]:
        """Fill every parameter of ``models`` in place (inference mode: no autograd; the
        parameters stay ordinary tensors, trainable afterwards) and return them.

        ``graphs``: their computational graphs (traced with ``graph_from_module`` at
        ``image_size`` when not given). Parameters no graph node names keep their value;
        ``self.last_missing`` lists them per model."""
        single = isinstance(models, nn.Module)
        models = [models] if single else list(models)
        if graphs is None:
            from deepnetsbench.graph.trace import graph_from_module

            graphs = [graph_from_module(m, image_size) for m in models]
        elif isinstance(graphs, Graph):
            graphs = [graphs]
        graphs = list(graphs)
        if len(graphs) != len(models):
            raise ValueError(f"{len(models)} models but {len(graphs)} graphs")
        self._fill(models, graphs)  # tracing (above) needs autograd; filling does not
        return models[0] if single else models

    @torch.inference_mode()
    def _fill(self, models: list[nn.Module], graphs: list[Graph]) -> None:
        plans: list[ParamPlan] = []
        outs = []
        for m, g in zip(models, graphs):
            params = {}
            seen = set()
            for name, p in m.named_parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params[name] = p
            plan = plan_params(g, {n: tuple(p.shape) for n, p in params.items()})
            if not plan.names and params:
                raise BenchError("the graph names none of the model's parameters",
                                 "pass the graph of this very model (graph_from_module(model))")
            plans.append(plan)
            outs.append({n: params[n].data for n in plan.names})
        self.last_missing = [p.missing for p in plans]
        batch = self.make_batch(graphs)
        h = self.encode(batch)
        self.decoder.decode(h, plans, batch.offsets[:-1].tolist(), outs=outs)

