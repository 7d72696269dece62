"""The resumable Optuna sweeper behind `hydra/sweeper=tuning` (tuning_sweeper.py registers it).

What it adds to `hydra-optuna-sweeper`'s OptunaSweeperImpl:

- the search space is `tune.space` of the composed config (conf/tune/<model>.yaml), unless
  `hydra.sweeper.params` is given; a sweep on the command line (`seed=0,1`, `model=a,b`) is refused,
  since the sweeper would search over it as if it were a hyper-parameter;
- trial 0 of a new study is the composed config's own values of the searched keys (the untuned
  configuration), when they lie in the space, so the best trial is never worse than the default;
- the study lives in SQLite in the sweep directory (`optuna.db`) unless `storage` is given, with the
  search's command-line overrides and space as study attributes; a lock file keeps a second launch
  off a running search;
- resume: relaunched with the same command, a search continues its study and runs only the trials
  still missing (up to `n_trials` completed in all). A relaunch whose overrides or space differ is
  refused. A trial a killed search left running is completed from its `trial.json` when the trial had
  finished, otherwise marked failed and asked again with the same values (Optuna's enqueue_trial).
  Job numbers continue after the existing trials, so no trial folder is overwritten, and the sampler
  is reseeded with `seed + trials so far`, so a resumed search does not redraw its first points (its
  later points therefore differ from an uninterrupted search's);
- after the last trial: the best trials confirmed at two more seeds (bench.tuning.confirm; `tune.confirm`),
  then the tuned values file and the report (bench.tuning.outputs), rewritten only when trials were added
  or the tuned file is missing.
"""

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import List

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
from omegaconf import OmegaConf

log = logging.getLogger(__name__)
# optuna 2.10 (the newest the plugin admits) needs SQLAlchemy 1.4 and uses its pre-2.0 API, which SQLAlchemy
# announces with one warning per process: pinned below 2 in pyproject.toml, so the warning says nothing new
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

LOCK = ".search.lock"
HIDDEN_HYDRA_OVERRIDES = ("hydra.mode",)  # set by Hydra itself, not typed


def refuse_command_line_sweeps(arguments: List[str], model: str) -> None:
    """A sweep on the command line (`seed=0,1`) would be searched over as a hyper-parameter: refused."""
    swept = [a for a in arguments if OverridesParser.create().parse_override(a).is_sweep_override()]
    if swept:
        raise ValueError(f"experiment=tune searches conf/tune/{model}.yaml's space; the command line "
                         f"sweeps {' '.join(swept)}: run one search per value instead")


def default_point(cfg, space: List[str]) -> dict | None:
    """The composed config's own values of the searched keys, when every one lies in its declared range
    (else None: the search then starts from sampled points only). Searching from it means a tuned file is
    never worse on validation than the untuned configuration it replaces."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    distributions, _ = create_params_from_overrides(space)
    point = {}
    for key, dist in distributions.items():
        value = OmegaConf.select(cfg, key)
        try:
            inside = dist._contains(dist.to_internal_repr(value))
        except (ValueError, TypeError):
            inside = False
        if not inside:
            log.info("no default trial: %s=%r lies outside %s", key, value, dist)
            return None
        point[key] = value
    return point


def _completed(study) -> int:
    """How many of the study's trials completed."""
    return sum(t.state.name == "COMPLETE" for t in study.trials)


