"""The method plugin: what a parameter-prediction method is, and how a method file is loaded.

A method is a Python file that defines a class ``Method`` (or a factory
``make_method(**options)``) whose instances have::

    meta: MethodMeta                       # name, version, url, ... (shown on the leaderboard)
    setup(self, device) -> None            # called once, before the first architecture
    predict(self, model, task) -> dict[str, Tensor] | None

``predict`` receives a freshly built ``model`` (already on ``task.device``) and a
:class:`Task`; it returns the model's parameters as a state dict, or ``None`` after filling
``model``'s parameters in place. ``deepnets-bench new-method mine.py`` writes a commented
template; docs/protocol.md states the rules.

Errors in the user's file (syntax error, failing import, exception at import, no ``Method``)
become a one-line :class:`~deepnetsbench.errors.BenchError` that names the file and line in
the user's code, not a traceback through the suite.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import itertools
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from deepnetsbench.errors import BenchError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from deepnetsbench.graph.graph import Graph
    from deepnetsbench.results import MethodInfo

__all__ = [
    "LoadedMethod", "MethodBase", "MethodLike", "MethodMeta", "Task", "error_location",
    "load_method", "parse_method_options",
]


@dataclass
class MethodMeta:
    """What the leaderboard shows about a method (copied into the results' ``method``)."""

    name: str
    version: str = ""
    url: str = ""  # public code link
    num_params: int | None = None  # parameters of the predictor itself
    trained_on: str | None = None  # e.g. "DeepNets-1M train, CIFAR-10 train"
    description: str = ""
    training_budget: str | None = None  # e.g. "70 min on 4 CPU cores, 6000 steps"
    paper: str = ""  # http(s) link to the paper


@dataclass
class Task:
    """Everything a method may know about the network it predicts parameters for.

    ``arch`` is the split's :class:`~deepnetsbench.splits.ArchRecord` (``name``, ``index``,
    ``spec`` -- ``None`` for predefined torchvision models -- ``graph``, ``num_params``).
    ``support`` is ``None`` for architecture suites; dataset-episode suites pass the
    episode's training images and labels ``(x, y)`` there. ``seed`` is this architecture's
    seed (derived from ``--seed`` and the index): use it for any randomness.
    """

    arch: Any
    dataset: str
    num_classes: int
    image_size: int
    classes: list[str]
    device: torch.device
    seed: int = 0
    support: tuple[torch.Tensor, torch.Tensor] | None = None
    _graph: Any = field(default=None, repr=False)

    @property
    def graph(self) -> Graph:
        """The computational graph of *this* model (``num_classes``, ``image_size``).

        Built lazily on first access, so methods that do not need a graph cost nothing."""
        if self._graph is None:
            if (self.num_classes, self.image_size) == (10, 32):
                self._graph = self.arch.graph
            else:
                self._graph = self.arch.graph_for(self.num_classes, self.image_size)
        return self._graph


@runtime_checkable
class MethodLike(Protocol):
    """The duck type the evaluator needs (subclassing :class:`MethodBase` is optional)."""

    def predict(self, model: nn.Module, task: Task) -> Mapping[str, torch.Tensor] | None: ...


class MethodBase:
    """Convenient base class for methods: a default ``meta`` and a no-op ``setup``."""

    meta: MethodMeta = MethodMeta(name="unnamed")

    def setup(self, device: torch.device) -> None:
        """Load weights, move the predictor to ``device``; called once per run."""

    def predict(self, model: nn.Module, task: Task) -> Mapping[str, torch.Tensor] | None:
        raise NotImplementedError("a method must implement predict(model, task)")


@dataclass
class LoadedMethod:
    """A method instance plus what the results file records about it."""

    method: Any
    meta: MethodMeta
    builtin: bool
    path: Path | None = None  # the method file (None for built-in methods)
    file_sha256: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identity of the method for the run journal: built-in name or file sha256."""
        return f"builtin:{self.meta.name}" if self.builtin else f"file:{self.file_sha256}"

    def info(self) -> MethodInfo:
        from deepnetsbench.results import MethodInfo

        m = self.meta
        return MethodInfo(name=m.name, version=m.version, url=m.url, num_params=m.num_params,
                          trained_on=m.trained_on, file_sha256=self.file_sha256,
                          builtin=self.builtin, description=m.description,
                          training_budget=m.training_budget, paper=m.paper)

    def setup(self, device: torch.device) -> None:
        """Call the method's ``setup``; a failure names the user's file and line."""
        setup = getattr(self.method, "setup", None)
        if setup is None:
            return
        try:
            setup(device)
        except BenchError as err:  # the method's own user-facing error: keep its fix
            raise _located(err, self.path, "method setup failed") from None
        except Exception as err:  # noqa: BLE001 - reported as a one-line user error
            raise BenchError(f"method setup failed: {describe_error(err, self.path)}",
                             "fix setup() in the method file") from None


# ----------------------------------------------------------------------------- errors


def error_location(err: BaseException, path: Path | None) -> str | None:
    """``file:line`` of the deepest traceback frame inside ``path`` (the user's file)."""
    if isinstance(err, SyntaxError) and err.filename and err.lineno:
        return f"{err.filename}:{err.lineno}"
    if path is None:
        return None
    target = str(Path(path).resolve())
    where = None
    for frame in traceback.extract_tb(err.__traceback__):
        try:
            same = str(Path(frame.filename).resolve()) == target
        except OSError:
            same = False
        if same:
            where = f"{path}:{frame.lineno}"
    return where


def _located(err: BenchError, path: Path | None, prefix: str) -> BenchError:
    """A method's own BenchError, prefixed and located, its fix kept."""
    where = error_location(err, path)
    return BenchError(f"{prefix}: {err.what}" + (f" (at {where})" if where else ""), err.fix)


def describe_error(err: BaseException, path: Path | None = None, limit: int = 400) -> str:
    """One line: ``Type: message (at file:line)``, shortened to ``limit`` characters."""
    msg = " ".join(str(err).split()) or "(no message)"
    if len(msg) > limit:
        msg = msg[: limit - 3] + "..."
    where = error_location(err, path)
    return f"{type(err).__name__}: {msg}" + (f" (at {where})" if where else "")


# ----------------------------------------------------------------------------- options


def parse_method_options(items: Sequence[str]) -> dict[str, Any]:
    """``["k=1", "name=abc", "flag=true"]`` -> ``{"k": 1, "name": "abc", "flag": True}``.

    Values are Python/JSON literals when they parse as one (numbers, true/false, null,
    quoted strings, lists), else plain strings."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise BenchError(f"bad --method-opt {item!r}",
                             "write key=value with a Python identifier as key, e.g. ckpt=ghn.pt")
        literal = {"true": "True", "false": "False", "null": "None", "none": "None"}.get(
            raw.strip().lower(), raw)
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = raw
        options[key] = value
    return options


# ----------------------------------------------------------------------------- loading

_counter = itertools.count()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _coerce_meta(meta: Any, default_name: str) -> MethodMeta:
    if isinstance(meta, MethodMeta):
        return meta if meta.name and meta.name != "unnamed" else MethodMeta(
            **{**meta.__dict__, "name": default_name})
    if meta is None:
        return MethodMeta(name=default_name)
    if isinstance(meta, Mapping):
        known = set(MethodMeta.__dataclass_fields__)
        unknown = sorted(set(meta) - known)
        if unknown:
            raise BenchError(f"method meta has unknown keys {unknown}",
                             f"use only {', '.join(sorted(known))}")
        return MethodMeta(**{"name": default_name, **meta})
    raise BenchError(f"method meta must be a MethodMeta or a dict, got {type(meta).__name__}",
                     "set meta = MethodMeta(name=...)")


def _instantiate(factory: Callable[..., Any], options: dict[str, Any], path: Path | None,
                 what: str) -> Any:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        try:
            sig.bind(**options)
        except TypeError as err:
            accepted = [p.name for p in sig.parameters.values()
                        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            raise BenchError(f"{what} does not accept these --method-opt options: {err}",
                             f"accepted options: {', '.join(accepted) or 'none'}") from None
    try:
        return factory(**options)
    except BenchError as err:  # the method's own user-facing error: keep its fix
        raise _located(err, path, "creating the method failed") from None
    except Exception as err:  # noqa: BLE001 - reported with the user's file and line
        raise BenchError(f"creating the method failed: {describe_error(err, path)}",
                         "fix the method's constructor (or the --method-opt values)") from None


def _finish(method: Any, default_name: str, builtin: bool, path: Path | None, sha: str | None,
            options: dict[str, Any]) -> LoadedMethod:
    if not callable(getattr(method, "predict", None)):
        raise BenchError(f"the method {default_name!r} has no predict(model, task) method",
                         "define predict(self, model, task) in class Method")
    meta = _coerce_meta(getattr(method, "meta", None), default_name)
    return LoadedMethod(method, meta, builtin, path, sha, dict(options))


def load_method(spec: str, options: Mapping[str, Any] | None = None) -> LoadedMethod:
    """A built-in method by name (``random``, ``kaiming``, ``orthogonal``, ``mean``) or a
    method file by path, instantiated with ``options`` (``--method-opt``)."""
    from deepnetsbench.eval.builtin import BUILTIN_METHODS

    options = dict(options or {})
    if spec in BUILTIN_METHODS and not Path(spec).is_file():
        method = _instantiate(BUILTIN_METHODS[spec], options, None, f"built-in method {spec!r}")
        return _finish(method, spec, True, None, None, options)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise BenchError(
            f"method {spec!r} is neither a built-in method nor a file",
            f"use one of {', '.join(BUILTIN_METHODS)}, a path to a .py file, or "
            f"`deepnets-bench new-method {spec if spec.endswith('.py') else 'mine.py'}`")
    sha = _sha256(path)
    module = _import_file(path, sha)
    factory = getattr(module, "make_method", None)
    cls = getattr(module, "Method", None)
    if factory is None:
        if cls is None or cls is MethodBase or not callable(cls):
            raise BenchError(f"{path} defines no class Method (nor a make_method function)",
                             "define `class Method:` with meta, setup(device) and "
                             "predict(model, task); see `deepnets-bench new-method`")
        factory = cls
    method = _instantiate(factory, options, path, f"{path}")
    return _finish(method, path.stem, False, path, sha, options)


def _import_file(path: Path, sha: str):
    name = f"_deepnets_bench_method_{sha[:12]}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot import {path} as a Python module", "give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    # The method's folder is importable (appended, so it never shadows installed packages),
    # so a method may import its own helper modules, also lazily inside predict().
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        sys.modules.pop(name, None)
        where = f"{err.filename or path}:{err.lineno}" if err.lineno else str(path)
        raise BenchError(f"syntax error in method file at {where}: {err.msg}",
                         "fix the method file") from None
    except ImportError as err:
        sys.modules.pop(name, None)
        raise BenchError(f"method file {path} failed to import: {describe_error(err, path)}",
                         "install the missing package or fix the import") from None
    except Exception as err:  # noqa: BLE001 - any error at import is the file's problem
        sys.modules.pop(name, None)
        raise BenchError(f"method file {path} raised at import: {describe_error(err, path)}",
                         "fix the method file") from None
    return module
