#!/usr/bin/python3
"""Strided perplexity exactly as the Hugging Face guide computes it ("Perplexity of fixed-length
models", huggingface.co/docs/transformers/perplexity), on the independent reference forward of
minicpm_ref.py (PyTorch, fp32; no transformers needed). This is the "other tool" for
`minicpm perplexity --ppl-mode strided` (docs/perplexity.md):

    minicpm tokenize -m DIR -f text.txt > ids.txt       # BOS + ids, space-separated
    minicpm perplexity -m DIR --tokens ids.txt --ppl-mode strided --ctx 512 --stride 256
    /usr/bin/python3 tools/reference/hf_perplexity.py --model DIR --tokens ids.txt --max-length 512 --stride 256

The loop is the guide's, literally: windows input_ids[begin:end] with end = min(begin + max_length,
seq_len) for begin in range(0, seq_len, stride); labels = input_ids with all but the last
trg_len = end - prev_end positions set to -100; the model shifts the labels by one and averages the
cross entropy over the labels that are not -100; stop when end reaches seq_len.

Two numbers are printed:
  token-mean  exp(sum of every scored token's NLL / number of scored tokens). minicpm's strided
              mode reports this one.
  guide       the guide's own bookkeeping, nll_sum += loss * (num_valid_tokens - batch_size): after
              the first window num_valid_tokens already counts only shifted targets, so each
              later window is weighted by one token less than it scores. On long texts the two
              agree to a few 1e-4 (relative); the token mean is the exact definition.
"""

import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minicpm_ref  # noqa: E402


def read_ids(path):
    with open(path) as f:
        return [int(w) for w in f.read().split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint folder (HF layout)")
    ap.add_argument("--tokens", required=True, help="whitespace-separated token ids (BOS included, as encodings)")
    ap.add_argument("--max-length", type=int, default=512, help="window = minicpm --ctx")
    ap.add_argument("--stride", type=int, default=256, help="= minicpm --stride")
    ap.add_argument("--max-tokens", type=int, default=0, help="use only the first N ids (= minicpm --max-tokens)")
    args = ap.parse_args()

    cfg, weights = minicpm_ref.load_model(args.model)
    ids = read_ids(args.tokens)
    if args.max_tokens > 0:
        ids = ids[: args.max_tokens]
    encodings = torch.tensor([ids], dtype=torch.long)
    max_length, stride = args.max_length, args.stride
    seq_len = encodings.size(1)

    nll_sum_guide, n_tokens_guide = 0.0, 0
    nll_sum_exact, n_exact = 0.0, 0
    prev_end_loc = 0
    n_windows = 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc  # may be different from stride on last loop
        input_ids = encodings[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100

        with torch.no_grad():
            logits = minicpm_ref.forward(cfg, weights, input_ids[0].tolist()).unsqueeze(0)  # [1, T, V]
            # What MiniCPMForCausalLM(labels=...) does: shift, cross entropy, mean over labels != -100.
            shift_logits = logits[:, :-1, :].reshape(-1, logits.size(-1)).double()
            shift_labels = target_ids[:, 1:].reshape(-1)
            per_token = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="none")
            valid = shift_labels != -100
            neg_log_likelihood = per_token[valid].mean()

        num_valid_tokens = (target_ids != -100).sum().item()
        batch_size = target_ids.size(0)
        num_loss_tokens = num_valid_tokens - batch_size
        nll_sum_guide += neg_log_likelihood.item() * num_loss_tokens
        n_tokens_guide += num_loss_tokens
        nll_sum_exact += per_token[valid].sum().item()
        n_exact += int(valid.sum().item())
        n_windows += 1

        prev_end_loc = end_loc
        if end_loc == seq_len:
            break

    print(f"windows {n_windows}, max_length {max_length}, stride {stride}, {seq_len} tokens")
    print(f"token-mean: perplexity {math.exp(nll_sum_exact / n_exact):.4f} ({n_exact} tokens scored, "
          f"mean nll {nll_sum_exact / n_exact:.6f})")
    print(f"guide     : perplexity {math.exp(nll_sum_guide / n_tokens_guide):.4f} (guide's weights, {n_tokens_guide} tokens)")


if __name__ == "__main__":
    main()
