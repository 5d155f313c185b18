"""GHN-2, GHN-1 and the MLP hypernetwork: graph hypernetworks that predict all parameters of
a network from its computational graph, as released with the paper (Knyazev et al., 2021).

Pipeline, all sizes in :class:`GHN2Config`:

1. node features: an embedding of the node type (15 types) plus the shape encoding
   (:mod:`baselines.ghn2.shapes`);
2. node updates: the gated GNN (GHN-2 with virtual edges, GHN-1 without) or a per-node MLP
   (:mod:`baselines.ghn2.gnn`);
3. LayerNorm of the node states (GHN-2, MLP);
4. the decoders and the per-operation normalisation (:mod:`baselines.ghn2.decoder`,
   :mod:`baselines.ghn2.plan`; GHN-1 does not normalise).

The module layout and parameter names are those of the released checkpoints, so their
``state_dict`` loads as it is (:func:`baselines.ghn2.checkpoint.load_ghn`).
``predict_params`` is differentiable (training calls the networks with
``torch.func.functional_call`` on its output); ``predict`` fills a model in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from baselines.ghn2.batch import GraphBatch
from baselines.ghn2.decoder import ConvDecoder, decode
from baselines.ghn2.gnn import MLP, GatedGNN, NodeMLP
from baselines.ghn2.plan import ParamPlan, plan_params
from baselines.ghn2.shapes import ShapeEncoder
from deepnetsbench.errors import BenchError
from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.primitives import NODE_TYPES

__all__ = ["GHN2Config", "GHN2", "model_shapes", "PRESETS"]

#: The released models: (hypernet, weight_norm, ve, layernorm) per name.
PRESETS = {"ghn2": ("gatedgnn", True, True, True), "ghn1": ("gatedgnn", False, False, False),
           "mlp": ("mlp", True, True, True)}
_DATASETS = {"cifar10": (10, 11), "imagenet": (1000, 16)}


@dataclass(frozen=True)
class GHN2Config:
    """The hypernetwork's architecture. Field names and meanings are those of the released
    checkpoints' ``config`` (plus ``s_max``, the virtual-edge cutoff the released code uses
    for ``ve`` models). Defaults: GHN-2 for CIFAR-10 (1,620,764 parameters)."""

    max_shape: tuple[int, int, int, int] = (64, 64, 11, 11)  # decoder block (out, in, S, S)
    num_classes: int = 10  # rows of the classifier heads (other class counts are tiled)
    hypernet: str = "gatedgnn"  # "gatedgnn" (GHN-1/2) or "mlp"
    decoder: str = "conv"
    weight_norm: bool = True  # per-operation normalisation (False: GHN-1)
    ve: bool = True  # virtual edges (False: GHN-1)
    layernorm: bool = True  # LayerNorm of node states (False: GHN-1)
    hid: int = 32  # node state size
    s_max: int = 50  # virtual edges up to this many hops

    def __post_init__(self):
        object.__setattr__(self, "max_shape", tuple(int(d) for d in self.max_shape))
        if len(self.max_shape) != 4:
            raise BenchError(f"max_shape must have 4 entries, got {self.max_shape}",
                             "pass (out, in, S, S), e.g. (64, 64, 11, 11)")
        if self.hypernet not in ("gatedgnn", "mlp"):
            raise BenchError(f"unknown hypernet {self.hypernet!r}", "use 'gatedgnn' or 'mlp'")
        if self.decoder != "conv":
            raise BenchError(f"decoder {self.decoder!r} is not implemented",
                             "the released GHNs use decoder='conv'")
        if self.hid % 4:
            raise BenchError(f"hid must be a multiple of 4 (four shape embeddings), got "
                             f"{self.hid}", "pass e.g. hid=32")

    @classmethod
    def preset(cls, name: str = "ghn2", dataset: str = "cifar10", **changes) -> GHN2Config:
        """A released model's configuration: ``name`` in ghn2/ghn1/mlp, ``dataset`` in
        cifar10/imagenet (1,000 classes, a 16 x 16 grid)."""
        if name not in PRESETS or dataset not in _DATASETS:
            raise BenchError(f"unknown GHN preset {name!r}/{dataset!r}",
                             f"use one of {sorted(PRESETS)} and {sorted(_DATASETS)}")
        hypernet, wn, ve, ln = PRESETS[name]
        classes, s = _DATASETS[dataset]
        base = cls(max_shape=(64, 64, s, s), num_classes=classes, hypernet=hypernet,
                   weight_norm=wn, ve=ve, layernorm=ln)
        return base.replace(**changes) if changes else base

    def replace(self, **changes) -> GHN2Config:
        return GHN2Config(**{**self.to_dict(), **changes})

    @property
    def uses_virtual_edges(self) -> bool:
        """Whether node updates read virtual edges (the MLP ignores edges altogether)."""
        return self.hypernet == "gatedgnn" and self.ve

    @property
    def name(self) -> str:
        for name, flags in PRESETS.items():
            if flags == (self.hypernet, self.weight_norm, self.ve, self.layernorm):
                return name
        return "ghn-custom"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["max_shape"] = list(self.max_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GHN2Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BenchError(f"unknown GHN config keys {unknown}",
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
    """The hypernetwork, ``GHN2(GHN2Config.preset("ghn2"))``; see the module docstring.
    (Submodules are created in the released order, so a seed gives the released init.)"""

    def __init__(self, config: GHN2Config | None = None):
        super().__init__()
        self.config = config = config or GHN2Config()
        hid = config.hid
        if config.layernorm:
            self.ln = nn.LayerNorm(hid)
        self.embed = nn.Embedding(len(NODE_TYPES), hid)
        self.shape_enc = ShapeEncoder(hid, config.num_classes, config.max_shape[3])
        self.gnn = GatedGNN(hid, config.ve) if config.hypernet == "gatedgnn" else NodeMLP(hid)
        self.decoder = ConvDecoder(hid, config.max_shape, config.num_classes)
        max_ch = max(config.max_shape[:2])
        self.decoder_1d = MLP(hid, (2 * hid, 2 * max_ch), last_relu=False)
        self.bias_class = nn.Sequential(nn.ReLU(), nn.Linear(max_ch, config.num_classes))
        self.last_missing: list[list[str]] = []

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    # -- graph side ---------------------------------------------------------------------------
    def make_batch(self, graphs: Sequence[Graph], device: torch.device | str | None = None
                   ) -> GraphBatch:
        """Pack graphs for :meth:`encode` (cheap; training may build it in a worker)."""
        cfg = self.config
        return GraphBatch(list(graphs), cfg.s_max, cfg.uses_virtual_edges, device or self.device,
                          edges=self.gnn.needs_edges)

    def embed_nodes(self, batch: GraphBatch, plans: Sequence[ParamPlan]) -> torch.Tensor:
        """Type embedding plus shape encoding (the plans know the target shapes)."""
        rows = self.shape_enc.codes.encode(np.concatenate([p.shapes4 for p in plans]))
        rows = torch.from_numpy(rows).to(self.device)
        return self.embed(batch.node_types) + self.shape_enc(rows)

    def encode(self, batch: GraphBatch, plans: Sequence[ParamPlan]) -> torch.Tensor:
        """Node states ``[N, hid]`` of every node of the batch, as the decoders read them."""
        x = self.gnn(self.embed_nodes(batch, plans), batch)
        return self.ln(x) if self.config.layernorm else x

    # -- parameters ---------------------------------------------------------------------------
    def predict_params(self, graphs: Sequence[Graph],
                       shapes: Sequence[dict[str, tuple[int, ...]] | None] | None = None,
                       batch: GraphBatch | None = None) -> list[dict[str, torch.Tensor]]:
        """Differentiable prediction: one ``{name: tensor}`` per graph.

        ``shapes[g]`` is the target model's ``{name: shape}`` (:func:`model_shapes`); without
        it the graph's shapes are used. Tensors no node matches are left out and listed in
        ``self.last_missing``."""
        graphs = list(graphs)
        shapes = list(shapes) if shapes is not None else [None] * len(graphs)
        if len(shapes) != len(graphs):
            raise ValueError(f"{len(graphs)} graphs but {len(shapes)} shape dicts")
        batch = batch or self.make_batch(graphs)
        plans = [plan_params(g, s) for g, s in zip(graphs, shapes)]
        self.last_missing = [p.missing for p in plans]
        h = self.encode(batch, plans)
        return decode(self, h, plans, batch.offsets[:-1].tolist())

    def predict(self, models: nn.Module | Sequence[nn.Module],
                graphs: Graph | Sequence[Graph] | None = None, image_size: int = 32
                ) -> nn.Module | list[nn.Module]:
        """Fill every parameter of ``models`` in place (inference mode: no autograd; the
        parameters stay ordinary tensors, trainable afterwards) and return them.

        ``graphs``: their computational graphs (traced with ``graph_from_module`` at
        ``image_size`` when not given). Parameters no graph node matches keep their value;
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
        h = self.encode(batch, plans)
        decode(self, h, plans, batch.offsets[:-1].tolist(), outs=outs)
