"""What users bring to the loss (issue 32, item 6): class weights as dicts through the search
and the CLI (JSON keys are text), and losses given as callables."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import archtune
from archtune.auto import AutoNeuralClassifier
from archtune.cli import cli
from archtune.errors import DataError
from tests.conftest import load_shared


def test_a_class_weight_dict_keyed_by_the_labels_text_weighs_as_the_labels_themselves():
    X, y = load_shared("magic.tsv.gz", n=300, seed=4)
    by_label = archtune.NeuralClassifier(max_epochs=2, random_state=0, class_weight={0: 1.0, 1: 3.0}).fit(X, y)
    by_text = archtune.NeuralClassifier(max_epochs=2, random_state=0, class_weight={"0": 1.0, "1": 3.0}).fit(X, y)
    unweighted = archtune.NeuralClassifier(max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(by_label.predict_proba(X), by_text.predict_proba(X))
    assert not np.allclose(by_label.predict_proba(X), unweighted.predict_proba(X))  # the weights act


def test_a_search_takes_a_class_weight_dict_in_python_and_from_the_cli_and_names_a_bad_label(tmp_path):
    X, y = load_shared("magic.tsv.gz", n=300, seed=5)
    model = AutoNeuralClassifier(budget=3, random_state=0, ensemble=False,
                                 space={"max_epochs": 2, "class_weight": {0: 1.0, 1: 3.0}}).fit(X, y)
    assert model.best_estimator_.class_weight == {0: 1.0, 1: 3.0}
    frame = X.assign(label=y.to_numpy())
    frame.to_csv(tmp_path / "rows.csv", index=False)
    run = CliRunner().invoke(cli, ["tune", str(tmp_path / "rows.csv"), "--target", "label", "--budget", "3",
                                   "--set", 'class_weight={"0": 1, "1": 3}', "--set", "max_epochs=2",
                                   "--no-ensemble", "--no-report", "--out", str(tmp_path / "run")])
    assert run.exit_code == 0, run.output
    assert archtune.load(tmp_path / "run").class_weight == {"0": 1, "1": 3}
    with pytest.raises(DataError, match=r"the first as InvalidParameterError: class_weight has label 7, which is not "
                                        r"one of the classes \[0, 1\]"):
        AutoNeuralClassifier(budget=2, random_state=0, space={"max_epochs": 2, "class_weight": {7: 1.0}}).fit(X, y)


# ----------------------------------------------------------------------------- callable losses

from archtune.errors import InvalidParameterError  # noqa: E402
from tests import losses_for_tests as losses  # noqa: E402


def _cpu_act(n=300):
    X, y = load_shared("197_cpu_act.tsv.gz", n=n, seed=0)
    return X, y.to_numpy()


def test_a_callable_equal_to_mse_trains_the_same_network_as_loss_mse_and_a_bundle_keeps_it(tmp_path):
    X, y = _cpu_act()
    params = {"max_epochs": 3, "random_state": 0, "units": 32}
    builtin = archtune.NeuralRegressor(loss="mse", **params).fit(X, y)
    custom = archtune.NeuralRegressor(loss=losses.plain_mse, **params).fit(X, y)
    np.testing.assert_allclose(custom.predict(X), builtin.predict(X), rtol=1e-6)
    np.testing.assert_allclose(custom.history_["train_loss"], builtin.history_["train_loss"], rtol=1e-6)
    archtune.save(custom, tmp_path / "net")
    loaded = archtune.load(tmp_path / "net")
    assert loaded.loss is losses.plain_mse
    np.testing.assert_array_equal(loaded.predict(X[:20]), custom.predict(X[:20]))


def test_a_callable_that_differs_trains_differently_and_tabm_members_each_get_a_call():
    X, y = _cpu_act()
    params = {"max_epochs": 2, "random_state": 0, "units": 32}
    mse = archtune.NeuralRegressor(**params).fit(X, y)
    log_cosh = archtune.NeuralRegressor(loss=losses.log_cosh, **params).fit(X, y)
    assert not np.allclose(mse.predict(X), log_cosh.predict(X))
    Xc, yc = load_shared("satimage.tsv.gz", n=300, seed=0)
    tabm = archtune.NeuralClassifier(arch="tabm", loss=losses.focal, max_epochs=2, random_state=0).fit(Xc, yc)
    assert np.isfinite(tabm.history_["train_loss"]).all()
    assert tabm.predict_proba(Xc[:4]).shape == (4, len(tabm.classes_))


def test_sample_weights_reach_a_callable_that_takes_them_and_are_refused_by_name_otherwise():
    X, y = _cpu_act()
    w = np.where(np.arange(len(y)) % 2 == 0, 1.0, 3.0)
    weighted = archtune.NeuralRegressor(loss=losses.weighted_mse, max_epochs=2, random_state=0).fit(X, y, sample_weight=w)
    builtin = archtune.NeuralRegressor(loss="mse", max_epochs=2, random_state=0).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(weighted.predict(X), builtin.predict(X), rtol=1e-5, atol=1e-6)  # the same weighted mean
    with pytest.raises(InvalidParameterError, match=r"loss=tests.losses_for_tests.log_cosh takes \(outputs, targets\) "
                                                    r"but this fit has sample weights"):
        archtune.NeuralRegressor(loss=losses.log_cosh, max_epochs=1, random_state=0).fit(X, y, sample_weight=w)


def test_bad_callables_are_refused_by_name_and_a_failed_save_leaves_nothing(tmp_path):
    X, y = _cpu_act(200)
    with pytest.raises(InvalidParameterError, match=r"not_a_scalar must return a scalar tensor; it returned \(\d+, 1\)"):
        archtune.NeuralRegressor(loss=losses.not_a_scalar, max_epochs=1, random_state=0).fit(X, y)
    Xc, yc = load_shared("magic.tsv.gz", n=200, seed=0)
    with pytest.raises(InvalidParameterError, match="class_weight applies to archtune's cross-entropy"):
        archtune.NeuralClassifier(loss=losses.focal, class_weight="balanced", max_epochs=1).fit(Xc, yc)
    model = archtune.NeuralRegressor(loss=lambda o, t: ((o - t) ** 2).mean(), max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="cannot be saved in a bundle: a lambda or a function defined inside"):
        archtune.save(model, tmp_path / "net")
    assert not (tmp_path / "net").exists()
    from archtune.shrink.distill import distill

    with pytest.raises(InvalidParameterError, match="a student with loss=tests.losses_for_tests.log_cosh cannot be"):
        distill(model, X, y, archtune.NeuralRegressor(loss=losses.log_cosh, max_epochs=1))


def test_a_callable_loss_trains_alone_in_a_cohort_and_runs_in_a_search_and_the_cli(tmp_path):
    from archtune.population import cohort_key

    X, y = _cpu_act()
    assert cohort_key(archtune.NeuralRegressor(loss=losses.log_cosh), 240) is None
    assert cohort_key(archtune.NeuralRegressor(loss="mse"), 240) is not None
    from archtune.auto import AutoNeuralRegressor

    search = AutoNeuralRegressor(budget=2, random_state=0, ensemble=False,
                                 space={"max_epochs": 2, "loss": losses.log_cosh}).fit(X, y)
    assert search.best_estimator_.loss is losses.log_cosh
    frame = X.assign(target=y)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    fitted = CliRunner().invoke(cli, ["fit", str(tmp_path / "rows.csv"), "--target", "target", "--set",
                                      "loss=tests.losses_for_tests:log_cosh", "--set", "max_epochs=2",
                                      "--no-report", "--out", str(tmp_path / "run")])
    assert fitted.exit_code == 0, fitted.output
    assert archtune.load(tmp_path / "run").loss is losses.log_cosh
    missing = CliRunner().invoke(cli, ["fit", str(tmp_path / "rows.csv"), "--target", "target", "--set",
                                       "loss=tests.losses_for_tests:no_such_loss", "--out", str(tmp_path / "x")])
    assert missing.exit_code != 0 and "the loss tests.losses_for_tests:no_such_loss cannot be imported" in missing.output
