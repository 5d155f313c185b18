"""PudNet: predict every parameter of a fixed target network from an episode's images.

Three parts, one forward pass (our implementation of the published design; see
docs/baselines.md for what is ours):

1. **Dataset encoder.** Strided convolutions embed each support image; embeddings are
   averaged per class (class-conditioned) and the class means are combined (their mean and
   spread) into one dataset context. Without class conditioning the context is the plain
   mean over the support set.
2. **Adaptive hyper-recurrent unit.** One GRU cell with shared weights steps once per
   target layer (a module owning parameters, in module order); its input is a learned
   embedding of the layer plus the dataset context, its initial state a projection of the
   context. The state after step t describes layer t for this dataset.
3. **Per-layer generators.** Conv (and hidden linear) weights are generated in chunks of
   ``chunk x chunk x kh x kw``: a decoder shared by all layers with the same kernel size
   maps (state + chunk row/column embeddings) to a rank-``rank`` block, blocks are tiled
   and sliced to the layer's shape, and the result is rescaled to the fan-in variance
   ``beta / fan_in`` (beta = 2 before ReLU) times a learned per-layer gain. BatchNorm
   weights/biases come from small per-layer heads (``2 sigmoid(p / 2)``, ``tanh(p / 5)``).
   The classifier's row c and bias c are generated from the state and the embedding of
   the episode's class c, so output c *is* the episode's c-th class (label order =
   the episode's class order) for any number of classes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from deepnetsbench.episodes.targets import build_target

__all__ = ["LayerSpec", "PudNet", "PudNetConfig", "layer_specs", "prepare_template"]


@dataclass
class PudNetConfig:
    """Architecture of the predictor (stored in checkpoints)."""

    target: str = "convnet4"
    image_size: int = 32
    hidden: int = 128  # GRU state size
    embed: int = 128  # image / class embedding size
    enc_channels: tuple[int, ...] = (32, 64, 128)
    chunk: int = 64  # side of the generated weight blocks
    rank: int = 16  # rank of each generated block
    class_conditioned: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["enc_channels"] = list(self.enc_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PudNetConfig:
        d = dict(d)
        d["enc_channels"] = tuple(d.get("enc_channels", cls.enc_channels))
        return cls(**d)


@dataclass
class LayerSpec:
    """One step of the recurrent unit: a target module and the tensors it owns."""

    prefix: str
    kind: str  # "conv", "linear", "norm", "classifier"
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)
    relu_after: bool = True

    def qualified(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


def layer_specs(model: nn.Module) -> list[LayerSpec]:
    """The parameter-owning modules of ``model`` in module order; the last Linear is the
    classifier. Anything but conv/linear/norm layers is refused (the targets have none)."""
    specs: list[LayerSpec] = []
    for prefix, module in model.named_modules():
        own = {n: tuple(p.shape) for n, p in module.named_parameters(recurse=False)}
        if not own:
            continue
        if isinstance(module, nn.Conv2d):
            if module.groups != 1:
                raise ValueError(f"{prefix}: grouped convolutions are not supported")
            kind = "conv"
        elif isinstance(module, nn.Linear):
            kind = "linear"
        elif isinstance(module, _NORMS):
            kind = "norm"
        else:
            raise ValueError(f"{prefix}: {type(module).__name__} parameters are not supported")
        specs.append(LayerSpec(prefix, kind, own))
    linears = [s for s in specs if s.kind == "linear"]
    if not linears or linears[-1] is not specs[-1]:
        raise ValueError("the target must end with a Linear classifier")
    specs[-1].kind = "classifier"
    specs[-1].relu_after = False
    return specs


def prepare_template(model: nn.Module) -> nn.Module:
    """Drop BatchNorm running statistics so that ``functional_call`` always normalises with
    batch statistics (the evaluation protocol) and never writes buffers."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase):
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
    return model.train()


