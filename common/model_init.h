/* model_init.h - create a randomly initialised model directory in Hugging Face layout.
 *
 * Presets (name: arch-independent shape; vocab 264 = the byte tokenizer unless noted):
 *   tiny   C=128 L=4 Hq=4 Hkv=2 F=352            ~0.8M params (the embedded default's models)
 *   small  C=256 L=6 Hq=8 Hkv=4 F=704            ~5M params
 *   15m    C=288 L=6 Hq=6 Hkv=6 F=768 V=32000    llama2.c "15M" shape (benchmarks)
 *   110m   C=768 L=12 Hq=12 Hkv=12 F=2048 V=32000 llama2.c "110M" shape (benchmarks)
 */
#ifndef DSM_MODEL_INIT_H
#define DSM_MODEL_INIT_H

#include <stdint.h>

#include "common/config.h"
#include "common/err.h"

/* Fill cfg with preset `name` for arch. Errors: DSM_EINVAL naming the preset. */
int dsm_preset_config(const char *name, enum dsm_arch arch, struct dsm_model_config *cfg, struct dsm_err *err);

/* Comma-separated preset names, for help text. */
const char *dsm_preset_names(void);

/* Write dir/config.json, dir/generation_config.json and dir/model.safetensors with weights drawn
 * from N(0, 0.02²) (norm weights 1, biases 0; the parameter table says which), stored in dtype,
 * reproducible from seed. Creates dir. Tokenizer files are the caller's business. */
int dsm_model_init_random(const struct dsm_model_config *cfg, const char *dir, enum dsm_dtype dtype,
                          uint64_t seed, struct dsm_err *err);

#endif
