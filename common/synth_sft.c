/* synth_sft.c - the compact role prompts of the synthetic domain and its SFT bootstrap records
 * ({"prompt","response","meta"}) for the generator, verifier and meta-verifier. See synth.h and
 * docs/synth.md ("Prompts", "SFT mix"). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/role.h"
#include "common/synth.h"
#include "common/synth_impl.h"

static const char *const role_names[] = {"generator", "verifier", "metaverifier"};

const char *synth_role_name(enum synth_role r) {
    return (int)r >= 0 && (int)r < 3 ? role_names[r] : "?";
}

int synth_role_from_name(const char *s) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, role_names[i])) return i;
    if (!strcmp(s, "meta") || !strcmp(s, "meta-verifier")) return SYNTH_ROLE_METAVERIFIER;
    return -1;
}

/* The templates and the first 12 hex digits of each text's SHA-256 (tests/cli/test_synth.sh
 * recomputes them with sha256sum, so an edit that forgets the hash fails there). */
static const struct {
    const char *name, *text, *sha12;
} templates[3] = {
    {"synth_generate", "Task: prove, then evaluate the proof.\nProblem: {{problem}}\n", "7d65b3f67344"},
    {"synth_verify", "Task: evaluate the solution.\nProblem: {{problem}}\nSolution:\n{{proof}}\n", "4649104da328"},
    {"synth_metaverify",
     "Task: rate the evaluation.\nProblem: {{problem}}\nSolution:\n{{proof}}\nEvaluation:\n{{analysis}}\n",
     "f33d16a6757e"},
};

void synth_template(enum synth_role role, struct role_template *t) {
    int r = (int)role >= 0 && (int)role < 3 ? (int)role : 0;
    role_template_builtin(t, templates[r].name, "v1", templates[r].text, templates[r].sha12);
}

/* s with trailing white space removed, copied into tmp (cap bytes; longer texts are cut). */
static const char *rtrim_copy(const char *s, char *tmp, size_t cap) {
    size_t n = s ? strlen(s) : 0;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(tmp, s, n);
    tmp[n] = 0;
    return tmp;
}

int synth_prompt(enum synth_role role, const char *problem_text, const char *proof,
                 const char *analysis, char *out, size_t cap) {
    if (cap) out[0] = 0;
    if ((int)role < 0 || (int)role > 2) return -1;
    struct role_template t;
    synth_template(role, &t);
    char pb[SYNTH_TEXT_CAP], an[SYNTH_TEXT_CAP];
    const char *keys[] = {"problem", "proof", "analysis"};
    const char *vals[] = {problem_text ? problem_text : "", rtrim_copy(proof, pb, sizeof pb),
                          rtrim_copy(analysis, an, sizeof an)};
    int nk = role == SYNTH_ROLE_GENERATOR ? 1 : role == SYNTH_ROLE_VERIFIER ? 2 : 3;
    char *text = NULL;
    size_t len = 0;
    if (role_template_render(&t, keys, vals, nk, &text, &len, NULL) != DSM_OK) return -1;
    int rc = -1;
    if (len < cap && len < (size_t)0x7fffffff) {
        memcpy(out, text, len + 1);
        rc = (int)len;
    }
    free(text);
    return rc;
}

void synth_sft_opts_default(struct synth_sft_opts *o) {
    memset(o, 0, sizeof *o);
    o->diff_lo = 1;
    o->diff_hi = 3;
    static const double pw[SYNTH_PLANT_COUNT_] = {35, 10, 8, 8, 8, 8, 3, 20};
    static const double aw[SYNTH_AFLAW_COUNT_] = {40, 25, 15, 10, 10};
    memcpy(o->plant_w, pw, sizeof pw);
    memcpy(o->aflaw_w, aw, sizeof aw);
    o->ver_noise = 0.15;
    o->gen_flawed = 0.30;
    o->gen_dishonest = 1.0 / 3.0;
}

static int weights_ok(const double *w, int n, int from) {
    double s = 0;
    for (int i = 0; i < n; i++) {
        if (!(w[i] >= 0) || w[i] > 1e9) return 0;
        if (i >= from) s += w[i];
    }
    return s > 0;
}

