/* test_lm_http.c - the http lm backend (common/lm_http.c) against a scripted OpenAI-compatible
 * server this test runs on 127.0.0.1 (libmicrohttpd, one thread per connection): request fields,
 * n choices and log-probs, 429-then-200, 5xx until giving up, 4xx at once, malformed bodies,
 * servers returning fewer choices than asked, the in-flight limit, the API key header (and that
 * it never appears in an error), separated reasoning, timeouts, refused connections, model
 * discovery, and the round-trip latency (reported). */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/lm.h"
#include "common/util.h"
#include "test.h"

/* ---- the scripted server -------------------------------------------------------------------- */

struct scripted {
    int status;         /* 0 = end of script */
    const char *body;   /* NULL = echo the request (see echo_body) */
    const char *retry_after;
    int delay_ms;
};

static struct {
    pthread_mutex_t mu;
    struct scripted script[16];
    int next, n_script;
    int requests, in_flight, max_in_flight, echo_delay_ms, connections;
    char last_body[8192], last_auth[256], last_path[256];
    json_t *bodies; /* every POST body, parsed */
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void script(const struct scripted *s, int n) {
    pthread_mutex_lock(&srv.mu);
    if (n) memcpy(srv.script, s, sizeof *s * (size_t)n);
    srv.n_script = n;
    srv.next = 0;
    srv.requests = 0;
    srv.max_in_flight = 0;
    json_decref(srv.bodies);
    srv.bodies = json_array();
    srv.last_auth[0] = 0;
    pthread_mutex_unlock(&srv.mu);
}

/* n choices "echo <i> of <n> seed <seed>", with log-probs when asked. */
static char *echo_body(const char *req) {
    json_error_t je;
    json_t *q = json_loads(req, 0, &je);
    int n = (int)json_integer_value(json_object_get(q, "n"));
    long long seed = (long long)json_integer_value(json_object_get(q, "seed"));
    int lp = json_is_true(json_object_get(q, "logprobs"));
    json_t *choices = json_array();
    for (int i = 0; i < (n > 0 ? n : 1); i++) {
        char text[96];
        snprintf(text, sizeof text, "echo %d of %d seed %lld", i, n, seed);
        json_t *ch = json_pack("{s:i, s:{s:s, s:s}, s:s}", "index", i, "message", "role", "assistant", "content", text,
                               "finish_reason", "stop");
        if (lp) {
            json_t *content = json_array();
            for (int t = 0; t < 3; t++)
                json_array_append_new(content, json_pack("{s:s, s:f}", "token", "x", "logprob", -0.5 * (t + 1)));
            json_object_set_new(ch, "logprobs", json_pack("{s:o}", "content", content));
        }
        json_array_append_new(choices, ch);
    }
    json_t *o = json_pack("{s:s, s:o, s:{s:i, s:i}}", "object", "chat.completion", "choices", choices, "usage",
                          "prompt_tokens", 11, "completion_tokens", 3 * n);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    json_decref(q);
    return s;
}

struct upload {
    char *p;
    size_t n;
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *data, size_t *data_size, void **con_cls) {
    struct upload *u = *con_cls;
    if (!u) {
        u = calloc(1, sizeof *u);
        *con_cls = u;
        return MHD_YES;
    }
    if (*data_size) {
        char *q = realloc(u->p, u->n + *data_size + 1);
        if (!q) return MHD_NO;
        u->p = q;
        memcpy(u->p + u->n, data, *data_size);
        u->n += *data_size;
        u->p[u->n] = 0;
        *data_size = 0;
        return MHD_YES;
    }
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    pthread_mutex_lock(&srv.mu);
    srv.requests++;
    srv.in_flight++;
    if (srv.in_flight > srv.max_in_flight) srv.max_in_flight = srv.in_flight;
    snprintf(srv.last_auth, sizeof srv.last_auth, "%s", auth ? auth : "");
    snprintf(srv.last_path, sizeof srv.last_path, "%s", url);
    snprintf(srv.last_body, sizeof srv.last_body, "%s", u->p ? u->p : "");
    if (u->p && srv.bodies) {
        json_error_t je;
        json_t *b = json_loads(u->p, 0, &je);
        if (b) json_array_append_new(srv.bodies, b);
    }
    struct scripted s = {0};
    if (srv.next < srv.n_script) s = srv.script[srv.next++];
    int delay = s.status ? s.delay_ms : srv.echo_delay_ms;
    pthread_mutex_unlock(&srv.mu);
    if (delay) usleep((useconds_t)delay * 1000);
    char *body;
    int status = s.status ? s.status : 200;
    if (!strcmp(method, "GET") && !strcmp(url, "/v1/models") && !s.status)
        body = strdup("{\"object\":\"list\",\"data\":[{\"id\":\"test-model\",\"object\":\"model\"}]}");
    else
        body = s.body ? strdup(s.body) : echo_body(u->p ? u->p : "{}");
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (s.retry_after) MHD_add_response_header(r, "Retry-After", s.retry_after);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    pthread_mutex_lock(&srv.mu);
    srv.in_flight--;
    pthread_mutex_unlock(&srv.mu);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    struct upload *u = *con_cls;
    if (u) free(u->p);
    free(u);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    if (toe != MHD_CONNECTION_NOTIFY_STARTED) return;
    pthread_mutex_lock(&srv.mu);
    srv.connections++;
    pthread_mutex_unlock(&srv.mu);
}

static struct MHD_Daemon *server_start(int *port) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = 0;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                                            NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_NOTIFY_CONNECTION,
                                            on_connection, NULL, MHD_OPTION_END);
    if (!d) return NULL;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : 0;
    return d;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static char base_url[128];

