#!/usr/bin/env python3
"""Reference model server of rise's rise-backend/1 protocol (PyTorch).

rise drives large models (DeepSeek-R1-Distill-Qwen-1.5B and up) on GPU
machines over HTTP. This one file serves such a model with PyTorch:

    python3 rise_backend.py --model DIR [--dtype bfloat16] [--device cuda] [--addr 127.0.0.1:8000]

loads a Hugging Face model with transformers and answers

    GET  /v1/info      {"protocol", "name", "arch", "layers", "d_model", "vocab", "max_seq"}
    POST /v1/generate  {"prompts", "max_tokens", "temperature", "top_p", "seed", "special",
                        "no_stop", "vectors": [{"direction", "layer", "op", "strength",
                        "positions"}], "default"} -> {"generations", "default"}
    POST /v1/capture   {"traces", "layers", "delimiter", "special"} -> JSON lines, one per
                        trace {"trace", "response_tokens", "steps", "rows": {"L": [...]},
                        "truncated"}, then {"done": true} (or {"error": "..."})
    POST /v1/confidence {"w_dec", "d_sae", "layer", "traces", "iters", "batch", "lr", "states",
                        "seed"} -> {"layer", "top_columns", "vector", "norm", "entropy_curve",
                        "states", "scores"}
    POST /v1/entropy   {"traces", "vectors"} -> {"entropy", "states"}

exactly as rise's Go server (steer/remote.go, NewBackendHandler) does. The
confidence optimiser draws its shuffles from numpy, not rise's PCG: the same
method (steer/confidence.go), not the same numbers, unless the batch holds
every state.

    python3 rise_backend.py --reference DIR ...

serves a Hugging Face-format Llama/Qwen2/Qwen3 directory (config.json,
*.safetensors, tokenizer.json) with this file's own small PyTorch forward
and byte-level BPE tokenizer, without transformers: the protocol layer can
be tested on a machine that has torch alone.

    python3 rise_backend.py (--model DIR | --reference DIR) --capture traces.jsonl --layers 8,16 --out DUMP

writes a rise-activations/1 dump directly, without serving.

Only torch and numpy are needed (and transformers for --model). Greedy
decoding (temperature 0) picks the largest logit, the lowest id on ties,
as rise does; sampled generations draw from a torch.Generator seeded from
(seed, prompt index) and cannot match rise's own PCG draws: only greedy runs
are comparable across backends.
"""

import argparse
import codecs
import glob
import json
import math
import os
import re
import shutil
import struct
import sys
import tempfile
import threading
import traceback
import unicodedata
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch

PROTOCOL = "rise-backend/1"
DEFAULT_DELIMITER = "\n\n"
SHORT_TOKENS, LONG_TOKENS = 1000, 8000
MAX_REQUEST = 256 << 20

OPS = ("add", "scale", "clamp", "ablate")
POSITIONS = ("all", "prompt", "generated", "step_boundary", "window", "trigger")

# End-of-turn tokens that end a generation whenever the vocabulary has them
# (as steer/tokenizer_bpe.go's endOfTurnTokens).
END_OF_TURN = ["<|im_end|>", "<|endoftext|>", "<\uff5cend\u2581of\u2581sentence\uff5c>",
               "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>"]


class WireError(Exception):
    """An error answered as {"error": msg} with an HTTP status."""

    def __init__(self, msg, status=None):
        super().__init__(msg)
        self.status = status


def status_of(e):
    """HTTP status of a WireError: its own, or 400. A WireError is raised
    only for what the caller got wrong (as the Go server marks such errors
    with internal/inputerr); anything else is answered 500."""
    return e.status or 400


# ---------------------------------------------------------------------------
# Go's character classes (unicode package)
# ---------------------------------------------------------------------------

_GO_SPACE = set("\t\n\v\f\r \x85\xa0")


def go_isspace(c):
    """unicode.IsSpace: Latin-1 spaces, then the Z categories."""
    if c in _GO_SPACE:
        return True
    if ord(c) < 0x100:
        return False
    return unicodedata.category(c) in ("Zs", "Zl", "Zp")


def go_isletter(c):
    return unicodedata.category(c)[0] == "L"


def go_isnumber(c):
    return unicodedata.category(c)[0] == "N"


def go_trim_space(s):
    i, j = 0, len(s)
    while i < j and go_isspace(s[i]):
        i += 1
    while j > i and go_isspace(s[j - 1]):
        j -= 1
    return s[i:j]


_SURROGATES = re.compile("[\ud800-\udfff]")


def _go_replace(err):
    # Go's encoding/json writes every byte of invalid UTF-8 as U+FFFD.
    return "\ufffd", err.start + 1


codecs.register_error("rise-go", _go_replace)


def go_text(b):
    """bytes as Go's JSON encoder writes them: each invalid byte becomes U+FFFD."""
    return b.decode("utf-8", "rise-go")


def clean_str(s):
    """Lone surrogates (JSON \\ud800 escapes) become U+FFFD, as Go decodes them."""
    return _SURROGATES.sub("\ufffd", s)


# ---------------------------------------------------------------------------
# Steps and labels (activations/label: Split, DefaultRules, Matcher)
# ---------------------------------------------------------------------------

class Segment:
    __slots__ = ("text", "start", "end", "cstart", "cend")

    def __init__(self, text, start, end, cstart, cend):
        self.text, self.start, self.end, self.cstart, self.cend = text, start, end, cstart, cend


def byte_offsets(text):
    """offs[i] is the UTF-8 byte offset of code point i (offs[len] = byte length)."""
    offs = [0] * (len(text) + 1)
    n = 0
    for i, c in enumerate(text):
        offs[i] = n
        o = ord(c)
        n += 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4
    offs[len(text)] = n
    return offs


def split_steps(text, delim=DEFAULT_DELIMITER):
    """label.Split without sentences: cut at delim, trim whitespace (unicode.IsSpace)
    around each piece, drop empty pieces. Start/End are BYTE offsets of the UTF-8 text,
    as in Go; cstart/cend are the code-point offsets."""
    if delim == "":
        delim = DEFAULT_DELIMITER
    offs = byte_offsets(text)
    segs = []
    start = 0
    while start <= len(text):
        j = text.find(delim, start)
        if j >= 0:
            end, nxt = j, j + len(delim)
        else:
            end, nxt = len(text), len(text) + 1
        s, e = start, end
        while s < e and go_isspace(text[s]):
            s += 1
        while e > s and go_isspace(text[e - 1]):
            e -= 1
        if s < e:
            segs.append(Segment(text[s:e], offs[s], offs[e], s, e))
        start = nxt
    return segs


REFLECTION = ["wait", "verify", "make sure", "hold on", "think again",
              "'s correct", "'s incorrect", "let me check", "seems right"]
BACKTRACKING = ["alternatively", "think differently", "another way", "another approach",
                "another method", "another solution", "another strategy", "another technique"]
DEFAULT_RULES = [("reflection", REFLECTION), ("backtracking", BACKTRACKING)]


@lru_cache(maxsize=65536)
def fold(c):
    """A representative of c's simple case-folding class (label.fold: the smallest
    code point of the orbit), with the apostrophes \u2019 and \u02bc mapped to '.
    The orbit is approximated by closing over str.lower/str.upper (single characters
    only); dotless i keeps its own class, as in Unicode simple folding."""
    if c in "\u2019\u02bc":
        return "'"
    if c < "\x80":
        return c.upper()
    if c == "\u0131":
        return c
    seen = {c}
    todo = [c]
    while todo:
        x = todo.pop()
        for y in (x.lower(), x.upper()):
            if len(y) == 1 and y not in seen and y != "\u0131" and y != "\u0130":
                seen.add(y)
                todo.append(y)
    return min(seen)


def is_word(c):
    """label.isWord: a letter, digit, combining mark or underscore."""
    if c < "\x80":
        return c == "_" or c.isascii() and c.isalnum()
    cat = unicodedata.category(c)
    return cat[0] in ("L", "M") or cat == "Nd"


class Matcher:
    """label.Matcher of keyword rules: case-insensitive phrases, a word boundary
    where a phrase begins or ends with a word character, a run of whitespace in a
    phrase matching any run of whitespace."""

    def __init__(self, rules=DEFAULT_RULES):
        self.behaviours = [b for b, _ in rules]
        self.phrases = []  # (runes, behaviour index, word_start, word_end)
        for b, (_, phrases) in enumerate(rules):
            for text in phrases:
                runes = []
                for c in go_trim_space(text):
                    if go_isspace(c):
                        if runes[-1] != " ":
                            runes.append(" ")
                        continue
                    runes.append(fold(c))
                self.phrases.append((runes, b, is_word(runes[0]), is_word(runes[-1])))

    def _match_at(self, text, i, runes):
        for want in runes:
            if i >= len(text):
                return -1
            if want == " ":
                k = i
                while k < len(text) and go_isspace(text[k]):
                    k += 1
                if k == i:
                    return -1
                i = k
                continue
            if fold(text[i]) != want:
                return -1
            i += 1
        return i

    def labels(self, text):
        found = [False] * len(self.behaviours)
        for i in range(len(text)):
            prev_word = i > 0 and is_word(text[i - 1])
            f = None
            for runes, b, ws, we in self.phrases:
                if found[b] or ws and prev_word:
                    continue
                if f is None:
                    f = fold(text[i])
                if f != runes[0]:
                    continue
                end = self._match_at(text, i + 1, runes[1:])
                if end >= 0 and not (we and end < len(text) and is_word(text[end])):
                    found[b] = True
            if all(found):
                break
        out = [self.behaviours[b] for b, ok in enumerate(found) if ok]
        return out or ["other"]


def length_class(tokens):
    if tokens < SHORT_TOKENS:
        return "short"
    if tokens > LONG_TOKENS:
        return "long"
    return ""


# ---------------------------------------------------------------------------
# Byte-level BPE tokenizer for tokenizer.json (reference mode)
# ---------------------------------------------------------------------------

def _bytes_to_unicode():
    b2u = {}
    n = 0
    for b in range(256):
        if ord("!") <= b <= ord("~") or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF:
            b2u[b] = chr(b)
        else:
            b2u[b] = chr(256 + n)
            n += 1
    return b2u


