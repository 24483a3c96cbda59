"""predict and decode: the test-set stage, the CLI on raw text and numbers, the book's decoded review."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from chapter4 import datasets, tasks
from tests.conftest import ROOT, run

REVIEWS = [  # written for this test in the style of IMDB reviews: (text, positive?)
    ("This film was brilliant. The acting was superb, the story moving and beautifully shot. "
     "One of the best movies I have seen in years, I loved every minute of it.", True),
    ("An absolute masterpiece with a wonderful cast and a great script. Highly recommended, a must see.", True),
    ("I really enjoyed this movie. Funny, touching and the performances are excellent throughout.", True),
    ("A beautiful, perfect little film. The director did an amazing job and the music is wonderful.", True),
    ("What a waste of time. The plot made no sense, the acting was terrible and the dialogue awful. "
     "Worst movie I have seen in years, avoid it.", False),
    ("Boring, stupid and badly made. I wanted to walk out after twenty minutes. Horrible.", False),
    ("The worst film ever. Poor script, bad acting, no story at all. Don't waste your money.", False),
    ("Utterly dull and pointless. The characters are annoying and the ending is ridiculous.", False),
]


def cli(project, task, text, *args):
    return subprocess.run([sys.executable, "-m", "stages.predict", task, *args], cwd=project, input=text,
                          capture_output=True, text=True)


def test_stage_writes_test_set_predictions(pipeline):
    for task in tasks.TASKS:
        with open(pipeline / f"data/predict/{task}/test.csv") as f:
            rows = list(csv.DictReader(f))
        test = np.load(pipeline / f"data/encoded/{task}/test.npz")
        assert len(rows) == len(test["y"])
        pairs = json.loads((pipeline / f"data/predict/{task}/pairs.json").read_text())
        assert len(pairs) == len(rows) and set(pairs[0]) == {"actual", "predicted"}
    with open(pipeline / "data/predict/reuters/test.csv") as f:
        first = next(csv.DictReader(f))
    assert first["label"] in tasks.REUTERS_TOPICS and first["topic"] in tasks.REUTERS_TOPICS
    shown = json.loads(run("dvc plots show --json", pipeline).stdout)["data"]
    [confusion] = shown["data/predict/reuters/pairs.json"]
    assert confusion["content"]["data"]["values"][0]["actual"] in tasks.REUTERS_TOPICS
    assert "rect" in json.dumps(confusion["content"])                # vega's confusion-matrix cells


def test_reviews_are_classified(pipeline):
    proc = cli(pipeline, "imdb", "\n".join(t for t, _ in REVIEWS) + "\n")
    assert proc.returncode == 0, proc.stderr
    outs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(outs) == len(REVIEWS) and all(0 <= o["positive"] <= 1 for o in outs)
    right = sum((o["positive"] > 0.5) == good for o, (_, good) in zip(outs, REVIEWS))
    assert right >= 7, outs


def test_reuters_topic_from_a_file(pipeline, tmp_path):
    text = tmp_path / "wires.txt"
    text.write_text("The company said its net profit rose to 12 mln dlrs in the first quarter, shr 1.20 dlrs, "
                    "revs up 15 pct\n")
    proc = cli(pipeline, "reuters", "", str(text))
    [out] = [json.loads(line) for line in proc.stdout.splitlines()]
    assert out["topic"] in tasks.REUTERS_TOPICS and out["top3"][0] == [out["topic"], out["probability"]]
    assert [t for t, _ in out["top3"]] == [t for t, _ in sorted(out["top3"], key=lambda x: -x[1])]


def test_housing_raw_features_match_the_test_set_prediction(pipeline, raw):
    (_, _), (x_test, _) = datasets.load_housing(raw / "housing", {"test_split": 0.2})
    line = ",".join(repr(float(v)) for v in x_test[0])
    proc = cli(pipeline, "housing", line + "\n")
    with open(pipeline / "data/predict/housing/test.csv") as f:
        first = next(csv.DictReader(f))
    assert json.loads(proc.stdout)["price"] == pytest.approx(float(first["predicted"]), abs=1e-3)


def test_bad_lines_are_reported_and_the_rest_still_print(pipeline):
    good = "0.1,18,2.3,0,0.5,6.5,65,4,1,296,15,396,5"
    proc = cli(pipeline, "housing", f"{good}\n\n1,2,3\n{good.replace('18', 'abc')}\n{good}\n")
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 2
    assert proc.stderr.splitlines() == ["predict: line 2: empty input",
                                        "predict: line 3: expected 13 comma-separated numbers, got 3",
                                        "predict: line 4: not a number: 'abc'"]
    proc = cli(pipeline, "imdb", "great movie\n   \nawful movie\n")
    assert proc.returncode == 1 and len(proc.stdout.splitlines()) == 2
    assert proc.stderr.strip() == "predict: line 2: empty input"


def test_tokenizer_round_trips_the_dataset(raw):
    """Words of real reviews, tokenized back, give the dataset's own ids (OOV 2 for rare words)."""
    word_index = datasets.load_word_index(raw / "imdb", "imdb")
    reverse = {rank + 3: w for w, rank in word_index.items()}
    flat, splits, _ = datasets.load_sequences(raw / "imdb", "imdb", {"num_words": 10000})["test"]
    for r in range(300):
        ids = flat[splits[r]:splits[r + 1]].tolist()
        words = [reverse[i] for i in ids[1:] if i > 2]
        assert datasets.tokenize(" ".join(words), word_index, 10000) == [1] + [i for i in ids[1:] if i > 2]
    assert datasets.tokenize("Great, GREAT movie!!! zzqx", word_index, 10000)[1:4] == [word_index["great"] + 3] * 2 + [
        word_index["movie"] + 3]
    assert datasets.tokenize("zzqxw", word_index, 10000) == [1, 2]


