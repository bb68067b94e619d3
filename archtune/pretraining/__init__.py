"""Self-supervised pretraining on unlabeled rows (issue 16).

``archtune.pretrain(X, ...)`` (api.py) trains a network on a pretext task — masked-feature
reconstruction for tables, rotation prediction for images — and returns a `Pretrained`
whose ``to_source()`` a fit starts from (archtune.transfer).

Modules: tasks.py (the pretext tasks), model.py (the network while it pretrains), run.py
(the training, from an estimator's parameters), result.py (`Pretrained`), bundle.py (saving
and loading), api.py (the public function).
"""
