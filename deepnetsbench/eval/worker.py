"""The method's side of an isolated evaluation: a worker process that only predicts.

The evaluator (:mod:`deepnetsbench.eval.isolation`) starts this worker and sends it, per
architecture, what a method may know: the architecture record, the dataset's name, class
names, class count and image size, the device, the seed and (episode suites) the support
set. The worker builds its own copy of the network, times ``predict`` around the call only
(device-synchronised), and writes the resulting tensors to a file of the evaluator's
(:mod:`deepnetsbench.eval.transfer`). It never holds the test images or labels, the journal,
the scorer or the evaluator's model, and whatever the method changes here (monkey-patched
modules, hooks, replaced ``forward`` methods) stays in this process.

Messages to the evaluator are JSON (never pickle: the evaluator does not unpickle what an
untrusted process sends); messages from the evaluator are pickled (this side trusts it).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.methods import Task, describe_error
from deepnetsbench.eval.transfer import write_tensors

__all__ = ["OutputError", "is_oom", "prediction_tensors", "worker_main"]


class OutputError(Exception):
    """What ``predict`` returned cannot be a prediction (one-line message)."""


def is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prediction_tensors(out: Any, model: torch.nn.Module,
                       shapes: Mapping[str, torch.Size]) -> dict[str, torch.Tensor]:
    """The tensors to send for ``predict``'s return value ``out``: the mapping it returned,
    or, for ``None`` (filled in place), the model's parameters and buffers. ``shapes`` are
    the parameter shapes before ``predict`` ran."""
    if out is None:
        got = {n: p.shape for n, p in model.named_parameters()}
        if got.keys() != shapes.keys():
            gone = [n for n in shapes if n not in got] + [n for n in got if n not in shapes]
            raise OutputError("predict changed the model's set of parameters: " + _names(gone))
        wrong = [f"{n} {tuple(got[n])} (expected {tuple(s)})" for n, s in shapes.items()
                 if got[n] != s]
        if wrong:
            raise OutputError(f"predict changed {len(wrong)} parameter shapes: " + _names(wrong))
        return {**dict(model.named_buffers()), **dict(model.named_parameters())}
    if not isinstance(out, Mapping):
        raise OutputError(f"predict returned {type(out).__name__}; expected a dict of "
                          "parameter tensors (state dict) or None after filling the model "
                          "in place")
    tensors = {}
    for name, value in out.items():
        if not isinstance(value, torch.Tensor):
            raise OutputError(f"prediction for {str(name)[:80]} is a {type(value).__name__}, "
                              "not a tensor")
        tensors[name] = value
    return tensors


def _names(items: list[str], k: int = 3) -> str:
    more = f" (and {len(items) - k} more)" if len(items) > k else ""
    return ", ".join(items[:k]) + more


# ----------------------------------------------------------------------------- process


class _Channel:
    def __init__(self, conn: Any):
        self.conn = conn

    def send(self, **msg: Any) -> None:
        self.conn.send_bytes(json.dumps(msg, allow_nan=False, default=str).encode("utf-8"))

    def recv(self) -> Any:
        return self.conn.recv()


def _detach() -> None:
    """Own process group (the evaluator kills the whole group; Ctrl-C at the terminal goes
    to the evaluator, which stops us) and death with our parent (Linux)."""
    try:
        os.setsid()
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # A forkserver child holds the server's "alive" pipe, which keeps the server (and so us,
    # through the parent-death signal below) running after the evaluator died: drop it.
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver
        if server._forkserver_alive_fd is not None:
            os.close(server._forkserver_alive_fd)
            server._forkserver_alive_fd = None
            server._forkserver_address = None
    except (ImportError, AttributeError, OSError):
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _environment(config: Mapping[str, Any]) -> None:
    """The evaluator's working directory, environment, import path and thread count (a
    forkserver child starts from the server's, which may be older)."""
    os.environ.clear()
    os.environ.update(config["env"])
    try:
        os.chdir(config["cwd"])
    except OSError:
        pass
    sys.path[:] = list(config["sys_path"])
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))