class DatasetEncoder(nn.Module):
    """Strided convs -> global average -> linear: one embedding per image."""

    def __init__(self, channels: tuple[int, ...], embed: int, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for c in channels:
            layers += [nn.Conv2d(cin, c, 3, stride=2, padding=1), nn.GroupNorm(min(8, c), c),
                       nn.ReLU(inplace=True)]
            cin = c
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(cin, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.convs(x).mean(dim=(2, 3)))


class ChunkDecoder(nn.Module):
    """(state + block position) -> a rank-r ``chunk x chunk x kh x kw`` block."""

    def __init__(self, hidden: int, chunk: int, rank: int, kh: int, kw: int, max_blocks: int):
        super().__init__()
        self.chunk, self.rank, self.kh, self.kw = chunk, rank, kh, kw
        self.rows = nn.Embedding(max_blocks, hidden)
        self.cols = nn.Embedding(max_blocks, hidden)
        nn.init.normal_(self.rows.weight, std=0.1)
        nn.init.normal_(self.cols.weight, std=0.1)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        self.left = nn.Linear(hidden, chunk * rank)
        self.right = nn.Linear(hidden, rank * chunk * kh * kw)

    def forward(self, h: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """``h`` [B, H] -> weights [B, *shape] (shape = (out, in, kh, kw))."""
        out_c, in_c = shape[0], shape[1]
        c = self.chunk
        gi, gj = math.ceil(out_c / c), math.ceil(in_c / c)
        ii = torch.arange(gi, device=h.device).repeat_interleave(gj)
        jj = torch.arange(gj, device=h.device).repeat(gi)
        z = h[:, None, :] + self.rows(ii)[None] + self.cols(jj)[None]  # [B, nb, H]
        z = self.mlp(z)
        b, nb = z.shape[:2]
        left = self.left(z).view(b, nb, c, self.rank)
        right = self.right(z).view(b, nb, self.rank, c * self.kh * self.kw)
        blocks = (left @ right).view(b, gi, gj, c, c, self.kh, self.kw)
        w = blocks.permute(0, 1, 3, 2, 4, 5, 6).reshape(b, gi * c, gj * c, self.kh, self.kw)
        return w[:, :out_c, :in_c]


class PudNet(nn.Module):
    """The predictor for one target architecture (any number of episode classes)."""

    def __init__(self, config: PudNetConfig):
        super().__init__()
        self.config = config
        template = build_target(config.target, num_classes=10, image_size=config.image_size)
        self.specs = layer_specs(template)
        hid, emb = config.hidden, config.embed
        self.encoder = DatasetEncoder(tuple(config.enc_channels), emb)
        self.context = nn.Sequential(nn.Linear(2 * emb, hid), nn.ReLU(inplace=True),
                                     nn.Linear(hid, hid))
        self.h0 = nn.Linear(hid, hid)
        self.layer_embed = nn.Embedding(len(self.specs), hid)
        nn.init.normal_(self.layer_embed.weight, std=0.5)
        self.gru = nn.GRUCell(hid, hid)
        self.log_gain = nn.Parameter(torch.zeros(len(self.specs)))
        kernels: dict[str, tuple[int, int]] = {}
        max_c = 1
        self.heads = nn.ModuleDict()
        for t, s in enumerate(self.specs):
            w = s.params.get("weight")
            if s.kind in ("conv", "linear"):
                kh, kw = (w[2], w[3]) if s.kind == "conv" else (1, 1)
                kernels[f"{kh}x{kw}"] = (kh, kw)
                max_c = max(max_c, w[0], w[1])
                if "bias" in s.params:
                    self.heads[f"b{t}"] = nn.Linear(hid, w[0])
            elif s.kind == "norm":
                for name, shape in s.params.items():
                    self.heads[f"{name[0]}{t}"] = nn.Linear(hid, shape[0])
            else:  # classifier: row c from (state, class embedding c)
                self.feat = w[1]
                self.heads["cls"] = nn.Sequential(nn.Linear(hid + emb, hid), nn.ReLU(inplace=True),
                                                  nn.Linear(hid, w[1] + 1))
        blocks = math.ceil(max_c / config.chunk)
        self.decoders = nn.ModuleDict({
            key: ChunkDecoder(hid, config.chunk, config.rank, kh, kw, blocks)
            for key, (kh, kw) in kernels.items()})
        for name, head in self.heads.items():  # start at the identity norm, zero biases
            if isinstance(head, nn.Linear) and name[0] in "wb":
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    # -- encoding -----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor, num_classes: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(dataset context [H], class embeddings [num_classes, D]) of one support set.

        A class without support images gets a zero embedding."""
        f = self.encoder(x)  # [N, D]
        sums = torch.zeros(num_classes, f.shape[1], device=f.device, dtype=f.dtype)
        sums.index_add_(0, y, f)
        counts = torch.bincount(y, minlength=num_classes).clamp_min(1).to(f.dtype)
        classes = sums / counts[:, None]
        if self.config.class_conditioned:
            pooled = torch.cat([classes.mean(0), classes.std(0, unbiased=False)])
        else:
            pooled = torch.cat([f.mean(0), f.std(0, unbiased=False)])
        return self.context(pooled), classes

    # -- generation ---------------------------------------------------------------------------
    def generate(self, ctx: torch.Tensor, classes: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Parameters for a batch of episodes: ``ctx`` [B, H], one class-embedding matrix
        per episode. Returns one state dict per episode."""
        b = ctx.shape[0]
        h = torch.tanh(self.h0(ctx))
        outs: list[dict[str, torch.Tensor]] = [{} for _ in range(b)]
        for t, s in enumerate(self.specs):
            x = self.layer_embed.weight[t][None].expand(b, -1) + ctx
            h = self.gru(x, h)
            gain = self.log_gain[t].exp()
            if s.kind in ("conv", "linear"):
                shape = s.params["weight"]
                full = shape if s.kind == "conv" else (*shape, 1, 1)
                w = self.decoders[f"{full[2]}x{full[3]}"](h, full)
                beta = 2.0 if s.relu_after else 1.0
                rms = w.pow(2).mean(dim=(1, 2, 3, 4), keepdim=True).add(1e-8).sqrt()
                w = w / rms * math.sqrt(beta / (full[1] * full[2] * full[3])) * gain
                w = w.reshape(b, *shape)
                bias = self.heads[f"b{t}"](h) if "bias" in s.params else None
                for i in range(b):
                    outs[i][s.qualified("weight")] = w[i]
                    if bias is not None:
                        outs[i][s.qualified("bias")] = torch.tanh(0.2 * bias[i])
            elif s.kind == "norm":
                for name in s.params:
                    p = self.heads[f"{name[0]}{t}"](h)
                    p = 2 * torch.sigmoid(0.5 * p) if name == "weight" else torch.tanh(0.2 * p)
                    for i in range(b):
                        outs[i][s.qualified(name)] = p[i]
            else:
                for i in range(b):
                    n = classes[i].shape[0]
                    z = torch.cat([h[i][None].expand(n, -1), classes[i]], dim=1)
                    raw = self.heads["cls"](z)
                    w, bias = raw[:, :-1], raw[:, -1]
                    rms = w.pow(2).mean().add(1e-8).sqrt()
                    outs[i][s.qualified("weight")] = w / rms * math.sqrt(1.0 / self.feat) * gain
                    outs[i][s.qualified("bias")] = 0.1 * bias
        return outs

    def forward(self, supports: list[tuple[torch.Tensor, torch.Tensor, int]]
                ) -> list[dict[str, torch.Tensor]]:
        """``supports``: (images, episode labels, number of classes) per episode."""
        enc = [self.encode(x, y, n) for x, y, n in supports]
        ctx = torch.stack([c for c, _ in enc])
        return self.generate(ctx, [cls for _, cls in enc])

    @torch.no_grad()
    def predict(self, x: torch.Tensor, y: torch.Tensor, num_classes: int
                ) -> dict[str, torch.Tensor]:
        """All parameters of the target for one episode (labels: positions in its classes)."""
        was = self.training
        self.eval()
        try:
            return self([(x, y, num_classes)])[0]
        finally:
            self.train(was)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
