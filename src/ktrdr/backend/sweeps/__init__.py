"""Hyperparameter sweeps: Optuna studies whose trials are the backend's training operations.

- ``space``: the CreateSweep request checked and normalised (no Optuna);
- ``selection_bias``: test-period objectives refused or marked, the best trial's deflated
  Sharpe ratio;
- ``study``: Optuna behind one thread, imported on first use;
- ``store``: sweep and trial rows in ``backend.db``;
- ``runner``: one sweep's asyncio task (ask, train, prune, tell);
- ``manager``: ``Sweeps``, what the RPCs call; ``servicer``: the RPCs.
"""

from ktrdr.backend.sweeps.manager import Sweeps
from ktrdr.backend.sweeps.servicer import SweepRpcs

__all__ = ["SweepRpcs", "Sweeps"]
