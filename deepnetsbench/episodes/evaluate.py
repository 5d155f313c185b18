"""Evaluating a method on a dataset-episode suite, with the architecture evaluator's machinery.

The architecture evaluator (:mod:`deepnetsbench.eval.runner`) scores one network per record:
build it, time ``predict``, check the prediction, score it with batch statistics, journal
the record. Here the *episode* is the record and the network is the suite's fixed target:
this module only swaps what is iterated. Per episode it builds

- an architecture record for the target (``build_model`` at the episode's class count),
- the episode's query images as the evaluator's test images,
- ``task.support`` = the episode's support images and labels (on the device, normalized,
  labels in the episode's class order),

and hands them to :func:`deepnetsbench.eval.scoring.evaluate_arch`; the method's isolated
worker (:mod:`deepnetsbench.eval.isolation`: it gets the target and the support set, never
the query images or labels), the journal and the results schema are the evaluator's. One run = one method x one split x one dataset (inter suites: pick the
test dataset) x one target; see docs/episodes.md.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from deepnetsbench.episodes.suite import Episode, EpisodeSuite
from deepnetsbench.episodes.targets import build_target, target_info
from deepnetsbench.errors import BenchError

__all__ = ["EpisodeArch", "SupportTrainingSpeedup", "evaluate_episodes", "evaluate_from_config",
           "select_dataset"]

NO_FLIP = ("mnist", "svhn")  # digits: a mirrored digit is another (or no) digit
LABEL_ORDER = ("output c of the classifier = the episode's c-th class; support and query "
               "labels are positions in the episode's class list")


@dataclass
class EpisodeArch:
    """The target network of one episode, shaped like a split's ``ArchRecord``."""

    index: int
    name: str
    target: str
    image_size: int
    episode: Episode | None = None
    _graphs: dict = field(default_factory=dict, repr=False)

    spec = None  # not a DeepNets-1M architecture

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.build_model().parameters())

    def build_model(self, num_classes: int = 10, image_size: int | None = None) -> torch.nn.Module:
        return build_target(self.target, num_classes, image_size or self.image_size)

    def graph_for(self, num_classes: int, image_size: int):
        key = (num_classes, image_size)
        if key not in self._graphs:
            from deepnetsbench.graph.trace import graph_from_module

            self._graphs[key] = graph_from_module(self.build_model(num_classes, image_size),
                                                  image_size)
        return self._graphs[key]

    @property
    def graph(self):
        return self.graph_for(10, self.image_size)


def select_dataset(suite: EpisodeSuite, split: str, dataset: str | None) -> str:
    """The dataset a run scores: the only one of the split, or ``dataset`` (aliases ok)."""
    names = suite.test_datasets(split)
    if not names:
        raise BenchError(f"{suite.path.name} has no {split} episodes",
                         "use another --split or rebuild the suite with some")
    if dataset is None:
        if len(names) == 1:
            return names[0]
        raise BenchError(f"the {split} split of {suite.path.name} holds several datasets "
                         f"({', '.join(names)})", "pick one with --dataset")
    from deepnetsbench.data.registry import canonical_name

    for candidate in (dataset, canonical_name(dataset)):
        if candidate in names:
            return candidate
    raise BenchError(f"dataset {dataset!r} is not in the {split} split of {suite.path.name}",
                     f"use one of {', '.join(names)}")


