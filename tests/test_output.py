"""What a user reads: verdicts, `info`, warnings, progress in a pipe, help (issue 14, fault 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import archtune
from archtune.cli import cli
from archtune.cli.leaderboard import verdict
from tests.conftest import load_shared

ROOT = Path(__file__).resolve().parents[1]


def _board(network: float, baseline: float) -> pd.DataFrame:
    rows = [{"model": "network #0 (mlp)", "val_score": network, "state": "COMPLETE", "note": ""},
            {"model": "lightgbm", "val_score": baseline, "state": "BASELINE", "note": ""}]
    return pd.DataFrame(rows).sort_values("val_score", ascending=False, kind="stable")


@pytest.mark.parametrize("network, baseline", [(0.865, 0.865), (0.86500000000001, 0.865), (0.865, 0.86500000000001),
                                               (0.86504, 0.86496)])
def test_scores_that_print_the_same_are_a_tie(network, baseline):
    sentence = verdict(_board(network, baseline), "accuracy")
    assert "ties with the best baseline, lightgbm (0.8650)" in sentence, sentence
    assert "NOT" not in sentence and "+0.0000" not in sentence


@pytest.mark.parametrize("network, baseline, words", [(0.87, 0.86, "beats the best baseline, lightgbm (0.8600), by +0.0100"),
                                                      (0.86, 0.87, "is behind by -0.0100")])
def test_a_real_gap_is_reported_with_its_sign(network, baseline, words):
    assert words in verdict(_board(network, baseline), "accuracy")


@pytest.fixture(scope="module")
def one_epoch_bundle(tmp_path_factory):
    X, y = load_shared("magic.tsv.gz", n=300)
    model = archtune.NeuralClassifier(dropout=0.18436258533048205, learning_rate=0.0021957742, max_epochs=1,
                                      hidden_layers=1, units=16, random_state=0).fit(X, y)
    out = tmp_path_factory.mktemp("info") / "run"
    archtune.save(model, out)
    return out


def test_info_rounds_searched_floats_and_counts_epochs_in_english(one_epoch_bundle):
    result = CliRunner().invoke(cli, ["info", str(one_epoch_bundle)])
    assert result.exit_code == 0, result.output
    assert "dropout 0.184," in result.stdout and "0.18436" not in result.stdout
    assert "lr 0.0022," in result.stdout
    assert "1 epoch (best 1)" in result.stdout and "1 epochs" not in result.stdout


def test_a_warning_on_the_command_line_is_one_line_without_source(tmp_path):
    # conv_blocks is not read by an MLP: archtune warns, naming it.
    result = CliRunner().invoke(cli, ["fit", "iris", "--set", "conv_blocks=3", "--set", "max_epochs=2", "-q",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "conv_blocks" in line]
    assert warned and all(line.startswith("archtune: warning: ") for line in warned), result.stderr
    assert ".py:" not in result.stderr and "warnings.warn" not in result.stderr


def test_progress_into_a_pipe_is_whole_lines(tmp_path):
    env = {**os.environ, "COLUMNS": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "archtune", "fit", "breast_cancer", "--set", "max_epochs=3",
                           "--set", "units=16", "--out", str(tmp_path / "run")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("NeuralClassifier")]
    assert lines, done.stderr
    # The last epoch always gets its line, whole: metric names and values are not cut.
    assert lines[-1].startswith("NeuralClassifier: epoch 3/3  loss ") and "val_accuracy 0." in lines[-1]
    assert "…" not in done.stderr


def test_fit_help_lists_every_parameter_with_its_default():
    result = CliRunner().invoke(cli, ["fit", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for name, value in archtune.NeuralClassifier().get_params().items():
        assert f"{name}=" in text, name
    assert "dropout=0.1" in text or f"dropout={archtune.NeuralClassifier().dropout}" in text


def test_unknown_parameter_points_to_a_help_that_has_the_list(tmp_path):
    result = CliRunner().invoke(cli, ["fit", "iris", "--set", "dropuot=0.2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "did you mean 'dropout'" in result.stderr and "archtune fit --help" in result.stderr


def test_tune_help_says_a_plain_budget_is_trials():
    result = CliRunner().invoke(cli, ["tune", "--help"])
    assert "--budget 5 means 5 trials" in " ".join(result.output.split())
