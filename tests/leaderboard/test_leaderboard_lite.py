"""Lite entries: checked against the deepnets1m-lite release pins, kept off the full boards
(and full runs off the lite boards), ranked on their own boards."""

from __future__ import annotations

import numpy as np
import pytest
from example_releases import DATA_PINS, DATA_SHA, SPLIT_SHA, N, register_examples

from deepnetsbench.errors import BenchError
from deepnetsbench.eval import lite
from deepnetsbench.leaderboard.entries import board_key, check_results, submit
from deepnetsbench.releases import names_sha256, register_split
from deepnetsbench.results import Results, aggregate, example_results, save_results

LABELS = np.arange(DATA_PINS["num_test"]) % 10  # the example dataset's test labels
ARCHS = lite.arch_indices("test", N)  # 0, 5, 10 of the 12 example architectures


def lite_pins() -> dict:
    images = lite.image_indices(LABELS, 10)
    return {"sha256": SPLIT_SHA, "split_items": N, "rule": lite.RULE,
            "indices_sha256": lite.indices_sha256(ARCHS), "datasets": {"cifar10": {
                "num_items": len(ARCHS), "num_classes": 10, "image_size": 32,
                "eval_images": len(images), "images_sha256": lite.indices_sha256(images),
                "names_sha256": names_sha256(f"test/{i:05d}" for i in ARCHS)}}}


@pytest.fixture
def rel(tmp_path):
    path = register_examples(tmp_path / "releases.json")
    register_split(lite.release_name("test"), "1", lite_pins(), path)
    return path


def lite_results(method: str = "kaiming", seed: int = 0) -> Results:
    """What `eval --suite deepnets1m-lite` writes on the example release."""
    full = example_results(method, n=N, seed=seed, split_sha256=SPLIT_SHA, dataset_sha256=DATA_SHA)
    data = full.model_dump(mode="json")
    data["suite"] = lite.LITE
    data["records"] = [r for r in data["records"] if r["index"] in ARCHS]
    data["protocol"]["eval_images"] = 1000
    data["protocol"]["extra"]["lite"] = lite.LiteSubset.of("test", N, LABELS, 10).record()
    res = Results.model_validate(data)
    res.aggregates = aggregate(res.records)
    return res


def changed(res: Results, mutate) -> Results:
    data = res.model_dump(mode="json")
    mutate(data)
    out = Results.model_validate(data)
    out.aggregates = aggregate(out.records)
    return out


def test_a_lite_run_validates_on_its_release(rel):
    res = lite_results()
    check_results(res, rel)
    full = example_results("kaiming", n=N, split_sha256=SPLIT_SHA, dataset_sha256=DATA_SHA)
    check_results(full, rel)
    assert board_key(res) != board_key(full)  # ranked on its own board


def test_a_lite_run_is_refused_as_a_full_run(rel):
    relabelled = changed(lite_results(), lambda d: d.update(suite="deepnets1m"))
    with pytest.raises(BenchError, match="a deepnets1m-lite run .* labelled suite 'deepnets1m'"):
        check_results(relabelled, rel)
    no_marker = changed(relabelled, lambda d: d["protocol"]["extra"].pop("lite"))
    with pytest.raises(BenchError, match="9 of 12 architectures missing"):
        check_results(no_marker, rel)


def test_a_full_run_is_refused_as_a_lite_run(rel):
    full = example_results("kaiming", n=N, split_sha256=SPLIT_SHA, dataset_sha256=DATA_SHA)
    relabelled = changed(full, lambda d: d.update(suite=lite.LITE))
    with pytest.raises(BenchError, match="does not record the subset of rule lite-1"):
        check_results(relabelled, rel)
    marked = lite_results()
    with pytest.raises(BenchError, match="recorded lite images are not"):  # 10,000 images
        check_results(changed(relabelled, lambda d: d["protocol"]["extra"].update(
            lite=marked.protocol.extra["lite"])), rel)

    def all_archs(d):
        d["protocol"]["extra"]["lite"] = marked.protocol.extra["lite"]
        d["protocol"]["eval_images"] = 1000
    with_all = changed(relabelled, all_archs)
    with pytest.raises(BenchError, match="outside the deepnets1m-lite subset"):
        check_results(with_all, rel)