def evaluate_episodes(
    method: Any,
    suite_file: str | os.PathLike | EpisodeSuite | None = None,
    *,
    kind: str | None = None,
    split: str = "test",
    dataset: str | None = None,
    target: str | None = None,
    device: str = "cpu",
    out: str | os.PathLike = "results.json",
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    episodes: Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int = 64,
    time_limit: float | None = 300.0,
    eval_images: int | None = None,
    flops: bool = True,
    restart: bool = False,
    progress: bool = True,
    options: Mapping[str, Any] | None = None,
    hooks: Sequence[Any] = (),
    datasets: Any = None,
    console: Any = None,
    isolation: str = "process",
) -> Any:
    """Evaluate ``method`` (a method file, a built-in name or a ``LoadedMethod``) on the
    episodes of ``split`` (test or val) of a suite; journal beside ``out`` and write the
    results JSON there (re-running resumes). Returns the :class:`~deepnetsbench.results.Results`.

    ``target`` defaults to the suite's first target; ``episodes``/``limit`` select episodes
    by their position among the chosen dataset's episodes; ``eval_images`` scores only the
    first N query images of each episode (quick checks); ``hooks`` are evaluator record
    hooks that also see ``ctx.task.support`` (e.g. :class:`SupportTrainingSpeedup`)."""
    from deepnetsbench.eval.accuracy import resolve_device
    from deepnetsbench.eval.runner import (
        EvalConfig,
        EvalImages,
        Journal,
        check_out,
        evaluate_arch,
        known_meta,
        make_predictor,
        run_extra,
        run_journaled,
        select_indices,
        start_predictor,
    )

    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:  # "cuda" and "cuda:0" are one device
        dev = torch.device("cuda", torch.cuda.current_device())
    if isinstance(suite_file, EpisodeSuite):
        suite = suite_file
    else:
        suite = EpisodeSuite(suite_file, kind=kind, root=root, datasets=datasets)
    if kind is not None and suite.kind != kind:
        raise BenchError(f"{suite.path} is an {suite.kind} suite, not {kind}",
                         f"pass the {kind} suite file")
    if split == "train":
        raise BenchError("training episodes are not an evaluation split",
                         "use --split test (or val for model selection)")
    target = target or suite.targets[0]
    target_info(target)
    if target not in suite.targets:
        raise BenchError(f"target {target!r} is not declared by {suite.path.name}",
                         f"use one of {', '.join(suite.targets)}")
    name = select_dataset(suite, split, dataset)
    positions = suite.indices_of(split, name)
    chosen = select_indices(len(positions), episodes, limit)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise BenchError(f"--batch-size must be a positive integer, got {batch_size}",
                         "use the protocol's 64")
    predictor = make_predictor(method, dev, isolation, options)
    loaded = predictor.ref

    out = Path(out)
    jpath = check_out(out, restart)
    cfg = EvalConfig(suite=suite.kind, split=split, dataset=name, device=str(dev),
                     limit=limit, archs=episodes, seed=seed, out=out, root=root,
                     batch_size=batch_size, time_limit=time_limit, eval_images=eval_images,
                     flops=flops, restart=restart, progress=progress, isolation=isolation)
    first = suite.episode(split, positions[chosen[0]]) if chosen else None
    meta = suite.dataset_meta(name)
    identity = {
        "protocol": _protocol_version(), "suite": suite.kind,
        "method": {"key": loaded.key, "options": loaded.options},
        "split": {"name": split, "sha256": suite.sha256, "target": target},
        "dataset": {"name": name, "content_sha256": meta["content_sha256"],
                    "eval_images": eval_images, "image_size": suite.image_size},
        "batch_size": batch_size, "bn_mode": "batch", "seed": seed,
        "time_limit_s": time_limit or None, "device": str(dev), "flops": flops,
        "extras": [getattr(h, "name", type(h).__name__) for h in hooks],
        "isolation": isolation,
    }
    journal = Journal(jpath, identity, restart)
    todo = [j for j in chosen if j not in journal.records]
    if not todo:
        known_meta(predictor, journal)
    current: dict[int, Episode] = {}

    def episode(j: int) -> Episode:  # read once per episode (described, then evaluated)
        if j not in current:
            current.clear()
            current[j] = suite.episode(split, positions[j])
        return current[j]

    return run_journaled(
        journal, todo, len(chosen), out,
        describe=lambda j: episode(j).name,
        evaluate_one=lambda j: _evaluate_one(suite, episode(j), j, target, predictor, cfg, dev,
                                             hooks, EvalImages, evaluate_arch),
        finish=lambda status: _results(loaded, suite, split, name, target, first, cfg, dev,
                                       journal, chosen, positions, status, run_extra(predictor)),
        setup=lambda: start_predictor(predictor, journal), progress=progress,
        console=console or _console(), teardown=predictor.close)


