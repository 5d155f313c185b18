"""The DeepNets-1M architecture sampler, split by split.

The distribution is the official generator's (see docs/space.md and the spec
``deepnets1m-official.md`` section 4): every probability, every rejection rule and the
per-split thresholds. What differs on purpose is where the randomness comes from: every
architecture has its own stream, ``SeedSequence(split_seed, spawn_key=(index,))``, with a
distinct seed per split, so that a split is identical however it is parallelised or resumed,
any item can be regenerated alone, and TEST is not a prefix of TRAIN (as it is officially).
TRAIN also leaves out every evaluation architecture (see :mod:`deepnetsbench.space.identity`).

Draws of one candidate, in the official order (a rejected candidate is redrawn whole):
n_cells, the deep threshold, steps, only_pool, drop_concat, the two cells (DARTS-style
argmax of ``softmax(1e-3 * randn)``, see :func:`darts_cell`), the concat list (one list for
both cells), ks; the genotype rules (:func:`genotype_ok`); C_mult, preproc, glob_avg, norm,
stem_type, stem_pool, fc_layers; then the network rules (:func:`network_ok`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs
from deepnetsbench.space.primitives import BIG_CONV_OPS, CONV_OPS, PRIMITIVES

GENERATOR_VERSION = "2.0"


@dataclass(frozen=True)
class SplitConfig:
    """How one split samples architectures (the official generator's knobs)."""

    name: str
    seed: int
    n_cells: tuple[int, int] = (4, 18)  # inclusive range; n_cells[0] is min_layers
    deep_threshold: tuple[int, ...] = (7, 8, 9, 10)  # a net is deep if n_cells > threshold
    steps: tuple[int, int] = (1, 4)  # inclusive range of steps for nets that are not deep
    steps_deep: tuple[int, int] = (1, 2)  # for deep nets; steps_deep[1] is medium_steps
    max_params: int = 10**7  # cap at C = 32, 10 classes, at 32 and at 224 px
    norm: bool = True  # True: BN, or none for small nets (rule A); False: BN-free split
    C: int = 32
    fc_dim: int = 256

    @property
    def medium_steps(self) -> int:
        return self.steps_deep[1]


# Distinct seeds for every split: officially val uses seed 0 and every other split seed 1,
# which makes TEST the first 500 TRAIN architectures.
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

_N_OPS = len(PRIMITIVES)
_POOL_COLUMNS = 4  # only_pool keeps none, max_pool_3x3, avg_pool_3x3, skip_connect


def _rng(cfg: SplitConfig, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(index,)))


# -- the two cells: DARTS-style argmax over random architecture weights -------------------

def softmax32(alphas: np.ndarray) -> np.ndarray:
    """Row softmax of float32 ``alphas`` in float32, the same on every machine.

    exp is taken in float64 and rounded once to float32 (a 1-ulp float64 difference between
    libms changes that float32 only ~2**-28 of the time); for alphas spread less than ln 2
    (ours: 1e-3 * randn) every term lies in [0.5, 1] or is 0, so the float64 sum is exact in
    any order; then one float32 division. Float32 ties between these weights (~1e-4 per
    step) are part of the official mechanics; their rate depends on the softmax's rounding
    by a factor of about 2 (torch's vs. this one), nothing more."""
    a = np.asarray(alphas, dtype=np.float32)
    e = np.exp((a - a.max(axis=1, keepdims=True)).astype(np.float64)).astype(np.float32)
    total = e.astype(np.float64).sum(axis=1).astype(np.float32)
    return e / total[:, None]


def cell_weights(rng: np.random.Generator, steps: int, only_pool: bool) -> np.ndarray:
    """``softmax(1e-3 * randn(K, 15))``, one row per (step, input) pair; with ``only_pool``
    the columns of parametric ops get -1000 first (their weights become exactly 0)."""
    k = steps * (steps + 3) // 2
    a = rng.standard_normal((k, _N_OPS), dtype=np.float32) * np.float32(1e-3)
    if only_pool:
        a[:, _POOL_COLUMNS:] = -1000.0
    return softmax32(a)


