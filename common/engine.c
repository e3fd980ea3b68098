/* engine.c - batched generation; see engine.h.
 *
 * Per run: a KV pool of `slots` slots, each laid out (L, cap, KV) like a struct dsm_kv, so a slot
 * can be prefilled by dsm_model_forward through a non-owning view. The loop:
 *   1. admit waiting samples into free slots: read the prompt's KV from the slot where a sibling
 *      prefilled it (shared, stored once: the slot stays held while any sample reads it), or
 *      prefill the prompt into the slot (first time, or when no such slot is held); the prompt's
 *      last logits are kept per request and give every sample its first token;
 *   2. one batched decode step for all live sequences (one linear per weight matrix for all);
 *   3. sample each, append, check EOS / stop strings / length; finished slots are freed.
 */
#include "common/engine.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/model_impl.h"
#include "common/sampler.h"
#include "common/tokenizer.h"
#include "common/util.h"

struct seq {                  /* one live sample in a slot */
    int live;
    int req, idx;
    int len;                  /* tokens in the KV (shared prefix included) */
    int pslot, plen;          /* KV rows 0..plen-1 live in slot pslot (itself when it prefilled) */
    int32_t next;             /* token to feed at the next step */
    struct dsm_rng rng;
    int32_t *ids;
    float *lps;
    int n;
    char *text;
    size_t tlen, tcap;
    int cut;                  /* a stop string ended the text: nothing after it is kept */
    struct tok_stream *ts;
};

struct req_state {
    float *first_logits;      /* (V) after the prompt, once prefilled */
    int next_sample;          /* samples admitted so far */
};

struct dsm_engine {
    struct dsm_model *m;
    const struct dsm_tokenizer *tok;
    int max_batch;
    size_t budget;
    struct dsm_engine_stats st;
    /* per run */
    int slots, cap;
    enum dsm_dtype kvdt;      /* of the pool: f32 or f16 */
    size_t slot_stride;       /* elements per slot: L * cap * KV */
    void *kpool, *vpool;      /* device (slots, L, Hkv, cap, D) of kvdt: one head's rows contiguous */
    float *pre_k, *pre_v;     /* device (L, longest prompt, KV) f32: a prompt's prefill before its store */
    float *knew, *vnew;       /* device (B, KV) */
    float *scratch;           /* device (B, Hq, cap) */
    int32_t *dev_ids, *dev_pos, *dev_slot, *dev_len, *dev_pslot, *dev_plen; /* device (B) */
    int *ref;                 /* (slots) live samples reading a slot's prompt rows, its owner aside */
    int *pref_req;            /* (slots) the request whose prompt was prefilled there, or -1 */
    float *logits;            /* host (B, V) */
    int nthreads;             /* threads sampling the live sequences (the backend's host_threads) */
    float *sp;                /* host (nthreads, V) sampling scratch */
    int32_t *sidx;            /* host (nthreads, V) */
    int32_t *pick;            /* host (slots): this step's token of each live sequence */
    float *pick_lp;           /* host (slots): its log-probability */
    struct seq *seqs;         /* (slots) */
};

int dsm_kv_dtype_parse(const char *name, enum dsm_dtype *out, struct dsm_err *err) {
    if (name && !strcmp(name, "f32")) *out = DSM_DT_F32;
    else if (name && !strcmp(name, "f16")) *out = DSM_DT_F16;
    else return dsm_errf(err, DSM_EINVAL, "KV cache dtype '%s': use f32 or f16", name ? name : "(none)");
    return DSM_OK;
}

int dsm_engine_create(struct dsm_model *m, const struct dsm_tokenizer *tok,
                      const struct dsm_engine_opts *opts, struct dsm_engine **out,
                      struct dsm_err *err) {
    *out = NULL;
    struct dsm_engine *e = dsm_calloc(1, sizeof *e, err);
    if (!e) return DSM_ENOMEM;
    e->m = m;
    e->tok = tok;
    e->max_batch = opts && opts->max_batch > 0 ? opts->max_batch : 64;
    if (e->max_batch > m->Tmax) e->max_batch = m->Tmax;
    e->budget = opts && opts->kv_budget_bytes ? opts->kv_budget_bytes : (size_t)1 << 30;
    e->kvdt = opts ? opts->kv_dtype : DSM_DT_F32;
    if (e->kvdt != DSM_DT_F32 && e->kvdt != DSM_DT_F16) {
        int bad = (int)e->kvdt;
        free(e);
        return dsm_errf(err, DSM_EINVAL, "KV cache dtype %d: the engine keeps f32 or f16", bad);
    }
    *out = e;
    return DSM_OK;
}

