/* report.h - the pieces of a self-contained HTML/SVG report: a growable text buffer, XML/HTML
 * escaping, "nice" axis ranges and inline SVG line charts. `dsm report` (cli/cmd_report.c) builds
 * a run's report from them; docs/report.md shows what it looks like.
 *
 * Everything here is a pure function of its arguments writing into a caller's struct report_buf:
 * no I/O, no globals, no JavaScript in the output, nothing fetched by the page. The SVG written
 * is well-formed XML on its own (an <svg> element with the SVG namespace, only the five XML
 * escapes, no control characters), so it can be cut out of the page and parsed by any XML reader.
 *
 * The buffer has a sticky error: an append that cannot allocate marks the buffer failed and every
 * later append is a no-op; report_buf_status() reports it once at the end. This keeps the writers
 * free of an error check per line. Non-finite numbers (NaN, infinities) never reach the SVG: a
 * point whose y is not finite is a gap in its series.
 */
#ifndef DSM_REPORT_H
#define DSM_REPORT_H

#include <stddef.h>

#include "common/err.h"

/* ---- the buffer ------------------------------------------------------------------------------ */

struct report_buf {
    char *data; /* NUL-terminated when len > 0 (NULL while empty), owned */
    size_t len;
    size_t cap;
    int failed; /* an allocation failed: data holds what was written before */
};

/* An empty buffer. */
void report_buf_init(struct report_buf *b);

/* Free the text and reset to empty. NULL is fine. */
void report_buf_free(struct report_buf *b);

/* Append n bytes of s verbatim. */
void report_buf_append(struct report_buf *b, const char *s, size_t n);

/* Append a NUL-terminated string verbatim. */
void report_buf_puts(struct report_buf *b, const char *s);

/* Append printf-style text (verbatim: never use it for text from outside, see report_buf_escape). */
void report_buf_printf(struct report_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append s (NULL = nothing) escaped for HTML/XML text and attribute values: & < > " ' become
 * &amp; &lt; &gt; &quot; &#39;; control characters other than tab, newline and carriage return
 * (not allowed in XML 1.0) become U+FFFD. Bytes >= 0x80 pass through (the store's text is UTF-8). */
void report_buf_escape(struct report_buf *b, const char *s);

/* DSM_OK, or DSM_ENOMEM (err set) when an append failed. */
int report_buf_status(const struct report_buf *b, struct dsm_err *err);

/* ---- axes ------------------------------------------------------------------------------------ */

struct report_axis {
    double lo, hi; /* the range shown; lo < hi */
    double step;   /* distance between ticks: 1, 2, 2.5 or 5 times a power of ten */
    int nticks;    /* ticks at lo + i * step, i = 0 .. nticks-1 (the last is hi) */
    int decimals;  /* digits after the point that label every tick exactly */
};

/* The smallest range [lo, hi] with lo <= min, hi >= max, both multiples of a "nice" step chosen so
 * that there are about `target` intervals (target >= 1; at most target + 3 ticks). A zero
 * range (min == max) is widened: [0, 1] around 0, else by a tenth of |min| on each side.
 * Errors: DSM_EINVAL when min or max is not finite, min > max, or the range overflows. */
int report_axis_nice(double min, double max, int target, struct report_axis *out, struct dsm_err *err);

/* Format tick value v of axis a into out (cap bytes) with a->decimals digits; never "-0". */
void report_axis_label(const struct report_axis *a, double v, char *out, size_t cap);

/* ---- charts ---------------------------------------------------------------------------------- */

/* One line of a chart: n points (x[i], y[i]); a y that is not finite is no point (the line breaks
 * there). x must be finite. Points are drawn as markers; consecutive points are joined, so a
 * series with one point is a marker alone. */
struct report_series {
    const char *name;  /* legend text (escaped when written) */
    const double *x;   /* (n) */
    const double *y;   /* (n) */
    size_t n;
};

struct report_chart {
    const char *title;    /* shown above the plot; escaped */
    const char *x_label;  /* under the x axis, e.g. "round"; escaped; NULL = none */
    const char *y_label;  /* beside the y axis; escaped; NULL = none */
    const struct report_series *series;
    size_t nseries;
    int width, height;    /* of the plot and its axes in pixels (the legend adds below); 0 = 640 x 300 */
    int x_integer;        /* x values are rounds: ticks only at integers */
    int y_fixed;          /* use [y_lo, y_hi] as the y range (e.g. [0, 1] for shares) when every
                           * finite y lies inside it; otherwise a nice range is chosen */
    double y_lo, y_hi;
};

/* Append one <svg> element drawing c: title, frame, y grid lines with labelled ticks, x ticks
 * (each round when x_integer and there are at most 20), axis labels, each series in its own
 * colour (a fixed palette, cycled) with a hover <title> on every point, and a legend below.
 * A chart with no finite point at all draws its frame and says "no data".
 * Errors: DSM_EINVAL for a chart that cannot be drawn (a non-finite x, a NULL series array with
 * nseries > 0, a y_fixed range with y_lo >= y_hi); DSM_ENOMEM via the buffer. Nothing is
 * appended on DSM_EINVAL. */
int report_svg_line_chart(struct report_buf *b, const struct report_chart *c, struct dsm_err *err);

/* Format a value for a table cell: "%.6g", and "NaN", "Infinity", "-Infinity" for the others. */
void report_fmt_value(double v, char *out, size_t cap);

#endif
