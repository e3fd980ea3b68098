# test_db_cli.sh - dsm db start|stop|status|migrate|psql, dsm import / export on hand-made records
# (good, bad, re-import), the socket fallback for long paths, DSM_DATABASE_URL, and, when the
# shared data directory exists, the documented counts of importing all of ../shared/data.
set -euo pipefail
source "$DSM_SOURCE_DIR/tests/cli/lib_pg.sh"
pg_setup
fail() { echo "FAIL: $*" >&2; exit 1; }
export DSM_LOG=warn

# ---- lifecycle ----
set +e; "$DSM" db status >/dev/null; rc=$?; set -e
[ $rc = 1 ] || fail "status before init should exit 1, got $rc"
ci=$("$DSM" db start) || fail "db start"
case "$ci" in host=*" dbname=dsm user=postgres") ;; *) fail "unexpected conninfo '$ci'";; esac
"$DSM" db status | grep -q '^status: running' || fail "status after start"
"$DSM" db status | grep -q "^conninfo: $ci\$" || fail "status conninfo"
[ "$("$DSM" db psql -tA -c 'SELECT 1')" = 1 ] || fail "db psql -tA -c"
[ "$("$DSM" db psql -tA -c 'SELECT count(*) FROM schema_migrations')" -ge 3 ] || fail "migrations recorded"
"$DSM" db migrate | grep -q '^applied 0 migration' || fail "re-migrate is not a no-op"
set +e; "$DSM" db frobnicate 2>/dev/null; rc=$?; set -e
[ $rc = 2 ] || fail "unknown subcommand should exit 2"

# DSM_DATABASE_URL: the same server seen as external
DSM_DATABASE_URL="$ci" "$DSM" db status | grep -q '^database: external' || fail "DSM_DATABASE_URL status"
[ "$(DSM_DATABASE_URL="$ci" "$DSM" db psql -tA -c 'SELECT current_database()')" = dsm ] || fail "DSM_DATABASE_URL psql"

# ---- import: hand-made records in the shipped layouts ----
d=$(mktemp -d /tmp/dsm-clidata-XXXXXX); pg_homes+=("$d")
mkdir -p "$d/opc" "$d/v2/outputs" "$d/imobench" "$d/gsm8k"
cat > "$d/opc/test.jsonl" <<'J'
{"problem_id": "T1", "competition": "test", "source": "hand", "year": 2024, "level": "easy", "model_id": "m/a", "problem": "Show 1+1=2.", "proof": "By definition.", "human_verdict": "correct", "reference_solution": null, "human_annotations": [], "llm_judge_issues": null}
{"problem_id": "T1", "competition": "test", "source": "hand", "year": 2024, "level": "easy", "model_id": "m/b", "problem": "Show 1+1=2.", "proof": "Because 3.", "human_verdict": "incorrect", "reference_solution": null, "human_annotations": [], "llm_judge_issues": null}
J
cat > "$d/v2/outputs/CMO2024.jsonl" <<'J'
{"problem_idx": "CMO2024-9", "question": "Q9", "model_prediction": {"proof": "P9", "average_automatic_rating": 0.5, "human_rating": 9}}
{"problem_idx": "CMO2024-8", "question": "Q8", "model_prediction": {"proof": "P8", "average_automatic_rating": 1.0, "human_rating": "21"}}
J
printf 'Problem ID,Problem,Short Answer,Category,Subcategory,Source\r\nA-1,"Find x,\nwhere ""x"" = 2.",2,Algebra,Eq,hand\r\n' > "$d/imobench/answerbench_v2.csv"
printf '{"question": "2+2?", "answer": "2+2=<<2+2=4>>4\\n#### 1,004"}\n' > "$d/gsm8k/test.jsonl"
out=$("$DSM" import "$d") || fail "import"
echo "$out" | grep -q 'imported 4 file(s).*: 6 records, 0 bad, 6 problems, 4 proofs, 4 labels' || fail "import summary: $out"
q() { "$DSM" db psql -tA -c "$1"; }
[ "$(q "SELECT value FROM labels l JOIN proofs p ON p.id = l.proof_id WHERE p.origin_key = 'CMO2024-9'")" = 0.5 ] || fail "9/21 -> 0.5"
[ "$(q "SELECT value || ' ' || points || ' ' || max_points FROM labels l JOIN proofs p ON p.id = l.proof_id WHERE p.origin_key = 'CMO2024-8'")" = "1.0 21 21" ] || fail "21/21 -> 1 with points kept"
[ "$(q "SELECT value FROM labels l JOIN proofs p ON p.id = l.proof_id WHERE p.origin_key = 'T1/m/b'")" = 0.0 ] || fail "opc incorrect -> 0"
[ "$(q "SELECT gold_answer FROM problems WHERE source = 'gsm8k'")" = 1004 ] || fail "gsm8k gold without commas"
[ "$(q "SELECT statement FROM problems WHERE source = 'answerbench'")" = "$(printf 'Find x,\nwhere "x" = 2.')" ] || fail "CSV quoted multi-line field"
out=$("$DSM" import "$d") || fail "re-import"
echo "$out" | grep -q ', 0 new rows$' || fail "re-import is not idempotent: $out"
[ "$(q 'SELECT count(*) FROM proofs')" = 4 ] || fail "re-import duplicated proofs"

