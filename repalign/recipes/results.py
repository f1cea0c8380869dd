"""The recipes' typed results as the plain data the cache stores, and the preprocessing they were measured with.

:func:`repalign.core.cache.load_or_compute` stores dicts, lists, arrays and scalars only, so each recipe's frozen
dataclass result (:class:`repalign.recipes.peaks.PeaksTransfer`, :class:`repalign.recipes.transfer.TrainedNetwork`,
:class:`repalign.recipes.transfer.TransferResult`) goes to the cache as :meth:`PlainResult.to_dict` and comes back
through its ``from_dict``. A result that holds AUCs but no :class:`repalign.measure.alignment.Spectrum` keeps its
spectra's ``options``; :func:`noted_options` tells the measure about them when the result is rebuilt, so that a
result read from the cache records its preprocessing (:func:`repalign.measure.alignment.preprocessing_seen`) as a
computed one does, and a notebook writes the same claim file warm or cold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from repalign.measure.alignment import note_preprocessing

__all__ = ["PlainResult", "noted_options"]


class PlainResult:
    """Mixin of a recipe's dataclass result: :meth:`to_dict`, its fields as plain data (one entry per field)."""

    def to_dict(self) -> dict[str, Any]:
        """``{field: value}`` of every dataclass field, for the cache. Inverse: the class's ``from_dict``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


def noted_options(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``options`` entry of a stored result (``bias``, ``normalize``, ``center``, ``method`` of its spectra),
    noted with the measure (:func:`repalign.measure.alignment.note_preprocessing`) on the way back."""
    options = dict(data["options"])
    note_preprocessing(options)
    return options
