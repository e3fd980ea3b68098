/* cmd_report.c - `dsm report`: one run of the store as a self-contained HTML file (SPEC §6 "a run
 * report with plots"): the run row and its configuration, line charts of the metric families by
 * round (accuracy, labels, meta-verification, generator, rewards, GRPO), a table of every metric
 * by round, the loop's stage timings and the models the run registered. Inline SVG from
 * common/report.h; no scripts, fonts, images or styles from outside the file. docs/report.md.
 *
 * What is read (all by run id): runs (the row), metrics (any name, all rounds; where a metric has
 * several rows in a round, the one with the highest step, then id, is shown and the cell says how
 * many there were), loop_stages (detail->seconds), models (run_id). Every string from the store
 * is escaped on the way out. The page is well-formed XML as well as HTML (a polyglot), so tests
 * can parse it whole.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/db.h"
#include "common/report.h"
#include "common/util.h"

/* ---- the metric families charted -------------------------------------------------------------- */

/* A metric goes to the first family with a matching pattern ('*' matches any run of characters,
 * dots included); what no family takes is charted by its first name segment ("eval.*"). Series
 * follow the pattern order, then name order. share: values are fractions, drawn on [0, 1] when
 * they all fit. */
struct family {
    const char *title;
    const char *y_label;
    int share;
    const char *patterns[6];
};

static const struct family families[] = {
    {"Accuracy against ground truth", "share", 1,
     {"verifier.accuracy", "vote.majority_accuracy", "label.accuracy", "label.coverage", "verifier.fully_right", NULL}},
    {"Meta-verification", "share", 1, {"meta.reject_precision", "meta.confirm_precision", "meta.accuracy", NULL}},
    {"Generator proofs", "share", 1, {"generator.validity", "generator.heldout_validity", "generator.correct", "generator.honest", NULL}},
    {"Well-formed outputs", "share", 1, {"*.format_ok", NULL}},
    {"Mean reward", "reward", 0, {"*.mean_reward", NULL}},
    {"GRPO KL to the reference", "k3 KL", 0, {"grpo.*.kl", NULL}},
    {"GRPO clip fraction", "share of tokens", 1, {"grpo.*.clip_frac", NULL}},
    {"GRPO loss", "loss", 0, {"grpo.*.loss", NULL}},
    {"GRPO gradient norm", "norm", 0, {"grpo.*.grad_norm", NULL}},
    {"GRPO batch", "count", 0, {"grpo.*.groups", "grpo.*.sequences", NULL}},
};

/* Glob match: '*' = any run of characters. */
static int glob_match(const char *pat, const char *s) {
    for (; *pat; pat++, s++) {
        if (*pat == '*') {
            for (const char *t = s;; t++) {
                if (glob_match(pat + 1, t)) return 1;
                if (!*t) return 0;
            }
        }
        if (*s != *pat) return 0;
    }
    return *s == 0;
}

/* ---- what is read from the store ---------------------------------------------------------------- */

struct cell {
    double v;
    int n; /* metric rows for this (name, round); 0 = none */
};

struct report_data {
    PGresult *run, *metrics, *stages, *models;
    int nrounds, nnames;
    int *rounds;        /* (nrounds) ascending */
    const char **names; /* (nnames) ascending, borrowed from metrics */
    struct cell *cells; /* (nnames, nrounds) */
    int *family;        /* (nnames) index into families, or -1 - (first name with that prefix) */
};

