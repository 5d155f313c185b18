"""The evaluation of one method on one split: the run, its identity and its results file.

One run = one method x one split x one image dataset (docs/protocol.md). For each
architecture (:mod:`deepnetsbench.eval.scoring`) the evaluator builds its own network, the
method predicts the parameters in a separate worker process
(:mod:`deepnetsbench.eval.isolation`; it never sees the test images, the journal or the
scorer), the tensors are checked by name and shape, loaded and scored. Records are
journaled as they finish (:mod:`deepnetsbench.eval.journal`), so a re-run resumes.

This module also re-exports the names callers have always imported from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.accuracy import resolve_device
from deepnetsbench.eval.inprocess import MethodTimeout
from deepnetsbench.eval.inputs import (
    MOCK_ARCHS,
    MOCK_IMAGES,
    MOCK_WIDTH,
    ArchSuite,
    EvalImages,
    open_images,
    open_mock,
    open_split,
    select_indices,
)
from deepnetsbench.eval.isolation import MethodRef, Predictor, make_predictor, method_ref
from deepnetsbench.eval.journal import Journal, check_out, journal_path, run_journaled
from deepnetsbench.eval.methods import LoadedMethod, MethodMeta
from deepnetsbench.eval.progress import RunProgress, run_cost
from deepnetsbench.eval.scoring import (
    BN_MODE,
    RecordContext,
    RecordHook,
    arch_seed,
    count_macs,
    evaluate_arch,
    hook_name,
)
from deepnetsbench.results import (
    PROTOCOL_VERSION,
    DatasetInfo,
    Protocol,
    Results,
    environment_info,
    utc_now,
)
from deepnetsbench.results import aggregate as _aggregate

__all__ = [
    "DEFAULT_TIME_LIMIT", "MOCK_ARCHS", "MOCK_IMAGES", "MOCK_WIDTH", "PROTOCOL_VERSION",
    "ArchSuite", "EvalConfig", "EvalImages", "Journal", "MethodRef", "MethodTimeout",
    "RecordContext", "RecordHook", "arch_seed", "check_out", "count_macs", "evaluate",
    "evaluate_arch", "journal_path", "method_ref", "open_images", "open_mock", "open_split",
    "run_evaluation", "run_journaled", "select_indices", "start_predictor", "summary_table",
]

DEFAULT_TIME_LIMIT = 300.0
FLOPS_DEFINITION = "multiply-accumulates of conv and linear layers, one image (attention matmuls excluded)"
TIMING_DEFINITION = ("perf_counter around predict() inside the method's worker process, "
                     "device-synchronised; building the network, handing the tensors over, "
                     "loading, checks and evaluation excluded")
IN_PROCESS_TIMING = ("perf_counter around predict() in the evaluator's process (--in-process), "
                     "device-synchronised")


@dataclass
class EvalConfig:
    """The options of one ``deepnets-bench eval`` run (see docs/protocol.md)."""

    suite: str = "deepnets1m"
    split: str = "test"
    release: str | None = None  # a named split release such as "ppuda" (None: the default)
    dataset: str = "cifar10"
    device: str = "cpu"
    limit: int | None = None
    archs: Sequence[int] | None = None
    seed: int = 0
    out: str | os.PathLike = "results.json"
    root: str | os.PathLike | None = None
    batch_size: int = 64
    time_limit: float | None = DEFAULT_TIME_LIMIT  # seconds per architecture; None: no limit
    eval_images: int | None = None  # first N test images (None: the official full test set)
    image_indices: Sequence[int] | None = None  # a fixed test-image subset (the lite suite)
    mock: bool = False
    restart: bool = False
    flops: bool = True
    progress: bool = True
    isolation: str = "process"  # "in-process": debugging only, results not submittable
    verify: bool = False  # hash even a large split file (the TRAIN split) at start


def _identity(method: MethodRef, suite: ArchSuite, images: EvalImages, cfg: EvalConfig,
              device: torch.device, hooks: Sequence[RecordHook]) -> dict[str, Any]:
    return {
        "protocol": PROTOCOL_VERSION,
        "suite": cfg.suite,
        "method": {"key": method.key, "options": method.options},
        "split": {"name": suite.info.name, "sha256": suite.info.sha256, **suite.extra},
        "dataset": {"name": images.name, "content_sha256": images.content_sha256,
                    "eval_images": images.eval_images, "image_size": images.image_size},
        "batch_size": cfg.batch_size, "bn_mode": BN_MODE, "seed": cfg.seed,
        "time_limit_s": cfg.time_limit or None, "device": str(device), "flops": cfg.flops,
        "extras": [hook_name(h) for h in hooks], "isolation": cfg.isolation,
    }


def resolve_run_device(name: str) -> torch.device:
    """The device of a run; ``cuda`` and ``cuda:0`` are one device."""
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def start_predictor(predictor: Predictor, journal: Journal) -> None:
    """Start the method's worker (load, setup) and journal what it reported about itself."""
    predictor.start()
    if predictor.ref.meta is not None:
        journal.note_method(asdict(predictor.ref.meta))


