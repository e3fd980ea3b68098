#!/usr/bin/env bash
# test_label.sh - `dsm label` on constructed vote patterns (n = 3, m = 3, k = 2) in a throwaway
# cluster: no issues -> 1; two confirmed issues at 0 -> 0; every issue rejected by
# meta-verification -> 1; a lone lowest score -> uncertain (NULL); too few analyses, or an issue
# with too few meta-verifications -> no row; a format failure takes no part; a second run writes
# nothing; --relabel after the missing meta-verification arrives; bad flags.
set -u
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/dsm-test-label.XXXXXX)
. "$DSM_SOURCE_DIR/tests/cli/lib_check.sh"
. "$DSM_SOURCE_DIR/tests/cli/lib_pg.sh"
pg_setup
trap 'pg_cleanup; rm -rf "$T"' EXIT
cd "$T"
export DSM_LOG=warn
q() { "$DSM" db psql -tA -F ' ' -c "$1"; }
same() { [ "$2" = "$3" ] && ok "$1" || bad "$1: got '$2', want '$3'"; }

"$DSM" db start >/dev/null 2>&1 || { echo "FAIL db start"; exit 1; }
q "INSERT INTO problems (source, source_key, statement) VALUES ('t', 'p', 'Show it.')" >/dev/null
# proof KEY, then analyses "score:meta,meta,..." (score - = format failure; meta - = rating failure)
mk() {
  local key=$1; shift
  q "INSERT INTO proofs (problem_id, proof, origin, origin_key) SELECT id, 'proof $key', 't', '$key' FROM problems" >/dev/null
  local a s metas r
  for a in "$@"; do
    s=${a%%:*}; metas=${a#*:}
    if [ "$s" = - ]; then
      q "INSERT INTO verifications (proof_id, score, format_ok) SELECT id, NULL, false FROM proofs WHERE origin_key = '$key'" >/dev/null
    else
      q "INSERT INTO verifications (proof_id, score, analysis) SELECT id, $s, 'a' FROM proofs WHERE origin_key = '$key'" >/dev/null
    fi
    [ -z "$metas" ] && continue
    for r in ${metas//,/ }; do
      local v=$r ok=true; [ "$r" = - ] && { v=NULL; ok=false; }
      q "INSERT INTO meta_verifications (verification_id, score, format_ok) SELECT max(v.id), $v, $ok FROM verifications v JOIN proofs p ON p.id = v.proof_id WHERE p.origin_key = '$key'" >/dev/null
    done
  done
}
mk P1 "1:" "1:" "1:"                              # no issues -> 1
mk P2 "1:" "0:1,1,0" "0:1,1,1"                    # two confirmed issues at 0 -> 0
mk P3 "1:" "0:0,0,1" "0.5:0,-,0"                  # every issue rejected -> 1
mk P4 "0.5:1,1,1" "0:1,1,1" "1:"                  # lo 0 by one analysis only -> uncertain
mk P5 "1:" "1:"                                   # 2 of 3 analyses -> incomplete
mk P6 "1:" "0:1,1" "0:1,1,1"                      # an issue with 2 of 3 metas -> incomplete
mk P7 "-:" "0.5:1,1,0" "0.5:0,1,1" "0:0,0,0"      # format failure ignored; first 3 read: 0.5 x2 valid -> 0.5

"$DSM" label --n 3 --m 3 --k 2 >out1 2>err1
same "first run exit and counts" "$? $(cat out1)" '0 {"proofs": 7, "labeled": 4, "uncertain": 1, "incomplete": 2, "unchanged": 0}'
same "labels" "$(q "SELECT string_agg(p.origin_key || ':' || coalesce(l.value::text, 'null') || ':' || (l.vote->>'reason'), ' ' ORDER BY p.origin_key) FROM labels l JOIN proofs p ON p.id = l.proof_id")" \
    "P1:1.0:no-issues P2:0.0:agreed P3:1.0:all-issues-rejected P4:null:uncertain P7:0.5:agreed"
same "label columns" "$(q "SELECT DISTINCT source || ' ' || rule || ' ' || n || ' ' || m || ' ' || k || ' ' || origin || '|' FROM labels")" "auto v2-vote 3 3 2 |"
same "the full vote: validity and verification ids" \
    "$(q "SELECT string_agg((e->>'valid') || '@' || ((e->>'verification_id')::bigint IN (SELECT id FROM verifications WHERE proof_id = l.proof_id)), ' ') FROM labels l JOIN proofs p ON p.id = l.proof_id, jsonb_array_elements(l.vote->'analyses') e WHERE p.origin_key = 'P3'")" \
    "true@true false@true false@true"
same "P7: format failure counted, not voting" "$(q "SELECT (vote->>'format_failures') || ' ' || jsonb_array_length(vote->'analyses') FROM labels l JOIN proofs p ON p.id = l.proof_id WHERE p.origin_key = 'P7'")" "1 3"

"$DSM" label --n 3 --m 3 --k 2 >out2 2>err2
same "second run: nothing new" "$(cat out2)" '{"proofs": 2, "labeled": 0, "uncertain": 0, "incomplete": 2, "unchanged": 0}'
same "still 5 labels" "$(q 'SELECT count(*) FROM labels')" 5

# the missing meta-verification of P6 arrives: P6 can be labeled; --relabel re-votes the rest too
q "INSERT INTO meta_verifications (verification_id, score) SELECT min(v.id) + 1, 1 FROM verifications v JOIN proofs p ON p.id = v.proof_id WHERE p.origin_key = 'P6'" >/dev/null
"$DSM" label --n 3 --m 3 --k 2 --proof "$(q "SELECT id FROM proofs WHERE origin_key = 'P6'")" >out3 2>err3
same "P6 labeled once complete" "$(cat out3) $(q "SELECT l.value FROM labels l JOIN proofs p ON p.id = l.proof_id WHERE p.origin_key = 'P6'")" \
    '{"proofs": 1, "labeled": 1, "uncertain": 0, "incomplete": 0, "unchanged": 0} 0.0'
"$DSM" label --n 3 --m 3 --k 1 --relabel >out4 2>err4
same "--relabel with k 1: P4 becomes 0" "$(q "SELECT l.value || ' ' || l.k FROM labels l JOIN proofs p ON p.id = l.proof_id WHERE p.origin_key = 'P4'")" "0.0 1"
"$DSM" label --n 3 --m 3 --k 2 --origin other --no-meta >out5 2>err5
same "--origin other --no-meta: a second set; P3's rejected issues now count (uncertain)" "$(q "SELECT count(*) FROM labels WHERE origin = 'other'") $(q "SELECT coalesce(l.value::text, 'null') FROM labels l JOIN proofs p ON p.id = l.proof_id WHERE p.origin_key = 'P3' AND l.origin = 'other'")" "6 null"

expect_fail "k 0" 2 "at least 1" -- "$DSM" label --k 0
expect_fail "bad flag" 2 "" -- "$DSM" label --bogus
check_done
