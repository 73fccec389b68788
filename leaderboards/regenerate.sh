#!/usr/bin/env bash
# Regenerate the committed leaderboards: every reference suite into a new store, then each suite's
# leaderboard in md, csv, json and html, and the example model cards. About 40 minutes on 2 CPU cores (robustness
# alone: 13, compression: 10; 30 min on 2026-12-03 into a store holding the ood suite).
# `harness leaderboard --check` re-runs the fast suites (quick, fairness) and compares.
set -euo pipefail
cd "$(dirname "$0")/.."
store=${HARNESS_STORE:-$(mktemp -d)}  # keep a store to re-render without measuring again
for suite in "${@:-quick fairness robustness interpretability efficiency compression ood privacy}"; do
  for name in $suite; do
    harness run --suite "$name" --store "$store" --quiet
    for fmt in md csv json html; do
      harness leaderboard --suite "$name" --format "$fmt" -o "leaderboards/$name.$fmt" --store "$store"
    done
  done
done
# the example model cards, once every suite has run
harness card zoo:fmnist-cnn -o leaderboards/cards/zoo-fmnist-cnn.md --store "$store"
harness card zoo:adult-mlp-fair --task adult -o leaderboards/cards/zoo-adult-mlp-fair.md --store "$store"
harness card zoo:adult-mlp-fair --task adult -o leaderboards/cards/zoo-adult-mlp-fair.html --store "$store"  # one self-contained file
# two variants' cards, with what each changes from its parent (the compression suite)
harness card zoo:adult-mlp+int8 --task adult -o leaderboards/cards/zoo-adult-mlp+int8.md --store "$store"
harness card zoo:fmnist-cnn+int8-static -o leaderboards/cards/zoo-fmnist-cnn+int8-static.md --store "$store"
[ -n "${HARNESS_STORE:-}" ] || rm -rf "$store"
