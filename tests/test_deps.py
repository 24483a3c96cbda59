"""Every stage depends on exactly the code it executes: dvc.yaml's code deps equal each stage's import closure.

The closure is read from the code with `ast`: every `import P.X`, `from P import X` and `from P.X import ...` of
the project's packages P (stages/, the stage modules, and chapter4/, the library) anywhere in a module (also
inside functions: the lazy imports), followed through the imported modules, plus each package's __init__.py,
which importing any of its modules runs first.
"""
import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run

PACKAGES = ("stages", "chapter4")


def imported(path, packages=PACKAGES):
    """The project files (paths relative to the root, "P/__init__.py" for a package itself) one file imports."""
    path = Path(path)
    root, own = path.parent.parent, path.parent.name
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                                     # relative: `from . import x`, `from .x import y`
                base = ".".join([own] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names if base in packages]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] not in packages:
                continue
            found.add(f"{parts[0]}/__init__.py")                # importing P.X runs P/__init__.py
            if len(parts) > 1 and (root / parts[0] / f"{parts[1]}.py").is_file():
                found.add(f"{parts[0]}/{parts[1]}.py")
    return found


def closure(module, root=ROOT, packages=PACKAGES):
    """The project files `python -m stages.<module>` executes: {"stages/__init__.py", "chapter4/io.py", ...}."""
    seen, todo = set(), ["stages/__init__.py", f"stages/{module}.py"]
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(imported(Path(root) / f, packages) - seen)
    return seen


def stage_bodies():
    """{stage name in dvc.yaml: (module its cmd runs, deps as written)}."""
    out = {}
    for name, body in DVC_YAML["stages"].items():
        body = body.get("do", body)
        [module] = re.findall(r"python -m stages\.(\w+)", body["cmd"])
        out[name] = module, body.get("deps", [])
    return out


def addresses(name):
    """The stage addresses DVC gives stage `name` of dvc.yaml: itself, or one per task of its foreach."""
    from chapter4.tasks import TASKS
    return [f"{name}@{t}" for t in TASKS] if "foreach" in DVC_YAML["stages"][name] else [name]


DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGE_BODIES = stage_bodies()


@pytest.mark.parametrize("stage", sorted(STAGE_BODIES))
def test_code_deps_are_the_import_closure(stage):
    module, deps = STAGE_BODIES[stage]
    declared = {d for d in deps if d.split("/")[0] in PACKAGES}
    expected = closure(module)
    missing = sorted(expected - declared)
    surplus = sorted(declared - expected)
    assert not missing and not surplus, (
        f"dvc.yaml: stage {stage} (python -m stages.{module}): "
        + "; ".join(([f"missing code deps {', '.join(missing)}"] if missing else [])
                    + ([f"surplus code deps {', '.join(surplus)}"] if surplus else [])))


def test_closure_follows_every_kind_of_import(tmp_path):
    """The reader itself: each import form, lazy imports, chains, both packages, and what is not a module."""
    files = {
        "stages/__init__": "import os\n",
        "stages/a": "import json\nfrom stages import b\n\ndef f():\n    from stages.c import thing\n    return thing\n",
        "stages/b": "import chapter4.d\nfrom stages import filter_log  # a name of __init__, not a module\n",
        "stages/c": "thing = 1\n",
        "chapter4/__init__": "",
        "chapter4/d": "from . import e\n",
        "chapter4/e": "from .f import thing\n",
        "chapter4/f": "thing = 1\n",
        "stages/lonely": "x = 1\n",
    }
    for name, text in files.items():
        (tmp_path / f"{name}.py").parent.mkdir(exist_ok=True)
        (tmp_path / f"{name}.py").write_text(text)
    assert closure("a", tmp_path) == {"stages/__init__.py", "stages/a.py", "stages/b.py", "stages/c.py",
                                      "chapter4/__init__.py", "chapter4/d.py", "chapter4/e.py", "chapter4/f.py"}
    assert closure("c", tmp_path) == {"stages/__init__.py", "stages/c.py"}
    assert imported(tmp_path / "stages" / "lonely.py") == set()


def test_a_missing_or_surplus_dep_is_named(monkeypatch):
    """The check fails, naming stage and file, for dvc.yaml lists one file short or one file long."""
    module, deps = STAGE_BODIES["params"]
    short = [d for d in deps if d != "chapter4/tasks.py"]
    long = deps + ["chapter4/stats.py"]
    for wrong, words in ((short, "missing code deps chapter4/tasks.py"), (long, "surplus code deps chapter4/stats.py")):
        monkeypatch.setitem(STAGE_BODIES, "params", (module, wrong))
        with pytest.raises(AssertionError, match=f"dvc.yaml: stage params \\(python -m stages.params\\): {words}"):
            test_code_deps_are_the_import_closure("params")


def status(project):
    """The stage addresses `dvc status` lists as changed."""
    return set(json.loads(run("dvc status --json", project).stdout))


@pytest.mark.slow
def test_editing_tasks_py_changes_exactly_the_stages_that_import_it(clone):
    assert status(clone) == set()
    tasks_py = clone / "chapter4" / "tasks.py"
    tasks_py.write_text(tasks_py.read_text() + "# an edit\n")
    expected = {address for name, (module, _) in STAGE_BODIES.items() if "chapter4/tasks.py" in closure(module)
                for address in addresses(name)}
    assert expected and status(clone) == expected