static void free_run(struct dsm_engine *e) {
    struct dsm_backend *be = e->m->be;
    be->free(be, e->kpool), be->free(be, e->vpool), be->free(be, e->knew), be->free(be, e->vnew);
    be->free(be, e->pre_k), be->free(be, e->pre_v);
    be->free(be, e->scratch), be->free(be, e->dev_ids), be->free(be, e->dev_pos);
    be->free(be, e->dev_slot), be->free(be, e->dev_len), be->free(be, e->dev_pslot), be->free(be, e->dev_plen);
    free(e->logits), free(e->sp), free(e->sidx), free(e->pick), free(e->pick_lp), free(e->ref), free(e->pref_req);
    e->ref = e->pref_req = NULL;
    if (e->seqs)
        for (int i = 0; i < e->slots; i++) {
            free(e->seqs[i].ids), free(e->seqs[i].lps), free(e->seqs[i].text);
            tok_stream_destroy(e->seqs[i].ts);
        }
    free(e->seqs);
    e->kpool = e->vpool = NULL;
    e->knew = e->vnew = e->scratch = e->pre_k = e->pre_v = NULL;
    e->dev_ids = e->dev_pos = e->dev_slot = e->dev_len = e->dev_pslot = e->dev_plen = NULL;
    e->logits = e->sp = NULL;
    e->sidx = e->pick = NULL;
    e->pick_lp = NULL;
    e->seqs = NULL;
}

void dsm_engine_destroy(struct dsm_engine *e) {
    if (!e) return;
    free_run(e);
    free(e);
}

const struct dsm_engine_stats *dsm_engine_stats(const struct dsm_engine *e) { return &e->st; }

static int validate(struct dsm_engine *e, const struct dsm_gen_request *reqs, int nreq, struct dsm_err *err) {
    if (nreq < 1) return dsm_errf(err, DSM_EINVAL, "no requests");
    for (int r = 0; r < nreq; r++) {
        const struct dsm_gen_request *q = &reqs[r];
        const struct dsm_gen_settings *s = &q->s;
        if (q->n < 1) return dsm_errf(err, DSM_EINVAL, "request %d: n = %d, need at least 1 sample", r, q->n);
        if (q->n_prompt < 1) return dsm_errf(err, DSM_EINVAL, "request %d: empty prompt", r);
        if (!(s->temperature >= 0.0f) || !isfinite(s->temperature))
            return dsm_errf(err, DSM_EINVAL, "request %d: temperature %g must be >= 0", r, s->temperature);
        if (!(s->top_p > 0.0f && s->top_p <= 1.0f))
            return dsm_errf(err, DSM_EINVAL, "request %d: top_p %g must be in (0, 1]", r, s->top_p);
        if (s->top_k < 0) return dsm_errf(err, DSM_EINVAL, "request %d: top_k %d must be >= 0", r, s->top_k);
        if (s->max_tokens < 1) return dsm_errf(err, DSM_EINVAL, "request %d: max_tokens %d must be >= 1", r, s->max_tokens);
        if ((long)q->n_prompt + s->max_tokens > e->m->P)
            return dsm_errf(err, DSM_EINVAL, "request %d: prompt of %d tokens + max_tokens %d exceeds the context of %d",
                            r, q->n_prompt, s->max_tokens, e->m->P);
        if (s->n_stop > 0 && !e->tok) return dsm_errf(err, DSM_EINVAL, "request %d: stop strings need a tokenizer", r);
        for (int i = 0; i < s->n_stop; i++)
            if (!s->stop[i] || !s->stop[i][0]) return dsm_errf(err, DSM_EINVAL, "request %d: stop string %d is empty", r, i);
        for (int i = 0; i < q->n_prompt; i++)
            if (q->prompt[i] < 0 || q->prompt[i] >= e->m->cfg.vocab_size)
                return dsm_errf(err, DSM_EINVAL, "request %d: prompt token %d (id %d) is out of range for vocab_size %d", r, i,
                                q->prompt[i], e->m->cfg.vocab_size);
    }
    return DSM_OK;
}

