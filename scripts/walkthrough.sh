#!/usr/bin/env bash
# Runs the README's walk-through, as written, and checks every answer.
#
#   scripts/walkthrough.sh [README.md]
#
# The README is the source: the script takes the ```sh blocks under its "## Walk-through" heading, one step per
# "### " heading, and runs them in order in ONE bash session (so CLIENT_ID, TOKEN, partner_token … carry from a
# step to the next, exactly as in the reader's terminal), against ONE server it starts itself with the README's
# start command (`DEV_MODE=true npm start`). After each step it checks that step's output (check_<n> below).
# Steps the README has and this file has no check for, or the other way round, fail the run.
#
# What differs from the reader's terminal, and nothing else:
#   - the server runs on free ports, with a scratch database (mm_walkthrough_<random>), its own Redis key prefix
#     and state directory, all given to the steps too, so the CLI talks to that server and that database; server
#     and steps get a clean environment (PATH, HOME, TMPDIR, LANG, REDIS_URL if set, and those variables), so the
#     caller's own settings cannot change the answers;
#   - in the blocks, http://127.0.0.1:8080 becomes that server's address and /tmp/mm a scratch directory;
#   - `npx member-match` runs the package's bin (bin/member-match.js) with node directly, which is what npx
#     resolves it to, without npm's start-up (about half a second a call on a small machine); the real
#     `npx member-match --version` is run once while the server starts. WALKTHROUGH_REAL_NPX=true keeps npx.
# On exit, success or not (also on SIGINT, SIGTERM, SIGHUP, or SIGPIPE when whoever reads its output is gone),
# the server is stopped, the database dropped, the Redis keys deleted and the scratch directory removed
# (WALKTHROUGH_KEEP=true keeps the directory, for a look at each step's output in out/). The data is the HL7
# example member and the demo roster: made-up people, no PHI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
README=$(cd "$(dirname "${1:-$ROOT/README.md}")" && pwd)/$(basename "${1:-$ROOT/README.md}")
cd "$ROOT"

say() { printf 'walkthrough: %s\n' "$*"; }
die() { printf 'walkthrough: FAILED: %s\n' "$*" >&2; exit 1; }

for tool in node npm curl jq psql redis-cli setsid; do
  command -v "$tool" >/dev/null || die "$tool is not installed (the walk-through needs node, npm, curl, jq; this script also psql, redis-cli, setsid)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/member-match-walkthrough.XXXXXX")