static struct dsm_lm *open_lm(const struct lm_open_opts *o) {
    struct dsm_lm *lm = NULL;
    struct dsm_err err = {0};
    CHECK_OK(lm_open(base_url, o, &lm, &err), &err);
    return lm;
}

static const struct chat_msg one_msg[] = {{"system", "You grade proofs."}, {"user", "Grade this: 1+1=2."}};

static struct lm_request req(int n) {
    struct lm_request q = {one_msg, 2, {0}};
    lm_settings_default(&q.s);
    q.s.n = n;
    q.s.temperature = 0.7f;
    q.s.top_p = 0.95f;
    q.s.max_tokens = 77;
    q.s.seed = 1234;
    return q;
}

static struct lm_open_opts fast_opts(void) {
    struct lm_open_opts o = {0};
    o.model = "m1";
    o.backoff_s = 0.01;
    o.backoff_max_s = 0.05;
    o.max_retries = 3;
    o.timeout_s = 10;
    return o;
}

static void test_basic(void) {
    struct lm_open_opts o = fast_opts();
    struct dsm_lm *lm = open_lm(&o);
    if (!lm) return;
    CHECK(!strcmp(lm_kind(lm), "http") && !strcmp(lm_model_name(lm), "m1"));
    script(NULL, 0);
    struct lm_request q = req(3);
    static const char *const stop[] = {"</proof>"};
    q.s.logprobs = 1;
    q.s.top_k = 20;
    q.s.stop = stop;
    q.s.n_stop = 1;
    struct lm_result r;
    struct dsm_err err = {0};
    CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
    CHECK_MSG(r.status == DSM_OK && r.n == 3, "status %d n %d: %s", r.status, r.n, r.error);
    if (r.status == DSM_OK && r.n == 3) {
        CHECK(!strcmp(r.c[0].text, "echo 0 of 3 seed 1234") && !strcmp(r.c[2].text, "echo 2 of 3 seed 1234"));
        CHECK(r.c[1].finish == LM_FINISH_STOP && r.c[1].n_tokens == 3 && r.c[1].logprobs[2] == -1.5f);
        CHECK(r.c[0].ids == NULL && r.c[0].seed == 1234);
    }
    CHECK(r.attempts == 1 && r.prompt_tokens == 11 && r.completion_tokens == 9);
    CHECK(!strcmp(srv.last_path, "/v1/chat/completions"));
    json_t *b = json_array_get(srv.bodies, 0);
    CHECK(b && !strcmp(json_string_value(json_object_get(b, "model")), "m1"));
    CHECK(json_integer_value(json_object_get(b, "n")) == 3 && json_integer_value(json_object_get(b, "max_tokens")) == 77);
    CHECK(json_real_value(json_object_get(b, "temperature")) == 0.7); /* sent as "0.7" */
    CHECK_NEAR(json_real_value(json_object_get(b, "top_p")), 0.95, 1e-6);
    CHECK(json_integer_value(json_object_get(b, "seed")) == 1234 && json_is_true(json_object_get(b, "logprobs")));
    CHECK(json_integer_value(json_object_get(b, "top_k")) == 20);
    CHECK(!strcmp(json_string_value(json_array_get(json_object_get(b, "stop"), 0)), "</proof>"));
    json_t *msgs = json_object_get(b, "messages");
    CHECK(json_array_size(msgs) == 2 &&
          !strcmp(json_string_value(json_object_get(json_array_get(msgs, 1), "content")), "Grade this: 1+1=2."));
    CHECK(srv.last_auth[0] == 0); /* no key in the environment: no header */
    lm_result_free(&r);
    /* several requests in one call; top_k 0 and no stop are not sent */
    struct lm_request qs[4] = {req(1), req(2), req(1), req(5)};
    struct lm_result rs[4];
    script(NULL, 0);
    CHECK_OK(lm_sample(lm, qs, 4, rs, &err), &err);
    for (int i = 0; i < 4; i++) {
        CHECK(rs[i].status == DSM_OK && rs[i].n == qs[i].s.n && rs[i].c[0].logprobs == NULL);
        lm_result_free(&rs[i]);
    }
    CHECK(!json_object_get(json_array_get(srv.bodies, 0), "top_k") && !json_object_get(json_array_get(srv.bodies, 0), "stop"));
    /* bad arguments: nothing is sent */
    int before = srv.requests;
    q = req(0);
    CHECK(lm_sample(lm, &q, 1, &r, &err) == DSM_EINVAL && strstr(err.msg, "n = 0"));
    q = req(1);
    q.s.top_p = 0;
    CHECK(lm_sample(lm, &q, 1, &r, &err) == DSM_EINVAL);
    CHECK(srv.requests == before);
    lm_destroy(lm);
}

