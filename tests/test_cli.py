"""The CLIs on whatever comes in: every stdout line is strict JSON, every bad input line gets exactly one stderr
line with its number, good lines still print in order, the exit code is 1 exactly when a line was bad, and
nothing ever ends in a traceback. Property-based (hypothesis) on arbitrary bytes and on files mixing valid and
invalid lines, for each task, run in-process on the small-epoch models of the `pipeline` fixture."""
import contextlib
import functools
import io
import json
import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chapter4 import datasets, tasks
from stages import decode, predict

# Generated inputs per property test and task (the README's guarantees table quotes these).
EXAMPLES = 100
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KEYS = {"imdb": {"positive"}, "reuters": {"topic", "probability", "top3"}, "housing": {"price"}}
ERROR = re.compile(r"predict: line ([1-9][0-9]*): (\S.*)")


@pytest.fixture(scope="module", autouse=True)
def word_index_read_once():
    """Hundreds of CLI runs in one test: read each (pinned, 1.6 MB) word index once, not at every run."""
    original = datasets.load_word_index
    datasets.load_word_index = functools.lru_cache(maxsize=None)(original)
    yield
    datasets.load_word_index = original


def in_process(project, main, argv, stdin=b""):
    """main(argv) as `python -m` runs it, in `project`, without a new interpreter: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved_cwd, saved_stdin = os.getcwd(), sys.stdin
    os.chdir(project)
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv) or 0
            except SystemExit as e:          # what the interpreter does with it
                code = e.code if isinstance(e.code, int) or e.code is None else 1
                if not isinstance(e.code, int) and e.code is not None:
                    print(e.code, file=sys.stderr)
    finally:
        os.chdir(saved_cwd)
        sys.stdin = saved_stdin
    return code or 0, out.getvalue(), err.getvalue()


def strict_json(line):
    def refuse(constant):
        raise AssertionError(f"not strict JSON ({constant}): {line}")
    return json.loads(line, parse_constant=refuse)


def input_lines(data):
    """How many lines `data` holds: split at LF; a last line without LF counts, the empty rest after one does not."""
    return len(data.split(b"\n")) - (1 if data.endswith(b"\n") or not data else 0)


def check_invariants(task, data, code, out, err):
    """What must hold for any input: returns {line number: reason} of the refused lines."""
    outs, errs = out.splitlines(), err.splitlines()
    for line in outs:
        assert set(strict_json(line)) == KEYS[task], line
    refused = {}
    for line in errs:
        m = ERROR.fullmatch(line)
        assert m, f"not a `predict: line N: reason` line: {line!r}"
        refused[int(m.group(1))] = m.group(2)
    numbers = [int(ERROR.fullmatch(line).group(1)) for line in errs]
    assert numbers == sorted(set(numbers))                      # one line per bad line, in order
    assert len(outs) + len(errs) == input_lines(data)           # every line answered once, good or bad
    assert code == (1 if errs else 0)
    return refused


# --- arbitrary bytes -------------------------------------------------------------------------------------------

ANY_BYTES = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode),
                       st.sampled_from([b"", b"\r", b"\xef\xbb\xbf", b"1e39", b"nan", b",", b"-1e308", b"\xff", b"\xc3",
                                        b"1,2,3,4,5,6,7,8,9,10,11,12,13", b"\xed\xa0\x80", b"inf"])),
             max_size=30).map(b"".join))


@pytest.mark.parametrize("task", list(tasks.TASKS))
def test_predict_survives_arbitrary_bytes(pipeline, task, tmp_path):
    @PROPERTY
    @given(data=ANY_BYTES, via_file=st.booleans())
    def check(data, via_file):
        if via_file:
            path = tmp_path / "input.txt"
            path.write_bytes(data)
            code, out, err = in_process(pipeline, predict.main, [task, str(path)])
        else:
            code, out, err = in_process(pipeline, predict.main, [task], stdin=data)
        check_invariants(task, data, code, out, err)
    check()


# --- files mixing valid and invalid lines ----------------------------------------------------------------------

FEATURES = st.lists(st.floats(-1e4, 1e4, allow_nan=False).map(repr), min_size=13, max_size=13)
# (A text that ends in CR or starts with a byte-order mark reads differently on another line: not generated.)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\n"), min_size=1, max_size=200).filter(
    lambda s: s.strip() and not s.endswith("\r") and not s.startswith("\ufeff"))


@st.composite
def good_line(draw, task):
    if task == "housing":
        fields = draw(FEATURES)
        if draw(st.booleans()):
            fields = [f" {f}" if i % 2 else f for i, f in enumerate(fields)]     # spaces around numbers are fine
        return ",".join(fields).encode()
    return draw(TEXT).encode()


@st.composite
def bad_line(draw, task):
    """(bytes, the start of the reason the CLI must give)."""
    kinds = ["empty", "utf8"] + (["count", "nan", "overflow"] if task == "housing" else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "empty":
        return draw(st.sampled_from([b"", b"   ", b"\t", " \u3000 ".encode()])), "empty input"
    if kind == "utf8":
        good = draw(good_line(task))
        at = draw(st.integers(0, len(good)))
        junk = draw(st.sampled_from([b"\xff", b"\xfe\xfe", b"\xc3(", b"\xed\xa0\x80", b"\x80abc", b"\xf0\x9f\x98"]))
        return good[:at] + junk + good[at:], "not UTF-8 text"
    fields = draw(FEATURES)
    if kind == "count":
        n = draw(st.integers(1, 40).filter(lambda n: n != 13))
        return ",".join((fields * 4)[:n]).encode(), f"expected 13 comma-separated numbers, got {n}"
    at = draw(st.integers(0, 12))
    if kind == "nan":
        fields[at] = draw(st.sampled_from(["nan", "inf", "-Infinity", "abc", "", "1_000", "1.2.3", "0x10", "\u0661",
                                           "1e", "--1", "1 2"]))
        return ",".join(fields).encode(), "not a number"
    fields[at] = draw(st.sampled_from(["1e300", "-1e300", "1e309", "-1e400", "9" * 400]))
    return ",".join(fields).encode(), "a value the model cannot represent"


@st.composite
def mixed_file(draw, task):
    """(file bytes, the good lines' bytes, {line number: reason start} of the bad ones)."""
    lines = draw(st.lists(st.one_of(good_line(task).map(lambda b: (b, None)), bad_line(task)), min_size=1,
                          max_size=12))
    data, good, bad = b"", [], {}
    for n, (line, reason) in enumerate(lines, 1):
        if reason is None:
            good.append(line)
        else:
            bad[n] = reason
        if n == 1 and draw(st.booleans()):
            line = b"\xef\xbb\xbf" + line                                      # a byte-order mark
        last = n == len(lines) and line and draw(st.booleans())                # no line end after the last line
        data += line + (b"" if last else draw(st.sampled_from([b"\n", b"\r\n"])))
    return data, good, bad


@pytest.mark.parametrize("task", list(tasks.TASKS))
def test_predict_reports_each_bad_line_and_prints_the_good_ones_in_order(pipeline, task, tmp_path):
    path = tmp_path / "mixed.txt"

    @PROPERTY
    @given(case=mixed_file(task))
    def check(case):
        data, good, bad = case
        path.write_bytes(data)
        code, out, err = in_process(pipeline, predict.main, [task, str(path)])
        refused = check_invariants(task, data, code, out, err)
        assert set(refused) == set(bad)
        for n, reason in refused.items():
            assert reason.startswith(bad[n]), (n, reason, bad[n])
        path.write_bytes(b"".join(line + b"\n" for line in good))
        assert in_process(pipeline, predict.main, [task, str(path)]) == (0, out, "")   # same answers, same order
    check()


# --- named cases -----------------------------------------------------------------------------------------------

def test_a_10_mb_line(pipeline, tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"a wonderful film " * 620_000 + b"\n")                      # 10.5 MB, one line
    code, out, err = in_process(pipeline, predict.main, ["imdb", str(path)])
    assert (code, err) == (0, "") and 0 <= strict_json(out)["positive"] <= 1
    path.write_bytes(b"1" * 10_000_000)                                            # one 10 MB "number"
    code, out, err = in_process(pipeline, predict.main, ["housing", str(path)])
    assert (code, out) == (1, "")
    assert err == "predict: line 1: expected 13 comma-separated numbers, got 1\n"
    path.write_bytes(b"1," * 12 + b"9" * 10_000_000 + b"\n")
    code, out, err = in_process(pipeline, predict.main, ["housing", str(path)])
    assert (code, out) == (1, "")
    assert err == f"predict: line 1: a value the model cannot represent (beyond float32): '{'9' * 40}...'\n"


@pytest.mark.parametrize("task", list(tasks.TASKS))
def test_crlf_and_a_byte_order_mark_are_accepted(pipeline, task):
    lines = ([b"0.1,18,2.3,0,0.5,6.5,65,4,1,296,15,396,5", b"0.5,0,8,0,0.6,6,70,3,4,300,17,390,10"]
             if task == "housing" else [b"A wonderful film, beautifully acted.", b"Oil prices rose 5 pct."])
    plain = in_process(pipeline, predict.main, [task], stdin=b"\n".join(lines) + b"\n")
    assert plain[0] == 0 and len(plain[1].splitlines()) == 2
    assert in_process(pipeline, predict.main, [task], stdin=b"\r\n".join(lines) + b"\r\n") == plain
    assert in_process(pipeline, predict.main, [task], stdin=b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n") == plain
    bom_later = in_process(pipeline, predict.main, [task], stdin=lines[0] + b"\n\xef\xbb\xbf" + lines[1] + b"\n")
    assert bom_later[1].splitlines()[0] == plain[1].splitlines()[0]    # (a BOM only marks the start of a file)


@pytest.mark.skipif(os.name == "nt", reason="the reasons expected are POSIX's error texts")
def test_an_input_that_cannot_be_read_gets_one_line(pipeline, tmp_path):
    """Tests run as root, where chmod 000 does not stop a read, so: a directory, a path through a regular file,
    a missing file (the open fails) and /proc/self/mem (Linux), which opens but fails at the first read (EIO)."""
    (tmp_path / "file.txt").write_text("great movie\n")
    proc_mem = [("/proc/self/mem", "Input/output error")] if os.path.exists("/proc/self/mem") else []
    for path, reason in [(tmp_path, "Is a directory"), (tmp_path / "file.txt" / "x", "Not a directory"),
                         (tmp_path / "missing.txt", "No such file or directory"), *proc_mem]:
        code, out, err = in_process(pipeline, predict.main, ["imdb", str(path)])
        assert (code, out, err) == (1, "", f"predict: {path}: {reason}\n")


def test_wrong_arguments_get_one_line(pipeline):
    usage = "usage: python -m stages.predict <task> [FILE | -]   (or --help)\n"
    assert in_process(pipeline, predict.main, []) == (1, "", usage)
    assert in_process(pipeline, predict.main, ["imdb", "a", "b"]) == (1, "", usage)
    assert in_process(pipeline, predict.main, ["imdbx\n"]) == (
        1, "", "unknown task 'imdbx\\n': expected one of imdb, reuters, housing\n")


def test_the_issues_inputs_as_a_user_runs_them(pipeline):
    """As a new process, bytes on stdin: a line that is not UTF-8 between two good ones; float32 overflows."""
    def cli(task, data):
        return subprocess.run([sys.executable, "-m", "stages.predict", task], cwd=pipeline, input=data,
                              capture_output=True)
    proc = cli("imdb", b"A wonderful film.\n\xff\xfe bad bytes\nAn awful film.\n")
    assert proc.returncode == 1 and len([strict_json(s) for s in proc.stdout.splitlines()]) == 2
    assert proc.stderr == b"predict: line 2: not UTF-8 text (byte 1 is 0xff)\n"
    proc = cli("housing", b"1,2,3,4,5,6,7,8,9,10,11,12,1e39\n1e308,2,3,4,5,6,7,8,9,10,11,12,13\n")
    for line in proc.stdout.splitlines():
        strict_json(line)
    assert b"predict: line 2: a value the model cannot represent (beyond float32): '1e308'" in proc.stderr
    assert b"Traceback" not in proc.stderr and proc.returncode == 1


# --- decode ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sequences_read_once():
    """decode reads the whole dataset for one sample (~2 s for IMDB): read it once per test here."""
    original = datasets.load_sequences

    @functools.lru_cache(maxsize=None)
    def cached(raw_dir, task, items):
        return original(raw_dir, task, dict(items))
    datasets.load_sequences = lambda raw_dir, task, p: cached(str(raw_dir), task, tuple(sorted(p.items())))
    yield
    datasets.load_sequences = original


ARG = st.one_of(st.text(max_size=12), st.sampled_from(["imdb", "reuters", "housing", "--split", "train", "test", "-1",
                                                        "0", "25000", "-", "data", "params.yaml", "--x"]),
                st.integers(-10**30, 10**30).map(str))
TASK = st.sampled_from(list(tasks.TASKS) * 4 + ["", "IMDB", "imdb "])        # (arbitrary text: ARG below)
INDEX = (st.one_of(st.integers(-3, 30000), st.integers(-10**30, 10**30)).map(str) | st.text(max_size=8)
         | st.sampled_from([" 7 ", "1e3", "0x1", "-0", "\u0661", "1_0"]))
SPLIT = (st.just([]) | st.sampled_from(["train", "test"]).map(lambda s: ["--split", s])
         | st.lists(ARG, max_size=2).map(lambda a: ["--split", *a]))
FILE = st.sampled_from(["-", "data", "params.yaml", "dvc.yaml", "/proc/self/mem", "missing.txt",
                        "data/raw/imdb/imdb.npz"])
ARGV = {"decode": st.builds(lambda t, i, s, x: [t, i, *s, *x], TASK, INDEX, SPLIT,
                            st.just([]) | st.lists(ARG, max_size=1)),
        "predict": st.builds(lambda t, f: [t, *f], TASK, st.just([]) | st.lists(FILE | ARG, max_size=1))}


@pytest.mark.parametrize("cli", ["decode", "predict"])
def test_any_arguments_get_json_or_one_line(pipeline, sequences_read_once, cli):
    """Arbitrary arguments: strict JSON lines, or one error line (predict: or one per bad input line)."""
    main = {"decode": decode.main, "predict": predict.main}[cli]

    @PROPERTY
    @given(argv=ARGV[cli] | st.lists(ARG, max_size=5))
    def check(argv):
        assume(not {"-h", "--help", "--test"} & set(argv))   # (help prints the usage; --test runs the stage)
        code, out, err = in_process(pipeline, main, argv)
        for line in out.splitlines():
            strict_json(line)
        if code == 0:
            assert err == "" and (out or cli == "predict")        # (predict with no input answers nothing)
        else:
            assert code in (1, 2) and err.endswith("\n")
            errors = err.splitlines()
            assert len(errors) == 1 or all(ERROR.fullmatch(e) for e in errors), (argv, err)
            assert not out or cli == "predict"
    check()


def test_decode_prints_one_json_line(pipeline):
    code, out, err = in_process(pipeline, decode.main, ["imdb", "0"])
    sample = strict_json(out)
    assert sample["text"].startswith("? this film was just brilliant casting location scenery story direction")
    assert sample["label"] == "positive" and code == 0
    code, out, err = in_process(pipeline, decode.main, ["housing", "0", "--split", "test"])
    assert list(strict_json(out)["features"]) == list(tasks.TASKS["housing"].features)
    assert in_process(pipeline, decode.main, ["imdb", "x"])[2] == (
        "decode: argument index: invalid int value: 'x' (usage: python -m stages.decode <task> <index> "
        "[--split train|test])\n")
