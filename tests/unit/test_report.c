/* test_report.c - the HTML/SVG report writer (common/report.h): the growable buffer, escaping of
 * every XML-special and control character, nice axis ranges on hand-worked cases, and charts with
 * one point, no points, gaps (NaN), fixed [0, 1] ranges and values outside them, checked by the
 * elements and coordinates they contain (and that no "nan"/"inf" ever reaches the SVG). */
#include <math.h>
#include <string.h>

#include "common/report.h"
#include "tests/unit/test.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void test_buffer(void) {
    struct report_buf b;
    report_buf_init(&b);
    CHECK(b.len == 0 && b.data == NULL);
    report_buf_puts(&b, "a");
    report_buf_printf(&b, "%d-%s", 42, "x");
    CHECK(b.len == 5 && !strcmp(b.data, "a42-x"));
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int i = 0; i < 100; i++) report_buf_printf(&b, "%s", big); /* longer than the small printf buffer, and growth */
    CHECK(b.len == 5 + 100 * 999);
    CHECK(b.data[b.len] == 0 && b.data[b.len - 1] == 'z');
    struct dsm_err err = {0};
    CHECK(report_buf_status(&b, &err) == DSM_OK);
    b.failed = 1; /* a failed buffer stays failed and reports it */
    size_t len = b.len;
    report_buf_puts(&b, "more");
    CHECK(b.len == len);
    CHECK(report_buf_status(&b, &err) == DSM_ENOMEM && strstr(err.msg, "out of memory"));
    report_buf_free(&b);
    report_buf_free(NULL);
    CHECK(b.data == NULL && b.len == 0);
}

static void test_escape(void) {
    struct report_buf b;
    report_buf_init(&b);
    report_buf_escape(&b, "<script>alert(\"x\" & 'y')</script>");
    CHECK(!strcmp(b.data, "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"));
    report_buf_free(&b);
    report_buf_escape(&b, "tab\tnl\ncr\r bell\a del\x7f \xc3\xa9"); /* controls -> U+FFFD, UTF-8 kept */
    CHECK(!strcmp(b.data, "tab\tnl\ncr\r bell\xef\xbf\xbd del\xef\xbf\xbd \xc3\xa9"));
    report_buf_free(&b);
    report_buf_escape(&b, NULL);
    report_buf_escape(&b, "");
    CHECK(b.len == 0);
    report_buf_escape(&b, "&&");
    CHECK(!strcmp(b.data, "&amp;&amp;"));
    report_buf_free(&b);
}

static void axis_case(double lo, double hi, int target, double want_lo, double want_hi, double want_step, int want_n,
                      int want_dec) {
    struct report_axis a;
    struct dsm_err err = {0};
    CHECK_OK(report_axis_nice(lo, hi, target, &a, &err), &err);
    CHECK_NEAR(a.lo, want_lo, 1e-12);
    CHECK_NEAR(a.hi, want_hi, 1e-12);
    CHECK_NEAR(a.step, want_step, 1e-15);
    CHECK_MSG(a.nticks == want_n, "[%g, %g]: %d ticks, want %d", lo, hi, a.nticks, want_n);
    CHECK_MSG(a.decimals == want_dec, "[%g, %g]: %d decimals, want %d", lo, hi, a.decimals, want_dec);
    CHECK(a.lo <= lo && a.hi >= hi && a.nticks <= target + 3);
}

static void test_axis(void) {
    axis_case(0, 1, 5, 0, 1, 0.2, 6, 1);           /* shares: 0, 0.2, ..., 1 */
    axis_case(0.31, 0.87, 5, 0.2, 1.0, 0.2, 5, 1);  /* raw step 0.112 -> 0.2 */
    axis_case(0.1, 0.35, 5, 0.1, 0.35, 0.05, 6, 2); /* raw 0.05 exactly */
    axis_case(3, 97, 5, 0, 100, 20, 6, 0);
    axis_case(-7.5, 2.5, 4, -7.5, 2.5, 2.5, 5, 1);  /* raw 2.5 exactly: a 2.5 step needs one decimal */
    axis_case(0, 250, 10, 0, 250, 25, 11, 0);       /* 25 needs none */
    axis_case(0.0012, 0.0049, 5, 0.001, 0.005, 0.001, 5, 3);
    axis_case(0, 0, 5, 0, 1, 0.2, 6, 1);            /* a zero range around 0 */
    axis_case(5, 5, 5, 4.4, 5.6, 0.2, 7, 1);        /* a zero range elsewhere: [4.5, 5.5] widened to ticks */
    axis_case(1e6, 9e6, 4, 0, 1e7, 2e6, 6, 0);
    struct report_axis a;
    struct dsm_err err = {0};
    CHECK(report_axis_nice(NAN, 1, 5, &a, &err) == DSM_EINVAL && strstr(err.msg, "finite"));
    CHECK(report_axis_nice(0, INFINITY, 5, &a, &err) == DSM_EINVAL);
    CHECK(report_axis_nice(2, 1, 5, &a, &err) == DSM_EINVAL);
    CHECK(report_axis_nice(-1.7e308, 1.7e308, 5, &a, &err) == DSM_EINVAL); /* the range overflows */
    char lab[48];
    CHECK_OK(report_axis_nice(-1, 1, 4, &a, &err), &err);
    report_axis_label(&a, a.lo + 2 * a.step, lab, sizeof lab); /* 0 computed as -1 + 2 * 0.5 */
    CHECK(!strcmp(lab, "0.0"));
    report_axis_label(&a, -1e-17, lab, sizeof lab); /* never "-0.0" */
    CHECK(!strcmp(lab, "0.0"));
    report_axis_label(&a, -0.5, lab, sizeof lab);
    CHECK(!strcmp(lab, "-0.5"));
    report_fmt_value(NAN, lab, sizeof lab);
    CHECK(!strcmp(lab, "NaN"));
    report_fmt_value(-INFINITY, lab, sizeof lab);
    CHECK(!strcmp(lab, "-Infinity"));
    report_fmt_value(0.8125, lab, sizeof lab);
    CHECK(!strcmp(lab, "0.8125"));
    report_fmt_value(-0.0, lab, sizeof lab);
    CHECK(!strcmp(lab, "0"));
}

