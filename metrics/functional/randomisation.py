"""Sanity checks: cascading model-parameter randomisation (Adebayo et al., NeurIPS 2018) as Quantus's ``MPRT``, and
its variants ``EfficientMPRT`` and ``SmoothMPRT`` (Hedström et al. 2023).

Long because MPRT and its two variants share the cascading randomisation and the per-layer similarity code."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from metrics.functional._checks import (
    check_choice,
    check_finite,
    check_generator,
    check_images,
    check_positive_int,
    check_target,
    describe,
)
from metrics.functional._explain import ExplainFn, explain_in_chunks
from metrics.functional._stats import _stat_dtype, pearson, spearman

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


@runtime_checkable
class _Resettable(Protocol):
    """A module with its own ``reset_parameters()`` (the layers :func:`randomisable_layers` lists)."""

    def reset_parameters(self) -> None: ...


def _reset(module: nn.Module, state: Tensor) -> None:
    """``module.reset_parameters()`` with torch's CPU RNG set to ``state`` (global RNG left untouched); on another
    device it runs on a CPU copy, so the new weights do not depend on the device."""
    assert isinstance(module, _Resettable), "randomisable_layers lists only modules with reset_parameters()"
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
        a = explain_in_chunks(explain_fn, m, x, target, batch_size).flatten(1)
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
    s = model_parameter_randomisation(
        model,
        x,
        target,
        explain_fn,
        order=order,
        similarity=similarity,
        abs=abs,
        generator=generator,
        batch_size=batch_size,
    )
    return s.mean(dim=1) if reduction == "mean" else s[:, -1]


def _randomised_copies(
    model: nn.Module, order: LayerOrder, state: Tensor, last_only: bool
) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(layer name, model copy)`` after each layer of :func:`randomisable_layers` is re-initialised (as
    Quantus's random layer generator: cascading, or one layer at a time on the trained weights for "independent");
    with ``last_only`` just the final state. The copy is the same object each time (re-initialised in place)."""
    names = randomisable_layers(model, order)
    if not names:
        raise ValueError("model has no module with reset_parameters(); nothing to randomise")
    randomised = copy.deepcopy(model)
    modules = dict(randomised.named_modules())
    if order == "independent":
        trained = copy.deepcopy(model.state_dict())
        names = names[-1:] if last_only else names
    for i, name in enumerate(names):
        if order == "independent":
            randomised.load_state_dict(trained)
        _reset(modules[name], state)
        if not last_only or i == len(names) - 1:
            yield name, randomised


def _histogram_counts(a: Tensor, n_bins: int) -> Tensor:
    """Counts ``(N, n_bins)`` of each row of ``a`` ``(N, M)`` in ``n_bins`` equal-width bins spanning the row's
    [min, max] (±0.5 if constant), computed exactly as ``numpy.histogram(row, bins=n_bins)`` does in a's dtype:
    the bin index ``int((v - min) / (max - min) * n_bins)`` corrected against the ``linspace`` edges, the last
    bin closed."""
    lo, hi = a.min(dim=1, keepdim=True).values, a.max(dim=1, keepdim=True).values
    same = lo == hi
    lo, hi = torch.where(same, lo - 0.5, lo), torch.where(same, hi + 0.5, hi)
    delta = hi - lo
    edges = torch.arange(n_bins + 1, dtype=a.dtype, device=a.device) * (delta / n_bins) + lo
    edges[:, -1:] = hi
    idx = ((a - lo) / delta * n_bins).to(torch.int64)
    idx = idx - (idx == n_bins).long()
    idx = idx - (a < edges.gather(1, idx)).long()
    idx = idx + ((a >= edges.gather(1, idx + 1)) & (idx != n_bins - 1)).long()
    counts = torch.zeros(a.shape[0], n_bins, dtype=_stat_dtype(a), device=a.device)
    return counts.scatter_add_(1, idx, torch.ones_like(a, dtype=counts.dtype))


