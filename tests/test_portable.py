"""Every entry point runs where POSIX-only modules and attributes do not exist (Windows), and what this machine
cannot run (another OS) is checked in the source: no POSIX-only name at import time, no shell syntax in the
code's subprocesses, memory figures in one unit."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, without_load_notice

# Run a module or script as Windows would have it: no SIGPIPE, SIGKILL or SIGXFSZ, no os.wait4 or os.getloadavg,
# and our code (stages, bench, the script run) cannot import `resource`, `fcntl` or `termios`. (Libraries keep
# them: DVC's dependencies import them on POSIX, and take their Windows path there.)
WINDOWS_LIKE = r"""
import builtins, os, runpy, signal, sys
for name in ("SIGPIPE", "SIGKILL", "SIGXFSZ"):
    delattr(signal, name)
for name in ("wait4", "getloadavg"):
    delattr(os, name)
real_import = builtins.__import__
def windows_import(name, globals=None, *args, **kwargs):
    ours = (globals or {}).get("__name__", "").split(".")[0] in ("stages", "chapter4", "bench", "__main__")
    if ours and name.split(".")[0] in ("resource", "fcntl", "termios"):
        raise ImportError(f"No module named {name!r} (as on Windows)")
    return real_import(name, globals, *args, **kwargs)
builtins.__import__ = windows_import
target, sys.argv = sys.argv[1], sys.argv[1:]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""
STAGES = sorted(p.stem for p in (ROOT / "stages").glob("*.py")
                if 'if __name__ == "__main__"' in p.read_text())
BENCH = ["bench/book.py", "bench/overhead.py", "bench/run.py", "bench/runners.py", "bench/seeds.py", "bench/sweep.py",
         "bench/variations.py", "bench/vocabulary.py"]
CLIS = ([("stages." + m, ["--help"]) for m in STAGES] + [(b, ["--help"]) for b in BENCH] +
        [("stages.compare", ["HEAD", "workspace", "--json"])])          # a real comparison: runs main's set-up