def known_meta(predictor: Predictor, journal: Journal) -> None:
    """A re-run with nothing left to do starts no worker: take the method's meta from the
    journal (or, for an old journal, start the worker once to ask)."""
    if predictor.ref.meta is None and journal.method:
        try:
            predictor.ref.meta = MethodMeta(**journal.method)
        except TypeError:
            predictor.ref.meta = None
    if predictor.ref.meta is None:
        start_predictor(predictor, journal)


def mock_restart(cfg: EvalConfig, identity: dict[str, Any], console: Any):
    """A mock run restarts itself when only the content of its method file changed (the
    edit-run loop of the template); it says so. Other differences are refused as usual."""
    if not cfg.mock:
        return None, None

    def disposable(old: Any) -> bool:
        if not isinstance(old, dict) or not isinstance(old.get("method"), dict):
            return False
        before, now = str(old["method"].get("key", "")), identity["method"]["key"]
        same_rest = ({**old, "method": None} == {**identity, "method": None}
                     and old["method"].get("options") == identity["method"]["options"])
        return before.startswith("file:") and now.startswith("file:") and same_rest

    def note(diff: str) -> None:
        (console or _stderr()).print(f"[yellow]the method changed since {journal_path(cfg.out)} "
                                     f"was written ({diff}): the mock run starts afresh[/]")
    return disposable, note


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


def run_evaluation(method: LoadedMethod | MethodRef | str, suite: ArchSuite, dataset: Any,
                   cfg: EvalConfig, image_size: int | None = None,
                   hooks: Sequence[RecordHook] = (), console: Any = None,
                   options: Mapping[str, Any] | None = None) -> Results:
    """Evaluate ``method`` on the selected architectures of ``suite`` with ``dataset``'s test
    images; journal records beside ``cfg.out``, write the results JSON there, return it.

    ``method`` is a built-in name, a method file or a LoadedMethod; its ``predict`` runs in a
    worker process (``cfg.isolation = "in-process"`` only for debugging)."""
    device = resolve_run_device(cfg.device)
    if not isinstance(cfg.batch_size, int) or cfg.batch_size < 1:
        raise BenchError(f"--batch-size must be a positive integer, got {cfg.batch_size}",
                         "use the protocol's 64")
    predictor = make_predictor(method, device, cfg.isolation, options)
    ref = predictor.ref
    out = Path(cfg.out)
    jpath = check_out(out, cfg.restart)
    indices = select_indices(len(suite), cfg.archs, cfg.limit)
    images = EvalImages(dataset, image_size or dataset.image_size, device, cfg.eval_images,
                        cfg.image_indices)
    identity = json.loads(json.dumps(_identity(ref, suite, images, cfg, device, hooks)))
    discard, note = mock_restart(cfg, identity, console)
    journal = Journal(jpath, identity, cfg.restart, discard_if=discard, note=note)
    todo = [i for i in indices if i not in journal.records]
    if not todo:
        known_meta(predictor, journal)
    console = console or _stderr()
    bar = RunProgress(cfg.progress, console, len(indices), len(indices) - len(todo),
                      device=str(device))

    def setup() -> None:
        start_predictor(predictor, journal)
        images.tensors()  # prepared once, before the first architecture
        if cfg.progress:  # what the run will cost, before its first architecture
            cost = run_cost(suite, todo, images)
            bar.set_weights(cost.weights())
            console.print(cost.line(), highlight=False)

    return run_journaled(
        journal, todo, len(indices), out,
        describe=lambda i: str(suite[i].name),
        evaluate_one=lambda i: evaluate_arch(suite[i], predictor, images, cfg, device, hooks,
                                             progress=bar),
        finish=lambda status: _results(predictor, suite, images, cfg, device, journal, indices,
                                       status),
        setup=setup, progress=cfg.progress, console=console, teardown=predictor.close,
        bar=bar)


def run_extra(predictor: Predictor) -> dict[str, Any]:
    """What the results record about where ``predict`` ran."""
    extra: dict[str, Any] = {"isolation": predictor.isolation,
                             "timing": TIMING_DEFINITION if predictor.isolation == "process"
                             else IN_PROCESS_TIMING}
    if predictor.isolation == "process":
        extra["worker_starts"] = predictor.starts
    return extra


