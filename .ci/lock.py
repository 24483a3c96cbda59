"""Regenerate requirements.txt, the lock for every supported platform, from requirements.in:

    python .ci/lock.py

It runs uv's universal resolver (uv is in requirements.txt; it needs PyPI):

    uv pip compile requirements.in --universal --python-version 3.11 --no-header --no-annotate -o requirements.txt

uv reads the pins of the existing requirements.txt as preferences, so a version moves only when requirements.in
or a platform needs it. Then the header and the Python gate wheel go back on top: pip reads the gate first and
refuses other Pythons in one line. tests/test_platforms.py checks the result for every platform.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.txt"
COMMAND = ["uv", "pip", "compile", "requirements.in", "--universal", "--python-version", "3.11", "--no-header",
           "--no-annotate", "-o", "requirements.txt"]
GATE = "./.ci/needs_python_3.11_3.12_or_3.13-1-cp311.cp312.cp313-none-any.whl"
HEADER = f"""\
# The exact versions of everything the pipeline and its tests need, on every supported platform (environment
# markers choose per platform). Generated from requirements.in by `python .ci/lock.py`, which runs
#   {" ".join(COMMAND)}
# and puts these lines back on top.
# Python 3.11, 3.12 or 3.13 (every pin has wheels for those): this empty wheel is tagged for exactly them, so on
# any other Python pip stops at once with one line naming them, instead of a resolver error about some pin.
{GATE}
"""


def main():
    subprocess.run([sys.executable, "-m", *COMMAND], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    body = [line for line in LOCK.read_text().splitlines(keepends=True)
            if not line.startswith("#") and line.strip() != GATE]
    LOCK.write_text(HEADER + "".join(body))


if __name__ == "__main__":
    main()
