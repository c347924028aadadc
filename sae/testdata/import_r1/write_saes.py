"""Write tiny SAEs in the layouts of two public R1-distill SAE releases, and
what their own forward passes make of a few input vectors.

    python3 write_saes.py OUT_DIR

(sae/testdata/import_r1/out is its output: cd sae && /usr/bin/python3
testdata/import_r1/write_saes.py testdata/import_r1/out; torch 1.13, seeded,
so the files come out byte for byte the same.)

OUT_DIR/dictlearn_pt/       ae.pt (torch.save of a BatchTopKSAE state dict,
                            saprmarks/dictionary_learning) + config.json
OUT_DIR/dictlearn_mod/      the same tensors as a module's state_dict()
OUT_DIR/dictlearn_st/       the same tensors as ae.safetensors (k as I64)
OUT_DIR/llamascope/         config.json + sae_weights.safetensors in the
                            layout of OpenMOSS lm-saes (Llama-Scope-R1-Distill)
OUT_DIR/expected.json       {"x": rows, "dictlearn": latents, "llamascope": latents}

The latents are computed here with the formulas of the projects' own encode
methods, written out in torch (dictionary_learning BatchTopKSAE.encode with
use_threshold=True; lm_saes SparseAutoEncoder.encode with dataset-wise
normalisation and sparsity_include_decoder_norm), not with rise's code. The
safetensors files are written by hand from the format's specification
(an 8-byte little-endian header length, a JSON header, the raw data), so the
test needs neither the safetensors package nor rise.
"""

import json
import math
import os
import struct
import sys

import torch

DTYPES = {torch.float32: ("F32", 4), torch.int64: ("I64", 8)}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        dtype, size = DTYPES[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main(out):
    g = torch.Generator().manual_seed(7)
    d_in, d_sae, k, n = 6, 10, 3, 5
    x = torch.randn(n, d_in, generator=g) * 2

    # dictionary_learning BatchTopKSAE: decoder = nn.Linear(d_sae, d_in,
    # bias=False), encoder = nn.Linear(d_in, d_sae), b_dec, and the buffers
    # k and threshold. encoder.weight starts as decoder.weight.T.clone(),
    # which keeps the transposed strides, as a trained checkpoint does.
    dec_w = torch.randn(d_in, d_sae, generator=g)
    enc_w = dec_w.T.clone()
    enc_w.add_(0.3 * torch.randn(d_sae, d_in, generator=g))
    assert not enc_w.is_contiguous()
    enc_b = 0.2 * torch.randn(d_sae, generator=g)
    b_dec = 0.5 * torch.randn(d_in, generator=g)
    threshold = torch.tensor(0.4)
    sd = {
        "k": torch.tensor(k, dtype=torch.int64),
        "threshold": threshold,
        "decoder.weight": dec_w,
        "encoder.weight": enc_w,
        "encoder.bias": enc_b,
        "b_dec": b_dec,
    }
    post_relu = torch.relu((x - b_dec) @ enc_w.T + enc_b)
    f_dl = post_relu * (post_relu > threshold)

    cfg = {"trainer": {"trainer_class": "BatchTopKTrainer", "dict_class": "BatchTopKSAE",
                       "activation_dim": d_in, "dict_size": d_sae, "k": k, "layer": 6,
                       "lm_name": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "submodule_name": "resid_post_layer_6"},
           "buffer": {"d_submodule": d_in, "ctx_len": 1024}}
    for sub in ("dictlearn_pt", "dictlearn_st"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        with open(os.path.join(out, sub, "config.json"), "w") as f:
            json.dump(cfg, f)
    torch.save(sd, os.path.join(out, "dictlearn_pt", "ae.pt"))

    # The same tensors as the state dict of a module with BatchTopKSAE's
    # parameter and buffer names, as torch.save(ae.state_dict()) writes it
    # (an OrderedDict with _metadata, contiguous parameters).
    class BatchTopKLike(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("k", torch.tensor(k, dtype=torch.int64))
            self.register_buffer("threshold", torch.tensor(-1.0))
            self.decoder = torch.nn.Linear(d_sae, d_in, bias=False)
            self.encoder = torch.nn.Linear(d_in, d_sae)
            self.b_dec = torch.nn.Parameter(torch.zeros(d_in))

    ae = BatchTopKLike()
    ae.load_state_dict(sd)
    os.makedirs(os.path.join(out, "dictlearn_mod"), exist_ok=True)
    with open(os.path.join(out, "dictlearn_mod", "config.json"), "w") as f:
        json.dump(cfg, f)
    torch.save(ae.state_dict(), os.path.join(out, "dictlearn_mod", "ae.pt"))
    write_safetensors(os.path.join(out, "dictlearn_st", "ae.safetensors"), sd)

    # lm-saes (Llama-Scope-R1-Distill): encoder/decoder nn.Linear weights,
    # log_jumprelu_threshold, dataset-wise input norm, decoder columns of
    # norms far from 1 so that sparsity_include_decoder_norm matters.
    norm_in = 9.5
    dec_w = torch.randn(d_in, d_sae, generator=g) * (0.3 + 2 * torch.rand(d_sae, generator=g))
    enc_w = 0.5 * torch.randn(d_sae, d_in, generator=g)
    enc_b = 0.1 * torch.randn(d_sae, generator=g)
    dec_b = 0.3 * torch.randn(d_in, generator=g)
    log_thr = torch.log(0.05 + 0.3 * torch.rand(d_sae, generator=g))
    lcfg = {"sae_type": "sae", "d_model": d_in, "expansion_factor": d_sae // d_in if d_sae % d_in == 0 else 0,
            "d_sae": d_sae, "act_fn": "jumprelu", "norm_activation": "dataset-wise",
            "dataset_average_activation_norm": {"in": norm_in, "out": norm_in},
            "use_decoder_bias": True, "apply_decoder_bias_to_pre_encoder": False,
            "sparsity_include_decoder_norm": True, "use_glu_encoder": False,
            "hook_point_in": "blocks.15.hook_resid_post", "hook_point_out": "blocks.15.hook_resid_post"}
    os.makedirs(os.path.join(out, "llamascope"), exist_ok=True)
    with open(os.path.join(out, "llamascope", "config.json"), "w") as f:
        json.dump(lcfg, f)
    write_safetensors(os.path.join(out, "llamascope", "sae_weights.safetensors"), {
        "encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w,
        "decoder.bias": dec_b, "log_jumprelu_threshold": log_thr})
    xs = x * (math.sqrt(d_in) / norm_in)
    hidden_pre = xs @ enc_w.T + enc_b
    score = hidden_pre * dec_w.norm(dim=0)
    f_ls = hidden_pre * (score > log_thr.exp())
    # The reconstruction in raw units: decode in the scaled space, then undo
    # the scale.
    xhat_ls = (f_ls @ dec_w.T + dec_b) / (math.sqrt(d_in) / norm_in)

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"x": x.tolist(), "dictlearn": f_dl.tolist(), "llamascope": f_ls.tolist(),
                   "llamascope_xhat": xhat_ls.tolist()}, f)


if __name__ == "__main__":
    main(sys.argv[1])
