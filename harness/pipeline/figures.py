"""A run's figures, drawn from its stored artifacts (attributions, adversarial examples, visualisations)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from harness import store
from harness.core.config import ResolvedConfig
from harness.core.errors import HarnessError
from harness.pipeline.artifacts import FIGURE_ROWS, unpack_all
from harness.pipeline.lifecycle import record_details


def write_run_figures(
    sessions,
    run_id: str,
    directory: Path,
    x: torch.Tensor,
    y: torch.Tensor,
    resolved: ResolvedConfig,
    info,
    *,
    progress: bool = False,
) -> list[Path]:
    """Write the run's figures from its stored artifacts (attributions, adversarial examples, visualisations);
    returns the files written (``progress``: a bar over them on stderr)."""
    from tqdm.auto import tqdm

    from harness.report import figures

    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        artifacts = {a.key: unpack_all(a.data) for a in run.artifacts}
        examples = sorted(run.examples, key=lambda e: e.idx)[:FIGURE_ROWS]
    names, k = list(info.classes), min(FIGURE_ROWS, len(x))
    drawings: list[tuple[str, Callable[[Path], None]]] = []
    attributions = {
        key.split(":", 1)[1]: a["main"][:k] for key, a in artifacts.items() if key.startswith("attributions:")
    }
    if attributions:
        k_attr = min(len(a) for a in attributions.values())
        drawings.append(
            (
                "attributions.png",
                lambda path: figures.attribution_grid(
                    x[:k_attr],
                    y[:k_attr],
                    {m: a[:k_attr] for m, a in attributions.items()},
                    path,
                    class_names=names,
                    title=f"Attributions on the first {k_attr} test images",
                ),
            )
        )
    adv = artifacts.get("adversarial")
    if adv is not None and examples:
        rows = torch.as_tensor(adv["idx"]).long()
        drawings.append(
            (
                "adversarial.png",
                lambda path: figures.adversarial_examples(
                    x[rows],
                    adv["x_adv"],
                    y[rows],
                    adv["clean_pred"],
                    adv["adv_pred"],
                    path,
                    class_names=names,
                    eps=resolved.eps,
                    threat_model=resolved.threat_model,
                ),
            )
        )
    fv = artifacts.get("featurevis", {})
    if "inv_targets" in fv:
        seeds = {"other image": fv["inv_seed_other"], "noise": fv["inv_seed_noise"]}
        drawings.append(
            (
                "inversions.png",
                lambda path: figures.inversion_grid(
                    fv["inv_targets"],
                    seeds,
                    {"other image": fv["inv_other"], "noise": fv["inv_noise"]},
                    path,
                    title="Representation inversion",
                ),
            )
        )
    if "gen_images" in fv:
        drawings.append(
            (
                "generated.png",
                lambda path: figures.generated_grid(
                    fv["gen_images"],
                    fv["gen_classes"],
                    path,
                    class_names=names,
                    judge_pred=fv.get("gen_judge"),
                    title="Class-specific generation",
                ),
            )
        )
    written = []
    try:
        for name, draw in tqdm(drawings, desc="figures", unit="figure", disable=not progress, leave=False):
            draw(directory / name)
            written.append(directory / name)
    except OSError as exc:
        raise HarnessError(
            f"cannot write the run's figures to {directory}: {exc.strerror or exc}",
            "make the results directory writable, or pass --db to a writable location",
        ) from None
    if written:  # a reused imported run has no artifacts to draw from: what it drew when measured stays recorded
        record_details(sessions, run_id, "figures", [p.name for p in written])
    return written
