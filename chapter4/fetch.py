"""Fetching keras's dataset files: over HTTP(S) with retries, or copied from a mirror folder, and kept only
once the file's sha256 matches its pin (chapter4/tasks.py SHA256). Used by the `download` stage, the tests'
data fixture and bench/.
"""
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from chapter4 import io, tasks

RETRIES, BACKOFF_S, TIMEOUT_S = 4, 1.0, 30
HINT = "set DATASETS_MIRROR to a folder or base URL holding the keras dataset files to work offline"


class DownloadError(Exception):
    def __init__(self, message, retry=False):
        super().__init__(message)
        self.retry = retry


def _fetch_url(url, dest, progress, timeout):
    """One HTTP(S) attempt into `dest`; raises DownloadError (retryable or not) with a one-line reason."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as f:
            total, done, shown = int(r.headers.get("Content-Length") or 0), 0, -1
            while block := r.read(1 << 16):
                f.write(block)
                done += len(block)
                pct = done * 100 // total if total else -1
                if progress and total > 1 << 20 and pct // 10 != shown:
                    shown = pct // 10
                    print(f"  {dest.name.split('.')[1]}: {done >> 20}/{total >> 20} MB ({pct}%)",
                          file=sys.stderr, flush=True)
            if total and done != total:
                raise DownloadError(f"{url}: connection closed after {done} of {total} bytes", retry=True)
    except urllib.error.HTTPError as e:              # 5xx may pass; 4xx will not
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}", retry=e.code >= 500) from e
    except (urllib.error.URLError, OSError) as e:    # timeouts, refused/reset connections; not DNS failures
        reason = getattr(e, "reason", e)
        raise DownloadError(f"{url}: {reason}", retry=not isinstance(reason, socket.gaierror)) from e


def fetch(name, dest_dir, mirror=None, retries=RETRIES, backoff=BACKOFF_S, progress=True, timeout=TIMEOUT_S):
    """Put `name` into dest_dir once its sha256 matches tasks.SHA256[name]. Returns the final path."""
    dest_dir = Path(dest_dir)
    final = dest_dir / name
    expected = tasks.SHA256[name]
    with io.atomic_path(final) as tmp:
        base = mirror if mirror is not None else tasks.KERAS_DATASETS_URL
        if "://" not in base:                                # a local mirror folder
            src = Path(base) / name
            if not src.is_file():
                raise DownloadError(f"{src}: no such file in DATASETS_MIRROR {base}")
            shutil.copyfile(src, tmp)
        else:
            url = base.rstrip("/") + "/" + name
            for attempt in range(retries):
                try:
                    _fetch_url(url, tmp, progress, timeout)
                    break
                except DownloadError as e:
                    if attempt == retries - 1 or not e.retry:
                        if mirror is None:
                            raise DownloadError(f"{e} ({HINT})") from e
                        raise
                    print(f"  {e}; retrying in {backoff * 2 ** attempt:.0f} s", file=sys.stderr)
                    time.sleep(backoff * 2 ** attempt)
        actual = io.sha256(tmp)
        if actual != expected:
            raise DownloadError(f"{name}: sha256 mismatch: expected {expected}, got {actual}")
    return final


def fill_mirror(folder):
    """Make `folder` a whole mirror of the pinned files: each one missing or not matching its pin is fetched from
    the canonical URL (CI keeps the folder between runs and reads it as $DATASETS_MIRROR). A failure: one line."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, pin in sorted(tasks.SHA256.items()):
        if not (folder / name).is_file() or io.sha256(folder / name) != pin:
            try:
                fetch(name, folder)
            except DownloadError as e:
                raise SystemExit(f"datasets: {e}") from None
