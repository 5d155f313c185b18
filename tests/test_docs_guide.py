"""docs/guide.md runs: every code block, in order, in an empty folder with a fresh cache.

Blocks are taken as the guide shows them. ``python file=NAME`` blocks are written to NAME,
other ``python`` blocks are executed, and ``bash`` blocks run each ``deepnets-bench``
command line through the CLI. Only the sizes are shrunk (:data:`SHRINK`: the training
settings line, ``--num``, ``--limit``, ``--eval-images``), and CIFAR-10 is a synthetic
stand-in with CIFAR-10's shape written into the test's cache, so the whole guide runs in
seconds without a download.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepnetsbench.cli import main

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.M | re.S)

#: What the guide says -> what the test runs (each must occur in the guide).
SHRINK = {
    "STEPS, META_BATCH, BATCH, TRAIN_IMAGES = 100, 4, 64, 10_000":
        "STEPS, META_BATCH, BATCH, TRAIN_IMAGES = 2, 2, 16, 64",
    "--num 2000": "--num 24",
    "--limit 10": "--limit 2",
    "--eval-images 1000": "--eval-images 100",
}


def guide_blocks(text: str) -> list[tuple[str, str, str]]:
    """(language, info after the language, code) of every fenced block, in order."""
    return [(m.group(1), m.group(2).strip(), m.group(3)) for m in FENCE.finditer(text)]


def _shrunk(text: str) -> str:
    for old, new in SHRINK.items():
        assert old in text, f"docs/guide.md no longer contains {old!r}: update SHRINK"
        text = text.replace(old, new)
    return text


@pytest.fixture
def guide_env(tmp_path, monkeypatch):
    """An empty working folder, a cache holding a synthetic 'cifar10', no other data."""
    from deepnetsbench.data.cache import cache_path, write_cache
    from deepnetsbench.data.synthetic import synthetic_dataset

    root, work = tmp_path / "cache", tmp_path / "work"
    work.mkdir()
    images = synthetic_dataset(10, 32, n_train=128, n_test=200, seed=0)
    write_cache(dataclasses.replace(images, name="cifar10"), cache_path("cifar10", root))
    monkeypatch.setenv("DEEPNETS_BENCH_ROOT", str(root))
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    yield work


def test_the_guide_has_the_blocks_it_describes():
    blocks = guide_blocks(GUIDE.read_text(encoding="utf-8"))
    files = [info for lang, info, _ in blocks if info.startswith("file=")]
    assert files == ["file=tiny_ghn.py", "file=tiny_method.py"]
    assert {lang for lang, _, _ in blocks} == {"bash", "python"}
    assert sum(lang == "python" and not info for lang, info, _ in blocks) >= 3


def _block_module(name: str, tmp_path: Path, monkeypatch):
    """Import the guide's ``python file=NAME`` block as a module."""
    import importlib

    code = next(c for _, info, c in guide_blocks(GUIDE.read_text(encoding="utf-8"))
                if info == f"file={name}")
    (tmp_path / name).write_text(code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, Path(name).stem, raising=False)
    return importlib.import_module(Path(name).stem)


@pytest.mark.parametrize("split", ["test", "deep", "dense", "bnfree"])
def test_the_guides_predictor_fills_every_live_parameter_differentiably(split, tmp_path, monkeypatch,
                                                               one_thread):
    """The guide's TinyGHN on an evaluation architecture of each kind: every live parameter
    gets a finite tensor of its shape (the ones it leaves out have no node: dead parts of
    the network), and gradients reach every decoder in use and the messages."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    from deepnetsbench.graph.derive import graph_from_spec
    from deepnetsbench.space.network import Network
    from deepnetsbench.space.sampler import split_item

    torch.manual_seed(0)
    tiny = _block_module("tiny_ghn.py", tmp_path, monkeypatch)
    spec = split_item(split, 0)
    model, graph = Network(spec, 10, 32), graph_from_spec(spec, 10, 32)
    ghn = tiny.TinyGHN()
    params = ghn(graph, model)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert set(params) <= set(shapes)
    for name, value in params.items():
        assert value.shape == shapes[name] and torch.isfinite(value).all(), name
    missing = set(shapes) - set(params)
    assert not missing & set(graph.param_names)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(10, (8,))
    if missing:  # dead parameters: changing them changes nothing
        model.eval()
        with torch.no_grad():
            out = functional_call(model, params, (x,))
            noise = {n: torch.randn(shapes[n]) for n in missing}
            assert torch.equal(functional_call(model, {**params, **noise}, (x,)), out)
        model.train()  # as the guide trains: BatchNorm on the batch's statistics
    F.cross_entropy(functional_call(model, params, (x,)), y).backward()
    assert any(w.grad is not None and w.grad.abs().sum() > 0 for w in ghn.parameters())
    ghn.zero_grad()  # every decoder in use, and the messages, are on the path to the tensors
    sum(v.square().sum() for v in ghn(graph, model).values()).backward()
    used = {str(len(s)) if len(s) in (1, 2, 4) else "2" for s in shapes.values()}
    for kind in used | ({"b"} if any(n.endswith("bias") and n not in graph.param_names
                                     for n in params) else set()):
        assert ghn.decode[kind].weight.grad.abs().sum() > 0, kind
    assert ghn.message.weight.grad.abs().sum() > 0


def test_every_block_of_the_guide_runs(guide_env, capsys):
    import torch

    torch.set_num_threads(1)
    runner = CliRunner()
    blocks = guide_blocks(_shrunk(GUIDE.read_text(encoding="utf-8")))
    for n, (lang, info, code) in enumerate(blocks, start=1):
        if info.startswith("file="):
            (guide_env / info.removeprefix("file=")).write_text(code, encoding="utf-8")
        elif lang == "python":
            exec(compile(code, f"docs/guide.md block {n}", "exec"), {"__name__": "__main__"})
        else:
            for line in code.splitlines():
                words = shlex.split(line, comments=True)
                if not words:
                    continue
                assert words[0] == "deepnets-bench", f"block {n}: {line}"
                res = runner.invoke(main, words[1:])
                assert res.exit_code == 0, f"block {n}: {line}\n{res.output}"
    out = capsys.readouterr().out
    assert "saved tiny_ghn.pt" in out and "tiny-ghn: top-1" in out and "kaiming: top-1" in out
    from deepnetsbench.results import load_results

    res = load_results(guide_env / "tiny_method-test-cifar10.json")
    assert res.method.name == "tiny-ghn" and res.aggregates.n == 2
    assert res.aggregates.n_failed == 0, [r.error for r in res.records]
    assert res.method.num_params and res.method.num_params > 10_000
