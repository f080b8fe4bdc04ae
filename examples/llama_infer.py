#!/usr/bin/env python3
"""LLM inference that reports its events to llem: copy it as a starting point.

Builds a Llama-architecture model (TinyLlama-1.1B's shape, randomly
initialised: no weights are downloaded), then generates batches of text on
the GPU in bf16 and reports, through llem's Python client:

  phase warmup / measure / p0_hold       what the time was spent on
  request_start, first_token, token,     per request of each batch
  request_end (input and output tokens)

Run it under llem:
    llem record --idle-before 10s --idle-after 10s --cycles 5 -- \
        python3 examples/llama_infer.py --batch 8 --measure-seconds 30

or alone (the client then does nothing):
    python3 examples/llama_infer.py --batch 8

Warm-up: `--warmup full` (default) runs the real workload for
--warmup-seconds (60 s: the thermal conditioning the methodology asks for);
`--warmup fast` runs a few short generations, enough for kernel compilation
and caches, for latency-only studies. `--p0-hold S` keeps the model resident
and the GPU idle for S seconds after measuring, for the loaded-idle (P0)
baseline.

Every mark that ends GPU work comes after torch.cuda.synchronize(), so the
mark means the work is done.
"""
import argparse
import json
import os
import sys
import time

# The client and its transformers streamer: installed (pip install
# ./clients/python), or else this checkout's.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import llem_events  # noqa: E402
from llem_transformers import TokenEvents  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8, help="requests per batch (default 8)")
    p.add_argument("--prompt-tokens", type=int, default=64, help="input tokens per request (default 64)")
    p.add_argument("--new-tokens", type=int, default=128, help="output tokens per request (default 128)")
    p.add_argument("--measure-seconds", type=float, default=30, help="generate batches for this long (default 30)")
    p.add_argument("--measure-batches", type=int, default=0, help="generate exactly this many batches instead (for fixed-work comparisons)")
    p.add_argument("--warmup", choices=["full", "fast"], default="full", help="full: real workload for --warmup-seconds; fast: 3 short generations")
    p.add_argument("--warmup-seconds", type=float, default=60, help="length of the full warm-up (default 60)")
    p.add_argument("--p0-hold", type=float, default=0, help="seconds to hold the loaded, idle GPU after measuring (default 0)")
    p.add_argument("--layers", type=int, default=22, help="decoder layers (default 22: ~1.1 B parameters)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def build_model(args, torch):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=32000, hidden_size=2048, intermediate_size=5632,
        num_hidden_layers=args.layers, num_attention_heads=32, num_key_value_heads=4,
        max_position_embeddings=4096, tie_word_embeddings=False,
    )
    torch.manual_seed(args.seed)
    # Initialise directly on the GPU in bf16: random weights, no download.
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    model.eval()
    return model


def generate_batch(model, torch, args, batch_no, new_tokens, report=True):
    ids = [f"b{batch_no}-{i}" for i in range(args.batch)]
    prompt = torch.randint(100, 32000, (args.batch, args.prompt_tokens), device="cuda")
    if report:
        for rid in ids:
            llem_events.request_start(rid)
    with torch.inference_mode():
        out = model.generate(
            input_ids=prompt, attention_mask=torch.ones_like(prompt),
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
            pad_token_id=0, streamer=TokenEvents(ids) if report else None,
        )
    torch.cuda.synchronize()
    produced = out.shape[1] - args.prompt_tokens
    if report:
        for rid in ids:
            llem_events.request_end(rid, input_tokens=args.prompt_tokens, output_tokens=produced)
    return produced * args.batch


def main():
    args = parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("llama_infer: no CUDA GPU visible")
    t0 = time.time()
    model = build_model(args, torch)
    params = sum(p.numel() for p in model.parameters())
    print(f"llama_infer: {params / 1e9:.2f} B parameters on {torch.cuda.get_device_name()} "
          f"(set-up {time.time() - t0:.1f} s)", flush=True)

    batch_no = 0
    with llem_events.phase("warmup"):
        if args.warmup == "fast":
            for _ in range(3):
                generate_batch(model, torch, args, f"w{batch_no}", 8, report=False)
                batch_no += 1
        else:
            end = time.time() + args.warmup_seconds
            while time.time() < end:
                generate_batch(model, torch, args, f"w{batch_no}", args.new_tokens, report=False)
                batch_no += 1

    tokens = 0
    batches = 0
    with llem_events.phase("measure"):
        start = time.time()
        def more():
            if args.measure_batches > 0:
                return batches < args.measure_batches
            return batches == 0 or time.time() - start < args.measure_seconds

        while more():
            tokens += generate_batch(model, torch, args, batches, args.new_tokens)
            batches += 1
        elapsed = time.time() - start

    if args.p0_hold > 0:
        # Model resident, context held, no work: the loaded-idle baseline.
        with llem_events.phase("p0_hold"):
            time.sleep(args.p0_hold)

    result = {"batch": args.batch, "batches": batches, "output_tokens": tokens,
              "seconds": round(elapsed, 3), "tokens_per_s": round(tokens / elapsed, 2)}
    print("llama_infer: " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