int synth_sft_opts_check(const struct synth_sft_opts *o, struct dsm_err *err) {
    if (o->diff_lo < 1 || o->diff_hi > SYNTH_MAX_DIFFICULTY || o->diff_lo > o->diff_hi)
        return dsm_errf(err, DSM_EINVAL, "difficulty range %d..%d is not within 1..%d", o->diff_lo,
                        o->diff_hi, SYNTH_MAX_DIFFICULTY);
    if (!weights_ok(o->plant_w, SYNTH_PLANT_COUNT_, 0))
        return dsm_errf(err, DSM_EINVAL, "proof-kind weights must be >= 0 with a positive sum");
    if (!weights_ok(o->plant_w, SYNTH_PLANT_COUNT_, 1) && o->gen_flawed > 0)
        return dsm_errf(err, DSM_EINVAL, "a flawed generator share needs a positive weight on some error kind");
    if (!weights_ok(o->aflaw_w, SYNTH_AFLAW_COUNT_, 0))
        return dsm_errf(err, DSM_EINVAL, "analysis-kind weights must be >= 0 with a positive sum");
    if (!weights_ok(o->aflaw_w, SYNTH_AFLAW_COUNT_, 1) && o->ver_noise > 0)
        return dsm_errf(err, DSM_EINVAL, "verifier noise needs a positive weight on some flawed analysis kind");
    const struct {
        const char *name;
        double v;
    } shares[] = {{"verifier noise", o->ver_noise}, {"generator flawed share", o->gen_flawed},
                  {"generator dishonest share", o->gen_dishonest}, {"generator carry-drop share", o->gen_carry_drop}};
    for (size_t i = 0; i < sizeof shares / sizeof shares[0]; i++)
        if (!(shares[i].v >= 0 && shares[i].v <= 1))
            return dsm_errf(err, DSM_EINVAL, "%s must be in [0, 1], got %g", shares[i].name, shares[i].v);
    return DSM_OK;
}

/* Pick an analysis flaw from w (skipping NONE when no_none) among those that apply to v. */
static enum synth_aflaw pick_aflaw(struct synth_rng *r, const double *w, int no_none,
                                   const struct synth_verdict *v) {
    double ww[SYNTH_AFLAW_COUNT_];
    double sum = 0;
    for (int i = 0; i < SYNTH_AFLAW_COUNT_; i++) {
        ww[i] = (no_none && i == SYNTH_AFLAW_NONE) || !synth_aflaw_applies(v, (enum synth_aflaw)i) ? 0 : w[i];
        sum += ww[i];
    }
    if (!(sum > 0)) return SYNTH_AFLAW_NONE;
    return (enum synth_aflaw)synth_rng_pick(r, ww, SYNTH_AFLAW_COUNT_);
}

static json_t *jnum(double x) { return json_real(x); }