class ResumableOptunaSweeper(OptunaSweeperImpl):
    """OptunaSweeperImpl with resume, the config's search space and the search's outputs (module docstring)."""

    def sweep(self, arguments: List[str]) -> None:
        cfg = self.config
        refuse_command_line_sweeps(arguments, str(cfg.model.name))
        if not self.params:
            space = OmegaConf.select(cfg, "tune.space")
            if not space:
                raise ValueError(f"model {cfg.model.name} has no search space: add conf/tune/{cfg.model.name}.yaml "
                                 "with a 'space' mapping (key: sweep expression), or pass hydra.sweeper.params")
            self.params = OmegaConf.create(OmegaConf.to_container(space))
        sweep_dir = Path(str(self.sweep_dir)).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with open(sweep_dir / LOCK, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(f"another search is running in {sweep_dir} (it holds {LOCK})") from None
            self._sweep_locked(arguments, sweep_dir)

    def _sweep_locked(self, arguments: List[str], sweep_dir: Path) -> None:
        import optuna

        from bench.config import dataset_label

        cfg = self.config
        if self.storage is None:
            self.storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
        if self.study_name is None:
            self.study_name = f"{dataset_label(cfg)}_{cfg.model.name}"
        identity = {"overrides": sorted(str(o) for o in cfg.hydra.overrides.task),
                    "space": {str(k): str(v) for k, v in self.params.items()}}
        study = optuna.create_study(study_name=self.study_name, storage=self.storage, load_if_exists=True,
                                    directions=self._get_directions())
        if not study.trials and "identity" not in study.user_attrs:
            study.set_user_attr("identity", identity)
            default = default_point(cfg, self._parse_sweeper_params_config())
            if default is not None:  # trial 0: the configuration a run uses untuned, inside the same budget
                study.enqueue_trial(default)
                log.info("trial 0 is the default configuration %s", default)
        elif study.user_attrs.get("identity") != identity:
            raise ValueError(f"{sweep_dir} holds a search with other overrides or another space "
                             f"({study.user_attrs.get('identity')}); relaunch it with its own command, "
                             "or pass another hydra.sweep.dir")
        before = _completed(study)
        if study.trials:
            self._recover(study, sweep_dir)
            done = _completed(study)
            log.info("resuming study %s: %d of %d trials completed", self.study_name, done, self.n_trials)
            self.n_trials = max(self.n_trials - done, 0)
            # the next trial asked is the first waiting one (an enqueued retry) or a new one: its number is the job's
            self.job_idx = sum(t.state != optuna.trial.TrialState.WAITING for t in study.trials)
            seed = cfg.hydra.sweeper.sampler.get("seed")
            if seed is not None:
                self.sampler = instantiate(cfg.hydra.sweeper.sampler, seed=int(seed) + len(study.trials))
        if self.n_trials > 0:
            super().sweep(arguments)
        study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        after = _completed(study)
        from bench.config.tuned import tuned_path

        if after > before or not tuned_path(cfg).exists():
            self._write_outputs(study, sweep_dir)

    @staticmethod
    def _recover(study, sweep_dir: Path) -> None:
        """Trials a killed search left RUNNING: COMPLETE from their record when they finished, else FAIL and
        asked again with the same values."""
        import optuna

        from bench.tuning.outputs import trial_dir
        from bench.tuning.trial import TRIAL_RECORD

        for t in study.trials:
            if t.state != optuna.trial.TrialState.RUNNING:
                continue
            record = trial_dir(sweep_dir, t.number) / TRIAL_RECORD
            if record.exists():
                study.tell(t.number, values=json.loads(record.read_text())["objective"]["value"])
                log.info("trial %d had finished before the kill: completed from %s", t.number, record)
            else:
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
                study.enqueue_trial(dict(t.params))
                log.info("trial %d was killed: marked failed, its values asked again", t.number)

    def _write_outputs(self, study, sweep_dir: Path) -> None:
        import optuna

        from bench.config import dataset_label
        from bench.tuning.outputs import write_search_outputs
        from bench.config.tuned import tuned_path

        cfg = self.config
        label = dataset_label(cfg)
        typed = [str(o) for o in cfg.hydra.overrides.hydra if not str(o).startswith(HIDDEN_HYDRA_OVERRIDES)]
        command = "python -m bench -m " + " ".join([*(str(o) for o in cfg.hydra.overrides.task), *typed])
        sampler = cfg.hydra.sweeper.sampler
        confirm_with = None
        if cfg.tune.confirm:  # the best trials rerun at two more seeds before a value set is written
            from bench.tuning.confirm import confirm_in

            def confirm_with(candidates):
                return confirm_in(cfg, candidates, sweep_dir, max_candidates=int(cfg.tune.max_candidates))
        write_search_outputs(
            study, sweep_dir, tuned_path(cfg), Path(str(cfg.tune.report_dir)) / label / "tuning" / f"{cfg.model.name}.md",
            dataset=label, model=str(cfg.model.name), command=command,
            space={str(k): str(v) for k, v in self.params.items()},
            sampler=f"{str(sampler._target_).rsplit('.', 1)[-1]} (seed {sampler.get('seed')}, "
                    f"{sampler.get('n_startup_trials', 0)} random start-up trials; optuna {optuna.__version__})",
            confirm_with=confirm_with)
