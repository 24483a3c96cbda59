"""The book's chapter-4 code (Deep Learning with Python, 2nd ed., listings 4.1-4.29), as one plain script.

Faithful to the book: keras.datasets loaders, float64 `vectorize_sequences` loops, `model.fit` with
validation, the 100- and 500-epoch K-fold runs, the final retraining. The only additions are $DATASETS_MIRROR
(linked in as $KERAS_HOME/datasets, so it runs offline), a seed, and timing lines. Prints one JSON line per section and a
final JSON summary; `bench/run.py` runs it beside the pipeline.

    python bench/book.py [--seed 42] [--quick]     (--quick: 1/10 of every epoch count, for smoke tests)
"""
import argparse
import json
import os
import shutil
import sys
import time

import tempfile

import numpy as np

results, t0 = {}, 0.0


def section(name):
    """Print and record the seconds since the previous section (the book's code is timed in sections)."""
    global t0
    now = time.perf_counter()
    print(json.dumps({"section": name, "seconds": round(now - t0, 2)}), flush=True)
    results.setdefault("seconds", {})[name] = round(now - t0, 2)
    t0 = now


def vectorize_sequences(sequences, dimension=10000):        # the book's listing 4.3
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        for j in sequence:
            results[i, j] = 1.
    return results


def main():
    global t0
    # keras.datasets reads $KERAS_HOME/datasets/; point it at the mirror's files when offline.
    MIRROR = os.environ.get("DATASETS_MIRROR")
    if MIRROR and "://" not in MIRROR:
        home = tempfile.mkdtemp(prefix="keras-home-")
        os.mkdir(os.path.join(home, "datasets"))
        for name in os.listdir(MIRROR):
            try:
                os.symlink(os.path.abspath(os.path.join(MIRROR, name)), os.path.join(home, "datasets", name))
            except OSError:                                     # Windows without the right to make symlinks
                shutil.copyfile(os.path.join(MIRROR, name), os.path.join(home, "datasets", name))
        os.environ["KERAS_HOME"] = home
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tensorflow import keras
    from tensorflow.keras import layers
    from tensorflow.keras.datasets import boston_housing, imdb, reuters

    args = argparse.ArgumentParser()
    args.add_argument("--seed", type=int, default=42)
    args.add_argument("--quick", action="store_true")
    args = args.parse_args()
    E = (lambda n: max(1, n // 10)) if args.quick else (lambda n: n)
    keras.utils.set_random_seed(args.seed)
    t0 = time.perf_counter()

    # 4.1 IMDB
    (train_data, train_labels), (test_data, test_labels) = imdb.load_data(num_words=10000)
    x_train = vectorize_sequences(train_data)
    x_test = vectorize_sequences(test_data)
    y_train = np.asarray(train_labels).astype("float32")
    y_test = np.asarray(test_labels).astype("float32")
    section("imdb_encode")
    model = keras.Sequential([layers.Dense(16, activation="relu"), layers.Dense(16, activation="relu"),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    x_val, partial_x_train = x_train[:10000], x_train[10000:]
    y_val, partial_y_train = y_train[:10000], y_train[10000:]
    history = model.fit(partial_x_train, partial_y_train, epochs=E(20), batch_size=512,
                        validation_data=(x_val, y_val), verbose=0)
    results["imdb_best_epoch"] = int(np.argmin(history.history["val_loss"])) + 1
    section("imdb_validate")
    model = keras.Sequential([layers.Dense(16, activation="relu"), layers.Dense(16, activation="relu"),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=E(4), batch_size=512, verbose=0)
    results["imdb_test_loss"], results["imdb_test_accuracy"] = model.evaluate(x_test, y_test, verbose=0)
    section("imdb_train")
    del x_train, x_test, partial_x_train, x_val

    # 4.2 Reuters
    (train_data, train_labels), (test_data, test_labels) = reuters.load_data(num_words=10000)
    x_train = vectorize_sequences(train_data)
    x_test = vectorize_sequences(test_data)
    y_train = keras.utils.to_categorical(train_labels)
    y_test = keras.utils.to_categorical(test_labels)
    section("reuters_encode")

    def reuters_model():
        model = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dense(64, activation="relu"),
                                  layers.Dense(46, activation="softmax")])
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    model = reuters_model()
    x_val, partial_x_train = x_train[:1000], x_train[1000:]
    y_val, partial_y_train = y_train[:1000], y_train[1000:]
    history = model.fit(partial_x_train, partial_y_train, epochs=E(20), batch_size=512,
                        validation_data=(x_val, y_val), verbose=0)
    results["reuters_best_epoch"] = int(np.argmin(history.history["val_loss"])) + 1
    section("reuters_validate")
    model = reuters_model()
    model.fit(x_train, y_train, epochs=E(9), batch_size=512, verbose=0)
    results["reuters_test_loss"], results["reuters_test_accuracy"] = model.evaluate(x_test, y_test, verbose=0)
    test_labels_copy = np.array(test_labels)
    np.random.shuffle(test_labels_copy)
    results["reuters_random_baseline"] = float(np.mean(np.array(test_labels) == test_labels_copy))
    section("reuters_train")

    # 4.3 Boston housing
    (train_data, train_targets), (test_data, test_targets) = boston_housing.load_data()
    mean = train_data.mean(axis=0)
    train_data -= mean
    std = train_data.std(axis=0)
    train_data /= std
    test_data -= mean
    test_data /= std

    def build_model():
        model = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dense(64, activation="relu"),
                                  layers.Dense(1)])
        model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
        return model

    k = 4
    num_val_samples = len(train_data) // k

    def folds():
        for i in range(k):
            val = slice(i * num_val_samples, (i + 1) * num_val_samples)
            yield (train_data[val], train_targets[val],
                   np.concatenate([train_data[:i * num_val_samples], train_data[(i + 1) * num_val_samples:]]),
                   np.concatenate([train_targets[:i * num_val_samples], train_targets[(i + 1) * num_val_samples:]]))

    all_scores = []
    for val_data, val_targets, partial_train_data, partial_train_targets in folds():
        model = build_model()
        model.fit(partial_train_data, partial_train_targets, epochs=E(100), batch_size=16, verbose=0)
        val_mse, val_mae = model.evaluate(val_data, val_targets, verbose=0)
        all_scores.append(val_mae)
    results["housing_kfold_maes"] = all_scores
    results["housing_kfold_mean_mae"] = float(np.mean(all_scores))
    section("housing_kfold_100")
    all_mae_histories = []
    for val_data, val_targets, partial_train_data, partial_train_targets in folds():
        model = build_model()
        history = model.fit(partial_train_data, partial_train_targets, validation_data=(val_data, val_targets),
                            epochs=E(500), batch_size=16, verbose=0)
        all_mae_histories.append(history.history["val_mae"])
    average_mae_history = [np.mean([x[i] for x in all_mae_histories]) for i in range(E(500))]
    results["housing_best_epoch"] = int(np.argmin(average_mae_history)) + 1
    section("housing_kfold_500")
    model = build_model()
    model.fit(train_data, train_targets, epochs=E(130), batch_size=16, verbose=0)
    results["housing_test_mse"], results["housing_test_mae"] = model.evaluate(test_data, test_targets, verbose=0)
    section("housing_train")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import memory  # ru_maxrss in MB on Linux and macOS; Windows: the peak working set)
    results["peak_rss_mb"] = round(memory.peak_rss_mb())
    print(json.dumps({"book": results}), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
