"""The DeepNets-1M architecture sampler, split by split.

Every architecture has its own random stream, ``SeedSequence(split_seed, spawn_key=(index,))``,
so that a split is identical however it is parallelised or resumed, and any item can be
regenerated alone. Rejection sampling follows the published rules (see docs/space.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs
from deepnetsbench.space.primitives import (
    BIG_CONV_OPS,
    CONV_OPS,
    LEARNABLE_OPS,
    POOLING_OPS,
    PRIMITIVES,
)

GENERATOR_VERSION = "1.0"


@dataclass(frozen=True)
class SplitConfig:
    """How one split samples architectures."""

    name: str
    seed: int
    n_cells: tuple[int, int] = (4, 18)  # inclusive range
    deep_threshold: tuple[int, ...] = (7, 8, 9, 10)
    steps: tuple[int, int] = (1, 4)
    steps_deep: tuple[int, int] = (1, 2)
    max_params: int = 10**7
    norm: bool = True  # False: BN-free split
    C: int = 32
    fc_dim: int = 256


# Distinct seeds for every split: the original used seed 1 for train and test alike, which
# makes test architectures reappear in train. We also exclude eval genotypes from train.
SPLIT_CONFIGS: dict[str, SplitConfig] = {
    "train": SplitConfig("train", seed=1001),
    "val": SplitConfig("val", seed=1002),
    "test": SplitConfig("test", seed=1003),
    "deep": SplitConfig("deep", seed=1004, n_cells=(10, 36), deep_threshold=(18,),
                        max_params=10**8),
    "dense": SplitConfig("dense", seed=1005, steps=(2, 10), steps_deep=(2, 6),
                         max_params=10**8),
    "bnfree": SplitConfig("bnfree", seed=1006, norm=False),
}
# WIDE = the TEST architectures at 4x width; PREDEFINED = torchvision models.
DEFAULT_SIZES = {"train": 1_000_000, "val": 500, "test": 500, "wide": 100, "deep": 100,
                 "dense": 100, "bnfree": 100}


def _rng(cfg: SplitConfig, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(index,)))


def _sample_cell(rng: np.random.Generator, steps: int, only_pool: bool) -> tuple:
    ops_pool = sorted(POOLING_OPS) if only_pool else [
        p for p in PRIMITIVES if p != "none" or steps > 1
    ]
    cell = []
    for step in range(steps):
        n_inputs = step + 2
        pair = []
        for _ in range(2):
            op = ops_pool[rng.integers(len(ops_pool))]
            pair.append((op, int(rng.integers(n_inputs))))
        if pair[0][0] == "none" and pair[1][0] == "none":
            return ()  # rejected: the step would compute nothing
        cell.extend(pair)
    # Intermediate nodes not consumed by a later step must reach the output: concatenate
    # them; with steps > 1 the consumed ones are dropped from the concat with p = 0.5 each.
    consumed = {idx for _, idx in cell}
    concat = []
    for node in range(2, steps + 2):
        if node not in consumed or steps == 1 or rng.random() >= 0.5:
            concat.append(node)
    if not concat:
        concat = [steps + 1]
    return tuple(cell), tuple(concat)


def _valid_cell(cell) -> bool:
    ops = [op for op, _ in cell]
    if ops.count("cse") > 1:
        return False
    if sum(op in BIG_CONV_OPS for op in ops) > 1:
        return False
    return True


def _reaches_output(cell, concat, steps: int) -> bool:
    """Every non-none intermediate node feeds the concat (directly or via later nodes)."""
    alive = set(concat)
    for node in range(steps + 1, 1, -1):
        if node in alive:
            for j in (2 * (node - 2), 2 * (node - 2) + 1):
                op, idx = cell[j]
                if op != "none":
                    alive.add(idx)
    return all(n in alive for n in range(2, steps + 2)) and (0 in alive or 1 in alive)


def sample_arch(cfg: SplitConfig, index: int, max_tries: int = 10000,
                exclude: frozenset[str] | set[str] = frozenset()) -> ArchSpec:
    """The ``index``-th architecture of a split (deterministic). Architectures whose
    :meth:`ArchSpec.key` is in ``exclude`` are rejected like invalid ones."""
    rng = _rng(cfg, index)
    for _ in range(max_tries):
        spec = _propose(rng, cfg)
        if spec is not None and _accept(spec, cfg) and (not exclude or spec.key() not in exclude):
            return spec
    raise RuntimeError(f"no valid architecture after {max_tries} proposals ({cfg.name}/{index})")


def _propose(rng: np.random.Generator, cfg: SplitConfig) -> ArchSpec | None:
    n_cells = int(rng.integers(cfg.n_cells[0], cfg.n_cells[1] + 1))
    threshold = int(cfg.deep_threshold[rng.integers(len(cfg.deep_threshold))])
    deep = n_cells > threshold
    lo, hi = cfg.steps_deep if deep else cfg.steps
    steps = int(rng.integers(lo, hi + 1))
    normal = _sample_cell(rng, steps, only_pool=False)
    only_pool = bool(rng.random() < 0.5)
    reduce = _sample_cell(rng, steps, only_pool=only_pool)
    if not normal or not reduce:
        return None
    (n_cell, n_concat), (r_cell, r_concat) = normal, reduce
    if not (_valid_cell(n_cell) and _valid_cell(r_cell)):
        return None
    if not (_reaches_output(n_cell, n_concat, steps) and _reaches_output(r_cell, r_concat, steps)):
        return None
    genotype = Genotype(n_cell, n_concat, r_cell, r_concat)
    ops = genotype.ops()
    if not any(op in LEARNABLE_OPS for op in ops):
        return None
    if "cse" in ops and not any(op in CONV_OPS for op in ops):
        return None
    is_vit = "msa" in ops
    C_mult = int(rng.integers(1, 3))
    ks = int((3, 5, 7)[rng.integers(3)])
    stem_type = int(rng.integers(2))
    stem_pool = bool(rng.random() < 0.5)
    fc_layers = int(rng.integers(1, 3))
    if steps > 1 or C_mult > 1:
        preproc = True
    else:
        preproc = (not is_vit) or bool(rng.random() < 0.2)
    glob_avg = is_vit or deep or bool(rng.random() < 0.9)
    if not cfg.norm:
        norm = None
    elif n_cells <= 5 and steps <= 2:
        norm = None if rng.random() < 0.5 else "bn"
    else:
        norm = "bn"
    args = NetArgs(C=cfg.C, n_cells=n_cells, stem_type=stem_type, stem_pool=stem_pool, ks=ks,
                   norm=norm, preproc=preproc, glob_avg=glob_avg, fc_layers=fc_layers,
                   fc_dim=cfg.fc_dim, C_mult=C_mult, is_vit=is_vit)
    return ArchSpec(genotype, args)


def _accept(spec: ArchSpec, cfg: SplitConfig) -> bool:
    from deepnetsbench.graph.derive import count_params, graph_from_spec  # graph imports space

    graph = graph_from_spec(spec, 10, 32)
    if graph.num_params > cfg.max_params:
        return False
    if len(graph.dead_nodes()):  # some layer cannot reach the output: disconnected
        return False
    return count_params(spec, 1000, 224) <= cfg.max_params


# -- evaluation widths -----------------------------------------------------------------------
#: Evaluation nets are wider than the C = 32 the sampler works at (see docs/space.md).
EVAL_MIN_PARAMS = 2_500_000
EVAL_C_MIN, EVAL_C_STEP, EVAL_C_MAX = 32, 16, 512
WIDE_FACTOR = 4


def eval_width(spec: ArchSpec) -> int:
    """Smallest C in 32, 48, 64, ... (at most 512) giving >= 2.5 M parameters for
    10 classes at 32x32, the rule that reproduces the published parameter counts."""
    from deepnetsbench.graph.derive import count_params

    c = EVAL_C_MIN
    while c < EVAL_C_MAX and count_params(spec.with_args(C=c), 10, 32) < EVAL_MIN_PARAMS:
        c += EVAL_C_STEP
    return c


EVAL_SPLITS = ("val", "test", "wide", "deep", "dense", "bnfree")
GENERATED_SPLITS = ("train", *EVAL_SPLITS)


def split_item(split: str, index: int, seed: int | None = None,
               exclude: frozenset[str] | set[str] = frozenset()) -> ArchSpec:
    """The ``index``-th architecture of a generated split, at its evaluation width.

    WIDE is the TEST architecture of the same index at 4x its evaluation width."""
    if split == "wide":
        base = split_item("test", index, seed)
        return base.with_args(C=base.args.C * WIDE_FACTOR)
    cfg = SPLIT_CONFIGS[split]
    if seed is not None:
        from dataclasses import replace

        cfg = replace(cfg, seed=seed)
    spec = sample_arch(cfg, index, exclude=exclude)
    if split == "train":
        return spec
    return spec.with_args(C=eval_width(spec))


def eval_keys(sizes: dict[str, int] | None = None) -> frozenset[str]:
    """Width-free keys of every evaluation architecture (kept out of TRAIN)."""
    sizes = sizes or DEFAULT_SIZES
    keys = set()
    for split in ("val", "test", "deep", "dense", "bnfree"):
        cfg = SPLIT_CONFIGS[split]
        keys.update(sample_arch(cfg, i).key() for i in range(sizes[split]))
    return frozenset(keys)
