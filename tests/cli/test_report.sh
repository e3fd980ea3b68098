#!/usr/bin/env bash
# test_report.sh - `dsm report` on runs written with SQL into a throwaway cluster: a three-round
# run (metrics of several families, a NaN, a metric with two steps in one round, a metric name and
# a run name with <&>, stage timings, a model), a one-round run (points, no lines), a run with no
# metrics, and the errors (no runs yet, unknown name or id, both selectors, unwritable --out).
# The page is checked as XML (it is written well-formed), each <svg> on its own with
# xml.etree, the metric table cell by cell, every coordinate finite and inside its viewBox,
# nothing loaded from outside. When Chromium is installed (chromium, chromium-browser or
# google-chrome) the page is also loaded headless (--dump-dom and --screenshot); without one that
# part says so and the rest still runs (scripts/setup.sh does not install a browser: docs/report.md).
set -u
: "${DSM:?}" "${DSM_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/dsm-test-report.XXXXXX)
. "$DSM_SOURCE_DIR/tests/cli/lib_check.sh"
. "$DSM_SOURCE_DIR/tests/cli/lib_pg.sh"
pg_setup
trap 'pg_cleanup; rm -rf "$T"' EXIT
cd "$T"
export DSM_LOG=warn
q() { "$DSM" db psql -tA -F ' ' -c "$1"; }
same() { [ "$2" = "$3" ] && ok "$1" || bad "$1: got '$2', want '$3'"; }

"$DSM" db start >/dev/null 2>&1 || { echo "FAIL db start"; exit 1; }

expect_fail "no runs yet: exit 2" 2 'no runs yet' -- "$DSM" report

# run 1: three rounds
R1=$(q "INSERT INTO runs (name, config, status, round, started_at, finished_at) VALUES ('demo<&>', '{\"rounds\": 3, \"note\": \"<b>bold</b> & more\"}', 'done', 3, now() - interval '90 seconds', now()) RETURNING id" | head -1)
q "INSERT INTO metrics (run_id, round, step, name, value) SELECT $R1, r, s, n, v FROM (VALUES
   (1, 0, 'verifier.accuracy', 0.5), (2, 0, 'verifier.accuracy', 0.625), (3, 0, 'verifier.accuracy', 0.8125),
   (1, 0, 'label.accuracy', 0.7), (2, 0, 'label.accuracy', 0.8), (3, 0, 'label.accuracy', 0.9375),
   (1, 0, 'vote.majority_accuracy', 0.6), (3, 0, 'vote.majority_accuracy', 0.85),
   (1, 0, 'generator.validity', 0.21875), (2, 0, 'generator.validity', 0.3), (3, 0, 'generator.validity', 0.45),
   (1, 0, 'grpo.generator.kl', 0.0125), (2, 0, 'grpo.generator.kl', 0.03),
   (1, 0, 'grpo.verifier.kl', 0.02), (2, 0, 'grpo.verifier.kl', 'NaN'),
   (1, 0, 'generator.mean_reward', -0.25), (2, 0, 'generator.mean_reward', 0.125), (3, 0, 'generator.mean_reward', 0.375),
   (1, 0, 'grpo.generator.sequences', 512), (2, 0, 'grpo.generator.sequences', 1536),
   (1, 0, 'meta.reject_precision', 0.66), (2, 0, 'meta.reject_precision', 0.7),
   (1, 1, 'eval.<b>&amp;', 3), (1, 7, 'eval.<b>&amp;', 4.5), (2, 0, 'eval.<b>&amp;', 5)) t(r, s, n, v)" >/dev/null
q "INSERT INTO loop_stages (run_id, round, stage, detail) VALUES ($R1, 0, 'bootstrap_generator', '{\"seconds\": 12.5}'),
   ($R1, 1, 'generate', '{\"seconds\": 3.25}'), ($R1, 1, 'verify', '{\"seconds\": 4}'), ($R1, 2, 'generate', '{\"seconds\": 2}'),
   ($R1, 2, 'odd', '{\"seconds\": \"n/a\"}')" >/dev/null
q "INSERT INTO models (name, kind, role, path, run_id, round) VALUES ('loop-demo-generator-round-1', 'checkpoint', 'generator', '/m/<g>', $R1, 1)" >/dev/null

"$DSM" report --run 'demo<&>' >out1 2>err1
same "report: exit 0, default file name printed" "$? $(cat out1)" "0 report-demo___.html"
[ -s err1 ] && bad "report wrote to stderr: $(head -c 300 err1)" || ok "report: quiet on stderr"

