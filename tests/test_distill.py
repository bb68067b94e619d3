"""Knowledge distillation (archtune.shrink.distill): the oracle of issue 17 (all weight on the
hard labels is ordinary training), the loss against torch's own KL divergence, imitation, the
teacher types, extra rows, bundles and the errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import Ridge
from sklearn.tree import DecisionTreeClassifier

import archtune
from archtune import InvalidParameterError, NeuralClassifier, NeuralRegressor
from archtune.data.table import Table
from archtune.fitting import prepare, transform_rows
from archtune.shrink.distill_loss import DistillationTask, targets
from archtune.shrink.teacher import teacher_logits
from archtune.train import Callback

SMALL = {"hidden_layers": 1, "units": 16, "numeric_embedding": None, "max_epochs": 4, "batch_size": 64}


@pytest.fixture(scope="module")
def table():
    X, y = make_classification(400, 6, n_informative=4, n_classes=3, random_state=0)
    return X.astype("float32"), y


@pytest.fixture(scope="module")
def teacher(table):
    X, y = table
    return NeuralClassifier(**{**SMALL, "units": 32, "max_epochs": 6}, random_state=0).fit(X, y)


def _same_network(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_all_weight_on_the_hard_labels_is_ordinary_training(kind, table, teacher):
    X, y = table
    if kind == "binary":
        y = (y == 1).astype(int)
        teacher = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    if kind == "regression":
        X, y = make_regression(300, 5, noise=5.0, random_state=0)
        teacher = Ridge().fit(X, y)
    cls = NeuralRegressor if kind == "regression" else NeuralClassifier
    student = archtune.distill(teacher, X, y, cls(**SMALL, random_state=3), alpha=1.0, temperature=3.0)
    plain = cls(**SMALL, random_state=3).fit(X, y)
    _same_network(student, plain)
    pd.testing.assert_frame_equal(student.history_.drop(columns="seconds"), plain.history_.drop(columns="seconds"))
    np.testing.assert_array_equal(student.predict(X), plain.predict(X))


def test_with_validation_data_too(table, teacher):
    X, y = table
    val = (X[300:], y[300:])
    student = archtune.distill(teacher, X[:300], y[:300], NeuralClassifier(**SMALL, random_state=1), alpha=1.0,
                               validation_data=val)
    _same_network(student, NeuralClassifier(**SMALL, random_state=1).fit(X[:300], y[:300], validation_data=val))


def _loss(task, outputs, hard, teacher_out, alpha, T, **kw):
    spec = DistillationTask(task, outputs.shape[1], "mse" if task == "regression" else "cross_entropy",
                            "r2" if task == "regression" else "accuracy", temperature=T, alpha=alpha, **kw)
    y = targets(hard, torch.ones(len(hard)), teacher_out)
    return spec.loss_fn()(outputs, y)


def test_the_loss_is_hintons_computed_by_torchs_kl_divergence():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(32, 4, generator=g), torch.randn(32, 4, generator=g)
    codes = torch.randint(0, 4, (32,), generator=g)
    T, alpha = 3.0, 0.3
    expected = (alpha * F.cross_entropy(s, codes)
                + (1 - alpha) * T * T * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean"))
    assert torch.allclose(_loss("multiclass", s, codes, t, alpha, T), expected, atol=1e-6)
    # Two classes with one logit z: the Bernoulli KL is the softmax KL of the logits (0, z).
    z_s, z_t = s[:, :1], t[:, :1]
    pad = torch.zeros_like(z_s)
    soft = _loss("binary", z_s, (codes[:, None] % 2).float(), z_t, 0.0, T)
    assert torch.allclose(soft, _loss("multiclass", torch.cat([pad, z_s], 1), codes % 2, torch.cat([pad, z_t], 1),
                                      0.0, T), atol=1e-6)
    # Regression: the weighted sum of the two mean squared errors.
    yv, tv = torch.randn(32, 1, generator=g), torch.randn(32, 1, generator=g)
    assert torch.allclose(_loss("regression", s[:, :1], yv, tv, 0.25, T),
                          0.25 * F.mse_loss(s[:, :1], yv) + 0.75 * F.mse_loss(s[:, :1], tv), atol=1e-6)


def test_unlabelled_rows_count_only_in_the_imitation_term():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(10, 3, generator=g), torch.randn(10, 3, generator=g)
    codes = torch.randint(0, 3, (10,), generator=g)
    labelled = torch.tensor([1.0] * 6 + [0.0] * 4)
    spec = DistillationTask("multiclass", 3, "cross_entropy", "accuracy", temperature=2.0, alpha=0.5, unlabeled=True)
    got = spec.loss_fn()(s, targets(codes, labelled, t))
    ce = F.cross_entropy(s[:6], codes[:6], reduction="sum") / 10  # each row counts once in the mean
    kl = 4 * F.kl_div(F.log_softmax(s / 2, 1), F.softmax(t / 2, 1), reduction="batchmean")
    assert torch.allclose(got, 0.5 * ce + 0.5 * kl, atol=1e-6)


class _FirstFeature:
    """A duck-typed teacher that differs from the labels: P(class 1) = sigmoid(4 x0)."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-4 * np.asarray(X)[:, 0]))
        return np.stack([1 - p, p], axis=1)

    def predict(self, X):
        return (np.asarray(X)[:, 0] > 0).astype(int)