B2U = _bytes_to_unicode()
U2B = {u: b for b, u in B2U.items()}

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def _pre_p(c):
    return not go_isspace(c) and not go_isletter(c) and not go_isnumber(c)


def _run(s, i, f):
    while i < len(s) and f(s[i]):
        i += 1
    return i


def _contraction(s, i, ci):
    if i >= len(s) or s[i] != "'":
        return 0
    for suf in ("s", "t", "re", "ve", "m", "ll", "d"):
        j = i + 1
        ok = True
        for c in suf:
            if j >= len(s) or not (s[j] == c or ci and fold(s[j]) == fold(c)):
                ok = False
                break
            j += 1
        if ok:
            return j - i
    return 0


def _whitespace(s, i):
    j = _run(s, i, go_isspace)
    if j < len(s) and j - i > 1:
        return j - 1
    return j


def _gpt2_match(s, i):
    n = _contraction(s, i, False)
    if n:
        return i + n
    k = i
    if s[k] == " " and k + 1 < len(s):
        k += 1
    for cls in (go_isletter, go_isnumber, _pre_p):
        if cls(s[k]):
            return _run(s, k, cls)
    if go_isspace(s[i]):
        return _whitespace(s, i)
    return i + 1


def _modern_match(s, i, max_digits):
    r = s[i]
    n = _contraction(s, i, True)
    if n:
        return i + n
    if go_isletter(r):
        return _run(s, i, go_isletter)
    if r not in "\r\n" and not go_isnumber(r) and i + 1 < len(s) and go_isletter(s[i + 1]):
        return _run(s, i + 1, go_isletter)
    if go_isnumber(r):
        j = i + 1
        while j < len(s) and j - i < max_digits and go_isnumber(s[j]):
            j += 1
        return j
    k = i
    if r == " " and k + 1 < len(s) and _pre_p(s[k + 1]):
        k += 1
    if _pre_p(s[k]):
        return _run(s, _run(s, k, _pre_p), lambda c: c in "\r\n")
    j = _run(s, i, go_isspace)
    for k in range(j - 1, i - 1, -1):
        if s[k] in "\r\n":
            return k + 1
    return _whitespace(s, i)


def _splitter(match):
    def split(s):
        out, i = [], 0
        while i < len(s):
            j = match(s, i)
            out.append(s[i:j])
            i = j
        return out
    return split


SPLITTERS = {
    GPT2_PATTERN: _splitter(_gpt2_match),
    LLAMA3_PATTERN: _splitter(lambda s, i: _modern_match(s, i, 3)),
    QWEN2_PATTERN: _splitter(lambda s, i: _modern_match(s, i, 1)),
}


def trim_incomplete_utf8(b):
    """Keep back a trailing incomplete UTF-8 sequence (as rise's decoders do)."""
    for i in range(len(b) - 1, max(len(b) - 4, 0) - 1, -1):
        c = b[i]
        if c & 0xC0 != 0x80:  # a rune start (or an ASCII byte)
            need = 1 if c < 0x80 else 2 if c >> 5 == 6 else 3 if c >> 4 == 14 else 4 if c >> 3 == 30 else 1
            if len(b) - i < need:
                return b[:i]
            return b
    return b


class BPETokenizer:
    """Byte-level BPE of a Hugging Face tokenizer.json, as rise's BPETokenizer:
    added tokens matched in the raw text (special ones only when asked), optional
    NFC/NFD/NFKC/NFKD normalizer, the GPT-2, Llama 3 or Qwen2 pre-tokenizer (by
    hand: Python's re has no \\p{L}), ByteLevel, merges by rank (leftmost on ties).
    BOS from a TemplateProcessing post_processor or tokenizer_config.json
    (bos_token with add_bos_token); EOS from eos_token plus end-of-turn tokens."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        model = tj.get("model") or {}
        if model.get("type", "BPE") != "BPE":
            raise ValueError("%s: model.type is %r, expected \"BPE\"" % (path, model.get("type")))
        if model.get("byte_fallback"):
            raise ValueError("%s: model.byte_fallback is true, only byte-level BPE is supported" % path)
        self.bpe_vocab = dict(model["vocab"])
        self.vocab = dict(self.bpe_vocab)
        self.ignore_merges = bool(model.get("ignore_merges"))
        self.added = []  # (content, id, special), longest first when matching
        max_id = max(self.bpe_vocab.values()) if self.bpe_vocab else -1
        for a in tj.get("added_tokens") or []:
            self.added.append((a["content"], int(a["id"]), bool(a.get("special"))))
            max_id = max(max_id, int(a["id"]))
            self.vocab.setdefault(a["content"], int(a["id"]))
        self.tokens = [""] * (max_id + 1)
        for t, i in self.bpe_vocab.items():
            self.tokens[i] = t
        self.added_by_id = {}
        for content, i, special in self.added:
            self.tokens[i] = content
            self.added_by_id[i] = (content, special)
        self.added_sorted = sorted(self.added, key=lambda a: -len(a[0]))
        self.ranks = {}
        for r, m in enumerate(model.get("merges") or []):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            key = (self.bpe_vocab[a], self.bpe_vocab[b])
            if key not in self.ranks:
                self.ranks[key] = (r, self.bpe_vocab[a + b])
        self.byte_symbol = [self.bpe_vocab.get(B2U[b], -1) for b in range(256)]
        self.normalize = self._normalizer(tj.get("normalizer"))
        self.add_prefix = False
        self.splitters = []
        self._pre(tj.get("pre_tokenizer"))
        self.bos = -1
        self.eos = []
        self._post(tj.get("post_processor"))
        cfg = os.path.join(os.path.dirname(path), "tokenizer_config.json")
        if os.path.exists(cfg):
            with open(cfg, encoding="utf-8") as f:
                c = json.load(f)

            def tid(v):
                if isinstance(v, dict):
                    v = v.get("content")
                if v is None:
                    return -1
                if v not in self.vocab:
                    raise ValueError("%s: %r is not in the vocabulary" % (cfg, v))
                return self.vocab[v]
            bos, eos = tid(c.get("bos_token")), tid(c.get("eos_token"))
            if c.get("add_bos_token") is not None:
                if c["add_bos_token"]:
                    if bos < 0:
                        raise ValueError("%s: add_bos_token is true but bos_token is missing" % cfg)
                    self.bos = bos
                else:
                    self.bos = -1
            if eos >= 0:
                self.eos.append(eos)
        for s in END_OF_TURN:
            if s in self.vocab and self.vocab[s] not in self.eos:
                self.eos.append(self.vocab[s])
        self.cache = {}

    def _normalizer(self, n):
        if n is None:
            return lambda s: s
        t = n.get("type")
        if t in ("NFC", "NFD", "NFKC", "NFKD"):
            return lambda s: unicodedata.normalize(t, s)
        if t == "Sequence":
            fns = [self._normalizer(x) for x in n.get("normalizers") or []]

            def seq(s):
                for fn in fns:
                    s = fn(s)
                return s
            return seq
        raise ValueError("normalizer.type: is %r, expected null, NFC, NFD, NFKC, NFKD or Sequence" % t)

    def _pre(self, p):
        if p is None:
            return
        t = p.get("type")
        if t == "Sequence":
            for x in p.get("pretokenizers") or []:
                self._pre(x)
        elif t == "ByteLevel":
            if p.get("add_prefix_space", True):
                self.add_prefix = True
            if p.get("use_regex", True):
                self.splitters.append(SPLITTERS[GPT2_PATTERN])
        elif t == "Split":
            pat = (p.get("pattern") or {}).get("Regex")
            if pat not in SPLITTERS:
                raise ValueError("pre_tokenizer Split pattern %r: expected the GPT-2, Llama 3 or Qwen2 regex" % pat)
            if p.get("behavior") != "Isolated" or p.get("invert"):
                raise ValueError("pre_tokenizer Split: expected behavior Isolated, invert false")
            self.splitters.append(SPLITTERS[pat])
        else:
            raise ValueError("pre_tokenizer.type: is %r, expected ByteLevel, Split or Sequence" % t)

    def _post(self, p):
        if p is None:
            return
        if p.get("type") == "Sequence":
            for x in p.get("processors") or []:
                self._post(x)
        elif p.get("type") == "TemplateProcessing":
            single = p.get("single") or []
            if single and "SpecialToken" in single[0]:
                name = single[0]["SpecialToken"]["id"]
                st = (p.get("special_tokens") or {}).get(name)
                if st and st.get("ids"):
                    self.bos = st["ids"][0]
                elif name in self.vocab:
                    self.bos = self.vocab[name]
                else:
                    raise ValueError("post_processor: special token %r has no id" % name)

    def vocab_size(self):
        return len(self.tokens)

    def encode(self, text, special):
        ids = []
        start = i = 0
        while i < len(text):
            hit = None
            for content, tid, sp in self.added_sorted:
                if (special or not sp) and text.startswith(content, i):
                    hit = (content, tid)
                    break
            if hit:
                self._segment(ids, text[start:i])
                ids.append(hit[1])
                i += len(hit[0])
                start = i
                continue
            i += 1
        self._segment(ids, text[start:])
        return ids

    def _segment(self, ids, text):
        if not text:
            return
        text = self.normalize(text)
        if self.add_prefix and not text.startswith(" "):
            text = " " + text
        pieces = [text]
        for split in self.splitters:
            pieces = [q for p in pieces for q in split(p)]
        for p in pieces:
            got = self.cache.get(p)
            if got is None:
                got = self._bpe(p.encode("utf-8"))
                if len(self.cache) > 100000:
                    self.cache.clear()
                self.cache[p] = got
            ids.extend(got)

    def _bpe(self, raw):
        if self.ignore_merges:
            whole = "".join(B2U[b] for b in raw)
            if whole in self.bpe_vocab:
                return [self.bpe_vocab[whole]]
        sym = [self.byte_symbol[b] for b in raw if self.byte_symbol[b] >= 0]
        while len(sym) > 1:
            best, at = None, -1
            for k in range(len(sym) - 1):
                m = self.ranks.get((sym[k], sym[k + 1]))
                if m is not None and (best is None or m[0] < best[0]):
                    best, at = m, k
            if best is None:
                break
            sym[at:at + 2] = [best[1]]
        return sym

    def decode_bytes(self, ids, special):
        out = bytearray()
        for i in ids:
            if i < 0 or i >= len(self.tokens):
                continue
            a = self.added_by_id.get(i)
            if a is not None:
                if special or not a[1]:
                    out += a[0].encode("utf-8")
                continue
            for ch in self.tokens[i]:
                b = U2B.get(ch)
                if b is not None:
                    out.append(b)
                else:
                    out += ch.encode("utf-8")
        return trim_incomplete_utf8(bytes(out))


# ---------------------------------------------------------------------------
# safetensors and a small Llama/Qwen2 forward (reference mode)
# ---------------------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        b, e = h["data_offsets"]
        raw = data[base + b:base + e]
        dt = h["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError("%s: tensor %s has dtype %s, expected F32, F16 or BF16" % (path, name, dt))
        out[name] = torch.from_numpy(arr.reshape(h["shape"]).copy())
    return out


ROPE_KEYS = {  # the parameters read for each rope_type, as steer/model/hfconfig.go
    "default": (),
    "linear": ("factor",),
    "llama3": ("factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"),
    "yarn": ("factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow",
             "mscale", "mscale_all_dim", "truncate"),
}


def rope_config(c, where):
    """RoPE of a config.json as transformers 5 standardises it and steer/model/hfconfig.go reads
    it: rope_parameters or (older configs) rope_scaling, rope_type or type, rope_theta inside or
    at the top level (default 10000). Returns (theta, params); refuses what is not implemented."""
    def present(d):
        return isinstance(d, dict) and len(d) > 0
    field, p = "rope_parameters", c.get("rope_parameters")
    if present(c.get("rope_scaling")):
        if present(p):
            for k, v in c["rope_scaling"].items():
                if k in p and p[k] != v:
                    raise ValueError("%s: rope_scaling.%s %r and rope_parameters.%s %r disagree" % (where, k, v, k, p[k]))
        else:
            field, p = "rope_scaling", c["rope_scaling"]
    p = {k: v for k, v in (p or {}).items() if v is not None}
    theta = c.get("rope_theta") if c.get("rope_theta") is not None else 10000.0
    if "rope_theta" in p:
        if c.get("rope_theta") is not None and c["rope_theta"] != p["rope_theta"]:
            raise ValueError("%s: %s.rope_theta %r and rope_theta %r disagree" % (where, field, p["rope_theta"], c["rope_theta"]))
        theta = p["rope_theta"]
    if p.get("partial_rotary_factor", 1) != 1:
        raise ValueError("%s: %s.partial_rotary_factor %r: only whole heads are rotated" % (where, field, p["partial_rotary_factor"]))
    t = p.get("rope_type", p.get("type", "default"))
    if t not in ROPE_KEYS:
        raise ValueError("%s: %s.rope_type %r: expected default, linear, llama3 or yarn" % (where, field, t))
    extra = sorted(set(p) - set(ROPE_KEYS[t]) - {"type", "rope_type", "rope_theta", "partial_rotary_factor"})
    if extra:
        raise ValueError("%s: %s.%s: not a parameter of rope_type %r implemented here" % (where, field, extra[0], t))
    if t != "default" and "factor" not in p:
        raise ValueError("%s: %s: rope_type %s needs a factor" % (where, field, t))
    if t in ("llama3", "yarn"):
        p = dict(p)
        if c.get("original_max_position_embeddings") is not None:
            p["original_max_position_embeddings"] = c["original_max_position_embeddings"]
        p.setdefault("original_max_position_embeddings", c.get("max_position_embeddings") or 4096)
    if t == "llama3":
        for k in ("low_freq_factor", "high_freq_factor"):
            if k not in p:
                raise ValueError("%s: %s: rope_type llama3 needs %s" % (where, field, k))
    p["rope_type"] = t
    return float(theta), p


def rope_frequencies(theta, p, head_dim):
    """Inverse frequencies (float32) and the factor on cos and sin, with torch's float32 operations
    in the order of transformers' modeling_rope_utils.py (default, linear, llama3, yarn)."""
    dim = head_dim
    pos_freqs = theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim)
    inv = 1.0 / pos_freqs
    t = p["rope_type"]
    if t == "linear":
        return inv / p["factor"], 1.0
    if t == "llama3":
        f, lo, hi, old = p["factor"], p["low_freq_factor"], p["high_freq_factor"], p["original_max_position_embeddings"]
        wave = 2 * math.pi / inv
        scaled = torch.where(wave > old / lo, inv / f, inv)
        smooth = (old / wave - lo) / (hi - lo)
        mixed = (1 - smooth) * scaled / f + smooth * scaled
        medium = ~(wave < old / hi) * ~(wave > old / lo)
        return torch.where(medium, mixed, scaled), 1.0
    if t == "yarn":
        f, orig = p["factor"], p["original_max_position_embeddings"]

        def mscale(scale, m=1):
            return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0
        att = p.get("attention_factor")
        if att is None:
            ms, ms_all = p.get("mscale"), p.get("mscale_all_dim")
            att = mscale(f, ms) / mscale(f, ms_all) if ms and ms_all else mscale(f)
        fast, slow = p.get("beta_fast") or 32, p.get("beta_slow") or 1

        def corr(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(theta))
        low, high = corr(fast), corr(slow)
        if p.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        keep = 1 - ramp
        return (1.0 / (f * pos_freqs)) * (1 - keep) + (1.0 / pos_freqs) * keep, float(att)
    return inv, 1.0