def darts_cell(weights: np.ndarray, steps: int, allow_none: bool) -> tuple[tuple[str, int], ...]:
    """The official parse of architecture weights into a cell.

    Step ``i`` owns the next ``i + 2`` rows (row ``j`` = input state ``j``). An input's
    strength is its row maximum over the candidate ops (``none`` excluded unless
    ``allow_none``); the two strongest inputs are taken, strongest first (a stable sort:
    ties go to the lower index), each with the first candidate op reaching its row maximum.
    Rows are i.i.d., so this is: an ordered pair of two *distinct* inputs, uniform, and for
    each an op uniform over the candidates, independent of everything else (up to ties)."""
    cand = weights if allow_none else weights[:, 1:]
    shift = 0 if allow_none else 1
    strength = cand.max(axis=1).tolist()
    best = (cand.argmax(axis=1) + shift).tolist()  # argmax: first maximal column
    gene = []
    start = 0
    for i in range(steps):
        rows = sorted(range(i + 2), key=lambda j: -strength[start + j])[:2]
        gene.extend((PRIMITIVES[best[start + j]], j) for j in rows)
        start += i + 2
    return tuple(gene)


def sample_concat(rng: np.random.Generator, steps: int, drop: bool) -> tuple[int, ...]:
    """Nodes 2..steps+1; with ``drop`` each but the last is kept with p = 0.5, consumed or
    not (a dropped node that no later step reads is dead, which is allowed)."""
    last = steps + 1
    return tuple(n for n in range(2, last + 1) if n == last or not drop or rng.random() > 0.5)


# -- rejection rules ------------------------------------------------------------------------

def genotype_ok(genotype: Genotype) -> bool:
    """The official genotype rules (dead ops count like live ones): at most one ``cse`` and
    one of conv_5x5/conv_7x7 per cell; ``cse`` only with some conv; something learnable."""
    ops = genotype.ops()
    for cell in (genotype.normal, genotype.reduce):
        names = [op for op, _ in cell]
        if names.count("cse") > 1 or sum(op in BIG_CONV_OPS for op in names) > 1:
            return False
    has_conv = any(op in CONV_OPS for op in ops)
    if "cse" in ops and not has_conv:
        return False
    return has_conv or "cse" in ops or "msa" in ops