static void data_free(struct report_data *d) {
    PQclear(d->run);
    PQclear(d->metrics);
    PQclear(d->stages);
    PQclear(d->models);
    free(d->rounds);
    free(d->names);
    free(d->cells);
    free(d->family);
    memset(d, 0, sizeof *d);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Index of round r in d->rounds (present by construction). */
static int round_index(const struct report_data *d, int r) {
    const int *p = bsearch(&r, d->rounds, (size_t)d->nrounds, sizeof *p, cmp_int);
    DSM_ASSERT(p);
    return (int)(p - d->rounds);
}

/* Length of the first dot-separated segment of a name (the whole name when it has no dot). */
static size_t prefix_len(const char *s) {
    const char *dot = strchr(s, '.');
    return dot ? (size_t)(dot - s) : strlen(s);
}

/* Rounds, names and the (name, round) matrix from the metrics rows (ordered by name, round). */
static int data_index(struct report_data *d, struct dsm_err *err) {
    int n = PQntuples(d->metrics);
    d->rounds = dsm_calloc((size_t)n + 1, sizeof *d->rounds, err);
    d->names = dsm_calloc((size_t)n + 1, sizeof *d->names, err);
    if (!d->rounds || !d->names) return DSM_ENOMEM;
    for (int i = 0; i < n; i++) {
        d->rounds[i] = (int)db_get_i64(d->metrics, i, "round", 0);
        const char *name = db_get(d->metrics, i, "name");
        if (!d->nnames || strcmp(d->names[d->nnames - 1], name)) d->names[d->nnames++] = name;
    }
    qsort(d->rounds, (size_t)n, sizeof *d->rounds, cmp_int);
    for (int i = 0; i < n; i++)
        if (!d->nrounds || d->rounds[d->nrounds - 1] != d->rounds[i]) d->rounds[d->nrounds++] = d->rounds[i];
    d->cells = dsm_calloc((size_t)d->nnames * (size_t)d->nrounds + 1, sizeof *d->cells, err);
    d->family = dsm_calloc((size_t)d->nnames + 1, sizeof *d->family, err);
    if (!d->cells || !d->family) return DSM_ENOMEM;
    for (int i = 0, k = -1; i < n; i++) {
        const char *name = db_get(d->metrics, i, "name");
        if (k < 0 || strcmp(d->names[k], name)) k++;
        struct cell *c = &d->cells[(size_t)k * (size_t)d->nrounds + (size_t)round_index(d, (int)db_get_i64(d->metrics, i, "round", 0))];
        c->v = db_get_f64(d->metrics, i, "value", NAN);
        c->n = (int)db_get_i64(d->metrics, i, "n", 1);
    }
    /* families: the first matching pattern wins; leftovers group by prefix */
    for (int k = 0; k < d->nnames; k++) {
        d->family[k] = INT32_MIN;
        for (size_t f = 0; f < DSM_ARRAY_LEN(families) && d->family[k] == INT32_MIN; f++)
            for (int p = 0; families[f].patterns[p] && d->family[k] == INT32_MIN; p++)
                if (glob_match(families[f].patterns[p], d->names[k])) d->family[k] = (int)f;
        if (d->family[k] != INT32_MIN) continue;
        size_t pl = prefix_len(d->names[k]);
        d->family[k] = -1 - k;
        for (int j = 0; j < k; j++)
            if (d->family[j] < 0 && prefix_len(d->names[j]) == pl && !strncmp(d->names[j], d->names[k], pl)) {
                d->family[k] = d->family[j];
                break;
            }
    }
    return DSM_OK;
}

/* Find the run (by id, by name: the newest of that name, or the newest of all) and read its rows. */
static int data_load(struct dsm_db *db, int64_t run_id, const char *name, struct report_data *d, struct dsm_err *err) {
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)run_id);
    const char *v[2] = {run_id > 0 ? ids : NULL, name};
    int rc = db_exec(db,
                     "SELECT id, name, kind, status, round, jsonb_pretty(config) AS config, "
                     "started_at::timestamptz(0)::text AS started, finished_at::timestamptz(0)::text AS finished, "
                     "extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8 AS seconds, "
                     "(SELECT count(*) FROM runs r2 WHERE r2.name = runs.name) AS same_name "
                     "FROM runs WHERE ($1::bigint IS NULL OR id = $1::bigint) AND ($2::text IS NULL OR name = $2::text) "
                     "ORDER BY id DESC LIMIT 1",
                     2, v, &d->run, err);
    if (rc) return rc;
    if (PQntuples(d->run) == 0) {
        if (run_id > 0) return dsm_errf(err, DSM_ENOTFOUND, "no run with id %lld in the store (list them: dsm db psql -c 'SELECT id, name, status FROM runs')", (long long)run_id);
        if (name) return dsm_errf(err, DSM_ENOTFOUND, "no run named '%s' in the store (list them: dsm db psql -c 'SELECT id, name, status FROM runs')", name);
        return dsm_errf(err, DSM_ENOTFOUND, "the store has no runs yet (dsm loop makes one)");
    }
    const char *rid = db_get(d->run, 0, "id");
    const char *w[1] = {rid};
    if ((rc = db_exec(db,
                      "SELECT DISTINCT ON (name, round) name, round, value, count(*) OVER (PARTITION BY name, round) AS n "
                      "FROM metrics WHERE run_id = $1::bigint ORDER BY name, round, step DESC, id DESC",
                      1, w, &d->metrics, err)) ||
        (rc = db_exec(db,
                      "SELECT round, stage, CASE WHEN jsonb_typeof(detail->'seconds') = 'number' "
                      "THEN (detail->>'seconds')::float8 END AS seconds, finished_at::timestamptz(0)::text AS finished "
                      "FROM loop_stages WHERE run_id = $1::bigint ORDER BY round, finished_at, stage",
                      1, w, &d->stages, err)) ||
        (rc = db_exec(db,
                      "SELECT id, name, kind, role, round, coalesce(path, endpoint, '') AS location, "
                      "created_at::timestamptz(0)::text AS created FROM models WHERE run_id = $1::bigint ORDER BY id",
                      1, w, &d->models, err)))
        return rc;
    return data_index(d, err);
}

