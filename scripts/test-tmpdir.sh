# Sourced by scripts/test.sh and scripts/sanitize.sh before they run ctest:
# every temporary file and directory of the run (TMPDIR, and TEST_TMPDIR,
# which GoogleTest's TempDir() and the integration fixtures read) goes under
# one directory of its own, /tmp/imbridge-tests-XXXXXX. It is removed when
# the script exits successfully; after a failure it is kept, and its path
# printed, for the logs of the processes the tests started. Tests that leave
# their directories behind (a killed process, a fixture without a TearDown)
# no longer pile up in /tmp from run to run. Mode 1777, as /tmp's: the
# PostgreSQL servers the tests start run as an unprivileged user and make
# their directories in it.
imbridge_run_tmp="$(mktemp -d "${TMPDIR:-/tmp}/imbridge-tests-XXXXXX")"
chmod 1777 "$imbridge_run_tmp"
imbridge_end_run_tmp() {
  local status=$?
  if [ "$status" -eq 0 ]; then
    rm -rf "$imbridge_run_tmp"
  else
    echo "the run failed; its temporary files are kept in $imbridge_run_tmp" >&2
  fi
}
trap imbridge_end_run_tmp EXIT
export TMPDIR="$imbridge_run_tmp" TEST_TMPDIR="$imbridge_run_tmp"
