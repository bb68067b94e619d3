"""Multi-label classification (issue 32, item 3): a 2-D 0/1 target or a list of label sets
trains one sigmoid per label (archtune.data.multilabel).

The cells: the estimator (shapes, the 0.5 threshold, label sets, scikit-learn's scorers),
the loss and metric against their definitions, every artefact of tests/test_contract.py
(network, pruned, fine-tuned and distilled work; bag and ensemble are refused by name), the
entry points (Python save/load and ONNX; the CLI's fit, tune and predict), a tiny search,
and the errors a bad target gets. The data are scikit-learn's
``make_multilabel_classification`` (no shared table is multi-label); the networks train two
epochs on 300 rows.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import accuracy_score, get_scorer, roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

import archtune
from archtune import NeuralClassifier
from archtune.cli import cli
from archtune.errors import DataError, InvalidParameterError
from archtune.train.losses import make_loss, make_member_loss, make_member_metric, make_metric

# One torch thread: the oracle that fits the same rows twice compares the networks' last bits.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"max_epochs": 2, "hidden_layers": 1, "units": 16, "numeric_embedding": None, "random_state": 0,
         "verbose": 0}
NAMES = ("rock", "jazz", "pop", "folk")


@pytest.fixture(scope="module")
def data():
    """(X, Y): 300 rows of 8 features and 4 labels, Y the 0/1 indicator matrix."""
    X, Y = make_multilabel_classification(n_samples=300, n_features=8, n_classes=4, random_state=0)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]), Y


@pytest.fixture(scope="module")
def network(data):
    X, Y = data
    return NeuralClassifier(**{**SMALL, "max_epochs": 10, "batch_size": 32, "learning_rate": 1e-2}).fit(X, Y)


def _sets(Y):
    return [{NAMES[j] for j in np.flatnonzero(row)} for row in Y]


# --------------------------------------------------------------------------- the estimator


def test_predict_is_the_probabilities_above_one_half(network, data):
    X, Y = data
    proba, predicted = network.predict_proba(X), network.predict(X)
    assert proba.shape == predicted.shape == Y.shape
    assert predicted.dtype == np.int64 and set(np.unique(predicted)) <= {0, 1}
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    assert ((proba > 0) & (proba < 1)).all()
    np.testing.assert_array_equal(network.classes_, np.arange(4))
    # score is scikit-learn's subset accuracy, and the history's metric is the same quantity.
    assert network.score(X, Y) == pytest.approx(accuracy_score(Y, predicted))
    assert "val_accuracy" in network.history_.columns and network.history_["val_accuracy"].between(0, 1).all()


def test_the_network_learns_the_labels(network, data):
    X, Y = data
    auc = np.mean([roc_auc_score(Y[:, j], network.predict_proba(X)[:, j]) for j in range(Y.shape[1])])
    assert auc > 0.75  # ten epochs of 10 steps; a constant prediction has 0.5


def test_label_sets_train_with_their_names_as_classes(data):
    X, Y = data
    sets = _sets(Y)
    model = NeuralClassifier(**SMALL).fit(X, sets)
    assert list(model.classes_) == sorted(NAMES)
    binarized = MultiLabelBinarizer(classes=model.classes_).fit_transform(sets)
    assert model.score(X, sets) == pytest.approx(accuracy_score(binarized, model.predict(X)))
    # The same rows as a matrix in the classes' order train the same network (same seed).
    as_matrix = NeuralClassifier(**SMALL).fit(X, binarized)
    np.testing.assert_allclose(as_matrix.predict_proba(X), model.predict_proba(X), atol=1e-6)
    # Later targets may be label sets or the matrix.
    assert model.score(X, binarized) == model.score(X, sets)


def test_scikit_learn_multilabel_scorers_read_the_outputs(network, data):
    X, Y = data
    proba = network.predict_proba(X)
    macro = np.mean([roc_auc_score(Y[:, j], proba[:, j]) for j in range(Y.shape[1])])
    assert get_scorer("roc_auc")(network, X, Y) == pytest.approx(macro)
    f1 = get_scorer("f1_samples")(network, X, Y)
    assert 0.0 < f1 <= 1.0


def test_a_tabm_network_and_sample_weights_train(data):
    X, Y = data
    weights = np.where(np.arange(len(Y)) % 2 == 0, 2.0, 1.0)
    model = NeuralClassifier(**{**SMALL, "arch": "tabm"}).fit(X, Y, sample_weight=weights)
    assert model.predict_proba(X).shape == Y.shape


def test_a_cohort_trains_the_networks_that_fitting_alone_trains(data, monkeypatch):
    """Cohorts (archtune.population) stack multi-label networks: the member loss is the binary
    one, per label; each member ends where its fit alone ends."""
    import archtune.population as population
    from archtune.population import fit_population

    def not_stacked(*args, **kwargs):
        raise AssertionError("the cohort fell back to one network at a time")

    monkeypatch.setattr(population, "_one_at_a_time", not_stacked)

    X, Y = data
    configs = [dict(units=16, learning_rate=1e-3), dict(units=20, learning_rate=3e-3)]
    common = {**SMALL, "max_epochs": 3, "dropout": 0.0}
    alone = [NeuralClassifier(**{**common, **c}).fit(X, Y) for c in configs]
    together = [NeuralClassifier(**{**common, **c}) for c in configs]
    assert fit_population(together, X, Y) == [None, None]
    for a, b in zip(alone, together):
        assert list(b.history_["val_loss"]) == pytest.approx(list(a.history_["val_loss"]), rel=1e-4)
        np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-4)


# --------------------------------------------------------------------------- loss and metric


def test_the_loss_is_the_mean_binary_cross_entropy_of_every_label():
    torch.manual_seed(0)
    logits, y = torch.randn(16, 3), (torch.rand(16, 3) > 0.5).float()
    weight = torch.rand(16) + 0.5
    p = torch.sigmoid(logits)
    per_value = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    loss = make_loss("multilabel", "cross_entropy")
    assert float(loss(logits, y)) == pytest.approx(float(per_value.mean()), rel=1e-5)
    weighted = float((weight[:, None] * per_value).sum() / (weight.sum() * 3))
    assert float(loss(logits, y, weight)) == pytest.approx(weighted, rel=1e-5)
    # A cohort's member loss is each member's own loss.
    stacked = torch.stack([logits, logits * 2])
    members = make_member_loss("multilabel", "cross_entropy")(stacked, y)
    assert members.shape == (2,)
    assert float(members[1]) == pytest.approx(float(loss(logits * 2, y)), rel=1e-5)


def test_tabm_members_average_each_labels_probability():
    from archtune.models.network import ensemble_mean

    torch.manual_seed(0)
    out = torch.randn(5, 4, 3, dtype=torch.float64)  # [rows, members, labels]
    np.testing.assert_allclose(torch.sigmoid(ensemble_mean(out, "multilabel")).numpy(),
                               torch.sigmoid(out).mean(dim=1).numpy(), atol=1e-12)


def test_the_metric_is_the_subset_accuracy():
    logits = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0], [2.0, -3.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    expected = accuracy_score(y.numpy(), (logits > 0).int().numpy())
    assert make_metric("multilabel")(logits, y) == pytest.approx(expected) == pytest.approx(0.5)
    members = make_member_metric("multilabel")(torch.stack([logits, -logits]), y)
    assert members.tolist() == pytest.approx([0.5, accuracy_score(y.numpy(), (-logits > 0).int().numpy())])


# --------------------------------------------------------------------------- artefacts (as tests/test_contract.py)


def test_save_and_load_predicts_what_was_saved(network, data, tmp_path):
    X, Y = data
    archtune.save(network, tmp_path / "m")
    loaded = archtune.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), network.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), network.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(loaded.classes_, network.classes_)


def test_label_sets_survive_a_bundle(data, tmp_path):
    X, Y = data
    model = NeuralClassifier(**SMALL).fit(X, _sets(Y))
    archtune.save(model, tmp_path / "m")
    loaded = archtune.load(tmp_path / "m")
    assert list(loaded.classes_) == list(model.classes_)
    assert loaded.score(X, _sets(Y)) == model.score(X, _sets(Y))


def test_pruned_and_fine_tuned_networks_stay_multilabel(saved, data):
    X, _ = data
    tuned = saved["fine-tuned"][0]
    assert "copied" in tuned.init_report_
    for kind in ("pruned", "fine-tuned"):
        model, directory, _ = saved[kind]
        np.testing.assert_array_equal(model.predict(X), (model.predict_proba(X) > 0.5).astype(int))
        np.testing.assert_allclose(archtune.load(directory).predict_proba(X), model.predict_proba(X), atol=1e-9)


@pytest.fixture(scope="module")
def saved(network, data, tmp_path_factory):
    """The artefacts of tests/test_contract.py a multi-label network has, saved: kind -> (model,
    directory, the test rows' CSV)."""
    X, Y = data
    pruned, _ = archtune.prune(network, X, Y, step=0.5, max_score_drop=1.0, max_rounds=1, fine_tune_epochs=1,
                               random_state=0)
    source = tmp_path_factory.mktemp("source")
    archtune.save(network, source)
    tuned = NeuralClassifier(**SMALL, init_from=str(source)).fit(X, Y)
    built = {}
    distilled = archtune.distill(network, X, Y, NeuralClassifier(**SMALL), random_state=0)
    for kind, model in (("network", network), ("pruned", pruned), ("fine-tuned", tuned), ("distilled", distilled)):
        directory = tmp_path_factory.mktemp(kind)
        archtune.save(model, directory)
        rows = directory.parent / f"{directory.name}.csv"
        X.iloc[:50].to_csv(rows, index=False)
        built[kind] = (model, directory, rows)
    return built


@pytest.mark.parametrize("kind", ["network", "pruned", "fine-tuned", "distilled"])
def test_cli_predict_info_and_export_of_every_artefact(saved, data, kind, tmp_path):
    X, _ = data
    model, directory, rows = saved[kind]
    runner = CliRunner()
    result = runner.invoke(cli, ["predict", str(directory), str(rows)])
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(io.StringIO(result.stdout))
    np.testing.assert_array_equal(printed[[f"prediction_{j}" for j in range(4)]].to_numpy(), model.predict(X[:50]))
    np.testing.assert_allclose(printed[[f"proba_{j}" for j in range(4)]].to_numpy(), model.predict_proba(X[:50]))
    info = runner.invoke(cli, ["info", str(directory)])
    assert info.exit_code == 0 and "NeuralClassifier" in info.output, info.output
    page = tmp_path / "report.html"
    report = runner.invoke(cli, ["report", str(directory), "-o", str(page)])
    assert report.exit_code == 0 and page.stat().st_size > 1000, report.output
    if kind == "network":
        return  # its ONNX file is compared with predict_proba below
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'archtune[onnx]'")
    target = tmp_path / "model.onnx"
    result = runner.invoke(cli, ["export", str(directory), "--out", str(target)])
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, {c: X[c].to_numpy("float64")[:50] for c in X.columns})))
    np.testing.assert_array_equal(out["label"], model.predict(X[:50]))