static int alloc_run(struct dsm_engine *e, const struct dsm_gen_request *reqs, int nreq, struct dsm_err *err) {
    struct dsm_model *m = e->m;
    struct dsm_backend *be = m->be;
    const struct dsm_model_config *c = &m->cfg;
    int KV = c->n_kv_heads * c->head_dim, V = c->vocab_size;
    e->cap = 0;
    long total = 0;
    int longest = 0;
    for (int r = 0; r < nreq; r++) {
        int need = reqs[r].n_prompt + reqs[r].s.max_tokens;
        e->cap = need > e->cap ? need : e->cap;
        longest = reqs[r].n_prompt > longest ? reqs[r].n_prompt : longest;
        total += reqs[r].n;
    }
    e->slot_stride = (size_t)c->n_layers * e->cap * KV;
    size_t esize = dsm_dtype_size(e->kvdt), slot_bytes = 2 * e->slot_stride * esize;
    size_t fit = e->budget / slot_bytes;
    if (fit < 1)
        return dsm_errf(err, DSM_EINVAL, "KV budget of %zu bytes holds no sequence of %d tokens (one needs %zu bytes)",
                        e->budget, e->cap, slot_bytes);
    e->slots = (int)(fit < (size_t)e->max_batch ? fit : (size_t)e->max_batch);
    if (e->slots > total) e->slots = (int)total;
    int B = e->slots;
    size_t pool = (size_t)e->slots * e->slot_stride * esize;
    e->kpool = be->alloc(be, pool);
    e->vpool = be->alloc(be, pool);
    size_t pre = sizeof(float) * (size_t)c->n_layers * (size_t)longest * KV;
    e->pre_k = be->alloc(be, pre);
    e->pre_v = be->alloc(be, pre);
    int pre_ok = e->pre_k && e->pre_v;
    if (be->advise_sparse) { /* a sample sharing its prompt's KV writes only its own rows */
        be->advise_sparse(be, e->kpool, pool);
        be->advise_sparse(be, e->vpool, pool);
    }
    e->knew = be->alloc(be, sizeof(float) * (size_t)B * KV);
    e->vnew = be->alloc(be, sizeof(float) * (size_t)B * KV);
    e->scratch = be->alloc(be, sizeof(float) * (size_t)B * c->n_heads * e->cap);
    e->dev_ids = be->alloc(be, sizeof(int32_t) * (size_t)B);
    e->dev_pos = be->alloc(be, sizeof(int32_t) * (size_t)B);
    e->dev_slot = be->alloc(be, sizeof(int32_t) * (size_t)B);
    e->dev_len = be->alloc(be, sizeof(int32_t) * (size_t)B);
    e->dev_pslot = be->alloc(be, sizeof(int32_t) * (size_t)B);
    e->dev_plen = be->alloc(be, sizeof(int32_t) * (size_t)B);
    e->ref = calloc((size_t)B, sizeof(int));
    e->pref_req = malloc(sizeof(int) * (size_t)B);
    if (e->pref_req)
        for (int i = 0; i < B; i++) e->pref_req[i] = -1;
    e->logits = malloc(sizeof(float) * (size_t)B * V);
    e->nthreads = be->host_threads > 1 ? be->host_threads : 1;
    e->sp = malloc(sizeof(float) * (size_t)V * e->nthreads);
    e->sidx = malloc(sizeof(int32_t) * (size_t)V * e->nthreads);
    e->pick = malloc(sizeof(int32_t) * (size_t)B);
    e->pick_lp = malloc(sizeof(float) * (size_t)B);
    e->seqs = dsm_calloc((size_t)B, sizeof *e->seqs, err);
    if (!e->kpool || !e->vpool || !e->knew || !e->vnew || !e->scratch || !e->dev_ids || !e->dev_pos || !e->dev_slot ||
        !e->dev_len || !e->dev_pslot || !e->dev_plen || !e->ref || !e->pref_req || !e->logits || !e->sp || !e->sidx ||
        !e->pick || !e->pick_lp || !e->seqs || !pre_ok)
        return dsm_errf(err, DSM_ENOMEM, "cannot allocate a KV pool of %d slots x %d tokens (%zu bytes)", e->slots, e->cap, 2 * pool);
    e->st.slots = e->slots;
    e->st.kv_bytes = 2 * pool;
    return DSM_OK;
}

