"""YAML files as the pipeline reads them: dvc.yaml parsed once per process (`read`), and the params file's
bytes parsed strictly (`parse_strictly`, for chapter4/params.py): a syntax error, an empty file, a file that is
not a mapping or a key given twice exits with one line naming the place.
"""
import functools
from pathlib import Path

import yaml

def read(path):
    """A YAML file's contents, parsed once per process and text (libyaml's C parser where PyYAML has it).
    Callers must not modify the result."""
    return _parse(Path(path).read_text())


Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=8)
def _parse(text):
    return yaml.load(text, Loader=Loader)


@functools.lru_cache(maxsize=8)
def parse_strictly(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SystemExit(f"params.yaml: not UTF-8 text (byte {e.start + 1})") from None
    loader = Loader(text)
    try:
        node = loader.get_single_node()          # the node tree keeps each key's line: checked, then built
        if node is not None:
            _refuse_duplicates(node)
            values = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise SystemExit(f"params.yaml: line {mark.line + 1}, column {mark.column + 1}: {e.problem}") from None
    except yaml.reader.ReaderError as e:         # a control character
        line, column = text.count("\n", 0, e.position) + 1, e.position - text.rfind("\n", 0, e.position)
        raise SystemExit(f"params.yaml: line {line}, column {column}: unacceptable character #x{e.character:04x}: "
                         f"{e.reason}") from None
    finally:
        loader.dispose()
    if node is None:
        raise SystemExit("params.yaml: the file is empty: expected seed, the task sections imdb, reuters, housing, ...")
    if not isinstance(values, dict):
        raise SystemExit(f"params.yaml: expected a mapping of keys (seed: 42, imdb: ...), got {type(values).__name__} "
                         f"{values!r:.40}")
    return values


def _refuse_duplicates(node, prefix=""):
    """YAML lets a later `epochs:` silently win over an earlier one in the same mapping; we do not."""
    if isinstance(node, yaml.MappingNode):
        first = {}
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            line = key.start_mark.line + 1
            if name in first:
                raise SystemExit(f"params.yaml: line {line}: {name} is given twice (first on line {first[name]})")
            first[name] = line
            _refuse_duplicates(value, name + ".")
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicates(item, prefix)
