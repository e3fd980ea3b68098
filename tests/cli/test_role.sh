#!/usr/bin/env bash
# test_role.sh - `dsm role prompt|sample`: the prompts carry SPEC §2's markers and the inputs, the
# template id is reported, a template file overrides the built-in one, bad input is refused, and a
# tiny random native model goes through prompt -> lm -> parse (every output a format failure).
set -u
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/dsm-test-role.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$DSM_SOURCE_DIR/tests/cli/lib_check.sh"
cd "$T"
printf 'Show that $2 + 2 = 4$.\n' >p.txt
printf 'Counting: $2 + 2 = 4$. {{not a placeholder}}\n' >y.txt
printf 'Step 1 is unjustified.\n' >a.txt

has() { grep -qF -- "$2" "$1" && ok "$3" || bad "$3: '$2' missing"; }
"$DSM" role prompt generator --problem p.txt >g.txt 2>g.err || bad "generator prompt: exit $?"
has g.txt 'Show that $2 + 2 = 4$.' "generator prompt has the problem"
has g.txt '## Solution' "generator prompt: Solution heading"
has g.txt '## Self Evaluation' "generator prompt: Self Evaluation heading"
has g.txt 'Based on my evaluation, the final overall score should be:' "generator prompt: score marker"
grep -qE 'template generate\.v1@[0-9a-f]{12}$' g.err && ok "template id on stderr" || bad "template id: $(cat g.err)"
"$DSM" role prompt verifier --problem p.txt --proof y.txt >v.txt 2>/dev/null || bad "verifier prompt: exit $?"
has v.txt 'Here is my evaluation of the solution:' "verifier prompt: analysis marker"
has v.txt '{{not a placeholder}}' "values are inserted verbatim"
"$DSM" role prompt metaverifier --problem p.txt --proof y.txt --analysis a.txt >m.txt 2>/dev/null || bad "metaverifier prompt"
has m.txt 'Here is my analysis of the "solution evaluation":' "metaverifier prompt: analysis marker"
has m.txt 'Based on my analysis, I will rate the "solution evaluation" as:' "metaverifier prompt: rating marker"
has m.txt 'Step 1 is unjustified.' "metaverifier prompt has the analysis"
"$DSM" role prompt refine --problem p.txt --proof y.txt --analysis a.txt --analysis a.txt >r.txt 2>/dev/null || bad "refine prompt"
has r.txt '## Candidate Solution(s) to Refine' "refine prompt: candidates heading"
has r.txt '=== Evaluation 2 of candidate 1 ===' "refine prompt: second evaluation"
"$DSM" role prompt verifier --problem p.txt --proof y.txt --json >j.json 2>/dev/null
[ "$(jq -r .template j.json | cut -c1-10)" = "verify.v1@" ] && ok "--json" || bad "--json: $(head -c 200 j.json)"
printf 'Grade {{proof}} of {{problem}}.' >t.md
"$DSM" role prompt verifier --problem p.txt --proof y.txt --template t.md >o.txt 2>o.err
[ "$(cat o.txt)" = "Grade Counting: \$2 + 2 = 4\$. {{not a placeholder}}
 of Show that \$2 + 2 = 4\$.
." ] && grep -q 'template file:t.md@' o.err && ok "--template" || bad "--template: $(cat o.txt o.err)"

printf 'Grade {{proof}}.' >t2.md
expect_fail "template lacking a placeholder" 2 "no \{\{problem\}\} placeholder" -- "$DSM" role prompt verifier --problem p.txt --proof y.txt --template t2.md
expect_fail "missing proof" 2 "--proof FILE is required" -- "$DSM" role prompt verifier --problem p.txt
expect_fail "metaverifier without analysis" 2 "exactly one --analysis" -- "$DSM" role prompt metaverifier --problem p.txt --proof y.txt
expect_fail "unknown role" 2 "name the role" -- "$DSM" role prompt prover --problem p.txt
expect_fail "missing file" 2 "nope.txt" -- "$DSM" role prompt generator --problem nope.txt
expect_fail "no backend" 2 "--backend SPEC is required" -- "$DSM" role sample generator --problem p.txt
expect_fail "bad backend" 2 "expected native:DIR or http:URL" -- "$DSM" role sample generator --problem p.txt --backend grpc:x
expect_fail "unreachable server" 3 "127.0.0.1:9" -- "$DSM" role sample generator --problem p.txt --backend http://127.0.0.1:9 --model-name m --retries -1
expect_fail "no subcommand" 2 "expected 'prompt' or 'sample'" -- "$DSM" role

# a tiny random model through the whole role loop
if "$DSM" model init --out model --preset tiny --layers 2 >/dev/null 2>&1; then
  "$DSM" role sample verifier --backend native:model --problem p.txt --proof y.txt -n 3 --max-tokens 8 \
      --max-context 2048 --device cpu --threads 2 --seed 5 >s.jsonl 2>s.err
  rc=$?
  if [ $rc -eq 0 ] && [ "$(wc -l <s.jsonl)" = 3 ] &&
     [ "$(jq -c '[.sample, .seed, .parsed.format_ok, .parsed.score]' s.jsonl | tr '\n' ' ')" = '[0,5,false,null] [1,6,false,null] [2,7,false,null] ' ] &&
     grep -q '0 of 3 completions well formed' s.err; then ok "native sample"
  else bad "native sample: exit $rc $(head -c 300 s.jsonl) $(head -c 300 s.err)"; fi
else bad "dsm model init failed"; fi

check_done