def test_bag_and_ensemble_are_refused_by_name(network, data):
    from sklearn.metrics import get_scorer

    from archtune.ensemble.bagging import bag
    from archtune.ensemble.model import Member, make_ensemble

    X, Y = data
    with pytest.raises(InvalidParameterError, match="bagging is not supported for multi-label"):
        bag(lambda p: NeuralClassifier(**SMALL, **p), {}, X, Y, 2, "classification", get_scorer("accuracy"))
    with pytest.raises(InvalidParameterError, match="an ensemble is not supported for multi-label"):
        make_ensemble("classification", [Member("network #0 (mlp)", network, "network", 0.5, 0)], np.ones(1),
                      network.classes_)


def test_distillation_with_alpha_1_is_the_ordinary_fit(network, data):
    X, Y = data
    ordinary = NeuralClassifier(**SMALL).fit(X, Y)
    student = archtune.distill(network, X, Y, NeuralClassifier(**SMALL), alpha=1.0, random_state=0)
    np.testing.assert_array_equal(student.predict_proba(X), ordinary.predict_proba(X))


def test_the_soft_loss_is_each_labels_bernoulli_kl():
    from archtune.shrink.distill_loss import DistillationTask, targets

    torch.manual_seed(0)
    student, teacher, hard = torch.randn(8, 3), torch.randn(8, 3), (torch.rand(8, 3) > 0.5).float()
    task = DistillationTask("multilabel", 3, "cross_entropy", "accuracy", temperature=2.0, alpha=0.0)
    p, q = torch.sigmoid(teacher / 2), torch.sigmoid(student / 2)
    kl = p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))
    value = task.loss_fn()(student, targets(hard, torch.ones(8), teacher))
    assert float(value) == pytest.approx(float(4 * kl.mean()), rel=1e-5)


