"""The ``archtune`` command: fit, predict and info end to end, and its one-line errors.

A few runs go through a real subprocess (the installed entry point's behaviour: exit code,
nothing but one line on stderr, no traceback); the many bad-input cases use click's
CliRunner in-process, which is much faster than starting Python and torch each time.
Bad input must be refused before any training starts: those tests make training itself fail.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import archtune
from archtune.cli import cli
from tests.conftest import load_shared

ARCHTUNE = [sys.executable, "-m", "archtune.cli"]
# One torch thread: these networks are tiny, and on a busy 2-core machine two threads that
# spin-wait on each other make a 10-second fit take 35 seconds.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
FAST = ["--set", "max_epochs=15", "--set", "units=64", "--set", "hidden_layers=2", "-q"]


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def assert_one_line_error(stderr: str, stdout: str, *fragments: str) -> str:
    """stderr is one line, ``archtune: error: ...``, that contains every fragment."""
    assert "Traceback" not in stderr + stdout
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("archtune: error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def assert_usage_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    return assert_one_line_error(result.stderr, result.stdout, *fragments)


# Tiny networks on a busy machine: a second torch thread only spin-waits.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def no_training(monkeypatch):
    """Fail the test if an estimator starts training: the error should come first."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("training started before the bad input was reported")

    monkeypatch.setattr(archtune.NeuralClassifier, "fit", refuse)
    monkeypatch.setattr(archtune.NeuralRegressor, "fit", refuse)