/* Chart size: two side by side in the page's 1100 px column. */
enum { CHART_W = 520, CHART_H = 280 };

/* ---- writing the page ---------------------------------------------------------------------------- */

static const char *const page_style =
    "body{font-family:sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#222}"
    "h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}"
    "pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}"
    ".wide{overflow-x:auto}.charts{display:flex;flex-wrap:wrap;gap:16px}"
    "figure{margin:0;border:1px solid #ddd}.note{color:#555;font-size:13px}";

/* <tr><th>key</th><td>escaped value</td></tr> */
static void kv_row(struct report_buf *b, const char *key, const char *value) {
    report_buf_printf(b, "<tr><th>%s</th><td>", key);
    report_buf_escape(b, value ? value : "-");
    report_buf_puts(b, "</td></tr>\n");
}

static void write_header(struct report_buf *b, const struct report_data *d) {
    const PGresult *r = d->run;
    char secs[64];
    snprintf(secs, sizeof secs, "%.1f s%s", db_get_f64(r, 0, "seconds", 0), db_get(r, 0, "finished") ? "" : " so far");
    report_buf_puts(b, "<h1>dsm run report: ");
    report_buf_escape(b, db_get(r, 0, "name"));
    report_buf_puts(b, "</h1>\n<table class=\"run\">\n");
    kv_row(b, "run", db_get(r, 0, "name"));
    kv_row(b, "id", db_get(r, 0, "id"));
    kv_row(b, "kind", db_get(r, 0, "kind"));
    kv_row(b, "status", db_get(r, 0, "status"));
    kv_row(b, "round reached", db_get(r, 0, "round"));
    kv_row(b, "started", db_get(r, 0, "started"));
    kv_row(b, "finished", db_get(r, 0, "finished"));
    kv_row(b, "duration", secs);
    report_buf_puts(b, "</table>\n");
    if (db_get_i64(r, 0, "same_name", 1) > 1)
        report_buf_printf(b, "<p class=\"note\">%lld runs have this name; this is the newest (dsm report --run-id picks another).</p>\n",
                          (long long)db_get_i64(r, 0, "same_name", 1));
    report_buf_puts(b, "<h2>Configuration</h2>\n<pre class=\"config\">");
    report_buf_escape(b, db_get(r, 0, "config"));
    report_buf_puts(b, "</pre>\n");
}

/* Draw c; a chart the writer refuses (values so far apart that the range overflows) becomes a
 * note in its place, so one odd metric never costs the whole report. */
static int chart_or_note(struct report_buf *b, const struct report_chart *c, struct dsm_err *err) {
    int rc = report_svg_line_chart(b, c, err);
    if (rc != DSM_EINVAL) return rc;
    report_buf_puts(b, "<p class=\"note\">This chart could not be drawn: ");
    report_buf_escape(b, err->msg);
    report_buf_puts(b, "</p>");
    dsm_err_clear(err);
    return DSM_OK;
}