def test_a_scikit_learn_multioutput_teacher_teaches_and_mismatches_are_named(network, data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    X, Y = data
    teacher = MultiOutputClassifier(LogisticRegression(max_iter=500)).fit(X, Y)
    student = archtune.distill(teacher, X, Y, NeuralClassifier(**SMALL), alpha=0.0, random_state=0)
    assert student.predict(X).shape == Y.shape
    with pytest.raises(InvalidParameterError, match="is multi-label but y is not"):
        archtune.distill(network, X, Y[:, 0], NeuralClassifier(**SMALL))


def test_onnx_equals_predict_proba(network, data, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'archtune[onnx]'")
    X, _ = data
    exported = archtune.export(network, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, {c: X[c].to_numpy("float64") for c in X.columns})))
    assert out["probabilities"].shape == out["label"].shape == (len(X), 4)
    assert np.abs(out["probabilities"] - network.predict_proba(X)).max() <= 1e-5
    np.testing.assert_array_equal(out["label"], network.predict(X))


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def table_file(data, tmp_path_factory):
    X, Y = data
    frame = X.copy()
    for j, name in enumerate(NAMES):
        frame[name] = Y[:, j]
    path = tmp_path_factory.mktemp("table") / "songs.csv"
    frame.to_csv(path, index=False)
    return path


