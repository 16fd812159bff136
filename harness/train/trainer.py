"""The reference trainer: standard training, PGD-AT (Madry et al. 2018) and TRADES (Zhang et al. 2019).

``train(config)`` writes the weights next to ``config.out`` and a submission file that loads them.
"""

from __future__ import annotations

import math
import pprint
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from harness.attack.pgd import pgd
from harness.data import get_dataset, load_examples
from harness.device import predict_logits, resolve_device, seed_everything
from harness.errors import HarnessError
from harness.threat import check_eps, parse_eps, parse_threat_model
from harness.train.architectures import build

Method = Literal["standard", "pgd-at", "trades"]
METHODS: tuple[str, ...] = ("standard", "pgd-at", "trades")


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
    device: str = "auto"
    data_dir: Path | None = None
    command: str = ""
    progress: bool = True


@dataclass
class TrainReport:
    weights: Path
    submission: Path
    clean_acc: float
    pgd_acc: float
    seconds: float


def train(config: TrainConfig) -> TrainReport:
    """Train, evaluate on the first ``eval_n`` test images (clean and PGD-20), write weights + submission."""
    if config.method not in METHODS:
        raise HarnessError(f"unknown training method {config.method!r}", f"use one of {', '.join(METHODS)}")
    out = Path(config.out)
    if out.suffix != ".py":
        raise HarnessError(f"--out {out} must name a .py submission file", "e.g. --out submissions/my_model.py")
    info = get_dataset(config.dataset)
    threat_model = parse_threat_model(config.threat_model)
    eps, eps_text = parse_eps(config.eps)
    check_eps(threat_model, eps, info.input_numel)
    step_size = parse_eps(config.step_size)[0] if config.step_size else 2.5 * eps / config.steps
    device = resolve_device(config.device)
    seed_everything(config.seed)

    x_train, y_train = load_examples(config.dataset, split="train", n=config.n_train, data_dir=config.data_dir)
    x_train, y_train = x_train.to(device), y_train.to(device)
    model = build(config.arch, in_channels=info.input_shape[0], num_classes=info.num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = math.ceil(len(y_train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.15
    )
    attack = {"threat_model": threat_model, "eps": eps, "steps": config.steps, "step_size": step_size}
    start = time.perf_counter()
    for epoch in range(config.epochs):
        order = torch.randperm(len(y_train), device=device)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not config.progress)
        for i in bar:
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            loss = _loss(config, model, x_train[idx], y_train[idx], attack)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if i % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - start
    model.eval()
    clean_acc, pgd_acc = _final_accuracy(model, config, info.name, threat_model, eps, device)
    weights = out.with_suffix(".pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
    metadata = _metadata(config, out, threat_model, eps_text, step_size, clean_acc, pgd_acc)
    out.write_text(_submission_source(metadata))
    return TrainReport(weights, out, clean_acc, pgd_acc, seconds)


def _loss(config: TrainConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: dict[str, Any]):
    if config.method == "standard":
        return F.cross_entropy(model(x), y)
    if config.method == "pgd-at":
        x_adv = pgd(model, x, y, **attack, init="uniform")
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


def _metadata(config, out: Path, threat_model: str, eps_text: str, step_size: float, clean, pgd_acc):
    adversarial = config.method != "standard"
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
            "pgd_steps": config.steps if adversarial else None,
            "pgd_step_size": round(step_size, 6) if adversarial else None,
            "trades_beta": config.beta if config.method == "trades" else None,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "optimizer": f"Adam, one-cycle lr max {config.lr}",
            "seed": config.seed,
            "n_train": config.n_train,
            "clean_acc": clean,
            "pgd20_acc": pgd_acc,
            "eval_n": config.eval_n,
            "command": config.command,
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
