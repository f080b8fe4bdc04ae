#!/usr/bin/env python3
"""A small OpenAI-compatible streaming endpoint on a GPU, for llem load.

Serves examples/llama_infer.py's model (TinyLlama-1.1B's shape, random
weights: nothing is downloaded) with the Python standard library's HTTP
server:

  GET  /v1/models
  POST /v1/chat/completions   (messages)          stream: true only
  POST /v1/completions        (prompt: text or token ids)

Text becomes token ids one word per token (the model has no tokenizer);
the output is one chunk per generated token, as vLLM streams, with usage
when stream_options.include_usage asks for it, then [DONE]. Every request
generates exactly its max_tokens (min_new_tokens), so the work per request
is fixed.

Batching is static: the engine takes every request waiting (up to
--max-batch), generates them as one batch to the longest max_tokens, and
streams each step's tokens as they come off the GPU; requests that arrive
meanwhile wait for the next batch. That is simpler than vLLM's continuous
batching and shows in TTFT, which is the point of measuring it.

    python3 bench/gpu/serve_openai.py --port 8321 &
    llem record -- llem load --url http://127.0.0.1:8321/v1 --model tiny-llama \
        --concurrency 32 --duration 60s --prompt-tokens 256 --max-tokens 128
"""
import argparse
import json
import os
import queue
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8321)
    p.add_argument("--model-name", default="tiny-llama", help="the name clients send as model")
    p.add_argument("--layers", type=int, default=22, help="decoder layers (22: ~1.1 B parameters)")
    p.add_argument("--max-batch", type=int, default=32, help="most requests generated together")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def word_ids(text):
    """One token id per word, in the model's vocabulary, clear of the low ids."""
    return [1000 + zlib.crc32(w.encode()) % 30000 for w in text.split()]


class Request:
    def __init__(self, ids, max_tokens):
        self.ids = ids
        self.max_tokens = max_tokens
        self.sent = 0
        self.out = queue.Queue()  # token ids, then None at the end, or an Exception


class Streamer:
    """generate() calls put() with the prompt, then once per step with that
    step's tokens, already copied to the CPU: the step's GPU work is done."""

    def __init__(self, batch):
        self.batch = batch
        self.calls = 0

    def put(self, value):
        self.calls += 1
        if self.calls == 1:
            return
        for r, tok in zip(self.batch, value.reshape(-1).tolist()):
            if r.sent < r.max_tokens:
                r.sent += 1
                r.out.put(tok)

    def end(self):
        pass


class Engine:
    def __init__(self, model, torch, max_batch):
        self.model, self.torch, self.max_batch = model, torch, max_batch
        self.waiting = queue.Queue()

    def submit(self, req):
        self.waiting.put(req)

    def run(self):
        while True:
            batch = [self.waiting.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                self.generate(batch)
                for r in batch:
                    r.out.put(None)
            except Exception as e:  # the requests fail, the server goes on
                for r in batch:
                    r.out.put(e)

    def generate(self, batch):
        torch = self.torch
        width = max(len(r.ids) for r in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(batch):  # left padding
            ids[i, width - len(r.ids):] = torch.tensor(r.ids)
            mask[i, width - len(r.ids):] = 1
        new = max(r.max_tokens for r in batch)
        with torch.inference_mode():
            self.model.generate(input_ids=ids.cuda(), attention_mask=mask.cuda(), max_new_tokens=new,
                                min_new_tokens=new, do_sample=False, pad_token_id=0, streamer=Streamer(batch))
        torch.cuda.synchronize()


def make_handler(engine, model_name):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, chunked streams

        def log_message(self, *args):
            pass

        def reply_json(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def error(self, status, msg):
            self.reply_json(status, {"object": "error", "message": msg, "type": "BadRequestError", "code": status})

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self.reply_json(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self.error(404, "not found")

        def do_POST(self):
            chat = self.path == "/v1/chat/completions"
            if not chat and self.path != "/v1/completions":
                return self.error(404, "not found")
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            except ValueError:
                return self.error(400, "the body is not JSON")
            if body.get("model") != model_name:
                return self.error(404, f"model {body.get('model')!r}: this server has {model_name!r}")
            if body.get("stream") is not True:
                return self.error(400, "only stream: true is served")
            if chat:
                ids = word_ids("\n".join(str(m.get("content", "")) for m in body.get("messages", [])))
            elif isinstance(body.get("prompt"), list):
                ids = [int(t) % 32000 for t in body["prompt"]]
            else:
                ids = word_ids(str(body.get("prompt", "")))
            max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
            if not ids or max_tokens < 1:
                return self.error(400, "an empty prompt or max_tokens < 1")
            req = Request(ids, max_tokens)
            engine.submit(req)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                self.stream(req, chat, body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client left; the batch goes on without it

        def send_event(self, obj):
            data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def stream(self, req, chat, body):
            rid, created = f"cmpl-{id(req):x}", int(time.time())
            kind = "chat.completion.chunk" if chat else "text_completion"

            def chunk(text, finish, role=False):
                choice = {"index": 0, "logprobs": None, "finish_reason": finish}
                if chat:
                    choice["delta"] = {"role": "assistant", "content": ""} if role else {"content": text}
                else:
                    choice["text"] = text
                return {"id": rid, "object": kind, "created": created, "model": model_name, "choices": [choice]}

            n = 0
            while True:
                tok = req.out.get()
                if tok is None:
                    break
                if isinstance(tok, Exception):
                    self.send_event({"error": {"message": str(tok), "type": type(tok).__name__, "code": 500}})
                    break
                if n == 0 and chat:  # vLLM's role chunk, sent with the first token
                    self.send_event(chunk("", None, role=True))
                n += 1
                self.send_event(chunk(f" t{tok}", "length" if n == req.max_tokens else None))
            if (body.get("stream_options") or {}).get("include_usage"):
                self.send_event({"id": rid, "object": kind, "created": created, "model": model_name, "choices": [],
                                 "usage": {"prompt_tokens": len(req.ids), "completion_tokens": n,
                                           "total_tokens": len(req.ids) + n}})
            self.send_event(b"[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


def main():
    args = parse_args()
    import torch
    from llama_infer import build_model

    if not torch.cuda.is_available():
        sys.exit("serve_openai: no CUDA GPU visible")
    t0 = time.time()
    model = build_model(args, torch)
    engine = Engine(model, torch, args.max_batch)
    warm = Request(word_ids("warm up the kernels"), 4)
    engine.generate([warm])  # compile and cache before the first client
    threading.Thread(target=engine.run, daemon=True).start()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(engine, args.model_name))
    server.daemon_threads = True
    print(f"serve_openai: {args.model_name} on {torch.cuda.get_device_name()} at "
          f"http://{args.host}:{args.port}/v1 (set-up {time.time() - t0:.1f} s)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