def test_decode_prints_the_books_first_review(pipeline):
    proc = run([sys.executable, "-m", "stages.decode", "imdb", "0"], pipeline)
    review = json.loads(proc.stdout)
    assert review["text"].startswith("? this film was just brilliant casting location scenery story direction")
    assert review["label"] == "positive"
    proc = run([sys.executable, "-m", "stages.decode", "reuters", "0", "--split", "test"], pipeline)
    wire = json.loads(proc.stdout)
    assert wire["text"].startswith("? ") and wire["label"] in tasks.REUTERS_TOPICS
    proc = run([sys.executable, "-m", "stages.decode", "imdb", "25000"], pipeline, check=False)
    assert proc.returncode != 0
    assert proc.stderr == "decode: index must be between 0 and 24999 for the train split, got 25000\n"


def test_predict_needs_the_weights_files_inference_reads(tmp_path):
    """The CLI runs on the replicate-<r>.npz files numpy inference loads, with no .keras file beside them, and
    says in one line what to run when they are missing (a .keras file alone is not a trained model for it)."""
    from chapter4 import io, network
    net = network.Network(inputs=13, layers=(network.Dense(4, "relu"), network.Dense(1)), loss="mse",
                          metric="mae", optimizer="rmsprop", learning_rate=0.001)
    rng = np.random.default_rng(0)
    weights = [{"kernel": rng.normal(size=(13, 4)), "bias": np.zeros(4)},
               {"kernel": rng.normal(size=(4, 1)), "bias": np.ones(1)}]
    folder = tmp_path / "data/model/housing"
    network.save(folder / "replicate-0.npz", net, weights)
    io.write_json(tmp_path / "data/encoded/housing/stats.json", {"mean": [0.0] * 13, "std": [1.0] * 13})
    line = ",".join(["0.5"] * 13) + "\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "stages.predict", "housing"], cwd=tmp_path, input=line,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and set(json.loads(proc.stdout)) == {"price"}, proc.stderr
    (folder / "replicate-0.npz").rename(folder / "replicate-0.keras")
    proc = subprocess.run([sys.executable, "-m", "stages.predict", "housing"], cwd=tmp_path, input=line,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == ("predict: no trained models in data/model/housing/: run `dvc repro train@housing` "
                           "(or `dvc pull`) first\n")
