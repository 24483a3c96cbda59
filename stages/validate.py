"""validate: the book's validation runs, to see where overfitting starts, repeated over replicates.

    python -m stages.validate <task>    reads data/encoded/<task>/train.npz and data/split/<task>.npz

IMDB / Reuters: train on all but the held-out samples for `holdout_epochs`, validating every epoch.
Housing: K-fold, one fresh model per fold for `kfold_epochs`, validating every epoch; the validation MAE of
each fold after `kfold_table_epoch` epochs is the book's first K-fold table (same runs, read at that epoch).
Each of the `replicates` repeats its runs with its own seed (chapter4/stats.py); all runs train side by side.
Writes data/validate/<task>/history.json (per epoch: the mean over replicates of the mean over folds, with its
spread) and summary.json (best epoch of the mean validation curve, the fold table, per-replicate values).
"""
import sys

import numpy as np

from chapter4 import io, network, params, stats, tasks


def summarize(spec, replicates, table_epoch=None):
    """Best epoch of the mean validation curve over replicates and folds (lowest val_loss; housing: lowest
    val_mae), and the fold table. `replicates`: one list of fold histories per replicate."""
    watch = "val_mae" if spec.regression else "val_loss"
    runs = [h for folds in replicates for h in folds]
    curve = np.mean([h[watch] for h in runs], axis=0)
    best = int(np.argmin(curve))
    out = {"best_epoch": best + 1, f"best_{watch}": round(float(curve[best]), 6), "replicates": len(replicates)}
    if not spec.regression:               # and the validation accuracy at that epoch
        out["best_val_accuracy"] = round(float(np.mean([h["val_accuracy"][best] for h in runs])), 6)
    if table_epoch:
        maes = np.array([[h["val_mae"][table_epoch - 1] for h in folds] for folds in replicates])
        per_replicate = [round(float(m), 6) for m in maes.mean(axis=1)]            # summarized as stored
        out["kfold"] = {"epoch": table_epoch, **stats.summary("mean_mae", per_replicate),
                        **{f"fold{i}_mae": round(float(m), 6) for i, m in enumerate(maes.mean(axis=0))}}
        out["per_replicate"] = {"kfold.mean_mae": per_replicate}
    return out


def main(task):
    spec = tasks.get(task)
    p = params.load("validate", task)
    epochs, table_epoch = (p["kfold_epochs"], p["kfold_table_epoch"]) if spec.kfold else (p["holdout_epochs"], None)
    from chapter4 import model, training     # TensorFlow loads (~3 s) only once the params are known good
    from chapter4.batching import Inputs
    data = io.read_npz(f"data/encoded/{task}/train.npz")
    fold = io.read_npz(f"data/split/{task}.npz")["fold"]
    net = network.of(spec, p, Inputs(data).width)
    y = training.targets(net, data["y"])
    folds = range(int(fold.max()) + 1)
    parts = []                                 # each fold's (training inputs, targets, validation), shared
    for f in folds:
        train, held_out = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        parts.append((Inputs(data, train), y[train], (Inputs(data, held_out), y[held_out])))
    models, seeds = [], []
    for seed in stats.seeds(p["seed"], p["replicates"]):
        model.seed_everything(seed)
        for f in folds:                        # models built in fold order: the seeded initial weights
            models.append(model.build(net))
            seeds.append(seed + f)
    runs = parts * p["replicates"]
    # Every replicate's K folds (equal sizes: len(train) // k each) train side by side in one graph.
    histories = training.fit(models, net, [x for x, _, _ in runs], [t for _, t, _ in runs], epochs=epochs,
                             batch_size=p["batch_size"], seeds=seeds, validation=[v for _, _, v in runs])
    replicates = [histories[i:i + len(folds)] for i in range(0, len(histories), len(folds))]
    for r, hs in enumerate(replicates):
        last = {k: v[-1] for k, v in stats.mean_curves(hs).items()}
        print(f"validate@{task}: replicate {r}: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
    io.write_json(f"data/validate/{task}/history.json", stats.curves([stats.mean_curves(hs) for hs in replicates]))
    io.write_json(f"data/validate/{task}/summary.json", summarize(spec, replicates, table_epoch))


if __name__ == "__main__":
    main(*sys.argv[1:])
