"""The seams of the code: one import direction, one preparation path, one training core, the
registry's families, the search space's overrides, and process-wide settings restored."""

from __future__ import annotations

import ast
import threading
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

import archtune
from archtune import NeuralClassifier
from archtune.fitting import prepare
from archtune.models import get_family, list_models
from archtune.train import Callback

PACKAGE = Path(archtune.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name:
        if name in modules:
            return name
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The archtune modules ``module`` imports anywhere: inside functions too, and under
    ``if TYPE_CHECKING:`` too (an import for annotations only still ties the two modules: it
    moves with them, and a cycle through it is a cycle a reader follows). Each name of a
    ``from ... import a, b`` counts: ``b`` may be a module of its own."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" for a in node.names]  # the name if a module, else its base
        else:
            continue
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved and resolved != module:
                found.add(resolved)
    return found


def _import_graph() -> dict[str, set[str]]:
    """Module -> archtune modules it imports anywhere: inside functions and under
    ``if TYPE_CHECKING:`` included (`_imports`)."""
    modules = _modules()
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles_counting_imports_inside_functions_and_for_type_checking():
    graph = _import_graph()
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100  # the walk found the package
    assert _cycles(graph) == []


def test_the_import_graph_counts_imports_for_type_checking_and_every_imported_module(tmp_path):
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "a.py"
    source.write_text("from typing import TYPE_CHECKING\nfrom pkg import b, c\n"
                      "if TYPE_CHECKING:\n    from pkg.d import Thing\n")
    modules = {name: tmp_path / "pkg" / f"{name[4:]}.py" for name in ("pkg.a", "pkg.b", "pkg.c", "pkg.d")}
    assert _imports("pkg.a", source, modules) == {"pkg.b", "pkg.c", "pkg.d"}


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Private names of other objects that have no public equivalent, each with its reason.
ALLOWED_PRIVATE = {
    ("tune/tuner.py", "_trial_id"): "Optuna's heartbeat API takes the trial id, which Trial exposes only so",
}


def _private_accesses() -> list[tuple[str, int, str]]:
    """``x._name`` where x is not self/cls, ``from archtune... import _name`` and
    ``getattr(x, "_name")``, across the package."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        where = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                        and node.value.id in ("self", "cls")):
                name = node.attr
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("archtune"):
                name = next((a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")),
                            None)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "hasattr", "setattr", "delattr") and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                name = node.args[1].value
            if name and name.startswith("_") and not name.startswith("__") and (where, name) not in ALLOWED_PRIVATE:
                found.append((where, node.lineno, name))
    return found


def test_no_module_reaches_into_another_objects_private_members():
    assert _private_accesses() == []


# --------------------------------------------------------------------------- families


def _data_for(family: str):
    """A small input each family reads, and the estimator parameters for it."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64)
    table = pd.DataFrame({"a": rng.normal(size=64) + y, "b": rng.normal(size=64), "c": rng.choice(["u", "v"], 64)})
    if family == "cnn":
        return rng.random((64, 1, 8, 8)).astype("float32"), y, {"conv_blocks": 1, "filters": 4}
    if family == "sequence":
        return rng.normal(size=(64, 6, 2)).astype("float32"), y, {"sequence": "gru", "sequence_units": 8}
    if family == "wide_deep":
        return table, y, {"inputs": {"wide": ["a"]}}
    if family == "layers":
        return table, y, {"layers": [{"type": "Dense", "units": 8, "activation": "relu"}]}
    return table, y, {}


