"""The reference trainer: standard training, PGD-AT (Madry et al. 2018), TRADES (Zhang et al. 2019) and fast
adversarial training, FGSM-RS (Wong et al. 2020) with its catastrophic-overfitting check.

``train(config)`` writes the weights next to ``config.out`` and a submission file that loads them. With
``config.checkpoint`` it saves its state after every epoch and resumes from there when run again with the same
configuration.

Long because standard, PGD-AT, TRADES and FGSM-RS training share one loop with checkpoints, resume and the
submission writer; the FGSM-RS step and its check are in fast.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import pprint
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from harness.attack.pgd import pgd
from harness.core.device import predict_logits, resolve_device, seed_everything
from harness.core.errors import HarnessError
from harness.core.threat import check_eps, parse_eps, parse_threat_model
from harness.data import get_dataset, load_examples
from harness.train.architectures import build
from harness.train.fast import ALPHA_OVER_EPS, OverfitMonitor, fgsm_rs
from harness.train.feedback import RunningMean, epoch_summary

Method = Literal["standard", "pgd-at", "trades", "fgsm-rs"]
METHODS: tuple[str, ...] = ("standard", "pgd-at", "trades", "fgsm-rs")
CHECK_SEED = 12345  # the overfitting check's PGD random starts: the same every epoch, independent of training


@dataclass
class TrainConfig:
    """Everything a training run depends on (``command`` is recorded in the submission)."""

    method: Method
    out: Path
    dataset: str = "fashion-mnist"
    threat_model: str = "Linf"
    eps: str = "0.1"
    epochs: int = 10
    arch: str = "gap-cnn"
    seed: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    steps: int = 10
    step_size: str | None = None
    beta: float = 6.0
    n_train: int | None = None
    eval_n: int = 1000
    overfit_check: bool | None = None  # None: on for fgsm-rs only
    check_n: int = 500
    overfit_drop: float = 0.5
    device: str = "auto"
    data_dir: Path | None = None
    command: str = ""
    progress: bool = True
    checkpoint: Path | None = None

    @property
    def checks_overfitting(self) -> bool:
        return self.method == "fgsm-rs" if self.overfit_check is None else self.overfit_check

    def key(self) -> str:
        """Hash of everything that determines the trained weights (not where they go or how progress is shown)."""
        skip = {"out", "command", "progress", "checkpoint", "device", "data_dir"}
        fields_ = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k not in skip}
        return hashlib.sha256(json.dumps(fields_, sort_keys=True).encode()).hexdigest()


@dataclass
class TrainReport:
    weights: Path
    submission: Path
    clean_acc: float
    pgd_acc: float
    seconds: float
    cpu_seconds: float = 0.0
    epochs_run: int = 0
    check_acc: list[float] = field(default_factory=list)  # per-epoch PGD-10 accuracy on the held-out check images
    catastrophic_overfitting: dict[str, Any] | None = None
    resumed_from_epoch: int = 0


def train(config: TrainConfig) -> TrainReport:
    """Train, evaluate on the first ``eval_n`` test images (clean and PGD-20), write weights + submission.

    With the overfitting check (fgsm-rs by default), the last ``check_n`` training images are held out of training;
    after every epoch the model's PGD-10 accuracy on them is measured, and when it falls below ``overfit_drop``
    times its best so far, training stops and the best epoch's weights are restored (recorded in METADATA).
    """
    if config.method not in METHODS:
        raise HarnessError(f"unknown training method {config.method!r}", f"use one of {', '.join(METHODS)}")
    out = Path(config.out)
    if out.suffix != ".py":
        raise HarnessError(f"--out {out} must name a .py submission file", "e.g. --out submissions/my_model.py")
    info = get_dataset(config.dataset)
    threat_model = parse_threat_model(config.threat_model)
    eps, eps_text = parse_eps(config.eps)
    check_eps(threat_model, eps, info.input_numel)
    step_size = _step_size(config, eps)
    device = resolve_device(config.device)
    seed_everything(config.seed)

    (x_train, y_train), check = _training_data(config, device)
    model = build(config.arch, in_channels=info.input_shape[0], num_classes=info.num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = math.ceil(len(y_train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.15
    )
    attack = {"threat_model": threat_model, "eps": eps, "steps": config.steps, "step_size": step_size}
    monitor = OverfitMonitor(drop=config.overfit_drop) if check is not None else None
    first_epoch, seconds, cpu_seconds = _resume(config, model, optimizer, scheduler, monitor)
    epoch_seconds: list[float] = []  # this process's epochs (a resumed run's earlier ones were timed elsewhere)
    for epoch in range(first_epoch, config.epochs):
        start, cpu_start = time.perf_counter(), time.process_time()
        model.train()
        order = torch.randperm(len(y_train), device=device)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not config.progress)
        running = RunningMean()
        for i in bar:
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            loss = _loss(config, model, x_train[idx], y_train[idx], attack)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running.add(loss)
            if config.progress and (i % 10 == 0 or i == steps_per_epoch - 1):
                bar.set_postfix(mean_loss=f"{running.mean:.3f}")
        stop, note = False, ""
        if monitor is not None:
            model.eval()
            acc = check_accuracy(model, *check, threat_model=threat_model, eps=eps)
            stop = monitor.update(acc, model)
            note = f", PGD-10 accuracy on {len(check[1])} held-out training images {acc:.3f}"
            note += " (collapse: restoring the best epoch)" if stop else ""
        spent, cpu_spent = time.perf_counter() - start, time.process_time() - cpu_start
        seconds += spent
        cpu_seconds += cpu_spent
        epoch_seconds.append(spent)
        if config.progress:
            tqdm.write(epoch_summary(epoch + 1, config.epochs, running.mean, spent, cpu_spent, epoch_seconds, note))
        if stop:
            monitor.restore(model)
            break
        _save_checkpoint(config, epoch + 1, (seconds, cpu_seconds), model, optimizer, scheduler, monitor)
    model.eval()
    clean_acc, pgd_acc = _final_accuracy(model, config, info.name, threat_model, eps, device)
    weights = out.with_suffix(".pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
    epochs_run = len(monitor.history) if monitor is not None else config.epochs
    run = {
        "epochs_run": epochs_run,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "device": _device_text(device),
        "monitor": monitor,
        "check_n": None if check is None else len(check[1]),
    }
    metadata = _metadata(config, out, threat_model, eps_text, step_size, clean_acc, pgd_acc, run)
    out.write_text(_submission_source(metadata))
    if config.checkpoint is not None:
        Path(config.checkpoint).unlink(missing_ok=True)
    return TrainReport(
        weights,
        out,
        clean_acc,
        pgd_acc,
        seconds,
        cpu_seconds=cpu_seconds,
        epochs_run=epochs_run,
        check_acc=list(monitor.history) if monitor is not None else [],
        catastrophic_overfitting=monitor.record() if monitor is not None else None,
        resumed_from_epoch=first_epoch,
    )


def _device_text(device: torch.device) -> str:
    if device.type != "cpu":
        return str(device)
    threads = torch.get_num_threads()
    return f"cpu, {threads} thread{'s' if threads != 1 else ''}"


def _step_size(config: TrainConfig, eps: float) -> float:
    if config.step_size:
        return parse_eps(config.step_size)[0]
    return ALPHA_OVER_EPS * eps if config.method == "fgsm-rs" else 2.5 * eps / config.steps


def _training_data(config: TrainConfig, device: torch.device):
    """The training images (the first ``n_train``) and, with the overfitting check, the held-out check images (the
    last ``check_n`` of the training split, never trained on)."""
    if not config.checks_overfitting:
        x, y = load_examples(config.dataset, split="train", n=config.n_train, data_dir=config.data_dir)
        return (x.to(device), y.to(device)), None
    x, y = load_examples(config.dataset, split="train", data_dir=config.data_dir)
    usable = len(y) - config.check_n
    n = usable if config.n_train is None else config.n_train
    if config.check_n < 1 or n < 1 or n > usable:
        raise HarnessError(
            f"--n-train {config.n_train} and --check-n {config.check_n} do not fit the {len(y)} training images",
            f"keep n_train + check_n <= {len(y)} (the check images are held out of training)",
        )
    check = (x[-config.check_n :].to(device), y[-config.check_n :].to(device))
    return (x[:n].to(device), y[:n].to(device)), check


def check_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, threat_model: str, eps: float, batch_size: int = 500
) -> float:
    """PGD-10 accuracy (step 2.5 eps / 10, uniform random start seeded with ``CHECK_SEED``, so every epoch is
    measured with the same starts and the training random stream is left alone) of ``model`` on x, y."""
    devices = [x.device] if x.device.type == "cuda" else []
    correct = 0
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(CHECK_SEED)
        for i in range(0, len(y), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            x_adv = pgd(model, xb, yb, threat_model=threat_model, eps=eps, steps=10, step_size=0.25 * eps)
            with torch.no_grad():
                correct += int((model(x_adv).argmax(1) == yb).sum())
    return round(correct / len(y), 4)


def _resume(config: TrainConfig, model, optimizer, scheduler, monitor: OverfitMonitor | None):
    """Load the per-epoch checkpoint of an interrupted identical training; returns (epochs done, wall-clock seconds
    and CPU seconds spent)."""
    path = config.checkpoint
    if path is None or not Path(path).is_file():
        return 0, 0.0, 0.0
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("key") != config.key():
        raise HarnessError(
            f"checkpoint {path} belongs to another training configuration",
            "delete it to start afresh, or train with the configuration that wrote it",
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if monitor is not None:
        restored = OverfitMonitor.from_state(state["monitor"])
        monitor.history, monitor.best_epoch, monitor.best_state = (
            restored.history,
            restored.best_epoch,
            restored.best_state,
        )
    return int(state["epoch"]), float(state["seconds"]), float(state["cpu_seconds"])


def _save_checkpoint(config: TrainConfig, epoch: int, seconds, model, optimizer, scheduler, monitor) -> None:
    if config.checkpoint is None or epoch == config.epochs:
        return
    path = Path(config.checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "key": config.key(),
        "epoch": epoch,
        "seconds": seconds[0],
        "cpu_seconds": seconds[1],
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "monitor": None if monitor is None else monitor.state(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _loss(config: TrainConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: dict[str, Any]):
    if config.method == "standard":
        return F.cross_entropy(model(x), y)
    if config.method == "pgd-at":
        x_adv = pgd(model, x, y, **attack, init="uniform")
        return F.cross_entropy(model(x_adv), y)
    if config.method == "fgsm-rs":
        x_adv = fgsm_rs(model, x, y, threat_model=attack["threat_model"], eps=attack["eps"], alpha=attack["step_size"])
        return F.cross_entropy(model(x_adv), y)
    logits = model(x)
    p_clean = F.softmax(logits, dim=1).detach()

    def kl_to_clean(adv_logits: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(adv_logits, dim=1), p_clean, reduction="sum")

    x_adv = pgd(model, x, y, **attack, loss_fn=kl_to_clean, init="small")
    robust = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
    return F.cross_entropy(logits, y) + config.beta * robust


def _final_accuracy(model, config: TrainConfig, dataset: str, threat_model: str, eps: float, device):
    x, y = load_examples(dataset, split="test", n=config.eval_n, data_dir=config.data_dir)
    clean = (predict_logits(model, x, batch_size=500, device=device).argmax(1) == y).float().mean().item()
    x_adv = torch.cat(
        [
            pgd(
                model,
                x[i : i + 500].to(device),
                y[i : i + 500].to(device),
                threat_model=threat_model,
                eps=eps,
                steps=20,
                step_size=2.5 * eps / 20,
            ).cpu()
            for i in range(0, len(y), 500)
        ]
    )
    robust = (predict_logits(model, x_adv, batch_size=500, device=device).argmax(1) == y).float().mean().item()
    return round(clean, 4), round(robust, 4)


def _metadata(config, out: Path, threat_model: str, eps_text: str, step_size: float, clean, pgd_acc, run):
    adversarial = config.method != "standard"
    multi_step = config.method in ("pgd-at", "trades")
    monitor: OverfitMonitor | None = run["monitor"]
    return {
        "name": out.stem,
        "dataset": config.dataset,
        "threat_model": threat_model,
        "eps": eps_text,
        "architecture": config.arch,
        "weights": out.with_suffix(".pt").name,
        "authors": "robint-bench reference trainer",
        "clean_acc": clean,
        "training": {
            "method": config.method,
            "threat_model": threat_model if adversarial else None,
            "eps": eps_text if adversarial else None,
            "pgd_steps": config.steps if multi_step else None,
            "pgd_step_size": round(step_size, 6) if multi_step else None,
            "trades_beta": config.beta if config.method == "trades" else None,
            "fgsm_step_size": round(step_size, 6) if config.method == "fgsm-rs" else None,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "optimizer": f"Adam, one-cycle lr max {config.lr}",
            "seed": config.seed,
            "n_train": config.n_train,
            "clean_acc": clean,
            "pgd20_acc": pgd_acc,
            "eval_n": config.eval_n,
            "command": config.command,
            "epochs_run": run["epochs_run"],
            "seconds": run["seconds"],
            "cpu_seconds": run["cpu_seconds"],
            "device": run["device"],
            # METADATA["training"] holds scalars only (harness.pipeline.validate): structured values are JSON text
            "overfit_check": None
            if monitor is None
            else (
                f"PGD-10 (step 0.25 eps, seeded uniform start) after every epoch on the last {run['check_n']} "
                f"training images, held out of training; a collapse: below {config.overfit_drop} x the best so far"
            ),
            "check_pgd_acc": None if monitor is None else json.dumps(monitor.history),
            "best_epoch": None if monitor is None else monitor.best_epoch,
            "catastrophic_overfitting": None
            if monitor is None or not monitor.record()
            else json.dumps(monitor.record()),
        },
    }


_TEMPLATE = '''"""{name}: {method} on {dataset}, written by robint-bench's reference trainer.

Reproduce with:
    {command}
"""

from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {metadata}


def load_model() -> torch.nn.Module:
    model = build(METADATA["architecture"], in_channels={in_channels}, num_classes={num_classes})
    model.load_state_dict(load_weights(Path(__file__).with_name(METADATA["weights"])))
    return model.eval()
'''


def _submission_source(metadata: dict[str, Any]) -> str:
    info = get_dataset(metadata["dataset"])
    return _TEMPLATE.format(
        name=metadata["name"],
        method=metadata["training"]["method"],
        dataset=metadata["dataset"],
        command=metadata["training"]["command"] or "(not recorded)",
        metadata=pprint.pformat(metadata, width=100, sort_dicts=False),
        in_channels=info.input_shape[0],
        num_classes=info.num_classes,
    )
