"""Chapter 4 of *Deep Learning with Python* (2nd ed.) as a DVC pipeline: one module per stage.

Importing the package also quiets TensorFlow's start-up. While `import tensorflow` loads its C++ libraries,
their static initializers log before TensorFlow applies TF_CPP_MIN_LOG_LEVEL (absl's "All log messages
before absl::InitializeLog() ..." and "oneDNN custom operations are on ..." from port.cc), so that variable
cannot hide them. The first `import tensorflow` of a process therefore runs with file descriptor 2 sent to a
pipe (read into memory: no disk needed) and Python's sys.stderr kept on the real stderr; afterwards what the
C++ code wrote goes on to stderr, except log messages below TF_CPP_MIN_LOG_LEVEL (0: INFO and up shown, 1:
WARNING and up, 2: ERROR and up, 3: FATAL) and absl's "before InitializeLog" notice once a level is set.
Python's warnings and a C++ warning or error at or above the level still show; later logging is TensorFlow's.
"""
import os
import re
import sys

# A C++ log line: absl's "I0000 00:00:1796038439.065424    2588 port.cc:153] ..." or TSL's
# "2026-11-30 11:34:03.123456: I tensorflow/core/platform/cpu_feature_guard.cc:210] ...".
_LOG_LINE = re.compile(rb"(?:([IWEF])\d{4} [\d:.]+ +\d+ |\d{4}-\d\d-\d\d [\d:.]+: ([IWEF]) )[^\]\s]+:\d+\] ")
_ABSL_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def filter_log(data, min_level):
    """The bytes TensorFlow wrote to stderr while loading, without the messages below `min_level`."""
    kept, dropping = [], False
    for line in data.splitlines(keepends=True):
        m = _LOG_LINE.match(line)
        if m:
            dropping = "IWEF".index((m.group(1) or m.group(2)).decode()) < min_level
        elif line.rstrip(b"\r\n") == _ABSL_NOTICE:
            dropping = min_level > 0
        if not dropping:
            kept.append(line)                 # (a line without a prefix continues the message above it)
    return b"".join(kept)


class _QuietTensorFlowImport:
    """A sys.meta_path finder that wraps the first `import tensorflow` in `filter_log`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


class _Loader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        import threading
        try:
            level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL") or 0)
        except ValueError:
            level = 0
        python_stderr = sys.stderr
        python_stderr.flush()
        saved, (r, w) = os.dup(2), os.pipe()
        if _writes_to_fd2(python_stderr):      # Python's own messages (warnings, tracebacks) bypass the filter
            sys.stderr = open(saved, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace",
                              closefd=False)
        chunks = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(r, 1 << 16), b"")))
        reader.start()
        os.dup2(w, 2)
        os.close(w)
        try:
            self.loader.exec_module(module)
        finally:
            sys.stderr.flush()
            sys.stderr = python_stderr
            os.dup2(saved, 2)               # the pipe's last write end closes: the reader sees its end
            os.close(saved)
            reader.join()
            os.close(r)
            kept = filter_log(b"".join(chunks), level)
            while kept:
                kept = kept[os.write(2, kept):]


def _writes_to_fd2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


if not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _QuietTensorFlowImport())