# check_page FILE ROUNDS: XML structure, SVGs, the metric table, no external resources. Prints
# "table NAME=v1|v2|..." lines for the caller to compare.
check_page() {
  python3 - "$1" <<'EOF'
import math, re, sys
import xml.etree.ElementTree as ET
text = open(sys.argv[1], encoding="utf-8").read()
fail = []
def need(cond, what):
    if not cond: fail.append(what)
need(text.startswith("<!DOCTYPE html>"), "starts with the doctype")
need(text.rstrip().endswith("</html>"), "ends with </html>")
low = text.lower()
for bad in ("<script", "src=", "@import", "url(", "<link", "https://"):
    need(bad not in low, "nothing loaded from outside: " + bad)
need(low.count("http://") == low.count('xmlns="http://www.w3.org/2000/svg"'), "no URL but the SVG namespace")
try:
    root = ET.fromstring(text[text.index("<html"):])
except ET.ParseError as e:
    print("FAIL page is not well-formed XML:", e); sys.exit(1)
svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)
ns = "{http://www.w3.org/2000/svg}"
for i, s in enumerate(svgs):
    try:
        el = ET.fromstring(s)
    except ET.ParseError as e:
        fail.append("svg %d does not parse: %s" % (i, e)); continue
    need(el.tag == ns + "svg", "svg %d has the SVG namespace" % i)
    vb = [float(v) for v in el.get("viewBox").split()]
    need(el.find(ns + "title") is not None, "svg %d has a <title>" % i)
    for e in el.iter():
        for a in ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "width", "height"):
            v = e.get(a)
            if v is None: continue
            f = float(v)
            need(math.isfinite(f), "svg %d: finite %s" % (i, a))
            lim = vb[2] if a.startswith("x") or a == "width" or a == "cx" else vb[3]
            need(-1 <= f <= lim + 1, "svg %d: %s=%s inside the viewBox" % (i, a, v))
        d = e.get("d")
        if d:
            for num in d.replace("M", " ").replace("L", " ").split():
                need(math.isfinite(float(num)), "svg %d: finite path coordinate %s" % (i, num))
print("svgs %d" % len(svgs))
print("paths %d" % len(re.findall(r"<path\b", text)))
for t in root.iter("table"):
    if t.get("class") != "metrics": continue
    rows = list(t.iter("tr"))
    print("table header=" + "|".join("".join(c.itertext()) for c in rows[0]))
    for r in rows[1:]:
        cells = ["".join(c.itertext()) for c in r]
        print("table %s=%s" % (cells[0], "|".join(cells[1:])))
for f in fail: print("FAIL", f)
sys.exit(1 if fail else 0)
EOF
}

if check_page report-demo___.html >page1 2>&1; then ok "run 1: well-formed page and SVGs, finite coordinates, nothing external"; else bad "run 1 page: $(grep -v '^table' page1 | head -c 600)"; fi
tab() { sed -n "s/^table $1=//p" page1; }
same "table header: rounds" "$(tab header)" "metric|round 1|round 2|round 3"
same "table: verifier.accuracy" "$(tab verifier.accuracy)" "0.5|0.625|0.8125"
same "table: label.accuracy" "$(tab label.accuracy)" "0.7|0.8|0.9375"
same "table: a missing round is '-'" "$(tab vote.majority_accuracy)" "0.6|-|0.85"
same "table: a stored NaN shown as NaN" "$(tab grpo.verifier.kl)" "0.02|NaN|-"
same "table: negative values" "$(tab generator.mean_reward)" "-0.25|0.125|0.375"
same "table: counts" "$(tab grpo.generator.sequences)" "512|1536|-"
same "table: two steps in a round: the last, marked" "$(tab 'eval.<b>&amp;')" "4.5*|5|-"
n_svg=$(sed -n "s/^svgs //p" page1); n_svg=${n_svg:-0}
# families: accuracy, meta, generator, reward, KL, batch, eval.* and the seconds chart
same "one chart per family present, plus seconds" "$n_svg" 8
grep -q 'dsm run report: demo&lt;&amp;&gt;</h1>' report-demo___.html && ! grep -q 'demo<&>' report-demo___.html \
  && ok "run name escaped" || bad "run name not escaped"
grep -q '&quot;note&quot;: &quot;&lt;b&gt;bold&lt;/b&gt; &amp; more&quot;' report-demo___.html && ok "config escaped" || bad "config not escaped"
grep -q 'eval.&lt;b&gt;&amp;amp;' report-demo___.html && ! grep -q '<b>&amp;' report-demo___.html \
  && ok "metric name escaped in charts and table" || bad "metric name not escaped"
grep -q '/m/&lt;g&gt;' report-demo___.html && grep -q 'loop-demo-generator-round-1' report-demo___.html && ok "models table" || bad "models table"
grep -q '<td>bootstrap_generator</td><td class="num">12.50</td>' report-demo___.html && grep -q '<td>odd</td><td class="num">-</td>' report-demo___.html \
  && grep -q 'all stages</th><td class="num">21.75<' report-demo___.html && ok "stage timings (a non-number seconds shows '-')" || bad "stage timings"
grep -q 'verifier.accuracy, round 3: 0.8125</title>' report-demo___.html && ok "hover titles on points" || bad "hover titles"
grep -q '>Accuracy against ground truth<' report-demo___.html && grep -q '>GRPO KL to the reference<' report-demo___.html \
  && ok "family charts titled" || bad "family chart titles"

