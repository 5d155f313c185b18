"""Shards and merge: the partition rule, MACs from the spec, merged == unsharded, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from deepnetsbench.cli import main
from deepnetsbench.errors import BenchError
from deepnetsbench.eval.macs import module_macs, spec_macs
from deepnetsbench.eval.runner import EvalConfig, count_macs, evaluate
from deepnetsbench.eval.shards import (
    RULE,
    Shard,
    arch_costs,
    evaluate_shard,
    merge_files,
    partition,
    shard_indices,
    shard_out,
)
from deepnetsbench.results import load_results, save_results

# ----------------------------------------------------------------------------- the rule


def test_partition_is_deterministic_disjoint_complete_and_balanced():
    costs = [9, 1, 7, 3, 3, 8, 2, 5, 5, 1, 6]
    groups = partition(costs, 3)
    assert groups == partition(list(costs), 3)
    assert sorted(p for g in groups for p in g) == list(range(len(costs)))
    assert all(g == sorted(g) for g in groups)
    totals = [sum(costs[p] for p in g) for g in groups]
    assert max(totals) - min(totals) <= max(costs)
    # Largest first, each to the lightest shard, ties to the lower shard and lower index.
    assert partition([5, 5, 5, 5], 2) == [[0, 2], [1, 3]]
    assert partition([1, 10, 1], 2) == [[1], [0, 2]]


def test_more_shards_than_positions_leave_empty_groups_and_bad_shards_are_refused():
    assert partition([1.0, 2.0], 3) == [[1], [0], []]
    with pytest.raises(BenchError, match="is not K/N"):
        Shard.parse("2-3")
    with pytest.raises(BenchError, match="numbered 1..N"):
        Shard.parse("0/3")
    with pytest.raises(BenchError, match="does not exist"):
        Shard.parse("4/3")
    assert str(Shard.parse(" 2 / 3 ")) == "2/3"
    assert shard_out("runs/mine.json", Shard(2, 4)) == Path("runs/mine-shard2of4.json")


def _specs():
    from deepnetsbench.space.sampler import split_item
    from deepnetsbench.splits.predefined import DEEPNETS_VIT

    for split in ("test", "wide", "deep", "dense", "bnfree"):
        for i in range(2):
            yield split, split_item(split, i).with_args(C=8)
    yield "vit", DEEPNETS_VIT.with_args(C=8, n_cells=2)


@pytest.mark.parametrize("classes, size", [(10, 32), (100, 64)])
def test_macs_from_the_spec_equal_counting_the_built_network(one_thread, classes, size):
    from deepnetsbench.space.network import Network

    for name, spec in _specs():
        model = Network(spec, classes, size)
        assert spec_macs(spec, classes, size) == count_macs(model, size, torch.device("cpu")), name


def test_module_macs_on_meta_equal_counting_on_cpu(one_thread):
    import torchvision

    counted = count_macs(torchvision.models.resnet18(num_classes=10), 64, torch.device("cpu"))
    assert module_macs(lambda: torchvision.models.resnet18(num_classes=10), 64) == counted
    assert torch.nn.Module.register_parameter.__name__ == "register_parameter"  # restored


def test_shard_indices_follow_the_rule_on_the_mock_split(mock_root):
    from deepnetsbench.eval.runner import open_mock

    suite = open_mock("test", root=mock_root)[0]
    costs = arch_costs(suite, range(len(suite)))
    shards = [shard_indices("test", f"{k}/3", root=mock_root, mock=True) for k in (1, 2, 3)]
    assert shards == partition(costs, 3)
    chosen = [0, 1, 3]  # a selection is partitioned by the same rule, indices mapped back
    first = [chosen[j] for j in partition([costs[i] for i in chosen], 2)[0]]
    assert shard_indices("test", "1/2", root=mock_root, mock=True, archs=chosen) == first
    with pytest.raises(BenchError, match="would leave a shard empty"):
        shard_indices("test", "1/5", root=mock_root, mock=True)


# ----------------------------------------------------------------------------- runs


def _cfg(root, out, **kw) -> EvalConfig:
    return EvalConfig(mock=True, root=root, out=out, progress=False, **kw)


@pytest.fixture(scope="module")
def runs(mock_root, tmp_path_factory):
    """The unsharded mock run and its 3 shards (kaiming, all 4 architectures)."""
    d = tmp_path_factory.mktemp("shards")
    torch.set_num_threads(1)
    full = evaluate("kaiming", _cfg(mock_root, d / "full.json"))
    paths = []
    for k in (1, 2, 3):
        path = d / f"run-shard{k}of3.json"
        evaluate_shard("kaiming", _cfg(mock_root, path), Shard(k, 3))
        paths.append(path)
    return full, paths


def test_three_merged_shards_equal_the_unsharded_run(runs, tmp_path, untimed):
    full, paths = runs
    shards = [load_results(p) for p in paths]
    assert sorted(len(s.records) for s in shards) == [1, 1, 2]
    assert {s.protocol.extra["shard"]["rule"] for s in shards} == {RULE}
    merged, target = merge_files(list(reversed(paths)), tmp_path / "merged.json")
    assert untimed(merged.records) == untimed(full.records)
    assert [r.index for r in merged.records] == [0, 1, 2, 3]
    for key in ("top1", "top5"):
        assert getattr(merged.aggregates, key) == getattr(full.aggregates, key)
    assert merged.protocol.extra["complete"] is True
    assert merged.protocol.extra["architectures"] == "all"
    assert "shard" not in merged.protocol.extra
    assert merged.protocol.extra["merged"]["shards"] == 3
    assert load_results(target) == merged
    same = {k: v for k, v in full.protocol.model_dump().items() if k != "extra"}
    assert {k: v for k, v in merged.protocol.model_dump().items() if k != "extra"} == same
    assert (merged.method, merged.split, merged.dataset) == (full.method, full.split, full.dataset)


def test_merged_file_passes_the_leaderboard_checks_exactly_as_the_unsharded_one(runs, tmp_path):
    from deepnetsbench.leaderboard.entries import check_results

    full, paths = runs
    merged, _ = merge_files(paths, tmp_path / "merged.json")

    def outcome(res):
        try:
            check_results(res, source="F")
        except BenchError as err:
            return str(err)
        return None

    assert outcome(merged) == outcome(full)


def _copy(paths, tmp_path):
    out = []
    for p in paths:
        shutil.copy(p, tmp_path / p.name)
        out.append(tmp_path / p.name)
    return out


def _edit(path: Path, change) -> Path:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("case, message", [
    ("missing", r"shard 3/3 missing"),
    ("twice", r"shard 2/3 is given twice"),
    ("overlap", r"architecture \d is in two shards .*: the shards overlap"),
    ("foreign method", r"belongs to another run than .* \(method\.name: \"orthogonal\""),
    ("foreign seed", r"belongs to another run .*protocol\.seed"),
    ("other release", r"belongs to another run .*split\.sha256"),
    ("other partition", r"another partition .*count: 2 vs 3"),
    ("incomplete", r"is incomplete"),
    ("not a shard", r"is not a shard result"),
    ("records moved", r"architectures .* are outside the run's selection"),
])
def test_refusals_name_the_reason(runs, tmp_path, mock_root, case, message):
    full, paths = runs
    a, b, c = _copy(paths, tmp_path)
    inputs = [a, b, c]
    if case == "missing":
        inputs = [a, b]
    elif case == "twice":
        inputs = [a, b, shutil.copy(b, tmp_path / "again.json")]
    elif case == "overlap":  # shard 3 also holds a record of shard 2
        taken = json.loads(b.read_text())["records"][0]
        inputs = [a, b, _edit(c, lambda d: d["records"].append(taken))]
    elif case == "foreign method":
        other = tmp_path / "orth-shard2of3.json"
        evaluate_shard("orthogonal", _cfg(mock_root, other), Shard(2, 3))
        inputs = [a, other, c]
    elif case == "foreign seed":
        inputs = [a, b, _edit(c, lambda d: d["protocol"].update(seed=1))]
    elif case == "other release":
        inputs = [a, b, _edit(c, lambda d: d["split"].update(sha256="f" * 64))]
    elif case == "other partition":
        other = tmp_path / "two-shard1of2.json"
        evaluate_shard("kaiming", _cfg(mock_root, other), Shard(1, 2))
        inputs = [a, b, other]
    elif case == "incomplete":
        inputs = [a, b, _edit(c, lambda d: d["protocol"]["extra"].update(complete=False))]
    elif case == "not a shard":
        inputs = [a, b, full_file(full, tmp_path)]
    elif case == "records moved":
        inputs = [a, b, _edit(c, lambda d: d["records"][0].update(index=7))]
    with pytest.raises(BenchError, match=message):
        merge_files(inputs, tmp_path / "merged.json")
    assert not (tmp_path / "merged.json").exists()


def full_file(full, tmp_path) -> Path:
    return save_results(full, tmp_path / "full.json")


def test_merge_refuses_its_own_input_as_output(runs, tmp_path):
    a, b, c = _copy(runs[1], tmp_path)
    with pytest.raises(BenchError, match="is one of the inputs"):
        merge_files([a, b, c], a)
    with pytest.raises(BenchError, match="given twice"):
        merge_files([a, a, b], tmp_path / "m.json")


def test_cli_shard_default_out_and_merge(mock_root, tmp_path, monkeypatch, runs, untimed):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for k in (1, 2, 3):
        res = runner.invoke(main, ["eval", "--mock", "--method", "kaiming", "--root",
                                   str(mock_root), "--quiet", "--shard", f"{k}/3"])
        assert res.exit_code == 0, res.output
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert names == [f"kaiming-test-mock-shard{k}of3.json" for k in (1, 2, 3)]
    res = runner.invoke(main, ["merge", *names])
    assert res.exit_code == 0, res.output
    assert "merged 3 shards: 4 architectures" in res.output
    assert untimed(load_results("kaiming-test-mock.json").records) == untimed(runs[0].records)
    res = runner.invoke(main, ["merge", names[0], names[1]])
    assert res.exit_code == 2 and "error: shard 3/3 missing" in res.output


def test_merged_shards_of_a_released_split_are_accepted_by_the_leaderboard(tmp_path):
    """Not a mock: a generated split and a cached dataset registered as releases; two shards
    are each refused (incomplete), their merge is accepted."""
    from dataclasses import replace

    from deepnetsbench.data import synthetic_dataset
    from deepnetsbench.data.cache import cache_path, write_cache
    from deepnetsbench.leaderboard.entries import check_results
    from deepnetsbench.releases import register_dataset_file, register_split_file
    from deepnetsbench.splits import generate_split

    root, releases = tmp_path / "root", tmp_path / "releases.json"
    split_file = generate_split("test", 2, root=root)
    images = replace(synthetic_dataset(10, 32, n_train=64, n_test=64, seed=1), name="toy")
    write_cache(images, cache_path("toy", root))
    register_split_file("test", split_file, path=releases)
    register_dataset_file("toy", cache_path("toy", root), path=releases)
    paths = []
    for k in (1, 2):
        cfg = EvalConfig(split="test", dataset="toy", root=root, progress=False,
                         out=tmp_path / f"toy-shard{k}of2.json", flops=False)
        shard = evaluate_shard("kaiming", cfg, Shard(k, 2))
        with pytest.raises(BenchError, match="incomplete run: 1 of 2 architectures missing"):
            check_results(shard, releases)
        paths.append(cfg.out)
    merged, _ = merge_files(paths)
    check_results(merged, releases)  # raises if the leaderboard would refuse it
    assert [r.status for r in merged.records] == ["ok", "ok"]
