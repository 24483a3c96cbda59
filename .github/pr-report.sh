#!/usr/bin/env bash
# The pull-request report: reproduce the pipeline, then compare its results and params with BASE, in Markdown.
#
#     .github/pr-report.sh BASE        (BASE: a git revision, e.g. origin/main; run from the repository root)
#
# Writes to $GITHUB_STEP_SUMMARY when set (GitHub Actions shows it on the run's page), else to stdout.
# When $DATASETS_MIRROR is set, it is a folder: any dataset file it lacks is first fetched from the canonical
# URL into it (checked against its sha256 pin), so CI can cache the folder and `dvc repro` reads it offline.
# Exit status: 0 when every step worked; 1 otherwise (the report still says what failed).
set -uo pipefail
base=${1:?usage: .github/pr-report.sh BASE (a git revision, e.g. origin/main)}
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then exec 3>>"$GITHUB_STEP_SUMMARY"; else exec 3>&1; fi
export DVC_NO_ANALYTICS=1
status=0

if [ -n "${DATASETS_MIRROR:-}" ]; then
  mkdir -p "$DATASETS_MIRROR"
  python - <<'PY' || exit 1
import os
import sys
from pathlib import Path

from chapter4 import io, tasks
from stages import download

mirror = Path(os.environ["DATASETS_MIRROR"])
for name, pin in sorted(tasks.SHA256.items()):
    if not (mirror / name).is_file() or io.sha256(mirror / name) != pin:    # missing, or from older pins
        try:
            download.fetch(name, mirror)          # the canonical URL; nothing lands unless the pin matches
        except download.DownloadError as e:
            sys.exit(f"pr-report: {e}")
PY
fi

if ! dvc repro; then
  printf '## Pipeline\n\n`dvc repro` failed: see the job log.\n' >&3
  exit 1
fi

{
  printf '## Results: %s vs this pull request\n\n' "$base"
  if out=$(python -m stages.compare "$base" HEAD --md 2>&1); then
    printf '%s\n\n' "$out"
  else
    status=1
    printf '`python -m stages.compare %s HEAD` could not compare:\n\n```\n%s\n```\n\n' "$base" "$out"
  fi
  changed=$(git status --porcelain --untracked-files=no)
  if [ -n "$changed" ]; then
    printf '`dvc repro` here changed files this pull request commits (the table compares the committed ones):\n\n```\n%s\n```\n\n' "$changed"
  fi

  printf '## Params: %s vs this pull request\n\n' "$base"
  if out=$(dvc params diff "$base" --md 2>&1); then
    printf '%s\n' "${out:-No params changed.}"
  else
    status=1
    printf '`dvc params diff %s` failed:\n\n```\n%s\n```\n' "$base" "$out"
  fi
} >&3
exit $status