/* Every number-like attribute of the SVG is finite: no "nan" or "inf" anywhere. */
static void check_finite_svg(const char *svg) {
    const char *bad[] = {"nan", "inf", "NaN", "Inf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(!strstr(svg, bad[i]), "'%s' in the SVG: %.80s", bad[i], strstr(svg, bad[i]));
}

static void test_chart_basic(void) {
    const double x[3] = {1, 2, 3}, acc[3] = {0.5, 0.75, 0.875}, lab[3] = {0.6, NAN, 0.9};
    const struct report_series s[2] = {{"verifier.accuracy", x, acc, 3}, {"label <&> accuracy", x, lab, 3}};
    struct report_chart c = {.title = "Accuracy & \"agreement\"", .x_label = "round", .y_label = "share",
                             .series = s, .nseries = 2, .x_integer = 1, .y_fixed = 1, .y_lo = 0, .y_hi = 1};
    struct report_buf b;
    struct dsm_err err = {0};
    report_buf_init(&b);
    CHECK_OK(report_svg_line_chart(&b, &c, &err), &err);
    const char *svg = b.data;
    static const char head[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" ";
    CHECK(svg && !strncmp(svg, head, sizeof head - 1));
    CHECK(count(svg, "<svg") == 1 && count(svg, "</svg>") == 1);
    CHECK(strstr(svg, "Accuracy &amp; &quot;agreement&quot;") != NULL);
    CHECK(strstr(svg, "label &lt;&amp;&gt; accuracy") != NULL && !strstr(svg, "<&>"));
    /* 3 + 2 points with hover titles, plus one legend marker per series */
    CHECK_MSG(count(svg, "<circle") == 7, "%d circles", count(svg, "<circle"));
    CHECK(strstr(svg, "verifier.accuracy, round 3: 0.875</title>") != NULL);
    /* one connected path for the first series; the NaN in the second leaves no segment at all */
    CHECK_MSG(count(svg, "<path") == 1, "%d paths", count(svg, "<path"));
    CHECK(count(svg, " L") == 2);
    /* y: the fixed [0, 1] range: ticks 0.0 .. 1.0; x: rounds 1, 2, 3 */
    CHECK(strstr(svg, ">0.0</text>") && strstr(svg, ">0.2</text>") && strstr(svg, ">1.0</text>"));
    CHECK(strstr(svg, ">1</text>") && strstr(svg, ">2</text>") && strstr(svg, ">3</text>") && !strstr(svg, ">4</text>"));
    /* geometry: plot area 64..624 x 32..256; x = 1 at the left pad (76), 3 at the right (612);
     * y = 0.5 -> 256 - 0.5 * 224 = 144 */
    CHECK(strstr(svg, "<circle cx=\"76.0\" cy=\"144.0\"") != NULL);
    CHECK(strstr(svg, "<circle cx=\"612.0\" cy=\"60.0\"") != NULL); /* 0.875 -> 256 - 196 = 60 */
    CHECK(strstr(svg, "round</text>") && strstr(svg, "rotate(-90"));
    check_finite_svg(svg);
    report_buf_free(&b);

    /* the same data outside [0, 1]: the fixed range is dropped for a nice one */
    const double big[3] = {-0.2, 1.4, 3.1};
    const struct report_series s2 = {"grpo.generator.kl", x, big, 3};
    c.series = &s2;
    c.nseries = 1;
    CHECK_OK(report_svg_line_chart(&b, &c, &err), &err);
    CHECK(strstr(b.data, ">-1</text>") && strstr(b.data, ">4</text>")); /* [-1, 4] step 1 */
    check_finite_svg(b.data);
    report_buf_free(&b);
}

static void test_chart_one_point(void) {
    const double x[1] = {1}, y[1] = {0.25};
    const struct report_series s = {"generator.validity", x, y, 1};
    struct report_chart c = {.title = "one round", .series = &s, .nseries = 1, .x_integer = 1};
    struct report_buf b;
    struct dsm_err err = {0};
    report_buf_init(&b);
    CHECK_OK(report_svg_line_chart(&b, &c, &err), &err);
    CHECK(count(b.data, "<path") == 0);                 /* a point, not a line */
    CHECK(count(b.data, "<circle") == 2);               /* the point and its legend marker */
    CHECK(strstr(b.data, "<circle cx=\"344.0\"") != NULL); /* centred: (64 + 624) / 2 */
    CHECK(count(b.data, "text-anchor=\"middle\" fill=\"#333333\">1</text>") == 1); /* one x tick */
    CHECK(strstr(b.data, "no data") == NULL);
    check_finite_svg(b.data);
    report_buf_free(&b);
}

static void test_chart_empty(void) {
    struct report_buf b;
    struct dsm_err err = {0};
    report_buf_init(&b);
    /* no series */
    struct report_chart c = {.title = "empty"};
    CHECK_OK(report_svg_line_chart(&b, &c, &err), &err);
    CHECK(strstr(b.data, "no data") && count(b.data, "<circle") == 0 && count(b.data, "</svg>") == 1);
    report_buf_free(&b);
    /* a series with no points, and one whose every value is NaN */
    const double x[2] = {1, 2}, y[2] = {NAN, NAN};
    const struct report_series s[2] = {{"none", NULL, NULL, 0}, {"all missing", x, y, 2}};
    c.series = s;
    c.nseries = 2;
    c.x_integer = 1;
    CHECK_OK(report_svg_line_chart(&b, &c, &err), &err);
    CHECK(strstr(b.data, "no data") != NULL);
    CHECK(count(b.data, "<circle") == 2 && count(b.data, "<path") == 0); /* legend markers only */
    check_finite_svg(b.data);
    report_buf_free(&b);
}

static void test_chart_gaps_and_many_rounds(void) {
    double x[40], y[40];
    for (int i = 0; i < 40; i++) x[i] = i, y[i] = i == 10 || i == 11 ? NAN : i * 0.5;
    const struct report_series s = {"loss", x, y, 40};
    struct report_chart c = {.title = "gaps", .series = &s, .nseries = 1, .x_integer = 1};
    struct report_buf b;
    struct dsm_err err = {0};
    report_buf_init(&b);
    CHECK_OK(report_svg_line_chart(&b, &c, &err), &err);
    CHECK_MSG(count(b.data, "<path") == 2, "%d paths", count(b.data, "<path")); /* 0..9 and 12..39 */
    CHECK(count(b.data, "<circle") == 38 + 1);
    /* 40 rounds: x ticks every 5 (nice step over 10 intervals), not 40 labels */
    CHECK(strstr(b.data, ">35</text>") && !strstr(b.data, ">36</text>"));
    check_finite_svg(b.data);
    report_buf_free(&b);
}

static void test_chart_bad(void) {
    struct report_buf b;
    struct dsm_err err = {0};
    report_buf_init(&b);
    const double x[2] = {1, NAN}, y[2] = {0, 1};
    const struct report_series s = {"bad x", x, y, 2};
    struct report_chart c = {.title = "bad", .series = &s, .nseries = 1};
    CHECK(report_svg_line_chart(&b, &c, &err) == DSM_EINVAL && strstr(err.msg, "non-finite x"));
    CHECK(b.len == 0); /* nothing appended */
    struct report_chart c2 = {.title = "bad range", .y_fixed = 1, .y_lo = 1, .y_hi = 1};
    CHECK(report_svg_line_chart(&b, &c2, &err) == DSM_EINVAL && strstr(err.msg, "fixed y range"));
    struct report_chart c3 = {.title = "no array", .nseries = 3};
    CHECK(report_svg_line_chart(&b, &c3, &err) == DSM_EINVAL);
    const double hx[2] = {-1.7e308, 1.7e308}, hy[2] = {0, 1};
    const struct report_series hs = {"huge", hx, hy, 2};
    struct report_chart c4 = {.title = "huge", .series = &hs, .nseries = 1};
    CHECK(report_svg_line_chart(&b, &c4, &err) == DSM_EINVAL);
    const double hy2[2] = {-1.7e308, 1.7e308}, hx2[2] = {1, 2}; /* y range overflows: named by chart */
    const struct report_series hs2 = {"huge y", hx2, hy2, 2};
    struct report_chart c5 = {.title = "huge y", .series = &hs2, .nseries = 1};
    CHECK(report_svg_line_chart(&b, &c5, &err) == DSM_EINVAL && strstr(err.msg, "chart 'huge y': axis range"));
    CHECK(b.len == 0);
    report_buf_free(&b);
}

int main(void) {
    test_buffer();
    test_escape();
    test_axis();
    test_chart_basic();
    test_chart_one_point();
    test_chart_empty();
    test_chart_gaps_and_many_rounds();
    test_chart_bad();
    return test_main_end();
}
