"""``deepnets-bench build-episodes`` / ``episodes-info`` from archives, and CLI errors."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from deepnetsbench.cli import main
from deepnetsbench.episodes import EpisodeSuite


def _archive(tmp: Path, name: str, classes: int, n_train: int, n_test: int, mode: str = "RGB",
             size: int = 8) -> Path:
    rng = np.random.default_rng(classes)
    tree = tmp / f"{name}-tree"
    for split, n in (("train", n_train), ("test", n_test)):
        for c in range(classes):
            d = tree / split / f"c{c:02d}"
            d.mkdir(parents=True)
            for i in range(n):
                shape = (size, size) if mode == "L" else (size, size, 3)
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
                    d / f"{i}.png")
    path = tmp / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for p in sorted(tree.rglob("*.png")):
            tf.add(p, p.relative_to(tree).as_posix())
    return path


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("archives")
    return {"src": _archive(tmp, "toysrc", 10, 12, 3),
            "grey": _archive(tmp, "toygrey", 3, 6, 2, mode="L", size=6)}


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_build_intra_from_archive_and_info(tmp_path, archives):
    out = tmp_path / "intra.h5"
    res = _run("build-episodes", "--suite", "episodes-intra", "--source", "toysrc",
               "--from", str(archives["src"]), "--root", str(tmp_path / "root"),
               "--ways", "2", "--shots", "2", "--queries", "2", "--train-episodes", "6",
               "--val-episodes", "1", "--test-episodes", "3", "--pools", "6,2,2",
               "--image-size", "16", "--targets", "convnet4", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "episodes-intra" in res.output and "train 6 / val 2 / test 2" in res.output
    suite = EpisodeSuite(out, root=tmp_path / "root")  # the dataset comes from the cache
    ep = suite.episode("test", 0)
    assert suite.tensors(ep).query_x.shape == (6, 3, 16, 16)  # 2 classes x 3 test images
    info = _run("episodes-info", str(out))
    assert info.exit_code == 0 and suite.sha256[:20] in info.output.replace("\n", "")


def test_build_inter_with_named_archives(tmp_path, archives):
    root = tmp_path / "root"
    res = _run("build-episodes", "--suite", "episodes-inter", "--source", "toysrc",
               "--from", str(archives["src"]), "--dataset", f"toygrey={archives['grey']}",
               "--root", str(root), "--ways", "2", "--shots", "2", "--queries", "2",
               "--train-episodes", "4", "--val-episodes", "0", "--episodes-per-dataset", "2",
               "--pools", "8,2,0", "--image-size", "16")
    assert res.exit_code == 0, res.output
    path = root / "episodes" / "episodes_inter.h5"
    suite = EpisodeSuite(path, root=root)
    assert suite.test_datasets() == ["toygrey"] and suite.num_episodes("test") == 2
    t = suite.tensors(suite.episode("test", 1))
    assert t.support_x.shape == (6, 3, 16, 16) and t.query_x.shape == (6, 3, 16, 16)
    info = _run("episodes-info", "--suite", "episodes-inter", "--root", str(root))
    assert info.exit_code == 0 and "toygrey" in info.output


def test_cli_errors_are_one_line(tmp_path, archives):
    res = _run("build-episodes", "--suite", "episodes-intra", "--from", str(archives["src"]),
               "--source", "toysrc", "--root", str(tmp_path / "r"), "--ways", "5",
               "--pools", "6,2,2", "--out", str(tmp_path / "x.h5"))
    assert res.exit_code == 2
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "fix:" in errors[0] and "Traceback" not in res.output
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    res = _run("episodes-info", str(bad))
    assert res.exit_code == 2 and "not listed" in res.output
    res = _run("build-episodes", "--suite", "episodes-intra", "--pools", "1,2",
               "--root", str(tmp_path / "r"))
    assert res.exit_code == 2 and "three integers" in res.output