def discrete_entropy(attributions: Tensor, *, n_bins: int = 100) -> Tensor:
    """Shannon entropy (nats) of the histogram of each example's values: ``H = -sum_b p_b log p_b`` with ``p_b``
    the share of the elements in bin b of ``n_bins`` equal-width bins over the example's [min, max]; as Quantus's
    ``discrete_entropy`` (``scipy.stats.entropy(np.histogram(a, bins=n_bins)[0])``). A constant map gives 0.

    Args:
        attributions: float ``(N, ...)`` (all elements of an example are binned together).
        n_bins: number of bins, >= 1.

    Returns:
        ``(N,)`` in [0, log(n_bins)], float64 (float32 on MPS).

    Raises:
        ValueError: bad argument (named), or attributions holding NaN/inf.

    Example:
        >>> discrete_entropy(torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 2.0, 3.0]]), n_bins=2)
        tensor([0.6931, 0.6931], dtype=torch.float64)
    """
    if not isinstance(attributions, Tensor) or attributions.ndim < 2 or not attributions.is_floating_point():
        raise ValueError(f"attributions must be a float tensor (N, ...), got {describe(attributions)}")
    if attributions.shape[0] == 0 or attributions[0].numel() == 0:
        raise ValueError(f"attributions must hold N >= 1 non-empty examples, got shape {tuple(attributions.shape)}")
    check_finite(attributions, "attributions")
    check_positive_int(n_bins, "n_bins")
    counts = _histogram_counts(attributions.flatten(1), n_bins)
    p = counts / counts.sum(dim=1, keepdim=True)
    return -torch.where(p > 0, p * torch.log(torch.where(p > 0, p, torch.ones_like(p))), torch.zeros_like(p)).sum(1)


