#!/usr/bin/env bash
# The pull-request report: check that the committed dvc.lock is what this checkout's params and code produce,
# reproduce the pipeline, then compare the reproduced results (the workspace) and the params with BASE, in Markdown.
#
#     .github/pr-report.sh BASE        (BASE: a git revision, e.g. origin/main; run from the repository root)
#
# Writes to $GITHUB_STEP_SUMMARY when set (GitHub Actions shows it on the run's page), else to stdout.
# When $DATASETS_MIRROR is set, it is a folder: any dataset file it lacks is first fetched from the canonical
# URL into it (checked against its sha256 pin), so CI can cache the folder and `dvc repro` reads it offline.
# Stale (.github/stale.py): `dvc status` before the reproduction lists a changed param, code dep or command, or a
# committed output that dvc.lock does not record; outputs missing from a fresh clone with no DVC cache are not.
# Reproduced outputs may differ from the committed ones in their last digits (another CPU): that fails nothing.
# Exit status: 0 when dvc.lock is up to date and every step worked; 1 otherwise (the report says why, stale first).
set -uo pipefail
base=${1:?usage: .github/pr-report.sh BASE (a git revision, e.g. origin/main)}
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then exec 3>>"$GITHUB_STEP_SUMMARY"; else exec 3>&1; fi
export DVC_NO_ANALYTICS=1
status=0

if [ -n "${DATASETS_MIRROR:-}" ]; then
  python -c 'import os; from chapter4 import fetch; fetch.fill_mirror(os.environ["DATASETS_MIRROR"])' || exit 1
fi

# Before `dvc repro` (which would bring dvc.lock up to date): is the committed dvc.lock stale?
if ! lock=$(dvc status --json); then
  status=1
  printf '## dvc.lock\n\n`dvc status` failed: see the job log.\n\n' >&3
else
  stale=$(printf '%s' "$lock" | python "$(dirname "$0")/stale.py")
  case $? in
    0) ;;
    1) status=1
       {
         printf '## Stale: this pull request'"'"'s dvc.lock is not what its params and code produce\n\n'
         printf 'Before the reproduction, `dvc status` listed (what changed: its stages):\n\n%s\n\n' "$stale"
         printf 'Its committed results are out of date: run `dvc repro` and commit dvc.lock and the results. '
         printf 'The tables below compare the results reproduced here.\n\n'
       } >&3 ;;
    *) status=1
       printf '## dvc.lock\n\n`dvc status --json` gave what .github/stale.py cannot read: see the job log.\n\n' >&3 ;;
  esac
fi

if ! dvc repro; then
  printf '## Pipeline\n\n`dvc repro` failed: see the job log.\n' >&3
  exit 1
fi

{
  printf '## Results: %s vs this pull request, reproduced here\n\n' "$base"
  if out=$(python -m stages.compare "$base" workspace --md 2>&1); then
    printf '%s\n\n' "$out"
  else
    status=1
    printf '`python -m stages.compare %s workspace` could not compare:\n\n```\n%s\n```\n\n' "$base" "$out"
  fi

  printf '## Params: %s vs this pull request\n\n' "$base"
  if ! out=$(dvc params diff "$base" --md 2>&1); then
    status=1
    printf '`dvc params diff %s` failed:\n\n```\n%s\n```\n' "$base" "$out"
  elif [ "$(printf '%s\n' "$out" | grep -c '^|')" -le 2 ]; then
    printf 'No params changed.\n'                # (dvc prints the table's header and rule alone)
  else
    printf '%s\n' "$out"
  fi
} >&3
exit $status
