/* main.c - the dsm front-end: dispatch a subcommand. See README "Commands" and "Exit codes". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/log.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

/* One table: dispatch and `dsm --help` both come from it. */
static const struct command commands[] = {
    {"model", cmd_model, "create or inspect a model directory (model init, model info)"},
    {"logits", cmd_logits, "run a forward pass and print or write logits"},
    {"generate", cmd_generate, "sample completions from a model"},
    {"eval", cmd_eval, "accuracy, maj@k, pass@k on an answer set; `eval verifier`: agreement with human grades"},
    {"backend", cmd_backend, "show the compute backend that would be used"},
    {"db", cmd_db, "the PostgreSQL store: db start|stop|status|migrate|psql"},
    {"import", cmd_import, "import data sets (JSONL, JSON, CSV) into the store"},
    {"export", cmd_export, "export labeled proofs as JSONL"},
    {"check-answer", cmd_check_answer, "is a predicted answer equal to the gold one"},
    {"tokenize", cmd_tokenize, "encode text to token ids (JSON)"},
    {"detokenize", cmd_detokenize, "decode token ids to text"},
    {"train", cmd_train, "fine-tune a model: train sft (AdamW/SGD, checkpoints, resume), train grpo"},
    {"loop", cmd_loop, "the self-verification training loop (bootstrap, rounds, GRPO), resumable"},
    {"synth", cmd_synth, "the synthetic proof domain: problems, proofs, checks, analyses, SFT data"},
    {"parse", cmd_parse, "read a generator/verifier/metaverifier output as JSON (score, analysis, proof)"},
    {"vote", cmd_vote, "label a proof from its analyses and meta-verifications (the V2 vote)"},
    {"role", cmd_role, "a model role without the store: role prompt|sample (check a backend)"},
    {"serve", cmd_serve, "run a model role as a queue worker: serve generator|verifier|metaverifier|submissions"},
    {"prove", cmd_prove, "prove one problem: one-shot, sequential refinement or search (V2 test-time compute)"},
    {"submit", cmd_submit, "hand a proof in for scoring by n verifier analyses and the V2 vote"},
    {"label", cmd_label, "auto-label proofs from their analyses and meta-verifications (writes labels)"},
    {"report", cmd_report, "write a run's metrics, curves, stage timings and models as one HTML file"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: dsm <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'dsm <command> --help' shows a command's options.\n"
               "Exit codes: 0 ok, 1 a predicate's \"no\", 2 usage or bad input, 3 system or service failure.\n");
}

/* OpenMP threads that spin while waiting collapse when the cores are shared (other processes,
 * or dsm's own services beside training): measured in docs/training.md, passive waiting costs
 * nothing on a quiet machine and is several times faster under contention. libgomp reads the
 * policy when it loads, before main, so dsm re-executes itself once with it set, unless the user
 * chose one. */
static void ensure_omp_wait_policy(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("DSM_NO_REEXEC")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0 || setenv("DSM_NO_REEXEC", "1", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the default policy */
}

int main(int argc, char **argv) {
    ensure_omp_wait_policy(argv);
    dsm_log_init();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("dsm 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "dsm: unknown command '%s' (try 'dsm --help')\n", argv[1]);
    return 2;
}