ID=$(node -p 'require("crypto").randomBytes(4).toString("hex")')
DB=mm_walkthrough_$ID
# The Postgres server (as the test suite's TEST_DATABASE_SERVER_URL), without a database name.
PG_SERVER=${TEST_DATABASE_SERVER_URL:-postgres://postgres@127.0.0.1:5432}
PG_SERVER=${PG_SERVER%/}
PG_ADMIN_URL=$PG_SERVER/postgres
server_pid=""
steps_pid=""
REDIS_KEY_PREFIX=""
npx_version=""

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

cleanup() {
  local rc=$?
  set +e # every step of the clean-up is tried, whatever failed before it
  trap - EXIT INT TERM HUP
  trap '' PIPE # whoever read our output may be gone (writes fail): clean up all the same
  if [ -n "$steps_pid" ] && kill -0 "$steps_pid" 2>/dev/null; then
    kill -TERM -- "-$steps_pid" 2>/dev/null || kill -TERM "$steps_pid" 2>/dev/null || true
  fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    # The server has a process group of its own (setsid): npm, the shell it runs and node.
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -s "$WORK/server.log" ]; then
    say "server log (last 20 lines):"
    tail -n 20 "$WORK/server.log" >&2 || true
  fi
  psql "$PG_ADMIN_URL" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 \
    || say "could not drop database $DB"
  if [ -n "${REDIS_KEY_PREFIX:-}" ]; then
    redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379}" --scan --pattern "$REDIS_KEY_PREFIX*" 2>/dev/null \
      | xargs -r -n 500 redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379}" del >/dev/null 2>&1 || true
  fi
  if [ "${WALKTHROUGH_KEEP:-}" = true ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  say "cleaned up: server stopped, database $DB dropped, Redis keys ${REDIS_KEY_PREFIX:-(none)}* deleted"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE # e.g. the test runner that reads our output was killed

# ---------------------------------------------------------------------------------------------------------------
# The steps, from the README

mkdir -p "$WORK/steps" "$WORK/out" "$WORK/files"
awk -v dir="$WORK/steps" '
  /^## /            { inwt = ($0 ~ /^## Walk-through[[:space:]]*$/); next }
  !inwt             { next }
  /^### /           { n++; title = substr($0, 5); print title > (dir "/" n ".title"); close(dir "/" n ".title"); next }
  /^```sh[[:space:]]*$/ { if (!n) { print "a ```sh block before the first step" > "/dev/stderr"; exit 2 } inblock = 1; next }
  inblock && /^```/ { inblock = 0; next }
  inblock           { print > (dir "/" n ".sh") }
' "$README"
STEPS=$(find "$WORK/steps" -name '*.title' | wc -l)
[ "$STEPS" -gt 0 ] || die "no steps (### headings) under '## Walk-through' in $README"

# ---------------------------------------------------------------------------------------------------------------
# What each step must have printed. $OUT is the step's output (stdout and stderr); the step's shell variables are
# visible. Each check names what it looks for.

# Each helper prints "ok" or "NO" and counts failures in FAILED; a step passes when none of its checks failed.
pass() { printf '  ok  %s\n' "$1"; }
fail() { printf '  NO  %s\n' "$1"; FAILED=$((FAILED + 1)); }
expect() { # expect "what" PATTERN: a line of the step's output matches (grep -E)
  if grep -Eq -- "$2" "$OUT"; then pass "$1"; else fail "$1 (no line matches /$2/)"; fi
}
expect_count() { # expect_count "what" N PATTERN: exactly N lines match
  local n
  n=$(grep -Ec -- "$3" "$OUT" || true)
  if [ "$n" -eq "$2" ]; then pass "$1"; else fail "$1 ($n lines match /$3/, expected $2)"; fi
}
expect_var() { # expect_var NAME REGEX: the step left this shell variable, matching
  if [[ "${!1:-}" =~ $2 ]]; then pass "\$$1 is set"; else fail "\$$1 does not match /$2/"; fi
}
expect_function() { # expect_function NAME: the step defined this shell function
  if [ "$(type -t "$1")" = function ]; then pass "$1 is defined"; else fail "$1 is not defined"; fi
}
status_line() { printf '^%s$' "$1"; } # curl -w '\n%{http_code}\n' prints the status on a line of its own

check_1() { # roster import
  expect 'the import job completed' '"state":"completed"'
  expect '39 rows, none rejected' '"rows":39.*"rejected":0'
}
check_2() { # partner registered
  expect 'the key pair was written' 'wrote .*private\.jwk\.json'
  expect_var CLIENT_ID '^mm-'
  expect_function partner_token
}
check_3() { # $member-match, then Patient search
  expect_var TOKEN '^eyJ'
  expect 'MemberIdentifier with the member id 55678' '"name":"MemberIdentifier".*"value":"55678"'
  expect 'the UMB coding' '"code":"UMB"'
  expect 'a searchset Bundle with one member' '"type":"searchset","total":1'
  expect_count 'two answers, both 200' 2 "$(status_line 200)"
}
check_4() { # refusals
  expect 'the #regular consent is refused' 'consent-policy-cannot-be-honoured'
  expect '... with 422' "$(status_line 422)"
  expect 'the uncertain match is a 422' '^HTTP/1\.1 422'
  expect '... with Retry-After: 3600' '^Retry-After: 3600'
  expect '... naming its review case' 'manual-review-required.*\(case [0-9a-f-]{36}\)'
}
check_5() { # review: claim, decide, confirm
  expect 'bob claimed the case' '"id": "[0-9a-f-]{36}"'
  expect 'the request beside the candidate' '"birthDate": "1974-12-25"'
  expect_var CASE '^[0-9a-f-]{36}$'
  expect_var MEMBER '^[0-9a-f-]{36}$'
  expect 'the decision awaits a second reviewer' '"status": "awaiting-confirmation"'
  expect 'ivy confirmed it' '"confirmedBy": "ivy"'
  expect '... and the case is decided' '"status": "decided"'
}
check_6() { # the same request again; bulk
  expect 'the reviewed request now answers 55678' '"name":"MemberIdentifier".*"value":"55678"'
  expect '... with 200' "$(status_line 200)"
  expect 'the bulk kick-off is accepted' '^HTTP/1\.1 202'
  expect_var STATUS_URL '/fhir/bulk-member-match-status/[0-9a-f-]+$'
  expect 'the bulk result lists the member in MatchedMembers' '^\{"group":"MatchedMembers","members":\["Patient/[0-9a-f-]{36}"\]\}$'
}
check_7() { # delegation
  expect_var AGENT_ID '^ag-'
  expect_var AGENT_TOKEN '^eyJ'
  expect 'the agent gets the match' '"name":"MemberIdentifier".*"value":"55678"'
  expect '... with 200' "$(status_line 200)"
  expect 'the agent may not read' 'scope-missing'
  expect '... 403' "$(status_line 403)"
}
check_8() { # workload: reconcile, disable, enable
  expect_var WORKLOAD_ID '^wl-'
  expect 'the reconciliation completed, 39 rows matched' '"state":"completed","rows":39,"counts":\{"matched":39'
  expect 'the per-row results were written' '^\{"line":2,"outcome":"matched","memberId":"55678"'
  expect 'the disabled workload is refused a token' 'workload is disabled'
  expect '... as the README says' '^refused, as it should be$'
  expect 'it is enabled again' '^enabled wl-'
  expect_var MEMBER_MATCH_TOKEN '^eyJ'
}
check_9() { # consent registry, audit
  expect 'the admin records the opt-out' '^\{"status":"opted-out"\}$'
  expect 'the partner is told member-opted-out' 'member-opted-out'
  expect '... with 422' "$(status_line 422)"
  expect 'the opt-out is removed' '^\{"status":"opted-in"\}$'
  expect 'the auditor verifies the chain' '^\{"ok":true,"events":[0-9]+'
  expect 'the reviewer may not' 'role-missing'
  expect '... 403' "$(status_line 403)"
  expect 'the CLI verifies the chain too' '^audit chain intact: [0-9]+ events'
}
check_10() { # links
  expect 'the active link is listed' '"status":"active"'
  expect_var LINK '^[0-9a-f-]{36}$'
  expect 'the supervisor revoked it' '^revoked [0-9a-f-]{36}'
  expect 'the partner no longer finds the member' '"type":"searchset","total":0'
  expect '... with 200' "$(status_line 200)"
}

for n in $(seq 1 "$STEPS"); do
  [ -s "$WORK/steps/$n.sh" ] || die "step $n ($(cat "$WORK/steps/$n.title")) has no \`\`\`sh block"
  [ "$(type -t "check_$n")" = function ] || die "README step $n ($(cat "$WORK/steps/$n.title")) has no check in $0: add check_$n"
done
[ "$(type -t "check_$((STEPS + 1))")" != function ] || die "$0 checks step $((STEPS + 1)), which the README does not have"

# ---------------------------------------------------------------------------------------------------------------
# The server: `DEV_MODE=true npm start`, on free ports, with a scratch database

# A clean environment, as on a reader's machine: the caller's own settings (CAN_SEGMENT_SENSITIVE_DATA,
# RUN_WORKERS=false, OIDC_ISSUER, WEB_CONCURRENCY, …) must not change the answers the README promises. Only what
# finds the tools and the servers is kept.
DB_URL="$PG_SERVER/$DB"
REDIS_KEY_PREFIX="mm:walkthrough:$ID:"
clean_env=(
  "PATH=$PATH" "HOME=${HOME:-/root}" "TMPDIR=${TMPDIR:-/tmp}" "LANG=${LANG:-C.UTF-8}"
  "DATABASE_URL=$DB_URL" "REDIS_KEY_PREFIX=$REDIS_KEY_PREFIX" "STATE_DIR=$WORK/state"
  "DEV_MODE=true" "LOG_LEVEL=${LOG_LEVEL:-warn}" "HOST=127.0.0.1"
)
[ -z "${REDIS_URL:-}" ] || clean_env+=("REDIS_URL=$REDIS_URL")
[ -z "${npm_config_cache:-}" ] || clean_env+=("npm_config_cache=$npm_config_cache")

say "README: $README ($STEPS steps)"
started=$(date +%s)
# A free port can be taken between finding it and binding it: then start again on others (three tries).
for attempt in 1 2 3; do
  PORT=$(free_port)
  METRICS_PORT=$(free_port)
  while [ "$METRICS_PORT" = "$PORT" ]; do METRICS_PORT=$(free_port); done
  BASE="http://127.0.0.1:$PORT"
  say "server $BASE (metrics :$METRICS_PORT), database $DB, Redis prefix $REDIS_KEY_PREFIX, files $WORK"
  env -i "${clean_env[@]}" "PORT=$PORT" "METRICS_PORT=$METRICS_PORT" setsid npm start >"$WORK/server.log" 2>&1 </dev/null &
  server_pid=$!

  # While the server starts: the README's commands say `npx member-match`; check that npx resolves it here.
  if [ "$attempt" -eq 1 ]; then
    npx_version=$(env -i "${clean_env[@]}" npx --no-install member-match --version 2>"$WORK/npx.err") \
      || die "npx member-match --version failed: $(head -3 "$WORK/npx.err")"
  fi

  ready=""
  for _ in $(seq 1 240); do
    kill -0 "$server_pid" 2>/dev/null || break
    if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then ready=yes; break; fi
    sleep 0.5
  done
  [ -z "$ready" ] || break
  if ! kill -0 "$server_pid" 2>/dev/null && grep -q EADDRINUSE "$WORK/server.log" && [ "$attempt" -lt 3 ]; then
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    say "a port was taken meanwhile; trying others"
    continue
  fi
  kill -0 "$server_pid" 2>/dev/null || die "the server exited during start-up"
  die "the server was not ready within 120 s"
done
say "server ready after $(($(date +%s) - started)) s; npx member-match --version: $npx_version"

# ---------------------------------------------------------------------------------------------------------------
# Run the steps in one bash session

npx() { if [ "${1:-}" = member-match ]; then shift; node "$ROOT/bin/member-match.js" "$@"; else command npx "$@"; fi; }
{
  echo 'set -eo pipefail'
  printf 'ROOT=%q\n' "$ROOT"
  # The checks and their helpers, and (unless WALKTHROUGH_REAL_NPX=true) the npx shortcut described at the top.
  declare -f pass fail expect expect_count expect_var expect_function status_line
  for n in $(seq 1 "$STEPS"); do declare -f "check_$n"; done
  [ "${WALKTHROUGH_REAL_NPX:-}" = true ] || declare -f npx
  # fd 3: the runner's own stderr, for the EXIT trap (set -e can exit inside a step, whose output is redirected)
  echo 'exec 3>&2'
  cat <<'TRAP'
trap 'rc=$?; if [ "$rc" -ne 0 ]; then echo "walkthrough: FAILED in step $STEP ($TITLE): a command exited $rc; the output so far (last 40 lines):" >&3; tail -n 40 "$OUT" >&3; fi' EXIT
TRAP
  for n in $(seq 1 "$STEPS"); do
    printf 'STEP=%d; TITLE=%q; OUT=%q\n' "$n" "$(cat "$WORK/steps/$n.title")" "$WORK/out/$n.txt"
    printf 'printf "\\nstep %d/%d: %%s\\n" "$TITLE"; STEP_STARTED=$SECONDS\n' "$n" "$STEPS"
    echo '{'
    sed -e "s#http://127\.0\.0\.1:8080#$BASE#g" -e "s#/tmp/mm#$WORK/files#g" "$WORK/steps/$n.sh"
    echo '} >"$OUT" 2>&1 </dev/null'
    printf 'FAILED=0; check_%d\n' "$n"
    printf 'if [ "$FAILED" -eq 0 ]; then printf "  (%%d s)\\n" $((SECONDS - STEP_STARTED)); else echo "walkthrough: FAILED: step %d ($TITLE) did not print what the README says; its output (last 40 lines):" >&2; tail -n 40 "$OUT" >&2; trap - EXIT; exit 1; fi\n' "$n"
  done
} >"$WORK/steps.sh"

steps_started=$(date +%s)
env -i "${clean_env[@]}" "PORT=$PORT" "METRICS_PORT=$METRICS_PORT" setsid bash "$WORK/steps.sh" &
steps_pid=$!
rc=0
wait "$steps_pid" || rc=$?
steps_pid=""
[ "$rc" -eq 0 ] || die "the walk-through stopped (exit $rc)"
say "all $STEPS steps passed in $(($(date +%s) - steps_started)) s ($(($(date +%s) - started)) s with the server's start)"
