"""Read the golden records of tests/fixtures/ppuda (official Network kwargs) as our specs."""

from __future__ import annotations

import json
from pathlib import Path

from deepnetsbench.space import ArchSpec, Genotype, NetArgs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ppuda"

#: Defaults of the official ``Network`` constructor (net_args in the files omit them).
OFFICIAL_DEFAULTS = dict(ks=3, stem_pool=False, stem_type=0, norm="bn-track", preproc=True,
                         C_mult=2, fc_layers=0, fc_dim=0, glob_avg=True, is_vit=None)
NORMS = {"bnorm": "bn", "bn-track": "bn-track", None: None}


def load_nets() -> list[dict]:
    return json.loads((FIXTURES / "nets.json").read_text())


def genotype(d: dict) -> Genotype:
    return Genotype(tuple((op, int(i)) for op, i in d["normal"]), tuple(d["normal_concat"]),
                    tuple((op, int(i)) for op, i in d["reduce"]), tuple(d["reduce_concat"]))


def spec_of(record: dict) -> ArchSpec:
    """Our spec for a record's official kwargs (official defaults where a kwarg is absent)."""
    kw = {**OFFICIAL_DEFAULTS, **record["net_args"]}
    args = NetArgs(C=kw["C"], n_cells=kw["n_cells"], stem_type=kw["stem_type"],
                   stem_pool=kw["stem_pool"], ks=kw["ks"], norm=NORMS[kw["norm"]],
                   preproc=kw["preproc"], glob_avg=kw["glob_avg"], fc_layers=kw["fc_layers"],
                   fc_dim=kw["fc_dim"], C_mult=kw["C_mult"], is_vit=kw["is_vit"])
    return ArchSpec(genotype(record["genotype"]), args)
