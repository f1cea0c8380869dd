"""Test tiers: what `make test-fast` leaves out and `make test` runs (markers registered in pyproject.toml).

- ``notebook``: executes a notebook in a Jupyter kernel (papermill; every cell nbval collects from notebooks/ is
  marked here, so ``-m notebook`` selects them too);
- ``distributed``: starts cooperating processes (torchrun, a Dask cluster);
- ``slow``: seconds of training or file work for another reason.

``make test-fast`` is ``pytest tests -m "not slow and not notebook and not distributed"``; ``make test`` runs every
test of tests/ and nbval of notebooks/.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every cell nbval collects (from notebooks/, when `make test` passes it) as a ``notebook`` test."""
    for item in items:
        if type(item).__module__.startswith("nbval"):
            item.add_marker(pytest.mark.notebook)


@pytest.fixture(scope="session")
def pretrain_in_process() -> Callable[[Sequence[str]], int]:
    """``repalign.networks.pretrain.main(argv)`` in this process, on one thread (as each torchrun subprocess runs),
    leaving the caller's torch RNG and thread count as they were; returns its exit status."""
    import torch

    from repalign.networks import pretrain

    def run(argv: Sequence[str]) -> int:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                return pretrain.main(list(argv))
        finally:
            torch.set_num_threads(threads)

    return run