# run 2: one round only -> points, no lines; selected by id; --out
R2=$(q "INSERT INTO runs (name, kind) VALUES ('single', 'eval') RETURNING id" | head -1)
q "INSERT INTO metrics (run_id, round, name, value) VALUES ($R2, 1, 'verifier.accuracy', 0.75), ($R2, 1, 'eval.accuracy', 0.5),
   ($R2, 1, 'huge.a', 1.7e308), ($R2, 1, 'huge.b', -1.7e308)" >/dev/null
"$DSM" report --run-id "$R2" --out "$T/one.html" >out2 2>err2
same "report --run-id --out" "$? $(cat out2)" "0 $T/one.html"
if check_page one.html >page2 2>&1; then ok "run 2: well-formed"; else bad "run 2 page: $(head -c 600 page2)"; fi
same "one round: no lines" "$(sed -n 's/^paths //p' page2)" 0
same "one round: table" "$(sed -n 's/^table verifier.accuracy=//p' page2)" "0.75"
grep -q 'One round only' one.html && ok "one round: said" || bad "one round note missing"
same "a range too wide to chart: in the table" "$(sed -n 's/^table huge.a=//p' page2) $(sed -n 's/^table huge.b=//p' page2)" "1.7e+308 -1.7e+308"
grep -q 'This chart could not be drawn: chart &#39;huge.\*&#39;' one.html && ok "a range too wide to chart: a note in its place" || bad "no note for the undrawable chart"
grep -q 'No loop stages were recorded' one.html && grep -q 'No models are registered' one.html && ok "no stages, no models: said" || bad "empty sections"

# run 3: no metrics at all; the newest run is the default
R3=$(q "INSERT INTO runs (name) VALUES ('bare') RETURNING id" | head -1)
"$DSM" report >out3 2>err3
same "default: the newest run" "$? $(cat out3)" "0 report-bare.html"
grep -q 'This run has no metrics.' report-bare.html && ok "no metrics: said" || bad "no-metrics message missing"
if check_page report-bare.html >page3 2>&1; then ok "run 3: well-formed"; else bad "run 3 page: $(head -c 600 page3)"; fi
same "no metrics: no charts" "$(sed -n 's/^svgs //p' page3)" 0

# a second run with the name of run 1 is the one --run picks, with a note
q "INSERT INTO runs (name) VALUES ('demo<&>')" >/dev/null
"$DSM" report --run 'demo<&>' --out two.html >/dev/null 2>&1
grep -q '2 runs have this name' two.html && grep -q 'This run has no metrics' two.html && ok "--run: the newest of a name, noted" || bad "--run with a shared name"

expect_fail "unknown run name: exit 2" 2 "no run named 'nope'" -- "$DSM" report --run nope
expect_fail "unknown run id: exit 2" 2 'no run with id 999999' -- "$DSM" report --run-id 999999
expect_fail "both selectors: exit 2" 2 'not both' -- "$DSM" report --run x --run-id 1
expect_fail "bad id: exit 2" 2 'run-id' -- "$DSM" report --run-id -4
expect_fail "unwritable --out: exit 3" 3 "$T/no/such/dir" -- "$DSM" report --run-id "$R1" --out "$T/no/such/dir/r.html"
"$DSM" report --help >help 2>&1 && grep -q -- '--run-id' help && ok "--help" || bad "--help"

# headless Chromium, when one is installed
# (DSM_REPORT_BROWSER=none runs the test as on a machine without one)
browser=""
for b in chromium chromium-browser google-chrome; do
  [ "${DSM_REPORT_BROWSER:-}" = none ] && break
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  echo "note: no chromium, chromium-browser or google-chrome on PATH: the headless rendering check is left out (docs/report.md)"
else
  copts=(--headless --disable-gpu --no-sandbox --user-data-dir="$T/chrome" --hide-scrollbars)
  timeout 120 "$browser" "${copts[@]}" --dump-dom "file://$T/report-demo___.html" >dom.html 2>chrome.err
  rc=$?
  n_dom=$(grep -o '<svg' dom.html | wc -l)
  if [ $rc -eq 0 ] && [ "$n_dom" -eq "$n_svg" ] && grep -q 'dsm run report: demo&lt;&amp;&gt;' dom.html && grep -q '0.8125' dom.html; then
    ok "$browser --dump-dom: loaded, $n_dom SVGs in the DOM"
  else
    bad "$browser --dump-dom: exit $rc, $n_dom SVGs (want $n_svg): $(tail -c 300 chrome.err)"
  fi
  timeout 120 "$browser" "${copts[@]}" --window-size=1200,2400 --screenshot="$T/shot.png" "file://$T/report-demo___.html" >/dev/null 2>>chrome.err
  size=$(stat -c %s "$T/shot.png" 2>/dev/null || echo 0)
  if [ "$size" -gt 20000 ] && [ "$(head -c 8 "$T/shot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    ok "$browser --screenshot: a ${size}-byte PNG"
  else
    bad "$browser --screenshot: no PNG (size $size): $(tail -c 300 chrome.err)"
  fi
fi

check_done