@pytest.fixture(scope="module")
def magic() -> pd.DataFrame:
    """1500 rows of the MAGIC gamma telescope data (binary, 10 numeric features)."""
    X, y = load_shared("magic.tsv.gz", n=1500)
    return X.assign(target=y)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, magic) -> SimpleNamespace:
    """A model trained by ``archtune fit`` in a real subprocess."""
    folder = tmp_path_factory.mktemp("cli")
    data = folder / "magic.csv"
    magic.to_csv(data, index=False)
    bundle = folder / "bundle"
    proc = subprocess.run([*ARCHTUNE, "fit", data, "--target", "target", *FAST, "--out", bundle],
                          capture_output=True, text=True, env=ONE_THREAD, timeout=600, cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return SimpleNamespace(folder=folder, data=data, bundle=bundle, proc=proc)


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# =========================================================================== end to end


def test_fit_in_a_subprocess(fitted, magic):
    out, err = fitted.proc.stdout, fitted.proc.stderr
    assert "Traceback" not in err
    assert "task: classification (target 'target' has 2 integer values" in out
    assert "data: magic.csv: 1200 training rows, 300 held out, 10 features" in out
    assert "saved the model bundle to" in out
    metrics = json.loads((fitted.bundle / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["target"] == "target"
    majority = magic["target"].value_counts(normalize=True).max()  # about 0.65
    assert metrics["holdout"]["accuracy"] > majority + 0.1
    assert 0.5 < metrics["holdout"]["roc_auc"] <= 1
    assert f"accuracy {metrics['holdout']['accuracy']:.4f}" in out


def test_predict_in_a_subprocess_equals_python(fitted, magic):
    preds_path = fitted.folder / "preds.csv"
    proc = subprocess.run([*ARCHTUNE, "predict", fitted.bundle, fitted.data, "-o", preds_path],
                          capture_output=True, text=True, env=ONE_THREAD, timeout=300, cwd=fitted.folder)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"wrote 1500 predictions to {preds_path}"
    preds = pd.read_csv(preds_path)
    model = archtune.load(fitted.bundle)
    X = magic.drop(columns="target")
    assert list(preds.columns) == ["prediction"] + [f"proba_{c}" for c in model.classes_]
    np.testing.assert_array_equal(preds["prediction"].to_numpy(), model.predict(X))
    np.testing.assert_array_equal(preds[["proba_0", "proba_1"]].to_numpy(), model.predict_proba(X))
    # The CLI's labels are the most probable class of each row.
    np.testing.assert_array_equal(preds["prediction"], model.classes_[preds[["proba_0", "proba_1"]].to_numpy().argmax(1)])


def test_predict_to_stdout(fitted, magic):
    result = run("predict", fitted.bundle, fitted.data)
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(io.StringIO(result.stdout))
    model = archtune.load(fitted.bundle)
    assert len(preds) == len(magic)
    np.testing.assert_array_equal(preds["proba_1"], model.predict_proba(magic.drop(columns="target"))[:, 1])


def test_predict_selects_columns_by_name(fitted, magic, tmp_path):
    X = magic.drop(columns="target")
    shuffled = X[X.columns[::-1]].assign(comment="extra column")
    result = run("predict", fitted.bundle, write(shuffled, tmp_path / "shuffled.csv"), "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    assert "ignoring 1 column(s) the model was not trained with: 'comment'" in result.stderr
    preds = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_array_equal(preds["proba_1"], archtune.load(fitted.bundle).predict_proba(X)[:, 1])


def test_info(fitted):
    result = run("info", fitted.bundle)
    assert result.exit_code == 0, result.output
    model = archtune.load(fitted.bundle)
    n_params = sum(p.numel() for p in model.module_.parameters())
    assert f"NeuralClassifier (mlp), {n_params:,} parameters" in result.stdout
    assert "10 inputs -> 64 -> 64 -> 1 outputs" in result.stdout
    assert "classes:      0, 1" in result.stdout
    assert "target:       target (classification)" in result.stdout
    assert f"{len(model.history_)} epochs (best {model.best_epoch_})" in result.stdout
    assert len(model.history_) <= 15
    assert "holdout:" in result.stdout and "accuracy" in result.stdout


def test_save_load_round_trip_gives_identical_predictions(fitted, magic, tmp_path):
    X = magic.drop(columns="target")
    model = archtune.load(fitted.bundle)
    archtune.save(model, tmp_path / "again", metadata=model.bundle_metadata_)
    again = archtune.load(tmp_path / "again")
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert again.bundle_metadata_ == model.bundle_metadata_
    # And the re-saved bundle works from the command line too.
    result = run("predict", tmp_path / "again", fitted.data, "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_array_equal(preds["proba_1"], model.predict_proba(X)[:, 1])


def test_fit_builtin_dataset_without_target_option(tmp_path):
    result = run("fit", "iris", "-o", tmp_path / "iris", "--set", "max_epochs=3", "--set", "units=16", "-q")
    assert result.exit_code == 0, result.output
    assert "task: classification (target 'target' holds labels" in result.stdout
    assert "data: iris: 120 training rows, 30 held out, 4 features" in result.stdout
    model = archtune.load(tmp_path / "iris")
    assert model.classes_.tolist() == ["setosa", "versicolor", "virginica"]


def test_fit_regression_with_a_regression_only_setting(tmp_path):
    X, y = load_shared("574_house_16H.tsv.gz", n=400)
    data = write(X.assign(target=y), tmp_path / "house.csv")
    # loss=huber only exists for regression; it must pass the early check under --task auto.
    result = run("fit", data, "-t", "target", "-o", tmp_path / "house", "--set", "loss=huber",
                 "--set", "max_epochs=3", "--set", "units=16", "-q", "--holdout", "0.25")
    assert result.exit_code == 0, result.output
    assert "task: regression" in result.stdout
    assert "held-out (100 rows): r2" in result.stdout
    model = archtune.load(tmp_path / "house")
    assert type(model).__name__ == "NeuralRegressor" and model.loss == "huber"


def test_parse_settings():
    from archtune.cli import parse_settings

    params = parse_settings(("units=64", "dropout=0.25", "hidden_sizes=256,128", "norm=none",
                             "early_stopping=false", "activation=gelu"), archtune.NeuralClassifier)
    assert params == {"units": 64, "dropout": 0.25, "hidden_sizes": (256, 128), "norm": None,
                      "early_stopping": False, "activation": "gelu"}
    assert parse_settings(("hidden_sizes=64",), archtune.NeuralRegressor) == {"hidden_sizes": (64,)}


def test_predict_with_a_multi_output_regressor_saved_from_python(tmp_path):
    X, y = load_shared("574_house_16H.tsv.gz", n=300)
    Y = np.column_stack([np.log1p(y), X["P1"] / 1000])
    model = archtune.NeuralRegressor(max_epochs=2, units=16, random_state=0).fit(X, Y)
    archtune.save(model, tmp_path / "multi")
    result = run("predict", tmp_path / "multi", write(X, tmp_path / "house.csv"), "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(tmp_path / "p.csv")
    assert list(preds.columns) == ["prediction_0", "prediction_1"]
    np.testing.assert_allclose(preds.to_numpy(), model.predict(X), rtol=1e-12)


@pytest.mark.parametrize("command", ["fit", "predict", "info"])
def test_help_shows_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"archtune {command} " in result.stdout.split("Example", 1)[1]


# =========================================================================== bad input
# The catalogue of malformed files (empty, ragged, binary, missing target, stray words, one
# class, missing columns at predict time ...) is tests/test_bad_inputs.py, through the CLI and
# Python alike. Here: what is particular to the command line.


@pytest.fixture(scope="module")
def small(magic) -> pd.DataFrame:
    return magic.head(300).copy()


def test_error_in_a_subprocess_is_one_line_without_traceback(small, tmp_path):
    frame = small.astype({"target": float})
    frame.loc[5, "target"] = np.nan
    data = write(frame, tmp_path / "nan_target.csv")
    proc = subprocess.run([*ARCHTUNE, "fit", data, "--target", "target", "-o", tmp_path / "out", "-q"],
                          capture_output=True, text=True, env=ONE_THREAD, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, proc.stdout, "nan_target.csv", "column 'target'", "row 6", "missing")
    assert not (tmp_path / "out").exists()


def test_target_option_is_required_for_a_file(small, tmp_path, no_training):
    data = write(small, tmp_path / "magic.csv")
    assert_usage_error(run("fit", data, "-o", tmp_path / "o"), "--target is required")


@pytest.mark.parametrize("value, word", [(np.nan, "missing"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_bad_target_value(small, tmp_path, no_training, value, word):
    frame = small.astype({"target": float})
    frame.loc[41, "target"] = value
    data = write(frame, tmp_path / "bad_target.csv")
    assert_usage_error(run("fit", data, "-t", "target", "-o", tmp_path / "o"),
                       "bad_target.csv: target column 'target' row 42", f"the target is {word}")


def test_empty_target_cell_in_a_label_column(small, tmp_path, no_training):
    frame = small.assign(target=np.where(small["target"] == 1, "gamma", "hadron")).astype({"target": object})
    frame.loc[7, "target"] = None
    data = write(frame, tmp_path / "labels.csv")
    assert_usage_error(run("fit", data, "-t", "target", "-o", tmp_path / "o"), "row 8", "the target is missing")


def test_text_target_for_regression(small, tmp_path, no_training):
    frame = small.astype({"target": object})
    frame.loc[3, "target"] = "unknown"
    data = write(frame, tmp_path / "reg.csv")
    assert_usage_error(run("fit", data, "-t", "target", "--task", "regression", "-o", tmp_path / "o"),
                       "reg.csv: target column 'target' row 4: 'unknown' is not a number")


def test_unknown_parameter_suggests_nearest(small, tmp_path, no_training):
    data = write(small, tmp_path / "magic.csv")
    assert_usage_error(run("fit", data, "-t", "target", "-o", tmp_path / "o", "--set", "dropuot=0.2"),
                       "unknown parameter 'dropuot'", "(did you mean 'dropout'?)")


def test_parameters_are_checked_before_the_data_is_read(tmp_path, no_training, monkeypatch):
    # The file exists but reading it fails the test: the parameter error must come first.
    import archtune.data.readers as readers

    data = tmp_path / "data.csv"
    data.write_text("a,target\n1,0\n2,1\n")
    monkeypatch.setattr(readers, "load_table", lambda *a: pytest.fail("the data was read before the parameters were checked"))
    assert_usage_error(run("fit", data, "-t", "target", "-o", tmp_path / "o",
                           "--set", "dropout=1.5"), "dropout must be in [0, 1); got dropout=1.5")


def test_a_missing_file_is_reported_before_torch_is_imported(tmp_path):
    code = ("import sys; from archtune.cli import main\n"
            "try:\n    main(['fit', sys.argv[1], '-t', 'y', '-o', sys.argv[2]])\n"
            "except SystemExit as e:\n    print('torch' in sys.modules, e.code)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "nope.csv"), str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "2"], out.stdout + out.stderr
    assert_one_line_error(out.stderr, "", "nope.csv: no such file")


@pytest.mark.parametrize("setting, message", [
    ("dropout=1.5", "dropout must be in [0, 1); got dropout=1.5"),
    ("learning_rate=-1", "learning_rate"),
    ("units=0", "units must be in [1, 1e+06]; got units=0"),
    ("activation=rleu", "got activation='rleu' (did you mean 'relu'"),
    ("dropout", "--set expects PARAM=VALUE, got 'dropout'"),
])
def test_parameter_out_of_range(small, tmp_path, no_training, setting, message):
    data = write(small, tmp_path / "magic.csv")
    assert_usage_error(run("fit", data, "-t", "target", "-o", tmp_path / "o", "--set", setting), message)


def test_regression_setting_on_a_classification_task_says_so(small, tmp_path, no_training):
    data = write(small, tmp_path / "magic.csv")
    assert_usage_error(run("fit", data, "-t", "target", "-o", tmp_path / "o", "--set", "loss=huber"),
                       "loss must be one of", "--task regression")


def test_out_is_an_existing_file(small, tmp_path, no_training):
    data = write(small, tmp_path / "magic.csv")
    assert_usage_error(run("fit", data, "-t", "target", "-o", data), "exists and is not a directory")


def test_predict_with_a_missing_bundle(small, tmp_path):
    data = write(small, tmp_path / "magic.csv")
    assert_usage_error(run("predict", tmp_path / "nowhere", data), "no such model bundle")
    assert_usage_error(run("info", tmp_path / "nowhere"), "no such model bundle")


# --------------------------------------------------------------------------- the doctor


def test_lr_find_prints_a_suggestion_and_writes_the_plot(tmp_path):
    plot = tmp_path / "lr.png"
    result = run("lr-find", "breast_cancer", "--set", "units=64", "--plot", plot)
    assert result.exit_code == 0, result.output
    assert "suggested learning_rate=" in result.stdout and "--set learning_rate=" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_usage_error(run("lr-find", "breast_cancer", "--plot", tmp_path / "lr.jpg"), "--plot", ".png")
    assert_usage_error(run("lr-find", "breast_cancer", "--set", "learning_rat=1"), "learning_rate")


def test_diagnose_data_with_a_sick_network_names_the_problem_and_writes_json(tmp_path):
    out = tmp_path / "d.json"
    result = run("diagnose", "breast_cancer", "--set", "hidden_layers=20", "--set", "activation=sigmoid",
                 "--set", "units=32", "--epochs", "2", "--json", out)
    assert result.exit_code == 0, result.output
    assert "[error] vanishing_gradients" in result.stdout and "arch='resnet'" in result.stdout
    assert json.loads(out.read_text())["findings"][0]["code"] == "vanishing_gradients"


def test_diagnose_a_run_directory_with_and_without_data(tmp_path):
    run_dir = tmp_path / "run"
    # ReLU units (which can die, unlike the default recipe's Mish), so that dead_units applies.
    relu = ["--set", "activation=relu", "--set", "parametric_activation=false"]
    assert run("fit", "breast_cancer", "--out", run_dir, *FAST, *relu).exit_code == 0
    alone = run("diagnose", run_dir, "--json", tmp_path / "alone.json")
    assert alone.exit_code == 0 and f"diagnosis of {run_dir}" in alone.stdout
    probed = run("diagnose", run_dir, "--data", "breast_cancer", "--json", tmp_path / "probed.json")
    assert probed.exit_code == 0, probed.output
    checked_alone = set(json.loads((tmp_path / "alone.json").read_text())["checked"])
    checked_probed = set(json.loads((tmp_path / "probed.json").read_text())["checked"])
    # Without data only the curves and weights are read; with data the network is probed
    # (gradient flow, dead units) and the data itself checked.
    assert "overfitting" in checked_alone and "dead_units" not in checked_alone
    assert {"dead_units", "vanishing_gradients", "train_val_leak"} <= checked_probed
    assert_usage_error(run("diagnose", run_dir, "--set", "units=3"), "--set applies when SOURCE is data")
    assert_usage_error(run("diagnose", "breast_cancer", "--data", "iris"), "--data goes with a run directory")
    assert_usage_error(run("diagnose", tmp_path / "missing.csv", "--target", "y"), "missing.csv")


# =========================================================================== pretrain, --init-from, lineage

TINY = ["--set", "units=16", "--set", "hidden_layers=1"]


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory, small) -> SimpleNamespace:
    """``archtune pretrain`` on a table (its target column ignored), then ``archtune fit
    --init-from`` it."""
    folder = tmp_path_factory.mktemp("pre")
    data = write(small, folder / "small.csv")
    pre, tuned = folder / "pre", folder / "tuned"
    made = run("pretrain", data, "--target", "target", "--epochs", "2", *TINY, "-q", "--out", pre)
    assert made.exit_code == 0, made.output
    fit = run("fit", data, "--target", "target", "--init-from", pre, "--freeze", "body", "--freeze-epochs", "2",
              "--set", "max_epochs=4", *TINY, "-q", "--no-report", "--out", tuned)
    assert fit.exit_code == 0, fit.output
    return SimpleNamespace(data=data, pre=pre, tuned=tuned, made=made, fit=fit)


def test_pretrain_ignores_the_target_and_info_describes_the_bundle(pretrained_run, small):
    from archtune.bundles.pretrained import load_pretrained

    assert "ignoring column 'target'" in pretrained_run.made.stderr
    pretrained = load_pretrained(pretrained_run.pre)
    assert pretrained.n_rows_ == len(small) and "target" not in list(pretrained.feature_names_in_)
    info = run("info", pretrained_run.pre)
    assert info.exit_code == 0, info.output
    assert f"training:     {len(pretrained.history_)} epochs (best {pretrained.best_epoch_}) on {len(small)} rows" \
        in info.stdout
    assert "pretext:      masked_features (corruption_rate 0.3" in info.stdout
    assert f"columns:      {small.shape[1] - 1} (" in info.stdout


def test_fit_init_from_a_pretraining_and_info_shows_the_lineage(pretrained_run, small):
    model = archtune.load(pretrained_run.tuned)
    assert model.get_params()["init_from"] == str(pretrained_run.pre)
    assert model.get_params()["freeze"] == "body" and model.get_params()["freeze_epochs"] == 2
    assert model.history_["phase"].tolist()[:2] == ["head", "head"]
    init = model.lineage_[0]
    info = run("info", pretrained_run.tuned)
    assert info.exit_code == 0, info.output
    assert (f"weights:      initialised from {init['from']}: copied {init['copied']} of {init['total']} tensors"
            in info.stdout)
    assert f"weights:      pretrained: masked_features, 2 epochs on {len(small)} rows" in info.stdout


def test_fit_init_from_a_fit_run_and_info(pretrained_run, fitted):
    out = fitted.folder / "from_run"
    result = run("fit", fitted.data, "--target", "target", "--init-from", fitted.bundle, "--set", "max_epochs=2",
                 "-q", "--no-report", "--out", out)
    assert result.exit_code == 0, result.output
    model = archtune.load(out)
    assert model.lineage_[0]["copied"] == model.lineage_[0]["total"]  # same task, same classes: all of it
    info = run("info", out)
    assert f"weights:      initialised from bundle {fitted.bundle} (NeuralClassifier, 2 classes): copied " \
           f"{model.lineage_[0]['total']} of {model.lineage_[0]['total']} tensors" in info.stdout


def test_info_of_a_pruned_and_of_a_distilled_bundle(pretrained_run, small, tmp_path):
    from archtune.shrink.distill import distill
    from archtune.shrink.prune import prune

    X, y = small.drop(columns=["target"]), small["target"]
    teacher = archtune.load(pretrained_run.tuned)
    pruned, _ = prune(teacher, X, y, target_params=200, max_score_drop=None, fine_tune_epochs=1,
                      source=str(pretrained_run.tuned), random_state=0)
    archtune.save(pruned, tmp_path / "pruned")
    info = run("info", tmp_path / "pruned")
    record = pruned.lineage_[0]
    assert (f"weights:      pruned from {pretrained_run.tuned}: {record['params_before']:,} -> "
            f"{record['params_after']:,} parameters" in info.stdout), info.stdout
    assert "weights:      initialised from" in info.stdout  # the teacher's own lineage follows
    student = distill(teacher, X, y, NeuralClassifierSmall(), temperature=3.0, alpha=0.25, random_state=0)
    archtune.save(student, tmp_path / "student")
    info = run("info", tmp_path / "student")
    assert f"weights:      distilled from {student.lineage_[0]['from']} (T=3, alpha=0.25)" in info.stdout
    assert "teacher: pretrained: masked_features" in info.stdout


def NeuralClassifierSmall():
    return archtune.NeuralClassifier(units=8, hidden_layers=1, max_epochs=2, random_state=0)


def test_pretrain_an_image_folder_by_rotation_then_fit_from_it(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "img" / label / f"{i}.png")
    made = run("pretrain", tmp_path / "img", "--epochs", "1", *TINY, "--set", "conv_blocks=1", "--set", "filters=4",
               "-q", "--out", tmp_path / "pre")
    assert made.exit_code == 0, made.output
    assert "ignoring column 'label'" in made.stderr
    info = run("info", tmp_path / "pre")
    assert "pretext:      rotation" in info.stdout and "on 16 rows" in info.stdout
    fit = run("fit", tmp_path / "img", "--target", "label", "--init-from", tmp_path / "pre", "--set", "max_epochs=1",
              "--holdout", "0", "-q", "--no-report", "--out", tmp_path / "tuned")
    assert fit.exit_code == 0, fit.output
    assert [s["step"] for s in archtune.load(tmp_path / "tuned").lineage_] == ["init_from", "pretrained"]


def test_transfer_options_are_checked_before_the_data_is_read(small, tmp_path, no_training):
    data = write(small, tmp_path / "s.csv")
    out = ["--out", tmp_path / "o"]
    assert_usage_error(run("fit", data, "--target", "target", "--freeze", "body", *out), "--freeze needs --init-from")
    assert_usage_error(run("fit", data, "--target", "target", "--init-from", tmp_path / "nope", *out),
                       "--init-from", "nope")
    assert_usage_error(run("fit", data, "--target", "target", "--init-from", tmp_path, "--freeze", "head", *out),
                       "--freeze must be 'body'")
    assert_usage_error(run("fit", data, "--target", "target", "--init-from", tmp_path, "--freeze-epochs", "0", *out),
                       "--freeze-epochs")
    assert_usage_error(run("fit", data, "--target", "target", "--init-from", tmp_path, "--set",
                           f"init_from={tmp_path}", *out), "--init-from and --set init_from")
    assert_usage_error(run("fit", data, "--target", "target", "--init-from", tmp_path, *out), str(tmp_path),
                       "archtune.json")
    assert_usage_error(run("pretrain", data, "--target", "targt", *out), "'targt'", "target")
    assert_usage_error(run("pretrain", data, "--set", "pretext=jigsaw", *out), "pretext")


def test_lineage_lines_name_each_step_with_its_figures():
    from archtune.cli.lineage import lineage_lines

    backbone = {"step": "backbone", "backbone": "resnet18", "from": "/w/resnet18.pth", "sha256": "ab", "loaded": 120}
    pruned = {"step": "pruned", "from": "runs/a", "method": "structured", "importance": "taylor",
              "params_before": 181985, "params_after": 47746}
    lines = lineage_lines([pruned, backbone, {"step": "grafted", "from": "elsewhere"}, "not a record"])
    assert lines == ["pruned from runs/a: 181,985 -> 47,746 parameters (taylor importance)",
                     "backbone resnet18 from /w/resnet18.pth (120 tensors)", "grafted: elsewhere"]


def test_fit_refuses_unlabeled_rows_with_a_pointer_to_pretrain(small, tmp_path, no_training):
    data = write(small.assign(target=np.where(np.arange(len(small)) % 2 == 0, small["target"], -1)),
                 tmp_path / "semi.csv")
    assert_usage_error(run("fit", data, "--target", "target", "--set", "pretrain_epochs=2", "--out", tmp_path / "o"),
                       "semi.csv", f"{len(small) // 2} row(s) unlabeled", "archtune pretrain")
