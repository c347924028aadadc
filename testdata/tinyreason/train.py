#!/usr/bin/python3
"""Train rise's tiny reasoning model (testdata/tinyreason).

A small Llama-architecture model, exactly as llama2.c runs it, trained on the
synthetic reasoning traces that `rise traces` writes, and exported in
llama2.c's version-1 checkpoint format (model.bin) with a byte-level
llama2.c tokenizer (tok.bin). See README.md (the model card) for the exact
commands and figures.

Modes:
  train (default)   make data with the rise binary (or --traces), train, export
  --export-only     export model.bin / tok.bin from a checkpoint (--ckpt)
  --eval            greedy generation with the PyTorch model on held-out prompts

Only PyTorch (1.13, CPU) and numpy are needed.
"""
import argparse
import json
import math
import os
import random
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 259  # <unk>, BOS, EOS, 256 byte tokens
BOS, EOS = 1, 2


# ---------------------------------------------------------------- tokenizer

def encode(text):
    """llama2.c run.c encoding with a byte-only vocabulary: the dummy-prefix
    space becomes byte token 32+3, every UTF-8 byte b becomes b+3."""
    return [35] + [b + 3 for b in text.encode("utf-8")]


def decode(ids):
    return bytes(i - 3 for i in ids if i >= 3).decode("utf-8", errors="replace")


def write_tokenizer(path):
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [
        ("<0x%02X>" % b).encode() for b in range(256)]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for p in pieces:
            f.write(struct.pack("<fi", 0.0, len(p)))
            f.write(p)


# ---------------------------------------------------------------- model

