# lib_check.sh - helpers for the shell tests (sourced, not run; not a test itself: no test_ prefix).
#   ok NAME / bad NAME             record a pass / a failure
#   expect_fail NAME CODE PATTERN -- CMD...
#                                  CMD must exit CODE with stderr matching PATTERN (extended regex)
#                                  and no sanitizer report
#   check_done                     print the count and return non-zero on any failure
# Uses $T (a scratch directory the test made) for the command's output.
fails=0
ok()  { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
expect_fail() {
  local name=$1 code=$2 pat=$3; shift 4
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne "$code" ]; then bad "$name: exit $rc, want $code: $(head -c 300 "$T/err")"; return; fi
  if ! grep -qE -- "$pat" "$T/err"; then bad "$name: message does not match /$pat/: $(head -c 300 "$T/err")"; return; fi
  if grep -qE 'Sanitizer|runtime error' "$T/err"; then bad "$name: sanitizer report"; return; fi
  ok "$name"
}
check_done() { echo "$fails failure(s)"; [ "$fails" -eq 0 ]; }
