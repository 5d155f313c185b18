"""The sampler: the official generator's mechanics and rules, drawn from clean per-item streams.

Each rejection rule has a test with a genotype or spec that violates it; the mechanics of
the DARTS-style cells are checked against hand-made weights (order, ties) and against torch's
softmax. Distribution-level checks live in test_sampler_freqs.py, identity in
test_sampler_identity.py.
"""

import numpy as np
import pytest
from ppuda_golden import load_nets, spec_of

from deepnetsbench.graph.derive import count_params
from deepnetsbench.space import ArchSpec, Genotype, NetArgs
from deepnetsbench.space.primitives import PRIMITIVES
from deepnetsbench.space.sampler import (
    DEFAULT_SIZES,
    EVAL_C_MAX,
    EVAL_C_MIN,
    EVAL_C_STEP,
    EVAL_MIN_PARAMS,
    GENERATOR_VERSION,
    SPLIT_CONFIGS,
    WIDE_FACTOR,
    cell_weights,
    darts_cell,
    eval_width,
    genotype_ok,
    network_ok,
    output_is_none,
    sample_arch,
    sample_concat,
    softmax32,
    split_item,
)

OP = {name: i for i, name in enumerate(PRIMITIVES)}


def _spec(normal, reduce, concat, **args) -> ArchSpec:
    return ArchSpec(Genotype(tuple(normal), tuple(concat), tuple(reduce), tuple(concat)),
                    NetArgs(**{"C": 32, "n_cells": 4, "fc_layers": 1, "fc_dim": 256, **args}))


# -- streams ----------------------------------------------------------------------------

def test_version_and_configs():
    assert GENERATOR_VERSION == "2.0"
    assert len({c.seed for c in SPLIT_CONFIGS.values()}) == len(SPLIT_CONFIGS)
    deep, dense = SPLIT_CONFIGS["deep"], SPLIT_CONFIGS["dense"]
    assert (deep.n_cells, deep.deep_threshold, deep.max_params) == ((10, 36), (18,), 10**8)
    assert (dense.steps, dense.steps_deep, dense.medium_steps) == ((2, 10), (2, 6), 6)
    assert SPLIT_CONFIGS["test"].max_params == 10**7 and not SPLIT_CONFIGS["bnfree"].norm
    assert DEFAULT_SIZES["train"] == 1_000_000


def test_each_item_regenerates_alone():
    cfg = SPLIT_CONFIGS["train"]
    forward = [sample_arch(cfg, i) for i in range(6)]
    assert [sample_arch(cfg, i) for i in reversed(range(6))] == forward[::-1]
    assert len({s.key() for s in forward}) == 6
    assert sample_arch(SPLIT_CONFIGS["test"], 0) != sample_arch(cfg, 0)  # distinct seeds


# -- the DARTS-style cells ----------------------------------------------------------------

def _weights(rows):
    w = np.full((len(rows), len(PRIMITIVES)), 0.05, dtype=np.float32)
    for r, cols in enumerate(rows):
        for col, v in cols.items():
            w[r, OP[col]] = v
    return w


def test_two_strongest_distinct_inputs_strongest_first():
    # step 0 reads rows 0, 1; step 1 rows 2, 3, 4 (inputs 0, 1, 2)
    w = _weights([{"conv_3x3": 0.1}, {"msa": 0.2},
                  {"cse": 0.3}, {"skip_connect": 0.1}, {"sep_conv_5x5": 0.2}])
    assert darts_cell(w, 2, allow_none=True) == (
        ("msa", 1), ("conv_3x3", 0), ("cse", 0), ("sep_conv_5x5", 2))


def test_ties_go_to_the_lower_input_and_the_lower_op():
    w = _weights([{"conv_1x1": 0.2, "conv_3x3": 0.2}, {"max_pool_3x3": 0.2, "msa": 0.2}])
    assert darts_cell(w, 1, allow_none=True) == (("conv_1x1", 0), ("max_pool_3x3", 1))
    flat = np.full((5, len(PRIMITIVES)), 1 / 15, dtype=np.float32)
    assert darts_cell(flat, 2, allow_none=True) == (
        ("none", 0), ("none", 1), ("none", 0), ("none", 1))


