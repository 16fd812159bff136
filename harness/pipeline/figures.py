"""A run's figures, drawn from its stored artifacts (attributions, adversarial examples, visualisations)."""

from __future__ import annotations

from pathlib import Path

import torch

from harness import store
from harness.config import ResolvedConfig
from harness.errors import HarnessError
from harness.pipeline.artifacts import FIGURE_ROWS, unpack_all


def write_run_figures(
    sessions, run_id: str, directory: Path, x: torch.Tensor, y: torch.Tensor, resolved: ResolvedConfig, info
) -> None:
    """Write the run's figures from its stored artifacts (attributions, adversarial examples, visualisations)."""
    from harness.report import figures

    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        artifacts = {a.key: unpack_all(a.data) for a in run.artifacts}
        examples = sorted(run.examples, key=lambda e: e.idx)[:FIGURE_ROWS]
    names, k = list(info.classes), min(FIGURE_ROWS, len(x))
    try:
        attributions = {
            key.split(":", 1)[1]: a["main"][:k] for key, a in artifacts.items() if key.startswith("attributions:")
        }
        if attributions:
            k_attr = min(len(a) for a in attributions.values())
            figures.attribution_grid(
                x[:k_attr],
                y[:k_attr],
                {m: a[:k_attr] for m, a in attributions.items()},
                directory / "attributions.png",
                class_names=names,
                title=f"Attributions on the first {k_attr} test images",
            )
        adv = artifacts.get("adversarial")
        if adv is not None and examples:
            rows = torch.as_tensor(adv["idx"]).long()
            figures.adversarial_examples(
                x[rows],
                adv["x_adv"],
                y[rows],
                adv["clean_pred"],
                adv["adv_pred"],
                directory / "adversarial.png",
                class_names=names,
                eps=resolved.eps,
                threat_model=resolved.threat_model,
            )
        fv = artifacts.get("featurevis", {})
        if "inv_targets" in fv:
            seeds = {"other image": fv["inv_seed_other"], "noise": fv["inv_seed_noise"]}
            figures.inversion_grid(
                fv["inv_targets"],
                seeds,
                {"other image": fv["inv_other"], "noise": fv["inv_noise"]},
                directory / "inversions.png",
                title="Representation inversion",
            )
        if "gen_images" in fv:
            figures.generated_grid(
                fv["gen_images"],
                fv["gen_classes"],
                directory / "generated.png",
                class_names=names,
                judge_pred=fv.get("gen_judge"),
                title="Class-specific generation",
            )
    except OSError as exc:
        raise HarnessError(
            f"cannot write the run's figures to {directory}: {exc.strerror or exc}",
            "make the results directory writable, or pass --db to a writable location",
        ) from None