def _evaluate_one(suite: EpisodeSuite, ep: Episode, j: int, target: str, predictor: Any,
                  cfg: Any, dev: torch.device, hooks: Sequence[Any], images_cls: Any,
                  evaluate_arch: Any) -> Any:
    from deepnetsbench.results import Record

    support = suite.support_tensors(ep, dev)  # the queries go through EvalImages
    images = images_cls(suite.query_view(ep), suite.image_size, dev, cfg.eval_images)
    rec = EpisodeArch(index=j, name=ep.name, target=target, image_size=suite.image_size,
                      episode=ep)
    # The worker gets the target and the support set; not the episode's query indices.
    record = evaluate_arch(rec, predictor, images, cfg, dev, hooks, support=support,
                           job_rec=replace(rec, episode=None))
    extra = {**record.extra, "episode": ep.index, "dataset": ep.dataset,
             "classes": list(ep.classes), "support_images": len(ep.support),
             "query_images": images.eval_images}
    return Record.model_validate({**record.model_dump(), "extra": extra})


def _protocol_version() -> str:
    from deepnetsbench.eval.runner import PROTOCOL_VERSION

    return PROTOCOL_VERSION


def _results(loaded: Any, suite: EpisodeSuite, split: str, name: str, target: str,
             first: Episode | None, cfg: Any, dev: torch.device, journal: Any,
             chosen: Sequence[int], positions: Sequence[int], status: str,
             isolation: dict[str, Any]) -> Any:
    from deepnetsbench.results import (
        DatasetInfo,
        Protocol,
        Results,
        SplitInfo,
        aggregate,
        environment_info,
        utc_now,
    )

    records = [journal.records[i] for i in sorted(chosen) if i in journal.records]
    complete = len(records) == len(chosen)
    notes = "" if complete else (
        f"incomplete ({status}): {len(records)} of {len(chosen)} episodes evaluated; "
        "re-run the same command to resume")
    queries = [int(r.extra.get("query_images", 0)) for r in records] or (
        [len(first.query)] if first is not None else [0])
    meta = suite.dataset_meta(name)
    selection: Any = "all" if len(chosen) == len(positions) else (
        f"first {len(chosen)}" if list(chosen) == list(range(len(chosen))) else list(chosen))
    extra = {
        "complete": complete, "episodes": selection, "suite_size": len(positions),
        "suite_file": suite.path.name, "target": target, "label_order": LABEL_ORDER,
        "suite_config": suite.config, "support_images": len(first.support) if first else 0,
        "query_images_total": int(sum(queries)), "method_options": loaded.options,
        **isolation,
        "seed_rule": "episode j uses arch_seed(seed, j) (numpy SeedSequence([seed, j]))",
    }
    protocol = Protocol(
        version=_protocol_version(), split=split, dataset=name,
        num_classes=first.num_classes if first else int(meta["num_classes"]),
        image_size=suite.image_size, batch_size=cfg.batch_size, bn_mode="batch",
        eval_images=int(statistics.median(queries)), seed=cfg.seed,
        time_limit_s=cfg.time_limit or None, device=str(dev), extra=extra)
    return Results(
        suite=suite.kind, protocol=protocol,
        split=SplitInfo(name=split, sha256=suite.sha256,
                        generator_version=suite.generator_version, num_items=len(positions)),
        dataset=DatasetInfo(name=name, content_sha256=str(meta["content_sha256"]),
                            num_test=int(meta["n_test"])),
        method=loaded.info(), environment=environment_info(dev),
        started_at=journal.started_at, finished_at=utc_now(), records=records,
        aggregates=aggregate(records), notes=notes)


def evaluate_from_config(method_spec: str, cfg: Any, options: Mapping[str, Any] | None = None,
                         hooks: Sequence[Any] = (), console: Any = None, *,
                         suite_file: str | os.PathLike | None = None,
                         target: str | None = None) -> Any:
    """The ``deepnets-bench eval --suite episodes-*`` entry point: an ``EvalConfig`` whose
    ``suite`` is an episode kind, ``split`` test|val, ``dataset`` the test dataset (inter;
    None or the source for intra), ``archs``/``limit`` the episodes."""
    dataset = cfg.dataset
    if cfg.suite == "episodes-intra" and dataset in ("cifar10", None):
        dataset = None  # the evaluator's default dataset means "the suite's own" here
    return evaluate_episodes(
        method_spec, suite_file, kind=cfg.suite, split=cfg.split, dataset=dataset,
        target=target, device=cfg.device, out=cfg.out, root=cfg.root, limit=cfg.limit,
        episodes=cfg.archs, seed=cfg.seed, batch_size=cfg.batch_size,
        time_limit=cfg.time_limit, eval_images=cfg.eval_images, flops=cfg.flops,
        restart=cfg.restart, progress=cfg.progress, options=options, hooks=hooks,
        console=console, isolation=getattr(cfg, "isolation", "process"))


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