def test_none_is_a_candidate_only_when_allowed():
    w = _weights([{"none": 0.9, "conv_5x5": 0.2}, {"none": 0.8, "cse": 0.1}])
    assert darts_cell(w, 1, allow_none=True) == (("none", 0), ("none", 1))
    # without none, input strength is the best other op: input 0 (0.2) before 1 (0.1)
    assert darts_cell(w, 1, allow_none=False) == (("conv_5x5", 0), ("cse", 1))


def test_only_pool_restricts_the_reduction_cell():
    rng = np.random.default_rng(0)
    seen = {1: set(), 3: set()}
    for steps in (1, 3):
        for _ in range(300):
            w = cell_weights(rng, steps, only_pool=True)
            assert (w[:, 4:] == 0).all()
            seen[steps].update(op for op, _ in darts_cell(w, steps, allow_none=steps > 1))
    assert seen[1] == {"max_pool_3x3", "avg_pool_3x3", "skip_connect"}
    assert seen[3] == {"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"}


def test_softmax_agrees_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    a = rng.standard_normal((20000, 15), dtype=np.float32) * np.float32(1e-3)
    ours = softmax32(a)
    ref = torch.softmax(torch.from_numpy(a), dim=-1).numpy()
    ulps = np.abs(ours - ref) / np.spacing(ref)
    assert ulps.max() <= 4 and ulps.mean() < 0.5  # torch's exp is a fast approximation
    # the same cells almost always (ties are rounding-dependent at the ~1e-4 level)
    same = sum(darts_cell(ours[i:i + 14], 4, True) == darts_cell(ref[i:i + 14], 4, True)
               for i in range(0, 20000 - 14, 14))
    assert same >= 0.995 * ((20000 - 14) // 14 + 1)


def _chi2_ok(counts: np.ndarray, probs: np.ndarray) -> bool:
    """Pearson chi-square against ``probs`` below its 99.99 % quantile (Wilson-Hilferty)."""
    expected = counts.sum() * probs
    stat = float(((counts - expected) ** 2 / expected).sum())
    k = len(counts) - 1
    z = 3.72  # one-sided 99.99 %
    return stat < k * (1 - 2 / (9 * k) + z * np.sqrt(2 / (9 * k))) ** 3


def test_inputs_are_an_ordered_distinct_pair_uniformly_and_ops_uniform():
    rng = np.random.default_rng(2)
    pairs = np.zeros((4, 4), dtype=np.int64)  # step 2 reads inputs 0..3
    ops_first = np.zeros(15, dtype=np.int64)
    ops_second = np.zeros(14, dtype=np.int64)
    for _ in range(6000):
        cell = darts_cell(cell_weights(rng, 3, False), 3, allow_none=True)
        (op1, a), (_, b) = cell[4], cell[5]
        pairs[a, b] += 1
        ops_first[OP[op1]] += 1
        cell = darts_cell(cell_weights(rng, 1, False), 1, allow_none=False)
        ops_second[OP[cell[1][0]] - 1] += 1
    assert np.trace(pairs) == 0
    off = pairs[~np.eye(4, dtype=bool)]
    assert _chi2_ok(off, np.full(12, 1 / 12))
    assert _chi2_ok(ops_first, np.full(15, 1 / 15))
    assert _chi2_ok(ops_second, np.full(14, 1 / 14))


def test_concat_drops_each_but_the_last_with_p_half():
    rng = np.random.default_rng(3)
    assert sample_concat(rng, 4, drop=False) == (2, 3, 4, 5)
    lists = [sample_concat(rng, 4, drop=True) for _ in range(4000)]
    assert all(c[-1] == 5 for c in lists)
    for node in (2, 3, 4):
        kept = sum(node in c for c in lists)
        assert abs(kept - 2000) < 4 * np.sqrt(4000 * 0.25)


# -- rejection rules ------------------------------------------------------------------------

CONV = ("conv_3x3", 0)


@pytest.mark.parametrize("normal,reduce", [
    ([("cse", 0), ("cse", 1)], [CONV, ("skip_connect", 1)]),  # two cse in a cell
    ([CONV, ("cse", 1)], [("cse", 0), ("cse", 1)]),
    ([("conv_5x5", 0), ("conv_7x7", 1)], [CONV, ("skip_connect", 1)]),  # two big convs
    ([CONV, ("skip_connect", 1)], [("conv_7x7", 0), ("conv_7x7", 1)]),
    ([("cse", 0), ("skip_connect", 1)], [("msa", 0), ("max_pool_3x3", 1)]),  # cse, no conv
    ([("skip_connect", 0), ("max_pool_3x3", 1)], [("avg_pool_3x3", 0), ("none", 1)]),  # nothing
])
def test_genotype_rules_reject(normal, reduce):
    assert not genotype_ok(Genotype(tuple(normal), (2,), tuple(reduce), (2,)))


@pytest.mark.parametrize("normal,reduce", [
    ([("msa", 0), ("skip_connect", 1)], [("max_pool_3x3", 0), ("skip_connect", 1)]),
    ([("cse", 0), ("conv_5x5", 1)], [("cse", 0), ("conv_7x7", 1)]),
    ([("dil_conv_3x3", 0), ("none", 1)], [("sep_conv_3x3", 0), ("conv_7x1_1x7", 1)]),
])
def test_genotype_rules_accept(normal, reduce):
    assert genotype_ok(Genotype(tuple(normal), (2,), tuple(reduce), (2,)))


def test_dead_ops_count_in_the_genotype_rules():
    # node 2 is dropped from the concat and never read: its two cse are dead, still refused
    normal = (("cse", 0), ("cse", 1), ("conv_3x3", 0), ("skip_connect", 1))
    g = Genotype(normal, (3,), (CONV, ("skip_connect", 1), CONV, ("skip_connect", 1)), (3,))
    assert not genotype_ok(g)


def test_a_network_without_output_is_rejected():
    # normal: node 2 is empty (two none), node 3 reads only node 2 -> the cell gives nothing;
    # reduce: node 2 reads input 0, node 3 reads node 2
    normal = [("none", 0), ("none", 1), ("skip_connect", 2), ("none", 0)]
    reduce = [CONV, ("skip_connect", 1), ("skip_connect", 2), ("none", 0)]
    spec = _spec(normal, reduce, [3])
    # cells 0 N (empty), 1 R (reads the stem), 2 R, 3 N (empty): no output
    assert output_is_none(spec.genotype, 4)
    assert not network_ok(spec, 10**9)
    # cells 0 N (empty), 1 R: the output exists
    assert not output_is_none(spec.genotype, 2)


def test_an_empty_cell_inside_a_network_with_output_is_allowed():
    # the reduction cell always gives nothing; a normal cell needs one of its inputs
    normal = [CONV, ("skip_connect", 1), ("skip_connect", 2), ("none", 0)]
    reduce = [("none", 0), ("none", 1), ("max_pool_3x3", 2), ("none", 1)]
    g = Genotype(tuple(normal), (2, 3), tuple(reduce), (2, 3))
    # 0 N, 1 N, 2 R empty, 3 N (reads cell 1), 4 R empty, 5 N (reads cell 3): output
    assert not output_is_none(g, 6)
    # 4 cells: 0 N, 1 R empty, 2 R empty, 3 N with two empty inputs: no output
    assert output_is_none(g, 4)


def test_output_rule_agrees_with_the_network_plan():
    from deepnetsbench.space.layout import plan_network
    from deepnetsbench.space.sampler import _propose, _rng

    cfg = SPLIT_CONFIGS["train"]
    props = [_propose(_rng(cfg, i), cfg) for i in range(6000)]  # ~0.2 % have no output
    empty = [s for s in props if s is not None and output_is_none(s.genotype, s.args.n_cells)]
    full = [s for s in props[:400] if s is not None and s not in empty]
    assert len(empty) >= 3 and len(full) > 200
    for spec in empty:
        with pytest.raises(ValueError, match="no output"):
            plan_network(spec)
    for spec in full:
        plan_network(spec)


def test_official_nets_have_an_output():
    nets = [r for r in load_nets() if r["source"].startswith("official generator")]
    assert nets
    for record in nets:
        spec = spec_of(record)
        assert not output_is_none(spec.genotype, spec.args.n_cells), record["id"]
        assert genotype_ok(spec.genotype), record["id"]


def _vgg_spec(**args):
    """A flatten-head net: at 224 px its classifier reads 14x14 maps instead of 8x8."""
    return _spec([CONV, ("skip_connect", 1)], [("max_pool_3x3", 0), ("skip_connect", 1)], [2],
                 glob_avg=False, **args)


@pytest.mark.parametrize("spec", [
    _vgg_spec(stem_type=0, preproc=True),  # bigger at 224 px (head)
    _spec([CONV, ("skip_connect", 1)], [CONV, ("skip_connect", 1)], [2],
          stem_type=0, preproc=True, n_cells=6),  # bigger at 32 px (3C stem, 3C inputs)
    _spec([("msa", 0), ("skip_connect", 1)], [("avg_pool_3x3", 0), ("skip_connect", 1)], [2],
          is_vit=True),  # ViT: 16x16 patches and 14x14 positions at 224 px
])
def test_the_parameter_cap_holds_at_32_and_224_px(spec):
    p32, p224 = count_params(spec, 10, 32), count_params(spec, 10, 224)
    assert p32 != p224
    assert network_ok(spec, max(p32, p224))
    assert not network_ok(spec, min(p32, p224))  # whichever size is over, the net is out
    assert not network_ok(spec, max(p32, p224) - 1)


def test_the_cap_counts_dead_layers():
    # node 2 (a 7x7 conv) is dropped from the concat and never read: dead, but counted
    normal = [("conv_7x7", 0), ("conv_1x1", 1), ("skip_connect", 0), ("skip_connect", 1)]
    dead = _spec(normal, normal, [3], preproc=True)
    live = _spec([("none", 0), ("none", 1)] + normal[2:], normal, [3], preproc=True)
    assert count_params(dead, 10, 32) > count_params(live, 10, 32)
    assert not network_ok(dead, count_params(live, 10, 32))


# -- the drawn network arguments --------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "deep", "dense", "bnfree"])
def test_drawn_nets_follow_the_official_conditions(split):
    cfg = SPLIT_CONFIGS[split]
    min_layers, medium = cfg.n_cells[0], cfg.medium_steps
    for i in range(120):
        spec = sample_arch(cfg, i)
        a, g = spec.args, spec.genotype
        steps = len(g.normal) // 2
        assert cfg.n_cells[0] <= a.n_cells <= cfg.n_cells[1]
        assert cfg.steps[0] <= steps <= cfg.steps[1]
        if a.n_cells > max(cfg.deep_threshold):  # deep whatever the threshold
            assert steps <= medium and a.glob_avg
        assert g.normal_concat == g.reduce_concat and g.normal_concat[-1] == steps + 1
        for cell in (g.normal, g.reduce):
            assert all(cell[2 * k][1] != cell[2 * k + 1][1] for k in range(steps))
            if steps == 1:
                assert "none" not in {op for op, _ in cell}
        assert genotype_ok(g) and not output_is_none(g, a.n_cells)
        assert a.is_vit == ("msa" in g.ops())
        assert a.ks in (3, 5, 7) and a.C_mult in (1, 2) and a.fc_layers in (1, 2)
        assert (a.C, a.fc_dim) == (32, 256)
        assert not (a.stem_pool and a.stem_type == 1)
        if not a.preproc:
            assert steps == 1 and a.C_mult == 1 and a.is_vit
        if not a.glob_avg:
            assert not a.is_vit
        if not cfg.norm:
            assert a.norm is None
        elif a.norm is None:
            assert a.n_cells <= min_layers + 1 and steps <= medium
        else:
            assert a.norm == "bn"
        assert count_params(spec, 10, 32) <= cfg.max_params
        assert count_params(spec, 10, 224) <= cfg.max_params


def _binomial_ok(hits: int, n: int, p: float) -> bool:
    return n > 50 and abs(hits - n * p) <= 4 * np.sqrt(n * p * (1 - p))


def test_draw_probabilities_are_the_official_ones():
    from deepnetsbench.space.sampler import _propose, _rng

    for split in ("train", "deep"):
        cfg = SPLIT_CONFIGS[split]
        props = [_propose(_rng(cfg, i), cfg) for i in range(4000)]
        specs = [s for s in props if s is not None]
        args = [s.args for s in specs]

        def rate(pred, among):
            among = list(among)
            return sum(bool(pred(a)) for a in among), len(among)

        assert _binomial_ok(*rate(lambda a: a.stem_type == 1, args), 0.5)
        assert _binomial_ok(*rate(lambda a: a.stem_pool, [a for a in args if a.stem_type == 0]),
                            0.5)
        assert _binomial_ok(*rate(lambda a: a.C_mult == 2, args), 0.5)
        assert _binomial_ok(*rate(lambda a: a.fc_layers == 2, args), 0.5)
        assert _binomial_ok(*rate(lambda a: a.ks == 5, args), 1 / 3)
        shallow = [s for s in specs if s.args.n_cells <= cfg.n_cells[0] + 1
                   and s.steps <= cfg.medium_steps]
        assert _binomial_ok(*rate(lambda a: a.norm is None, [s.args for s in shallow]), 0.5)
        if split == "train":  # the deep split's nets are mostly deep: glob_avg forced
            flat = [a for a in args if not a.is_vit and a.n_cells <= 7]  # never deep
            assert _binomial_ok(*rate(lambda a: not a.glob_avg, flat), 0.1)
            vit1 = [s.args for s in specs if s.args.is_vit and s.steps == 1 and s.args.C_mult == 1]
            assert _binomial_ok(*rate(lambda a: not a.preproc, vit1), 0.8)
        # only_pool: the reduction cell holds only parameter-free ops in about half the nets
        pool_only = rate(lambda s: {op for op, _ in s.genotype.reduce}
                         <= {"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"}, specs)
        assert 0.45 < pool_only[0] / pool_only[1] < 0.62


def test_train_statistics_match_published():
    # Published: the first 1,000 TRAIN graphs have 192.3 +- 94.9 nodes (the released generator
    # gives 182.0); in-distribution nets at C = 32 have a median of 0.47 M parameters.
    from deepnetsbench.graph.derive import graph_from_spec

    graphs = [graph_from_spec(sample_arch(SPLIT_CONFIGS["train"], i)) for i in range(400)]
    nodes = np.array([g.num_nodes for g in graphs])
    params = np.array([g.num_params for g in graphs]) / 1e6
    assert abs(nodes.mean() - 187) < 4 * 95 / np.sqrt(len(nodes))
    assert 0.38 < np.median(params) < 0.58
    assert params.max() <= 10  # the 10 M cap


def test_spec_json_round_trip():
    spec = split_item("dense", 2)
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert spec.key() == ArchSpec.from_json(spec.to_json()).key()


# -- evaluation widths ----------------------------------------------------------------------

def test_eval_widths_reproduce_published_test_statistics():
    # Published ID-test: min 2.50M, median 2.96M params at 10 classes, 32x32.
    params = np.array([count_params(split_item("test", i)) for i in range(100)]) / 1e6
    assert params.min() >= 2.5
    assert 2.6 < np.median(params) < 3.4
    wide = np.array([count_params(split_item("wide", i)) for i in range(15)]) / 1e6
    assert np.median(wide) > 25  # published WIDE median 46M


def test_eval_width_is_the_smallest_reaching_the_target():
    for i in range(4):
        spec = sample_arch(SPLIT_CONFIGS["test"], i)
        c = eval_width(spec)
        grid = range(EVAL_C_MIN, EVAL_C_MAX + 1, EVAL_C_STEP)
        scan = next((w for w in grid if count_params(spec.with_args(C=w)) >= EVAL_MIN_PARAMS),
                    EVAL_C_MAX)
        assert c == scan


def test_wide_is_test_at_four_times_the_width():
    test, wide = split_item("test", 2), split_item("wide", 2)
    assert wide == test.with_args(C=test.args.C * WIDE_FACTOR)
