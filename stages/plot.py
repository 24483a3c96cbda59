"""plot: the chapter's figures as PNG, from the validation history.

    python -m stages.plot <task>    reads data/validate/<task>/history.json, writes data/plots/<task>/*.png

IMDB / Reuters: training vs validation loss (figures 4.4, 4.6) and accuracy (4.5, 4.7). Housing: mean
validation MAE per epoch over the folds (4.9) and the same without the first 10 epochs (4.10).
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from stages import io, tasks  # noqa: E402

TITLES = {"imdb": "IMDB holdout", "reuters": "Reuters holdout", "housing": "Housing K-fold"}


def figure(path, epochs, curves, title, ylabel):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (label, values), style in zip(curves, ("bo", "b-")):
        ax.plot(epochs, values, style if len(curves) > 1 else "b-", label=label)
    ax.set(title=title, xlabel="Epochs", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(task):
    spec = tasks.get(task)
    history = io.read_json(f"data/validate/{task}/history.json")
    out = f"data/plots/{task}"
    epochs = [r["epoch"] for r in history]
    col = {k: [r[k] for r in history] for k in history[0]}
    title = TITLES[task]
    if spec.metric == "mae":
        figure(f"{out}/val_mae.png", epochs, [("Validation MAE", col["val_mae"])], f"{title}: validation MAE", "MAE")
        figure(f"{out}/val_mae_from_epoch_11.png", epochs[10:], [("Validation MAE", col["val_mae"][10:])],
               f"{title}: validation MAE, first 10 epochs dropped", "MAE")
    else:
        for key, name in (("loss", "loss"), ("accuracy", "accuracy")):
            figure(f"{out}/{name}.png", epochs,
                   [(f"Training {name}", col[key]), (f"Validation {name}", col[f"val_{key}"])],
                   f"{title}: training and validation {name}", name.capitalize())


if __name__ == "__main__":
    main(*sys.argv[1:])
