"""The results JSON: one file per evaluation run, the unit the leaderboard accepts.

Every evaluator (``deepnets-bench eval``, the episode suites, the baselines) writes one
:class:`Results`. The file carries the per-architecture records *and* the aggregates; the
leaderboard recomputes :func:`aggregate` from the records and refuses any mismatch, so the
records are the source of truth. The schema is versioned (:data:`SCHEMA_VERSION`); see
``docs/results.md`` for every field.

Loading many runs for analysis is one call::

    from deepnetsbench.results import results_to_dataframe
    df = results_to_dataframe(["a.json", "b.json"])   # one row per architecture
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from deepnetsbench.errors import BenchError
from deepnetsbench.fileio import (  # noqa: F401  (re-exported: the results API)
    MAX_JSON_DEPTH,
    MAX_RESULTS_BYTES,
    atomic_write_text,
    loads_strict,
    one_line_text,
    read_bounded,
)

SCHEMA_VERSION = "1.1"  # 1.1: method.paper, method.training_budget (optional)
#: Version of the evaluation protocol. 2: ``predict`` runs in an isolated worker process and
#: its time no longer includes loading the output (protocol.extra.isolation / timing).
PROTOCOL_VERSION = "2"
SUITES = ("deepnets1m", "deepnets1m-lite", "episodes-intra", "episodes-inter")
DEFAULT_N_BOOT = 10000
DEFAULT_BOOT_SEED = 0

Suite = Literal["deepnets1m", "deepnets1m-lite", "episodes-intra", "episodes-inter"]


def _finite_tree(value: Any) -> Any:
    """Refuse NaN/Infinity anywhere in free-form data: JSON has no such numbers, and one
    of them made the whole static page unparsable."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"non-finite number {v!r} (JSON allows finite numbers only)")
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return value


#: A free-form JSON object (``extra`` dicts): any content, but finite numbers only.
JSONDict = Annotated[dict[str, Any], AfterValidator(_finite_tree)]


class _Model(BaseModel):
    # Unknown keys are refused: a typo in a hand-made file must not pass silently.
    # Free-form data goes in the ``extra`` dicts. NaN/Infinity are refused everywhere.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class Protocol(_Model):
    """The fixed evaluation protocol the numbers were measured under."""

    version: str = Field(description="Protocol version of the evaluator, e.g. '1'.")
    split: str = Field(description="Architecture split name (test, wide, deep, ...).")
    dataset: str = Field(description="Image dataset name (cifar10, ...).")
    num_classes: int = Field(ge=1)
    image_size: int = Field(ge=1)
    batch_size: int = Field(default=64, ge=1, description="Evaluation batch size (64).")
    bn_mode: str = Field(default="batch", description="'batch': BatchNorm uses batch statistics.")
    eval_images: int = Field(ge=0, description="Number of test images evaluated per architecture.")
    seed: int = 0
    time_limit_s: float | None = Field(default=None, description="Per-architecture time limit.")
    device: str = Field(description="Device the predictions and evaluation ran on (cpu, cuda:0).")
    extra: JSONDict = Field(default_factory=dict)


class SplitInfo(_Model):
    """Which architecture split, pinned by the sha256 of its file."""

    name: str
    sha256: str
    generator_version: str
    num_items: int = Field(ge=0)


class DatasetInfo(_Model):
    """Which image dataset, pinned by the sha256 of its decoded content."""

    name: str
    content_sha256: str
    num_test: int = Field(ge=0)


class MethodInfo(_Model):
    """The parameter-prediction method: what it is, where its code lives, what it saw."""

    name: str = Field(min_length=1)
    version: str = ""
    url: str = Field(default="", description="Public code link.")
    num_params: int | None = Field(default=None, ge=0, description="Parameters of the predictor.")
    trained_on: str | None = Field(default=None, description="Training data of the predictor.")
    training_budget: str | None = Field(
        default=None, description="Compute the predictor was trained with, in words "
        "(e.g. '70 min on 4 CPU cores, 6000 steps'); shown next to its scores.")
    paper: str = Field(default="", description="Link to the method's paper (http(s)).")
    file_sha256: str | None = Field(default=None, description="sha256 of the method file.")
    builtin: bool = False
    description: str = ""