static void test_retries(void) {
    struct lm_open_opts o = fast_opts();
    struct dsm_lm *lm = open_lm(&o);
    if (!lm) return;
    struct dsm_err err = {0};
    struct lm_result r;
    struct lm_request q = req(2);
    /* 429 then 200 */
    struct scripted s1[] = {{429, "{\"error\":{\"message\":\"slow down\"}}", "0", 0}};
    script(s1, 1);
    CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
    CHECK_MSG(r.status == DSM_OK && r.n == 2 && r.attempts == 2, "429 then 200: status %d attempts %d: %s", r.status,
              r.attempts, r.error);
    lm_result_free(&r);
    /* 503, 502, 500 then 200, with exponential backoff (no Retry-After) */
    struct scripted s2[] = {{503, "busy", NULL, 0}, {502, "", NULL, 0}, {500, "{\"error\":\"oops\"}", NULL, 0}};
    script(s2, 3);
    double t0 = dsm_now();
    CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
    CHECK(r.status == DSM_OK && r.attempts == 4 && srv.requests == 4);
    CHECK(dsm_now() - t0 >= 0.01 * (0.5 + 1 + 2) * 0.9);
    lm_result_free(&r);
    /* 5xx until the retries are used up */
    struct scripted s3[] = {{500, "{\"error\":{\"message\":\"engine dead\"}}", NULL, 0},
                            {500, "{\"error\":{\"message\":\"engine dead\"}}", NULL, 0},
                            {500, "{\"error\":{\"message\":\"engine dead\"}}", NULL, 0},
                            {500, "{\"error\":{\"message\":\"engine dead\"}}", NULL, 0},
                            {500, "{\"error\":{\"message\":\"engine dead\"}}", NULL, 0}};
    script(s3, 5);
    CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
    CHECK_MSG(r.status == DSM_ENET && r.attempts == 4 && strstr(r.error, "HTTP 500: engine dead") &&
                  strstr(r.error, "gave up after 4 attempts"),
              "status %d attempts %d: %s", r.status, r.attempts, r.error);
    CHECK(r.c == NULL && r.n == 0);
    lm_result_free(&r);
    /* 400: no retry, the server's message */
    struct scripted s4[] = {{400, "{\"error\":{\"message\":\"prompt is longer than the context\"}}", NULL, 0}};
    script(s4, 1);
    CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
    CHECK(r.status == DSM_EINVAL && r.attempts == 1 && strstr(r.error, "HTTP 400: prompt is longer than the context"));
    lm_result_free(&r);
    /* malformed bodies */
    static const char *const bad[] = {"this is not json", "{\"choices\": 3}", "{\"choices\": []}",
                                      "{\"choices\": [{\"text\": \"completions API\"}]}",
                                      "{\"choices\":[{\"message\":{\"content\":\"x\"},\"logprobs\":{\"content\":[{}]}}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct scripted s5[] = {{200, bad[i], NULL, 0}};
        script(s5, 1);
        struct lm_request ql = req(1);
        ql.s.logprobs = 1;
        CHECK_OK(lm_sample(lm, &ql, 1, &r, &err), &err);
        CHECK_MSG(r.status == DSM_ENET && r.attempts == 1 && strstr(r.error, "malformed"), "body %s: status %d: %s",
                  bad[i], r.status, r.error);
        lm_result_free(&r);
    }
    /* fewer choices than asked: the rest is asked for with the seed moved on */
    struct scripted s6[] = {{200, "{\"choices\":[{\"message\":{\"content\":\"only one\"},\"finish_reason\":\"length\"}]}",
                             NULL, 0}};
    script(s6, 1);
    q = req(3);
    CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
    CHECK(r.status == DSM_OK && r.n == 3 && srv.requests == 2);
    if (r.n == 3) {
        CHECK(!strcmp(r.c[0].text, "only one") && r.c[0].finish == LM_FINISH_LENGTH);
        CHECK(!strcmp(r.c[1].text, "echo 0 of 2 seed 1235") && r.c[2].seed == 1235);
    }
    CHECK(json_integer_value(json_object_get(json_array_get(srv.bodies, 1), "n")) == 2);
    lm_result_free(&r);
    /* finish reasons other than stop/length; reasoning kept in front of the content */
    struct scripted s7[] = {{200,
                             "{\"choices\":[{\"message\":{\"content\":\"final\",\"reasoning_content\":\"hmm\"},"
                             "\"finish_reason\":\"content_filter\"},{\"message\":{\"content\":null},\"finish_reason\":null}]}",
                             NULL, 0}};
    script(s7, 1);
    q = req(2);
    CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
    CHECK(r.status == DSM_OK && r.n == 2);
    if (r.n == 2) {
        CHECK(!strcmp(r.c[0].text, "<think>\nhmm\n</think>\nfinal") && r.c[0].finish == LM_FINISH_OTHER);
        CHECK(!strcmp(r.c[0].finish_raw, "content_filter") && !strcmp(r.c[1].text, "") && r.c[1].finish == LM_FINISH_OTHER);
    }
    lm_result_free(&r);
    lm_destroy(lm);
}

