/* report.c - growable buffer, escaping, nice axes and SVG line charts for HTML reports; see
 * report.h. Layout of a chart (pixels, origin top left):
 *
 *     +---------------------------- width -----------------------------+
 *     |                    title (MT high band)                        |
 *     | y labels | plot area [px0, px1] x [py0, py1], grid, series      |
 *     |  (ML)    |                                                 (MR) |
 *     |          x tick labels and the x label (MB high band)          |
 *     +----------------------------------------------------------------+ height
 *       legend rows (LEG_ROW high each), flowed left to right
 */
#include "common/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the buffer ------------------------------------------------------------------------------ */

void report_buf_init(struct report_buf *b) { memset(b, 0, sizeof *b); }

void report_buf_free(struct report_buf *b) {
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Make room for n more bytes and the NUL; 0 on success, -1 (and failed set) otherwise. */
static int buf_reserve(struct report_buf *b, size_t n) {
    if (b->failed) return -1;
    if (n > (size_t)-1 / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void report_buf_append(struct report_buf *b, const char *s, size_t n) {
    if (n == 0 || buf_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void report_buf_puts(struct report_buf *b, const char *s) {
    if (s) report_buf_append(b, s, strlen(s));
}

void report_buf_printf(struct report_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        report_buf_append(b, small, (size_t)n);
        return;
    }
    if (buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void report_buf_escape(struct report_buf *b, const char *s) {
    if (!s) return;
    const char *run = s; /* start of the bytes not yet copied */
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        const char *rep = NULL;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) rep = "\xef\xbf\xbd"; /* U+FFFD */
        }
        if (!rep) continue;
        report_buf_append(b, run, (size_t)(p - run));
        report_buf_puts(b, rep);
        run = p + 1;
    }
    report_buf_puts(b, run);
}

int report_buf_status(const struct report_buf *b, struct dsm_err *err) {
    return b->failed ? dsm_errf(err, DSM_ENOMEM, "out of memory while writing the report (%zu bytes so far)", b->len)
                     : DSM_OK;
}

/* ---- axes ------------------------------------------------------------------------------------ */

int report_axis_nice(double min, double max, int target, struct report_axis *out, struct dsm_err *err) {
    if (!isfinite(min) || !isfinite(max) || min > max)
        return dsm_errf(err, DSM_EINVAL, "axis range [%g, %g] is not a finite, ordered range", min, max);
    if (target < 1) target = 1;
    if (min == max) {
        if (min == 0) {
            max = 1;
        } else {
            double d = fabs(min) * 0.1;
            min -= d;
            max += d;
        }
    }
    double range = max - min;
    if (!isfinite(range) || range <= 0)
        return dsm_errf(err, DSM_EINVAL, "axis range [%g, %g] is too wide or too narrow to draw", min, max);
    double raw = range / target, e = floor(log10(raw)), p = pow(10.0, e), f = raw / p;
    /* the tolerance keeps 0.2 / 0.1 = 2.0000000000000004 at 2 */
    double nf = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 2.5 + 1e-9 ? 2.5 : f <= 5 + 1e-9 ? 5 : 10;
    if (nf == 10) nf = 1, e += 1, p *= 10;
    double step = nf * p;
    double klo = floor(min / step + 1e-9), khi = ceil(max / step - 1e-9);
    if (!isfinite(step) || step <= 0 || !isfinite(klo * step) || !isfinite(khi * step) || khi - klo > 1e6)
        return dsm_errf(err, DSM_EINVAL, "axis range [%g, %g] cannot be divided into ticks", min, max);
    out->step = step;
    out->lo = klo * step;
    out->hi = khi * step;
    out->nticks = (int)(khi - klo) + 1;
    int de = (int)e;
    out->decimals = nf == 2.5 ? (1 - de > 0 ? 1 - de : 0) : (-de > 0 ? -de : 0);
    return DSM_OK;
}

void report_axis_label(const struct report_axis *a, double v, char *out, size_t cap) {
    if (fabs(v) < a->step * 1e-6) v = 0;
    if (a->decimals > 6 || fabs(v) >= 1e7)
        snprintf(out, cap, "%.4g", v);
    else
        snprintf(out, cap, "%.*f", a->decimals, v);
    if (out[0] == '-' && strspn(out + 1, "0.") == strlen(out + 1)) memmove(out, out + 1, strlen(out)); /* "-0.0" */
}

void report_fmt_value(double v, char *out, size_t cap) {
    if (isnan(v))
        snprintf(out, cap, "NaN");
    else if (isinf(v))
        snprintf(out, cap, "%s", v > 0 ? "Infinity" : "-Infinity");
    else
        snprintf(out, cap, "%.6g", v == 0 ? 0.0 : v);
}

/* ---- charts ---------------------------------------------------------------------------------- */

enum { ML = 64, MR = 16, MT = 32, MB = 44, XPAD = 12, LEG_ROW = 18, MAX_ROUND_TICKS = 20 };

/* Ten distinguishable colours (the "category10" hues widely used in plotting), cycled. */
static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* Check what report_svg_line_chart would need to draw c; fills the data extents. */
static int chart_check(const struct report_chart *c, double *xmin, double *xmax, double *ymin, double *ymax,
                       size_t *npoints, struct dsm_err *err) {
    if (c->nseries > 0 && !c->series) return dsm_errf(err, DSM_EINVAL, "chart '%s': no series array", c->title ? c->title : "");
    if (c->y_fixed && !(isfinite(c->y_lo) && isfinite(c->y_hi) && c->y_lo < c->y_hi))
        return dsm_errf(err, DSM_EINVAL, "chart '%s': fixed y range [%g, %g] is empty", c->title ? c->title : "", c->y_lo,
                        c->y_hi);
    if (c->width < 0 || c->height < 0 || c->width > 100000 || c->height > 100000)
        return dsm_errf(err, DSM_EINVAL, "chart '%s': size %d x %d out of range", c->title ? c->title : "", c->width, c->height);
    *xmin = INFINITY, *xmax = -INFINITY, *ymin = INFINITY, *ymax = -INFINITY, *npoints = 0;
    for (size_t s = 0; s < c->nseries; s++) {
        const struct report_series *sr = &c->series[s];
        if (sr->n > 0 && (!sr->x || !sr->y))
            return dsm_errf(err, DSM_EINVAL, "chart '%s': series %zu has no data arrays", c->title ? c->title : "", s);
        for (size_t i = 0; i < sr->n; i++) {
            if (!isfinite(sr->x[i]))
                return dsm_errf(err, DSM_EINVAL, "chart '%s': series '%s' point %zu has a non-finite x",
                                c->title ? c->title : "", sr->name ? sr->name : "", i);
            if (sr->x[i] < *xmin) *xmin = sr->x[i];
            if (sr->x[i] > *xmax) *xmax = sr->x[i];
            if (!isfinite(sr->y[i])) continue;
            (*npoints)++;
            if (sr->y[i] < *ymin) *ymin = sr->y[i];
            if (sr->y[i] > *ymax) *ymax = sr->y[i];
        }
    }
    if (*npoints && !isfinite(*xmax - *xmin))
        return dsm_errf(err, DSM_EINVAL, "chart '%s': x range too wide to draw", c->title ? c->title : "");
    return DSM_OK;
}

/* Rough width in pixels of s at font-size 12 (sans-serif averages about 7 px per character). */
static int text_width(const char *s) { return s ? 7 * (int)strlen(s) : 0; }

/* Legend rows needed to flow every series name across width w starting at x0. */
static int legend_rows(const struct report_chart *c, int x0, int w) {
    int rows = c->nseries ? 1 : 0, x = x0;
    for (size_t s = 0; s < c->nseries; s++) {
        int ew = 32 + text_width(c->series[s].name);
        if (x > x0 && x + ew > w) rows++, x = x0;
        x += ew;
    }
    return rows;
}

struct frame {
    double px0, px1, py0, py1;     /* plot area */
    double xmin, xmax, ylo, yhi;   /* data range mapped onto it */
};

static double map_x(const struct frame *f, double x) {
    if (f->xmax == f->xmin) return (f->px0 + f->px1) / 2;
    return f->px0 + XPAD + (x - f->xmin) / (f->xmax - f->xmin) * (f->px1 - f->px0 - 2 * XPAD);
}

static double map_y(const struct frame *f, double y) { return f->py1 - (y - f->ylo) / (f->yhi - f->ylo) * (f->py1 - f->py0); }

/* The x ticks into *ax: every integer for rounds (a nice integer step past MAX_ROUND_TICKS), else a
 * nice axis over the data, which then becomes the range mapped (f's xmin, xmax). */
static int x_ticks(const struct report_chart *c, struct frame *f, struct report_axis *ax, struct dsm_err *err) {
    int rc;
    if (c->x_integer) {
        double a = ceil(f->xmin), z = floor(f->xmax);
        memset(ax, 0, sizeof *ax);
        ax->step = 1;
        if (z - a + 1 > MAX_ROUND_TICKS) {
            struct report_axis n;
            if ((rc = report_axis_nice(f->xmin, f->xmax, 10, &n, err))) return rc;
            ax->step = ceil(n.step);
            a = ceil(a / ax->step) * ax->step;
        }
        ax->lo = a;
        ax->nticks = z >= a ? (int)((z - a) / ax->step) + 1 : 0;
        ax->hi = a + (ax->nticks ? ax->nticks - 1 : 0) * ax->step;
        return DSM_OK;
    }
    if ((rc = report_axis_nice(f->xmin, f->xmax, 6, ax, err))) return rc;
    if (f->xmin < f->xmax) f->xmin = ax->lo, f->xmax = ax->hi;
    else ax->lo = ax->hi = f->xmin, ax->nticks = 1;
    return DSM_OK;
}

/* One series: its connecting lines (breaking at gaps), then a marker with a hover title per point. */
static void draw_series(struct report_buf *b, const struct frame *f, const struct report_chart *c, size_t s) {
    const struct report_series *sr = &c->series[s];
    const char *col = palette[s % (sizeof palette / sizeof palette[0])];
    int in_path = 0, prev = 0;
    for (size_t i = 0; i < sr->n; i++) {
        int fin = isfinite(sr->y[i]);
        if (fin && prev) {
            if (!in_path)
                report_buf_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" d=\"M%.1f %.1f", col,
                                  map_x(f, sr->x[i - 1]), map_y(f, sr->y[i - 1]));
            report_buf_printf(b, " L%.1f %.1f", map_x(f, sr->x[i]), map_y(f, sr->y[i]));
            in_path = 1;
        } else if (in_path) {
            report_buf_puts(b, "\"/>\n");
            in_path = 0;
        }
        prev = fin;
    }
    if (in_path) report_buf_puts(b, "\"/>\n");
    for (size_t i = 0; i < sr->n; i++) {
        if (!isfinite(sr->y[i])) continue;
        char xv[32], yv[32];
        report_fmt_value(sr->x[i], xv, sizeof xv);
        report_fmt_value(sr->y[i], yv, sizeof yv);
        report_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"><title>", map_x(f, sr->x[i]),
                          map_y(f, sr->y[i]), sr->n > 25 ? "2" : "3.5", col); /* smaller markers when crowded */
        report_buf_escape(b, sr->name);
        report_buf_printf(b, ", %s %s: %s</title></circle>\n", c->x_integer ? "round" : "x", xv, yv);
    }
}

int report_svg_line_chart(struct report_buf *b, const struct report_chart *c, struct dsm_err *err) {
    double xmin = 0, xmax = 0, ymin = 0, ymax = 0; /* set by chart_check; zeroed for -O3's flow analysis */
    size_t npoints = 0;
    int rc;
    if ((rc = chart_check(c, &xmin, &xmax, &ymin, &ymax, &npoints, err))) return rc;
    int w = c->width ? c->width : 640, h = c->height ? c->height : 300;
    if (w < ML + MR + 4 * XPAD) w = ML + MR + 4 * XPAD;
    if (h < MT + MB + 20) h = MT + MB + 20;
    struct frame f = {ML, w - MR, MT, h - MB, xmin, xmax, 0, 1};
    struct report_axis yax = {0}, xax = {0};
    if (npoints) {
        if (c->y_fixed && ymin >= c->y_lo && ymax <= c->y_hi) rc = report_axis_nice(c->y_lo, c->y_hi, 5, &yax, err);
        else rc = report_axis_nice(ymin, ymax, 5, &yax, err);
        if (!rc) rc = x_ticks(c, &f, &xax, err);
        if (rc) return dsm_err_prefix(err, rc, "chart '%s'", c->title ? c->title : "");
        f.ylo = yax.lo, f.yhi = yax.hi;
    }
    int rows = legend_rows(c, ML, w - MR), total_h = h + rows * LEG_ROW + (rows ? 6 : 0);
    report_buf_printf(b,
                      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                      "font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"",
                      w, total_h, w, total_h);
    report_buf_escape(b, c->title);
    report_buf_puts(b, "\">\n<title>");
    report_buf_escape(b, c->title);
    report_buf_printf(b, "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", w, total_h);
    report_buf_printf(b, "<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">", ML);
    report_buf_escape(b, c->title);
    report_buf_puts(b, "</text>\n");
    /* the grid and the y ticks */
    for (int i = 0; npoints && i < yax.nticks; i++) {
        double v = yax.lo + i * yax.step, y = map_y(&f, v);
        char lab[48];
        report_axis_label(&yax, v, lab, sizeof lab);
        report_buf_printf(b,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#333333\">%s</text>\n",
                          f.px0, y, f.px1, y, f.px0 - 6, y + 4, lab);
    }
    for (int i = 0; npoints && i < xax.nticks; i++) {
        double v = xax.lo + i * xax.step, x = map_x(&f, v);
        char lab[48];
        if (c->x_integer) snprintf(lab, sizeof lab, "%.0f", v == 0 ? 0.0 : v);
        else report_axis_label(&xax, v, lab, sizeof lab);
        report_buf_printf(b,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#333333\">%s</text>\n",
                          x, f.py1, x, f.py1 + 5, x, f.py1 + 18, lab);
    }
    report_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333333\"/>\n",
                      f.px0, f.py0, f.px1 - f.px0, f.py1 - f.py0);
    if (c->x_label) {
        report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (f.px0 + f.px1) / 2, f.py1 + 36);
        report_buf_escape(b, c->x_label);
        report_buf_puts(b, "</text>\n");
    }
    if (c->y_label) {
        double yc = (f.py0 + f.py1) / 2;
        report_buf_printf(b, "<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">", yc, yc);
        report_buf_escape(b, c->y_label);
        report_buf_puts(b, "</text>\n");
    }
    if (!npoints)
        report_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#777777\">no data</text>\n",
                          (f.px0 + f.px1) / 2, (f.py0 + f.py1) / 2);
    for (size_t s = 0; npoints && s < c->nseries; s++) draw_series(b, &f, c, s);
    /* the legend, flowed in rows under the axes */
    int x = ML, row = 0;
    for (size_t s = 0; s < c->nseries; s++) {
        const char *col = palette[s % (sizeof palette / sizeof palette[0])];
        int ew = 32 + text_width(c->series[s].name);
        if (x > ML && x + ew > w - MR) row++, x = ML;
        int y = h + row * LEG_ROW + 8;
        report_buf_printf(b,
                          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>"
                          "<circle cx=\"%d\" cy=\"%d\" r=\"3.5\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
                          x, y, x + 20, y, col, x + 10, y, col, x + 26, y + 4);
        report_buf_escape(b, c->series[s].name);
        report_buf_puts(b, "</text>\n");
        x += ew;
    }
    report_buf_puts(b, "</svg>\n");
    return report_buf_status(b, err);
}