/* One chart of the names whose family is fam, series in pattern order (or name order). */
static int write_family_chart(struct report_buf *b, const struct report_data *d, int fam, double *xs, double *ys,
                              struct report_series *series, struct dsm_err *err) {
    int ns = 0;
    const struct family *f = fam >= 0 ? &families[fam] : NULL;
    char title[160];
    for (int p = 0; p < (f ? 6 : 1) && (!f || f->patterns[p]); p++)
        for (int k = 0; k < d->nnames; k++) {
            if (d->family[k] != fam || (f && !glob_match(f->patterns[p], d->names[k]))) continue;
            int dup = 0; /* taken by an earlier pattern of this family */
            for (int s = 0; s < ns; s++) dup |= series[s].name == d->names[k];
            if (dup) continue;
            double *x = xs + (size_t)ns * (size_t)d->nrounds, *y = ys + (size_t)ns * (size_t)d->nrounds;
            for (int i = 0; i < d->nrounds; i++) {
                const struct cell *c = &d->cells[(size_t)k * (size_t)d->nrounds + (size_t)i];
                x[i] = d->rounds[i];
                y[i] = c->n ? c->v : NAN; /* a stored NaN or infinity is a gap too */
            }
            series[ns] = (struct report_series){d->names[k], x, y, (size_t)d->nrounds};
            ns++;
        }
    if (f) {
        snprintf(title, sizeof title, "%s", f->title);
    } else {
        const char *first = d->names[-1 - fam];
        snprintf(title, sizeof title, "%.*s.*", (int)prefix_len(first), first);
    }
    struct report_chart c = {.title = title, .x_label = "round", .y_label = f ? f->y_label : "value", .series = series,
                             .nseries = (size_t)ns, .width = CHART_W, .height = CHART_H, .x_integer = 1, .y_fixed = f && f->share, .y_lo = 0, .y_hi = 1};
    report_buf_puts(b, "<figure>");
    int rc = chart_or_note(b, &c, err);
    report_buf_puts(b, "</figure>\n");
    return rc;
}

static int write_charts(struct report_buf *b, const struct report_data *d, struct dsm_err *err) {
    report_buf_puts(b, "<h2>Curves</h2>\n");
    if (!d->nnames) {
        report_buf_puts(b, "<p class=\"nodata\">This run has no metrics.</p>\n");
        return DSM_OK;
    }
    if (!strcmp(db_get(d->run, 0, "kind"), "loop"))
        report_buf_puts(b, "<p class=\"note\">Loop round r measures the models after r - 1 GRPO rounds: round 1 is the "
                           "state right after the bootstrap, the last round is evaluation only (docs/loop.md).</p>\n");
    if (d->nrounds == 1) report_buf_puts(b, "<p class=\"note\">One round only: points, no lines.</p>\n");
    size_t cap = (size_t)d->nnames * (size_t)d->nrounds;
    double *xs = dsm_calloc(cap, sizeof *xs, err), *ys = dsm_calloc(cap, sizeof *ys, err);
    struct report_series *series = dsm_calloc((size_t)d->nnames, sizeof *series, err);
    int rc = xs && ys && series ? DSM_OK : DSM_ENOMEM;
    report_buf_puts(b, "<div class=\"charts\">\n");
    for (int f = 0; f < (int)DSM_ARRAY_LEN(families) && !rc; f++) {
        int used = 0;
        for (int k = 0; k < d->nnames; k++) used |= d->family[k] == f;
        if (used) rc = write_family_chart(b, d, f, xs, ys, series, err);
    }
    for (int k = 0; k < d->nnames && !rc; k++) /* the leftover prefix groups, at their first name */
        if (d->family[k] == -1 - k) rc = write_family_chart(b, d, -1 - k, xs, ys, series, err);
    report_buf_puts(b, "</div>\n");
    free(xs);
    free(ys);
    free(series);
    return rc;
}

