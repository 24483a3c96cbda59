"""compare: tell an effect from noise, metric by metric, between two runs of the pipeline.

    python -m stages.compare [A] [B] [--md | --json]

A and B are git revisions, branches, tags or DVC experiment names; `workspace` is the working tree on disk.
Defaults: A = HEAD, B = workspace. Per task and headline metric: mean A, mean B, B - A with its 95% confidence
interval, Welch's p, that p adjusted by Holm-Bonferroni over the m tests, and the verdict from it (better,
worse, or no detectable difference), so a false "better" or "worse" anywhere in the table stays <= 5%; and the
difference detected with 80% power at these n and sds, and the replicates that would detect the one seen
(chapter4/comparison.py says how). --md prints a Markdown table (for a pull-request comment), --json one line
of strict JSON.

Exit status: 0 compared; 1 a revision has no per-replicate values (an older commit) or unreadable ones;
2 a revision does not exist.
"""
import signal

if __name__ == "__main__":                          # first, so that no moment of the command prints a traceback:
    signal.signal(signal.SIGINT, signal.SIG_DFL)     # Ctrl-C ends it quietly,
    if hasattr(signal, "SIGPIPE"):                   # and so does a closed pipe (`| head`), where there is
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # SIGPIPE (Windows has none)

import argparse
import sys
from pathlib import Path

from chapter4.comparison import render_json, render_md, render_text, rows
from chapter4.replicates import WORKSPACE, CompareError, load, reader


def _git():
    from dvc.scm import SCM, SCMError
    try:
        return SCM(".")
    except SCMError:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m stages.compare", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="A and B: a commit, branch, tag, DVC experiment name, or `workspace`.\n"
                                        "Exit status: 0 compared, 1 no per-replicate values at A or B, "
                                        "2 unknown revision.")
    ap.add_argument("a", nargs="?", default="HEAD", metavar="A", help="the baseline (default: HEAD)")
    ap.add_argument("b", nargs="?", default=WORKSPACE, metavar="B", help="the candidate (default: workspace)")
    fmt = ap.add_mutually_exclusive_group()
    fmt.add_argument("--md", action="store_true", help="a Markdown table")
    fmt.add_argument("--json", action="store_true", help="one line of JSON: the revisions, method and rows")
    args = ap.parse_args(argv)
    scm = None
    try:
        scm = _git()
        root = Path(scm.root_dir) if scm is not None else Path.cwd()
        sides = [reader(rev, scm, root) for rev in (args.a, args.b)]
        values = [load(label, read) for label, _, read in sides]
        table = rows(*values)
    except CompareError as e:
        print(e, file=sys.stderr)
        return e.status
    except Exception as e:                          # one line, never a traceback (e.g. a damaged git repo)
        print(f"compare: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    finally:
        if scm is not None:
            scm.close()     # dulwich's pack files, closed before the interpreter exits (else noise on stderr)
    sys.stdout.reconfigure(errors="replace")       # a terminal that cannot print "±" gets "?"
    render = render_json if args.json else render_md if args.md else render_text
    print(render(sides[0][:2], sides[1][:2], table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