def test_pure_imitation_agrees_with_the_teacher_more_than_the_labels_do():
    X, y = make_classification(600, 6, n_informative=4, flip_y=0.1, random_state=2)
    params = {**SMALL, "units": 32, "max_epochs": 15}
    imitator = archtune.distill(_FirstFeature(), X[:400], y[:400], NeuralClassifier(**params, random_state=0),
                                alpha=0.0, temperature=1.0)
    learner = NeuralClassifier(**params, random_state=0).fit(X[:400], y[:400])
    rows, target = X[400:], _FirstFeature().predict(X[400:])
    agree, baseline = (imitator.predict(rows) == target).mean(), (learner.predict(rows) == target).mean()
    assert agree > baseline + 0.1, (agree, baseline)


def test_the_teachers_logits_are_its_probabilities_in_the_students_class_order():
    import lightgbm

    X, y = make_classification(200, 5, n_informative=3, n_classes=3, random_state=0)
    labels = np.array(["c", "a", "b"])[y]
    gbm = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, labels)
    student_classes = np.array(["a", "b", "c"])
    logits = teacher_logits(gbm, X, student_classes)
    proba = pd.DataFrame(gbm.predict_proba(X), columns=gbm.classes_)[list(student_classes)].to_numpy()
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits).double(), 1).numpy(), proba, atol=1e-5)


def test_teachers_lightgbm_archtune_and_a_scikit_learn_regressor(table, teacher, tmp_path):
    import lightgbm

    X, y = table
    gbm = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(pd.DataFrame(X).add_prefix("f"), y)
    frame = pd.DataFrame(X).add_prefix("f")
    for model, data in ((gbm, frame), (teacher, X)):
        student = archtune.distill(model, data, y, NeuralClassifier(**SMALL, random_state=0), alpha=0.5)
        assert student.predict_proba(data).shape == (len(X), 3)
        assert student.lineage_[0]["from"].startswith(type(model).__name__)
    Xr, yr = make_regression(300, 5, noise=5.0, random_state=0)
    ridge = Ridge().fit(Xr, yr)
    ridge.lineage_ = [{"step": "pruned", "from": "a bigger model"}]  # a teacher with a history keeps it
    student = archtune.distill(ridge, Xr, yr, NeuralRegressor(**{**SMALL, "max_epochs": 30}, random_state=0),
                               alpha=0.0)
    assert np.corrcoef(student.predict(Xr), ridge.predict(Xr))[0, 1] > 0.9
    assert student.lineage_[0]["teacher_lineage"] == ridge.lineage_


class _Steps(Callback):
    def __init__(self):
        self.steps = 0

    def on_batch_end(self, state, batch):
        self.steps += 1