class RefModel:
    """Llama / Qwen2 / Qwen3 forward in PyTorch, float32 (Hugging Face semantics: RMSNorm,
    rotate_half RoPE with linear/llama3/yarn scaling, GQA, Qwen2 q/k/v biases, Qwen3 per-head
    q/k RMSNorm before RoPE, SwiGLU, tied embeddings)."""

    def __init__(self, d, device):
        where = os.path.join(d, "config.json")
        with open(where) as f:
            c = json.load(f)
        self.arch = c.get("model_type")
        if self.arch not in ("llama", "qwen2", "qwen3"):
            raise ValueError("%s: model_type %r: expected llama, qwen2 or qwen3" % (where, self.arch))
        if c.get("attention_bias") and self.arch != "qwen2":
            raise ValueError("%s: attention_bias is true: %s attention without biases only" % (where, self.arch))
        for key, ok in (("hidden_act", lambda v: v in (None, "silu")), ("use_sliding_window", lambda v: not v),
                        ("mlp_bias", lambda v: not v), ("use_mrope", lambda v: not v),
                        ("partial_rotary_factor", lambda v: v in (None, 1)),
                        ("layer_types", lambda v: all(x == "full_attention" for x in (v or [])))):
            if not ok(c.get(key)):
                raise ValueError("%s: %s %r is not implemented by the reference forward" % (where, key, c.get(key)))
        self.dim = c["hidden_size"]
        self.n_layers = c["num_hidden_layers"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads") or self.heads
        self.head_dim = c.get("head_dim") or self.dim // self.heads
        self.vocab = c["vocab_size"]
        self.max_seq = c.get("max_position_embeddings") or 4096
        self.eps = c.get("rms_norm_eps") or 1e-6
        self.theta, self.rope = rope_config(c, where)
        self.device = device
        w = {}
        files = sorted(glob.glob(os.path.join(d, "*.safetensors")))
        if not files:
            raise ValueError("%s: no *.safetensors file" % d)
        for p in files:
            w.update(read_safetensors(p))
        self.w = {k: v.to(device=device, dtype=torch.float32) for k, v in w.items()}
        tied = c.get("tie_word_embeddings")
        self.lm_head = self.w.get("lm_head.weight")
        if self.lm_head is None or tied and "lm_head.weight" not in w:
            self.lm_head = self.w["model.embed_tokens.weight"]
        self.qkv_bias = self.arch == "qwen2" or bool(c.get("attention_bias"))
        self.qk_norm = self.arch == "qwen3"
        inv, self.rope_scale = rope_frequencies(self.theta, self.rope, self.head_dim)
        self.inv_freq = inv.to(device)
        self.hook = None  # hook(layer, h [T, D]) -> h or None

    def _norm(self, x, wname):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.w[wname] * (x * torch.rsqrt(var + self.eps))

    def _qk_norm(self, x, p, which):
        # Qwen3: each head of q or k ([heads, T, hd] or [B, heads, hd]) RMS-normalised on its own.
        if not self.qk_norm:
            return x
        return self._norm(x, p + "self_attn.%s_norm.weight" % which)

    def _proj(self, h, p, name):
        """The q, k or v projection of block p (prefix) of the normed rows h."""
        y = h @ self.w[p + "self_attn.%s_proj.weight" % name].t()
        if self.qkv_bias and (p + "self_attn.%s_proj.bias" % name) in self.w:
            y = y + self.w[p + "self_attn.%s_proj.bias" % name]
        return y

    def _mlp(self, x, p):
        """x plus block p's gated MLP of its normed x."""
        h = self._norm(x, p + "post_attention_layernorm.weight")
        g = h @ self.w[p + "mlp.gate_proj.weight"].t()
        u = h @ self.w[p + "mlp.up_proj.weight"].t()
        return x + (torch.nn.functional.silu(g) * u) @ self.w[p + "mlp.down_proj.weight"].t()

    def _rope(self, x, pos):
        # x [H, T, hd]; HF rotate_half with emb = cat(freqs, freqs); angles p·inv_freq in float32
        freqs = torch.outer(pos.to(torch.float32), self.inv_freq)
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos() * self.rope_scale, emb.sin() * self.rope_scale
        h = self.head_dim // 2
        rot = torch.cat([-x[..., h:], x[..., :h]], -1)
        return x * cos + rot * sin

    def new_cache(self):
        return {"k": [None] * self.n_layers, "v": [None] * self.n_layers, "len": 0}

    def forward(self, ids, cache, logits=True, at=None):
        """Runs ids (a list) after the cache's tokens; returns the last row's logits
        (or, with at, the logits of those rows of ids, [len(at), vocab])."""
        with torch.no_grad():
            return self.run(ids, cache, logits, at)

    def run(self, ids, cache, logits=True, at=None):
        """forward without torch.no_grad: differentiable (LearnConfidence's recomputation)."""
        T = len(ids)
        start = cache["len"]
        pos = torch.arange(start, start + T, device=self.device)
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids, device=self.device)]
        H, KV, hd = self.heads, self.kv_heads, self.head_dim
        S = start + T
        mask = torch.arange(S, device=self.device)[None, :] > pos[:, None]
        for l in range(self.n_layers):
            p = "model.layers.%d." % l
            h = self._norm(x, p + "input_layernorm.weight")
            q = self._qk_norm(self._proj(h, p, "q").view(T, H, hd).transpose(0, 1), p, "q")
            k = self._qk_norm(self._proj(h, p, "k").view(T, KV, hd).transpose(0, 1), p, "k")
            v = self._proj(h, p, "v").view(T, KV, hd).transpose(0, 1)
            q, k = self._rope(q, pos), self._rope(k, pos)
            if cache["k"][l] is not None:
                k = torch.cat([cache["k"][l], k], 1)
                v = torch.cat([cache["v"][l], v], 1)
            cache["k"][l], cache["v"][l] = k, v
            rep = H // KV
            kk = k.repeat_interleave(rep, 0)
            vv = v.repeat_interleave(rep, 0)
            sc = (q @ kk.transpose(1, 2)) / math.sqrt(hd)
            sc = sc.masked_fill(mask[None], float("-inf"))
            att = torch.softmax(sc, -1) @ vv  # [H, T, hd]
            att = att.transpose(0, 1).reshape(T, H * hd)
            x = self._mlp(x + att @ self.w[p + "self_attn.o_proj.weight"].t(), p)
            if self.hook is not None:
                y = self.hook(l, x)
                if y is not None:
                    x = y
        cache["len"] = S
        if not logits:
            return None
        if at is not None:
            rows = self._norm(x[torch.tensor(at, dtype=torch.long, device=self.device)], "model.norm.weight")
            return rows @ self.lm_head.t()
        last = self._norm(x[-1:], "model.norm.weight")
        return (last @ self.lm_head.t())[0]

    def upper_entropy(self, layer, h, pos, kpre, vpre, valid):
        """Mean next-token entropy of the blocks above layer run on a batch of
        boundary rows h [B, D] at positions pos [B], each attending to its own
        earlier tokens' keys and values kpre/vpre (per upper block, [B, KV, P, hd],
        zero-padded, valid [B, P] telling the real ones) and to itself: the
        objective of steer/confidence.go's graph. Differentiable in h."""
        B = h.shape[0]
        H, KV, hd = self.heads, self.kv_heads, self.head_dim
        rep = H // KV
        x = h
        self_ok = torch.ones(B, 1, dtype=torch.bool, device=self.device)
        ok = torch.cat([valid, self_ok], 1)  # [B, P+1]
        for u, l in enumerate(range(layer + 1, self.n_layers)):
            p = "model.layers.%d." % l
            xn = self._norm(x, p + "input_layernorm.weight")
            q = self._rope(self._qk_norm(self._proj(xn, p, "q").view(B, H, hd), p, "q").transpose(0, 1), pos).transpose(0, 1)  # [B, H, hd]
            k = self._rope(self._qk_norm(self._proj(xn, p, "k").view(B, KV, hd), p, "k").transpose(0, 1), pos).transpose(0, 1)
            v = self._proj(xn, p, "v").view(B, KV, hd)
            K = torch.cat([kpre[u], k[:, :, None, :]], 2).repeat_interleave(rep, 1)  # [B, H, P+1, hd]
            V = torch.cat([vpre[u], v[:, :, None, :]], 2).repeat_interleave(rep, 1)
            sc = (q[:, :, None, :] @ K.transpose(-1, -2))[:, :, 0, :] / math.sqrt(hd)  # [B, H, P+1]
            sc = sc.masked_fill(~ok[:, None, :], float("-inf"))
            att = (torch.softmax(sc, -1)[:, :, None, :] @ V)[:, :, 0, :].reshape(B, H * hd)
            x = self._mlp(x + att @ self.w[p + "self_attn.o_proj.weight"].t(), p)
        logits = self._norm(x, "model.norm.weight") @ self.lm_head.t()
        return mean_entropy(logits)


