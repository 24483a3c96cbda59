"""validate: the book's validation runs, to see where overfitting starts.

    python -m stages.validate <task>    reads data/encoded/<task>/train.npz and data/split/<task>.npz

IMDB / Reuters: train on all but the held-out samples for `holdout_epochs`, validating every epoch.
Housing: K-fold, one fresh model per fold for `kfold_epochs`, validating every epoch; the validation MAE of
each fold after `kfold_table_epoch` epochs is the book's first K-fold table (same runs, read at that epoch).
Writes data/validate/<task>/history.json (per-epoch means over folds) and summary.json (best epoch, folds).
"""
import sys

import numpy as np

from stages import io, params, tasks


def mean_history(histories):
    """Per-epoch records averaged over folds: [{"epoch": 1, "loss": ..., "val_loss": ...}, ...]."""
    keys = list(histories[0])
    means = {k: np.mean([h[k] for h in histories], axis=0) for k in keys}
    return [{"epoch": e + 1, **{k: round(float(means[k][e]), 6) for k in keys}} for e in range(len(means[keys[0]]))]


def summarize(spec, histories, table_epoch=None):
    """Best epoch of the mean validation curve (lowest val_loss; housing: lowest val_mae) and the fold table."""
    watch = "val_mae" if spec.metric == "mae" else "val_loss"
    curve = np.mean([h[watch] for h in histories], axis=0)
    best = int(np.argmin(curve))
    out = {"best_epoch": best + 1, f"best_{watch}": round(float(curve[best]), 6)}
    if spec.metric != "mae":                  # and the validation accuracy at that epoch
        out["best_val_accuracy"] = round(float(np.mean([h["val_accuracy"][best] for h in histories])), 6)
    if table_epoch:
        maes = [h["val_mae"][table_epoch - 1] for h in histories]
        out["kfold"] = {"epoch": table_epoch, "mean_mae": round(float(np.mean(maes)), 6),
                        **{f"fold{i}_mae": round(float(m), 6) for i, m in enumerate(maes)}}
    return out


def main(task):
    spec = tasks.get(task)
    p = params.load("validate", task)
    epochs = p.get("holdout_epochs") or p["kfold_epochs"]
    table_epoch = p.get("kfold_table_epoch")
    from stages import model as M          # TensorFlow loads (~3 s) only once the params are known good
    data = io.read_npz(f"data/encoded/{task}/train.npz")
    fold = io.read_npz(f"data/split/{task}.npz")["fold"]
    y = M.targets(spec, p, data["y"])
    M.seed_everything(p["seed"])
    folds = range(int(fold.max()) + 1)
    models, xs, ys, val = [], [], [], []
    for f in folds:                            # models built in fold order: the seeded initial weights
        train, held_out = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        xs.append(M.Inputs(data, train))
        ys.append(y[train])
        val.append((M.Inputs(data, held_out), y[held_out]))
        models.append(M.build(spec, p, xs[-1].width))
    # The K folds (equal sizes: len(train) // k each) train side by side in one graph.
    histories = M.fit(models, spec, xs, ys, epochs=epochs, batch_size=p["batch_size"],
                      seeds=[p["seed"] + f for f in folds], validation=val)
    for f, h in zip(folds, histories):
        print(f"validate@{task}: fold {f}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in h.items()))
    io.write_json(f"data/validate/{task}/history.json", mean_history(histories))
    io.write_json(f"data/validate/{task}/summary.json", summarize(spec, histories, table_epoch))


if __name__ == "__main__":
    main(*sys.argv[1:])
