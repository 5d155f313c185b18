"""convert-ppuda on files in the official layout: stored graphs kept as the official loader
reads them, the §7 checks, parameter verification, determinism, TRAIN streaming + resume."""

import json
import re

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from ppuda_helpers import EVAL, generations_order, md5, write_published

from deepnetsbench.cli import main
from deepnetsbench.errors import BenchError
from deepnetsbench.graph.derive import count_params, graph_from_spec
from deepnetsbench.splits import DeepNets1M
from deepnetsbench.splits import ppuda_convert as pc
from deepnetsbench.splits.format import file_sha256, read_manifest
from deepnetsbench.splits.ppuda_convert import ParamMismatch, convert_release
from deepnetsbench.splits.ppuda_export import official_rows, pack_meta, write_official


def _ours(specs):
    return {s: [count_params(x, 10, 32) for x in v] for s, v in specs.items()}


@pytest.fixture()
def ours_published(tmp_path, eval_specs):
    return write_published(tmp_path / "published.json", _ours(eval_specs))


def test_conversion_keeps_specs_counts_and_stored_graphs(official_folder, ours_published,
                                                         eval_specs, tmp_path):
    folder = official_folder(row_order="global")
    paths = convert_release(folder, tmp_path / "out", published=ours_published)
    assert [p.name for p in paths] == [f"deepnets1m_{s}.h5" for s in EVAL]
    for split, path in zip(EVAL, paths):
        ds = DeepNets1M(split, path=path)
        assert ds.attrs["generator_version"] == "ppuda" and ds.attrs["params_verified"] == 1
        for i, spec in enumerate(eval_specs[split]):
            rec = ds[i]
            assert rec.spec == spec  # incl. WIDE at 4x the meta's C
            assert rec.num_params == count_params(spec, 10, 32)
            g, want = rec.graph, graph_from_spec(spec, 10, 32)
            assert g.param_names == want.param_names  # official names, decoded from the file
            assert np.array_equal(g.node_types, want.node_types)
            assert np.array_equal(g.edges, want.edges)
            assert np.array_equal(g.shapes, want.shapes)  # shapes at the evaluated width
            other = rec.graph_for(100, 32)  # the stored graph, shapes of the 100-class net
            assert other.param_names == g.param_names and other.param_shape(-1) == (100,)
    report = json.loads((tmp_path / "out" / "ppuda_report.json").read_text())
    assert report["verified"]
    for split in EVAL:
        s = report["splits"][split]
        assert (s["nets"], s["aligned"], s["same_graph"], s["same_order"], s["virtual"]) == (3,) * 5


def test_misaligned_rows_are_kept_as_the_loader_pairs_them(official_folder, eval_specs,
                                                           ours_published, tmp_path):
    """Rows written cell by cell while adj is in another topological order: row k stays
    node k (as the official GHNs saw it); the §7 test and the comparison notice it."""
    graphs = {s: [generations_order(graph_from_spec(x.with_args(C=32), 10, 32)) for x in v]
              for s, v in eval_specs.items()}
    written = official_folder(row_order="cells", graphs=graphs)
    paths = convert_release(written, tmp_path / "cells", published=ours_published)
    with h5py.File(written / "deepnets1m_eval.hdf5") as f:
        rows = f["test/0/nodes"][()]
        adj = f["test/0/adj"][()]
    g = DeepNets1M("test", path=paths[1])[0].graph
    src = graphs["test"][0]
    cells = [r[1] for r in official_rows(src, eval_specs["test"][0].args.n_cells)]
    order = np.argsort(cells, kind="stable")  # the rows: global nodes sorted by cell
    assert not np.array_equal(order, np.arange(len(order)))  # really misaligned
    assert np.array_equal(rows[:, 1], np.sort(cells))
    assert g.param_names == [src.param_names[k] for k in order]
    assert np.array_equal(g.node_types, src.node_types[order])
    assert np.array_equal(g.edges, src.edges)  # the adjacency as stored
    assert (adj == 1).sum() == src.num_edges
    report = json.loads((tmp_path / "cells" / "ppuda_report.json").read_text())
    s = report["splits"]["test"]
    assert s["same_nodes"] == 3  # the same rows, only paired differently
    assert s["aligned"] < 3 and s["same_graph"] == s["aligned"] and s["same_order"] == 0
    assert s["not_aligned"]
    aligned = official_folder(row_order="global", graphs=graphs)
    convert_release(aligned, tmp_path / "global", published=ours_published)
    s = json.loads((tmp_path / "global" / "ppuda_report.json").read_text())["splits"]["test"]
    assert (s["aligned"], s["same_graph"], s["same_order"]) == (3, 3, 0)  # other node order


