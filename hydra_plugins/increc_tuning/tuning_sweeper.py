"""`hydra/sweeper=tuning`: Hydra's Optuna sweeper, resumable, reading the backbone's search space, writing the outputs.

What it adds to `hydra-optuna-sweeper` (whose TPE sampler, storage and trial loop it runs) is in
`_resumable.py` (a private module: Hydra imports every public plugin module at start-up, and this
keeps optuna's import out of every run that does not tune).
"""

from dataclasses import dataclass
from typing import Any, List

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from omegaconf import DictConfig


@dataclass
class TuningSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.increc_tuning.tuning_sweeper.TuningSweeper"
    n_jobs: int = 1  # trials asked per batch: 1 = TPE sees every result before the next point


ConfigStore.instance().store(group="hydra/sweeper", name="tuning", node=TuningSweeperConf, provider="increc-bench")


class TuningSweeper(Sweeper):
    """The Hydra-facing sweeper; the work is ResumableOptunaSweeper's (`_resumable.py`)."""

    def __init__(self, sampler: Any, direction: Any, storage: Any, study_name: Any, n_trials: int, n_jobs: int,
                 max_failure_rate: float, search_space: Any, custom_search_space: Any, params: Any) -> None:
        from hydra_plugins.increc_tuning._resumable import ResumableOptunaSweeper

        self.sweeper = ResumableOptunaSweeper(sampler, direction, storage, study_name, n_trials, n_jobs,
                                              max_failure_rate, search_space, custom_search_space, params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