# ---------------------------------------------------------------------------
# Engines: the model and tokenizer behind the protocol
# ---------------------------------------------------------------------------

class Engine:
    """What the protocol needs of a model: info, encode/decode, BOS/EOS, and a
    forward over new tokens with a KV cache and a hook on every block output."""

    name = arch = ""
    layers = d_model = vocab = max_seq = 0
    bos = -1
    eos = ()

    def info(self):
        return {"protocol": PROTOCOL, "name": self.name, "arch": self.arch, "layers": self.layers,
                "d_model": self.d_model, "vocab": self.vocab, "max_seq": self.max_seq}

    def with_bos(self, ids):
        if self.bos < 0 or ids and ids[0] == self.bos:
            return ids
        return [self.bos] + ids

    def token_texts(self):
        """Decoded text of every id (special tokens included), for step boundaries."""
        if getattr(self, "_token_texts", None) is None:
            self._token_texts = self._all_token_texts()
        return self._token_texts


class RefEngine(Engine):
    def __init__(self, d, device):
        self.m = RefModel(d, device)
        self.tok = BPETokenizer(os.path.join(d, "tokenizer.json"))
        self.name, self.arch = d, self.m.arch
        self.layers, self.d_model, self.vocab, self.max_seq = self.m.n_layers, self.m.dim, self.m.vocab, self.m.max_seq
        self.bos, self.eos = self.tok.bos, list(self.tok.eos)
        self.device = device
        self.tok_vocab = self.tok.vocab_size()
        self.hook = None

    def encode(self, text, special):
        return self.tok.encode(text, special)

    def decode_bytes(self, ids, special=False):
        return self.tok.decode_bytes(ids, special)

    def _all_token_texts(self):
        return [self.tok.decode_bytes([i], True).decode("utf-8", "replace") for i in range(self.tok_vocab)]

    def new_cache(self):
        return self.m.new_cache()

    def forward(self, ids, cache, logits=True, at=None):
        self.m.hook = self.hook
        try:
            return self.m.forward(ids, cache, logits, at)
        finally:
            self.m.hook = None

    def forward_grad(self, ids):
        """The last row's logits of ids run from scratch, with autograd (and the hook)."""
        self.m.hook = self.hook
        try:
            with torch.enable_grad():
                return self.m.run(ids, self.m.new_cache(), True)
        finally:
            self.m.hook = None


class HFEngine(Engine):
    """A transformers model (AutoModelForCausalLM) with forward hooks on
    model.model.layers[L]."""

    def __init__(self, path, dtype, device):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        dt = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        self.tok = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=dt).to(device).eval()
        # Nothing here trains the weights; LearnConfidence differentiates only
        # in the residual stream.
        self.model.requires_grad_(False)
        cfg = self.model.config
        self.name, self.arch = path, getattr(cfg, "model_type", "")
        self.layers, self.d_model = cfg.num_hidden_layers, cfg.hidden_size
        self.vocab = cfg.vocab_size
        self.max_seq = getattr(cfg, "max_position_embeddings", None) or 4096
        self.device = device
        self.bos = self.tok.bos_token_id if self.tok.bos_token_id is not None else -1
        if getattr(self.tok, "add_bos_token", None) is False:
            # as rise: a tokenizer_config.json with add_bos_token false adds none (Qwen2)
            self.bos = -1
        eos = []
        if self.tok.eos_token_id is not None:
            eos.append(self.tok.eos_token_id)
        for e in (cfg.eos_token_id if isinstance(cfg.eos_token_id, list) else [cfg.eos_token_id]):
            if e is not None and e not in eos:
                eos.append(e)
        vocab = self.tok.get_vocab()
        for s in END_OF_TURN:
            if s in vocab and vocab[s] not in eos:
                eos.append(vocab[s])
        self.eos = eos
        self.tok_vocab = len(self.tok)
        self.hook = None
        self.split_specials = None
        blocks = self.model.model.layers
        for l, blk in enumerate(blocks):
            blk.register_forward_hook(self._make_hook(l))

    def _make_hook(self, l):
        def fn(module, inp, out):
            if self.hook is None:
                return None
            h = out[0] if isinstance(out, tuple) else out
            y = self.hook(l, h[0])
            if y is None:
                return None
            y = y.to(h.dtype).unsqueeze(0)
            return (y,) + tuple(out[1:]) if isinstance(out, tuple) else y
        return fn

    def encode(self, text, special):
        if special:
            return list(self.tok.encode(text, add_special_tokens=False))
        try:
            return list(self.tok.encode(text, add_special_tokens=False, split_special_tokens=True))
        except TypeError:
            # Older transformers without split_special_tokens: special tokens
            # written in the text are recognised as such even so.
            return list(self.tok.encode(text, add_special_tokens=False))

    def decode_bytes(self, ids, special=False):
        s = self.tok.decode(ids, skip_special_tokens=not special, clean_up_tokenization_spaces=False)
        # transformers writes an incomplete trailing UTF-8 sequence as U+FFFD;
        # rise keeps it back.
        return s.rstrip("\ufffd").encode("utf-8")

    def _all_token_texts(self):
        return self.tok.batch_decode([[i] for i in range(self.tok_vocab)], skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)

    def new_cache(self):
        return {"past": None, "len": 0}

    @torch.no_grad()
    def forward(self, ids, cache, logits=True, at=None):
        x = torch.tensor([ids], device=self.device)
        if logits:
            out = self.model(input_ids=x, past_key_values=cache["past"], use_cache=True)
            if at is not None:
                res = out.logits[0, torch.tensor(at, dtype=torch.long, device=self.device)].float()
            else:
                res = out.logits[0, -1].float()
        else:
            out = self.model.model(input_ids=x, past_key_values=cache["past"], use_cache=True)
            res = None
        cache["past"] = out.past_key_values
        cache["len"] += len(ids)
        return res

    def forward_grad(self, ids):
        """The last row's logits of ids run from scratch, with autograd (and the hooks)."""
        with torch.enable_grad():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=False)
            return out.logits[0, -1].float()


