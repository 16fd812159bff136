"""2x2 composites for the Grid Pointing Game (Rao, Böhle, Schiele, CVPR 2022), and object masks.

Composites tile four test images of four distinct classes (the suite draws them whatever the model predicts, so
that all models of a data set share them). They are used at native
resolution (2H x 2W) when the model returns exactly one row of logits for such an input, else downscaled
to H x W (area interpolation). A model that does not recognise the cells makes GridPG meaningless, so the
recognition rate (how many of the 4 cell classes are in the model's top 4) is measured alongside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GRID = 2
OBJECT_THRESHOLD = 0.05  # Fashion-MNIST: pixels brighter than this are the object (about 47% of pixels)


@dataclass
class Composites:
    """``images`` (M, C, H', W'); ``cell_classes`` and ``sources`` (M, 4), cells in row-major order."""

    images: torch.Tensor
    cell_classes: torch.Tensor
    sources: torch.Tensor
    native: bool

    def __len__(self) -> int:
        return len(self.images)


def object_masks(x: torch.Tensor, threshold: float = OBJECT_THRESHOLD) -> torch.Tensor:
    """Bool masks ``(N, 1, H, W)``: pixels where any channel exceeds ``threshold``."""
    return (x > threshold).any(dim=1, keepdim=True)


def make_composites(
    x: torch.Tensor, y: torch.Tensor, correct: torch.Tensor, *, n_composites: int, generator: torch.Generator
) -> Composites:
    """Tile images of 4 distinct classes among those marked ``correct`` (classes without a candidate are skipped).

    x ``(N, C, H, W)``, y and correct ``(N,)``; returns ``n_composites`` native-resolution composites.

    Raises:
        ValueError: fewer than 4 classes have a correctly classified example.
    """
    pools = {int(c): (correct & (y == c)).nonzero().flatten() for c in torch.unique(y).tolist()}
    classes = torch.tensor(sorted(c for c, idx in pools.items() if len(idx) > 0))
    if len(classes) < GRID * GRID:
        k = len(classes)
        have = "class has" if k == 1 else "classes have"
        raise ValueError(f"only {k} {have} a correctly classified example; GridPG needs 4")
    n, c, h, w = x.shape
    images = torch.empty(n_composites, c, GRID * h, GRID * w, dtype=x.dtype)
    cell_classes = torch.empty(n_composites, GRID * GRID, dtype=torch.long)
    sources = torch.empty(n_composites, GRID * GRID, dtype=torch.long)
    for m in range(n_composites):
        chosen = classes[torch.randperm(len(classes), generator=generator)[: GRID * GRID]]
        for cell, cls in enumerate(chosen.tolist()):
            pool = pools[cls]
            src = int(pool[torch.randint(len(pool), (1,), generator=generator)])
            r, col = divmod(cell, GRID)
            images[m, :, r * h : (r + 1) * h, col * w : (col + 1) * w] = x[src]
            cell_classes[m, cell], sources[m, cell] = cls, src
    return Composites(images, cell_classes, sources, native=True)


@torch.no_grad()
def fit_to_model(
    model: nn.Module, composites: Composites, num_classes: int, input_hw: tuple[int, int], device: torch.device
) -> Composites:
    """Keep native resolution if the model gives one ``(1, K)`` row for a composite, else downscale."""
    probe = composites.images[:1].to(device)
    try:
        out = model(probe)
        ok = isinstance(out, torch.Tensor) and tuple(out.shape) == (1, num_classes)
    except Exception:  # a model that rejects the larger input
        ok = False
    if ok:
        return composites
    small = F.interpolate(composites.images, size=input_hw, mode="area")
    return Composites(small, composites.cell_classes, composites.sources, native=False)


@torch.no_grad()
def recognised_cells(
    model: nn.Module, composites: Composites, *, device: torch.device, batch_size: int = 256
) -> torch.Tensor:
    """Per composite and cell, whether the cell's class is among the model's top 4 classes: bool ``(M, 4)``."""
    hits = []
    for i in range(0, len(composites), batch_size):
        logits = model(composites.images[i : i + batch_size].to(device)).cpu()
        top = logits.topk(GRID * GRID, dim=1).indices
        cells = composites.cell_classes[i : i + batch_size]
        hits.append((cells.unsqueeze(2) == top.unsqueeze(1)).any(2))
    return torch.cat(hits)


@torch.no_grad()
def recognition(
    model: nn.Module, composites: Composites, *, device: torch.device, batch_size: int = 256
) -> torch.Tensor:
    """Per composite, how many of its 4 cell classes are among the model's top 4 classes: ``(M,)`` in 0..4."""
    return recognised_cells(model, composites, device=device, batch_size=batch_size).sum(1).float()


def chance_recognition(num_classes: int) -> float:
    """Expected overlap of 4 distinct cell classes with a random top 4 of ``num_classes``: 16/K."""
    return (GRID * GRID) ** 2 / num_classes