class Environment(_Model):
    """Software and hardware of the run; deliberately holds no host name or user data."""

    deepnets_bench: str
    python: str
    torch: str
    torchvision: str
    cuda: str | None = None
    device: str
    gpu: str | None = None
    cpu: str
    platform: str


class SpeedupRecord(_Model):
    """How much faster predicting was than training (see docs/speedup.md).

    ``value`` = ``train_seconds`` (reference training time to reach ``target_top1``, the
    prediction's accuracy) / prediction time. When training never reached the target within
    ``budget``, ``train_seconds`` is the time spent and ``value`` a lower bound.
    """

    trainer: str
    target_top1: float
    train_seconds: float | None = Field(default=None, ge=0)
    lower_bound: bool = False
    value: float | None = Field(default=None, ge=0)
    budget: str = ""


class Record(_Model):
    """One architecture's result. Accuracies are percentages (0..100)."""

    index: int = Field(ge=0, description="Position of the architecture in the split.")
    name: str
    status: Literal["ok", "failed"]
    error: str | None = None
    top1: float | None = Field(default=None, ge=0, le=100)
    top5: float | None = Field(default=None, ge=0, le=100)
    predict_time_s: float | None = Field(default=None, ge=0)
    num_params: int | None = Field(default=None, ge=0)
    flops: int | None = Field(default=None, ge=0)
    speedup: SpeedupRecord | None = None
    finetune: JSONDict | None = None
    extra: JSONDict = Field(default_factory=dict)

    @model_validator(mode="after")
    def _status_consistent(self) -> Record:
        # top5 is checked by Results: published figures (a paper's table) may lack it.
        if self.status == "ok" and self.top1 is None:
            raise ValueError("a record with status 'ok' needs top1 and top5")
        if self.status == "failed" and not self.error:
            raise ValueError("a record with status 'failed' needs an error message")
        return self


class Stat(_Model):
    """Mean, standard error and 95% percentile-bootstrap interval over architectures."""

    mean: float | None = None
    se: float | None = None
    ci95_low: float | None = None
    ci95_high: float | None = None


class Aggregates(_Model):
    """Summary over the records; recomputed by the leaderboard (see :func:`aggregate`)."""

    n: int = Field(ge=0)
    n_ok: int = Field(ge=0)
    n_failed: int = Field(ge=0)
    top1: Stat
    top5: Stat
    predict_time_s: Stat
    speedup_gmean: float | None = None
    speedup_gmean_lower_bound: bool | None = None
    finetune_top1: Stat | None = None
    n_boot: int = Field(default=DEFAULT_N_BOOT, ge=1)
    bootstrap_seed: int = DEFAULT_BOOT_SEED


