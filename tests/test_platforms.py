"""requirements.txt installs on every supported platform and Python from wheels alone, and it is complete there.

One uv resolver call per platform and Python (uv's --python-platform evaluates the lock's environment markers for
the target; pip's --platform would evaluate them for this machine). Each call may use only wheels for that
platform, except the pure-Python packages PyPI publishes as source only (SDISTS), and must resolve to exactly the
lock's pins that apply there: no pin missing, none added. No interpreter of the target version is needed: uv
resolves for --python-version with this one. Needs PyPI; without it every test here is skipped with the reason.
"""
import concurrent.futures
import importlib.util
import os
import re
import subprocess
import sys
import urllib.request

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

# platform -> uv's --python-platform, the oldest OS it must install on, and the marker values there.
PLATFORMS = {
    "Linux x86-64": ("x86_64-manylinux_2_28", {}, {"sys_platform": "linux", "platform_machine": "x86_64"}),
    "Linux aarch64": ("aarch64-manylinux_2_28", {}, {"sys_platform": "linux", "platform_machine": "aarch64"}),
    "macOS arm64": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "12.0"},
                    {"sys_platform": "darwin", "platform_machine": "arm64"}),
    "Windows amd64": ("x86_64-pc-windows-msvc", {}, {"sys_platform": "win32", "platform_machine": "AMD64"}),
}
PYTHONS = ["3.11", "3.12", "3.13"]
SDISTS = {"antlr4-python3-runtime"}          # pure Python, published as a source archive only
LOCK = (ROOT / "requirements.txt").read_text()