/* Element off of a pool of the engine's KV dtype. */
static void *pool_at(const struct dsm_engine *e, void *pool, size_t off) {
    return (char *)pool + off * dsm_dtype_size(e->kvdt);
}

/* Prefill prompt (n tokens) into slot s, its logits to lg: the model's f32 KV cache (L, n, KV) in
 * pre_k / pre_v, then each layer stored into the slot's head-major blocks in the pool's dtype. The
 * prompt's own attention and first logits are those of the f32 model whatever the pool keeps. */
static int prefill_slot(struct dsm_engine *e, int s, const int32_t *prompt, int n, float *lg, struct dsm_err *err) {
    struct dsm_model *m = e->m;
    int Hkv = m->cfg.n_kv_heads, D = m->cfg.head_dim;
    size_t KV = (size_t)Hkv * D;
    struct dsm_kv kv = {.m = m, .cap = n, .len = 0, .owned = 0, .k = e->pre_k, .v = e->pre_v};
    int rc = dsm_model_forward(m, &kv, prompt, n, lg, 0, err);
    if (rc) return rc;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        size_t dst = (size_t)s * e->slot_stride + (size_t)l * e->cap * KV, src = (size_t)l * n * KV;
        m->be->kv_store(m->be, pool_at(e, e->kpool, dst), e->kvdt, e->pre_k + src, n, e->cap, Hkv, D);
        m->be->kv_store(m->be, pool_at(e, e->vpool, dst), e->kvdt, e->pre_v + src, n, e->cap, Hkv, D);
    }
    return DSM_OK;
}

/* Append text to a sequence's buffer. */
static int text_append(struct seq *q, const char *p, size_t n, struct dsm_err *err) {
    if (q->tlen + n + 1 > q->tcap) {
        size_t nc = (q->tcap ? q->tcap * 2 : 256);
        while (nc < q->tlen + n + 1) nc *= 2;
        char *t = realloc(q->text, nc);
        if (!t) return dsm_errf(err, DSM_ENOMEM, "out of memory");
        q->text = t;
        q->tcap = nc;
    }
    memcpy(q->text + q->tlen, p, n);
    q->tlen += n;
    q->text[q->tlen] = '\0';
    return DSM_OK;
}

/* Record token id (with its log-prob) for sequence q. Sets *finish to the reason when the
 * sequence is done, else NULL. */
static int take_token(struct dsm_engine *e, const struct dsm_gen_request *rq, struct seq *q, int32_t id, float lp,
                      const char **finish, struct dsm_err *err) {
    const struct dsm_model_config *c = &e->m->cfg;
    q->ids[q->n] = id;
    q->lps[q->n] = lp;
    q->n++;
    *finish = NULL;
    if (!rq->s.ignore_eos) {
        int eos = e->tok && id == tok_eos_id(e->tok);
        for (int i = 0; i < c->n_eos; i++) eos |= id == c->eos_token_ids[i];
        if (eos) {
            *finish = "stop";
            return DSM_OK;
        }
    }
    if (q->ts) {
        const char *piece;
        size_t plen;
        size_t old = q->tlen;
        int rc = tok_stream_push(q->ts, id, &piece, &plen, err);
        if (rc || (rc = text_append(q, piece, plen, err))) return rc;
        /* a stop string may straddle the old end: search from max(0, old - (len - 1)) */
        for (int i = 0; i < rq->s.n_stop; i++) {
            size_t sl = strlen(rq->s.stop[i]);
            size_t from = old >= sl - 1 ? old - (sl - 1) : 0;
            char *hit = strstr(q->text + from, rq->s.stop[i]);
            if (hit) {
                q->tlen = (size_t)(hit - q->text);
                q->text[q->tlen] = '\0';
                q->cut = 1;
                *finish = "stop";
                return DSM_OK;
            }
        }
    }
    if (q->n >= rq->s.max_tokens) *finish = "length";
    return DSM_OK;
}

