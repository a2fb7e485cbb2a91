#!/usr/bin/env bash
# The test command: installs what a fresh machine lacks, prepares the encoder, index and composer
# (trained/built the first time only, ~7-10 min on 2 cores), then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null \
      || echo "warning: could not install chromium; the browser test will be skipped"
  fi
fi
python -m fashion_rag prepare
python -m pytest "$@"