def test_unlabelled_and_augmented_rows_are_trained_on(table, teacher):
    X, y = table
    counted = {}
    for name, extra in (("none", {}), ("unlabeled", {"X_unlabeled": X[:200]}), ("swap", {"augment": "swap"})):
        steps = _Steps()
        student = archtune.distill(teacher, X, y, NeuralClassifier(**{**SMALL, "max_epochs": 1}, random_state=0),
                                   callbacks=[steps], **extra)
        counted[name] = steps.steps
        rows = student.lineage_[0]["rows"]
    n_train = 360  # 400 rows less the 10% validation split
    assert counted["none"] == -(-n_train // 64)
    assert counted["unlabeled"] == -(-(n_train + 200) // 64)
    assert counted["swap"] == -(-(2 * n_train) // 64)
    assert rows == {"labelled": n_train, "unlabeled": 0, "augmented": n_train}


def test_swap_noise_keeps_each_columns_values():
    from archtune.shrink.augment import swap_noise

    frame = pd.DataFrame({"x": np.arange(50.0), "c": pd.Categorical(list("ab") * 25)})
    out = swap_noise(frame, 3, 0.3, np.random.default_rng(0))
    assert len(out) == 150 and out["c"].dtype == frame["c"].dtype
    assert set(out["x"]) <= set(frame["x"])
    changed = (out["x"].to_numpy() != np.tile(frame["x"].to_numpy(), 3)).mean()
    assert 0.15 < changed < 0.45  # about 0.3, less the swaps that drew their own row


def test_prepare_records_where_each_row_came_from(table):
    X, y = table
    weights = np.ones(len(X))
    weights[::7] = 0  # dropped rows must not shift the positions
    prepared = prepare(NeuralClassifier(**SMALL, random_state=0), X, y, sample_weight=weights)
    assert not set(prepared.train_rows) & set(prepared.val_rows)
    assert all(weights[prepared.train_rows] > 0) and all(weights[prepared.val_rows] > 0)
    pre = prepared.fitted.preprocessor
    for rows, matrix in ((prepared.train_rows, prepared.X_train), (prepared.val_rows, prepared.X_val)):
        assert torch.equal(transform_rows(pre, Table.of_frame(pd.DataFrame(X[rows]).set_axis(pre.columns_, axis=1)),
                                          "X"), matrix)


def test_the_student_saves_and_loads(table, teacher, tmp_path):
    X, y = table
    student = archtune.distill(teacher, X, y, NeuralClassifier(**SMALL, random_state=0))
    student = archtune.distill(teacher, X, y, student)  # a second distillation replaces the first's record
    assert [step["step"] for step in student.lineage_] == ["distilled"]
    archtune.save(student, tmp_path / "student")
    np.testing.assert_array_equal(archtune.load(tmp_path / "student").predict_proba(X), student.predict_proba(X))


def test_bad_teachers_and_parameters_are_named_errors(table, teacher):
    X, y = table
    with pytest.raises(InvalidParameterError, match="teacher must be a fitted model with predict_proba"):
        archtune.distill(object(), X, y)
    with pytest.raises(InvalidParameterError, match="regressor but the student is a NeuralClassifier"):
        archtune.distill(Ridge().fit(X, y), X, y, NeuralClassifier(**SMALL))
    with pytest.raises(InvalidParameterError, match=r"the labels never hold \[2\]"):
        archtune.distill(teacher, X[y < 2], y[y < 2], NeuralClassifier(**SMALL))
    with pytest.raises(InvalidParameterError, match="temperature"):
        archtune.distill(teacher, X, y, temperature=0)
    with pytest.raises(InvalidParameterError, match="alpha"):
        archtune.distill(teacher, X, y, alpha=1.5)
    with pytest.raises(InvalidParameterError, match="augment"):
        archtune.distill(teacher, X, y, augment="mixup")


def test_the_command_line_distils_a_run(tmp_path):
    from click.testing import CliRunner

    from archtune.cli import cli
    from archtune.cli.distill import student_settings

    assert student_settings(("units=64,hidden_sizes=32,16", "alpha=x")) == ("units=64", "hidden_sizes=32,16",
                                                                            "alpha=x")
    runner = CliRunner()
    fit = runner.invoke(cli, ["fit", "iris", "--set", "max_epochs=3", "--out", str(tmp_path / "t"), "-q",
                              "--no-report"])
    assert fit.exit_code == 0, fit.output
    result = runner.invoke(cli, ["distill", str(tmp_path / "t"), "iris", "--student", "units=8,max_epochs=3",
                                 "--alpha", "0.2", "--out", str(tmp_path / "s"), "-q", "--no-report"])
    assert result.exit_code == 0, result.output
    student = archtune.load(tmp_path / "s")
    assert student.get_params()["units"] == 8 and student.get_params()["hidden_layers"] == 2
    assert student.bundle_metadata_["distilled"]["alpha"] == 0.2
    bad = runner.invoke(cli, ["distill", str(tmp_path / "t"), "iris", "--student", "unitz=8", "--out",
                              str(tmp_path / "s2")])
    assert bad.exit_code == 2 and "unknown parameter 'unitz'" in bad.output