def test_cli_fit_and_predict_name_the_label_columns(table_file, data, tmp_path):
    X, Y = data
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(cli, ["fit", str(table_file), "--target", ",".join(NAMES), "--set", "max_epochs=2",
                                 "--set", "units=16", "--set", "random_state=0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "classification" in result.output and "hamming_loss" in result.output
    result = runner.invoke(cli, ["predict", str(out), str(table_file)])
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(io.StringIO(result.stdout))
    loaded = archtune.load(out)
    np.testing.assert_array_equal(printed[[f"prediction_{n}" for n in NAMES]].to_numpy(), loaded.predict(X))
    np.testing.assert_allclose(printed[[f"proba_{n}" for n in NAMES]].to_numpy(), loaded.predict_proba(X))
    info = runner.invoke(cli, ["info", str(out)])
    assert info.exit_code == 0 and f"labels:       {', '.join(NAMES)} (multi-label" in info.output, info.output
    report = runner.invoke(cli, ["report", str(out), "-o", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output
    # Prediction sets are for one class per row: refused by name in the CLI and in Python.
    refused = runner.invoke(cli, ["predict", str(out), str(table_file), "--set", "0.9"])
    assert refused.exit_code != 0 and "holds a multi-label classifier; prediction sets are for one class" \
        in refused.output, refused.output
    with pytest.raises(InvalidParameterError, match="is multi-label: prediction sets are for one class per row"):
        loaded.predict_set(X[:3])


def test_cli_tune_searches_a_multilabel_target_and_predicts(table_file, data, tmp_path):
    X, _ = data
    runner = CliRunner()
    out = tmp_path / "search"
    result = runner.invoke(cli, ["tune", str(table_file), "--target", ",".join(NAMES), "--trials", "2",
                                 "--set", "max_epochs=2", "--set", "units=16", "--seed", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    board = pd.read_csv(out / "leaderboard.csv")  # the portfolio, left out by name
    assert board.loc[board["model"] == "lightgbm", "note"].str.contains("does not fit multi-label").all()
    result = runner.invoke(cli, ["predict", str(out), str(table_file)])
    assert result.exit_code == 0, result.output
    printed = pd.read_csv(io.StringIO(result.stdout))
    np.testing.assert_array_equal(printed[[f"prediction_{n}" for n in NAMES]].to_numpy(), archtune.load(out).predict(X))


def test_cli_refuses_a_several_column_target_that_is_not_0_1(table_file, tmp_path):
    result = CliRunner().invoke(cli, ["fit", str(table_file), "--target", "f0,f1", "--task", "classification",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and "target column 'f0'" in result.output and "is not 0 or 1" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- the search


@pytest.fixture(scope="module")
def search(data):
    X, Y = data
    return archtune.AutoNeuralClassifier(budget=3, space={"max_epochs": 2, "units": [16], "hidden_layers": [1]},
                                         random_state=0).fit(X, Y)


def test_a_search_trains_networks_and_multilabel_baselines(search, data):
    X, Y = data
    board = search.leaderboard_
    scored = set(board.loc[board["val_score"].notna(), "model"])
    assert {"random_forest", "k_nearest_neighbors", "logistic_regression"} <= scored
    skipped = board[board["model"].str.startswith("lightgbm")]
    assert len(skipped) and skipped["note"].str.contains("does not fit multi-label").all()
    assert search.predict(X).shape == Y.shape
    np.testing.assert_array_equal(search.predict(X), (search.predict_proba(X) > 0.5).astype(int))
    assert search.ensemble_ is None and search.bag_ is None


def test_a_search_saves_and_reports(search, data, tmp_path):
    X, _ = data
    archtune.save(search, tmp_path / "s")
    np.testing.assert_allclose(archtune.load(tmp_path / "s").predict_proba(X), search.predict_proba(X),
                               atol=1e-9)
    from archtune.report.build import write_report

    assert write_report(search, tmp_path / "r.html").stat().st_size > 1000


def test_a_search_on_label_sets_searches_their_matrix(data):
    X, Y = data
    sets = _sets(Y)
    found = archtune.AutoNeuralClassifier(budget=2, space={"max_epochs": 2, "units": [16], "hidden_layers": [1]},
                                          baselines=False, random_state=0).fit(X, sets)
    assert list(found.label_names_) == sorted(NAMES)
    matrix = MultiLabelBinarizer(classes=found.label_names_).fit_transform(sets)
    predicted = found.predict(X)
    assert predicted.shape == matrix.shape
    assert found.score(X, sets) == found.score(X, matrix) == pytest.approx(accuracy_score(matrix, predicted))


@pytest.mark.parametrize("asked", [{"ensemble": True}, {"bagging": 2}])
def test_a_search_refuses_ensembles_and_bags_by_name(data, asked):
    X, Y = data
    with pytest.raises(InvalidParameterError, match=f"{next(iter(asked))}=.* is not supported for multi-label"):
        archtune.AutoNeuralClassifier(budget=2, **asked).fit(X, Y)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("target, match", [
    (lambda Y: Y * 2, r"row \d+, column \d: 2 is not 0 or 1"),
    (lambda Y: np.where(Y == 1, "yes", "no"), "'yes' is not 0 or 1"),
    (lambda Y: [set()] * len(Y), "0 label"),
    # Rows of one length are a matrix, as scikit-learn reads them; the message says how to give sets.
    (lambda Y: [["a", "b"]] * len(Y), r"'a' is not 0 or 1.*give each row as a set"),
    (lambda Y: [{1, "a"}] + [{1}] * (len(Y) - 1), "mix label types"),
])
def test_bad_targets_are_named(data, target, match):
    X, Y = data
    with pytest.raises(DataError, match=match):
        NeuralClassifier(**SMALL).fit(X, target(Y))


def test_class_weight_and_later_targets_are_checked(network, data):
    X, Y = data
    with pytest.raises(InvalidParameterError, match="class_weight is not supported for multi-label"):
        NeuralClassifier(**SMALL, class_weight="balanced").fit(X, Y)
    with pytest.raises(DataError, match="validation_data y has 3 labels"):
        NeuralClassifier(**SMALL).fit(X, Y, validation_data=(X, Y[:, :3]))
    with pytest.raises(DataError, match="has label 'blues', which does not occur"):
        NeuralClassifier(**SMALL).fit(X, _sets(Y), validation_data=(X.iloc[:2], [{"blues"}, {"rock"}]))