class Results(_Model):
    """One evaluation run of one method on one suite/split/dataset."""

    schema_version: str = SCHEMA_VERSION
    suite: Suite
    protocol: Protocol
    split: SplitInfo
    dataset: DatasetInfo
    method: MethodInfo
    environment: Environment
    started_at: datetime
    finished_at: datetime
    records: list[Record]
    aggregates: Aggregates
    notes: str = ""

    @field_validator("schema_version")
    @classmethod
    def _same_major(cls, v: str) -> str:
        if v.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"schema version {v!r} is not compatible with {SCHEMA_VERSION}")
        return v

    @field_validator("started_at", "finished_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        # Naive times are taken as UTC; aware ones are converted so every file reads alike.
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    @model_validator(mode="after")
    def _top5_measured(self) -> Results:
        # Every measured run has top-5; only published figures (protocol.extra.published,
        # entries of status 'published') may leave it out, all records alike.
        if is_published(self):
            return self
        missing = [r.index for r in self.records if r.status == "ok" and r.top5 is None]
        if missing:
            raise ValueError(f"record {missing[0]}: a record with status 'ok' needs top1 "
                             "and top5")
        return self


def is_published(results: Results) -> bool:
    """Whether ``results`` are a paper's published figures, not a run of the evaluator
    (``protocol.extra.published``; see :mod:`deepnetsbench.leaderboard.published`)."""
    return bool((results.protocol.extra or {}).get("published"))


# ----------------------------------------------------------------------------- aggregates


def _stat(values: Sequence[float], n_boot: int, seed: int) -> Stat:
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return Stat()
    mean = float(x.mean())
    if n == 1:
        return Stat(mean=mean, se=None, ci95_low=mean, ci95_high=mean)
    se = float(x.std(ddof=1) / math.sqrt(n))
    rng = np.random.default_rng(seed)
    # Chunked so that 10k resamples of a 1M-record split stay within memory.
    means = np.empty(n_boot, dtype=np.float64)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Stat(mean=mean, se=se, ci95_low=float(low), ci95_high=float(high))


def _finetune_top1(rec: Record) -> float:
    top1 = rec.finetune.get("top1") if rec.finetune else None
    if rec.status != "ok" or not isinstance(top1, int | float) or isinstance(top1, bool):
        return 0.0
    return float(top1)


def aggregate(records: Sequence[Record], n_boot: int = DEFAULT_N_BOOT,
              seed: int = DEFAULT_BOOT_SEED) -> Aggregates:
    """Summarise records; deterministic for a given ``(n_boot, seed)``.

    Failed records count as 0% top-1/top-5 (a method must not gain by failing) and are left
    out of the time and speed-up statistics. The 95% interval is a percentile bootstrap over
    architectures with ``numpy.random.default_rng(seed)``.
    """
    records = list(records)
    ok = [r for r in records if r.status == "ok"]
    top1 = [r.top1 if r.status == "ok" else 0.0 for r in records]
    top5 = [r.top5 if r.status == "ok" else 0.0 for r in records]
    if any(t is None for t in top5):  # published figures without top-5: undefined
        top5 = []
    times = [r.predict_time_s for r in ok if r.predict_time_s is not None]

    speedups = [r.speedup for r in ok if r.speedup is not None and r.speedup.value is not None]
    gmean = lower = None
    if speedups:
        if any(s.value == 0 for s in speedups):  # a target met at time 0
            gmean = 0.0
        else:
            gmean = float(math.exp(sum(math.log(s.value) for s in speedups) / len(speedups)))
        lower = any(s.lower_bound for s in speedups)

    # Fine-tuning may cover a subset; failed architectures are always in it, at 0%.
    tuned = [r for r in records if r.finetune is not None or r.status == "failed"]
    if not any(r.finetune is not None for r in records):
        tuned = []
    finetune = _stat([_finetune_top1(r) for r in tuned], n_boot, seed) if tuned else None

    return Aggregates(
        n=len(records), n_ok=len(ok), n_failed=len(records) - len(ok),
        top1=_stat(top1, n_boot, seed), top5=_stat(top5, n_boot, seed),
        predict_time_s=_stat(times, n_boot, seed),
        speedup_gmean=gmean, speedup_gmean_lower_bound=lower, finetune_top1=finetune,
        n_boot=n_boot, bootstrap_seed=seed,
    )


def aggregate_mismatch(results: Results, tol: float = 1e-6) -> str | None:
    """The first aggregate field that differs from a recomputation, or None when all agree."""
    fresh = aggregate(results.records, results.aggregates.n_boot, results.aggregates.bootstrap_seed)
    return _first_difference(results.aggregates.model_dump(), fresh.model_dump(), "aggregates", tol)


def _first_difference(a: Any, b: Any, where: str, tol: float) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            diff = _first_difference(a.get(key), b.get(key), f"{where}.{key}", tol)
            if diff:
                return diff
        return None
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return None if a == b else f"{where}: file has {a!r}, records give {b!r}"
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isclose(a, b, rel_tol=tol, abs_tol=tol):
            return None
        return f"{where}: file has {a!r}, records give {b!r}"
    return None if a == b else f"{where}: file has {a!r}, records give {b!r}"


# ----------------------------------------------------------------------------- files


def results_to_json(results: Results) -> str:
    """Canonical JSON text of a Results (stable key order, 2-space indent, strict JSON)."""
    return json.dumps(results.model_dump(mode="json"), indent=2, sort_keys=False,
                      allow_nan=False) + "\n"


def save_results(results: Results, path: str | os.PathLike) -> Path:
    """Atomically write ``results`` as JSON to ``path``."""
    atomic_write_text(path, results_to_json(results))
    return Path(path)


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(one_line_text(p, 40) for p in first["loc"]) or "<root>"
    return f"field '{loc}': {one_line_text(first['msg'], 200)}" + (
        f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else "")


def parse_results(data: Any, source: str = "<data>") -> Results:
    """Validate a decoded JSON object; errors become a one-line BenchError."""
    try:
        return Results.model_validate(data)
    except ValidationError as err:
        raise BenchError(f"{source} is not a valid results file: {_first_error(err)}",
                         "fix that field (see docs/results.md) or re-run the evaluator") from None


def load_results(path: str | os.PathLike) -> Results:
    """Read and validate a results JSON file (bounded size, strict JSON; see
    :func:`loads_strict`)."""
    path = Path(path)
    data = loads_strict(read_bounded(path), str(path))
    return parse_results(data, str(path))


# ----------------------------------------------------------------------------- analysis

DATAFRAME_COLUMNS = [
    "source", "suite", "split", "dataset", "method", "method_version", "protocol_version",
    "index", "name", "status", "error", "top1", "top5", "predict_time_s", "num_params", "flops",
    "speedup", "speedup_lower_bound", "speedup_trainer", "finetune_top1", "release",
]


def _results_of(item: Any) -> tuple[Results, str]:
    """(Results, source) of a Results, a leaderboard Entry, or a path to either file kind."""
    if isinstance(item, Results):
        return item, ""
    if isinstance(getattr(item, "results", None), Results):  # a leaderboard Entry
        return item.results, ""
    path = Path(item)
    # an entry wraps a results file, so it may be a little larger (leaderboard.load_entry)
    raw = read_bounded(path, max_bytes=MAX_RESULTS_BYTES + (1 << 20))
    data = loads_strict(raw, str(path))
    if isinstance(data, dict) and "results" in data and "content_sha256" in data:
        from deepnetsbench.leaderboard.entries import load_entry

        return load_entry(path).results, str(path)
    if len(raw) > MAX_RESULTS_BYTES:
        read_bounded(path)  # over a results file's limit: its own one-line refusal
    return parse_results(data, str(path)), str(path)


def results_to_dataframe(paths_or_results: Any):
    """One row per architecture record across any number of results: paths to results or
    leaderboard entry files, :class:`Results` or leaderboard ``Entry`` objects."""
    import pandas as pd

    if isinstance(paths_or_results, str | os.PathLike | Results) or hasattr(
            paths_or_results, "results"):
        paths_or_results = [paths_or_results]
    rows = []
    for item in paths_or_results if isinstance(paths_or_results, Iterable) else [paths_or_results]:
        res, source = _results_of(item)
        for r in res.records:
            sp = r.speedup
            rows.append({
                "source": source, "suite": res.suite, "split": res.split.name,
                "dataset": res.dataset.name, "method": res.method.name,
                "method_version": res.method.version, "protocol_version": res.protocol.version,
                "index": r.index, "name": r.name, "status": r.status, "error": r.error,
                "top1": r.top1, "top5": r.top5, "predict_time_s": r.predict_time_s,
                "num_params": r.num_params, "flops": r.flops,
                "speedup": sp.value if sp else None,
                "speedup_lower_bound": sp.lower_bound if sp else None,
                "speedup_trainer": sp.trainer if sp else None,
                "finetune_top1": (r.finetune or {}).get("top1"),
                "release": res.split.generator_version,
            })
    return pd.DataFrame(rows, columns=DATAFRAME_COLUMNS)


# ----------------------------------------------------------------------------- environment


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment_info(device: Any = "cpu") -> Environment:
    """Describe the software and hardware of this run (no host name, no user name)."""
    import torch
    import torchvision

    from deepnetsbench import __version__

    dev = torch.device(device)
    gpu = None
    if dev.type == "cuda" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(dev)
    return Environment(
        deepnets_bench=__version__, python=platform.python_version(), torch=torch.__version__,
        torchvision=torchvision.__version__, cuda=torch.version.cuda, device=str(dev), gpu=gpu,
        cpu=_cpu_model(), platform=f"{platform.system()}-{platform.release()}-{platform.machine()}",
    )


def utc_now() -> datetime:
    """Current time in UTC (for ``started_at`` / ``finished_at``)."""
    return datetime.now(UTC)


def json_schema() -> dict:
    """The JSON Schema of :class:`Results` (kept in ``docs/results.schema.json``)."""
    return Results.model_json_schema()


def write_json_schema(path: str | os.PathLike) -> None:
    atomic_write_text(path, json.dumps(json_schema(), indent=2) + "\n")


def example_results(method: str = "example", n: int = 8, seed: int = 0, *,
                    suite: str = "deepnets1m", split: str = "test", dataset: str = "cifar10",
                    split_sha256: str = "0" * 64, dataset_sha256: str = "1" * 64,
                    base_top1: float = 50.0, failed: Sequence[int] = (),
                    speedup: bool = False, finetune: bool = False,
                    n_boot: int = DEFAULT_N_BOOT) -> Results:
    """A small synthetic but valid Results: for docs, tests and trying the leaderboard."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        if i in failed:
            records.append(Record(index=i, name=f"{split}/{i:05d}", status="failed",
                                  error="RuntimeError: out of memory"))
            continue
        top1 = float(np.clip(base_top1 + rng.normal(0, 5), 0, 100))
        records.append(Record(
            index=i, name=f"{split}/{i:05d}", status="ok", top1=round(top1, 2),
            top5=round(min(100.0, top1 + 30.0), 2),
            predict_time_s=round(float(rng.uniform(0.005, 0.05)), 5),
            num_params=int(rng.integers(200_000, 5_000_000)), flops=int(rng.integers(10**7, 10**9)),
            speedup=SpeedupRecord(trainer="sgd", target_top1=50.0, train_seconds=10.0,
                                  lower_bound=(i % 3 == 0), value=float(rng.uniform(1, 4)),
                                  budget="1 epoch") if speedup else None,
            finetune={"top1": round(min(100.0, top1 + 10), 2), "epochs": 1} if finetune else None,
        ))
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    return Results(
        suite=suite,
        protocol=Protocol(version=PROTOCOL_VERSION, split=split, dataset=dataset,
                          num_classes=10, image_size=32, eval_images=10000, device="cpu",
                          extra={"isolation": "process"}),
        split=SplitInfo(name=split, sha256=split_sha256, generator_version="1", num_items=n),
        dataset=DatasetInfo(name=dataset, content_sha256=dataset_sha256, num_test=10000),
        method=MethodInfo(name=method, version="1.0", url="https://example.org/code",
                          num_params=1_600_000, trained_on="DeepNets-1M train, CIFAR-10 train"),
        environment=Environment(deepnets_bench="0.1.0", python="3.11", torch="2.14.1",
                                torchvision="0.29.1", device="cpu", cpu="test cpu",
                                platform="Linux"),
        started_at=t0, finished_at=t0.replace(hour=1), records=records,
        aggregates=aggregate(records, n_boot=n_boot), notes="synthetic example",
    )
