"""train: retrain from scratch on the whole training set for `epochs` and save the model.

    python -m stages.train <task>    reads data/encoded/<task>/train.npz, writes data/model/<task>.keras
"""
import sys

from stages import io, params, tasks


def main(task):
    spec = tasks.get(task)
    p = params.load("train", task)
    from stages import model as M          # TensorFlow loads (~3 s) only once the params are known good
    data = io.read_npz(f"data/encoded/{task}/train.npz")
    M.seed_everything(p["seed"])
    x = M.Inputs(data)
    model = M.build(spec, p, x.width)
    history, = M.fit([model], spec, [x], [M.targets(spec, p, data["y"])], epochs=p["epochs"],
                     batch_size=p["batch_size"], seeds=[p["seed"]])
    print(f"train@{task}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in history.items()))
    M.save(model, f"data/model/{task}.keras")
    io.write_json(f"data/train/{task}/history.json",
                  [{"epoch": e + 1, **{k: round(v[e], 6) for k, v in history.items()}} for e in range(p["epochs"])])


if __name__ == "__main__":
    main(*sys.argv[1:])
