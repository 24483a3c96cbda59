"""Is this checkout's dvc.lock stale? Reads `dvc status --json` (run before any reproduction) on stdin.

    dvc status --json | python .github/stale.py

Stale: a stage's params, its code (a .py dep), another dep that git holds, or its command changed since dvc.lock
was written, or a committed output is not the one dvc.lock records: the committed results are not what this
checkout's params and code produce. Not stale: outputs and data deps that are missing or not in the DVC cache,
as on a fresh clone with no cache (CI), which `dvc repro` rebuilds.

Prints one Markdown list item per finding. Exit status: 0 not stale, 1 stale, 2 the input is not dvc's JSON.
"""
import json
import sys


def findings(status):
    """{what changed: [the stages it concerns]} from `dvc status --json`'s parsed output."""
    found = {}

    def add(what, stage):
        found.setdefault(what, []).append(stage)

    for stage, entries in status.items():
        for entry in entries:
            if isinstance(entry, str):               # "changed command", "always changed"
                if entry == "changed command":
                    add("its command changed in dvc.yaml", stage)
                continue
            for path, change in entry.get("changed deps", {}).items():
                if isinstance(change, dict):         # a params file: {param: modified / new / deleted}
                    for param, how in change.items():
                        add(f"param `{param}` ({path}) {how}", stage)
                elif path.endswith(".py") or change in ("modified", "new"):
                    add(f"`{path}` {change}", stage)     # code, or a file present here but not as locked
            for path, change in entry.get("changed outs", {}).items():
                if change == "modified":             # committed, but not the bytes dvc.lock records
                    add(f"output `{path}` is not the one dvc.lock records", stage)
    return found


def main():
    try:
        status = json.loads(sys.stdin.read() or "{}")
        found = findings(status)
    except (ValueError, AttributeError, TypeError) as e:
        print(f"stale.py: not the JSON of `dvc status --json`: {e}", file=sys.stderr)
        return 2
    for what, stages in found.items():
        print(f"- {what}: {', '.join(stages)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
