"""repalign: representation alignment (Imani, Hu, White, TMLR 2022), measured exactly and fast.

The alignment of a representation ``features`` (n, d) with targets ``y`` is

.. math::  A(\\tau) = \\sum_{i:\\,\\sigma_i \\ge \\tau} \\lVert u_i^\\top Y \\rVert^2,

with :math:`\\sigma_i, u_i` the singular values and left singular vectors of the (bias-augmented, row-normalised)
features; by default the targets are centred (their mean is free to a linear model with a bias). See
:mod:`repalign.measure.alignment`.
"""

from repalign.core.version import __version__  # noqa: E402
from repalign.measure.alignment import (
    AlignmentAccumulator,
    Spectrum,
    TargetWarning,
    alignment,
    alignment_auc,
    alignment_curve,
    alignment_tau,
    column_aucs,
    column_curves,
    preprocess,
    spectrum,
    threshold_grid,
)
from repalign.measure.targets import alignment_targets, binary_targets, one_hot_targets, one_vs_rest_targets

__all__ = [
    "__version__",
    "AlignmentAccumulator",
    "Spectrum",
    "TargetWarning",
    "alignment",
    "alignment_auc",
    "alignment_curve",
    "alignment_tau",
    "alignment_targets",
    "column_aucs",
    "column_curves",
    "binary_targets",
    "one_hot_targets",
    "one_vs_rest_targets",
    "preprocess",
    "spectrum",
    "threshold_grid",
]