@pytest.mark.parametrize("family", list_models())
def test_every_family_builds_trains_a_step_saves_and_loads(family, tmp_path):
    X, y, params = _data_for(family)
    dense = {} if family == "layers" else {"hidden_layers": 1, "units": 8}
    # A constant rate: coslog, the default, starts at 0, and one epoch of one step would not move.
    model = NeuralClassifier(arch=family, max_epochs=1, batch_size=64, lr_schedule="constant", random_state=0,
                             **dense, **params)
    prepared = prepare(model, X, y)
    network = prepared.build_network()
    before = [p.detach().clone() for p in network.parameters()]
    loss = prepared.task.loss_fn()(network(prepared.X_train), prepared.y_train)
    loss.backward()
    assert all(p.grad is not None for p in network.parameters() if p.requires_grad), family
    model.fit(X, y)
    assert len(model.history_) == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.module_.parameters())), "one step moved nothing"
    archtune.save(model, tmp_path / family)
    again = archtune.load(tmp_path / family)
    assert np.array_equal(again.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("family", list_models())
def test_stacking_is_decided_by_the_family_registry(family):
    from archtune.population import can_stack

    X, y, params = _data_for(family)
    dense = {} if family == "layers" else {"hidden_layers": 1, "units": 8}
    prepared = prepare(NeuralClassifier(arch=family, **dense, **params), X, y)
    assert can_stack(prepared) == get_family(family).stackable
    assert get_family(family).stackable == (family in ("mlp", "resnet", "tabm"))


def test_prepare_changes_nothing_on_the_estimator():
    X, y, _ = _data_for("mlp")
    model = NeuralClassifier(random_state=0)
    before = dict(vars(model))
    prepare(model, X, y)
    assert vars(model) == before


def test_a_parameter_the_family_does_not_read_is_a_named_warning():
    X, y, _ = _data_for("mlp")
    with pytest.warns(UserWarning, match=r"conv_blocks=3 is ignored: arch='mlp' does not read it"):
        NeuralClassifier(conv_blocks=3, max_epochs=1).fit(X, y)
    with pytest.warns(UserWarning, match=r"hidden_layers=4 is ignored: arch='layers'"):
        NeuralClassifier(arch="layers", hidden_layers=4, max_epochs=1,
                         layers=[{"type": "Dense", "units": 4, "activation": "relu"}]).fit(X, y)
    images, labels, params = _data_for("cnn")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        NeuralClassifier(arch="cnn", max_epochs=1, **params).fit(images, labels)  # cnn reads conv_blocks


# --------------------------------------------------------------------------- one training core


class _Counts(Callback):
    def __init__(self):
        self.batches, self.epochs, self.states = 0, 0, set()

    def on_train_begin(self, state):
        self.states.add(id(state))

    def on_batch_end(self, state, step):
        self.batches += 1
        assert state.module is not None

    def on_epoch_end(self, state, logs):
        self.epochs += 1
        assert state.epoch == logs["epoch"] and state.config.max_epochs == 2


def test_callbacks_see_one_state_per_member_and_batch_ends_in_a_cohort():
    from archtune.population import fit_population

    X, y, _ = _data_for("mlp")
    models = [NeuralClassifier(units=8, max_epochs=2, early_stopping=False, batch_size=16, learning_rate=lr,
                               random_state=0) for lr in (1e-3, 1e-2)]
    counters = [_Counts(), _Counts()]
    assert fit_population(models, X, y, callbacks=[[c] for c in counters]) == [None, None]
    steps = -(-len(X) // 16) * 2
    assert [c.batches for c in counters] == [steps, steps] and [c.epochs for c in counters] == [2, 2]
    assert len(counters[0].states | counters[1].states) == 2  # each member its own state


def test_a_progress_bar_works_in_a_cohort(capsys):
    from archtune.population import fit_population

    X, y, _ = _data_for("mlp")
    models = [NeuralClassifier(units=8, max_epochs=2, verbose=1, random_state=0, learning_rate=lr)
              for lr in (1e-3, 3e-3)]
    assert fit_population(models, X, y) == [None, None]
    assert "NeuralClassifier" in capsys.readouterr().err


# --------------------------------------------------------------------------- the search space


def test_overrides_are_explicit_objects_and_a_tuple_can_be_fixed():
    from archtune.tune.space import Choice, Fixed, Range, resolve_space

    names = sorted(NeuralClassifier().get_params())
    space = resolve_space({"units": Range(32, 64), "activation": Choice("relu", "gelu"),
                           "hidden_sizes": Fixed((32, 16)), "max_epochs": 3}, names)
    params = space.sample(optuna.trial.FixedTrial({"arch": "mlp", "numeric_embedding": None, "hidden_layers": 2,
                                                   "units": 40, "activation": "gelu", "dropout": 0.1,
                                                   "weight_decay": 1e-4, "learning_rate": 1e-3,
                                                   "lr_schedule": "constant"}))
    assert params["hidden_sizes"] == (32, 16) and params["activation"] == "gelu" and params["max_epochs"] == 3
    units = next(d for d in space.dimensions if d.name == "units")
    assert (units.low, units.high, units.log, units.kind) == (32, 64, True, "int")
    with pytest.raises(archtune.InvalidParameterError, match=r"Fixed\(\(256, 128, 64\)\)"):
        resolve_space({"hidden_sizes": (256, 128, 64)}, names)


def test_the_description_keeps_the_conditions():
    from archtune.tune.space import SearchSpace

    described = SearchSpace.classic().describe()
    assert "when activation in" in described["norm"] and "'selu'" not in described["norm"].split("when")[1]
    assert "when optimizer in {'nesterov'}" in described["momentum"]
    assert described["learning_rate"].count("when optimizer in") == 2  # one range per optimiser family
    default = SearchSpace.default().describe()
    assert default["frequency_init_scale"].endswith("when numeric_embedding in {'periodic'}")
    assert default["n_bins"].endswith("when numeric_embedding in {'piecewise_linear'}")
    assert default["hidden_layers"].count("when arch in") == 2 and "'tabm'" in default["k"]


def test_trials_store_their_configuration_and_the_refit_reads_it():
    from archtune.auto import AutoNeuralRegressor
    from archtune.tune.space import Fixed

    X, y = _data_for("mlp")[0][["a", "b"]], np.random.default_rng(1).normal(size=64)
    model = AutoNeuralRegressor(budget=3, space={"hidden_sizes": Fixed((8, 4)), "max_epochs": 2}, baselines=False,
                                random_state=0).fit(X, y)
    for trial in model.study_.trials:
        config = trial.user_attrs["config"]
        assert config["hidden_sizes"] == [8, 4] and config["max_epochs"] == 2
    assert model.best_params_["hidden_sizes"] == (8, 4)
    assert model.best_estimator_.model_config_.hidden_sizes == (8, 4)


# --------------------------------------------------------------------------- process-wide settings


def test_scoped_settings_are_restored_after_overlapping_jobs():
    from archtune.train.threads import scoped

    value = {"v": 4}
    get, put = (lambda: value["v"]), (lambda v: value.__setitem__("v", v))
    with scoped("x", get, put, 1):
        assert value["v"] == 1
        with scoped("x", get, put, 2):  # an overlapping job keeps the first job's setting
            assert value["v"] == 1
        assert value["v"] == 1
    assert value["v"] == 4
    errors = []

    def job():
        try:
            with scoped("x", get, put, 1):
                pass
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and value["v"] == 4


def test_a_search_with_n_jobs_restores_threads_and_optuna_logging():
    from archtune.auto import AutoNeuralClassifier

    X, y, _ = _data_for("mlp")
    threads, verbosity = torch.get_num_threads(), optuna.logging.get_verbosity()
    AutoNeuralClassifier(budget=2, n_jobs=2, space={"max_epochs": 1, "units": (8, 16)}, baselines=False,
                         random_state=0).fit(X, y)
    assert torch.get_num_threads() == threads and optuna.logging.get_verbosity() == verbosity


@pytest.mark.parametrize("column", ["text", "image"])
def test_the_command_line_search_gets_the_encoders_of_text_and_image_path_columns(column, tmp_path):
    """`archtune tune` hands the search the user's overrides (not a built space), so the search
    fits the space to the table: a text column adds the sequence encoder's dimensions, a
    column of image paths the conv encoder's."""
    from click.testing import CliRunner
    from PIL import Image

    from archtune.cli import cli

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    if column == "text":
        words = np.array(["good", "bad", "fine", "dull", "great", "awful", "plot", "cast", "film", "scene"])
        values = [" ".join(rng.choice(words, 6)) + f" number {i}" for i in range(40)]
    else:
        values = []
        for i in range(40):
            path = tmp_path / f"img{i}.png"
            Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(path)
            values.append(path.name)
    data = tmp_path / "table.csv"
    pd.DataFrame({"x": rng.normal(size=40), column: values, "label": y}).to_csv(data, index=False)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["tune", str(data), "--target", "label", "--trials", "2", "--set", "max_epochs=1",
                                      "--space", "units=8..16", "--no-baselines", "-q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="archtune", storage=f"sqlite:///{out / 'study.db'}")
    searched = {name for trial in study.trials for name in trial.params}
    expected = {"sequence", "embedding_dim", "sequence_units"} if column == "text" else {"conv_blocks", "filters"}
    assert expected <= searched, searched
