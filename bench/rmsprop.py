"""Benchmark: the RMSprop step of a training epoch, the ways it can run, back to back in one process.

    DATASETS_MIRROR=... python bench/rmsprop.py [--rounds 7] [--tasks reuters,imdb]

For Reuters and IMDB (params.yaml's network, 5 replicates side by side, one fixed shuffled pass), times one
compiled training epoch with each update, the options interleaved round by round (the machine is shared), and
prints each option's median and range in seconds, and its ratio to `fused` with a paired test:
  fused      TF's fused ResourceApplyRMSProp on velocity variables of our own (chapter4/optimizers.py's FusedRMSprop)
  keras      Keras's own RMSprop.apply (ten elementwise passes) on the same variables
  xla        the plain RMSprop ops in one tf.function(jit_compile=True) called at every step
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chapter4 import datasets, network, params, stats, tasks
from stages import download  # noqa: E402
from chapter4 import batching, multihot, optimizers, stacked, training, model as M  # noqa: E402

import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402
import tensorflow as tf  # noqa: E402


def xla_update(config, variables):
    lr, rho, eps = config["learning_rate"], config["rho"], config["epsilon"]
    velocities = [tf.Variable(tf.zeros(v.shape), trainable=False) for v in variables]

    @tf.function(jit_compile=True)
    def update(grads):
        for g, v, ms in zip(grads, variables, velocities):
            ms.assign(rho * ms + (1 - rho) * tf.square(g))
            v.assign_sub(lr * g / tf.sqrt(ms + eps))
    return update


def options(task, rounds):
    spec = tasks.get(task)
    p = params.load("train", task)
    raw = Path(tempfile.mkdtemp())
    for name in spec.files:
        download.fetch(name, raw, os.environ.get("DATASETS_MIRROR"), progress=False)
    raw_p = {"num_words": p.get("num_words", 10000), "test_split": 0.2}
    flat, splits, y = datasets.load_sequences(raw, task, raw_p)["train"]
    indptr, indices = multihot.multi_hot_csr(flat, splits, raw_p["num_words"])
    x = batching.Inputs({"indptr": indptr, "indices": indices, "num_words": np.int64(raw_p["num_words"])})
    net = network.of(spec, p, x.width)
    seeds = stats.seeds(p["seed"], p["replicates"])
    models = []
    for seed in seeds:
        M.seed_everything(seed)
        models.append(M.build(net))
    k, bs = len(models), p["batch_size"]
    order = np.stack([np.random.RandomState(s).permutation(x.n) for s in seeds])
    fed, take = batching.feed([x] * k, order, bs), batching.batches([x] * k)
    yy = tf.stack([tf.constant(training.targets(net, y))] * k)
    config = models[0].optimizer.get_config()
    made = {}
    for name in ["fused", "keras", "xla"]:
        weights = stacked.stack(models, net)
        variables = [v for w in weights for v in w.values()]
        update = {"fused": lambda: optimizers.FusedRMSprop(config, variables).apply,
                  "keras": lambda: optimizers.KerasOptimizer(models[0].optimizer, variables).apply,
                  "xla": lambda: xla_update(config, variables)}[name]()
        made[name] = tf.function(lambda o, f, w=weights, u=update: training.one_pass(net, w, take, yy, x.n, bs, o, f, u),
                                 autograph=False)
        made[name](tf.constant(order), fed).numpy()                  # trace and warm up
    times = {name: [] for name in made}
    for _ in range(rounds):
        for name, epoch in made.items():
            start = time.perf_counter()
            epoch(tf.constant(order), fed).numpy()
            times[name].append(time.perf_counter() - start)
    for name, ts in times.items():
        line = (f"{task} epoch, {k} replicates, {name:6s}: median {statistics.median(ts):.3f} s "
                f"(min {min(ts):.3f}, max {max(ts):.3f}, n={len(ts)})")
        if name != "fused":           # paired by round: the rounds interleave the options
            ratio = np.array(ts) / np.array(times["fused"])
            line += (f"; / fused: median {np.median(ratio):.2f}x, "
                     f"Wilcoxon signed-rank p = {scipy.stats.wilcoxon(ts, times['fused']).pvalue:.3g}")
        print(line, flush=True)


if __name__ == "__main__":
    args = argparse.ArgumentParser()
    args.add_argument("--rounds", type=int, default=7)
    args.add_argument("--tasks", default="reuters,imdb")
    a = args.parse_args()
    os.chdir(ROOT)
    for task in a.tasks.split(","):
        options(task, a.rounds)
