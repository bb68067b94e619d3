"""Every kind of path archtune writes (or a user might give), in every command that takes a
model (issue 29, kind 3): each works, or answers in one line what the path is and which
command takes it; never a traceback, never "unknown estimator"."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

import archtune
from archtune.cli import cli
from tests.conftest import load_shared

SMALL = {"max_epochs": 2, "hidden_layers": 1, "units": 16, "numeric_embedding": None, "random_state": 0, "verbose": 0}

# kind -> the commands that work with it (the others refuse it in one line).
WORKS = {
    "network": {"predict", "info", "export", "report", "prune", "distill"},
    "fit run": {"predict", "info", "export", "report", "prune", "distill"},
    "search run": {"predict", "info", "report", "prune", "distill"},  # export: only with --best-network
    "ensemble": {"predict", "info", "distill"},
    "ensemble member": {"predict", "info", "export", "report", "prune", "distill"},
    "bag member": {"predict", "info", "export", "report", "prune", "distill"},
    "pruned": {"predict", "info", "export", "report", "prune", "distill"},
    "distilled": {"predict", "info", "export", "report", "prune", "distill"},
    "pretraining bundle": {"info"},
    "exported ONNX": set(),
    "exported TorchScript": set(),
    "stopped search": set(),
    "empty folder": set(),
    "foreign folder": set(),
    "missing": set(),
}
# What each refusal must say the path is.
SAYS = {"search run": "predicts with its ensemble", "ensemble": "an ensemble bundle",
        "pretraining bundle": "a pretraining bundle", "exported ONNX": "an ONNX model file",
        "exported TorchScript": "a TorchScript model file", "stopped search": "no saved model",
        "empty folder": "an empty folder", "foreign folder": "did not write", "missing": "no such"}
COMMANDS = ("predict", "info", "export", "report", "prune", "distill")


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    from archtune.auto import AutoNeuralClassifier
    from archtune.ensemble.bagging import bag
    from archtune.bundles.ensemble import save_ensemble
    from archtune.ensemble.gbm import LightGBMTableClassifier
    from archtune.ensemble.model import Member, make_ensemble
    from archtune.bundles.pretrained import save_pretrained
    from sklearn.metrics import get_scorer

    root = tmp_path_factory.mktemp("paths")
    X, y = load_shared("magic.tsv.gz", n=300, seed=7)
    data = root / "magic.csv"
    X.assign(target=y).to_csv(data, index=False)
    network = archtune.NeuralClassifier(**SMALL).fit(X, y)
    gbm = LightGBMTableClassifier(kinds={c: "numeric" for c in X.columns}).fit(X, y)
    ensemble = make_ensemble("classification", [Member("network #0 (mlp)", network, "network", 0.8, 0),
                                                Member("lightgbm", gbm, "lightgbm", 0.8)], np.array([0.5, 0.5]),
                             np.unique(y), columns=list(X.columns))
    made = {"network": archtune.save(network, root / "network")}
    fit = CliRunner().invoke(cli, ["fit", str(data), "--target", "target", "--set", "max_epochs=2", "--set",
                                   "units=16", "-q", "--no-report", "--out", str(root / "fit-run")])
    assert fit.exit_code == 0, fit.output
    made["fit run"] = root / "fit-run"
    search = AutoNeuralClassifier()  # a search's fitted state, built by hand: its ensemble predicts
    search.best_estimator_, search.final_estimator_ = network, ensemble
    made["search run"] = archtune.save(search, root / "search-run")
    made["ensemble"] = save_ensemble(ensemble, root / "ensemble")
    made["ensemble member"] = root / "ensemble" / "member-0"
    bagged = bag(lambda p: archtune.NeuralClassifier(**{**SMALL, **p}), {}, X, y.to_numpy(), 2, "classification",
                 get_scorer("accuracy"), seed=0, columns=list(X.columns))
    archtune.save(bagged, root / "bag")
    made["bag member"] = root / "bag" / "member-1"
    pruned, _ = archtune.prune(network, X, y, step=0.5, max_score_drop=1.0, max_rounds=1, fine_tune_epochs=1,
                               random_state=0)
    made["pruned"] = archtune.save(pruned, root / "pruned")
    made["distilled"] = archtune.save(archtune.distill(ensemble, X, y, archtune.NeuralClassifier(**SMALL),
                                                       random_state=0), root / "distilled")
    made["pretraining bundle"] = save_pretrained(archtune.pretrain(X, pretrain_epochs=1, units=16, hidden_layers=1,
                                                                   random_state=0), root / "pretrained")
    made["exported ONNX"] = archtune.export(network, root / "model.onnx").path
    made["exported TorchScript"] = archtune.export(network, root / "model.pt", format="torchscript").path
    stopped = root / "stopped"
    stopped.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{stopped / 'study.db'}", study_name="archtune")
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    made["stopped search"] = stopped
    (root / "empty").mkdir()
    made["empty folder"] = root / "empty"
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("not a model")
    made["foreign folder"] = root / "foreign"
    made["missing"] = root / "nowhere"
    return made, data, root


def _run(command, path, data, out):
    args = {
        "predict": ["predict", str(path), str(data)],
        "info": ["info", str(path)],
        "export": ["export", str(path), "--out", str(out / "exported.onnx")],
        "report": ["report", str(path), "-o", str(out / "report.html")],
        "prune": ["prune", str(path), str(data), "--target", "target", "--max-drop", "1", "--step", "0.5",
                  "--fine-tune-epochs", "1", "--out", str(out / "pruned")],
        "distill": ["distill", str(path), str(data), "--target", "target", "--student", "units=16,max_epochs=2",
                    "-q", "--no-report", "--out", str(out / "student")],
    }[command]
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", list(WORKS))
def test_each_command_works_or_says_what_the_path_is(paths, kind, command, tmp_path):
    made, data, _ = paths
    result = _run(command, made[kind], data, tmp_path)
    assert "Traceback" not in result.output and "unknown estimator" not in result.output
    if command in WORKS[kind]:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("archtune: error: ")]
    assert len(errors) == 1, result.output
    assert SAYS[kind] in errors[0] and str(made[kind]) in errors[0], errors[0]
    assert "takes" in errors[0] or "--best-network" in errors[0]


def test_python_load_gives_a_pretraining_bundle_back_and_names_the_rest(paths):
    made, _, _ = paths
    pretrained = archtune.load(made["pretraining bundle"])
    assert type(pretrained).__name__ == "Pretrained"
    for kind in ("exported ONNX", "stopped search", "empty folder", "foreign folder", "missing"):
        with pytest.raises(archtune.BundleError, match=SAYS[kind]):
            archtune.load(made[kind])