static int finish_seq(struct dsm_engine *e, struct seq *q, const char *reason, const struct dsm_gen_request *reqs,
                      dsm_completion_fn fn, void *user, struct dsm_err *err) {
    if (q->ts) {
        /* bytes the stream still holds (an incomplete character) end the text, unless a stop
         * string already cut it */
        const char *rest;
        size_t rlen;
        tok_stream_finish(q->ts, &rest, &rlen);
        int rc = q->cut ? DSM_OK : text_append(q, rest, rlen, err);
        if (rc) return rc;
        if (!q->text && (rc = text_append(q, "", 0, err))) return rc;
    }
    struct dsm_completion c = {.request = q->req, .sample = q->idx, .seed = reqs[q->req].s.seed + (uint64_t)q->idx,
                               .ids = q->ids, .logprobs = q->lps, .n_ids = q->n,
                               .text = q->ts ? q->text : NULL, .text_len = q->tlen,
                               .finish_reason = reason};
    e->st.generated_tokens += q->n;
    if (q->pslot != (int)(q - e->seqs)) e->ref[q->pslot]--;
    int stop = fn ? fn(user, &c) : 0;
    free(q->ids), free(q->lps), free(q->text);
    tok_stream_destroy(q->ts);
    memset(q, 0, sizeof *q);
    if (stop) return dsm_errf(err, DSM_EINVAL, "stopped by the caller");
    return DSM_OK;
}

/* Start sample (r, i) in free slot s: the prompt's KV read from the slot a sibling prefilled (while
 * it is held), or a prefill into s; then its first token from the prompt's logits. */
static int admit(struct dsm_engine *e, const struct dsm_gen_request *reqs, struct req_state *rs, int r, int s,
                 dsm_completion_fn fn, void *user, struct dsm_err *err) {
    struct dsm_model *m = e->m;
    const struct dsm_gen_request *rq = &reqs[r];
    int V = m->cfg.vocab_size;
    struct seq *q = &e->seqs[s];
    memset(q, 0, sizeof *q);
    e->pref_req[s] = -1; /* a free slot: whatever prompt it held is no longer read */
    int sibling = -1;
    for (int j = 0; j < e->slots && sibling < 0; j++)
        if (j != s && e->pref_req[j] == r && (e->seqs[j].live || e->ref[j] > 0)) sibling = j;
    int rc;
    if (sibling >= 0 && rs[r].first_logits) {
        q->pslot = sibling;
        e->ref[sibling]++;
        e->st.kv_shared++;
    } else {
        float *lg = rs[r].first_logits ? e->logits : malloc(sizeof(float) * (size_t)V);
        if (!lg) return dsm_errf(err, DSM_ENOMEM, "out of memory");
        if ((rc = prefill_slot(e, s, rq->prompt, rq->n_prompt, lg, err))) {
            if (lg != e->logits) free(lg);
            return rc;
        }
        if (!rs[r].first_logits) rs[r].first_logits = lg;
        q->pslot = s;
        e->pref_req[s] = r;
        e->st.prefills++;
        e->st.prompt_tokens += rq->n_prompt;
    }
    q->live = 1;
    q->req = r;
    q->idx = rs[r].next_sample++;
    q->len = rq->n_prompt;
    q->plen = rq->n_prompt;
    dsm_rng_seed(&q->rng, rq->s.seed + (uint64_t)q->idx);
    q->ids = malloc(sizeof(int32_t) * (size_t)rq->s.max_tokens);
    q->lps = malloc(sizeof(float) * (size_t)rq->s.max_tokens);
    if (!q->ids || !q->lps) return dsm_errf(err, DSM_ENOMEM, "out of memory");
    if (e->tok && (rc = tok_stream_create(e->tok, TOK_DECODE_SKIP_SPECIAL, &q->ts, err))) return rc;
    struct dsm_sampling smp = {rq->s.temperature, rq->s.top_k, rq->s.top_p};
    float lp;
    int32_t id = dsm_sample(rs[r].first_logits, V, &smp, &q->rng, e->sp, e->sidx, &lp);
    const char *fin;
    if ((rc = take_token(e, rq, q, id, lp, &fin, err))) return rc;
    if (fin) return finish_seq(e, q, fin, reqs, fn, user, err);
    q->next = id;
    return DSM_OK;
}

