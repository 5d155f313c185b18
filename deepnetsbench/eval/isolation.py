"""Where ``predict`` runs: in a worker process apart from the scorer (the default), or in the
evaluator's own process (``--in-process``, for debugging; such results are not submittable).

The evaluator never imports a method file itself: a :class:`MethodRef` names the method (a
built-in name, or a file and its sha256) and the worker loads it. Per architecture the
evaluator :meth:`~Predictor.submit`\\ s a job (the architecture, never test data), builds its
*own* copy of the network meanwhile, then :meth:`~Predictor.collect`\\ s the predicted tensors,
checked by name and shape against that copy. The worker is killed, not asked, when it
overruns ``--time-limit``; one that raises, exits or dies is recorded as that architecture's
failure and a fresh worker takes the next one; one that behaved is kept warm, so process
start and ``setup`` are paid once per run. Workers are forked from a forkserver that has
imported torch, so a fresh one costs milliseconds plus the method's own loading.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.methods import LoadedMethod, MethodMeta
from deepnetsbench.eval.transfer import TransferError, read_tensors

__all__ = ["ISOLATION_MODES", "START_TIMEOUT", "MethodRef", "PredictFailure", "PredictJob",
           "Prediction", "Predictor", "WorkerPredictor", "expected_tensors", "make_predictor",
           "method_ref"]

ISOLATION_MODES = ("process", "in-process")
START_TIMEOUT = 900.0  # seconds for a worker to load the method and run setup()
BUILD_TIMEOUT = 300.0  # seconds for a worker to build its copy of one network
TRANSFER_RATE = 200e6  # bytes/s assumed when allowing time to hand the tensors over
MAX_MESSAGE = 1 << 20


# ----------------------------------------------------------------------------- the method


@dataclass
class MethodRef:
    """A method named, not loaded: what the evaluator knows without running its code."""

    spec: str  # built-in name or path of the method file
    options: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False
    path: Path | None = None
    file_sha256: str | None = None
    meta: MethodMeta | None = None  # reported by the worker once it loaded the method

    @property
    def key(self) -> str:
        """Identity of the method for the run journal: built-in name or file sha256."""
        return f"builtin:{self.spec}" if self.builtin else f"file:{self.file_sha256}"

    def info(self):
        from deepnetsbench.results import MethodInfo

        m = self.meta or MethodMeta(name=self.spec if self.builtin else Path(self.spec).stem)
        return MethodInfo(name=m.name, version=m.version, url=m.url, num_params=m.num_params,
                          trained_on=m.trained_on, file_sha256=self.file_sha256,
                          builtin=self.builtin, description=m.description,
                          training_budget=m.training_budget, paper=m.paper)


def method_ref(method: str | os.PathLike | LoadedMethod | MethodRef,
               options: Mapping[str, Any] | None = None) -> MethodRef:
    """A :class:`MethodRef` for a built-in name, a method file (hashed, not imported) or an
    already loaded method. Built-ins are checked here (they are the suite's own code)."""
    if isinstance(method, MethodRef):
        return method
    if isinstance(method, LoadedMethod):
        spec = method.meta.name if method.builtin else str(method.path)
        return MethodRef(spec, dict(method.options), method.builtin, method.path,
                         method.file_sha256, method.meta)
    from deepnetsbench.eval.builtin import BUILTIN_METHODS
    from deepnetsbench.eval.methods import load_method

    spec, options = str(method), dict(options or {})
    if spec in BUILTIN_METHODS and not Path(spec).is_file():
        loaded = load_method(spec, options)  # validates the options, no user code
        return MethodRef(spec, options, True, None, None, loaded.meta)
    path = Path(spec).expanduser()
    if not path.is_file():
        load_method(spec, options)  # raises the usual one-line error
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return MethodRef(str(path), options, False, path, sha, None)


def _coerce_meta(data: Any) -> MethodMeta:
    from deepnetsbench.results import MethodInfo

    if not isinstance(data, dict):
        raise BenchError("the method reported no meta", "set meta = MethodMeta(name=...)")
    known = {k: data.get(k) for k in MethodMeta.__dataclass_fields__ if k in data}
    try:
        MethodInfo(**{k: v for k, v in known.items() if v is not None})
        return MethodMeta(**known)
    except (TypeError, ValueError) as err:
        raise BenchError(f"the method's meta is invalid ({' '.join(str(err).split())[:200]})",
                         "give name, version, url, description as strings and num_params as "
                         "an integer") from None


# ----------------------------------------------------------------------------- jobs


@dataclass
class PredictJob:
    """What a method may know about one architecture (never test images or labels)."""

    rec: Any
    num_classes: int
    image_size: int
    classes: list[str]
    dataset: str
    seed: int
    support: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass
class Prediction:
    """The checked tensors (by name, for the evaluator's own model) and the timing."""

    tensors: dict[str, torch.Tensor]
    predict_time_s: float
    wall_s: float  # the evaluator's clock, go to done (includes handing the tensors over)


class PredictFailure(Exception):
    """This architecture's prediction failed (one-line reason)."""


def expected_tensors(model: torch.nn.Module) -> dict[str, tuple[torch.Size, bool]]:
    """``{name: (shape, required)}``: parameters are required, buffers optional."""
    out = {n: (b.shape, False) for n, b in model.named_buffers()}
    out.update({n: (p.shape, True) for n, p in model.named_parameters()})
    return out


class Predictor:
    """Runs a method's ``predict`` for the evaluator (see the module docstring)."""

    isolation = "process"

    def __init__(self, ref: MethodRef, device: torch.device):
        self.ref, self.device = ref, device
        self.starts = 0

    def start(self) -> None:
        """Load the method and run its ``setup``; a failure is a one-line BenchError."""

    def submit(self, job: PredictJob) -> None:
        raise NotImplementedError

    def cancel(self) -> None:
        """The evaluator could not build the network: drop the submitted job."""

    def collect(self, limit: float | None, expected: Mapping[str, tuple[torch.Size, bool]]
                ) -> Prediction:
        raise NotImplementedError

    def close(self) -> None:
        """Stop whatever runs the method."""


def make_predictor(method: Any, device: torch.device, isolation: str = "process",
                   options: Mapping[str, Any] | None = None) -> Predictor:
    """A predictor for ``method`` (a name, a path, a LoadedMethod or a MethodRef)."""
    if isolation not in ISOLATION_MODES:
        raise BenchError(f"unknown isolation {isolation!r}", "use 'process' (the default)")
    if isolation == "in-process":
        from deepnetsbench.eval.inprocess import InProcessPredictor

        return InProcessPredictor(method, device, options)
    return WorkerPredictor(method_ref(method, options), device)


# ----------------------------------------------------------------------------- worker


def _context():
    """Forkserver (workers forked from a process that imported torch: ~20 ms each, nothing
    inherited from the evaluator), spawn where there is none."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["deepnetsbench.eval.worker"])
        return ctx
    return mp.get_context("spawn")


@contextmanager
def _without_main() -> Iterator[None]:
    """Start a worker without re-importing the evaluator's ``__main__``: a script that calls
    the evaluator at top level (no ``if __name__ == "__main__"``) must not run again inside
    the worker. The worker needs nothing from it."""
    from multiprocessing import spawn

    real = spawn.get_preparation_data

    def prepare(name: str) -> dict:
        data = real(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    spawn.get_preparation_data = prepare
    try:
        yield
    finally:
        spawn.get_preparation_data = real


def _private_dir() -> Path:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="deepnets-bench-", dir=base))  # mode 0700


class _Dead(Exception):
    def __init__(self, how: str):
        super().__init__(how)
        self.how = how


class WorkerPredictor(Predictor):
    """``predict`` in a separate process (see the module docstring)."""

    isolation = "process"

    def __init__(self, ref: MethodRef, device: torch.device):
        super().__init__(ref, device)
        self.proc = self.conn = None
        self.outdir = _private_dir()
        self._jobs = 0
        self._pending = False
        self.start_seconds: list[float] = []
        self._finalizer = weakref.finalize(self, _cleanup, self.outdir, [None])

    # -- process ------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {"spec": self.ref.spec, "options": self.ref.options,
                "file_sha256": self.ref.file_sha256, "device": str(self.device),
                "threads": torch.get_num_threads(), "env": dict(os.environ),
                "cwd": os.getcwd(), "sys_path": list(sys.path), "outdir": str(self.outdir)}

    def start(self) -> None:
        from deepnetsbench.eval.worker import worker_main

        self.close_worker()
        t0 = time.perf_counter()
        ctx = _context()
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=worker_main, args=(child, self._config()),
                           name="deepnets-bench-method", daemon=False)
        with _without_main():
            proc.start()
        child.close()
        self.proc, self.conn = proc, parent
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, self.outdir, [proc])
        try:
            msg = self._recv(START_TIMEOUT)
        except _Dead as dead:
            self.close_worker()
            raise BenchError(f"the method's worker died while loading the method ({dead.how})",
                             "run it with --in-process to see the full error") from None
        except TimeoutError:
            self.close_worker()
            raise BenchError(f"loading the method and its setup() took over {START_TIMEOUT:g} s",
                             "make setup() faster (or check that it does not wait for input)"
                             ) from None
        if msg.get("kind") == "error":
            self.close_worker()
            raise BenchError(str(msg.get("what") or "the method failed to load")[:600],
                             str(msg.get("fix") or "fix the method file")[:300])
        if msg.get("kind") != "ready":
            self.close_worker()
            raise BenchError("the method's worker sent an unexpected message at start",
                             "run it with --in-process to debug")
        self.ref.meta = _coerce_meta(msg.get("meta"))
        self.starts += 1
        self.start_seconds.append(time.perf_counter() - t0)

    def _recv(self, timeout: float | None) -> dict[str, Any]:
        """The next JSON message; _Dead when the worker went away, TimeoutError after
        ``timeout`` seconds (None: wait as long as it lives)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            try:
                ready = self.conn.poll(wait)
            except (EOFError, OSError):
                ready = True
            if ready:
                try:
                    raw = self.conn.recv_bytes(MAX_MESSAGE)
                except (EOFError, OSError):
                    raise _Dead(self._exit_reason()) from None
                try:
                    msg = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                    msg = None
                if not isinstance(msg, dict):
                    self.close_worker()
                    raise _Dead("it sent an unreadable message")
                return msg
            if not self.proc.is_alive():
                raise _Dead(self._exit_reason())
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError

    def _exit_reason(self) -> str:
        self.proc.join(5)
        code = self.proc.exitcode
        if code is None:
            return "it closed its connection"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = {"SIGKILL": ", e.g. by the out-of-memory killer",
                    "SIGSEGV": ", a crash in native code"}.get(name, "")
            return f"killed by {name}{hint}"
        return f"exit status {code}" + (" (sys.exit or os._exit in the method?)" if code else "")

    def close_worker(self) -> None:
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        self._pending = False
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
        if proc is not None:
            _kill(proc)

    def close(self) -> None:
        self.close_worker()
        self._finalizer()

    # -- jobs ---------------------------------------------------------------------------
    def submit(self, job: PredictJob) -> None:
        if self.proc is None or not self.proc.is_alive():
            self.start()  # a fresh worker (after a failure); a setup failure stops the run
        self._jobs += 1
        payload = {"id": self._jobs, "rec": job.rec, "num_classes": job.num_classes,
                   "image_size": job.image_size, "classes": list(job.classes),
                   "dataset": job.dataset, "seed": job.seed,
                   "support": None if job.support is None else
                   tuple(t.detach().to("cpu") for t in job.support)}
        try:
            self.conn.send(payload)
        except OSError:  # the warm worker went away since the last job: one fresh start
            self.start()
            self.conn.send(payload)
        self._pending = True

    def cancel(self) -> None:
        if not self._pending:
            return
        try:
            msg = self._recv(BUILD_TIMEOUT)
            if msg.get("kind") == "built":
                self.conn.send("skip")
            self._pending = False
        except (_Dead, TimeoutError, OSError):
            self.close_worker()

    def collect(self, limit, expected) -> Prediction:
        self._pending = False
        try:
            msg = self._recv(BUILD_TIMEOUT)
        except _Dead as dead:
            self.close_worker()
            raise PredictFailure(f"the method's worker died before predict ({dead.how})") from None
        except TimeoutError:
            self.close_worker()
            raise PredictFailure(f"the method's worker did not build the network within "
                                 f"{BUILD_TIMEOUT:g} s; it was stopped") from None
        if msg.get("kind") == "failed":
            raise PredictFailure(f"building the network failed: {_text(msg.get('error'))}")
        if msg.get("kind") != "built":
            self.close_worker()
            raise PredictFailure("the method's worker broke the protocol; it was stopped")
        nbytes = sum(math.prod(s) * 4 for s, _ in expected.values())
        allowance = 2.0 + nbytes / TRANSFER_RATE
        t0 = time.perf_counter()
        try:
            self.conn.send("go")
        except OSError:
            self.close_worker()
            raise PredictFailure("the method's worker died before predict") from None
        try:
            msg = self._recv(None if limit is None else limit + allowance)
        except TimeoutError:
            self.close_worker()
            raise PredictFailure(f"prediction exceeded the time limit of {limit:g} s "
                                 "(--time-limit); the method's worker was stopped") from None
        except _Dead as dead:
            self.close_worker()
            raise PredictFailure(f"the method's worker died during predict ({dead.how})") from None
        wall = time.perf_counter() - t0
        kind = msg.get("kind")
        if kind == "failed":
            if msg.get("restart"):
                self.close_worker()
            raise PredictFailure(_text(msg.get("error")))
        if kind != "done":
            self.close_worker()
            raise PredictFailure("the method's worker broke the protocol; it was stopped")
        return self._read(msg, limit, wall, expected)

    def _read(self, msg: dict, limit: float | None, wall: float, expected) -> Prediction:
        elapsed = msg.get("predict_time_s")
        name = str(msg.get("file") or "")
        path = self.outdir / name
        try:
            if not isinstance(elapsed, int | float) or not math.isfinite(elapsed) or elapsed < 0:
                raise PredictFailure("the method's worker reported no valid prediction time")
            if limit is not None and elapsed > limit:
                raise PredictFailure(f"prediction took {elapsed:.1f} s, over the time limit of "
                                     f"{limit:g} s (--time-limit)")
            if not name or "/" in name or path.parent != self.outdir or not path.is_file():
                raise PredictFailure("the method's worker wrote no prediction file")
            try:
                tensors = read_tensors(path, expected)
            except TransferError as err:
                raise PredictFailure(str(err)) from None
            except OSError as err:
                raise PredictFailure(f"reading the prediction failed ({err})") from None
        finally:
            for p in self.outdir.glob("prediction-*"):
                p.unlink(missing_ok=True)
        return Prediction(tensors, float(elapsed), wall)


def _text(value: Any, limit: int = 600) -> str:
    from deepnetsbench.results import one_line_text

    return one_line_text(value if value else "(no message)", limit)


def _kill(proc: Any) -> None:
    """SIGKILL the worker's whole process group (it leads its own session)."""
    try:
        if proc.pid and os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass
    proc.join(10)


def _cleanup(outdir: Path, procs: list) -> None:
    for proc in procs:
        if proc is not None and proc.exitcode is None:
            _kill(proc)
    shutil.rmtree(outdir, ignore_errors=True)
