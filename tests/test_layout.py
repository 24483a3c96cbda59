"""The house as docs/design.md draws it: every import between stages/, chapter4/, bench/ and tests/ is an
arrow of the picture. The allowed arrows are read from the list under the picture ("- stages → chapter4"),
the imports from the code with `ast` (lazy imports inside functions too), so the picture and the code cannot
drift apart: a stage page importing another page, or the library importing a page, fails here.
"""
import ast
import re
from pathlib import Path

from tests.conftest import ROOT

FOLDERS = ("stages", "chapter4", "bench", "tests")
ARROW = re.compile(r"^- (\w+) → ([\w, ]+)$")


def allowed(design):
    """{folder: the folders it may import} from the arrow list of the picture in `design` (docs/design.md)."""
    arrows = {}
    for line in Path(design).read_text(encoding="utf-8").splitlines():
        if m := ARROW.match(line.strip()):
            arrows[m.group(1)] = {name.strip() for name in m.group(2).split(",")}
    return arrows


def imports(path):
    """(line, imported module) for every import of a project folder in one file: "stages.encode", "chapter4",
    "chapter4.io", ... (`from stages import encode` is "stages.encode"; a relative import is resolved)."""
    own = path.parent.name
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([own] + ([base] if base else []))
            found += [(node.lineno, f"{base}.{a.name}" if "." not in base else base) for a in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in FOLDERS]


def crossings(root, arrows):
    """Every import under `root` the picture does not allow, as "file:line imports module (why)"."""
    bad = []
    for folder in FOLDERS:
        for path in sorted((Path(root) / folder).glob("*.py")):
            where = path.relative_to(root).as_posix()
            for line, name in imports(path):
                target = name.split(".")[0]
                if target not in arrows.get(folder, set()) and not (folder == target == "stages"):
                    bad.append(f"{where}:{line} imports {name} (no arrow {folder} → {target})")
                elif folder == target == "stages" and name.split(".")[1:2] not in ([], ["__init__"]):
                    bad.append(f"{where}:{line} imports {name} (a stage page never imports another page)")
    return bad


def test_the_picture_draws_the_rules():
    """The list under the picture says what the design promises: pages use only the library, and the
    library uses only itself."""
    arrows = allowed(ROOT / "docs" / "design.md")
    assert arrows["stages"] == {"chapter4"}
    assert arrows["chapter4"] <= {"chapter4"}
    assert set(arrows) == set(FOLDERS)


def test_every_import_is_an_arrow_of_the_picture():
    arrows = allowed(ROOT / "docs" / "design.md")
    assert crossings(ROOT, arrows) == []


def plant(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


GOOD = {
    "stages/__init__.py": "",
    "stages/encode.py": "import sys\nfrom chapter4 import io\n\ndef main():\n    from chapter4.multihot import f\n",
    "chapter4/__init__.py": "",
    "chapter4/io.py": "from . import tasks\nimport json\n",
    "chapter4/tasks.py": "",
    "bench/run.py": "from stages import encode\nfrom bench.book import vectorize_sequences\n",
    "tests/test_x.py": "from tests.conftest import ROOT\nfrom bench.book import vectorize_sequences\n",
}


def test_a_planted_crossing_fails(tmp_path):
    """In a planted tree: the good one passes; each bad import is reported with its file, line and rule."""
    arrows = allowed(ROOT / "docs" / "design.md")
    plant(tmp_path, GOOD)
    assert crossings(tmp_path, arrows) == []
    bad = {
        "stages/train.py": ("from stages import encode\n", "stages/train.py:1 imports stages.encode (a stage page"),
        "stages/split.py": ("import sys\n\ndef main():\n    import stages.encode\n",
                            "stages/split.py:4 imports stages.encode (a stage page"),
        "stages/plot.py": ("from bench import book\n",
                           "stages/plot.py:1 imports bench.book (no arrow stages → bench)"),
        "chapter4/model.py": ("def f():\n    from stages.encode import main\n",
                              "chapter4/model.py:2 imports stages.encode (no arrow chapter4 → stages)"),
        "chapter4/stats.py": ("from tests import conftest\n",
                              "chapter4/stats.py:1 imports tests.conftest (no arrow chapter4 → tests)"),
    }
    for name, (text, message) in bad.items():
        plant(tmp_path, {name: text})
        found = crossings(tmp_path, arrows)
        assert len(found) == 1 and found[0].startswith(message), (name, found)
        (tmp_path / name).unlink()
    assert crossings(tmp_path, arrows) == []