static void write_metric_table(struct report_buf *b, const struct report_data *d) {
    report_buf_puts(b, "<h2>Metrics by round</h2>\n");
    if (!d->nnames) {
        report_buf_puts(b, "<p class=\"nodata\">No metrics were recorded for this run.</p>\n");
        return;
    }
    int several = 0;
    report_buf_puts(b, "<div class=\"wide\"><table class=\"metrics\">\n<tr><th>metric</th>");
    for (int i = 0; i < d->nrounds; i++) report_buf_printf(b, "<th>round %d</th>", d->rounds[i]);
    report_buf_puts(b, "</tr>\n");
    for (int k = 0; k < d->nnames; k++) {
        report_buf_puts(b, "<tr><th>");
        report_buf_escape(b, d->names[k]);
        report_buf_puts(b, "</th>");
        for (int i = 0; i < d->nrounds; i++) {
            const struct cell *c = &d->cells[(size_t)k * (size_t)d->nrounds + (size_t)i];
            char v[48];
            if (!c->n) {
                report_buf_puts(b, "<td class=\"num\">-</td>");
                continue;
            }
            report_fmt_value(c->v, v, sizeof v);
            if (c->n > 1) {
                several = 1;
                report_buf_printf(b, "<td class=\"num\" title=\"last of %d values\">%s*</td>", c->n, v);
            } else {
                report_buf_printf(b, "<td class=\"num\">%s</td>", v);
            }
        }
        report_buf_puts(b, "</tr>\n");
    }
    report_buf_puts(b, "</table></div>\n");
    if (several)
        report_buf_puts(b, "<p class=\"note\">* the metric has several values in that round: the one with the highest "
                           "step is shown (hover for the count).</p>\n");
}

static int write_stages(struct report_buf *b, const struct report_data *d, struct dsm_err *err) {
    const PGresult *r = d->stages;
    int n = PQntuples(r);
    report_buf_puts(b, "<h2>Stage timings</h2>\n");
    if (!n) {
        report_buf_puts(b, "<p class=\"nodata\">No loop stages were recorded for this run.</p>\n");
        return DSM_OK;
    }
    /* seconds per round, charted: one point per round that has timed stages */
    double *x = dsm_calloc((size_t)n, sizeof *x, err), *y = dsm_calloc((size_t)n, sizeof *y, err);
    if (!x || !y) {
        free(x);
        free(y);
        return DSM_ENOMEM;
    }
    size_t np = 0;
    double total = 0;
    for (int i = 0; i < n; i++) {
        int round = (int)db_get_i64(r, i, "round", 0);
        double s = db_get_f64(r, i, "seconds", NAN);
        if (!isfinite(s)) continue;
        total += s;
        if (!np || x[np - 1] != round) x[np] = round, y[np++] = 0;
        y[np - 1] += s;
    }
    const struct report_series s = {"seconds (all stages)", x, y, np};
    struct report_chart c = {.title = "Seconds per round", .x_label = "round", .y_label = "seconds", .series = &s,
                             .nseries = 1, .width = CHART_W, .height = CHART_H, .x_integer = 1};
    report_buf_puts(b, "<div class=\"charts\"><figure>");
    int rc = chart_or_note(b, &c, err);
    report_buf_puts(b, "</figure></div>\n");
    free(x);
    free(y);
    if (rc) return rc;
    report_buf_puts(b, "<table class=\"stages\">\n<tr><th>round</th><th>stage</th><th>seconds</th><th>finished</th></tr>\n");
    for (int i = 0; i < n; i++) {
        char sec[48] = "-";
        if (db_get(r, i, "seconds")) snprintf(sec, sizeof sec, "%.2f", db_get_f64(r, i, "seconds", 0));
        report_buf_printf(b, "<tr><td class=\"num\">%lld</td><td>", (long long)db_get_i64(r, i, "round", 0));
        report_buf_escape(b, db_get(r, i, "stage"));
        report_buf_printf(b, "</td><td class=\"num\">%s</td><td>", sec);
        report_buf_escape(b, db_get(r, i, "finished"));
        report_buf_puts(b, "</td></tr>\n");
    }
    report_buf_printf(b, "<tr><th></th><th>all stages</th><td class=\"num\">%.2f</td><td></td></tr>\n</table>\n", total);
    return DSM_OK;
}

static void write_models(struct report_buf *b, const struct report_data *d) {
    const PGresult *r = d->models;
    report_buf_puts(b, "<h2>Models</h2>\n");
    if (!PQntuples(r)) {
        report_buf_puts(b, "<p class=\"nodata\">No models are registered with this run.</p>\n");
        return;
    }
    static const char *const cols[] = {"id", "name", "kind", "role", "round", "location", "created"};
    report_buf_puts(b, "<div class=\"wide\"><table class=\"models\">\n<tr>");
    for (size_t c = 0; c < DSM_ARRAY_LEN(cols); c++) report_buf_printf(b, "<th>%s</th>", cols[c]);
    report_buf_puts(b, "</tr>\n");
    for (int i = 0; i < PQntuples(r); i++) {
        report_buf_puts(b, "<tr>");
        for (size_t c = 0; c < DSM_ARRAY_LEN(cols); c++) {
            report_buf_puts(b, "<td>");
            report_buf_escape(b, db_get(r, i, cols[c]) ? db_get(r, i, cols[c]) : "-");
            report_buf_puts(b, "</td>");
        }
        report_buf_puts(b, "</tr>\n");
    }
    report_buf_puts(b, "</table></div>\n");
}

