"""Every stage depends on exactly the code it executes: dvc.yaml's code deps equal each stage's import closure.

The closure is read from the code with `ast`: every `import stages.X`, `from stages import X` and
`from stages.X import ...` anywhere in a module (also inside functions: the lazy imports), followed through the
imported modules, plus stages/__init__.py, which `python -m stages.X` runs first.
"""
import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run

STAGES_DIR = ROOT / "stages"


def imported(path, package="stages"):
    """The modules of `package` (file stems; "__init__" for the package itself) that one file imports."""
    here = Path(path).parent
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                                     # relative: `from . import x`, `from .x import y`
                base = ".".join([package] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names if base == package]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != package:
                continue
            found.add("__init__")                              # importing stages.X runs stages/__init__.py
            if len(parts) > 1 and (here / f"{parts[1]}.py").is_file():
                found.add(parts[1])
    return found


def closure(module, root=STAGES_DIR, package="stages"):
    """The files `python -m <package>.<module>` executes of the package: {"stages/__init__.py", ...}."""
    seen, todo = set(), ["__init__", module]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(imported(Path(root) / f"{m}.py", package) - seen)
    return {f"{package}/{m}.py" for m in seen}


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
    from stages.tasks import TASKS
    return [f"{name}@{t}" for t in TASKS] if "foreach" in DVC_YAML["stages"][name] else [name]


DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGE_BODIES = stage_bodies()


@pytest.mark.parametrize("stage", sorted(STAGE_BODIES))
def test_code_deps_are_the_import_closure(stage):
    module, deps = STAGE_BODIES[stage]
    declared = {d for d in deps if d.startswith("stages/")}
    expected = closure(module)
    missing = sorted(expected - declared)
    surplus = sorted(declared - expected)
    assert not missing and not surplus, (
        f"dvc.yaml: stage {stage} (python -m stages.{module}): "
        + "; ".join(([f"missing code deps {', '.join(missing)}"] if missing else [])
                    + ([f"surplus code deps {', '.join(surplus)}"] if surplus else [])))


def test_closure_follows_every_kind_of_import(tmp_path):
    """The reader itself: each import form, lazy imports, chains, and what is not a module of the package."""
    pkg = tmp_path / "stages"
    pkg.mkdir()
    files = {
        "__init__": "import os\n",
        "a": "import json\nfrom stages import b\n\ndef f():\n    from stages.c import thing\n    return thing\n",
        "b": "import stages.d\nfrom stages import filter_log  # a name of __init__, not a module\n",
        "c": "thing = 1\n",
        "d": "from . import e\n",
        "e": "from .c import thing\n",
        "lonely": "x = 1\n",
    }
    for name, text in files.items():
        (pkg / f"{name}.py").write_text(text)
    assert closure("a", pkg) == {f"stages/{m}.py" for m in ("__init__", "a", "b", "c", "d", "e")}
    assert closure("c", pkg) == {"stages/__init__.py", "stages/c.py"}
    assert imported(pkg / "lonely.py") == set()


def test_a_missing_or_surplus_dep_is_named(monkeypatch):
    """The check fails, naming stage and file, for dvc.yaml lists one file short or one file long."""
    module, deps = STAGE_BODIES["params"]
    short = [d for d in deps if d != "stages/tasks.py"]
    long = deps + ["stages/stats.py"]
    for wrong, words in ((short, "missing code deps stages/tasks.py"), (long, "surplus code deps stages/stats.py")):
        monkeypatch.setitem(STAGE_BODIES, "params", (module, wrong))
        with pytest.raises(AssertionError, match=f"dvc.yaml: stage params \\(python -m stages.params\\): {words}"):
            test_code_deps_are_the_import_closure("params")


def status(project):
    """The stage addresses `dvc status` lists as changed."""
    return set(json.loads(run("dvc status --json", project).stdout))


@pytest.mark.slow
def test_editing_tasks_py_changes_exactly_the_stages_that_import_it(clone):
    assert status(clone) == set()
    tasks_py = clone / "stages" / "tasks.py"
    tasks_py.write_text(tasks_py.read_text() + "# an edit\n")
    expected = {address for name, (module, _) in STAGE_BODIES.items() if "stages/tasks.py" in closure(module)
                for address in addresses(name)}
    assert expected and status(clone) == expected