/* One decode step for the live sequences listed in act (B of them); logits to e->logits (B, V). */
static int decode_step(struct dsm_engine *e, const int *act, int B, struct dsm_err *err) {
    struct dsm_model *m = e->m;
    struct dsm_backend *be = m->be;
    const struct dsm_model_config *c = &m->cfg;
    int C = c->hidden_size, D = c->head_dim, Q = c->n_heads * D, KV = c->n_kv_heads * D;
    int32_t ids[512], pos[512], slot[512], len[512], pslot[512], plen[512];
    DSM_ASSERT(B <= 512 && B <= m->Tmax);
    for (int b = 0; b < B; b++) {
        struct seq *q = &e->seqs[act[b]];
        ids[b] = q->next;
        pos[b] = q->len;
        slot[b] = act[b];
        len[b] = q->len + 1;
        pslot[b] = q->pslot;
        plen[b] = q->plen;
    }
    be->upload(be, e->dev_ids, ids, sizeof(int32_t) * (size_t)B);
    be->upload(be, e->dev_pos, pos, sizeof(int32_t) * (size_t)B);
    be->upload(be, e->dev_slot, slot, sizeof(int32_t) * (size_t)B);
    be->upload(be, e->dev_len, len, sizeof(int32_t) * (size_t)B);
    be->upload(be, e->dev_pslot, pslot, sizeof(int32_t) * (size_t)B);
    be->upload(be, e->dev_plen, plen, sizeof(int32_t) * (size_t)B);
    float scale = 1.0f / sqrtf((float)D);
    be->embedding(be, m->x, e->dev_ids, *dsm_model_wslot(m, DSM_P_EMBED, 0), m->wdt, B, C);
    for (int l = 0; l < c->n_layers; l++) {
#define WL(p) (*dsm_model_wslot(m, (p), l))
        size_t lo = (size_t)l * e->cap * KV; /* this layer's rows inside a slot */
        be->rmsnorm(be, m->h, m->x, WL(DSM_P_ATTN_NORM), B, C, c->rms_norm_eps);
        be->linear(be, m->q, m->h, WL(DSM_P_Q), m->wdt, WL(DSM_P_Q_BIAS), B, Q, C);
        be->linear(be, e->knew, m->h, WL(DSM_P_K), m->wdt, WL(DSM_P_K_BIAS), B, KV, C);
        be->linear(be, e->vnew, m->h, WL(DSM_P_V), m->wdt, WL(DSM_P_V_BIAS), B, KV, C);
        be->rope(be, m->q, e->dev_pos, m->rope_cos, m->rope_sin, B, c->n_heads, D, Q);
        be->rope(be, e->knew, e->dev_pos, m->rope_cos, m->rope_sin, B, c->n_kv_heads, D, KV);
        void *kl = pool_at(e, e->kpool, lo), *vl = pool_at(e, e->vpool, lo);
        be->kv_scatter(be, kl, e->kvdt, e->knew, e->dev_slot, e->dev_pos, e->slot_stride, e->cap, B, c->n_kv_heads, D);
        be->kv_scatter(be, vl, e->kvdt, e->vnew, e->dev_slot, e->dev_pos, e->slot_stride, e->cap, B, c->n_kv_heads, D);
        be->attention_decode(be, m->att, m->q, kl, vl, e->kvdt, e->dev_slot, e->dev_len, e->dev_pslot,
                             e->dev_plen, e->slot_stride, e->cap, e->scratch, B, c->n_heads, c->n_kv_heads, D, scale);
        be->linear(be, m->h, m->att, WL(DSM_P_O), m->wdt, WL(DSM_P_O_BIAS), B, C, Q);
        be->add(be, m->x, m->x, m->h, (size_t)B * C);
        dsm_model_mlp_block(m, l, B);
#undef WL
    }
    be->rmsnorm(be, m->x, m->x, *dsm_model_wslot(m, DSM_P_NORM, 0), B, C, c->rms_norm_eps);
    dsm_model_lm_head(m, e->logits, 0, B);
    return be->sync(be, err);
}