# ---------------------------------------------------------------------------
# Steering
# ---------------------------------------------------------------------------

class Boundaries:
    """Which tokens complete the step delimiter "\\n\\n": a token holding it, or a
    token starting with "\\n" after one ending with "\\n" (judged from each token's
    decoded text, special tokens included)."""

    def __init__(self, texts):
        self.double = [("\n\n" in s) for s in texts]
        self.starts = [s.startswith("\n") for s in texts]
        self.ends = [s.endswith("\n") for s in texts]

    def at(self, tok, prev):
        if tok < 0 or tok >= len(self.double):
            return False
        if self.double[tok]:
            return True
        return self.starts[tok] and 0 <= prev < len(self.ends) and self.ends[prev]


def steer_hook(vectors, rows, prompt_len, bd, device):
    """The hook that applies the vectors to the rows their positions select.
    rows: (pos, token, prev) of each row of this forward."""
    if not vectors:
        return None
    plan = {}
    for v in vectors:
        sel = []
        for r, (pos, tok, prev) in enumerate(rows):
            p = v["positions"]
            if p == "all" or p == "prompt" and pos < prompt_len or p == "generated" and pos >= prompt_len \
                    or p == "step_boundary" and bd is not None and bd.at(tok, prev) \
                    or p == "window" and v["window"]["from"] <= pos - prompt_len \
                    and (v["window"]["to"] == 0 or pos - prompt_len < v["window"]["to"]) \
                    or p == "trigger" and prev in v["triggers"]:
                sel.append(r)
        if sel:
            plan.setdefault(v["layer"], []).append((v, torch.tensor(sel, device=device)))

    def hook(layer, h):
        todo = plan.get(layer)
        if not todo:
            return None
        h = h.clone()
        for v, sel in todo:
            d = v["dir_t"].to(h.device)
            x = h[sel].float()
            dot = x @ d
            a = float(v["strength"])
            op = v["op"]
            if op == "add":
                k = torch.full_like(dot, a)
            elif op == "scale":
                k = a * dot
            elif op == "clamp":
                k = a - dot
            else:
                k = -dot
            h[sel] = (x + k[:, None] * d[None, :]).to(h.dtype)
        return h
    return hook


# ---------------------------------------------------------------------------
# Wire decoding with Go's encoding/json rules (DisallowUnknownFields)
# ---------------------------------------------------------------------------

def _jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _lookup(obj, fields, struct):
    """Go matches keys exactly, else case-insensitively; unknown ones are refused."""
    out = {}
    for k, v in obj.items():
        name = k if k in fields else next((f for f in fields if f.lower() == k.lower()), None)
        if name is None:
            raise WireError("json: unknown field %s" % json.dumps(k))
        out[name] = v
    return out


def _convert(v, kind, where):
    def bad(gotype):
        raise WireError("json: cannot unmarshal %s into Go struct field %s of type %s" % (_jtype(v), where, gotype))
    if kind in ("int", "uint64"):
        if v is None:
            return 0
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float):
                raise WireError("json: cannot unmarshal number %s into Go struct field %s of type %s" % (json.dumps(v), where, kind))
            bad(kind)
        if kind == "uint64" and not 0 <= v < 1 << 64 or kind == "int" and not -(1 << 63) <= v < 1 << 63:
            raise WireError("json: cannot unmarshal number %d into Go struct field %s of type %s" % (v, where, kind))
        return v
    if kind == "float64":
        if v is None:
            return 0.0
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            bad("float64")
        return float(v)
    if kind == "bool":
        if v is None:
            return False
        if not isinstance(v, bool):
            bad("bool")
        return v
    if kind == "string":
        if v is None:
            return ""
        if not isinstance(v, str):
            bad("string")
        return clean_str(v)
    raise AssertionError(kind)


def _list(v, where, gotype):
    if v is None:
        return []
    if not isinstance(v, list):
        raise WireError("json: cannot unmarshal %s into Go struct field %s of type %s" % (_jtype(v), where, gotype))
    return v


GEN_FIELDS = {"prompts": "[]string", "max_tokens": "int", "temperature": "float64", "top_p": "float64",
              "seed": "uint64", "special": "bool", "no_stop": "bool", "vectors": "[]steer.WireVector",
              "default": "bool"}
VEC_FIELDS = {"direction": "[]float32", "layer": "int", "op": "string", "strength": "float64", "positions": "string",
              "window": "*steer.TokenWindow", "triggers": "[]int"}
WINDOW_FIELDS = {"from": "int", "to": "int"}
CAP_FIELDS = {"traces": "[]activations.Trace", "layers": "[]int", "delimiter": "string", "special": "bool"}


def _body_object(body, gotype):
    try:
        text = body.decode("utf-8", "replace")
        if not text.strip():
            raise ValueError("EOF")
        obj, end = json.JSONDecoder().raw_decode(text.lstrip())
    except ValueError as e:
        raise WireError(str(e))
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise WireError("json: cannot unmarshal %s into Go value of type %s" % (_jtype(obj), gotype))
    return obj


CONF_FIELDS = {"w_dec": "[]float32", "d_sae": "int", "layer": "int", "traces": "[]activations.Trace", "iters": "int",
               "batch": "int", "lr": "float64", "states": "int", "seed": "uint64"}
ENT_FIELDS = {"traces": "[]activations.Trace", "vectors": "[]steer.WireVector"}

# The Go structs of the wire, by type name: each field's Go type.
STRUCTS = {"steer.GenerateRequest": GEN_FIELDS, "steer.CaptureRequest": CAP_FIELDS,
           "steer.ConfidenceRequest": CONF_FIELDS, "steer.EntropyRequest": ENT_FIELDS,
           "steer.WireVector": VEC_FIELDS, "steer.TokenWindow": WINDOW_FIELDS}


def _zero(gotype):
    if gotype.startswith("[]"):
        return []
    if gotype.startswith("*"):
        return None
    return {"int": 0, "uint64": 0, "float64": 0.0, "bool": False, "string": ""}[gotype]


def _decode_value(v, gotype, where):
    """A JSON value as encoding/json would decode it into a field of gotype."""
    if gotype.startswith("[]"):
        return [_decode_value(x, gotype[2:], where) for x in _list(v, where, gotype)]
    if gotype.startswith("*"):
        return None if v is None else _decode_value(v, gotype[1:], where)
    if gotype == "activations.Trace":
        return decode_trace(v, where)
    if gotype in STRUCTS:
        return _decode_struct(v, gotype, where)
    return _convert(v, "float64" if gotype == "float32" else gotype, where)


def _decode_struct(v, gotype, where):
    """A JSON object into the struct gotype: every field at its zero value
    unless given; unknown fields and wrong types refused as Go refuses them."""
    if v is None:
        v = {}
    if not isinstance(v, dict):
        raise WireError("json: cannot unmarshal %s into Go struct field %s of type %s" % (_jtype(v), where, gotype))
    fields = STRUCTS[gotype]
    out = {k: _zero(t) for k, t in fields.items()}
    for k, x in _lookup(v, fields, gotype).items():
        out[k] = _decode_value(x, fields[k], where + "." + k)
    return out


def _decode_request(body, gotype):
    return _decode_struct(_body_object(body, gotype), gotype, gotype.split(".", 1)[1])


def decode_generate(body):
    return _decode_request(body, "steer.GenerateRequest")


def decode_confidence(body):
    return _decode_request(body, "steer.ConfidenceRequest")


def decode_entropy(body):
    return _decode_request(body, "steer.EntropyRequest")


def decode_trace(v, where):
    """activations.Trace: known fields checked, unknown ones kept (its own UnmarshalJSON)."""
    if v is None:
        v = {}
    if not isinstance(v, dict):
        raise WireError("json: cannot unmarshal %s into Go struct field %s of type activations.Trace" % (_jtype(v), where))
    t = {"trace": "", "prompt": "", "response": "", "extra": {}}
    for k, x in v.items():
        if k in ("trace", "prompt", "response"):
            if x is not None and not isinstance(x, str):
                raise WireError("field %q: expected a string, found %s" % (k, _jtype(x)))
            t[k] = clean_str(x or "")
        elif k == "tokens":
            if x is not None and (isinstance(x, bool) or not isinstance(x, int)):
                raise WireError("field \"tokens\": expected an integer, found %s" % json.dumps(x))
            t["tokens"] = x
        elif k == "correct":
            if x is not None and not isinstance(x, bool):
                raise WireError("field \"correct\": expected true or false, found %s" % json.dumps(x))
            t["correct"] = x
        else:
            t["extra"][k] = x
    return t


def trace_json(t, tokens=None):
    """activations.Trace.MarshalJSON: known fields first, then the extras sorted."""
    out = {"trace": t["trace"], "prompt": t["prompt"], "response": t["response"]}
    n = tokens if tokens is not None else t.get("tokens")
    if n is not None:
        out["tokens"] = n
    if t.get("correct") is not None:
        out["correct"] = t["correct"]
    for k in sorted(t["extra"]):
        out[k] = t["extra"][k]
    return out


def decode_capture(body):
    return _decode_request(body, "steer.CaptureRequest")