static void test_concurrency(void) {
    struct lm_open_opts o = fast_opts();
    o.concurrency = 3;
    struct dsm_lm *lm = open_lm(&o);
    if (!lm) return;
    script(NULL, 0);
    srv.echo_delay_ms = 40;
    struct lm_request qs[12];
    struct lm_result rs[12];
    for (int i = 0; i < 12; i++) qs[i] = req(1);
    struct dsm_err err = {0};
    double t0 = dsm_now();
    CHECK_OK(lm_sample(lm, qs, 12, rs, &err), &err);
    double dt = dsm_now() - t0;
    srv.echo_delay_ms = 0;
    for (int i = 0; i < 12; i++) {
        CHECK(rs[i].status == DSM_OK);
        lm_result_free(&rs[i]);
    }
    CHECK_MSG(srv.max_in_flight <= 3 && srv.max_in_flight >= 2, "max in flight %d", srv.max_in_flight);
    CHECK_MSG(dt >= 4 * 0.040 * 0.9, "12 requests of 40 ms through 3 slots took %.3f s", dt);
    lm_destroy(lm);
}

static void test_key_timeout_refused(void) {
    struct dsm_err err = {0};
    struct lm_result r;
    struct lm_request q = req(1);
    setenv("DSM_TEST_SECRET_KEY", "sk-test-very-secret-4242", 1);
    struct lm_open_opts o = fast_opts();
    o.api_key_env = "DSM_TEST_SECRET_KEY";
    struct dsm_lm *lm = open_lm(&o);
    if (lm) {
        script(NULL, 0);
        CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
        CHECK(!strcmp(srv.last_auth, "Bearer sk-test-very-secret-4242"));
        lm_result_free(&r);
        struct scripted s[] = {{401, "{\"error\":{\"message\":\"bad key\"}}", NULL, 0}};
        script(s, 1);
        CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
        CHECK(r.status != DSM_OK && strstr(r.error, "HTTP 401") && !strstr(r.error, "sk-test"));
        lm_result_free(&r);
        lm_destroy(lm);
    }
    unsetenv("DSM_TEST_SECRET_KEY");
    /* a key with a line break would inject a header: refused */
    setenv("DSM_TEST_SECRET_KEY", "abc\r\nX-Evil: 1", 1);
    CHECK(lm_open(base_url, &o, &lm, &err) == DSM_EINVAL && !strstr(err.msg, "abc"));
    unsetenv("DSM_TEST_SECRET_KEY");
    /* timeout: the server takes 1 s, the client waits 0.2 s and does not retry */
    o = fast_opts();
    o.timeout_s = 0.2;
    o.max_retries = -1;
    lm = open_lm(&o);
    if (lm) {
        struct scripted s[] = {{200, "{}", NULL, 1000}};
        script(s, 1);
        double t0 = dsm_now();
        CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
        CHECK_MSG(r.status == DSM_ENET && r.attempts == 1 && dsm_now() - t0 < 0.9, "timeout: %d %s", r.status, r.error);
        lm_result_free(&r);
        lm_destroy(lm);
    }
    /* connection refused: a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    int free_port = 0;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) && !getsockname(fd, (struct sockaddr *)&a, &al))
        free_port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", free_port);
    o = fast_opts();
    o.max_retries = 2;
    lm = NULL;
    CHECK_OK(lm_open(url, &o, &lm, &err), &err);
    if (lm) {
        CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
        CHECK_MSG(r.status == DSM_ENET && r.attempts == 3 && strstr(r.error, "gave up after 3 attempts"),
                  "refused: %d %d %s", r.status, r.attempts, r.error);
        lm_result_free(&r);
        lm_destroy(lm);
    }
    /* no model name given and no server: the open fails naming what to do */
    o.model = NULL;
    CHECK(lm_open(url, &o, &lm, &err) == DSM_ENET && strstr(err.msg, "model name"));
    CHECK(lm_open("http:ftp://x", &o, &lm, &err) == DSM_EINVAL);
    CHECK(lm_open("grpc:x", &o, &lm, &err) == DSM_EINVAL);
}