int dsm_engine_run(struct dsm_engine *e, const struct dsm_gen_request *reqs, int nreq,
                   dsm_completion_fn fn, void *user, struct dsm_err *err) {
    int rc = validate(e, reqs, nreq, err);
    if (rc) return rc;
    free_run(e);
    memset(&e->st, 0, sizeof e->st);
    double t0 = dsm_now();
    struct req_state *rs = dsm_calloc((size_t)nreq, sizeof *rs, err);
    int *act = NULL;
    if (!rs) return DSM_ENOMEM;
    if ((rc = alloc_run(e, reqs, nreq, err))) goto done;
    act = malloc(sizeof(int) * (size_t)e->slots);
    if (!act) {
        rc = dsm_errf(err, DSM_ENOMEM, "out of memory");
        goto done;
    }
    int V = e->m->cfg.vocab_size;
    int r_next = 0; /* first request with samples still to admit */
    for (;;) {
        /* 1. admit waiting samples into free slots, request by request */
        for (int s = 0; s < e->slots && r_next < nreq; s++) {
            if (e->seqs[s].live || e->ref[s]) continue; /* busy, or holding a prompt others read */
            while (r_next < nreq && rs[r_next].next_sample >= reqs[r_next].n) {
                free(rs[r_next].first_logits); /* every sample of it has started */
                rs[r_next].first_logits = NULL;
                r_next++;
            }
            if (r_next >= nreq) break;
            if ((rc = admit(e, reqs, rs, r_next, s, fn, user, err))) goto done;
            if (!e->seqs[s].live) s--; /* finished at its first token: the slot is free again */
        }
        int B = 0;
        for (int s = 0; s < e->slots; s++)
            if (e->seqs[s].live) act[B++] = s;
        if (B == 0) {
            if (r_next >= nreq) break;
            continue;
        }
        if (B > e->st.peak_live) e->st.peak_live = B;
        /* 2. one step for all live sequences */
        if ((rc = decode_step(e, act, B, err))) goto done;
        e->st.steps++;
        /* 3. sample (each sequence from its own RNG, so the threads change no result) */
#pragma omp parallel for schedule(dynamic, 1) num_threads(e->nthreads) if (B > 1 && e->nthreads > 1)
        for (int b = 0; b < B; b++) {
            struct seq *q = &e->seqs[act[b]];
            const struct dsm_gen_request *rq = &reqs[q->req];
            struct dsm_sampling smp = {rq->s.temperature, rq->s.top_k, rq->s.top_p};
            size_t th = (size_t)omp_get_thread_num();
            e->pick[b] = dsm_sample(e->logits + (size_t)b * V, V, &smp, &q->rng, e->sp + th * V, e->sidx + th * V,
                                    &e->pick_lp[b]);
        }
        /* 4. append, retire */
        for (int b = 0; b < B; b++) {
            struct seq *q = &e->seqs[act[b]];
            const struct dsm_gen_request *rq = &reqs[q->req];
            q->len++;
            int32_t id = e->pick[b];
            const char *fin;
            if ((rc = take_token(e, rq, q, id, e->pick_lp[b], &fin, err))) goto done;
            if (fin) {
                if ((rc = finish_seq(e, q, fin, reqs, fn, user, err))) goto done;
            } else {
                q->next = id;
            }
        }
    }
done:
    for (int r = 0; r < nreq; r++) free(rs[r].first_logits);
    free(rs);
    free(act);
    e->st.seconds = dsm_now() - t0;
    return rc;
}
