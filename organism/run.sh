#!/bin/sh
# Rebuild the toy model organism from scratch (seeded), export it to demo/, and check the tokenizer
# and chat template against the JS libraries the lab uses, then measure the exported models with the
# lab's engine (organism/engine_results.json; fails if any greedy answer differs from the trainer's).
# Extra arguments go to train.py.
set -e
cd "$(dirname "$0")/.."
/usr/bin/python3 organism/train.py --fresh "$@"
node organism/check_tokenizer.mjs demo/organism-base organism/eval/tokenizer_samples.json
/usr/bin/python3 -m unittest discover -s organism/tests -t .
# the same models measured with the lab's engine, answer by answer against the trainer's
npx tsx scripts/organism/main.ts
