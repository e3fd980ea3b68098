#!/usr/bin/env bash
# setup.sh - install what dsm needs on a Debian 12 machine. Idempotent: safe to run again; a
# second run installs nothing and takes about a second.
#
#   bash scripts/setup.sh            build and run dependencies
#   DSM_SETUP_REFERENCE=1 bash ...   also Debian's PyTorch (python3-torch), used only to regenerate
#                                    numerical reference fixtures (tests/ref/README.md)
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libjansson-dev libcurl4-openssl-dev libopenblas-dev libpcre2-dev libutf8proc-dev
      libmicrohttpd-dev libpq-dev postgresql postgresql-contrib python3)
if [ "${DSM_SETUP_REFERENCE:-0}" = 1 ]; then pkgs+=(python3-torch); fi

missing=()
for p in "${pkgs[@]}"; do
  # a package counts as present when dpkg has it installed (not merely known)
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

# node and npm (tests only: reference tokenizers) may come from another packager (this machine kind
# ships NodeSource's nodejs, which bundles npm and conflicts with Debian's npm): check commands.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all packages present" >&2
fi
