"""Nothing stands between TensorFlow's import and stderr: a fatal error while it loads (an illegal instruction
on a CPU without AVX, an x86 Python under Rosetta) still shows its message."""
import os
import signal
import subprocess
import sys

from tests.conftest import ROOT

STAND_IN = """import os
os.write(2, b"F0000 00:00:0.0 1 cpu_check.cc:42] The TensorFlow library was compiled to use AVX\\n")
os.abort()
"""


def test_a_fatal_tensorflow_import_shows_its_message(tmp_path):
    """A stand-in `tensorflow` package that writes to fd 2 and aborts while it is imported: running a training
    stage shows its message on stderr, and the process dies of the abort, before writing anything."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(STAND_IN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    before = sorted((ROOT / "data").rglob("*")) if (ROOT / "data").exists() else []
    proc = subprocess.run([sys.executable, "-m", "stages.train", "housing"], cwd=ROOT, env=env,
                          capture_output=True, timeout=120)
    assert b"cpu_check.cc:42] The TensorFlow library was compiled to use AVX\n" in proc.stderr, proc.stderr
    assert proc.returncode == (3 if sys.platform == "win32" else -signal.SIGABRT)
    assert (sorted((ROOT / "data").rglob("*")) if (ROOT / "data").exists() else []) == before
