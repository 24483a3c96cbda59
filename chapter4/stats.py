"""Replicates: their seeds, and what a number over them reports (no TensorFlow; scipy loads when needed).

Every training run is repeated `replicates` times. Replicate r trains with seed `seed + 1000 * r` (replicate 0
is the single run's seed); a K-fold run's fold f adds f, as the folds of one run always did. A number over the
replicates is their mean, with the sample standard deviation, the Student-t 95% interval of the mean, and the
smallest and largest value: `summary("accuracy", [...])` -> {"accuracy": mean, "accuracy_std": sd,
"accuracy_ci95_low": ..., "accuracy_ci95_high": ..., "accuracy_min": ..., "accuracy_max": ...}. One run has
no spread: then only the value itself is reported.
"""
import numpy as np

SEED_STRIDE = 1000         # > any fold count (k <= 404 training samples), so no two runs share a shuffle seed


def seeds(seed, replicates):
    """The seed of each replicate: seed, seed + 1000, seed + 2000, ..."""
    return [seed + SEED_STRIDE * r for r in range(replicates)]


def summary(name, values, digits=6):
    """Mean of `values` under `name`, and with two or more values their spread under `name_std`, ..."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    out = {name: round(mean, digits)}
    if len(values) < 2:
        return out
    sd = float(values.std(ddof=1))
    from scipy.special import stdtrit        # Student's t quantile (what scipy.stats.t.ppf calls; 1 s less import)
    half = float(stdtrit(len(values) - 1, 0.975)) * sd / np.sqrt(len(values))
    low, high = mean - half, mean + half
    return out | {f"{name}_std": round(sd, digits), f"{name}_ci95_low": round(float(low), digits),
                  f"{name}_ci95_high": round(float(high), digits), f"{name}_min": round(float(values.min()), digits),
                  f"{name}_max": round(float(values.max()), digits)}


def mean_curves(histories):
    """Per-epoch means of history dicts ({"loss": [per epoch], ...}) over runs (e.g. the folds of a replicate)."""
    return {k: np.mean([h[k] for h in histories], axis=0) for k in histories[0]}


def curves(histories, digits=6):
    """Per-epoch records over replicates' histories: [{"epoch": 1, "loss": mean, "loss_std": sd, "loss_min": ...,
    "loss_max": ...}, ...] (the spread only with two or more replicates: sample sd, min, max)."""
    keys, n = list(histories[0]), len(histories)
    values = {k: np.array([h[k] for h in histories], dtype=np.float64) for k in keys}     # [replicates, epochs]
    records = []
    for e in range(values[keys[0]].shape[1]):
        record = {"epoch": e + 1}
        for k in keys:
            column = values[k][:, e]
            record[k] = round(float(column.mean()), digits)
            if n > 1:
                record |= {f"{k}_std": round(float(column.std(ddof=1)), digits),
                           f"{k}_min": round(float(column.min()), digits),
                           f"{k}_max": round(float(column.max()), digits)}
        records.append(record)
    return records
