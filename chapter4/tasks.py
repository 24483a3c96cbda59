"""What differs between the chapter's three problems: files, model head, metric, label names, and how a
sample and a prediction are shown.

Everything else (params, stage code) is shared; a stage looks its task up here by name and asks the Task,
never the name, how to behave.
"""
from dataclasses import dataclass

KERAS_DATASETS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

# sha256 of every file keras downloads for chapter 4. The .npz pins are keras's own
# (keras/src/datasets/*.py); the word-index pins were computed on the canonical files.
SHA256 = {
    "imdb.npz": "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
    "imdb_word_index.json": "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6",
    "reuters.npz": "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
    "reuters_word_index.json": "9b56000edc4b34a32e89fd5a23b2605594682c74efcf7d8f4e2a5514b771e633",
    "boston_housing.npz": "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5",
}


# The 46 topics of keras's Reuters newswires, in label order (keras.datasets.reuters.get_label_names()).
REUTERS_TOPICS = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply", "coffee", "sugar",
    "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp",
    "meal-feed", "alum", "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi", "iron-steel",
    "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog",
    "lead",
)
# The 13 columns of keras's Boston housing features, in order.
HOUSING_FEATURES = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT")


@dataclass(frozen=True, kw_only=True)
class Task:
    name: str
    files: tuple          # what `download` fetches into data/raw/<task>/ (the data first, then the word index)
    text: bool            # sequences of word ids -> multi-hot (IMDB, Reuters) or a feature table (housing)
    kfold: bool           # validated by K-fold (params k, kfold_epochs, kfold_table_epoch), else by a holdout
                          # set (val_size, holdout_epochs)
    outputs: int          # units of the last Dense layer
    output_activation: str | None
    metric: str           # the book's metric: "accuracy" or "mae"
    vocabulary: int = 0   # largest word id + 1 after index_from=3 (bounds num_words)
    losses: tuple = ()    # the losses this head allows (the `loss` param)
    labels: tuple = ()    # the class names in label order; () for regression
    target: str = ""      # what a prediction is called: "topic" (a class), "price" (a value); binary: labels[1]
    features: tuple = ()  # the columns of a feature table
    title: str = ""       # the figures' title

    @property
    def regression(self):
        return not self.labels

    @property
    def classes(self):
        """Number of classes (2 for the sigmoid head), 0 for regression."""
        return len(self.labels)

    def label(self, y):
        """A sample's label as the CLI shows it: the class name, or the value."""
        return float(y) if self.regression else self.labels[int(y)]

    def show(self, row):
        """One prediction (the model's outputs for one sample) as the CLI prints it: the value (regression), the
        second class's probability (binary), or the top class, its probability and the top 3."""
        if self.regression:
            return {self.target: round(float(row[0]), 4)}
        if self.classes == 2:
            return {self.labels[1]: round(float(row[0]), 6)}
        top = sorted(range(len(row)), key=lambda i: -row[i])[:3]        # (stable: ties keep the label order)
        return {self.target: self.labels[top[0]], "probability": round(float(row[top[0]]), 6),
                "top3": [[self.labels[i], round(float(row[i]), 6)] for i in top]}

    def table(self, y, pred):
        """The test set's predictions as CSV lines (header first) and (actual, predicted) pairs for the plot."""
        if self.regression:
            lines = ["actual,predicted"] + [f"{a:.1f},{p:.4f}" for a, p in zip(y, pred[:, 0])]
            return lines, [{"actual": round(float(a), 1), "predicted": round(float(p), 2)}
                           for a, p in zip(y, pred[:, 0])]
        if self.classes == 2:
            lines = [f"label,{self.labels[1]}"] + [f"{a},{p:.6f}" for a, p in zip(y, pred[:, 0])]
            return lines, [{"actual": self.labels[a], "predicted": self.labels[int(p > 0.5)]}
                           for a, p in zip(y, pred[:, 0])]
        top = pred.argmax(axis=1)
        lines = [f"label,{self.target},probability"] + [f"{self.labels[a]},{self.labels[t]},{p[t]:.6f}"
                                                        for a, t, p in zip(y, top, pred)]
        return lines, [{"actual": self.labels[a], "predicted": self.labels[t]} for a, t in zip(y, top)]


TASKS = {
    "imdb": Task(name="imdb", files=("imdb.npz", "imdb_word_index.json"), text=True, kfold=False,
                 outputs=1, output_activation="sigmoid", metric="accuracy", vocabulary=88588,
                 losses=("binary_crossentropy", "mse"), labels=("negative", "positive"), title="IMDB holdout"),
    "reuters": Task(name="reuters", files=("reuters.npz", "reuters_word_index.json"), text=True, kfold=False,
                    outputs=46, output_activation="softmax", metric="accuracy", vocabulary=30983,
                    losses=("categorical_crossentropy", "sparse_categorical_crossentropy"),
                    labels=REUTERS_TOPICS, target="topic", title="Reuters holdout"),
    "housing": Task(name="housing", files=("boston_housing.npz",), text=False, kfold=True,
                    outputs=1, output_activation=None, metric="mae", losses=("mse", "mae", "huber"),
                    target="price", features=HOUSING_FEATURES, title="Housing K-fold"),
}

def get(name):
    try:
        return TASKS[name]
    except KeyError:
        raise SystemExit(f"unknown task {name!r}: expected one of {', '.join(TASKS)}") from None
