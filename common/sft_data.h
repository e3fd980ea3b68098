/* sft_data.h - supervised fine-tuning data: JSONL records to token ids and loss labels, and the
 * deterministic batch order a resumable run needs.
 *
 * One JSON object per line, in any of three forms:
 *   {"prompt": "...", "response": "..."}   ids = [BOS] prompt response [EOS]; labels on response
 *                                          and EOS only (BOS/EOS from the tokenizer when it has them)
 *   {"messages": [{"role","content"}...]}  rendered with the chat format (chat.h) piece by piece;
 *                                          labels on each assistant turn's content and end marker
 *   {"input_ids": [...], "labels": [...]}  pre-tokenized; labels optional (default: the ids),
 *                                          -100 = no loss, same length as input_ids
 * Labels follow the Hugging Face convention (aligned with input_ids, shifted by the loss).
 *
 * Bad records never stop a load: a line that is not valid JSON, has none of the three forms, an
 * empty response, ids out of the vocabulary, or no supervised token left after truncation is
 * skipped and counted (the first few are logged with file:line). Sequences longer than max_len are
 * truncated at the end and counted. Loading fails only when no usable record remains or the file
 * cannot be read.
 */
#ifndef DSM_SFT_DATA_H
#define DSM_SFT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct dsm_tokenizer;
struct chat_format;

struct sft_example {
    int32_t *ids, *labels; /* (n) each */
    int n;
};

struct sft_data {
    struct sft_example *ex;
    int n;
    /* what the load did */
    int lines, bad_json, bad_form, empty_response, bad_ids, no_labels, truncated;
    long tokens, label_tokens;
};

struct sft_data_opts {
    int max_len;                       /* longer sequences are truncated */
    int vocab_size;                    /* ids must be below it */
    const struct dsm_tokenizer *tok;   /* NULL: only pre-tokenized records are usable */
    const struct chat_format *chat;    /* NULL: "messages" records are skipped as bad_form */
};

/* Load path. Errors: DSM_ENOTFOUND / DSM_EIO naming the file; DSM_EINVAL when no usable record
 * remains (the message gives the counts). On success the caller frees *out with sft_data_free. */
int sft_data_load(const char *path, const struct sft_data_opts *opts, struct sft_data *out,
                  struct dsm_err *err);

void sft_data_free(struct sft_data *d);

/* One line summarising the counts of d into buf. */
void sft_data_summary(const struct sft_data *d, char *buf, size_t cap);

/* Move the last n_eval examples (after a seeded shuffle of d) into *eval; d keeps the rest.
 * n_eval may be 0 (eval gets nothing). Errors: DSM_EINVAL when nothing would be left to train on. */
int sft_data_split(struct sft_data *d, int n_eval, uint64_t seed, struct sft_data *eval,
                   struct dsm_err *err);

/* Order of examples in epoch `epoch` (a permutation of 0..n-1 from seed and epoch) into perm. */
void sft_data_order(int n, uint64_t seed, long epoch, int *perm);

/* Pack examples idx[0..B) into a padded batch: ids, labels (B, T) with T the longest (pad id 0,
 * label -100). *T receives T; buffers must hold B * max_len. */
void sft_data_batch(const struct sft_data *d, const int *idx, int B, int32_t *ids, int32_t *labels,
                    int *T);

#endif
