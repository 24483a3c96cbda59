"""download: fetch the task's keras files into data/raw/<task>/, verified against their sha256 pins.

    python -m stages.download <task>

Source: https://storage.googleapis.com/tensorflow/tf-keras-datasets/, or $DATASETS_MIRROR when set (a folder,
or a base URL, holding the same file names). Nothing lands in data/ unless its hash matches the pin.
"""
import os
import sys
from pathlib import Path

from chapter4 import tasks
from chapter4.fetch import DownloadError, fetch


def main(task):
    spec = tasks.get(task)
    mirror = os.environ.get("DATASETS_MIRROR") or None
    out = Path("data/raw") / task
    try:
        for name in spec.files:
            fetch(name, out, mirror)
    except DownloadError as e:             # fetch() never leaves a partial file behind
        raise SystemExit(f"download@{task}: {e}") from None


if __name__ == "__main__":
    main(*sys.argv[1:])
