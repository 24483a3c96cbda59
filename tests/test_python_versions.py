"""Supported Pythons, said once and enforced where the README's install starts: requirements.txt's first line is
an empty wheel tagged for exactly CPython 3.11-3.13, so pip refuses any other Python in one line, before it
resolves a single pin (3.10 lacks atpublic==9.0.0, 3.14 has no tensorflow-cpu==2.21.0 wheel)."""
import re
import subprocess
import sys
import tomllib
import zipfile

import pytest

from tests.conftest import ROOT

SUPPORTED = ["3.11", "3.12", "3.13"]
REQUIREMENTS = (ROOT / "requirements.txt").read_text().splitlines()
LINES = [line for line in REQUIREMENTS if line and not line.startswith("#")]
WHEEL = ROOT / LINES[0]


def pip(*args, target):
    """pip of this interpreter, as if it ran on another Python (--python-version), from the repository root."""
    return subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--only-binary=:all:",
                           "--target", str(target), "--disable-pip-version-check", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_first_requirement_is_the_version_wheel_and_the_rest_are_exact_pins():
    assert LINES[0].startswith("./.ci/") and WHEEL.is_file()
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+( ; [\w\s'=!<>.()]+)?", line)
               for line in LINES[1:]), LINES


def test_wheel_tags_metadata_pyproject_and_readme_name_the_same_versions():
    tags = ["cp" + v.replace(".", "") for v in SUPPORTED]
    name, version, python_tags, abi, platform = WHEEL.name[:-len(".whl")].split("-")
    assert (python_tags.split("."), abi, platform) == (tags, "none", "any")
    assert name == "needs_python_" + "_".join(SUPPORTED[:-1]) + "_or_" + SUPPORTED[-1]
    with zipfile.ZipFile(WHEEL) as z:
        info = f"{name}-{version}.dist-info"
        assert sorted(z.namelist()) == [f"{info}/METADATA", f"{info}/RECORD", f"{info}/WHEEL"]  # installs nothing
        wheel, metadata = z.read(f"{info}/WHEEL").decode(), z.read(f"{info}/METADATA").decode()
    assert re.findall(r"^Tag: (\S+)$", wheel, re.M) == [f"{t}-none-any" for t in tags]
    requires = f">={SUPPORTED[0]},<3.{int(SUPPORTED[-1].split('.')[1]) + 1}"
    assert f"\nRequires-Python: {requires}\n" in metadata
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"] == requires
    assert f"Python {', '.join(SUPPORTED[:-1])} or {SUPPORTED[-1]}, CPU only" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("version", ["3.10", "3.14"])
def test_pip_refuses_other_pythons_in_one_line(version, tmp_path):
    proc = pip("--python-version", version, "-r", "requirements.txt", target=tmp_path)
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("ERROR")]
    assert proc.returncode != 0
    assert errors == [f"ERROR: {WHEEL.name} is not a supported wheel on this platform."], proc.stdout + proc.stderr


@pytest.mark.parametrize("version", SUPPORTED)
def test_pip_takes_the_wheel_on_supported_pythons(version, tmp_path):
    proc = pip("--python-version", version, "--no-deps", str(WHEEL), target=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Would install needs_python" in proc.stdout