def pins(lock, environment=None):
    """{name: version} of a lock's `name==version [; marker]` lines whose marker holds in `environment` (all
    lines when None)."""
    out = {}
    for line in lock.splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)(?: ; (.+))?", line.strip())
        if m and (environment is None or m.group(3) is None or Marker(m.group(3)).evaluate(environment)):
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def resolve(lock, platform, python, source):
    """uv's resolution of `lock` (written to file `source`) for one platform and Python, wheels only but
    SDISTS: (ok, {name: version} or uv's error)."""
    target, env, _ = PLATFORMS[platform]
    source.write_text(lock)
    wheels_only = [arg for name in sorted(set(pins(lock)) - SDISTS) for arg in ("--only-binary", name)]
    proc = subprocess.run([sys.executable, "-m", "uv", "pip", "compile", str(source), "--python-platform", target,
                           "--python-version", python, "--python", sys.executable, "--no-python-downloads",
                           "--no-config", "--no-header", "--no-annotate", "--quiet", *wheels_only],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return False, proc.stderr.strip()
    return True, pins(proc.stdout)


def problems(lock, platform, python, result):
    """What is wrong with the lock on one platform and Python, one line each, naming platform and package."""
    ok, resolved = result
    where = f"{platform}, Python {python}"
    if not ok:
        messages = []                                 # uv wraps a message at the terminal's width (COLUMNS):
        for line in resolved.splitlines():              # its deeper-indented lines continue the one above
            if messages and re.match(r"\s{3,}\S", line):
                messages[-1] += " " + line.strip()
            else:
                messages.append(line)
        return [f"{where}: {line.strip()}" for line in messages if "cause:" in line or "error" in line]
    _, _, markers = PLATFORMS[platform]
    expected = pins(lock, {**markers, "python_version": python, "python_full_version": python + ".0",
                           "implementation_name": "cpython", "platform_python_implementation": "CPython",
                           "os_name": "nt" if markers["sys_platform"] == "win32" else "posix"})
    expected.pop("needs-python-3-11-3-12-or-3-13", None)
    return ([f"{where}: {name}=={version} is not in the lock" for name, version in resolved.items()
             if name not in expected] +
            [f"{where}: the lock pins {name}=={version}, resolved {resolved[name]}" for name, version in
             expected.items() if name in resolved and resolved[name] != version] +
            [f"{where}: the lock pins {name}=={version}, not needed here" for name, version in expected.items()
             if name not in resolved])


# The lock with a broken TensorFlow choice (tensorflow-cpu everywhere, as before requirements.in) and with a pin
# left out: the check must name the platform and the package.
BROKEN = {"tensorflow-cpu everywhere": re.sub(r"(?m)^(tensorflow-cpu==\S+) ; .*$", r"\1", LOCK),
          "no pywin32": re.sub(r"(?m)^pywin32==.*\n", "", LOCK)}
CASES = [(LOCK, platform, python) for platform in PLATFORMS for python in PYTHONS] + [
    (BROKEN["tensorflow-cpu everywhere"], "macOS arm64", "3.12"), (BROKEN["no pywin32"], "Windows amd64", "3.12")]


def relock(out):
    """requirements.in compiled as .ci/lock.py does, into `out` (a copy of requirements.txt: its pins are uv's
    preferences): its pins and markers, or uv's error."""
    spec = importlib.util.spec_from_file_location("lock", ROOT / ".ci" / "lock.py")
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    out.write_text(LOCK)
    command = [str(out) if word == "requirements.txt" else word for word in lock.COMMAND]
    proc = subprocess.run([sys.executable, "-m", *command, "--no-config", "--quiet"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    return proc.stderr.strip() if proc.returncode else lines(out.read_text())


def lines(lock):
    return sorted(line for line in lock.splitlines() if re.match(r"[A-Za-z0-9]", line))


@pytest.fixture(scope="module")
def resolutions(tmp_path_factory):
    if importlib.util.find_spec("uv") is None:
        pytest.skip("uv is not installed (requirements.txt installs it)")
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=20).close()
    except OSError as e:
        pytest.skip(f"PyPI cannot be reached ({e}): the lock cannot be resolved for other platforms")
    tmp = tmp_path_factory.mktemp("platforms")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = {case: pool.submit(resolve, *case, tmp / f"lock{i}.txt") for i, case in enumerate(CASES)}
        futures["relock"] = pool.submit(relock, tmp / "requirements.txt")
        return {case: future.result() for case, future in futures.items()}


def test_the_lock_is_requirements_in_compiled(resolutions):
    assert resolutions["relock"] == lines(LOCK), "requirements.txt is not requirements.in's lock: python .ci/lock.py"


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_lock_installs_from_wheels_exactly_as_pinned(platform, python, resolutions):
    result = resolutions[(LOCK, platform, python)]
    assert problems(LOCK, platform, python, result) == []
    print(f"{platform}, Python {python}: {len(result[1])} packages, wheels only but {sorted(SDISTS)}")


def test_the_check_names_the_platform_and_the_package(resolutions):
    cpu = problems(BROKEN["tensorflow-cpu everywhere"], "macOS arm64", "3.12",
                   resolutions[(BROKEN["tensorflow-cpu everywhere"], "macOS arm64", "3.12")])
    assert cpu and all(line.startswith("macOS arm64, Python 3.12: ") for line in cpu)
    assert any("tensorflow-cpu==2.21.0 has no wheels with a matching platform tag" in line for line in cpu), cpu
    missing = problems(BROKEN["no pywin32"], "Windows amd64", "3.12",
                       resolutions[(BROKEN["no pywin32"], "Windows amd64", "3.12")])
    assert len(missing) == 1 and re.fullmatch(r"Windows amd64, Python 3\.12: pywin32==\S+ is not in the lock",
                                              missing[0]), missing


def test_the_pin_check_reads_markers_per_platform():
    lock = ("a==1 ; sys_platform == 'win32'\nb==2 ; platform_machine == 'arm64' and sys_platform == 'darwin'\n"
            "c==3\n# d==4\n")
    assert pins(lock) == {"a": "1", "b": "2", "c": "3"}
    assert problems(lock, "Windows amd64", "3.11", (True, {"a": "1", "c": "3"})) == []
    assert problems(lock, "macOS arm64", "3.13", (True, {"b": "2", "c": "4", "e": "5"})) == [
        "macOS arm64, Python 3.13: e==5 is not in the lock",
        "macOS arm64, Python 3.13: the lock pins c==3, resolved 4"]
    assert problems(lock, "Linux aarch64", "3.12", (True, {})) == [
        "Linux aarch64, Python 3.12: the lock pins c==3, not needed here"]