def wire_vectors(req, eng):
    """GenerateRequest.vectors: defaults, checks (VectorSpec.Check), unit directions."""
    out = []
    for i, wv in enumerate(req["vectors"]):
        op = wv["op"] or "add"
        pos = wv["positions"] or "all"
        try:
            if op not in OPS:
                raise WireError("op: expected add, scale, clamp or ablate, found %s" % json.dumps(op))
            if pos not in POSITIONS:
                raise WireError("positions: expected all, prompt, generated, step_boundary, window or trigger, found %s"
                                % json.dumps(pos))
            w = wv["window"]
            if pos == "window" and (w is None or w["from"] < 0 or w["to"] < 0 or w["to"] != 0 and w["to"] <= w["from"]):
                raise WireError("window: positions \"window\" needs {\"from\": F, \"to\": T} with 0 <= F < T (T 0: no end)")
            if pos == "trigger" and (not wv["triggers"] or min(wv["triggers"]) < 0):
                raise WireError("triggers: positions \"trigger\" needs token ids")
            if w is not None and pos != "window" or wv["triggers"] and pos != "trigger":
                raise WireError("positions: a window goes with positions \"window\" and triggers with \"trigger\", found %s"
                                % json.dumps(pos))
            if not 0 <= wv["layer"] < eng.layers:
                raise WireError("layer: expected a block from 0 to %d, found %d" % (eng.layers - 1, wv["layer"]))
            if math.isnan(wv["strength"]) or math.isinf(wv["strength"]):
                raise WireError("strength: expected a number, found %v" % wv["strength"])
            if len(wv["direction"]) != eng.d_model:
                raise WireError("direction: expected %d values (the model's width), found %d" % (eng.d_model, len(wv["direction"])))
            d = np.asarray(wv["direction"], dtype=np.float32).astype(np.float64)
            sq = float((d * d).sum())
            if sq == 0 or not math.isfinite(sq):
                raise WireError("the vector has no direction (norm %s)" % math.sqrt(sq))
            unit = (d * (1 / math.sqrt(sq))).astype(np.float32)
        except WireError as e:
            raise WireError("vectors[%d]: %s" % (i, e))
        out.append({"layer": wv["layer"], "op": op, "strength": wv["strength"], "positions": pos,
                    "window": wv["window"], "triggers": set(wv["triggers"]),
                    "dir_t": torch.from_numpy(unit).to(eng.device)})
    return out


# ---------------------------------------------------------------------------
# Generate
# ---------------------------------------------------------------------------

def _mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def sample(logits, temperature, top_p, gen):
    """The largest logit (lowest id on ties) at temperature 0, else a draw from
    softmax(logits/T) cut to the smallest set reaching top_p (ties by lower id)."""
    if temperature == 0:
        m = logits.max()
        return int((logits == m).nonzero()[0, 0])
    x = logits.double()
    p = torch.exp((x - x.max()) / temperature)
    idx = torch.arange(len(p), device=p.device)
    if 0 < top_p < 1:
        ps, order = torch.sort(p, descending=True, stable=True)
        c = torch.cumsum(ps / ps.sum(), 0)
        hit = (c >= top_p).nonzero()
        k = int(hit[0, 0]) + 1 if len(hit) else len(p)
        idx, p = order[:k], ps[:k]
    j = torch.multinomial((p / p.sum()).float(), 1, generator=gen)
    return int(idx[j[0]])


def generate(eng, prompts, o, vectors):
    max_tokens = o["max_tokens"] or 256
    if max_tokens < 0:
        raise WireError("generate: max tokens must be positive, found %d" % max_tokens)
    t, tp = o["temperature"], o["top_p"]
    if t < 0 or math.isnan(t) or tp < 0 or tp > 1 or math.isnan(tp):
        raise WireError("generate: expected temperature ≥ 0 and top-p in [0, 1], found %s and %s" % (_g(t), _g(tp)))
    if eng.tok_vocab > eng.vocab:
        raise WireError("generate: the tokenizer has %d tokens but the model %s only %d: they do not belong together"
                        % (eng.tok_vocab, eng.name, eng.vocab))
    firsts = []
    for i, p in enumerate(prompts):
        ids = eng.with_bos(eng.encode(p, o["special"]))
        if not ids:
            raise WireError("generate: prompt %d is empty and the tokenizer has no BOS token to start from" % i)
        if len(ids) >= eng.max_seq:
            raise WireError("generate: prompt %d has %d tokens, the model at most %d" % (i, len(ids), eng.max_seq))
        firsts.append(ids)
    bd = None
    if any(v["positions"] == "step_boundary" for v in vectors):
        bd = Boundaries(eng.token_texts())
    eos = set() if o["no_stop"] else set(eng.eos)
    out = []
    for i, (p, ids) in enumerate(zip(prompts, firsts)):
        gen = None
        if t != 0:
            gen = torch.Generator(device=eng.device)
            gen.manual_seed(_mix64(_mix64(o["seed"]) ^ i))
        cache = eng.new_cache()
        seq = list(ids)
        feed = list(ids)
        toks, stop = [], ""
        while True:
            start = cache["len"]
            rows = [(start + j, seq[start + j], seq[start + j - 1] if start + j > 0 else -1) for j in range(len(feed))]
            eng.hook = steer_hook(vectors, rows, len(ids), bd, eng.device)
            try:
                logits = eng.forward(feed, cache)
            finally:
                eng.hook = None
            tok = sample(logits, t, tp, gen)
            toks.append(tok)
            if tok in eos:
                stop = "eos"
            elif len(toks) >= max_tokens:
                stop = "length"
            elif cache["len"] + 1 >= eng.max_seq:
                stop = "context"
            if stop:
                break
            seq.append(tok)
            feed = [tok]
        text_ids = toks[:-1] if stop == "eos" else toks
        text = go_text(eng.decode_bytes(text_ids, False))
        out.append({"prompt": p, "prompt_tokens": ids, "tokens": toks, "text": text, "stop": stop})
    return out


def _g(x):
    """Go's %g for a float64."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    r = repr(float(x))
    return r[:-2] if r.endswith(".0") else r


# ---------------------------------------------------------------------------
# Capture
# ---------------------------------------------------------------------------

def check_layers(layers, blocks):
    if not layers:
        raise WireError("capture: no layers to record")
    seen = set()
    for l in layers:
        if l < 0 or l >= blocks:
            raise WireError("capture: layer %d: expected a block from 0 to %d" % (l, blocks - 1))
        if l in seen:
            raise WireError("capture: layer %d is given twice" % l)
        seen.add(l)
    return sorted(layers)


def capture_records(eng, traces, layers, delimiter, special, chunk=512):
    """steer.CaptureRecords: yields one record per trace with steps."""
    layers = check_layers(layers, eng.layers)
    delimiter = delimiter or DEFAULT_DELIMITER
    dlen = len(delimiter.encode("utf-8"))
    for tr in traces:
        prompt, resp = tr["prompt"], tr["response"]
        pids = eng.with_bos(eng.encode(prompt, special))
        ids = eng.with_bos(eng.encode(prompt + resp, special))
        if len(ids) < len(pids) or ids[:len(pids)] != pids:
            ids = pids + eng.encode(resp, False)
        rids = ids[len(pids):]
        segs = split_steps(resp, delimiter)
        n = len(rids)
        cache_len = {}

        def blen(k):
            if k not in cache_len:
                cache_len[k] = len(eng.decode_bytes(rids[:k + 1], False))
            return cache_len[k]
        pos = []
        for s in segs:
            target = s.end
            rest = resp[s.cend:]
            j = rest.find(delimiter)
            if j >= 0 and go_trim_space(rest[:j]) == "":
                target = s.end + len(rest[:j].encode("utf-8")) + dlen
            lo, hi = 0, n
            while lo < hi:
                mid = (lo + hi) // 2
                if blen(mid) >= target:
                    hi = mid
                else:
                    lo = mid + 1
            pos.append(len(pids) + min(lo, n - 1))
        keep = len(segs)
        while keep > 0 and pos[keep - 1] >= eng.max_seq:
            keep -= 1
        truncated = len(segs) - keep
        segs, pos = segs[:keep], pos[:keep]
        if not segs:
            yield {"trace": tr, "response_tokens": n, "steps": [], "rows": None, "truncated": truncated}
            continue
        need = {}
        for i, p in enumerate(pos):
            need[p] = i
        rows = {l: np.zeros((len(segs), eng.d_model), dtype=np.float32) for l in layers}
        last = pos[-1]
        at_ref = [0]

        def hook(layer, h):
            if layer not in rows:
                return None
            base = at_ref[0]
            T = h.shape[0]
            hit = [(p - base, st) for p, st in need.items() if base <= p < base + T]
            if hit:
                sel = torch.tensor([r for r, _ in hit], device=h.device)
                vals = h[sel].float().cpu().numpy()
                for (_, st), v in zip(hit, vals):
                    rows[layer][st] = v
            return None
        cache = eng.new_cache()
        at = 0
        try:
            while at <= last:
                end = min(last + 1, at + chunk)
                at_ref[0] = at
                eng.hook = hook
                eng.forward(ids[at:end], cache, logits=False)
                at = end
        except Exception as e:
            raise RuntimeError("capture: trace %s: %s" % (tr["trace"], e))
        finally:
            eng.hook = None
        steps = []
        for i, s in enumerate(segs):
            start = len(pids) if i == 0 else pos[i - 1] + 1
            steps.append({"trace": tr["trace"], "step": i, "text": s.text, "char_start": s.start, "char_end": s.end,
                          "token_start": start, "token_end": pos[i] + 1})
        yield {"trace": tr, "response_tokens": n, "steps": steps, "rows": rows, "truncated": truncated,
               "ids": ids, "cache": cache}


def capture_line(rec):
    """One CaptureLine (omitempty fields left out), or None for a trace without steps."""
    if not rec["steps"]:
        return None
    line = {"trace": trace_json(rec["trace"])}
    if rec["response_tokens"]:
        line["response_tokens"] = rec["response_tokens"]
    line["steps"] = rec["steps"]
    line["rows"] = {str(l): r.reshape(-1).astype(np.float64).tolist() for l, r in rec["rows"].items()}
    if rec["truncated"]:
        line["truncated"] = rec["truncated"]
    for r in rec["rows"].values():
        if not np.isfinite(r).all():
            raise RuntimeError("capture: trace %s: the model's activations are not finite" % rec["trace"]["trace"])
    return line


# ---------------------------------------------------------------------------
# Confidence vectors and boundary entropy (steer/confidence.go)
# ---------------------------------------------------------------------------

def mean_entropy(logits):
    """Mean entropy, in nats, of softmax over the last axis of logits [B, V]."""
    lp = torch.log_softmax(logits, -1)
    return -(lp.exp() * lp).sum(-1).mean()


def boundary_entropy(eng, traces, vectors, chunk=512):
    """steer.BoundaryEntropy: each trace (prompt+response encoded together, cut
    to max_seq) run with the vectors applied by the steering hook; the entropy
    of softmax(logits) at the positions from the prompt's end on whose token
    completes a step delimiter, averaged. Returns (entropy, boundaries)."""
    bd = Boundaries(eng.token_texts())
    total, n = 0.0, 0
    for tr in traces:
        ids = eng.with_bos(eng.encode(tr["prompt"] + tr["response"], False))[:eng.max_seq]
        plen = len(eng.with_bos(eng.encode(tr["prompt"], False)))
        want = [p for p in range(plen, len(ids)) if bd.at(ids[p], ids[p - 1] if p > 0 else -1)]
        if not want:
            continue
        cache = eng.new_cache()
        at = 0
        last = want[-1]
        while at <= last:
            end = min(last + 1, at + chunk)
            rows = [(p, ids[p], ids[p - 1] if p > 0 else -1) for p in range(at, end)]
            sel = [p - at for p in want if at <= p < end]
            eng.hook = steer_hook(vectors, rows, plen, bd, eng.device)
            try:
                logits = eng.forward(ids[at:end], cache, logits=bool(sel), at=sel or None)
            finally:
                eng.hook = None
            if sel:
                lp = torch.log_softmax(logits.double(), -1)
                h = -(lp.exp() * lp).sum(-1)
                total += float(h.sum())
                n += len(sel)
            at = end
    if n == 0:
        raise WireError("entropy: the traces hold no step boundaries")
    return total / n, n


def collect_states(eng, traces, layer, max_states, seed, keep_kv):
    """steer.collectStates: the step-boundary states of the traces (the row after
    block layer at each step's last token, as /v1/capture finds them), shuffled
    with the seed and cut to max_states. keep_kv keeps the earlier tokens' keys
    and values of the blocks above layer (reference mode); else the token ids
    up to the boundary are kept for recomputation."""
    out = []
    for rec in capture_records(eng, traces, [layer], DEFAULT_DELIMITER, False):
        if not rec["steps"]:
            continue
        for i, st in enumerate(rec["steps"]):
            p = st["token_end"] - 1
            s = {"h": torch.from_numpy(rec["rows"][layer][i].copy()).to(eng.device), "pos": p}
            if keep_kv:
                c = rec["cache"]
                s["k"] = [c["k"][l][:, :p] for l in range(layer + 1, eng.layers)]
                s["v"] = [c["v"][l][:, :p] for l in range(layer + 1, eng.layers)]
            else:
                s["ids"] = list(rec["ids"][:p + 1])
            out.append(s)
    if not out:
        raise WireError("confidence: the traces hold no step boundaries")
    order = np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, 0xC0F1]).permutation(len(out))
    return [out[i] for i in order[:max_states]]


def cached_step(eng, batch, layer, delta):
    """The batch's mean entropy and its gradient in delta (the vector added at the
    boundary rows), from the reference forward of the blocks above layer reading
    the cached keys and values of the earlier tokens."""
    m = eng.m
    B = len(batch)
    P = max(1, max(s["pos"] for s in batch))
    KV, hd = m.kv_heads, m.head_dim
    h = torch.stack([s["h"] for s in batch])
    pos = torch.tensor([s["pos"] for s in batch], device=eng.device)
    valid = torch.arange(P, device=eng.device)[None, :] < pos[:, None]
    kpre, vpre = [], []
    for u in range(eng.layers - layer - 1):
        K = torch.zeros(B, KV, P, hd, device=eng.device)
        V = torch.zeros(B, KV, P, hd, device=eng.device)
        for b, s in enumerate(batch):
            K[b, :, :s["pos"]] = s["k"][u]
            V[b, :, :s["pos"]] = s["v"][u]
        kpre.append(K)
        vpre.append(V)
    d = delta.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        e = m.upper_entropy(layer, h + d, pos, kpre, vpre, valid)
        e.backward()
    return float(e), d.grad.detach()


def recompute_step(eng, batch, layer, delta):
    """The batch's mean entropy and its gradient in delta, recomputed: each
    state's tokens up to its boundary run through the whole model from scratch
    with a hook on block layer adding delta at the last (boundary) row, the
    entropy of the last row's next-token distribution differentiated by
    autograd, one state at a time. Exact (the earlier tokens do not see the
    change), but each step costs a forward and a backward pass over every
    state's prefix."""
    B = len(batch)
    grad = torch.zeros_like(delta)
    total = 0.0
    for s in batch:
        d = delta.detach().clone().requires_grad_(True)

        def hook(l, h, d=d):
            if l != layer:
                return None
            return torch.cat([h[:-1], (h[-1:].float() + d).to(h.dtype)], 0)
        eng.hook = hook
        try:
            logits = eng.forward_grad(s["ids"])
            with torch.enable_grad():
                e = mean_entropy(logits.float()[None, :])
                (e / B).backward()
        finally:
            eng.hook = None
        total += float(e)
        grad += d.grad.detach()
    return total / B, grad