struct bg_call {
    struct dsm_lm *lm;
    struct lm_request q;
    struct lm_result r;
};

static void *bg_sample(void *arg) {
    struct bg_call *b = arg;
    struct dsm_err err = {0};
    lm_sample(b->lm, &b->q, 1, &b->r, &err);
    return NULL;
}

/* lm_set_cancel: an in-flight transfer is aborted, a backoff wait is cut short, nothing new is sent. */
static void test_cancel(void) {
    struct lm_open_opts o = fast_opts();
    o.backoff_s = 5;
    o.backoff_max_s = 5;
    struct dsm_lm *lm = open_lm(&o);
    if (!lm) return;
    volatile int stop = 0;
    lm_set_cancel(lm, &stop);
    struct scripted s[] = {{200, "{}", NULL, 3000}};
    script(s, 1);
    struct bg_call b = {lm, req(1), {0}};
    pthread_t t;
    double t0 = dsm_now();
    CHECK(pthread_create(&t, NULL, bg_sample, &b) == 0);
    usleep(150 * 1000);
    stop = 1;
    pthread_join(t, NULL);
    double dt = dsm_now() - t0;
    CHECK_MSG(b.r.status == DSM_EIO && b.r.cancelled && strstr(b.r.error, "cancelled") && dt < 2.0,
              "cancel in flight: status %d cancelled %d after %.2f s: %s", b.r.status, b.r.cancelled, dt, b.r.error);
    lm_result_free(&b.r);
    /* during a retry wait (429 with a 5 s backoff) */
    stop = 0;
    struct scripted s2[] = {{429, "{}", NULL, 0}};
    script(s2, 1);
    b = (struct bg_call){lm, req(1), {0}};
    t0 = dsm_now();
    CHECK(pthread_create(&t, NULL, bg_sample, &b) == 0);
    usleep(200 * 1000);
    stop = 1;
    pthread_join(t, NULL);
    dt = dsm_now() - t0;
    CHECK_MSG(b.r.cancelled && b.r.attempts == 1 && dt < 1.5, "cancel in backoff: %d attempts after %.2f s", b.r.attempts, dt);
    lm_result_free(&b.r);
    /* already set: nothing is sent */
    script(NULL, 0);
    struct lm_request q = req(1);
    struct lm_result r;
    struct dsm_err err = {0};
    CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
    CHECK(r.cancelled && r.status == DSM_EIO && srv.requests == 0);
    lm_result_free(&r);
    /* provenance for a row's sampling column */
    static const char *const stops[] = {"END"};
    q.s.stop = stops;
    q.s.n_stop = 1;
    json_t *pj = lm_provenance_json(lm, &q.s, "verify.v1@0123456789ab");
    char *ps = pj ? json_dumps(pj, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) : NULL;
    CHECK_MSG(ps && !strcmp(ps, "{\"backend\":\"http\",\"max_tokens\":77,\"model\":\"m1\",\"n\":1,\"prompt\":"
                                "\"verify.v1@0123456789ab\",\"seed\":1234,\"stop\":[\"END\"],\"temperature\":0.7,"
                                "\"top_k\":0,\"top_p\":0.95}"),
              "%s", ps ? ps : "(null)");
    free(ps);
    json_decref(pj);
    lm_destroy(lm);
}