# ----------------------------------------------------------------------------- speed-up


class _Reached(Exception):
    """Training reached the prediction's accuracy (ends the reference run early)."""


class SupportTrainingSpeedup:
    """Record hook: how long reference training *on the episode's support set* takes to
    reach the accuracy of the predicted parameters (docs/speedup.md, per episode).

    A fresh target (seeded with the episode's seed) is trained from scratch with
    :func:`deepnetsbench.training.train` (``trainer`` "gc" = SGD with gradient
    centralization, or "sgd") on ``task.support`` and scored on the episode's query images
    every ``eval_every`` epochs until it reaches that accuracy or the budget runs out
    (stopping early changes nothing before that point: the schedule is the budget's). The
    time is device-synchronised training time on the same device as the prediction.
    ``hflip`` None: flip except on digits (``NO_FLIP``). ``episodes``: only the first N
    records of a run (training is the expensive part)."""

    name = "speedup"

    def __init__(self, trainer: str = "gc", budget: str = "30ep,120s", eval_every: float = 0.5,
                 batch_size: int = 64, lr: float = 0.05, hflip: bool | None = None,
                 episodes: int | None = None):
        from deepnetsbench.training import Budget

        self.trainer, self.budget = trainer, Budget.parse(budget)
        self.eval_every, self.batch_size, self.lr, self.hflip = eval_every, batch_size, lr, hflip
        self.episodes = episodes

    def __call__(self, ctx: Any) -> Mapping[str, Any] | None:
        from deepnetsbench.results import SpeedupRecord
        from deepnetsbench.training import TrainConfig, speedup, time_to_accuracy, train

        if ctx.task.support is None or ctx.record.get("predict_time_s") is None:
            return None
        if self.episodes is not None and int(ctx.record["index"]) >= self.episodes:
            return None
        sx, sy = ctx.task.support
        qx, qy = ctx.images.tensors()
        torch.manual_seed(ctx.task.seed)
        model = ctx.task.arch.build_model(ctx.task.num_classes, ctx.task.image_size)
        config = TrainConfig(optimizer=self.trainer, lr=self.lr, lr_ref_batch=self.batch_size,
                             batch_size=min(self.batch_size, len(sx)),
                             hflip=self.hflip if self.hflip is not None else
                             ctx.task.dataset not in NO_FLIP,
                             seed=ctx.task.seed)
        target = float(ctx.record["top1"])
        seen: list[Any] = []

        def stop_when_reached(curve: Any) -> None:
            seen[:] = [curve]
            if curve.points[-1].top1 >= target:  # the time-to-accuracy is known: stop
                raise _Reached()

        try:
            curve = train(model, sx, sy, qx, qy, config, ctx.task.device, self.budget,
                          eval_every=self.eval_every, callback=stop_when_reached)
        except _Reached:
            curve = seen[0]
        tta = time_to_accuracy(curve, target_top1=target)
        sp = speedup(tta, float(ctx.record["predict_time_s"]))
        extra = {**ctx.record.get("extra", {}),
                 "speedup_train_final_top1": curve.final.top1,
                 "speedup_train_best_top1": curve.best("top1"),
                 "speedup_train_seconds_total": curve.total_seconds,
                 "speedup_train_epochs": curve.final.epochs,
                 "speedup_train_data": f"episode support set ({len(sx)} images)"}
        return {"speedup": SpeedupRecord(
            trainer=f"{self.trainer}-support", target_top1=float(ctx.record["top1"]),
            train_seconds=tta.seconds_or_bound, lower_bound=not tta.reached, value=sp.value,
            budget=str(self.budget)), "extra": extra}
