"""sweep: a grid of DVC experiments run by many machines (CI runners, a Slurm array), read back in one table.

    python -m stages.sweep plan -S OVERRIDE [-S ...] [--name PREFIX]      > plan.json
    python -m stages.sweep run PLAN INDEX [--push GIT_REMOTE]             (one point; PLAN: a file or -)
    python -m stages.sweep report [GIT_REMOTE] --plan PLAN [--md | --json]

`plan` expands the overrides as `dvc exp run --queue -S` does (Hydra's sweep grammar: `a=1,2`, `range(1,4)`,
`choice(relu,tanh)`), checks every point's params.yaml, and prints the points as a GitHub Actions matrix: one
line of JSON. `run` runs point INDEX as the experiment NAME (`dvc pull` first when a DVC remote is set) and
pushes it to GIT_REMOTE only when it succeeded. `report` pulls the plan's experiments from GIT_REMOTE and prints,
per point, task and headline metric, the mean ± sd over the replicates and the difference to the baseline (the
commit checked out: the one the sweep started from) with Welch's test, p adjusted by Benjamini-Hochberg over the
whole sweep, the best point per task, and the points planned but not found. In GitHub Actions it also writes
the job summary. Any engine with an index runs the same `run` (Slurm: INDEX=$SLURM_ARRAY_TASK_ID).

Exit status: 0 done; 1 bad input (unknown key or bad value at a point, empty grid, plan not JSON, index out of
range, a git remote that is not there) or a failed point: one line on stderr, nothing pushed.
"""
import signal

if __name__ == "__main__":                          # Ctrl-C ends it quietly
    signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse
import json
import os
import sys
from pathlib import Path

from chapter4 import sweep, sweep_report


def read_plan(path):
    if path == "-":
        return sweep.read_plan(sys.stdin.read(), "the plan on stdin")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise sweep.SweepError(f"sweep: cannot read the plan {path}: {getattr(e, 'strerror', None) or e}") from None
    return sweep.read_plan(text, f"the plan {path}")


def index(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"INDEX must be an integer, got {text!r}") from None


def parser():
    ap = argparse.ArgumentParser(prog="python -m stages.sweep", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Exit status: 0 done, 1 bad input or a failed point, 2 bad usage.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="print the sweep's points as a GitHub Actions matrix (JSON)")
    p.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="OVERRIDE",
                   help="as `dvc exp run -S`: key=value or a sweep, e.g. 'reuters.epochs=2,3' (repeatable)")
    p.add_argument("--name", default=sweep.PREFIX, help="prefix of the experiment names (default: sweep)")
    r = sub.add_parser("run", help="run one point of a plan as a DVC experiment, push it when it succeeded")
    r.add_argument("plan", metavar="PLAN", help="the plan: a file, or - for stdin")
    r.add_argument("index", metavar="INDEX", type=index, help="the point's index, from 0")
    r.add_argument("--push", metavar="GIT_REMOTE", help="push the experiment there (`dvc exp push -f`)")
    s = sub.add_parser("report", help="pull the sweep's experiments and print one table")
    s.add_argument("remote", nargs="?", metavar="GIT_REMOTE", help="pull the experiments from there first")
    s.add_argument("--plan", required=True, metavar="PLAN", help="the plan: a file, or - for stdin")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--md", action="store_true", help="a Markdown table")
    fmt.add_argument("--json", action="store_true", help="one line of JSON")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if args.command == "plan":
            out = json.dumps(sweep.plan(args.overrides, args.name), separators=(",", ":"))
        elif args.command == "run":
            name = sweep.run_point(read_plan(args.plan), args.index, args.push)
            out = f"{name}: done" + (f", pushed to {args.push}" if args.push else "")
        else:
            result = sweep_report.collect(read_plan(args.plan), args.remote)
            out = (sweep_report.render_json(result) if args.json else
                   sweep_report.render_md(result) if args.md else sweep_report.render_text(result))
            summary = os.environ.get("GITHUB_STEP_SUMMARY")
            if summary:                              # GitHub Actions: the job's summary page
                with open(summary, "a", encoding="utf-8") as f:
                    f.write(sweep_report.render_md(result) + "\n")
    except sweep.SweepError as e:
        print(e, file=sys.stderr)
        return e.status
    except Exception as e:                           # one line, never a traceback
        print(f"sweep: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    sys.stdout.reconfigure(errors="replace")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