/* The whole page for d. */
static int write_page(struct report_buf *b, const struct report_data *d, struct dsm_err *err) {
    report_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>dsm report: ");
    report_buf_escape(b, db_get(d->run, 0, "name"));
    report_buf_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n", page_style);
    write_header(b, d);
    int rc = write_charts(b, d, err);
    if (rc) return rc;
    write_metric_table(b, d);
    if ((rc = write_stages(b, d, err))) return rc;
    write_models(b, d);
    report_buf_printf(b, "<p class=\"note\">Written by dsm report from the store (%d metric(s), %d round(s)).</p>\n</body>\n</html>\n",
                      d->nnames, d->nrounds);
    return report_buf_status(b, err);
}

int report_run_write(struct dsm_db *db, long long run_id, const char *run_name, const char *path, char *used_path,
                     size_t used_cap, struct dsm_err *err) {
    struct report_data d = {0};
    struct report_buf b;
    report_buf_init(&b);
    int rc = data_load(db, run_id, run_name, &d, err);
    if (!rc) rc = write_page(&b, &d, err);
    if (!rc) {
        char def[300];
        if (!path) { /* report-<name>.html, the name reduced to file-name-safe characters */
            const char *name = db_get(d.run, 0, "name");
            size_t j = 0;
            j += (size_t)snprintf(def, sizeof def, "report-");
            for (const char *p = name; *p && j < sizeof def - 6; p++)
                def[j++] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", *p) ? *p : '_';
            snprintf(def + j, sizeof def - j, ".html");
            path = def;
        }
        rc = dsm_file_write_atomic(path, b.data, b.len, err);
        if (!rc && used_path) snprintf(used_path, used_cap, "%s", path);
    }
    report_buf_free(&b);
    data_free(&d);
    return rc;
}

int cmd_report(int argc, char **argv) {
    const char *run = NULL, *out = NULL;
    long run_id = 0;
    const struct cli_opt opts[] = {
        {"--run", CLI_STR, &run, "NAME", "the run of this name (the newest when several share it)"},
        {"--run-id", CLI_LONG, &run_id, "N", "the run with this id"},
        {"--out", CLI_STR, &out, "FILE.html", "where to write (default report-<run name>.html)"},
    };
    const struct cli_cmd_spec spec = {
        "report", "[--run NAME | --run-id N] [--out FILE.html]",
        "Write one run of the store (default: the newest) as a self-contained HTML file: the run and\n"
        "its configuration, SVG line charts of the metrics by round (accuracy, labels,\n"
        "meta-verification, generator, rewards, GRPO KL/clip/loss), a table of every metric by round,\n"
        "the loop's stage timings and the models the run registered. Prints the file's path.\n"
        "Exit 2 when the run does not exist. docs/report.md.",
        opts, DSM_ARRAY_LEN(opts), 0};
    int rc = cli_parse(&spec, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 0 : rc;
    if (run && run_id) return cli_usage_error(spec.name, "give --run or --run-id, not both");
    if (run_id < 0) return cli_usage_error(spec.name, "--run-id must be a positive id");
    if (run && !*run) return cli_usage_error(spec.name, "--run needs a name");
    if (out && !*out) return cli_usage_error(spec.name, "--out needs a file name");
    struct dsm_err err = {0};
    struct dsm_db *db = NULL;
    struct db_open_opts oo = {.migrate = 1};
    char used[1200];
    if ((rc = db_open(&oo, &db, &err)) || (rc = report_run_write(db, run_id, run, out, used, sizeof used, &err))) {
        db_close(db);
        return cli_fail(spec.name, &err);
    }
    db_close(db);
    printf("%s\n", used);
    return 0;
}
