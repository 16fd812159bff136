"""Compatibility path for submissions: ``from harness.architectures import build`` (the shipped submission files,
whose sha256 identifies their runs, import it from here). The architectures live in harness.train.architectures."""

from harness.train.architectures import ARCHITECTURES, GapCNN, Normalize, build, gap_cnn, gap_cnn_wide

__all__ = ["ARCHITECTURES", "GapCNN", "Normalize", "build", "gap_cnn", "gap_cnn_wide"]
