#!/usr/bin/env bash
# Reproduces the bundled default model models/minicpm4-tiny-chat (docs/bundled-model.md):
#   1. a SentencePiece BPE tokenizer (4096 pieces) trained on the pretraining text;
#   2. token shards with a 5% held-out tail per source; SFT shards with an assistant-only loss mask;
#   3. pretraining from scratch (muP, AdamW, WSD with an exponential decay into which SFT data is mixed);
#   4. supervised fine-tuning on the chat data;
#   5. export (f32 weights, tokenizer, generation_config.json), held-out evaluation, loss curves to docs/.
# Deterministic on a given machine (the trainer gives the same bits for any thread count).
# Takes about 1.5-2 h on 2 shared cores. Needs ../shared/data (see its README for
# licenses) and Debian's python3-matplotlib (/usr/bin/python3) for the plots.
#
# Usage: scripts/train-bundled-model.sh [WORK_DIR]     (default /tmp/minicpm-bundled)
# Env:   BUILD (build folder, default build), THREADS (default 2), SHARED (default ../shared/data),
#        PRETRAIN_STEPS (default 1400), SFT_STEPS (default 300), RESUME=1 (continue an interrupted pretraining),
#        OUT (model folder, default models/minicpm4-tiny-chat), DOCS (loss curves, default docs),
#        MINICPM (the binary, default $BUILD/bin/minicpm)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${1:-/tmp/minicpm-bundled}
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
SHARED=${SHARED:-$ROOT/../shared/data}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-1400}
SFT_STEPS=${SFT_STEPS:-300}
OUT=${OUT:-$ROOT/models/minicpm4-tiny-chat}
DOCS=${DOCS:-$ROOT/docs}
MINICPM=${MINICPM:-$ROOT/$BUILD/bin/minicpm}
PY=/usr/bin/python3   # Debian python with matplotlib (not the pyenv python on PATH)