class Cfg:
    def __init__(self, dim=128, n_layers=4, n_heads=4, n_kv_heads=4,
                 hidden_dim=384, vocab_size=VOCAB, max_seq_len=512):
        self.dim, self.n_layers, self.n_heads = dim, n_layers, n_heads
        self.n_kv_heads, self.hidden_dim = n_kv_heads, hidden_dim
        self.vocab_size, self.max_seq_len = vocab_size, max_seq_len


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, max_len):
    # llama2.c interleaved RoPE: pair (2i, 2i+1) rotated by pos * 10000^(-2i/head_dim)
    freqs = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    ang = torch.outer(torch.arange(max_len).float(), freqs)  # [T, head_dim/2]
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    # x [B, H, T, hd]; cos/sin [T, hd/2]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    r0 = x0 * cos - x1 * sin
    r1 = x0 * sin + x1 * cos
    return torch.stack((r0, r1), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh, self.nkv, self.hd = c.n_heads, c.n_kv_heads, c.dim // c.n_heads
        self.attention_norm = RMSNorm(c.dim)
        self.ffn_norm = RMSNorm(c.dim)
        self.wq = nn.Linear(c.dim, c.n_heads * self.hd, bias=False)
        self.wk = nn.Linear(c.dim, c.n_kv_heads * self.hd, bias=False)
        self.wv = nn.Linear(c.dim, c.n_kv_heads * self.hd, bias=False)
        self.wo = nn.Linear(c.n_heads * self.hd, c.dim, bias=False)
        self.w1 = nn.Linear(c.dim, c.hidden_dim, bias=False)
        self.w2 = nn.Linear(c.hidden_dim, c.dim, bias=False)
        self.w3 = nn.Linear(c.dim, c.hidden_dim, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attention_norm(x)
        q = self.wq(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.nkv != self.nh:
            rep = self.nh // self.nkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd)
        att = att + mask
        att = F.softmax(att, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.wo(o)
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_embeddings = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList([Block(c) for _ in range(c.n_layers)])
        self.norm = RMSNorm(c.dim)
        cos, sin = rope_tables(c.dim // c.n_heads, c.max_seq_len)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.apply(self._init)
        for n, p in self.named_parameters():
            if n.endswith("wo.weight") or n.endswith("w2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx):
        B, T = idx.shape
        x = self.tok_embeddings(idx)
        mask = torch.full((T, T), float("-inf")).triu(1)
        cos, sin = self.cos[:T], self.sin[:T]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        return x @ self.tok_embeddings.weight.t()

    @torch.no_grad()
    def generate(self, ids, max_new, stop=EOS):
        """Greedy decoding (no KV cache; the model is tiny)."""
        ids = list(ids)
        out = []
        for _ in range(max_new):
            if len(ids) >= self.c.max_seq_len:
                break
            logits = self(torch.tensor([ids]))[0, -1]
            t = int(torch.argmax(logits))
            if t == stop:
                break
            ids.append(t)
            out.append(t)
        return out


def export(model, path):
    """llama2.c version-1 checkpoint, shared classifier."""
    c = model.c
    L = model.layers
    hdr = struct.pack("<Ii", 0x616B3432, 1)
    hdr += struct.pack("<7i", c.dim, c.hidden_dim, c.n_layers, c.n_heads,
                       c.n_kv_heads, c.vocab_size, c.max_seq_len)
    hdr += struct.pack("<B", 1)
    hdr += b"\0" * (256 - len(hdr))
    ws = [*[l.attention_norm.weight for l in L], *[l.ffn_norm.weight for l in L],
          model.norm.weight, model.tok_embeddings.weight,
          *[l.wq.weight for l in L], *[l.wk.weight for l in L],
          *[l.wv.weight for l in L], *[l.wo.weight for l in L],
          *[l.w1.weight for l in L], *[l.w2.weight for l in L],
          *[l.w3.weight for l in L]]
    with open(path, "wb") as f:
        f.write(hdr)
        for w in ws:
            f.write(w.detach().cpu().float().numpy().astype("<f4").tobytes())


# ---------------------------------------------------------------- data

def load_traces(args):
    path = args.traces
    if not path:
        os.makedirs(args.workdir, exist_ok=True)
        path = os.path.join(args.workdir, "train.jsonl")
        cmd = [args.rise, "traces", "--out", path, "--n", str(args.n),
               "--seed", str(args.data_seed)]
        print("running:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    seqs, skipped = [], 0
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            p = [BOS] + encode(d["prompt"])
            r = [b + 3 for b in d["response"].encode("utf-8")] + [EOS]
            if len(p) + len(r) > args.max_seq_len:
                skipped += 1
                continue
            seqs.append((p, r))
    print(f"{len(seqs)} sequences from {path}, {skipped} skipped (longer than "
          f"{args.max_seq_len} tokens)", flush=True)
    return seqs


def make_batches(seqs, tokens_per_batch, rng):
    """Length-bucketed padded batches: sort by length, cut into batches of about
    tokens_per_batch padded tokens, shuffle the batch order."""
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i][0]) + len(seqs[i][1]), rng.random()))
    batches, cur, cur_max = [], [], 0
    for i in order:
        n = len(seqs[i][0]) + len(seqs[i][1])
        if cur and max(cur_max, n) * (len(cur) + 1) > tokens_per_batch:
            batches.append(cur)
            cur, cur_max = [], 0
        cur.append(i)
        cur_max = max(cur_max, n)
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def collate(seqs, idx, prompt_loss):
    T = max(len(seqs[i][0]) + len(seqs[i][1]) for i in idx) - 1
    x = torch.zeros(len(idx), T, dtype=torch.long)
    y = torch.full((len(idx), T), -100, dtype=torch.long)
    for b, i in enumerate(idx):
        p, r = seqs[i]
        s = p + r
        x[b, :len(s) - 1] = torch.tensor(s[:-1])
        tgt = torch.tensor(s[1:])
        if not prompt_loss:
            tgt[:len(p) - 1] = -100  # predict the response and EOS only
        y[b, :len(s) - 1] = tgt
    return x, y


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rise", default="rise", help="the rise binary (makes the traces)")
    ap.add_argument("--traces", default="", help="use these traces instead of running rise traces")
    ap.add_argument("--n", type=int, default=20000, help="traces to make")
    ap.add_argument("--data-seed", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/tinyreason")
    ap.add_argument("--out", default=HERE, help="where model.bin and tok.bin go")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--n-kv-heads", type=int, default=4)
    ap.add_argument("--hidden-dim", type=int, default=384)
    ap.add_argument("--max-seq-len", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-tokens", type=int, default=8192, help="padded tokens per batch")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--prompt-loss", action="store_true", help="also train on the prompt tokens")
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--ckpt", default="", help="checkpoint (.pt) to resume from / export / evaluate")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--eval", action="store_true", help="greedy PyTorch generation on --prompts")
    ap.add_argument("--prompts", default="/tmp/tinyreason/heldout.jsonl")
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--time-steps", type=int, default=0, help="time this many steps and exit")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    cfg = Cfg(args.dim, args.n_layers, args.n_heads, args.n_kv_heads,
              args.hidden_dim, VOCAB, args.max_seq_len)
    assert cfg.dim % cfg.n_heads == 0 and cfg.n_heads % cfg.n_kv_heads == 0
    model = Model(cfg)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model: dim {cfg.dim}, layers {cfg.n_layers}, heads {cfg.n_heads}/{cfg.n_kv_heads}, "
          f"hidden {cfg.hidden_dim}, vocab {cfg.vocab_size}, seq {cfg.max_seq_len}: {nparams} parameters", flush=True)

    if args.export_only or args.eval:
        sd = torch.load(args.ckpt or os.path.join(args.workdir, "ckpt.pt"))
        model.load_state_dict(sd["model"])
        model.eval()
        if args.export_only:
            export(model, os.path.join(args.out, "model.bin"))
            write_tokenizer(os.path.join(args.out, "tok.bin"))
            print("exported", args.out)
        if args.eval:
            evaluate(model, args)
        return

    seqs = load_traces(args)
    rng = random.Random(args.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))

    step, epoch = 0, 0
    ckpt_path = os.path.join(args.workdir, "ckpt.pt")
    if args.ckpt:
        sd = torch.load(args.ckpt)
        model.load_state_dict(sd["model"])
        opt.load_state_dict(sd["opt"])
        step, epoch = sd["step"], sd["epoch"]
        rng.setstate(sd["rng"])
        torch.set_rng_state(sd["torch_rng"])
        print(f"resumed from {args.ckpt} at step {step}", flush=True)

    t0 = time.time()
    batches, bi = [], 0
    ema = None
    model.train()
    steps_to_run = args.time_steps or args.steps
    while step < steps_to_run:
        if bi >= len(batches):
            batches, bi = make_batches(seqs, args.batch_tokens, rng), 0
            epoch += 1
            print(f"epoch {epoch}: {len(batches)} batches", flush=True)
        x, y = collate(seqs, batches[bi], args.prompt_loss)
        bi += 1
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, VOCAB), y.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 25 == 0 or step == 1:
            el = time.time() - t0
            print(f"step {step}/{args.steps} epoch {epoch} loss {loss.item():.4f} ema {ema:.4f} "
                  f"gnorm {gn:.2f} lr {lr_at(step - 1):.2e} elapsed {el:.0f}s ({el / step:.2f}s/step)", flush=True)
        if step % args.ckpt_every == 0 or step == args.steps:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "epoch": epoch, "rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
                        "cfg": vars(cfg)}, ckpt_path)
    if args.time_steps:
        print(f"timed {args.time_steps} steps: {(time.time() - t0) / args.time_steps:.3f}s/step")
        return
    print(f"done: {step} steps, {time.time() - t0:.0f}s, final loss ema {ema:.4f}", flush=True)
    model.eval()
    export(model, os.path.join(args.out, "model.bin"))
    write_tokenizer(os.path.join(args.out, "tok.bin"))
    print("exported", os.path.join(args.out, "model.bin"), os.path.join(args.out, "tok.bin"), flush=True)


def evaluate(model, args):
    rows = [json.loads(l) for l in open(args.prompts)][: args.limit]
    right = 0
    res = []
    for d in rows:
        out = model.generate([BOS] + encode(d["prompt"]), args.max_tokens)
        text = decode(out)
        nums = [t for t in text.replace(",", "").replace(".", " ").split() if t.lstrip("-").isdigit()]
        ok = bool(nums) and "answer" in d and nums[-1] == str(d["answer"])
        right += ok
        res.append({"prompt": d["prompt"], "text": text, "answer": d.get("answer"), "correct": ok})
        print(json.dumps(res[-1]), flush=True)
    print(f"pytorch greedy: {right}/{len(rows)} correct", flush=True)
    with open(os.path.join(args.workdir, "pt_eval.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
