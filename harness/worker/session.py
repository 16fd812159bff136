"""The worker side of a run: everything that executes the submission's code.

:class:`WorkerSession` answers the parent's requests (``load``, ``images``, ``check``, ``attack``, ``explain``,
``visualise``, and ``classify``/``signs`` in the fresh worker that re-classifies) with messages passed to ``send``;
the same object runs inside a sandboxed worker process (harness.worker.__main__) or, with ``--trusted``, in the
parent's own process. It computes; the parent decides: the worker is told only a :class:`WorkerConfig` (``load``)
and the resolved :class:`WorkerRun` (``check``; harness.worker.protocol), reads no data (the parent sends the
images it needs: ``images``), and everything sent back is validated there (harness.pipeline.validate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.attack.registry import parse_attack
from harness.core.device import predict_logits, resolve_device, seed_everything
from harness.core.errors import HarnessError, fix_for
from harness.data import get_dataset
from harness.worker.contract import check_contract, gradient_probe
from harness.worker.protocol import (
    Checked,
    ChunkMessage,
    ErrorMessage,
    Loaded,
    ScoreMessage,
    WorkerConfig,
    WorkerRun,
    unpack_images,
)
from harness.worker.submission import load_submission
from metrics.attribution import METHODS
from metrics.suite import Attributions, MetricScore, SuiteConfig, iter_suite

Send = Callable[[dict[str, Any]], None]


class Heartbeat(nn.Module):
    """Wraps the model; reports liveness to the parent at most once a second from inside forward passes."""

    def __init__(self, model: nn.Module, send: Send) -> None:
        super().__init__()
        self.model, self._send, self._last = model, send, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        now = time.monotonic()
        if now - self._last > 1.0:
            self._last = now
            self._send({"op": "heartbeat"})
        return self.model(x)


class WorkerSession:
    """State of one evaluation inside the worker."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.config: WorkerConfig | None = None
        self.run: WorkerRun | None = None
        self._blocks: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def handle(self, message: dict[str, Any]) -> bool:
        """Answer one request; returns False when the session is over."""
        op = message["op"]
        if op == "exit":
            self.send({"op": "bye"})
            return False
        try:
            getattr(self, f"_{op}")(message)
        except HarnessError as exc:
            self.send(ErrorMessage(op="error", problem=exc.problem, fix=exc.fix))
            return False
        except MemoryError:
            problem = f"the model ran out of memory during '{op}' (the worker's memory limit)"
            self.send(ErrorMessage(op="error", problem=problem, fix="raise --memory-limit or reduce --batch-size"))
            return False
        except Exception as exc:  # the submission's own exceptions, reported as one line
            problem = f"{op} failed: {type(exc).__name__}: {_first_line(exc)}"
            fix = fix_for(exc, "fix the submission (run with --trusted --debug for the traceback)")
            self.send(ErrorMessage(op="error", problem=problem, fix=fix))
            return False
        return True

    def _load(self, message: dict[str, Any]) -> None:
        self.config = c = WorkerConfig.from_json(message["config"])
        ref = c.model
        if ref.robustbench is not None:
            from harness.worker.zoo import load_zoo_model

            model_dir = Path(ref.model_dir) if ref.model_dir is not None else None
            model, metadata = load_zoo_model(ref.robustbench, ref.dataset, ref.threat_model or "Linf", model_dir)
        else:
            sub = load_submission(ref.submission)
            model, metadata = sub.model, sub.metadata
        self.model_raw = model
        self.send(Loaded(op="loaded", metadata=_jsonable(metadata)))

    def _images(self, message: dict[str, Any]) -> None:
        """Keep a block of images the parent sends (harness.worker.protocol.ImagesRequest)."""
        x = unpack_images(np.asarray(message["x"]), int(message["scale"]))
        y = np.asarray(message["y"], dtype=np.int64)
        blocks = self._blocks.setdefault(str(message["split"]), [])
        if int(message["start"]) == 0:
            blocks.clear()
        blocks.append((torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)))
        self.send({"op": "stored"})

    def _split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels of a split the parent sent."""
        blocks = self._blocks.get(name)
        if not blocks:
            raise HarnessError(f"the worker was not sent the {name} images", "this is a bug in robint-bench")
        return torch.cat([x for x, _ in blocks]), torch.cat([y for _, y in blocks])

    def _check(self, message: dict[str, Any]) -> None:
        self.run = run = WorkerRun.from_json(message["run"])  # decided by the parent from the reported METADATA
        info = get_dataset(run.dataset)
        self.x, self.y = self._split("test")
        if len(self.x) != run.n_examples:
            raise HarnessError(f"the worker was sent {len(self.x)} of {run.n_examples} test images", "this is a bug")
        self.info = info
        self.device = resolve_device(self.config.device)
        seed_everything(run.seed)
        self.model = Heartbeat(self.model_raw.to(self.device).eval(), self.send).eval()
        flags = check_contract(
            self.model,
            self.x[: min(16, len(self.x))],
            num_classes=info.num_classes,
            device=self.device,
            allow_randomised=parse_attack(run.attack).eot,
        )
        probe = gradient_probe(self.model, self.x[: min(16, len(self.x))], self.y[: min(16, len(self.y))], self.device)
        self.send(Checked(op="checked", flags=flags, device=str(self.device), probe=probe))

    def _ensure_model(self) -> None:
        """The model on its device (the fresh worker, which runs no contract check, sets it up here)."""
        if getattr(self, "model", None) is None:
            self.device = resolve_device(self.config.device)
            self.model = Heartbeat(self.model_raw.to(self.device).eval(), self.send).eval()

    def _classify(self, message: dict[str, Any]) -> None:
        """Logits of the images the parent sends (the fresh worker, which never sees the data directory)."""
        self._ensure_model()
        x = torch.as_tensor(np.asarray(message["x"], dtype=np.float32))
        logits = predict_logits(self.model, x, batch_size=int(message["batch_size"]), device=self.device)
        self.send({"op": "classified", "logits": logits.numpy()})

    def _signs(self, message: dict[str, Any]) -> None:
        """Signs of the input gradients of the cross-entropy of the model's own prediction at the points the parent
        sends (the fresh worker: the parent turns them into one-step attacks on images this worker never saw)."""
        self._ensure_model()
        x = torch.as_tensor(np.asarray(message["x"], dtype=np.float32))
        size = int(message["batch_size"])
        signs = []
        for i in range(0, len(x), size):
            batch = x[i : i + size].to(self.device).requires_grad_(True)
            with torch.enable_grad():
                logits = self.model(batch)
                loss = nn.functional.cross_entropy(logits.float(), logits.detach().argmax(1), reduction="sum")
                (grad,) = torch.autograd.grad(loss, batch)
            signs.append(grad.sign().to(torch.int8).cpu())
        self.send({"op": "signed", "signs": torch.cat(signs).numpy()})

    def _attack(self, message: dict[str, Any]) -> None:
        r = self.run
        attack = parse_attack(r.attack)  # harness.attack.registry: how this attack runs
        for start, end in message["chunks"]:
            x, y = self.x[start:end], self.y[start:end]
            clean_pred = predict_logits(self.model, x, batch_size=r.chunk, device=self.device).argmax(1)
            outcome = attack.run(
                self.model,
                x,
                y,
                threat_model=r.threat_model,
                eps=r.eps,
                seed=r.seed,
                batch_size=r.chunk,
                device=self.device,
                progress=self.config.progress,
            )
            self.send(
                ChunkMessage(
                    op="chunk",
                    start=start,
                    end=end,
                    clean_pred=clean_pred.numpy(),
                    x_adv=outcome.x_adv.numpy(),
                    adv_pred=outcome.adv_pred.numpy(),
                    accuracy_after=outcome.accuracy_after,
                    warnings=outcome.warnings,
                )
            )
        self.send({"op": "attacked"})

    def _fit(self, message: dict[str, Any]) -> None:
        """``--batch-size auto``: the largest batches that fit the device for the attack and the explain stage
        (harness.core.memory; the parent decides what to do with them)."""
        from harness.core.memory import fit_attack, fit_explain, suite_explainers

        reply: dict[str, Any] = {
            "op": "fitted",
            "attack": fit_attack(self.model, self.x, int(message["attack"]), self.device),
        }
        if message.get("suite") is not None:
            suite = _suite_from_json(message["suite"])
            background = self._background(suite)
            explainers = suite_explainers(suite, background)
            upper = int(message["explain"])
            reply["explain"] = fit_explain(self.model, self.x, self.y, explainers, upper, self.device)
        self.send(reply)

    def _explain(self, message: dict[str, Any]) -> None:
        suite = _suite_from_json(message["suite"])
        clean_pred = torch.as_tensor(np.asarray(message["clean_pred"]), dtype=torch.long)
        cached = {
            method: Attributions(
                method, torch.as_tensor(c["main"]), None if c.get("grid") is None else torch.as_tensor(c["grid"])
            )
            for method, c in message.get("cached", {}).items()
        }
        background = self._background(suite)
        done = frozenset(tuple(pair) for pair in message.get("done", []))
        for item in iter_suite(
            self.model,
            self.x,
            self.y,
            clean_pred,
            config=suite,
            num_classes=self.info.num_classes,
            has_object_masks=self.info.has_object_masks,
            background=background,
            device=self.device,
            progress=self.config.progress,
            cached=cached,
            done=done,
        ):
            if isinstance(item, MetricScore):
                self.send(
                    ScoreMessage(
                        op="score", method=item.method, metric=item.metric, values=item.values, details=item.details
                    )
                )
            else:
                self.send(
                    {
                        "op": "attributions",
                        "method": item.method,
                        "main": item.main.cpu().numpy(),
                        "grid": None if item.grid is None else item.grid.cpu().numpy(),
                    }
                )
        self.send({"op": "explained"})

    def _visualise(self, message: dict[str, Any]) -> None:
        from metrics.featurevis.pipeline import FeatureVisConfig, visualise

        config = FeatureVisConfig(**message["config"])
        x_train, y_train = self._split("train")
        out = visualise(
            self.model,
            self.x,
            self.y,
            x_train,
            y_train,
            config=config,
            num_classes=self.info.num_classes,
            device=self.device,
            progress=self.config.progress,
        )
        self.send({"op": "visualised", **out})

    def _background(self, suite: SuiteConfig) -> torch.Tensor | None:
        """The training images the suite's explainers take as background (the parent picked and sent them), or None
        when no method needs any."""
        if not any(METHODS.get(m).needs_background for m in suite.methods):
            return None
        return self._split("background")[0]


def _suite_from_json(data: dict[str, Any]) -> SuiteConfig:
    """Inverse of ``asdict(suite)`` after a JSON round trip."""
    data = dict(data)
    data["methods"], data["metrics"] = tuple(data["methods"]), tuple(data["metrics"])
    data["method_options"] = tuple(tuple(row) for row in data["method_options"])
    return SuiteConfig(**data)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))