static void test_discovery_and_latency(int port) {
    struct lm_open_opts o = fast_opts();
    o.model = NULL;
    char url[128];
    snprintf(url, sizeof url, "http:http://127.0.0.1:%d/v1/", port);
    struct dsm_lm *lm = NULL;
    struct dsm_err err = {0};
    script(NULL, 0);
    CHECK_OK(lm_open(url, &o, &lm, &err), &err);
    if (!lm) return;
    CHECK(!strcmp(lm_model_name(lm), "test-model") && !strcmp(srv.last_path, "/v1/models"));
    struct lm_request q = req(1);
    struct lm_result r;
    int rounds = 200;
    int conns0 = srv.connections;
    double t0 = dsm_now();
    for (int i = 0; i < rounds; i++) {
        CHECK_OK(lm_sample(lm, &q, 1, &r, &err), &err);
        CHECK(r.status == DSM_OK);
        lm_result_free(&r);
    }
    double dt = dsm_now() - t0;
    CHECK(!strcmp(srv.last_path, "/v1/chat/completions"));
    CHECK_MSG(srv.connections - conns0 <= 2, "%d connections for %d sequential requests: not kept alive",
              srv.connections - conns0, rounds);
    fprintf(stderr, "http round trip (local scripted server, n=1, sequential, kept-alive connection): %.3f ms mean over %d\n",
            dt / rounds * 1e3, rounds);
    lm_destroy(lm);
}

int main(void) {
    int port = 0;
    struct MHD_Daemon *d = server_start(&port);
    if (!d || !port) {
        fprintf(stderr, "FAIL: cannot start the local test server on 127.0.0.1\n");
        return 1;
    }
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", port);
    test_basic();
    test_retries();
    test_concurrency();
    test_key_timeout_refused();
    test_cancel();
    test_discovery_and_latency(port);
    MHD_stop_daemon(d);
    json_decref(srv.bodies);
    return test_main_end();
}
