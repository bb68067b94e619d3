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
                                   "--no-ensemble", "--out", str(tmp_path / "run")])
    assert run.exit_code == 0, run.output
    assert archtune.load(tmp_path / "run").class_weight == {"0": 1, "1": 3}
    with pytest.raises(DataError, match=r"the first as InvalidParameterError: class_weight has label 7, which is not "
                                        r"one of the classes \[0, 1\]"):
        AutoNeuralClassifier(budget=2, random_state=0, space={"max_epochs": 2, "class_weight": {7: 1.0}}).fit(X, y)
