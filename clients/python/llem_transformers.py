"""A Hugging Face transformers streamer that reports tokens to `llem record`.

    import llem_events
    from llem_transformers import TokenEvents

    ids = ["r0", "r1"]                       # one request id per batch row
    for rid in ids:
        llem_events.request_start(rid)
    streamer = TokenEvents(ids, eos_token_id=tokenizer.eos_token_id)
    out = model.generate(**inputs, max_new_tokens=128, streamer=streamer)
    torch.cuda.synchronize()
    for rid in ids:
        llem_events.request_end(rid, input_tokens=n_in, output_tokens=streamer.counts[rid])

generate() calls the streamer's put() with the prompt first, then once per
decoding step with that step's new tokens, already copied to the CPU, so
the step's GPU work is done when the event is sent. The first step sends
first_token for every row, later steps token events. No import of torch or
transformers is needed: the streamer only uses put() and end(), as
transformers' BaseStreamer does. Standard library and llem_events only;
copy it next to llem_events.py or pip install clients/python.
"""

import llem_events

__all__ = ["TokenEvents"]


class TokenEvents:
    """Report first_token and token events for the rows of a generate() batch.

    ids: the request id of each row of the batch (rows of input_ids, times
    num_return_sequences), in order. client: an llem_events.Client (default
    the shared one). eos_token_id: an int or a list of ints; a row that has
    produced one of them has finished, and the padding generate() adds after
    it is not counted (the end token itself is). batch: use
    llem_events.batch_tokens() for the later tokens, for high token rates
    (docs/events.md). skip_prompt: the first put() is the prompt (True for
    generate()).

    counts maps each id to the output tokens reported for it, for the
    output_tokens of request_end.
    """

    def __init__(self, ids, client=None, eos_token_id=None, batch=False, skip_prompt=True):
        self.ids = [str(i) for i in ids]
        self.client = client if client is not None else llem_events.client()
        if eos_token_id is None:
            self.eos = frozenset()
        elif isinstance(eos_token_id, (list, tuple, set, frozenset)):
            self.eos = frozenset(int(t) for t in eos_token_id)
        else:
            self.eos = frozenset([int(eos_token_id)])
        self.batch = batch
        self._skip = skip_prompt
        self.counts = {rid: 0 for rid in self.ids}
        self._done = set()

    def put(self, value):
        if self._skip:
            self._skip = False
            return
        rows = value.tolist() if hasattr(value, "tolist") else list(value)
        if len(rows) != len(self.ids):
            if len(self.ids) == 1 and rows and not isinstance(rows[0], list):
                rows = [rows]  # one row given as a flat list of tokens
            else:
                raise ValueError("TokenEvents: generate() gave %d rows, but %d ids were given"
                                 % (len(rows), len(self.ids)))
        firsts, step = [], []  # this step's first tokens, and (id, count) of the others
        for rid, row in zip(self.ids, rows):
            if rid in self._done:
                continue
            toks = row if isinstance(row, list) else [row]
            n = 0
            for t in toks:
                n += 1
                if t in self.eos:
                    self._done.add(rid)
                    break
            if n == 0:
                continue
            if self.counts[rid] == 0:
                firsts.append(rid)
                if n > 1:
                    step.append((rid, n - 1))
            else:
                step.append((rid, n))
            self.counts[rid] += n
        # One write for the step's first tokens and one for its other
        # tokens, not one a row: a batch of 32 rows is 32 times fewer
        # socket writes in the generation loop.
        if firsts:
            self.client.send_all([("first_token", {"id": rid}) for rid in firsts])
        if self.batch:
            for rid, n in step:
                self.client.batch_tokens(rid, n)
        elif step:
            self.client.step_tokens(step)

    def end(self):
        # The generation is over: what the client holds goes out now.
        self.client.flush()