def test_mismatch_refuses_unless_allowed(official_folder, eval_specs, tmp_path):
    folder = official_folder()
    counts = _ours(eval_specs)
    counts["test"][1] += 5
    counts["deep"] = counts["deep"][:2]  # deep[2] has no published count
    published = write_published(tmp_path / "pub.json", counts)
    with pytest.raises(ParamMismatch) as err:
        convert_release(folder, tmp_path / "out", published=published)
    assert "--allow-mismatch" in err.value.one_line() and "\n" not in err.value.one_line()
    ours = counts["test"][1] - 5
    assert err.value.lines == [f"test[1]: ours {ours:,} vs published {ours + 5:,}",
                               f"deep[2]: ours {count_params(eval_specs['deep'][2]):,} vs "
                               "no published count"]
    assert not list((tmp_path / "out").glob("*.h5"))
    assert json.loads((tmp_path / "out" / "ppuda_report.json").read_text())["verified"] is False
    paths = convert_release(folder, tmp_path / "out", published=published, allow_mismatch=True)
    flags = {p.stem.split("_")[1]: DeepNets1M("x", path=p).attrs for p in paths}
    assert flags["test"]["generator_version"] == "ppuda-unverified"
    assert flags["test"]["params_verified"] == 0
    assert flags["val"]["generator_version"] == "ppuda"  # judged per split
    manifest = read_manifest(tmp_path / "out")
    assert manifest["deepnets1m_test.h5"]["checks"]["published_mismatches"] == 1


def test_meta_counts_are_checked_too(official_folder, eval_specs, ours_published, tmp_path):
    folder = official_folder()
    meta = folder / "deepnets1m_meta" / "deepnets1m_eval_meta.json"
    doc = json.loads(meta.read_text())
    doc["val"]["nets"][2]["num_params"]["imagenet"] += 1
    meta.write_text(json.dumps(doc))
    with pytest.raises(ParamMismatch) as err:
        convert_release(folder, tmp_path / "out", published=ours_published)
    assert len(err.value.lines) == 1 and err.value.lines[0].startswith("val[2]: ours ")
    assert "num_params.imagenet" in err.value.lines[0]


def test_same_files_give_the_same_sha256_and_the_manifest_records_md5(official_folder,
                                                                      ours_published, tmp_path):
    folder = official_folder()
    a = convert_release(folder, tmp_path / "a", published=ours_published)
    b = convert_release(folder, tmp_path / "b", published=ours_published)
    assert [file_sha256(p) for p in a] == [file_sha256(p) for p in b]
    # the meta read from the tarball, not unpacked: same output
    packed = official_folder(unpack=False)
    c = convert_release(packed, tmp_path / "c", published=ours_published)
    assert [file_sha256(p) for p in c] == [file_sha256(p) for p in a]
    entry = read_manifest(tmp_path / "a")["deepnets1m_test.h5"]
    files = entry["source_files"]["files"]
    assert files["deepnets1m_eval.hdf5"] == md5(folder / "deepnets1m_eval.hdf5")
    assert files["deepnets1m_meta.tar.gz"] == md5(folder / "deepnets1m_meta.tar.gz")
    assert files["deepnets1m_eval_meta.json"] == md5(
        folder / "deepnets1m_meta" / "deepnets1m_eval_meta.json")
    assert entry["source_files"]["registered"] == {"deepnets1m_eval.hdf5": False,
                                                   "deepnets1m_meta.tar.gz": False}
    assert entry["release"] == "ppuda" and entry["source"] == "ppuda"


def test_meta_beside_the_hdf5_and_missing_meta(official_folder, ours_published, tmp_path):
    folder = official_folder(arc_dir="")  # tarball members at the top level, unpacked
    assert (folder / "deepnets1m_eval_meta.json").exists()
    assert convert_release(folder, tmp_path / "out", published=ours_published)
    (folder / "deepnets1m_eval_meta.json").unlink()
    (folder / "deepnets1m_meta.tar.gz").unlink()
    with pytest.raises(BenchError, match="tar -xf deepnets1m_meta.tar.gz"):
        convert_release(folder, tmp_path / "out2", published=ours_published)


