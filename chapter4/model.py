"""The Keras model of the chapter's network, as users get it: built from chapter4/network.py's layers and
compiled with its loss, metric and optimizer (`build`), seeded (`seed_everything`), and saved (`save`) as the
book's plain Sequential in a byte-reproducible `.keras` file beside the `.npz` weights file numpy inference
reads. Training it is chapter4/training.py's job.
"""
import json
import zipfile
from pathlib import Path

from chapter4 import io, network
from chapter4.backend import keras, tf


def seed_everything(seed):
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build(net):
    """The Keras model of network `net` (a Sequential of its layers), compiled with its loss, metric and
    optimizer: what the `.keras` file saved for users holds. Its initial weights are the run's seeded start."""
    model = keras.Sequential([keras.Input((net.inputs,))] + [layer.keras() for layer in net.layers])
    model.compile(optimizer=keras.optimizers.get({"class_name": net.optimizer,
                                                  "config": {"learning_rate": net.learning_rate}}),
                  loss=net.loss, metrics=[net.metric])
    return model


def save(model, net, path):
    """Run `model` of network `net` as <path>.keras, Keras's file for users, and <path>.npz, the weights file
    numpy inference reads (layout in chapter4/network.py), each written atomically."""
    path = Path(path)
    network.save(path.with_suffix(".npz"), net, [dict(zip(layer.weights, keras_layer.get_weights()))
                                                 for layer, keras_layer in zip(net.layers, model.layers)])
    save_keras(model, path.with_suffix(".keras"))


def save_keras(model, path):
    """model.save, made byte-reproducible: fixed zip timestamps, no `date_saved` in the metadata, and
    config.json's `shared_object_id`s (memory addresses) renumbered 1, 2, ... in order of appearance.
    Stored uncompressed: deflate saves 8% of float32 weights and costs ~0.1 s at every save and load."""
    with io.atomic_path(path) as tmp:
        raw = tmp.with_name(tmp.name + ".raw.keras")
        try:
            model.save(raw)
            with zipfile.ZipFile(raw) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as dst:
                for info in src.infolist():
                    data = src.read(info)
                    if info.filename == "metadata.json":
                        meta = json.loads(data)
                        meta.pop("date_saved", None)
                        data = json.dumps(meta).encode()
                    elif info.filename == "config.json":
                        data = json.dumps(_renumber_shared_ids(json.loads(data), {})).encode()
                    dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data,
                                 compress_type=zipfile.ZIP_STORED)
        finally:
            raw.unlink(missing_ok=True)


def _renumber_shared_ids(node, ids):
    if isinstance(node, dict):
        return {k: (ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else _renumber_shared_ids(v, ids))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_renumber_shared_ids(v, ids) for v in node]
    return node