def learn_confidence(eng, w_dec, d_sae, traces, layer, iters=0, batch=0, lr=0.0, max_states=0, seed=0, recompute=False):
    """steer.LearnConfidence: scores S over the decoder columns minimising the
    mean next-token entropy of the blocks above layer run on h + S·W_dec at the
    step boundaries, by Adam (β 0.9/0.999, eps 1e-8, lr with cosine decay).
    The shuffles draw from numpy, not rise's PCG: the same method, not the same
    numbers."""
    if not 0 <= layer < eng.layers - 1:
        raise WireError("confidence: layer %d: expected a block from 0 to %d (there must be a block above it)" % (layer, eng.layers - 2))
    iters = iters or 1000
    batch = batch or 32
    lr = lr or 0.01
    max_states = max_states or 512
    if iters < 1 or batch < 1 or not lr > 0 or max_states < 1:
        raise WireError("confidence: expected positive iterations, batch, learning rate and states, found %d, %d, %s, %d"
                        % (iters, batch, _g(lr), max_states))
    keep_kv = isinstance(eng, RefEngine) and not recompute
    states = collect_states(eng, traces, layer, max_states, seed, keep_kv)
    step = cached_step if keep_kv else recompute_step
    D = eng.d_model
    W = torch.from_numpy(np.asarray(w_dec, dtype=np.float32).reshape(d_sae, D)).to(eng.device)
    S = torch.zeros(d_sae, dtype=torch.float32, device=eng.device)
    m1 = torch.zeros(d_sae, dtype=torch.float64, device=eng.device)
    m2 = torch.zeros(d_sae, dtype=torch.float64, device=eng.device)
    B = min(batch, len(states))
    rng = np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, 0xADA])
    order = rng.permutation(len(states))
    at = 0
    curve = []
    every = max(1, iters // 50)
    for it in range(iters):
        b = []
        for _ in range(B):
            if at == len(order):
                rng.shuffle(order)
                at = 0
            b.append(states[order[at]])
            at += 1
        e, gd = step(eng, b, layer, S @ W)
        g = (W @ gd.float()).double()
        a = lr * 0.5 * (1 + math.cos(math.pi * it / iters))
        t = it + 1
        m1 = 0.9 * m1 + 0.1 * g
        m2 = 0.999 * m2 + 0.001 * g * g
        mh, vh = m1 / (1 - 0.9 ** t), m2 / (1 - 0.999 ** t)
        S = S - (a * mh / (vh.sqrt() + 1e-8)).float()
        if it % every == 0 or it == iters - 1:
            curve.append(e)
    scores = S.cpu().numpy().astype(np.float32)
    ids = sorted(range(d_sae), key=lambda j: -scores[j])[:20]
    v = scores.astype(np.float64) @ W.cpu().numpy().astype(np.float64)
    norm = float(np.sqrt((v * v).sum()))
    vec = (v / norm).astype(np.float32) if norm > 0 else np.zeros(D, dtype=np.float32)
    for x in (scores, vec):
        if not np.isfinite(x).all():
            raise RuntimeError("confidence: the scores are not finite")
    return {"layer": layer, "top_columns": [{"id": j, "score": float(scores[j])} for j in ids],
            "vector": [float(x) for x in vec], "norm": norm, "entropy_curve": curve, "states": len(states),
            "scores": [float(x) for x in scores]}


# ---------------------------------------------------------------------------
# rise-activations/1 dump (--capture)
# ---------------------------------------------------------------------------

def _npy_header(rows, cols):
    d = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    total = 128
    while 10 + len(d) + 1 > total:
        total += 64
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", total - 10) + (d + " " * (total - 10 - len(d) - 1) + "\n").encode()


class DumpWriter:
    """Writes a rise-activations/1 dump into a temporary directory beside out,
    renamed into place by close()."""

    def __init__(self, out, model, d_model, layers, delimiter, force=False):
        if os.path.exists(out) and not force:
            raise SystemExit("create dump %s: the destination exists (overwrite it with --force)" % out)
        self.out, self.model, self.d, self.layers, self.delim, self.force = out, model, d_model, layers, delimiter, force
        parent = os.path.dirname(os.path.abspath(out))
        os.makedirs(parent, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(out)) + ".tmp-", dir=parent)
        os.chmod(self.tmp, 0o755)
        self.shard_rows = max(1, (256 << 20) // (d_model * 4))
        self.names = {l: [] for l in layers}
        self.files = {l: None for l in layers}
        self.frows = {l: 0 for l in layers}
        self.steps = open(os.path.join(self.tmp, "steps.jsonl"), "w", encoding="utf-8")
        self.traces = open(os.path.join(self.tmp, "traces.jsonl"), "w", encoding="utf-8")
        self.n_steps = self.n_traces = self.tokens = self.truncated = 0
        self.labels = {}
        self.matcher = Matcher()

    def _finish(self, l):
        f = self.files[l]
        if f is not None:
            f.seek(0)
            f.write(_npy_header(self.frows[l], self.d))
            f.close()
            self.files[l] = None

    def _write_rows(self, l, x):
        for row in x:
            if self.files[l] is None or self.frows[l] == self.shard_rows:
                self._finish(l)
                name = "layer%d-%05d.npy" % (l, len(self.names[l]))
                self.names[l].append(name)
                self.files[l] = open(os.path.join(self.tmp, name), "wb")
                self.files[l].write(_npy_header(0, self.d))
                self.frows[l] = 0
            self.files[l].write(np.ascontiguousarray(row, dtype="<f4").tobytes())
            self.frows[l] += 1

    def add(self, rec):
        self.truncated += rec["truncated"]
        if not rec["steps"]:
            return
        for l in self.layers:
            if not np.isfinite(rec["rows"][l]).all():
                raise RuntimeError("trace %s, layer %d: the activations are not finite" % (rec["trace"]["trace"], l))
            self._write_rows(l, rec["rows"][l])
        length = length_class(rec["response_tokens"])
        for s in rec["steps"]:
            labels = self.matcher.labels(s["text"])
            for lb in labels:
                self.labels[lb] = self.labels.get(lb, 0) + 1
            st = {"trace": s["trace"], "step": s["step"], "text": s["text"], "labels": labels,
                  "token_start": s["token_start"], "token_end": s["token_end"],
                  "char_end": s["char_end"], "char_start": s["char_start"]}
            if length:
                st["length"] = length
            self.steps.write(json.dumps(st, ensure_ascii=False) + "\n")
        self.traces.write(json.dumps(trace_json(rec["trace"], rec["response_tokens"]), ensure_ascii=False) + "\n")
        self.n_traces += 1
        self.n_steps += len(rec["steps"])
        self.tokens += rec["steps"][-1]["token_end"]

    def abort(self):
        for l in self.layers:
            if self.files[l] is not None:
                self.files[l].close()
        self.steps.close()
        self.traces.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def close(self):
        if self.n_steps == 0:
            self.abort()
            raise SystemExit("capture: the traces hold no steps to record")
        for l in self.layers:
            self._finish(l)
        self.steps.close()
        self.traces.close()
        man = {"format": "rise-activations/1", "model": self.model, "d_model": self.d, "position": "step_delimiter",
               "delimiter": self.delim, "layers": {str(l): self.names[l] for l in sorted(self.layers, key=str)},
               "steps": "steps.jsonl", "traces": "traces.jsonl"}
        with open(os.path.join(self.tmp, "manifest.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(man, indent=2, ensure_ascii=False) + "\n")
        old = None
        if os.path.exists(self.out):
            old = self.tmp + ".old"
            os.rename(self.out, old)
        os.rename(self.tmp, self.out)
        if old:
            shutil.rmtree(old, ignore_errors=True)


def run_capture(eng, args):
    traces = []
    with open(args.capture, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                traces.append(decode_trace(json.loads(line), "traces"))
            except (ValueError, WireError) as e:
                raise SystemExit("%s: line %d: %s" % (args.capture, n, e))
    try:
        layers = [int(x) for x in args.layers.split(",") if x.strip()]
    except ValueError:
        raise SystemExit("--layers %r: expected block numbers such as 8,16" % args.layers)
    try:
        layers = check_layers(layers, eng.layers)
    except WireError as e:
        raise SystemExit(str(e))
    delim = args.delimiter or DEFAULT_DELIMITER
    w = DumpWriter(args.out, args.name or eng.name, eng.d_model, layers, delim, args.force)
    try:
        for i, rec in enumerate(capture_records(eng, traces, layers, delim, args.special)):
            w.add(rec)
            if sys.stderr.isatty():
                print("\rcapture: %d/%d traces" % (i + 1, len(traces)), end="", file=sys.stderr)
        w.close()
    except BaseException:
        w.abort()
        raise
    print("capture: %d traces, %d steps, %d tokens, %d steps past the context left out; labels %s -> %s"
          % (w.n_traces, w.n_steps, w.tokens, w.truncated, json.dumps(w.labels, sort_keys=True), args.out))


# ---------------------------------------------------------------------------
# HTTP server
# ---------------------------------------------------------------------------

def make_handler(eng, lock, verbose, recompute=False):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"
        server_version = "rise-backend-py"

        def log_message(self, fmt, *a):
            if verbose:
                sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % a))

        def _send(self, status, obj):
            b = (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

        def _error(self, status, msg):
            self._send(status, {"error": msg})

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_REQUEST:
                n = MAX_REQUEST
            return self.rfile.read(n) if n > 0 else b""

        def _no_endpoint(self):
            self._error(404, "no endpoint %s %s: the %s protocol has GET /v1/info and POST /v1/generate, /v1/capture, "
                        "/v1/confidence and /v1/entropy"
                        % (self.command, self.path.split("?")[0], PROTOCOL))

        def do_GET(self):
            if self.path.split("?")[0] == "/v1/info":
                self._send(200, eng.info())
            else:
                self._no_endpoint()

        def do_HEAD(self):
            self._no_endpoint()

        def do_PUT(self):
            self._no_endpoint()

        def do_DELETE(self):
            self._no_endpoint()

        def do_POST(self):
            path = self.path.split("?")[0]
            if path == "/v1/generate":
                self._generate()
            elif path == "/v1/capture":
                self._capture()
            elif path == "/v1/confidence":
                self._confidence()
            elif path == "/v1/entropy":
                self._entropy()
            else:
                self._no_endpoint()

        def _request(self, decode):
            """The request body decoded by decode, or None after answering 400
            when it is not a JSON object of the protocol."""
            try:
                return decode(self._body())
            except WireError as e:
                self._error(400, "request body: expected a JSON object of the %s protocol: %s" % (PROTOCOL, e))
                return None

        def _steered(self, decode):
            """The request body decoded by decode and its steering vectors, or
            (None, None) after answering 400."""
            req = self._request(decode)
            if req is None:
                return None, None
            try:
                return req, wire_vectors(req, eng)
            except WireError as e:
                self._error(400, str(e))
                return None, None

        def _answer(self, name, work):
            """Runs work() under the engine's lock and sends what it returns. A
            WireError is the request's fault (its status from status_of);
            anything else is answered 500 with its trace on stderr."""
            try:
                with lock:
                    out = work()
            except WireError as e:
                return self._error(status_of(e), str(e))
            except Exception as e:
                traceback.print_exc()
                return self._error(500, "%s: %s" % (name, e))
            self._send(200, out)

        def _generate(self):
            req, vs = self._steered(decode_generate)
            if vs is None:
                return
            if not req["prompts"]:
                return self._error(400, "prompts: expected at least one prompt")

            def work():
                default = generate(eng, req["prompts"], req, []) if req["default"] else None
                out = {"generations": generate(eng, req["prompts"], req, vs)}
                if default:
                    out["default"] = default
                return out
            self._answer("generate", work)

        def _confidence(self):
            req = self._request(decode_confidence)
            if req is None:
                return
            if req["d_sae"] < 1 or len(req["w_dec"]) != req["d_sae"] * eng.d_model:
                return self._error(400, "w_dec: expected d_sae × d_model = %d × %d values, found %d"
                                   % (req["d_sae"], eng.d_model, len(req["w_dec"])))
            self._answer("confidence", lambda: learn_confidence(
                eng, req["w_dec"], req["d_sae"], req["traces"], req["layer"], req["iters"],
                req["batch"], req["lr"], req["states"], req["seed"], recompute))

        def _entropy(self):
            req, vs = self._steered(decode_entropy)
            if vs is None:
                return

            def work():
                h, n = boundary_entropy(eng, req["traces"], vs)
                return {"entropy": h, "states": n}
            self._answer("entropy", work)

        def _capture(self):
            req = self._request(decode_capture)
            if req is None:
                return
            if not req["traces"]:
                return self._error(400, "traces: expected at least one trace")
            try:
                check_layers(req["layers"], eng.layers)
            except WireError as e:
                return self._error(400, str(e))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()

            def put(obj):
                self.wfile.write((json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8"))
                self.wfile.flush()
            try:
                with lock:
                    for rec in capture_records(eng, req["traces"], req["layers"], req["delimiter"], req["special"]):
                        line = capture_line(rec)
                        if line is not None:
                            put(line)
            except (BrokenPipeError, ConnectionResetError):
                return
            except Exception as e:
                if not isinstance(e, WireError):
                    traceback.print_exc()
                try:
                    put({"error": str(e)})
                except OSError:
                    pass
                return
            put({"done": True})

    return Handler


def main(argv=None):
    ap = argparse.ArgumentParser(description="Reference PyTorch server of rise's %s protocol." % PROTOCOL)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a Hugging Face model directory or hub name, loaded with transformers")
    src.add_argument("--reference", help="a Hugging Face-format Llama/Qwen2 directory run by this file's own "
                                         "PyTorch forward and tokenizer (no transformers)")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"],
                    help="weights and activations of --model (default bfloat16; --reference always runs float32)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default cuda when available)")
    ap.add_argument("--addr", default="127.0.0.1:8000", help="HOST:PORT to listen on")
    ap.add_argument("--capture", help="traces.jsonl: write a rise-activations/1 dump instead of serving")
    ap.add_argument("--layers", help="with --capture: blocks to record, e.g. 8,16")
    ap.add_argument("--out", help="with --capture: the dump directory to write")
    ap.add_argument("--delimiter", default=DEFAULT_DELIMITER, help="with --capture: the step delimiter")
    ap.add_argument("--special", action="store_true", help="with --capture: the prompts hold a chat template's special tokens")
    ap.add_argument("--name", help="with --capture: the model name in the manifest (default the model path)")
    ap.add_argument("--force", action="store_true", help="with --capture: replace an existing dump")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--verbose", action="store_true", help="log every request")
    ap.add_argument("--confidence-recompute", action="store_true",
                    help="--reference: learn confidence vectors by recomputing every state's prefix through the whole "
                         "model, as --model always does, instead of reading cached keys and values")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.reference:
        eng = RefEngine(args.reference, device)
    else:
        eng = HFEngine(args.model, args.dtype, device)
    if args.capture:
        if not args.layers or not args.out:
            ap.error("--capture needs --layers and --out")
        run_capture(eng, args)
        return
    host, _, port = args.addr.rpartition(":")
    srv = ThreadingHTTPServer((host or "127.0.0.1", int(port)), make_handler(eng, threading.Lock(), args.verbose, args.confidence_recompute))
    print("rise_backend: serving %s (%s, %d layers, d_model %d) on http://%s:%d (%s)"
          % (eng.name, eng.arch, eng.layers, eng.d_model, host or "127.0.0.1", srv.server_address[1], PROTOCOL),
          file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
