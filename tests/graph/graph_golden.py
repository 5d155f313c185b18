"""Helpers to compare our graphs with the official golden graphs (tests/fixtures/ppuda).

The official node order depends on the networkx version, so graphs are compared up to
isomorphism: parameter nodes are anchored by their (official) parameter names, then each
parameter-free node is matched through its neighbourhood (type + matched predecessors and
successors), repeatedly, until every node is matched; then node types, shapes and edges
must agree exactly.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from deepnetsbench.graph.graph import Graph
from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ppuda"


def load(name: str):
    path = FIXTURES / name
    return json.loads(path.read_text()) if path.exists() else None


def _norm(value) -> str | None:
    """The official ``bn_layer``: a name starting with 'bn' is BatchNorm, with running
    statistics iff it contains 'track'; None/''/'none' is BN-free."""
    if value in (None, "", "none"):
        return None
    return "bn-track" if "track" in value else "bn"


def spec_from_official(net_args: dict) -> ArchSpec:
    """Our spec for the official ``Network(**net_args)`` (official defaults where absent)."""
    a = net_args
    g = a["genotype"]
    genotype = Genotype(tuple((op, i) for op, i in g["normal"]), tuple(g["normal_concat"]),
                        tuple((op, i) for op, i in g["reduce"]), tuple(g["reduce_concat"]))
    args = NetArgs(C=a["C"], n_cells=a["n_cells"], stem_type=a.get("stem_type", 0),
                   stem_pool=bool(a.get("stem_pool", False)), ks=a.get("ks", 3),
                   norm=_norm(a.get("norm", "bn-track")), preproc=a.get("preproc", True),
                   glob_avg=a.get("glob_avg", True), fc_layers=a.get("fc_layers", 0),
                   fc_dim=a.get("fc_dim", 0), C_mult=a.get("C_mult", 2),
                   is_vit=a.get("is_vit"))
    return ArchSpec(genotype, args)


def image_size(net_args: dict) -> int:
    return 224 if net_args.get("is_imagenet_input", True) else 32


def _ours(graph: Graph):
    nodes = [(t, n, graph.param_shape(i) or None)
             for i, (t, n) in enumerate(zip(graph.type_names(), graph.param_names))]
    return nodes, [tuple(e) for e in graph.edges.tolist()]


def _theirs(golden: dict):
    nodes = [(t, n, tuple(s) if s else None) for t, n, s in golden["nodes"]]
    return nodes, [tuple(e) for e in golden["edges"]]


def _neighbours(n: int, edges):
    pred = [[] for _ in range(n)]
    succ = [[] for _ in range(n)]
    for s, d in edges:
        pred[d].append(s)
        succ[s].append(d)
    return pred, succ


def _refine(ca: list[int], cb: list[int], na, nb) -> tuple[list[int], list[int]]:
    """Colour refinement over both graphs at once: a node's new colour is its colour with
    the multisets of its predecessors' and successors' colours, until stable."""
    def step(c, nbrs, table):
        return [table.setdefault((c[i], tuple(sorted(c[p] for p in nbrs[0][i])),
                                  tuple(sorted(c[s] for s in nbrs[1][i]))), len(table))
                for i in range(len(c))]

    while True:
        table: dict = {}
        new_a, new_b = step(ca, na, table), step(cb, nb, table)
        if len(set(new_a)) == len(set(ca)) and len(set(new_b)) == len(set(cb)):
            return new_a, new_b
        ca, cb = new_a, new_b


def match(graph: Graph, golden: dict) -> list[str]:
    """Differences between ``graph`` and the official ``golden`` graph ([] if isomorphic
    with the same parameter names, node types, shapes and edges)."""
    ours, our_edges = _ours(graph)
    theirs, their_edges = _theirs(golden)
    a = Counter(ours)
    b = Counter(theirs)
    if a != b:
        return [f"nodes differ: ours only {sorted((a - b).elements(), key=str)[:8]}, "
                f"official only {sorted((b - a).elements(), key=str)[:8]}"]
    # Parameter nodes are anchored by their (unique) names; the parameter-free ones get
    # told apart by their neighbourhoods; nodes still alike are interchangeable: pair one,
    # then refine again.
    table: dict = {}
    ca = [table.setdefault(node, len(table)) for node in ours]
    cb = [table.setdefault(node, len(table)) for node in theirs]
    na, nb = _neighbours(len(ours), our_edges), _neighbours(len(theirs), their_edges)
    while True:
        ca, cb = _refine(ca, cb, na, nb)
        if Counter(ca) != Counter(cb):
            return ["not isomorphic: the neighbourhoods of some nodes differ "
                    f"({sum((Counter(ca) - Counter(cb)).values())} nodes)"]
        counts = Counter(ca)
        alike = [c for c, k in counts.items() if k > 1]
        if not alike:
            break
        c = min(alike)
        fresh = max(max(ca), max(cb)) + 1
        ca[ca.index(c)] = fresh
        cb[cb.index(c)] = fresh
    where = {c: j for j, c in enumerate(cb)}
    m = [where[c] for c in ca]
    mapped = {(m[s], m[d]) for s, d in our_edges}
    theirs_e = set(their_edges)
    if mapped != theirs_e:
        def show(edges):
            return [(theirs[s][1] or theirs[s][0], theirs[d][1] or theirs[d][0])
                    for s, d in sorted(edges)][:6]

        return [f"edges differ: ours only {show(mapped - theirs_e)}, "
                f"official only {show(theirs_e - mapped)}"]
    return []