def efficient_model_parameter_randomisation(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    explain_fn: ExplainFn,
    *,
    order: LayerOrder = "bottom_up",
    n_bins: int = 100,
    abs: bool = False,
    attributions: Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Efficient MPRT (Hedström et al. 2023, "Sanity Checks Revisited"), as Quantus's ``EfficientMPRT``: the relative
    rise in explanation complexity from the trained to the fully randomised model.

    ``eMPRT_i = (H(a^rand_i) - H(a_i)) / H(a_i)`` with ``H`` the :func:`discrete_entropy` of the explanation
    (``n_bins`` bins; Quantus's default 100 when no binning rule is given) and ``a^rand`` the explanation of a copy
    of ``model`` after every layer of :func:`randomisable_layers` has been re-initialised ("bottom_up" or
    "top_down": both end at the same fully random model; "independent": only the last listed layer is reset, as
    Quantus's last state). Higher = the explanation loses more structure when the model is destroyed (a sane
    explanation). Quantus's ``normalise`` (one positive factor per batch) leaves every histogram's bins unchanged,
    so it has no counterpart here. If ``a_i`` is constant, ``H(a_i) = 0`` and the score is inf (NaN if ``a^rand_i``
    is constant too), as in Quantus.

    Randomness: as :func:`model_parameter_randomisation` (Quantus ``seed=s`` equals ``generator=torch.Generator()
    .manual_seed(s + 1)``).

    Args:
        model: the trained model (not modified).
        x: float ``(N, C, H, W)``.
        target: int64 ``(N,)``.
        explain_fn: ``(model, x_batch, target_batch) -> attributions (B, ...)``.
        order: layer order, see above.
        n_bins: histogram bins of the entropy.
        abs: take ``|a|`` of both explanations first (Quantus default False).
        attributions: the trained model's explanations ``(N, ...)`` if already computed (else explain_fn is called).
        generator: a CPU ``torch.Generator`` whose state seeds the re-initialisation.
        batch_size: images per ``explain_fn`` call.

    Returns:
        ``(N,)`` float64 (float32 on MPS), > -1 (or inf/NaN, see above).

    Raises:
        ValueError: bad argument (named), a model with no re-initialisable layer, or NaN/inf explanations.
    """
    check_images(x)
    target = check_target(target, x.shape[0], x.device)
    check_choice(order, "order", ("top_down", "bottom_up", "independent"))
    check_positive_int(n_bins, "n_bins")
    check_positive_int(batch_size, "batch_size")
    state = _rng_state(generator)
    if attributions is None:
        attributions = explain_in_chunks(explain_fn, model, x, target, batch_size)
    elif not isinstance(attributions, Tensor) or attributions.shape[0] != x.shape[0]:
        raise ValueError(f"attributions must be a tensor ({x.shape[0]}, ...), got {describe(attributions)}")

    def entropy(a: Tensor) -> Tensor:
        a = a.detach().flatten(1)
        return discrete_entropy(a.abs() if abs else a, n_bins=n_bins)

    original = entropy(attributions)
    ((_, randomised),) = _randomised_copies(model, order, state, last_only=True)
    return (entropy(explain_in_chunks(explain_fn, randomised, x, target, batch_size)) - original) / original


def _smooth_explain(
    explain_fn: ExplainFn, model: nn.Module, x: Tensor, target: Tensor, noise: Tensor, magnitude: float, batch_size: int
) -> Tensor:
    """Quantus's SmoothMPRT explanation: the mean of the explanations of ``S - 1`` noisy copies ``x + sigma_i *
    noise[s]`` (``sigma_i = magnitude * (max x_i - min x_i)``, summed in float64 and rounded to x's dtype) and of
    x itself (the S-th sample), accumulated one sample at a time in Quantus's order. noise: ``(S - 1, N, C, H, W)``."""
    dims = tuple(range(1, x.ndim))
    sigma = magnitude * (x.amax(dim=dims, keepdim=True) - x.amin(dim=dims, keepdim=True))
    wide = _stat_dtype(x)
    noisy = (x.to(wide) + noise.to(x.device, wide) * sigma.to(wide)).to(x.dtype)
    n_samples = noise.shape[0] + 1
    stacked = torch.cat([noisy.flatten(0, 1), x])
    a = explain_in_chunks(explain_fn, model, stacked, target.repeat(n_samples), batch_size).reshape(
        n_samples, x.shape[0], -1
    )
    smooth = a[0] / n_samples
    for s in range(1, n_samples):
        smooth = smooth + a[s] / n_samples
    return smooth


def smooth_model_parameter_randomisation(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    explain_fn: ExplainFn,
    *,
    order: LayerOrder = "bottom_up",
    n_samples: int = 50,
    noise_magnitude: float = 0.1,
    similarity: Literal["spearman", "pearson"] = "spearman",
    abs: bool = True,
    skip_layers: bool = False,
    attributions: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    noise_generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Smooth MPRT (Hedström et al. 2023, "Sanity Checks Revisited"), as Quantus's ``SmoothMPRT``: MPRT on
    explanations denoised by averaging over ``n_samples`` noisy inputs, so that gradient noise shared by the trained
    and the random model cannot pass for similarity.

    The smoothed explanation of a model is ``mean_s explain(model, x + sigma_i * eps_s)`` over ``n_samples - 1``
    Gaussian draws ``eps_s ~ N(0, I)`` and the clean input (``sigma_i = noise_magnitude * (max x_i - min x_i)``), then
    ``|.|`` if ``abs``. ``S[i, l] = similarity(ref_i, smooth(model_l)_i)`` after each layer l of
    :func:`randomisable_layers` in ``order`` (cascading; "independent": one layer at a time), or only after the last
    one (``skip_layers``). ``ref`` is ``attributions`` if given (Quantus's ``a_batch``, ``|.|`` if ``abs``), else
    the smoothed explanation of the trained model. Lower = more sensitive to the parameters. Quantus also stores an
    "original" entry (ref against a second smoothed draw of the trained model; averaged in by its
    ``return_average_correlation``); it is not computed here. Quantus's ``normalise`` (one positive factor per
    batch) changes no rank and no Pearson correlation, so it has no counterpart here. Constant maps give 0.0.

    Randomness: re-initialisation as :func:`model_parameter_randomisation` (Quantus ``seed=s`` equals
    ``generator=torch.Generator().manual_seed(s + 1)``); fresh noise for every smoothed explanation, in order:
    the trained model (only if ``attributions`` is None), then each randomised state; each state's draw is
    ``(n_samples - 1, N, C, H, W)`` from ``noise_generator`` (None: torch's global RNG), or ``noise[k]``.

    Args:
        model: the trained model (not modified).
        x: float ``(N, C, H, W)``.
        target: int64 ``(N,)``.
        explain_fn: ``(model, x_batch, target_batch) -> attributions (B, ...)``, called on chunks of the
            ``n_samples * N`` noisy images (sample-major).
        order, similarity, abs, skip_layers: see above (Quantus's defaults).
        n_samples: explanations averaged per smoothed explanation (the last one on the clean input), >= 1.
        noise_magnitude: noise standard deviation relative to each image's value range, >= 0.
        attributions: the reference explanations ``(N, ...)``; None = smoothed explanations of the trained model.
        noise: explicit standard-normal draws ``(K, n_samples - 1, N, C, H, W)``, K = the number of smoothed
            explanations in the order above (then noise_generator is not used).
        generator: a CPU ``torch.Generator`` whose state seeds the re-initialisation.
        noise_generator: a ``torch.Generator`` for the noise (on its own device; moved to x's device).
        batch_size: images per ``explain_fn`` call.

    Returns:
        ``(N, L)`` in [-1, 1], one column per layer in :func:`randomisable_layers` order (``(N, 1)`` with
        ``skip_layers``), dtype of the explanations.

    Raises:
        ValueError: bad argument (named), a model with no re-initialisable layer, or NaN/inf explanations.
    """
    check_images(x)
    target = check_target(target, x.shape[0], x.device)
    check_choice(order, "order", ("top_down", "bottom_up", "independent"))
    check_choice(similarity, "similarity", ("spearman", "pearson"))
    check_positive_int(n_samples, "n_samples")
    check_positive_int(batch_size, "batch_size")
    if isinstance(noise_magnitude, bool) or not isinstance(noise_magnitude, int | float) or noise_magnitude < 0:
        raise ValueError(f"noise_magnitude must be a number >= 0, got {noise_magnitude!r}")
    check_generator(noise_generator)
    state = _rng_state(generator)
    n_layers = len(randomisable_layers(model, order))
    n_states = (1 if skip_layers else n_layers) + (attributions is None)
    shape = (n_states, n_samples - 1, *x.shape)
    if noise is not None and (not isinstance(noise, Tensor) or tuple(noise.shape) != shape):
        raise ValueError(f"noise must be a tensor of shape {shape}, got {describe(noise)}")
    draws = iter(noise) if noise is not None else None

    def smoothed(m: nn.Module) -> Tensor:
        if draws is not None:
            eps = next(draws)
        else:
            where = noise_generator.device if noise_generator is not None else x.device
            eps = torch.randn(shape[1:], generator=noise_generator, device=where, dtype=x.dtype)
        a = _smooth_explain(explain_fn, m, x, target, eps, float(noise_magnitude), batch_size)
        return a.abs() if abs else a

    if attributions is None:
        reference = smoothed(model)
    elif not isinstance(attributions, Tensor) or attributions.shape[0] != x.shape[0]:
        raise ValueError(f"attributions must be a tensor ({x.shape[0]}, ...), got {describe(attributions)}")
    else:
        reference = check_finite(attributions.detach().to(x.device), "attributions").flatten(1)
        reference = reference.abs() if abs else reference

    def compare(a: Tensor, b: Tensor) -> Tensor:
        return spearman(a, b) if similarity == "spearman" else pearson(a, b).to(a.dtype)

    columns = [compare(reference, smoothed(m)) for _, m in _randomised_copies(model, order, state, skip_layers)]
    return torch.stack(columns, dim=1)
