"""Single-pixel occlusion by captum's ``FeatureAblation``: how much the target's log-odds (a function of its softmax
probability alone) and its logit fall when one pixel (all its channels) is replaced by its fill value, both from the
same forward passes."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from metrics.functional._checks import check_images, check_positive_int, check_target, describe


class OcclusionMaps(NamedTuple):
    """Score drops per pixel ``(N, 1, H, W)``: of the target's log-odds ``log(p / (1 - p))`` (p its softmax
    probability) and of its logit."""

    log_odds: Tensor
    logit: Tensor


def pixel_occlusion(
    model: nn.Module, x: Tensor, target: Tensor, *, fill: Tensor, patch_size: int = 1, batch_size: int = 256
) -> OcclusionMaps:
    """Drop of the target's score when pixel (r, c) alone is replaced by ``fill``: for s the target's log-odds and
    s its logit, ``drop[i, 0, r, c] = s(x_i) - s(x_i with x_i[:, r, c] := fill_i[:, r, c])``; with ``patch_size``
    p > 1, the non-overlapping p x p patch holding (r, c) is replaced instead (every pixel of a patch gets its drop).

    The log-odds ``log(p_t / (1 - p_t)) = z_t - logsumexp_{k != t} z_k`` is an increasing function of the target's
    probability p_t alone, so it ranks pixels exactly as the drop of p_t would, but without the softmax's
    saturation: a confident image's p_t rounds to 1 in float32 (a margin above ~17), its log-odds does not.

    Computed by ``captum.attr.FeatureAblation`` with one feature per pixel or patch (all channels together),
    ``fill`` as its baselines and a forward function returning both scores, so one set of ``N * (F + 1)`` forward
    passes (F features) gives both maps; ``batch_size`` images per forward pass (``perturbations_per_eval``
    features of a chunk of images).

    Args:
        model: returns logits ``(B, K)``; on x's device, in eval mode.
        x: float ``(N, C, H, W)``.
        target: int64 ``(N,)``.
        fill: float ``(N, C, H, W)``, what each pixel becomes (e.g. a baseline image, or ROAD's single-pixel
            imputation, ``metrics.functional.road.single_pixel_imputation``).
        patch_size: side of the square features; must divide H and W.
        batch_size: images per forward pass.

    Returns:
        an :class:`OcclusionMaps` of two float32 ``(N, 1, H, W)`` maps on x's device.

    Raises:
        ValueError: bad argument (named), or the model returns NaN/inf logits or logits of a wrong shape.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]))
        >>> maps = pixel_occlusion(model, torch.ones(1, 1, 2, 2), torch.tensor([0]), fill=torch.zeros(1, 1, 2, 2))
        >>> maps.logit  # logits [10, 0]; pixel j removed: [10 - w_j, 0]
        tensor([[[[1., 2.],
                  [3., 4.]]]])
        >>> torch.equal(maps.log_odds, maps.logit)  # two classes: log-odds = z_0 - z_1
        True
    """
    from captum.attr import FeatureAblation

    check_images(x)
    n, c, h, w = x.shape
    target = check_target(target, n, x.device)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(patch_size, "patch_size")
    if h % patch_size or w % patch_size:
        raise ValueError(f"patch_size {patch_size} does not divide the image size {h}x{w}")
    if not isinstance(fill, Tensor) or tuple(fill.shape) != tuple(x.shape) or not fill.is_floating_point():
        raise ValueError(f"fill must be a float tensor of shape {tuple(x.shape)}, got {describe(fill)}")
    if not bool(torch.isfinite(fill).all()):
        raise ValueError("fill contains NaN or infinite values")
    fill = fill.to(device=x.device, dtype=x.dtype)
    finite: list[Tensor] = []

    def both(images: Tensor, labels: Tensor) -> Tensor:
        logits = model(images)
        if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != images.shape[0]:
            raise ValueError(
                f"model must return logits of shape (B, num_classes) for a batch of {images.shape[0]} images, "
                f"got {describe(logits)}"
            )
        if bool((labels >= logits.shape[1]).any()):
            raise ValueError(f"target holds class indices >= the model's {logits.shape[1]} outputs")
        finite.append(torch.isfinite(logits).all())
        column = labels[:, None]
        own = logits.gather(1, column)
        others = logits.scatter(1, column, float("-inf")).logsumexp(dim=1, keepdim=True)
        return torch.cat([own - others, own], dim=1)

    ablation = FeatureAblation(both)
    p = patch_size
    grid = torch.arange((h // p) * (w // p), device=x.device).reshape(h // p, w // p)
    features = grid.repeat_interleave(p, dim=0).repeat_interleave(p, dim=1).reshape(1, 1, h, w)
    size = min(n, batch_size)
    out = []
    with torch.no_grad():
        for start in range(0, n, size):
            stop = min(start + size, n)
            drops = ablation.attribute(
                x[start:stop],
                baselines=fill[start:stop],
                additional_forward_args=(target[start:stop],),
                feature_mask=features,
                perturbations_per_eval=max(1, batch_size // (stop - start)),
            )
            out.append(drops.reshape(stop - start, 2, c, h, w)[:, :, 0])  # every channel of a feature: the same drop
    if not bool(torch.stack(finite).all()):
        raise ValueError("model returned NaN or infinite logits; the metric is undefined for such inputs")
    maps = torch.cat(out).to(torch.float32)
    return OcclusionMaps(maps[:, :1].contiguous(), maps[:, 1:].contiguous())
