#!/usr/bin/env bash
# run.sh - the main job on the embedded default: build, then `dsm loop` with no configuration:
# bootstrap SFT of three tiny models (byte tokenizer, ~0.8M parameters each) on the synthetic
# proof domain, two rounds of generate -> verify -> meta-verify -> vote -> GRPO, and an evaluation
# round, everything recorded in the embedded PostgreSQL under $DSM_HOME (default ./var).
# Run it again after an interruption: it continues where it stopped. Extra arguments go to
# `dsm loop` (e.g. --config FILE, --run NAME). docs/loop.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
home=${DSM_HOME:-var}
mkdir -p "$home"
build/dsm loop --summary "$home/loop-summary.json" "$@"
echo "summary: $home/loop-summary.json"
