"""train: retrain from scratch on the whole training set for `epochs`, once per replicate, and save the models.

    python -m stages.train <task>    reads data/encoded/<task>/train.npz, writes data/model/<task>/

Replicate r trains with seed `seed + 1000 * r` (chapter4/stats.py); all replicates train side by side in one
graph. Each is saved as the book's plain Keras model, data/model/<task>/replicate-<r>.keras, and as the
weights file numpy inference reads, replicate-<r>.npz (layout in chapter4/network.py); the training
history (data/train/<task>/history.json) is the per-epoch mean over replicates with its spread.
"""
import sys

from chapter4 import io, network, params, stats, tasks


def main(task):
    spec = tasks.get(task)
    p = params.load("train", task)
    from chapter4 import model, training     # TensorFlow loads (~3 s) only once the params are known good
    from chapter4.batching import Inputs
    data = io.read_npz(f"data/encoded/{task}/train.npz")
    x = Inputs(data)
    net = network.of(spec, p, x.width)
    y = training.targets(net, data["y"])
    seeds, models = stats.seeds(p["seed"], p["replicates"]), []
    for seed in seeds:
        model.seed_everything(seed)
        models.append(model.build(net))
    histories = training.fit(models, net, [x] * len(models), [y] * len(models), epochs=p["epochs"],
                         batch_size=p["batch_size"], seeds=seeds)
    for r, history in enumerate(histories):
        print(f"train@{task}: replicate {r}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in history.items()))
    with io.atomic_dir(f"data/model/{task}") as out:
        for r, trained in enumerate(models):
            model.save(trained, net, out / f"replicate-{r}")
    io.write_json(f"data/train/{task}/history.json", stats.curves(histories))


if __name__ == "__main__":
    main(*sys.argv[1:])
