"""plot: the chapter's figures as PNG, from the validation history.

    python -m stages.plot <task>    reads data/validate/<task>/{history,summary}.json, writes data/plots/<task>/

IMDB / Reuters: training vs validation loss (figures 4.4, 4.6) and accuracy (4.5, 4.7). Housing: mean
validation MAE per epoch over the folds (4.9) and the same without the first 10 epochs (4.10). Each curve is the
mean over the replicates, drawn as the book draws its single run; with two or more replicates a shaded band
shows mean ± one sample standard deviation over them at each epoch.
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from chapter4 import io, tasks  # noqa: E402

def figure(path, epochs, curves, title, ylabel, replicates=1):
    """`curves`: (label, means, sds or None) per line."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (label, values, sds), style in zip(curves, ("bo", "b-")):
        ax.plot(epochs, values, style if len(curves) > 1 else "b-", label=label)
        if sds is not None:
            ax.fill_between(epochs, [m - s for m, s in zip(values, sds)], [m + s for m, s in zip(values, sds)],
                            color="b", alpha=0.15, linewidth=0)
    if replicates > 1:
        title += f"\nmean of {replicates} replicates, band: ± 1 sd"
    ax.set(title=title, xlabel="Epochs", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(curves) > 1 or replicates > 1:
        ax.legend()
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(task):
    spec = tasks.get(task)
    history = io.read_json(f"data/validate/{task}/history.json")
    summary = io.read_json(f"data/validate/{task}/summary.json")
    replicates = summary["replicates"]
    out = f"data/plots/{task}"
    epochs = [r["epoch"] for r in history]

    def curve(label, key, first=0):
        sds = [r[f"{key}_std"] for r in history[first:]] if f"{key}_std" in history[0] else None
        return label, [r[key] for r in history[first:]], sds

    title = spec.title
    if spec.regression:
        figure(f"{out}/val_mae.png", epochs, [curve("Validation MAE", "val_mae")], f"{title}: validation MAE",
               "MAE", replicates)
        figure(f"{out}/val_mae_from_epoch_11.png", epochs[10:], [curve("Validation MAE", "val_mae", 10)],
               f"{title}: validation MAE, first 10 epochs dropped", "MAE", replicates)
    else:
        for name in ("loss", "accuracy"):
            figure(f"{out}/{name}.png", epochs,
                   [curve(f"Training {name}", name), curve(f"Validation {name}", f"val_{name}")],
                   f"{title}: training and validation {name}", name.capitalize(), replicates)


if __name__ == "__main__":
    main(*sys.argv[1:])