def test_other_subsets_are_refused(rel):
    def images(d):
        d["protocol"]["extra"]["lite"]["images"]["indices"] = list(range(1, 1001))
    with pytest.raises(BenchError, match="recorded lite images are not"):
        check_results(changed(lite_results(), images), rel)

    def archs(d):
        d["protocol"]["extra"]["lite"]["architectures"]["indices"] = [0, 5]
    with pytest.raises(BenchError, match="recorded lite architectures are not"):
        check_results(changed(lite_results(), archs), rel)

    def drop(d):
        d["records"] = d["records"][:-1]
    with pytest.raises(BenchError, match="1 of 3 architectures missing"):
        check_results(changed(lite_results(), drop), rel)


def test_unregistered_lite_board_is_refused(tmp_path):
    path = register_examples(tmp_path / "releases.json")  # no deepnets1m-lite/test release
    with pytest.raises(BenchError, match="not a released split"):
        check_results(lite_results(), path)
    other = dict(lite_pins(), rule="lite-0")
    register_split(lite.release_name("test"), "1", other, path)
    with pytest.raises(BenchError, match="another subset rule"):
        check_results(lite_results(), path)


def test_lite_and_full_entries_of_one_method_version_coexist(rel, tmp_path):
    board = tmp_path / "board"
    full = example_results("kaiming", n=N, split_sha256=SPLIT_SHA, dataset_sha256=DATA_SHA)
    a = submit(save_results(full, tmp_path / "full.json"), board, releases=rel)
    b = submit(save_results(lite_results(), tmp_path / "lite.json"), board, releases=rel)
    assert a.name.startswith("deepnets1m__test__") and b.name.startswith("deepnets1m-lite__test__")
    with pytest.raises(BenchError, match="duplicate"):
        submit(save_results(lite_results(seed=1), tmp_path / "again.json"), board, releases=rel)


def test_describe_lite_pins_a_split_file(tmp_path):
    from deepnetsbench.data.synthetic import synthetic_dataset
    from deepnetsbench.splits.dataset import DeepNets1M, generate_split

    generate_split("deep", 5, root=tmp_path)
    path = tmp_path / "splits" / "deepnets1m_deep.h5"
    images = synthetic_dataset(10, 32, n_train=10, n_test=1000, seed=0)
    version, pins = lite.describe_lite("deep", path, [images])
    names = DeepNets1M("deep", root=tmp_path).record_names()
    per = pins["datasets"]["synthetic"]
    assert version == "2.0" and pins["split_items"] == 5 and pins["rule"] == lite.RULE
    assert pins["indices_sha256"] == lite.indices_sha256([0, 2, 4])
    assert per["num_items"] == 3 and per["eval_images"] == 1000
    assert per["names_sha256"] == names_sha256(names[i] for i in (0, 2, 4))
    assert per["images_sha256"] == lite.indices_sha256(range(1000))


def test_packaged_lite_releases_agree_with_the_full_ones():
    """Every registered lite board is the rule's subset of a registered full split."""
    from deepnetsbench.releases import load_releases

    splits = load_releases()["splits"]
    lites = {k: v for k, v in splits.items() if k.startswith(lite.LITE + "/")}
    assert {k.split("/")[1] for k in lites} == set(lite.EVAL_SPLITS)
    for name, versions in lites.items():
        split = name.split("/")[1]
        for version, pins in versions.items():
            full = splits[split][version]
            assert pins["sha256"] == full["sha256"] and pins["split_items"] == full["num_items"]
            archs = lite.arch_indices(split, full["num_items"])
            assert pins["rule"] == lite.RULE
            assert pins["indices_sha256"] == lite.indices_sha256(archs)
            per = pins["datasets"]["cifar10"]
            assert per["num_items"] == len(archs) and per["eval_images"] == 1000
