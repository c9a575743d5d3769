#!/usr/bin/env bash
# Container entrypoint (docker/Dockerfile). Roles:
#   worker [JOB...]  wait for the database, migrate it, run the named jobs or every *.yaml in $KDP_JOBS_DIR;
#                    one failing job does not stop the others (exit 1 at the end if any failed); with
#                    KDP_WORKER_INTERVAL=SECONDS it passes over the folder again and again, so job files
#                    dropped in later get run (finished stages are skipped, so a pass over done jobs is cheap)
#   dashboard        the Streamlit app over $KDP_DATABASE_URL
#   health           exit 0 iff the database answers (the image's HEALTHCHECK)
#   anything else    passed to the kdplatform CLI
# Settings: KDP_DATABASE_URL, MLFLOW_TRACKING_URI (read by kdplatform), KDP_JOBS_DIR (/jobs),
# KDP_WORK_DIR (/work), KDP_DB_TRIES / KDP_DB_SLEEP (waiting for the database), KDP_CLI (tests).
# The database URL (password and all) stays in the environment: kdplatform reads KDP_DATABASE_URL when
# no --db is given, so no command line here carries it (`ps` shows command lines to every user).
set -euo pipefail
KDP="${KDP_CLI:-kdplatform}"
: "${KDP_JOBS_DIR:=/jobs}"

wait_for_db() {
  : "${KDP_DATABASE_URL:?set KDP_DATABASE_URL}"
  local tries="${KDP_DB_TRIES:-30}"
  for ((i = 1; i <= tries; i++)); do
    if $KDP db current >/dev/null 2>&1; then return 0; fi
    echo "waiting for the database ($i/$tries)" >&2
    sleep "${KDP_DB_SLEEP:-2}"
  done
  echo "the database (KDP_DATABASE_URL) did not answer" >&2
  return 1
}

# One pass over the jobs; returns 1 if a job failed, 2 if there was nothing to run.
run_jobs() {
  local jobs=("$@") failed=() job
  if [ ${#jobs[@]} -eq 0 ]; then
    mapfile -t jobs < <(find "$KDP_JOBS_DIR" -maxdepth 1 -name '*.yaml' | sort)
  fi
  if [ ${#jobs[@]} -eq 0 ]; then
    echo "no job files in $KDP_JOBS_DIR" >&2
    return 2
  fi
  for job in "${jobs[@]}"; do
    echo "== $job"
    if ! $KDP run "$job" --workdir "${KDP_WORK_DIR:-/work}/$(basename "$job" .yaml)"; then
      echo "job $job failed" >&2
      failed+=("$job")
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "${#failed[@]} job(s) failed: ${failed[*]}" >&2
    return 1
  fi
  return 0
}

case "${1:-help}" in
  worker)
    shift
    wait_for_db
    $KDP db upgrade
    while true; do
      status=0
      run_jobs "$@" || status=$?
      if [ -z "${KDP_WORKER_INTERVAL:-}" ]; then exit "$status"; fi
      [ -z "${KDP_WORKER_PASSES:-}" ] || { KDP_WORKER_PASSES=$((KDP_WORKER_PASSES - 1)); [ "$KDP_WORKER_PASSES" -gt 0 ] || exit "$status"; }
      sleep "$KDP_WORKER_INTERVAL"
    done
    ;;
  dashboard)
    wait_for_db
    exec $KDP dashboard --address "${KDP_DASHBOARD_ADDRESS:-0.0.0.0}"
    ;;
  health)
    : "${KDP_DATABASE_URL:?set KDP_DATABASE_URL}"
    $KDP db current >/dev/null
    ;;
  help | -h | --help)
    echo "usage: kdp-entrypoint worker [JOB...] | dashboard | health | <kdplatform arguments>"
    ;;
  *)
    exec $KDP "$@"
    ;;
esac
