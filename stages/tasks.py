"""What differs between the chapter's three problems: files, model head, metric.

Everything else (params, stage code) is shared; a stage looks its task up here by name.
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


@dataclass(frozen=True)
class Task:
    name: str
    files: tuple          # what `download` fetches into data/raw/<task>/
    text: bool            # sequences of word ids -> multi-hot (IMDB, Reuters) or a feature table (housing)
    outputs: int          # units of the last Dense layer
    output_activation: str | None
    metric: str           # the book's metric: "accuracy" or "mae"
    vocabulary: int = 0   # largest word id + 1 after index_from=3 (bounds num_words)

    @property
    def classes(self):
        """Number of classes (2 for the sigmoid head), 0 for regression."""
        return 0 if self.metric == "mae" else max(self.outputs, 2)


TASKS = {
    "imdb": Task("imdb", ("imdb.npz", "imdb_word_index.json"), True, 1, "sigmoid", "accuracy", 88588),
    "reuters": Task("reuters", ("reuters.npz", "reuters_word_index.json"), True, 46, "softmax", "accuracy",
                    30983),
    "housing": Task("housing", ("boston_housing.npz",), False, 1, None, "mae"),
}

# The 46 topics of keras's Reuters newswires, in label order (keras.datasets.reuters.get_label_names()).
REUTERS_TOPICS = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply", "coffee", "sugar",
    "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp",
    "meal-feed", "alum", "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi", "iron-steel",
    "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog",
    "lead",
)


def get(name):
    try:
        return TASKS[name]
    except KeyError:
        raise SystemExit(f"unknown task {name!r}: expected one of {', '.join(TASKS)}") from None
