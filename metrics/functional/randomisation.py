"""Sanity checks: cascading model-parameter randomisation (Adebayo et al., NeurIPS 2018) as Quantus's ``MPRT``."""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import Tensor, nn

from metrics.functional._checks import (
    check_choice,
    check_images,
    check_positive_int,
    check_target,
    describe,
)
from metrics.functional._explain import ExplainFn, explain
from metrics.functional._stats import pearson, spearman

LayerOrder = Literal["top_down", "bottom_up", "independent"]


def randomisable_layers(model: nn.Module, order: LayerOrder = "top_down") -> list[str]:
    """Names of the modules that get re-initialised, in randomisation order: every module with a
    ``reset_parameters`` method (Quantus's rule), output layer first for "top_down"."""
    check_choice(order, "order", ("top_down", "bottom_up", "independent"))
    names = [name for name, module in model.named_modules() if hasattr(module, "reset_parameters")]
    return names[::-1] if order == "top_down" else names


def _rng_state(generator: object) -> Tensor:
    if generator is None:
        return torch.get_rng_state()
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator or None, got {describe(generator)}")
    return generator.get_state()


def _reset(module: nn.Module, state: Tensor) -> None:
    """``module.reset_parameters()`` with torch's CPU RNG set to ``state`` (global RNG left untouched); on another
    device it runs on a CPU copy, so the new weights do not depend on the device."""
    tensors = list(module.state_dict().values())
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(state)
        if all(t.device.type == "cpu" for t in tensors):
            module.reset_parameters()
            return
        clone = copy.deepcopy(module).cpu()
        clone.reset_parameters()
    with torch.no_grad():
        fresh = clone.state_dict()
        for key, value in module.state_dict().items():
            value.copy_(fresh[key])


def model_parameter_randomisation(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    explain_fn: ExplainFn,
    *,
    order: LayerOrder = "top_down",
    similarity: Literal["spearman", "pearson"] = "spearman",
    abs: bool = True,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Similarity between the explanation of the trained model and of progressively randomised copies.

    A deep copy of ``model`` has its layers (:func:`randomisable_layers`) re-initialised one at a time with their
    own ``reset_parameters``: "top_down" cascades from the output layer downwards (cumulative), "bottom_up" from
    the input upwards, "independent" resets one layer at a time on the trained weights. After each layer,
    ``S[i, l] = similarity(|a_i|, |a^l_i|)`` over all elements of the explanation (Quantus's ``MPRT`` defaults:
    Spearman rank correlation of absolute attributions; its max-normalisation does not change ranks). Lower =
    the explanation depends more on the parameters (a sane explanation). Constant explanations give 0.0.

    Randomness: every layer is re-initialised from the generator's state at call time (read, not advanced), as
    Quantus re-seeds torch before each layer: ``MPRT(seed=s)`` equals ``generator=torch.Generator().manual_seed(s
    + 1)``. ``None`` reads torch's global CPU RNG state. Re-initialisation runs on CPU for any device.

    Args:
        model: the trained model (not modified).
        x: float ``(N, C, H, W)``.
        target: int64 ``(N,)``.
        explain_fn: ``(model, x_batch, target_batch) -> attributions (B, ...)``.
        order, similarity, abs: see above.
        generator: a CPU ``torch.Generator`` whose state seeds the re-initialisation.
        batch_size: images per ``explain_fn`` call.

    Returns:
        ``(N, L)`` in [-1, 1], one column per layer in :func:`randomisable_layers` order.

    Raises:
        ValueError: bad argument (named), a model with no re-initialisable layer, or explain_fn returning NaN/inf.
    """
    check_images(x)
    target = check_target(target, x.shape[0], x.device)
    check_choice(similarity, "similarity", ("spearman", "pearson"))
    check_positive_int(batch_size, "batch_size")
    names = randomisable_layers(model, order)
    if not names:
        raise ValueError("model has no module with reset_parameters(); nothing to randomise")
    state = _rng_state(generator)

    def attributions(m: nn.Module) -> Tensor:
        a = explain(explain_fn, m, x, target, batch_size).flatten(1)
        return a.abs() if abs else a

    def compare(a: Tensor, b: Tensor) -> Tensor:
        return spearman(a, b) if similarity == "spearman" else pearson(a, b).to(a.dtype)

    original = attributions(model)
    randomised = copy.deepcopy(model)
    trained = copy.deepcopy(model.state_dict()) if order == "independent" else None
    modules = dict(randomised.named_modules())
    columns = []
    for name in names:
        if trained is not None:
            randomised.load_state_dict(trained)
        _reset(modules[name], state)
        columns.append(compare(original, attributions(randomised)))
    return torch.stack(columns, dim=1)


def model_parameter_randomisation_score(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    explain_fn: ExplainFn,
    *,
    reduction: Literal["mean", "last"] = "mean",
    order: LayerOrder = "top_down",
    similarity: Literal["spearman", "pearson"] = "spearman",
    abs: bool = True,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Per-example summary of :func:`model_parameter_randomisation`: the mean over the randomised layers
    ("mean", default) or the similarity once every layer is randomised ("last", top_down: Quantus's
    ``return_last_correlation``). Quantus's ``return_average_correlation`` also averages in its "original" entry
    (the trained model against itself, 1.0), i.e. ``(1 + L * mean) / (L + 1)``; we do not.

    Returns: ``(N,)`` in [-1, 1] (lower = more sensitive to the parameters).
    """
    check_choice(reduction, "reduction", ("mean", "last"))
    s = model_parameter_randomisation(model, x, target, explain_fn, order=order, similarity=similarity, abs=abs,
                                      generator=generator, batch_size=batch_size)  # fmt: skip
    return s.mean(dim=1) if reduction == "mean" else s[:, -1]
