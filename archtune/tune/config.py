"""A search's settings, parsed and validated once: `SearchConfig`.

`AutoNeuralClassifier` / `AutoNeuralRegressor` (and `archtune tune`, through them) hand their
parameters to `SearchConfig.from_params`, the one place they are checked, with the named
errors users see (``InvalidParameterError("cv must be ...")``). The frozen result is the only
thing that crosses into archtune.tune: `run_search(config, data)` reads its typed fields and
derived values (the scorer, the pruner's history column, the cohort size, whether to
ensemble), never a string key of a loose mapping. It is also the job a coordinator publishes
for its workers (`to_json` / `from_json`), so that both build their trial loop from the same
object (archtune.tune.trial_loop.trial_loop).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archtune.checks import check_choice, check_number
from archtune.errors import InvalidParameterError, nearest
from archtune.task import Task, task_named

# Trials per cohort with population=True: enough to amortise the per-step overhead of small
# networks (the speed-up flattens beyond ~8 on CPU) without delaying the first results much.
COHORT_SIZE = 8

# Where the n_jobs trials run (archtune.tune.launch starts the workers of the last two).
BACKENDS = ("threads", "processes", "ray")

# The parameters of AutoNeuralClassifier / AutoNeuralRegressor, each a field of SearchConfig.
PARAMS = ("budget", "space", "sampler", "pruner", "objectives", "prefer", "cv", "scoring", "storage", "study_name",
          "n_jobs", "backend", "population", "refit", "ensemble", "bagging", "baselines", "validation_fraction",
          "min_resources", "random_state", "device", "verbose", "mlflow_uri", "tensorboard_dir")


@dataclass(frozen=True)
class SearchConfig:
    """Everything a search is asked to do, checked (see `AutoNeuralClassifier` for each
    parameter's meaning). Build it with `from_params`; ``seconds``/``trials`` are the parsed
    budget, ``space`` the resolved `SearchSpace` (before the data fits it: text and image
    columns add encoders), ``seed`` the integer seed drawn from ``random_state``."""

    task: Task
    budget: str | int
    seconds: float | None
    trials: int | None
    space_request: Any  # the space as given ("default", a preset, a dict of overrides, a SearchSpace)
    space: Any  # archtune.tune.space.SearchSpace
    sampler: str
    pruner: str | None
    objectives: tuple[str, ...]
    prefer: str
    cv: int | None
    scoring: str | None
    storage: str | None
    study_name: str | None
    n_jobs: int
    backend: str
    population: bool | int
    refit: bool | str  # True, False or "auto" (archtune.tune.refit.AUTO_REFIT_SHARE)
    ensemble: bool | None
    bagging: int | None
    baselines: bool
    validation_fraction: float
    min_resources: Any  # "auto", None or rows: the first stage of successive halving (archtune.tune.halving)
    random_state: Any
    seed: int
    device: str
    verbose: int
    mlflow_uri: str | None = None
    tensorboard_dir: str | None = None
    # Where the coordinator writes the rows its workers read (archtune.tune.job.data_file).
    worker_data: str | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def from_params(cls, task: Task | str, params: Mapping[str, Any]) -> "SearchConfig":
        """Parse and validate an Auto estimator's parameters (all of `PARAMS`).

        Raises
        ------
        InvalidParameterError
            Naming the parameter, the rule and the value; an unknown parameter name too.
        """
        from sklearn.metrics import get_scorer_names

        from archtune.parameters import check_params, seed_from
        from archtune.tracking.search_tracker import check_tracking
        from archtune.tune.objectives import check_objectives, resolve_sampler
        from archtune.tune.pareto import parse_prefer
        from archtune.tune.space import resolve_space
        from archtune.tune.halving import check_min_resources
        from archtune.tune.study import PRUNERS, SAMPLERS, parse_budget
        from archtune.tune.transfer import check_transfer_space

        task = task_named(task)
        unknown = sorted(set(params) - set(PARAMS) - {"worker_data"})
        if unknown:
            raise InvalidParameterError(f"unknown search parameter {unknown[0]!r}{nearest(unknown[0], PARAMS)}")
        missing = [name for name in PARAMS if name not in params]
        if missing:
            raise InvalidParameterError(f"search parameter(s) {', '.join(missing)} missing")
        neural = task.neural_class
        seconds, trials = parse_budget(params["budget"])
        space = resolve_space(params["space"], sorted(neural().get_params()))
        check_params(neural(**space.fixed_values()))  # fixed values must be valid as given
        check_transfer_space(space)  # freeze and the fine-tuning parameters: with init_from, valid values
        check_choice("sampler", params["sampler"], ("auto", *SAMPLERS))
        objectives = check_objectives(params["objectives"])
        resolve_sampler(params["sampler"], objectives)  # a sampler that handles several objectives
        parse_prefer(params["prefer"])
        check_choice("pruner", params["pruner"], PRUNERS)
        if params["cv"] is not None:
            check_number("cv", params["cv"], 2, integer=True)
        scoring = params["scoring"]
        if scoring is not None and scoring not in get_scorer_names():
            raise InvalidParameterError(f"scoring must be a scikit-learn scorer name such as 'accuracy', "
                                        f"'roc_auc', 'neg_log_loss' or 'r2'; got scoring={scoring!r}"
                                        f"{nearest(str(scoring), get_scorer_names())}")
        check_number("n_jobs", params["n_jobs"], 1, integer=True)
        check_backend(params["backend"])
        if not isinstance(params["population"], bool):
            check_number("population", params["population"], 1, integer=True)
        check_choice("refit", params["refit"], ("auto", True, False))
        check_choice("ensemble", params["ensemble"], (True, False, None))
        check_choice("baselines", params["baselines"], (True, False))
        if params["bagging"] is not None:
            check_number("bagging", params["bagging"], 2, 20, integer=True)
        check_number("validation_fraction", params["validation_fraction"], 0.0, 1.0, low_open=True, high_open=True)
        check_min_resources(params["min_resources"])
        ensemble = quantile_ensemble(space, params["ensemble"], params["bagging"])
        for name in ("storage", "study_name"):
            if params[name] is not None and not isinstance(params[name], str):
                raise InvalidParameterError(f"{name} must be a string; got {name}={params[name]!r}")
        check_choice("device", params["device"], ("auto", "cpu", "cuda"))
        check_number("verbose", int(params["verbose"]) if isinstance(params["verbose"], bool) else params["verbose"],
                     0, integer=True)
        check_tracking(params["mlflow_uri"], params["tensorboard_dir"])
        return cls(task=task, budget=params["budget"], seconds=seconds, trials=trials,
                   space_request=params["space"], space=space, sampler=params["sampler"], pruner=params["pruner"],
                   objectives=objectives, prefer=params["prefer"], cv=params["cv"], scoring=scoring,
                   storage=params["storage"], study_name=params["study_name"], n_jobs=int(params["n_jobs"]),
                   backend=params["backend"], population=params["population"], refit=params["refit"] if params["refit"] == "auto" else bool(params["refit"]),
                   ensemble=ensemble, bagging=params["bagging"], baselines=bool(params["baselines"]),
                   validation_fraction=float(params["validation_fraction"]),
                   min_resources=params["min_resources"], random_state=params["random_state"],
                   seed=seed_from(params["random_state"]), device=params["device"], verbose=int(params["verbose"]),
                   mlflow_uri=params["mlflow_uri"], tensorboard_dir=params["tensorboard_dir"],
                   worker_data=params.get("worker_data"))

    @classmethod
    def from_estimator(cls, estimator: Any) -> "SearchConfig":
        """The configuration of a fitted or unfitted AutoNeuralClassifier / AutoNeuralRegressor."""
        from archtune.task import task_of

        return cls.from_params(task_of(estimator), estimator.get_params())

    def params(self) -> dict[str, Any]:
        """The Auto estimator's parameters this configuration was built from."""
        out = {name: getattr(self, name) for name in PARAMS if name != "space"}
        out["space"] = self.space_request
        return out

    def replace(self, **changes: Any) -> "SearchConfig":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ derived values

    @property
    def self_stopping(self) -> bool:
        """budget="auto": the search stops itself when more trials are not expected to improve
        on the validation noise (archtune.tune.stopping); ``seconds`` is then its time cap."""
        from archtune.tune.stopping import is_auto

        return is_auto(self.budget)

    @property
    def several(self) -> bool:
        """Whether the study has several objectives (score and a cost)."""
        return len(self.objectives) > 1

    @property
    def sampler_name(self) -> str:
        """The sampler created: "auto" is TPE for one objective, NSGA-II for several."""
        from archtune.tune.objectives import resolve_sampler

        return resolve_sampler(self.sampler, self.objectives)

    @property
    def prefer_rule(self) -> Any:
        from archtune.tune.pareto import parse_prefer

        return parse_prefer(self.prefer)

    @property
    def scoring_name(self) -> str:
        """The scorer trials and baselines are ranked by: ``scoring`` or the task's default."""
        return self.scoring or self.task.default_scoring

    def scorer(self) -> Any:
        from sklearn.metrics import get_scorer

        return get_scorer(self.scoring_name)

    @property
    def epoch_key(self) -> str:
        """The history column each epoch reports to the pruner: the task's validation metric,
        or the validation loss when a custom scorer ranks the trials."""
        return "val_loss" if self.scoring is not None else self.task.epoch_key

    @property
    def epoch_sign(self) -> float:
        """+1 when a higher ``epoch_key`` is better, -1 for a loss."""
        return -1.0 if self.scoring is not None else 1.0

    @property
    def study_label(self) -> str:
        return self.study_name or "archtune"

    @property
    def in_processes(self) -> bool:
        """Whether the ``n_jobs`` trials run in worker processes (not threads of this one)."""
        return self.backend != "threads"

    @property
    def ensembling(self) -> bool:
        """Whether to select an ensemble: as asked; by default (None) yes, except when several
        objectives and a prefer rule other than the score pick one small or fast network (an
        ensemble of networks would undo what the rule chose)."""
        if self.ensemble is not None:
            return bool(self.ensemble)
        return not (self.several and self.prefer_rule.kind != "score")

    @property
    def cohort_size(self) -> int:
        """Trials asked together. population=True sizes cohorts by a time budget, so that a
        short search still sees several structures (a cohort shares its leader's): 2 under
        90 s, 4 under 4 minutes, else COHORT_SIZE; with a trial budget, COHORT_SIZE."""
        if self.sampler == "grid":
            return 1  # the grid sampler assigns whole grid points; followers cannot be fixed in part
        if not isinstance(self.population, bool):
            return int(self.population)
        if not self.population:
            return 1
        if self.seconds is not None:
            return 2 if self.seconds < 90 else 4 if self.seconds < 240 else COHORT_SIZE
        return COHORT_SIZE

    @property
    def threads(self) -> int | None:
        """PyTorch threads of this process while it searches: the cores shared by the
        ``n_jobs`` threads or worker processes (None: PyTorch's own choice, one trial at a time)."""
        cores = os.cpu_count() or 1
        if self.in_processes:
            return max(1, cores // (self.n_jobs + 1))
        return max(1, cores // self.n_jobs) if self.n_jobs > 1 else None

    def requested_default_space(self) -> bool:
        """Whether the user gave no space of their own (the default, or an empty dict): a stored
        study's space is then reused as it is."""
        request = self.space_request
        return (isinstance(request, str) and request == "default") or (isinstance(request, Mapping) and not request)

    # ------------------------------------------------------------------ JSON (the workers' job)

    def to_json(self) -> dict[str, Any]:
        """A JSON form from which `from_json` rebuilds this configuration (a space with a
        fixed ``init_from`` object keeps only its origin, which `from_json` refuses by name)."""
        from archtune.tune.stored_space import space_record

        request = self.space_request
        out = {name: getattr(self, name) for name in PARAMS if name not in ("space", "random_state")}
        out.update(task=self.task.name, objectives=list(self.objectives), random_state=self.seed,
                   space=request if isinstance(request, str) else {"record": space_record(self.space)},
                   worker_data=self.worker_data)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "the search's job") -> "SearchConfig":
        """The configuration `to_json` wrote (validated again, as any parameters are).

        Raises
        ------
        InvalidParameterError
            A field is invalid, or the space fixed an ``init_from`` object (``where`` names the
            study).
        """
        from archtune.tune.stored_space import space_from_record

        params = {name: data[name] for name in PARAMS if name in data}
        params.setdefault("min_resources", "auto")  # a job published before successive halving
        space = data.get("space", "default")
        params["space"] = space_from_record(space["record"], where) if isinstance(space, Mapping) else space
        params["objectives"] = tuple(data.get("objectives", ("score",)))
        params["worker_data"] = data.get("worker_data")
        return cls.from_params(data["task"], params)


def check_backend(backend: Any) -> str:
    """``backend`` as given, checked: "threads", "processes", "ray" or "ray:ADDRESS"."""
    if isinstance(backend, str) and (backend in BACKENDS or (backend.startswith("ray:") and len(backend) > 4)):
        return backend
    raise InvalidParameterError(f"backend must be 'threads', 'processes', 'ray' or 'ray:ADDRESS' (an existing Ray "
                                f"cluster, e.g. 'ray:auto'); got backend={backend!r}")



def quantile_ensemble(space: Any, ensemble: Any, bagging: Any) -> Any:
    """The ``ensemble`` of a search: as asked, except that a space that fixes
    ``loss="quantile"`` ships its best network (or refit) without the ensemble step, whose
    selection averages point predictions of networks and baselines (archtune.ensemble.build):
    the quantiles and their CQR intervals would be lost.

    Raises
    ------
    InvalidParameterError
        ``ensemble=True`` or ``bagging`` with ``loss="quantile"`` fixed.
    """
    if space.fixed_values().get("loss") != "quantile":
        return ensemble
    for name, value in (("ensemble", ensemble), ("bagging", bagging)):
        if value not in (None, False):
            raise InvalidParameterError(f"{name}={value!r} is not supported with loss='quantile': an ensemble or a bag "
                                        "averages point predictions, and the quantiles would be lost; leave "
                                        f"{name} at its default (the best quantile network predicts)")
    return False


__all__ = ["BACKENDS", "COHORT_SIZE", "PARAMS", "SearchConfig", "check_backend"]