# bad records: reported with file:line and field, skipped (counted); --strict rolls the file back
printf '%s\n%s\n' '{"problem_idx": "CMO2024-7", "question": "Q7", "model_prediction": {"proof": "P7", "human_rating": 3}}' \
  '{"problem_idx": "CMO2024-6", "question": "Q6", "model_prediction": {"proof": "P6", "human_rating": 30}}' > "$d/v2/outputs/CMO2024.jsonl"
set +e; out=$("$DSM" import --strict "$d/v2/outputs/CMO2024.jsonl" 2>&1); rc=$?; set -e
[ $rc = 2 ] || fail "--strict with a bad record should exit 2, got $rc"
echo "$out" | grep -q "CMO2024.jsonl:2: field 'model_prediction.human_rating'" || fail "bad record message: $out"
[ "$(q "SELECT count(*) FROM proofs WHERE origin_key = 'CMO2024-7'")" = 0 ] || fail "--strict left half a file"
out=$("$DSM" import "$d/v2/outputs/CMO2024.jsonl" 2>&1) || fail "non-strict import with a bad record"
echo "$out" | grep -q '2 records, 1 bad' || fail "bad record not counted: $out"
[ "$(q "SELECT count(*) FROM proofs WHERE origin_key = 'CMO2024-7'")" = 1 ] || fail "good record not imported"
echo '{"broken' > "$d/opc/test.jsonl"
set +e; "$DSM" import --strict "$d/opc/test.jsonl" 2>/dev/null; rc=$?; set -e
[ $rc = 2 ] || fail "invalid JSON with --strict should exit 2"
set +e; "$DSM" import /nonexistent/file.jsonl 2>/dev/null; rc=$?; set -e
[ $rc = 2 ] || fail "missing file should exit 2, got $rc"

# export: one JSON line per label
n=$("$DSM" export 2>/dev/null | wc -l)
[ "$n" = "$(q 'SELECT count(*) FROM labels')" ] || fail "export line count $n"
"$DSM" export --label-source human 2>/dev/null | head -1 | grep -q '"version": 1' || fail "export has no version"

# ---- the view on real data (when the shared data directory is present) ----
data="$DSM_SOURCE_DIR/../shared/data"
if [ -d "$data" ]; then
  "$DSM" db psql -q -c 'TRUNCATE labels, proofs, problems, models CASCADE' >/dev/null 2>&1
  out=$("$DSM" import "$data" 2>/dev/null) || fail "import of $data"
  echo "real data: $out" >&2
  echo "$out" | grep -q 'imported 20 file(s).*: 9434 records, 1 bad, 9433 problems, 1108 proofs, 1108 labels' || fail "real data counts: $out"
  [ "$(q 'SELECT count(*) FROM problems')" = 9013 ] || fail "distinct problems $(q 'SELECT count(*) FROM problems')"
  [ "$(q "SELECT count(*) FROM labels WHERE source = 'human' AND value = 1")" = 226 ] || fail "human label 1 count"
else
  echo "note: $data not present; real-data counts not checked" >&2
fi

# ---- stop, and the socket fallback for a home whose socket path would exceed 107 bytes ----
"$DSM" db stop 2>/dev/null
set +e; "$DSM" db status >/dev/null; rc=$?; set -e
[ $rc = 1 ] || fail "status after stop should exit 1"
long="$d/$(printf 'x%.0s' $(seq 1 90))"
mkdir -p "$long"; chmod 755 "$d" "$long"
pg_homes=("$long" "${pg_homes[@]}")
[ "$(DSM_HOME="$long" "$DSM" db psql -tA -c 'SELECT 2')" = 2 ] || fail "long DSM_HOME"
DSM_HOME="$long" "$DSM" db status | grep -q 'host=/tmp/dsm-pg-' || fail "no /tmp socket fallback for a long path"
echo "test_db_cli: ok" >&2