int synth_sft_record(enum synth_role role, uint64_t seed, uint64_t index,
                     const struct synth_sft_opts *o, struct json_t **out, struct dsm_err *err) {
    *out = NULL;
    int rc = synth_sft_opts_check(o, err);
    if (rc) return rc;
    if ((int)role < 0 || (int)role > 2) return dsm_errf(err, DSM_EINVAL, "unknown role %d", (int)role);
    struct synth_rng r;
    synth_rng_init(&r, seed, index, 0x5f700 + (uint64_t)role);
    int d = synth_difficulty_pick(seed, index, o->diff_lo, o->diff_hi);
    struct synth_problem p;
    rc = synth_problem_generate(seed, index, d, &p, err);
    if (rc) return rc;
    char ptext[256], proof[SYNTH_TEXT_CAP], an[SYNTH_TEXT_CAP], resp[SYNTH_TEXT_CAP], prompt[3 * SYNTH_TEXT_CAP];
    synth_problem_text(&p, ptext, sizeof ptext);

    enum synth_plant plant = SYNTH_PLANT_NONE, planted;
    int flawed = 1, honest = 1, carry = 0;
    if (role == SYNTH_ROLE_GENERATOR) {
        flawed = synth_rng_unit(&r) < o->gen_flawed;
        if (flawed) {
            plant = (enum synth_plant)(1 + synth_rng_pick(&r, o->plant_w + 1, SYNTH_PLANT_COUNT_ - 1));
            honest = !(synth_rng_unit(&r) < o->gen_dishonest);
        } else if (o->gen_carry_drop > 0 && synth_rng_unit(&r) < o->gen_carry_drop) {
            carry = 1; /* the writer drops the carry and believes the proof right */
        }
    } else {
        plant = (enum synth_plant)synth_rng_pick(&r, o->plant_w, SYNTH_PLANT_COUNT_);
    }
    uint64_t wseed = synth_rng_next(&r);
    int plen, dropped = 0;
    if (carry) {
        plen = synth_proof_write_carry(&p, proof, sizeof proof, &dropped);
        planted = dropped ? SYNTH_PLANT_ARITH : SYNTH_PLANT_NONE;
        honest = !dropped;
    } else {
        plen = synth_proof_write(&p, plant, wseed, proof, sizeof proof, &planted);
    }
    if (plen < 0) return dsm_errf(err, DSM_EINVAL, "item %llu: the proof does not fit", (unsigned long long)index);
    struct synth_verdict v;
    synth_check(&p, proof, (size_t)plen, &v);

    enum synth_aflaw flaw = SYNTH_AFLAW_NONE;
    double an_score = v.score;
    struct synth_analysis_verdict av;
    memset(&av, 0, sizeof av);
    int len, qlen;
    if (role == SYNTH_ROLE_GENERATOR) {
        len = synth_gen_write(&p, proof, (size_t)plen, &v, honest, resp, sizeof resp);
        an_score = !honest && v.score < 1 ? 1 : v.score;
        qlen = synth_prompt(role, ptext, NULL, NULL, prompt, sizeof prompt);
    } else if (role == SYNTH_ROLE_VERIFIER) {
        if (synth_rng_unit(&r) < o->ver_noise) flaw = pick_aflaw(&r, o->aflaw_w, 1, &v);
        len = synth_analysis_write(&p, &v, flaw, synth_rng_next(&r), resp, sizeof resp, &an_score);
        qlen = synth_prompt(role, ptext, proof, NULL, prompt, sizeof prompt);
    } else {
        flaw = pick_aflaw(&r, o->aflaw_w, 0, &v);
        int alen = synth_analysis_write(&p, &v, flaw, synth_rng_next(&r), an, sizeof an, &an_score);
        if (alen < 0) return dsm_errf(err, DSM_EINVAL, "item %llu: analysis does not fit", (unsigned long long)index);
        synth_analysis_check(&v, an, (size_t)alen, &av);
        len = synth_meta_write(&p, &v, &av, resp, sizeof resp);
        qlen = synth_prompt(role, ptext, proof, an, prompt, sizeof prompt);
    }
    if (len < 0 || qlen < 0)
        return dsm_errf(err, DSM_EINVAL, "item %llu: the %s does not fit", (unsigned long long)index,
                        len < 0 ? "response" : "prompt");

    json_t *rec = json_object(), *meta = json_object();
    if (!rec || !meta) goto oom;
    if (json_object_set_new(meta, "role", json_string(synth_role_name(role))) ||
        json_object_set_new(meta, "index", json_integer((json_int_t)index)) ||
        json_object_set_new(meta, "difficulty", json_integer(d)) ||
        json_object_set_new(meta, "problem", json_string(ptext)) ||
        json_object_set_new(meta, "plant", json_string(dropped ? "carry_drop" : synth_plant_name(planted))) ||
        json_object_set_new(meta, "score", jnum(v.score)) ||
        json_object_set_new(meta, "defect", json_string(synth_defect_name(v.defect))))
        goto oom;
    if (role == SYNTH_ROLE_GENERATOR) {
        if (json_object_set_new(meta, "honest", json_boolean(honest)) ||
            json_object_set_new(meta, "self_score", jnum(an_score)))
            goto oom;
    } else {
        if (json_object_set_new(meta, "flaw", json_string(synth_aflaw_name(flaw))) ||
            json_object_set_new(meta, "analysis_score", jnum(an_score)))
            goto oom;
        if (role == SYNTH_ROLE_METAVERIFIER && json_object_set_new(meta, "ms", jnum(av.ms))) goto oom;
    }
    if (json_object_set_new(rec, "prompt", json_string(prompt)) ||
        json_object_set_new(rec, "response", json_string(resp)))
        goto oom;
    int bad = json_object_set_new(rec, "meta", meta); /* steals meta, even when it fails */
    meta = NULL;
    if (bad) goto oom;
    *out = rec;
    return DSM_OK;
oom:
    json_decref(meta);
    json_decref(rec);
    return dsm_errf(err, DSM_ENOMEM, "out of memory building SFT record %llu", (unsigned long long)index);
}

int synth_sft_to_messages(json_t *rec, struct dsm_err *err) {
    json_t *p = json_object_get(rec, "prompt"), *r = json_object_get(rec, "response");
    if (!json_is_string(p) || !json_is_string(r))
        return dsm_errf(err, DSM_EINVAL, "an SFT record needs string \"prompt\" and \"response\" fields");
    json_t *msgs = json_pack("[{s:s,s:O},{s:s,s:O}]", "role", "user", "content", p, "role", "assistant", "content", r);
    if (!msgs || json_object_set_new(rec, "messages", msgs)) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    json_object_del(rec, "prompt");
    json_object_del(rec, "response");
    return DSM_OK;
}