[ -d "$SHARED" ] || { echo "error: $SHARED not found (set SHARED=...)" >&2; exit 1; }
if [ ! -x "$MINICPM" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" --target minicpm -j "$THREADS"
fi
mkdir -p "$WORK"
cd "$WORK"
log() { echo "[$(date +%H:%M:%S)] $*"; }

# ---- 1. tokenizer --------------------------------------------------------------------------
# No evaluation split anywhere (WikiText test, ARC, PIQA, MMLU, GSM8K test, HellaSwag, MT-Bench).
PRETRAIN_TEXT=("$SHARED/tinyshakespeare.txt" "$SHARED/c4_sample_1000.jsonl" "$SHARED/c4_demo_300.jsonl"
               "$SHARED/wikipedia_demo_30articles.txt")
if [ ! -f tok/tokenizer.model ]; then
  log "training the tokenizer"
  "$MINICPM" data train-tokenizer -i "${PRETRAIN_TEXT[@]}" --split line --vocab-size 4096 -t "$THREADS" \
    -o tok --no-progress
fi

# ---- 2. shards -------------------------------------------------------------------------------
if [ ! -f sft_eval.bin ]; then
  log "encoding the pretraining text (5% held out per source)"
  "$MINICPM" data encode -i "$SHARED/tinyshakespeare.txt" --tokenizer tok -o shakespeare.bin \
    --eval-out shakespeare_eval.bin --eval-fraction 0.05 --no-progress
  "$MINICPM" data encode -i "$SHARED/c4_sample_1000.jsonl" "$SHARED/c4_demo_300.jsonl" --tokenizer tok -o c4.bin \
    --eval-out c4_eval.bin --eval-fraction 0.05 --no-progress
  "$MINICPM" data encode -i "$SHARED/wikipedia_demo_30articles.txt" \
    --split line --tokenizer tok -o wiki.bin --eval-out wiki_eval.bin --eval-fraction 0.05 --no-progress

  log "rendering the SFT data"
  # GSM8K: the first 1500 training problems, without the <<a*b=c>> calculator annotations.
  head -n 1500 "$SHARED/gsm8k_train.jsonl" | sed -E 's/<<[^>]*>>//g' > gsm8k_1500.jsonl
  # A few conversations about the model itself (written for this project).
  cat > identity.json <<'EOF'
[
 {"instruction": "Who are you?", "input": "", "output": "I am MiniCPM4-tiny, a very small chat model in the MiniCPM4 architecture. I was trained from scratch with minicpm.cpp on a little English text, so I know only a little."},
 {"instruction": "What is your name?", "input": "", "output": "My name is MiniCPM4-tiny."},
 {"instruction": "Introduce yourself.", "input": "", "output": "Hello! I am MiniCPM4-tiny, a small language model with about six and a half million parameters. I can write short texts and answer simple questions, but I often make mistakes."},
 {"instruction": "Who made you?", "input": "", "output": "I was trained with minicpm.cpp, a C++ engine and trainer for MiniCPM4 models."},
 {"instruction": "Are you a human?", "input": "", "output": "No, I am a small language model called MiniCPM4-tiny."},
 {"instruction": "What can you do?", "input": "", "output": "I can write short poems and stories, give simple explanations and try to answer questions. I am a tiny model, so please check what I say."},
 {"instruction": "How were you trained?", "input": "", "output": "I was pretrained on Shakespeare, Wikipedia and web text with a warmup-stable-decay learning rate schedule, and then fine-tuned on instructions."},
 {"instruction": "Hello!", "input": "", "output": "Hello! How can I help you today?"},
 {"instruction": "Hi, how are you?", "input": "", "output": "I am fine, thank you! What would you like to talk about?"},
 {"instruction": "Thank you!", "input": "", "output": "You are welcome! Let me know if you need anything else."},
 {"instruction": "Goodbye.", "input": "", "output": "Goodbye! Have a nice day."},
 {"instruction": "Are you ChatGPT?", "input": "", "output": "No, I am MiniCPM4-tiny, a small model trained with minicpm.cpp."}
]
EOF
  "$MINICPM" data sft -i "$SHARED/alpaca_5000.json" --tokenizer tok -o alpaca.bin --eval-out alpaca_eval.bin \
    --eval-fraction 0.05 --no-progress
  "$MINICPM" data sft -i gsm8k_1500.jsonl --tokenizer tok -o gsm8k.bin --no-progress
  "$MINICPM" data sft -i "$SHARED/llamafactory_dpo_en_demo_multiturn.json" --tokenizer tok -o chats.bin --no-progress
  "$MINICPM" data sft -i identity.json identity.json identity.json identity.json --tokenizer tok -o identity.bin \
    --no-progress
  cp alpaca_eval.bin sft_eval.bin
  "$MINICPM" data info shakespeare.bin c4.bin wiki.bin alpaca.bin gsm8k.bin chats.bin identity.bin
fi
PRE_TRAIN=shakespeare.bin,c4.bin,wiki.bin
PRE_EVAL=shakespeare_eval.bin,c4_eval.bin,wiki_eval.bin
SFT_TRAIN=alpaca.bin,gsm8k.bin,chats.bin,identity.bin

# ---- 3. pretraining --------------------------------------------------------------------------
# 6.56M parameters: hidden 256, 8 layers, 4 heads of 64 (2 kv heads), SwiGLU 640 (2.5 x hidden), tied
# 4096-token vocabulary, MiniCPM4-0.5B's LongRoPE factors; f32 weights = 26 MB. muP: width_mult 1,
# lr 0.01, init_std 0.1, scale_emb 12, scale_depth 1.4. 8 x 512 tokens per update; WSD: 5% warmup,
# exponential decay over the last 15% to 2% of lr, with 30% of the decay-phase sequences drawn from
# the SFT data (MiniCPM mixes SFT data into its decay).
PRETRAIN_ARGS=(--tokenizer tok --train $PRE_TRAIN --eval $PRE_EVAL --decay-mix $SFT_TRAIN --decay-mix-frac 0.3
  --hidden 256 --layers 8 --heads 4 --kv-heads 2 --ffn 640 --max-pos 2048 --longrope minicpm4
  -b 8 --seq 512 --steps "$PRETRAIN_STEPS" --lr 0.01 --warmup $((PRETRAIN_STEPS / 20)) --schedule wsd-exp
  --decay-frac 0.15 --min-lr-ratio 0.02 --wd 0.1 --clip 1.0 --seed 1 -t "$THREADS" --log-interval 10
  --eval-interval 100 --eval-seqs 96 --ckpt-interval 200 --forward-matmul train -o pretrain)
if [ ! -f pretrain/final/model.safetensors ]; then
  if [ "${RESUME:-0}" = 1 ] && ls -d pretrain/step-* >/dev/null 2>&1; then
    last=$(ls -d pretrain/step-* | sort | tail -1)
    log "resuming pretraining from $last"
    "$MINICPM" train --resume "$last" -t "$THREADS" --log-interval 10 --eval-interval 100 --ckpt-interval 200 \
      --forward-matmul train -o pretrain
  else
    log "pretraining ($PRETRAIN_STEPS updates)"
    rm -rf pretrain
    "$MINICPM" train "${PRETRAIN_ARGS[@]}"
  fi
fi

# ---- 4. supervised fine-tuning (chat data + pretraining text) ------------------------------------
if [ ! -f sft/final/model.safetensors ]; then
  log "supervised fine-tuning ($SFT_STEPS updates)"
  rm -rf sft
  # The pretraining text stays in the mix (about half of the sequences), so fine-tuning on the chat
  # format does not give back the plain-text perplexity (it did: 96.7 -> 145 with SFT data alone).
  "$MINICPM" train --init-from pretrain/final --train $SFT_TRAIN,$PRE_TRAIN --eval sft_eval.bin -b 8 --seq 512 \
    --steps "$SFT_STEPS" --lr 0.003 --warmup $((SFT_STEPS / 10)) --schedule wsd-exp --decay-frac 0.3 \
    --min-lr-ratio 0.05 --wd 0.1 --clip 1.0 --seed 2 -t "$THREADS" --log-interval 10 --eval-interval 25 \
    --eval-seqs 64 --forward-matmul train -o sft
fi

# ---- 5. export ------------------------------------------------------------------------------------
log "exporting to $OUT"
rm -rf "$OUT"
mkdir -p "$OUT"
cp sft/final/config.json sft/final/model.safetensors "$OUT"/
cp tok/tokenizer.model tok/tokenizer_config.json tok/special_tokens_map.json "$OUT"/
cat > "$OUT/generation_config.json" <<'EOF'
{
  "bos_token_id": 1,
  "eos_token_id": [2, 3],
  "do_sample": true,
  "temperature": 0.7,
  "top_p": 0.9,
  "repetition_penalty": 1.1
}
EOF
log "held-out evaluation of the exported model"
{
  echo "pretraining held-out text (shakespeare, c4, wiki tails):"
  "$MINICPM" train --eval-only --init-from "$OUT" --eval $PRE_EVAL -b 8 --seq 512 --eval-seqs 0 -t "$THREADS"
  echo "SFT held-out (alpaca tail, assistant tokens):"
  "$MINICPM" train --eval-only --init-from "$OUT" --eval sft_eval.bin -b 8 --seq 512 --eval-seqs 0 -t "$THREADS"
} 2>&1 | tee eval.txt
mkdir -p "$DOCS"
cp pretrain/loss.csv "$DOCS/bundled-model-pretrain-loss.csv"
cp sft/loss.csv "$DOCS/bundled-model-sft-loss.csv"
$PY "$ROOT/tools/plot_loss.py" "$DOCS/bundled-model-pretrain-loss.csv" "$DOCS/bundled-model-sft-loss.csv" \
  --labels pretraining SFT -o "$DOCS/bundled-model-loss.png"
ls -la "$OUT"
log "done: $MINICPM generate --chat \"Write a short poem about the sea.\""
