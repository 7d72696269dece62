"""The resumable Optuna sweeper behind `hydra/sweeper=tuning` (tuning_sweeper.py registers it).

What it adds to `hydra-optuna-sweeper`'s OptunaSweeperImpl:

- the search space is `tune.space` of the composed config (conf/tune/<model>.yaml), unless
  `hydra.sweeper.params` is given;
- the study lives in SQLite in the sweep directory (`optuna.db`) unless `storage` is given;
- resume: relaunched with the same command, a search counts its completed trials and runs only the
  rest (up to `n_trials` in all); a trial a killed search left running is marked failed and re-asked;
  job numbers continue after the existing trials, so no trial directory is overwritten; the sampler
  is reseeded with `seed + trials so far`, so a resumed search does not redraw the first points (its
  later trials are therefore not the ones an uninterrupted search would have drawn);
- after the last trial: the tuned values file and the report (bench.tuning.outputs).
"""

import logging
import os
from pathlib import Path
from typing import Any, List

from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
from omegaconf import OmegaConf

log = logging.getLogger(__name__)
# optuna 2.10 (the newest the plugin admits) needs SQLAlchemy 1.4 and uses its pre-2.0 API, which SQLAlchemy
# announces with one warning per process: pinned below 2 in pyproject.toml, so the warning says nothing new
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")


class ResumableOptunaSweeper(OptunaSweeperImpl):
    """OptunaSweeperImpl with resume, the config's search space and the search's outputs (module docstring)."""

    def sweep(self, arguments: List[str]) -> None:
        import optuna

        cfg = self.config
        space = OmegaConf.select(cfg, "tune.space")
        if not self.params:
            if not space:
                raise ValueError(f"model {cfg.model.name} has no search space: add conf/tune/{cfg.model.name}.yaml "
                                 "with a 'space' mapping (key: sweep expression), or pass hydra.sweeper.params")
            self.params = OmegaConf.create(OmegaConf.to_container(space))
        sweep_dir = Path(str(self.sweep_dir)).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if self.storage is None:
            self.storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
        if self.study_name is None:
            from bench.tuning.tuned import dataset_label

            self.study_name = f"{dataset_label(cfg)}_{cfg.model.name}"
        try:
            study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        except KeyError:
            study = None
        if study is not None and study.trials:
            for t in study.trials:
                if t.state == optuna.trial.TrialState.RUNNING:  # left by a killed search
                    study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
            log.info("resuming study %s: %d of %d trials completed", self.study_name, done, self.n_trials)
            self.n_trials = max(self.n_trials - done, 0)
            self.job_idx = len(study.trials)
            seed = cfg.hydra.sweeper.sampler.get("seed")
            if seed is not None:
                self.sampler = instantiate(cfg.hydra.sweeper.sampler, seed=int(seed) + len(study.trials))
        if self.n_trials > 0:
            super().sweep(arguments)
        self._write_outputs(optuna.load_study(study_name=self.study_name, storage=self.storage), sweep_dir, arguments)

    def _write_outputs(self, study: Any, sweep_dir: Path, arguments: List[str]) -> None:
        from bench.record import code_version
        from bench.tuning.outputs import write_search_outputs
        from bench.tuning.tuned import dataset_label, tuned_path

        cfg = self.config
        label = dataset_label(cfg)
        command = "python -m bench -m " + " ".join(str(o) for o in cfg.hydra.overrides.task)
        sampler = cfg.hydra.sweeper.sampler
        write_search_outputs(
            study, sweep_dir, tuned_path(cfg),
            Path(str(cfg.tune.report_dir)) / label / "tuning" / f"{cfg.model.name}.md",
            dataset=label, model=str(cfg.model.name), command=command,
            space={str(k): str(v) for k, v in self.params.items()},
            sampler=f"{str(sampler._target_).rsplit('.', 1)[-1]} (seed {sampler.get('seed')}, "
                    f"{sampler.get('n_startup_trials', 0)} random start-up trials)",
            commit=code_version())
