"""Small file helpers: atomic writes, hashing, and a pickle-safe .npz reader. numpy loads only when an .npz is
read or written (the `download` stage never needs it)."""
import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

# Windows refuses to replace a file (or move a folder) that another process holds open, e.g. a virus scanner or
# an indexer reading a new output for a moment: os.replace fails with PermissionError. There the rename is
# retried for about 1 s before the write fails with its one line. (POSIX renames over open files.)
REPLACE_RETRIES = 10 if os.name == "nt" else 0


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    Whatever fails, the temporary file is removed and `path` keeps its previous content; an OSError (a full
    disk, a file-size limit, a read-only folder) exits with one line naming the file and the system's reason:
    `train@imdb: data/model/imdb.keras: No space left on device`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield Path(tmp)
        _replace(tmp, path)
    except OSError as e:
        other = str(e.filename or "")                   # a file other than ours or its temporaries (a mirror's)
        where = other if other and not os.path.basename(other).startswith(f".{path.name}.") else path
        raise SystemExit(f"{_stage()}{where}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _replace(src, dst):
    for attempt in range(REPLACE_RETRIES + 1):
        try:
            return os.replace(src, dst)
        except PermissionError:
            if attempt == REPLACE_RETRIES:
                raise
            time.sleep(0.02 * (attempt + 1))


def _stage():
    """"train@imdb: " when this process is `python -m stages.train imdb`, else ""."""
    name = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None) or ""
    return f"{name.removeprefix('stages.')}@{sys.argv[1]}: " if name.startswith("stages.") and sys.argv[1:] else ""


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a new temporary folder beside folder `path`; it replaces `path` (and all it held) only if the block
    succeeds. (Two renames: a crash between them leaves no folder, which the next run rebuilds.) An OSError exits
    with one line, as in `atomic_path`."""
    path = Path(path)
    tmp = old = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        old = tmp.with_suffix(".old")
        yield tmp
        if path.exists():
            _replace(path, old)
        _replace(tmp, path)
    except OSError as e:
        raise SystemExit(f"{_stage()}{path}: {e.strerror or e}") from None
    except SystemExit as e:                             # a file of the folder failed: name it where it belongs
        raise SystemExit(str(e.code).replace(str(tmp), str(path))) from None
    finally:
        for leftover in (tmp, old):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)


def write_bytes(path, data):
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path, obj):
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path):
    return json.loads(Path(path).read_text())


def write_npz(path, **arrays):
    import numpy as np
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def read_npz(path):
    """Plain numeric arrays only (our own outputs): never unpickles."""
    import numpy as np
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """The keras .npz files pickle ragged object arrays; rebuilding them needs these globals and nothing else."""
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def _read_npy(fp):
    import numpy as np
    major, _ = np.lib.format.read_magic(fp)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(fp)     # (the 3.0 header differs from 2.0 only in its text encoding)
    if not dtype.hasobject:
        fp.seek(0)
        return np.lib.format.read_array(fp, allow_pickle=False)
    return _ArrayOnlyUnpickler(fp).load()


def read_keras_npz(path, expected_sha256):
    """Load a keras dataset archive after checking its pin; object arrays go through a restricted unpickler."""
    actual = sha256(path)
    if actual != expected_sha256:
        raise SystemExit(f"{path}: sha256 mismatch: expected {expected_sha256}, got {actual}")
    out = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                out[member[:-4]] = _read_npy(io.BytesIO(archive.read(member)))
    return out