def test_release_is_read_by_name(official_folder, ours_published, tmp_path):
    root = tmp_path / "root"
    res = CliRunner().invoke(main, ["convert-ppuda", str(official_folder()), "--root", str(root),
                                    "--published-params", str(ours_published)])
    assert res.exit_code == 0, res.output
    ds = DeepNets1M("test", root=root, release="ppuda")
    assert len(ds) == 3 and ds.manifest["generator_version"] == "ppuda"
    with pytest.raises(BenchError, match="release 'ppuda' has no train split"):
        DeepNets1M("train", root=root, release="ppuda")
    res = CliRunner().invoke(main, ["info", "--release", "ppuda", "--root", str(root)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "ppuda" in res.output and ds.sha256[:16] in res.output


def test_cli_lists_every_mismatch_then_a_one_line_error(official_folder, tmp_path):
    res = CliRunner().invoke(main, ["convert-ppuda", str(official_folder()),
                                    "--root", str(tmp_path)])  # packaged published counts
    assert res.exit_code == 2 and "Traceback" not in res.output
    lines = [x for x in res.output.splitlines() if re.match(r"\w+\[\d+\]: ours ", x)]
    assert len(lines) == 18  # 3 nets x 6 splits differ from the real published figures
    assert lines[0].startswith("val[0]: ours ") and "vs published" in lines[0]
    assert res.output.strip().splitlines()[-1].startswith("error: 18 finding(s)")
    res = CliRunner().invoke(main, ["convert-ppuda", str(official_folder()), "--root",
                                    str(tmp_path), "--allow-mismatch"])
    assert res.exit_code == 0, res.output
    ds = DeepNets1M("val", root=tmp_path, release="ppuda")
    assert ds.attrs["generator_version"] == "ppuda-unverified"


# ----------------------------------------------------------------------------- TRAIN


@pytest.fixture()
def train_folder(tmp_path_factory):
    from deepnetsbench.space.sampler import split_item

    folder = tmp_path_factory.mktemp("train")
    specs = [split_item("train", i) for i in range(23)]
    _, meta = write_official(folder, {"train": specs}, kind="train")
    pack_meta(folder, [meta])
    meta.unlink()  # only in the tarball: streamed from it
    write_official(folder, {"val": specs[:2]})  # the eval file --train needs too
    return folder, specs


def _train(folder, out, **kw):
    return convert_release(folder, out, train=True, allow_mismatch=True, **kw)


def test_train_is_streamed_in_shards_and_resumes(train_folder, monkeypatch, tmp_path):
    folder, specs = train_folder
    monkeypatch.setattr(pc, "SHARD", 10)
    one = _train(folder, tmp_path / "one")[-1]
    ds = DeepNets1M("train", path=one)
    assert [ds[i].spec for i in range(len(ds))] == specs
    report = json.loads((tmp_path / "one" / "ppuda_report.json").read_text())
    assert report["splits"]["train"]["nets"] == 23
    assert report["splits"]["train"]["params"]["meta_cifar10_mismatches"] == 0

    calls = []
    real = pc._convert_shard

    def flaky(job):
        calls.append(job[2])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(pc, "_convert_shard", flaky)
    with pytest.raises(KeyboardInterrupt):
        _train(folder, tmp_path / "two")
    assert calls == [0, 0, 10]  # val, then train shards 0 and 10 (interrupted)
    calls.clear()
    monkeypatch.setattr(pc, "_convert_shard", lambda job: calls.append(job[2]) or real(job))
    two = _train(folder, tmp_path / "two")[-1]
    assert calls == [10, 20]  # the finished shard is not redone
    assert file_sha256(two) == file_sha256(one)
    assert not list((tmp_path / "two").glob(".convert-*"))


def test_train_workers_give_the_same_file(train_folder, monkeypatch, tmp_path):
    folder, _ = train_folder
    monkeypatch.setattr(pc, "SHARD", 8)
    a = _train(folder, tmp_path / "a")[-1]
    b = _train(folder, tmp_path / "b", workers=2)[-1]
    assert file_sha256(a) == file_sha256(b)


def test_eval_runs_on_the_ppuda_release(official_folder, ours_published, tmp_path):
    root = tmp_path / "root"
    convert_release(official_folder(), root / "splits" / "ppuda", published=ours_published)
    out = tmp_path / "res.json"
    res = CliRunner().invoke(main, ["eval", "--method", "kaiming", "--split", "test",
                                    "--release", "ppuda", "--dataset", "synthetic",
                                    "--root", str(root), "--limit", "1", "--eval-images", "8",
                                    "--out", str(out), "--quiet", "--no-flops"])
    assert res.exit_code == 0, res.output
    results = json.loads(out.read_text())
    ds = DeepNets1M("test", root=root, release="ppuda")
    assert results["split"]["sha256"] == ds.sha256
    assert results["split"]["generator_version"] == "ppuda"
    res = CliRunner().invoke(main, ["eval", "--method", "kaiming", "--release", "ppuda",
                                    "--mock", "--root", str(root)])
    assert res.exit_code == 2 and "--release" in res.output


def test_eval_only_rerun_keeps_the_train_findings(train_folder, tmp_path):
    folder, _ = train_folder
    _train(folder, tmp_path / "out")
    convert_release(folder, tmp_path / "out", allow_mismatch=True)  # eval only
    report = json.loads((tmp_path / "out" / "ppuda_report.json").read_text())
    assert report["splits"]["train"]["nets"] == 23 and "train" in report["sources"]


def test_the_official_predefined_pair_is_written_with_the_release(official_folder,
                                                                   ours_published, tmp_path):
    from deepnetsbench.leaderboard.ppuda import PREDEFINED_NAMES

    convert_release(official_folder(), tmp_path / "out", published=ours_published)
    ds = DeepNets1M("predefined", path=tmp_path / "out" / "deepnets1m_predefined.h5")
    assert ds.record_names() == list(PREDEFINED_NAMES)
    assert ds.attrs["generator_version"] == "ppuda"
    published = json.loads(pc.PUBLISHED_PARAMS.read_text())["params"]["predefined"]
    assert [int(c) for c in ds.num_params] == published  # 23,520,842 and 1,012,234
    assert sum(p.numel() for p in ds[0].build_model(10, 32).parameters()) == published[0]
    from deepnetsbench.releases import split_release  # built from code: registered by sha256

    assert split_release("predefined", file_sha256(ds.path), generator_version="ppuda")