def worker_main(conn: Any, config: Mapping[str, Any]) -> None:
    """Entry point of the worker process: load the method, set it up, then predict one
    architecture per request until the evaluator closes the connection."""
    _detach()
    _environment(config)
    ch = _Channel(conn)
    from deepnetsbench.eval.methods import load_method

    try:
        loaded = load_method(config["spec"], config["options"])
    except BenchError as err:
        return ch.send(kind="error", what=err.what, fix=err.fix)
    except BaseException as err:  # noqa: BLE001 - reported to the evaluator
        return ch.send(kind="error", what=f"loading the method failed: {describe_error(err)}",
                       fix="fix the method file")
    if config.get("file_sha256") and loaded.file_sha256 != config["file_sha256"]:
        return ch.send(kind="error", what=f"the method file {loaded.path} changed after the "
                       "run started", fix="re-run the command (the run restarts with the new "
                       "file's hash), or leave the file alone while it runs")
    device = torch.device(config["device"])
    try:
        loaded.setup(device)
    except BenchError as err:
        return ch.send(kind="error", what=err.what, fix=err.fix)
    except BaseException as err:  # noqa: BLE001 - e.g. SystemExit in setup
        return ch.send(kind="error", what=f"method setup failed: "
                       f"{describe_error(err, loaded.path)}", fix="fix setup() in the method file")
    ch.send(kind="ready", meta=_meta(loaded), file_sha256=loaded.file_sha256, pid=os.getpid())
    outdir = Path(config["outdir"])
    while True:
        try:
            job = ch.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        if not _predict_one(ch, loaded, job, device, outdir):
            return  # predict raised: this worker is done, a fresh one takes the next job


def _meta(loaded: Any) -> dict[str, Any]:
    meta = loaded.meta
    try:
        return dict(asdict(meta))
    except TypeError:
        return {"name": str(getattr(meta, "name", "method"))}


def _predict_one(ch: _Channel, loaded: Any, job: Mapping[str, Any], device: torch.device,
                 outdir: Path) -> bool:
    """One architecture; returns False when the worker must not be reused."""
    rec, seed = job["rec"], int(job["seed"])
    try:
        torch.manual_seed(seed)
        model = rec.build_model(num_classes=job["num_classes"],
                                image_size=job["image_size"]).to(device)
    except BaseException as err:  # noqa: BLE001 - the evaluator reports its own build
        ch.send(kind="failed", stage="build", error=describe_error(err))
        return True
    ch.send(kind="built")
    try:
        go = ch.recv()
    except (EOFError, OSError):
        return False
    if go != "go":
        return True  # the evaluator could not build the network: skip this one
    support = job.get("support")
    if support is not None:
        support = tuple(t.to(device) for t in support)
    task = Task(arch=rec, dataset=job["dataset"], num_classes=job["num_classes"],
                image_size=job["image_size"], classes=list(job["classes"]), device=device,
                seed=seed, support=support)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    torch.manual_seed(seed)
    try:
        sync(device)
        t0 = time.perf_counter()
        out = loaded.method.predict(model, task)
        sync(device)
        elapsed = time.perf_counter() - t0
    except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        stage = "out of memory during predict: " if is_oom(err) else "predict raised "
        ch.send(kind="failed", stage="predict", restart=True,
                error=stage + describe_error(err, loaded.path))
        return False
    try:
        tensors = prediction_tensors(out, model, shapes)
        path = outdir / f"prediction-{int(job['id'])}.bin"
        nbytes = write_tensors(path, tensors)
    except (OutputError, TypeError, ValueError) as err:
        ch.send(kind="failed", stage="output", error=str(err))
        return True
    except BaseException as err:  # noqa: BLE001 - e.g. a tensor that cannot be copied
        ch.send(kind="failed", stage="output", restart=True,
                error=f"sending the prediction failed: {describe_error(err, loaded.path)}")
        return False
    del model, out, tensors, task
    if device.type == "cuda":
        torch.cuda.empty_cache()
    ch.send(kind="done", predict_time_s=elapsed, file=path.name, nbytes=nbytes)
    return True
