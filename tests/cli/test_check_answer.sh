#!/usr/bin/env bash
# test_check_answer.sh - `dsm check-answer`: verdicts and exit codes (0 equal, 1 different,
# 2 usage error or bad gold), extraction from a full output, and no sanitizer report on bad input.
set -u
DSM=${DSM:?set by ctest}
T=$(mktemp -d /tmp/dsm-check-answer.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok()  { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

# expect NAME CODE STDOUT-PATTERN STDERR-PATTERN -- args...
expect() {
  local name=$1 code=$2 out=$3 err=$4; shift 5
  "$DSM" check-answer "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne "$code" ]; then bad "$name: exit $rc, want $code: $(head -c 300 "$T/err")"; return; fi
  if [ -n "$out" ] && ! grep -qE -- "$out" "$T/out"; then bad "$name: stdout $(head -c 200 "$T/out") !~ /$out/"; return; fi
  if [ -n "$err" ] && ! grep -qE -- "$err" "$T/err"; then bad "$name: stderr $(head -c 200 "$T/err") !~ /$err/"; return; fi
  if grep -qE 'Sanitizer|runtime error' "$T/err"; then bad "$name: sanitizer report"; return; fi
  ok "$name"
}

expect "fraction vs decimal"   0 '^equal$' '' -- --gold '\frac{1}{2}' --pred 0.5
expect "mixed number"          0 '^equal$' '' -- --gold '4\frac{2}{3}' --pred '14/3'
expect "different numbers"     1 '^different$' '' -- --gold 5 --pred 6
expect "interval brackets"     1 '^different$' '' -- --gold '(3,4]' --pred '[3,4]'
expect "set order"             0 '^equal$' '' -- --gold '\{1,2,3\}' --pred '\{3,1,2\}'
expect "choice"                0 '^equal$' '' -- --gold '\text{(C)}' --pred 'C'
expect "matrix"                0 '^equal$' '' -- --gold '\begin{pmatrix}1&2\\3&4\end{pmatrix}' --pred '\begin{bmatrix}1&2\\3&4\end{bmatrix}'
expect "symbolic"              0 '^equal$' '' -- --gold '(a+5)(b+2)' --pred 'ab+2a+5b+10'
expect "pred-text boxed"       0 '^equal$' 'extracted \(boxed\): 12' -- --explain --gold 12 --pred-text 'We add. <think>\boxed{3}</think> So $\boxed{12}$.'
expect "pred-text gsm8k"       0 '^equal$' '' -- --gold '1,000' --pred-text $'step\n#### 1000'
expect "pred-text none"        1 '^different$' 'extracted \(none\)' -- --explain --gold 12 --pred-text 'I think 12'
expect "pred-text last number" 0 '^equal$' '' -- --last-number --gold 12 --pred-text 'I think 12'
expect "truncated box"         1 '^different$' '' -- --gold 12 --pred-text '\boxed{12} or \boxed{1'
expect "rel-tol"               0 '^equal$' 'rule: float' -- --explain --rel-tol 1e-4 --gold '\frac{20000}{\pi}' --pred 6366.2
expect "default tol strict"    1 '^different$' '' -- --gold '\frac{20000}{\pi}' --pred 6366.2
expect "empty pred"            1 '^different$' '' -- --gold 5 --pred ''
expect "hostile pred"          1 '^different$' '' -- --gold 5 --pred '\frac{\frac{\frac{}{'
expect "huge power"            1 '^different$' '' -- --gold '10^{10^{10}}' --pred '10^{10^{10}}+1'

# usage errors and bad gold: exit 2 with a message
expect "missing gold"      2 '' 'required' -- --pred 5
expect "both preds"        2 '' 'exactly one' -- --gold 5 --pred 5 --pred-text 5
expect "no pred"           2 '' 'exactly one' -- --gold 5
expect "empty gold"        2 '' 'empty' -- --gold '' --pred 5
expect "blank gold"        2 '' 'empty' -- --gold '$ $' --pred 5
expect "bad flag"          2 '' 'unknown|--nope' -- --nope --gold 5 --pred 5
expect "bad rel-tol"       2 '' 'rel-tol' -- --gold 5 --pred 5 --rel-tol 3
expect "last-number alone" 2 '' 'last-number' -- --gold 5 --pred 5 --last-number
expect "help"              0 'usage: dsm check-answer' '' -- --help

big=$(head -c 9000 /dev/zero | tr '\0' '(')
expect "overlong gold"     2 '' 'longer' -- --gold "$big" --pred 5
expect "overlong pred"     1 '^different$' '' -- --gold 5 --pred "$big"

if [ $fails -ne 0 ]; then echo "$fails failures"; exit 1; fi
echo "all passed"
