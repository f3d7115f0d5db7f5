#!/bin/sh
# Rebuild the toy model organism from scratch (seeded), export it to demo/, and check the tokenizer
# and chat template against the JS libraries the lab uses, then measure the exported models with the
# lab's engine (organism/engine_results.json; fails if any greedy answer differs from the trainer's).
# Extra arguments go to train.py (the Llama-template run).
set -e
cd "$(dirname "$0")/.."
/usr/bin/python3 organism/train.py --fresh "$@"
node organism/check_tokenizer.mjs demo/organism-base organism/eval/tokenizer_samples.json
/usr/bin/python3 -m unittest discover -s organism/tests -t .
# the same models measured with the lab's engine, answer by answer against the trainer's
npx tsx scripts/organism/main.ts
# the Qwen3-template variant (postfix carrier): its own base and plain finetune, checked and measured the same way
/usr/bin/python3 organism/train.py --template qwen3 --fresh
node organism/check_tokenizer.mjs demo/organism-qwen3-base organism/qwen3/eval/tokenizer_samples.json
npx tsx scripts/organism/main.ts --variant qwen3