def cli(target, args, cwd, windows_like):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    prefix = [sys.executable, "-c", WINDOWS_LIKE] if windows_like else [sys.executable] + (
        [] if target.endswith(".py") else ["-m"])
    path = str(ROOT / target) if target.endswith(".py") else target
    proc = subprocess.run([*prefix, path, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, without_load_notice(proc.stderr)      # (the notice holds times and pids)


def test_the_simulation_removes_what_windows_lacks(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os, signal, sys\nprint(hasattr(signal, 'SIGPIPE'), hasattr(os, 'wait4'))\n"
                     "import resource\n")
    code, out, err = cli(str(probe), [], tmp_path, windows_like=True)
    assert code == 1 and out == "False False\n" and "ImportError: No module named 'resource' (as on Windows)" in err, err


@pytest.mark.parametrize("target, args", CLIS, ids=[" ".join([t, *a]) for t, a in CLIS])
def test_every_cli_runs_the_same_without_posix_only_modules(target, args, tmp_path):
    """--help (or the one usage line) of each entry point, and a real `stages.compare`, give the same exit code,
    output and errors as here when POSIX-only modules and attributes are missing."""
    cwd = ROOT if args[0] != "--help" else tmp_path      # (stages.params --help would write data/params.ok)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    plain = cli(target, args, cwd, windows_like=False)
    assert "Traceback" not in plain[2]
    assert cli(target, args, cwd, windows_like=True) == plain


# --- what cannot run here: the source ------------------------------------------------------------------------

SOURCES = sorted([*(ROOT / "stages").glob("*.py"), *(ROOT / "chapter4").glob("*.py"), *(ROOT / "bench").glob("*.py"), *(ROOT / ".ci").glob("*.py")])
POSIX_MODULES = {"resource", "fcntl", "termios", "pwd", "grp", "posix"}


def top_level_imports(tree):
    """Modules imported outside any function, try/except ImportError or `if` (what runs at import time)."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_posix_only_module_at_import_time(path):
    assert not set(top_level_imports(ast.parse(path.read_text()))) & POSIX_MODULES


POSIX_ONLY = [(r"signal\.SIG(?!INT\b|TERM\b|_DFL\b|_IGN\b)[A-Z]+", "a POSIX-only signal"),
              (r"os\.(wait4|wait3|fork|getloadavg|sysconf|getuid|killpg|setsid)\b", "a POSIX-only os function"),
              (r"ru_maxrss", "ru_maxrss (KiB on Linux, bytes on macOS)"), (r"/proc/", "Linux's /proc"),
              (r"shell=True|shell=isinstance", "a shell command line"), (r"/dev/null", "/dev/null"),
              (r"\bxdg-open\b", "xdg-open")]
# bench/memory.py is where the OS differences are handled, each behind a check; compare.py sets SIGPIPE only
# where it exists; the SHIM text of bench/sweep.py runs POSIX-only code only where POSIX holds (exec).
ALLOWED = {"bench/memory.py": {"ru_maxrss", "/proc/", "os.wait4"},
           "stages/compare.py": {"signal.SIGPIPE"}}


def test_the_source_check_finds_what_it_looks_for():
    found = [why for pattern, why in POSIX_ONLY
             for line in ["signal.signal(signal.SIGPIPE, x)", "os.wait4(pid, 0)", "u.ru_maxrss / 1024",
                          "open('/proc/self/status')", "run(cmd, shell=True)", "x > /dev/null"]
             if re.search(pattern, line)]
    assert len(found) == 6 and not re.search(POSIX_ONLY[0][0], "signal.signal(signal.SIGINT, signal.SIG_DFL)")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_posix_only_call_outside_a_check(path):
    rel = path.relative_to(ROOT).as_posix()
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("#", 1)[0]                            # (comments may name them)
        for pattern, why in POSIX_ONLY:
            for match in re.finditer(pattern, code):
                if match.group(0) not in ALLOWED.get(rel, set()) and not any(
                        match.group(0).startswith(a) for a in ALLOWED.get(rel, set())):
                    problems.append(f"{rel}:{number}: {why}: {line.strip()}")
    assert problems == []


# --- bench/memory.py: one unit everywhere ---------------------------------------------------------------------

sys.path.insert(0, str(ROOT))
from bench import memory  # noqa: E402

ALLOCATE = [sys.executable, "-c", "import time; x = bytearray(400 * 2**20); x[::4096] = b'1' * len(x[::4096]); "
            "time.sleep(0.5); print('done')"]

# Linux keeps a process's peak RSS across fork and exec, so a child's ru_maxrss is at least its parent's size at
# the fork: the measuring process must be small (bench/'s scripts are; pytest's, after the model tests, holds GBs).
# Each measurement therefore runs in a fresh interpreter; `patch` is code run there first.
MEASURE = """import json, sys
sys.path.insert(0, {root!r})
from bench import memory
{patch}
print(json.dumps(memory.measure({cmd!r}, capture=True)))
"""


def measured(patch=""):
    code = MEASURE.format(root=str(ROOT), patch=patch, cmd=ALLOCATE)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_child_s_peak_is_in_mb_here():
    seconds, code, peak, user, system, out = measured()
    assert (code, out) == (0, "done\n") and 400 < peak < 600 and user + system > 0


def test_maxrss_units_per_os(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")              # bytes
    assert memory._maxrss_mb(400 * 2**20) == 400
    monkeypatch.setattr(sys, "platform", "linux")               # KiB
    assert memory._maxrss_mb(400 * 1024) == 400


# Windows' psutil has peak_wset, Linux's not: the stand-in reads the peak from /proc/<pid>/status, VmHWM.
AS_ON_WINDOWS = """import os, psutil
def peak_wset(self):
    with open(f"/proc/{self.pid}/status") as f:
        status = f.read()
    if "VmHWM:" not in status:                               # a zombie, as psutil says it
        raise psutil.ZombieProcess(self.pid)
    return type("Memory", (), {"peak_wset": int(status.split("VmHWM:")[1].split()[0]) * 1024})()
del os.wait4
psutil.Process.memory_info = peak_wset
"""


def test_a_child_s_peak_without_wait4_is_the_same():
    """Windows' path (psutil's peak working set, polled) gives the same figure as os.wait4's here."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("simulates Windows' psutil figures from Linux's /proc")
    posix_peak = measured()[2]
    seconds, code, peak, user, system, out = measured(AS_ON_WINDOWS)
    assert (code, out) == (0, "done\n") and abs(peak - posix_peak) < 20 and user + system > 0


# --- chapter4/io.py: a replace Windows refuses while another process holds the file open ---------------------

def refusing_replace(monkeypatch, refusals):
    """os.replace as on Windows while a reader holds the target open `refusals` times; sleeps skipped."""
    from chapter4 import io
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) <= refusals:
            raise PermissionError(13, "Access is denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(io, "REPLACE_RETRIES", 10)                 # Windows' setting
    monkeypatch.setattr(io.os, "replace", replace)
    monkeypatch.setattr(io.time, "sleep", lambda s: None)
    return io, calls


def test_a_replace_refused_for_a_moment_is_retried(monkeypatch, tmp_path):
    io, calls = refusing_replace(monkeypatch, 3)
    (tmp_path / "out.json").write_text("old")
    io.write_json(tmp_path / "out.json", {"a": 1})
    assert io.read_json(tmp_path / "out.json") == {"a": 1} and len(calls) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_replace_refused_for_good_fails_in_one_line_and_keeps_the_old_file(monkeypatch, tmp_path):
    io, calls = refusing_replace(monkeypatch, 100)
    (tmp_path / "out.json").write_text("old")
    with pytest.raises(SystemExit) as e:
        io.write_json(tmp_path / "out.json", {"a": 1})
    assert str(e.value) == f"{tmp_path / 'out.json'}: Access is denied" and len(calls) == 11
    assert (tmp_path / "out.json").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