def _results(predictor: Predictor, suite: ArchSuite, images: EvalImages, cfg: EvalConfig,
             device: torch.device, journal: Journal, indices: Sequence[int],
             status: str) -> Results:
    method = predictor.ref
    records = [journal.records[i] for i in sorted(indices) if i in journal.records]
    complete = len(records) == len(indices)
    notes = ""
    if not complete:
        notes = (f"incomplete ({status}): {len(records)} of {len(indices)} architectures "
                 "evaluated; re-run the same command to resume")
    selection: Any = "all" if len(indices) == len(suite) else (
        f"first {len(indices)}" if list(indices) == list(range(len(indices))) else list(indices))
    extra = {
        "complete": complete, "architectures": selection, "suite_size": len(suite),
        "method_options": method.options, **run_extra(predictor),
        "flops": FLOPS_DEFINITION if cfg.flops else None,
        "seed_rule": "architecture i uses arch_seed(seed, i) (numpy SeedSequence([seed, i]))",
        **suite.extra,
    }
    protocol = Protocol(
        version=PROTOCOL_VERSION, split=suite.info.name, dataset=images.name,
        num_classes=images.num_classes, image_size=images.image_size,
        batch_size=cfg.batch_size, bn_mode=BN_MODE, eval_images=images.eval_images,
        seed=cfg.seed, time_limit_s=cfg.time_limit or None, device=str(device), extra=extra)
    return Results(
        suite=cfg.suite, protocol=protocol, split=suite.info,
        dataset=DatasetInfo(name=images.name, content_sha256=images.content_sha256,
                            num_test=images.num_test),
        method=method.info(), environment=environment_info(device),
        started_at=journal.started_at, finished_at=utc_now(), records=records,
        aggregates=_aggregate(records), notes=notes)


def evaluate(method_spec: str, cfg: EvalConfig, options: Mapping[str, Any] | None = None,
             hooks: Sequence[RecordHook] = (), console: Any = None) -> Results:
    """Everything ``deepnets-bench eval`` does: name the method, open the split and images,
    run. The method file is not imported here: its worker loads it."""
    from deepnetsbench.eval.lite import LITE, open_lite

    if cfg.suite not in ("deepnets1m", LITE):
        raise BenchError(f"suite {cfg.suite!r} is not available in this evaluator",
                         "use --suite deepnets1m (dataset-episode suites come separately)")
    resolve_device(cfg.device)  # fail before any slow loading
    method = method_ref(method_spec, options)
    if cfg.suite == LITE:
        suite, dataset, size, cfg = open_lite(cfg)
    elif cfg.mock:
        suite, dataset, size = open_mock(cfg.split, cfg.dataset, cfg.root, cfg.seed)
    else:
        suite = open_split(cfg.split, cfg.root, verify="full" if cfg.verify else True,
                           release=cfg.release)
        dataset, size = open_images(cfg.dataset, cfg.root)
    return run_evaluation(method, suite, dataset, cfg, size, hooks, console)


# ----------------------------------------------------------------------------- display


def _pm(stat: Any, scale: str = "{:.2f}") -> str:
    if stat.mean is None:
        return "-"
    text = scale.format(stat.mean)
    return text + (f" ± {scale.format(stat.se)}" if stat.se is not None else "")


def summary_table(results: Results):
    """A rich Table with the run's aggregates (narrow: one statistic per row)."""
    from rich.markup import escape
    from rich.table import Table

    agg = results.aggregates
    table = Table(title=escape(f"{results.method.name}: {results.split.name} x "
                               f"{results.dataset.name}"), show_header=True)
    table.add_column("aggregate")
    table.add_column("mean ± s.e.", justify="right")
    table.add_column("95% CI", justify="right")

    def ci(stat: Any, fmt: str = "{:.2f}") -> str:
        if stat.ci95_low is None:
            return "-"
        return f"[{fmt.format(stat.ci95_low)}, {fmt.format(stat.ci95_high)}]"

    table.add_row("architectures", f"{agg.n} ({agg.n_ok} ok, {agg.n_failed} failed)", "")
    table.add_row("top-1 %", _pm(agg.top1), ci(agg.top1))
    table.add_row("top-5 %", _pm(agg.top5), ci(agg.top5))
    table.add_row("predict s", _pm(agg.predict_time_s, "{:.4f}"),
                  ci(agg.predict_time_s, "{:.4f}"))
    return table
