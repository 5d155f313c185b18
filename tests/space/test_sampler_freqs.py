"""Feature frequencies of our splits against the official generator's, within sampling error.

The official figures come from tests/fixtures/ppuda/sampler_freqs.json (the official
generator run outside the project, see its README) when it is there, else from issue 11
(official TEST 500 and DEEP 100). A feature passes when our frequency and the official one
differ by less than 4 standard errors of the difference of two proportions (pooled), so a
true difference of a few points over 2,000 nets fails and sampling noise does not (4 sigma:
~6e-5 per comparison). Features an official rule fixes (0 or 100 %) must match exactly.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from deepnetsbench.space.sampler import SPLIT_CONFIGS, sample_arch

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ppuda" / "sampler_freqs.json"
PARAM_FREE = {"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"}

#: Issue 11's official figures: {split: (N, {feature: frequency})}.
ISSUE_FIGURES = {
    "test": (500, {"same_input_steps": 0.0, "shared_concat": 1.0, "pool_only_skip": 0.356,
                   "pool_only_none": 0.194, "stem_pool_type1": 0.0, "two_none": 0.052}),
    "deep": (100, {"bn_free": 0.03}),
}
#: Features an official rule fixes; ours must be exactly the official value.
EXACT = {"same_input_steps", "shared_concat", "stem_pool_type1"}


def _steps(cell):
    return [(cell[2 * k], cell[2 * k + 1]) for k in range(len(cell) // 2)]


def features(specs) -> dict[str, tuple[int, int]]:
    """{feature: (count, denominator)} over ``specs`` (definitions as in issue 11)."""
    out = {}
    steps = [s for spec in specs for c in (spec.genotype.normal, spec.genotype.reduce)
             for s in _steps(c)]
    out["same_input_steps"] = (sum(a[1] == b[1] for a, b in steps), len(steps))

    def frac(pred, among=specs):
        among = list(among)
        return sum(bool(pred(s)) for s in among), len(among)

    def pool_only(s):
        return all(op in PARAM_FREE for op, _ in s.genotype.reduce)

    def reduce_has(s, op):
        return op in {o for o, _ in s.genotype.reduce}

    out["shared_concat"] = frac(lambda s: s.genotype.normal_concat == s.genotype.reduce_concat)
    out["pool_only_skip"] = frac(lambda s: pool_only(s) and reduce_has(s, "skip_connect"))
    out["pool_only_none"] = frac(lambda s: pool_only(s) and reduce_has(s, "none"))
    out["stem_pool_type1"] = frac(lambda s: s.args.stem_pool,
                                  [s for s in specs if s.args.stem_type == 1])
    out["two_none"] = frac(lambda s: any(a[0] == b[0] == "none" for c in
                                         (s.genotype.normal, s.genotype.reduce)
                                         for a, b in _steps(c)))
    out["bn_free"] = frac(lambda s: s.args.norm is None)
    out["vit"] = frac(lambda s: s.args.is_vit)
    out["no_preproc"] = frac(lambda s: not s.args.preproc)
    out["no_glob_avg"] = frac(lambda s: not s.args.glob_avg)
    out["stem_type1"] = frac(lambda s: s.args.stem_type == 1)
    out["stem_pool"] = frac(lambda s: s.args.stem_pool)
    out["C_mult2"] = frac(lambda s: s.args.C_mult == 2)
    out["fc_layers2"] = frac(lambda s: s.args.fc_layers == 2)
    out["drop_concat"] = frac(lambda s: len(s.genotype.normal_concat) < len(s.genotype.normal) // 2)
    return out


def official_figures() -> dict[str, tuple[int, dict[str, float]]]:
    if not FIXTURE.is_file():
        return ISSUE_FIGURES
    data = json.loads(FIXTURE.read_text())
    return {split: (int(d["N"]), {k: float(v) for k, v in d["freqs"].items()})
            for split, d in data["splits"].items()}


def _close(ours: tuple[int, int], official: float, n_official: int, feature: str) -> str | None:
    """None when within tolerance, else a one-line description of the gap."""
    k, n = ours
    p = k / n
    if feature in EXACT and official in (0.0, 1.0):
        return None if p == official else f"{feature}: ours {p:.4f} (n={n}), official {official}"
    pooled = (k + official * n_official) / (n + n_official)
    sigma = np.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n + 1 / n_official))
    if abs(p - official) <= 4 * sigma:
        return None
    return (f"{feature}: ours {p:.4f} (n={n}), official {official:.4f} (N={n_official}), "
            f"|diff| {abs(p - official):.4f} > 4 sigma {4 * sigma:.4f}")


_CACHE: dict[tuple[str, int], list] = {}


def _sample(split: str, n: int) -> list:
    if (split, n) not in _CACHE:
        _CACHE[(split, n)] = [sample_arch(SPLIT_CONFIGS[split], i) for i in range(n)]
    return _CACHE[(split, n)]


def _check(split: str, n: int) -> None:
    n_official, figures = official_figures()[split]
    ours = features(_sample(split, n))
    missing = set(figures) - set(ours)
    assert not missing, f"features without a definition here: {sorted(missing)}"
    gaps = [g for f, v in figures.items() if (g := _close(ours[f], v, n_official, f))]
    assert not gaps, f"{split}: " + "; ".join(gaps)


def _splits():
    return [s for s in official_figures() if s in SPLIT_CONFIGS]


@pytest.mark.slow
@pytest.mark.parametrize("split", _splits())
def test_feature_frequencies_match_the_official_generator(split):
    _check(split, 2000)


@pytest.mark.parametrize("split", _splits())
def test_feature_frequencies_quick(split):
    """The same comparison on 300 nets per split (wider tolerance, same rules)."""
    _check(split, 300)


def test_the_tolerance_catches_generator_1_0():
    # generator 1.0 had 36.5 % same-input steps, 77 % shared concat lists, 0.6 % pool-only
    # reduce cells with skip_connect: each must fail against the official TEST 500 figures
    n_off, figures = ISSUE_FIGURES["test"]
    assert _close((730, 2000), figures["same_input_steps"], n_off, "same_input_steps")
    assert _close((1540, 2000), figures["shared_concat"], n_off, "shared_concat")
    assert _close((12, 2000), figures["pool_only_skip"], n_off, "pool_only_skip")
    assert _close((8, 300), figures["pool_only_skip"], n_off, "pool_only_skip")
    # and a frequency one standard error away passes
    assert _close((int(2000 * 0.375), 2000), figures["pool_only_skip"], n_off,
                  "pool_only_skip") is None
