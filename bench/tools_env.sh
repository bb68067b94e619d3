#!/usr/bin/env bash
# The separate environment in which bench/search_quality.py runs the other AutoML tools
# (AutoGluon, FLAML, CatBoost, pytabkit's RealMLP-TD) beside archtune. None of them is an
# archtune dependency; they live in .bench-tools/ (git-ignored), never in .venv.
#   bash bench/tools_env.sh            create or update it (idempotent; minutes the first time)
#   .bench-tools/bin/python bench/search_quality.py --tools ...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
env=".bench-tools"
stamp="$env/.tools-ready"
[ -f "$stamp" ] && [ "$stamp" -nt "$0" ] && exit 0
[ -x "$env/bin/python" ] || python3 -m venv "$env"
# The CPU build of PyTorch first (a bare torch requirement pulls the CUDA build).
"$env/bin/pip" install -q "torch==2.13.0"
"$env/bin/pip" install -q -e . "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3" "flaml[automl]==2.8.0" \
    "catboost==1.2.10" "pytabkit==1.8.0" "optuna" "lightgbm"
# AutoGluon pulls torchvision, whose CUDA-era build fails to import beside the CPU torch here;
# none of the tabular models needs it.
"$env/bin/pip" uninstall -q -y torchvision || true
"$env/bin/python" -c "import autogluon.tabular, flaml, catboost, pytabkit, archtune; print('bench tools ready')"
touch "$stamp"