def _cell_is_none(cell, concat, s0_none: bool, s1_none: bool) -> bool:
    states = [s0_none, s1_none]
    for i in range(len(cell) // 2):
        (op1, i1), (op2, i2) = cell[2 * i], cell[2 * i + 1]
        live = (op1 != "none" and not states[i1]) or (op2 != "none" and not states[i2])
        states.append(not live)
    return all(states[i] for i in concat)


def output_is_none(genotype: Genotype, n_cells: int) -> bool:
    """Whether the network computes nothing: a step whose two ops are ``none`` or read
    nothing gives nothing, a cell whose concat nodes all give nothing gives nothing, and so
    on to the last cell. Officially such a network raises in its forward pass, the graph
    cannot be built and the generator rejects it; a cell giving nothing in the middle of a
    network that still has an output is allowed."""
    reductions = {n_cells // 3, 2 * n_cells // 3} - {0}
    s0 = s1 = False
    for i in range(n_cells):
        if i in reductions:
            out = _cell_is_none(genotype.reduce, genotype.reduce_concat, s0, s1)
        else:
            out = _cell_is_none(genotype.normal, genotype.normal_concat, s0, s1)
        s0, s1 = s1, out
    return s1


def network_ok(spec: ArchSpec, max_params: int, params_32: int | None = None) -> bool:
    """The official network rules: an output exists, and at most ``max_params`` parameters
    (all of them, dead layers included) at 10 classes, both at 32 and at 224 px
    (``params_32``: the 32 px count where the caller has it already)."""
    from deepnetsbench.graph.derive import count_params  # graph imports space

    if output_is_none(spec.genotype, spec.args.n_cells):
        return False
    if params_32 is None:
        params_32 = count_params(spec, 10, 32)
    return params_32 <= max_params and count_params(spec, 10, 224) <= max_params


# -- one architecture -----------------------------------------------------------------------

def _propose(rng: np.random.Generator, cfg: SplitConfig) -> ArchSpec | None:
    """One candidate, or None where the genotype rules reject it (no further draws)."""
    n_cells = int(rng.integers(cfg.n_cells[0], cfg.n_cells[1] + 1))
    deep = n_cells > cfg.deep_threshold[int(rng.integers(len(cfg.deep_threshold)))]
    lo, hi = cfg.steps_deep if deep else cfg.steps
    steps = int(rng.integers(lo, hi + 1))
    only_pool = bool(rng.random() > 0.5)
    drop_concat = steps > 1 and bool(rng.random() > 0.5)
    allow_none = steps > 1
    normal = darts_cell(cell_weights(rng, steps, False), steps, allow_none)
    reduce = darts_cell(cell_weights(rng, steps, only_pool), steps, allow_none)
    concat = sample_concat(rng, steps, drop_concat)
    ks = int((3, 5, 7)[rng.integers(3)])
    genotype = Genotype(normal, concat, reduce, concat)
    if not genotype_ok(genotype):
        return None

    is_vit = "msa" in genotype.ops()
    C_mult = int(rng.integers(1, 3))
    if steps > 1 or C_mult > 1:
        preproc = True
    else:
        preproc = not is_vit or bool(rng.random() > 0.8)
    glob_avg = is_vit or deep or bool(rng.random() > 0.1)
    if not cfg.norm:
        norm = None
    elif n_cells <= cfg.n_cells[0] + 1 and steps <= cfg.medium_steps:
        norm = "bn" if rng.random() < 0.5 else None
    else:
        norm = "bn"
    stem_type = int(rng.integers(2))
    stem_pool = stem_type == 0 and bool(rng.random() > 0.5)
    fc_layers = int(rng.integers(1, 3))
    args = NetArgs(C=cfg.C, n_cells=n_cells, stem_type=stem_type, stem_pool=stem_pool, ks=ks,
                   norm=norm, preproc=preproc, glob_avg=glob_avg, fc_layers=fc_layers,
                   fc_dim=cfg.fc_dim, C_mult=C_mult, is_vit=is_vit)
    return ArchSpec(genotype, args)


def sample_arch(cfg: SplitConfig, index: int, max_tries: int = 10000,
                exclude: frozenset[str] | set[str] = frozenset()) -> ArchSpec:
    """The ``index``-th architecture of a split (deterministic, at width ``cfg.C``).

    Candidates whose :func:`~deepnetsbench.space.identity.arch_identity` is in ``exclude``
    are rejected like invalid ones: they are the same network as an excluded one."""
    if exclude:
        from deepnetsbench.space.identity import (
            IDENTITY_C,
            IDENTITY_FC_DIM,
            identity_graph,
            identity_in,
        )
    rng = _rng(cfg, index)
    for _ in range(max_tries):
        spec = _propose(rng, cfg)
        if spec is None:
            continue
        if not exclude:
            if network_ok(spec, cfg.max_params):
                return spec
            continue
        if output_is_none(spec.genotype, spec.args.n_cells):
            continue
        graph = identity_graph(spec)  # its num_params is count_params' when C = 32
        same = (cfg.C, cfg.fc_dim) == (IDENTITY_C, IDENTITY_FC_DIM)
        if network_ok(spec, cfg.max_params, graph.num_params if same else None) \
                and not identity_in(graph, exclude):
            return spec
    raise RuntimeError(f"no valid architecture after {max_tries} proposals ({cfg.name}/{index})")


# -- evaluation widths ----------------------------------------------------------------------
#: Evaluation nets are wider than the C = 32 the sampler works at. The published rule is
#: unknown (spec section 4.3); ours reproduces the published minimum of 2.5 M parameters.
EVAL_MIN_PARAMS = 2_500_000
EVAL_C_MIN, EVAL_C_STEP, EVAL_C_MAX = 32, 16, 512
WIDE_FACTOR = 4


def eval_width(spec: ArchSpec) -> int:
    """Smallest C in 32, 48, 64, ... (at most 512) giving >= 2.5 M parameters (all of them)
    for 10 classes at 32x32. The count grows with C, so a bisection finds it."""
    from deepnetsbench.graph.derive import count_params

    lo, hi = 0, (EVAL_C_MAX - EVAL_C_MIN) // EVAL_C_STEP  # grid indices; hi is the cap
    while lo < hi:
        mid = (lo + hi) // 2
        if count_params(spec.with_args(C=EVAL_C_MIN + mid * EVAL_C_STEP), 10, 32) >= EVAL_MIN_PARAMS:
            hi = mid
        else:
            lo = mid + 1
    return EVAL_C_MIN + lo * EVAL_C_STEP


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
        cfg = replace(cfg, seed=seed)
    spec = sample_arch(cfg, index, exclude=exclude)
    if split == "train":
        return spec
    return spec.with_args(C=eval_width(spec))


def eval_keys(sizes: dict[str, int] | None = None) -> frozenset[str]:
    """Identities (:func:`~deepnetsbench.space.identity.arch_identity`, width-free) of every
    evaluation architecture: what TRAIN leaves out (WIDE is TEST)."""
    from deepnetsbench.space.identity import arch_identity

    sizes = sizes or DEFAULT_SIZES
    keys = set()
    for split in ("val", "test", "deep", "dense", "bnfree"):
        cfg = SPLIT_CONFIGS[split]
        keys.update(arch_identity(sample_arch(cfg, i)) for i in range(sizes[split]))
    return frozenset(keys)
