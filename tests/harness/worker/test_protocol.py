"""What a worker is told (WorkerConfig at load, WorkerRun at check) and the requests that carry it, through a real
worker session in this process."""

from __future__ import annotations

from dataclasses import fields
from typing import get_args, get_type_hints, is_typeddict

import numpy as np

from harness.worker import protocol
from harness.worker.protocol import (
    ALWAYS,
    REPLIES,
    Checked,
    Classified,
    Loaded,
    ModelRef,
    WorkerConfig,
    WorkerRun,
    check_request,
    decode,
    encode,
    load_request,
    pack_images,
)
from harness.worker.session import WorkerSession
from tests.conftest import SUBMISSIONS


def test_a_worker_is_told_exactly_these_fields():
    """Adding a field to what a worker receives is a conscious act: this list changes with it (the worker runs the
    submission's code, so it sees nothing it does not need: no data directory, database URL, sweep, timeouts or
    limits; the images it works on come in ``images`` requests)."""
    assert [f.name for f in fields(WorkerConfig)] == ["model", "device", "progress"]
    assert [f.name for f in fields(ModelRef)] == ["submission", "robustbench", "dataset", "threat_model", "model_dir"]
    assert [f.name for f in fields(WorkerRun)] == [
        "dataset",
        "n_examples",
        "threat_model",
        "eps",
        "attack",
        "seed",
        "chunk",
    ]


def test_requests_round_trip_through_the_protocol():
    config = WorkerConfig(
        ModelRef(robustbench="Wong2020Fast", dataset="cifar10", threat_model="Linf", model_dir="/m"), "cpu", False
    )
    run = WorkerRun("cifar10", 8, "Linf", 8 / 255, "apgd-ce", 3, 4)
    load, check = decode(encode(load_request(config))), decode(encode(check_request(run)))
    assert load["op"] == "load" and WorkerConfig.from_json(load["config"]) == config
    assert check["op"] == "check" and WorkerRun.from_json(check["run"]) == run
    assert set(REPLIES) >= {"load", "images", "check", "attack", "explain", "visualise", "classify", "signs", "exit"}


def test_every_message_of_the_protocol_has_a_typeddict():
    """Each op a request or reply may carry (plus the worker's first line, "sandbox") is the ``op`` Literal of
    exactly one TypedDict of the protocol module, so a new message comes with its type."""
    typed: dict[str, list[str]] = {}
    for name, value in vars(protocol).items():
        if isinstance(value, type) and is_typeddict(value) and "op" in value.__annotations__:
            for op in get_args(get_type_hints(value)["op"]):
                typed.setdefault(op, []).append(name)
    ops = {*REPLIES, *ALWAYS, "sandbox"}.union(*REPLIES.values())
    assert sorted(typed) == sorted(ops)
    assert {op: names for op, names in typed.items() if len(names) > 1} == {}


def test_a_session_loads_and_checks_from_what_it_is_told(fmnist_test):
    sent: list[dict] = []
    session = WorkerSession(send=sent.append)
    model = WorkerConfig(ModelRef(submission=str(SUBMISSIONS / "fmnist_standard.py")), "cpu", False)
    assert session.handle(load_request(model))
    assert sent[-1]["op"] == "loaded" and sent[-1]["metadata"]["name"] == "fmnist_standard"
    assert set(sent[-1]) == set(Loaded.__annotations__)
    run = WorkerRun("fashion-mnist", 6, "Linf", 0.1, "apgd-ce", 0, 4)
    assert not session.handle(check_request(run))  # no images sent: the worker reads no data itself
    assert sent[-1]["op"] == "error" and "was not sent the test images" in sent[-1]["problem"]
    session = WorkerSession(send=sent.append)
    assert session.handle(load_request(model))
    x, y = fmnist_test
    packed, scale = pack_images(x[:6].numpy())
    images = {"op": "images", "split": "test", "start": 0, "total": 6, "x": packed, "y": y[:6].numpy(), "scale": scale}
    assert session.handle(decode(encode(images))) and sent[-1] == {"op": "stored"}
    assert scale == 255 and packed.dtype == np.uint8  # 8-bit images travel as bytes, and arrive bit for bit
    assert session.handle(check_request(run))
    assert np.array_equal(session.x.numpy(), x[:6].numpy()) and np.array_equal(session.y.numpy(), y[:6].numpy())
    checked = sent[-1]
    assert checked["op"] == "checked" and checked["device"] == "cpu" and checked["flags"] == []
    assert set(checked) == set(Checked.__annotations__)
    assert session.run == run and tuple(session.x.shape) == (6, 1, 28, 28) and session.info.num_classes == 10
    assert session.handle({"op": "classify", "x": session.x[:2].numpy(), "batch_size": 2})
    assert sent[-1]["op"] == "classified" and np.asarray(sent[-1]["logits"]).shape == (2, 10)
    assert set(sent[-1]) == set(Classified.__annotations__)


def test_a_session_reports_a_missing_submission_as_one_error(tmp_path):
    sent: list[dict] = []
    session = WorkerSession(send=sent.append)
    missing = WorkerConfig(ModelRef(submission=str(tmp_path / "nope.py")), "cpu", False)
    assert not session.handle(load_request(missing))
    assert sent[-1]["op"] == "error" and "is not an existing .py file" in sent[-1]["problem"]
