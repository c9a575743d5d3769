#!/usr/bin/env bash
# Container entrypoint: `worker` runs every job in $KDP_JOBS_DIR (or the ones named), `dashboard` serves the
# Streamlit app, `health` checks the database, anything else is passed to the kdplatform CLI.
set -euo pipefail
KDP="${KDP_CLI:-kdplatform}"
: "${KDP_JOBS_DIR:=/jobs}"

wait_for_db() {
  local url="${KDP_DATABASE_URL:?set KDP_DATABASE_URL}" tries="${KDP_DB_TRIES:-30}"
  for ((i = 1; i <= tries; i++)); do
    if $KDP db current --db "$url" >/dev/null 2>&1; then return 0; fi
    echo "waiting for the database ($i/$tries)" >&2
    sleep "${KDP_DB_SLEEP:-2}"
  done
  echo "database $url did not answer" >&2
  return 1
}

case "${1:-help}" in
  worker)
    shift
    wait_for_db
    $KDP db upgrade --db "$KDP_DATABASE_URL"
    jobs=("$@")
    if [ ${#jobs[@]} -eq 0 ]; then
      mapfile -t jobs < <(find "$KDP_JOBS_DIR" -maxdepth 1 -name '*.yaml' | sort)
    fi
    [ ${#jobs[@]} -gt 0 ] || { echo "no job files in $KDP_JOBS_DIR" >&2; exit 2; }
    for job in "${jobs[@]}"; do
      echo "== $job"
      $KDP run "$job" --db "$KDP_DATABASE_URL" --workdir "${KDP_WORK_DIR:-/work}/$(basename "$job" .yaml)"
    done
    ;;
  dashboard)
    wait_for_db
    exec $KDP dashboard --db "$KDP_DATABASE_URL" --address "${KDP_DASHBOARD_ADDRESS:-0.0.0.0}"
    ;;
  health)
    $KDP db current --db "${KDP_DATABASE_URL:?set KDP_DATABASE_URL}" >/dev/null
    ;;
  help | -h | --help)
    echo "usage: kdp-entrypoint worker [JOB...] | dashboard | health | <kdplatform arguments>"
    ;;
  *)
    exec $KDP "$@"
    ;;
esac
