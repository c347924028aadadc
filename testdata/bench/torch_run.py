#!/usr/bin/env python3
"""PyTorch reference for a whole SAE training run (rise bench --run).

Repeats the run rise trained, SAELens-style: a dense ReLU SAE, b_dec subtracted before the
encoder, MSE summed over dimensions plus lambda times the L1 of the activations weighted by
the decoder-row norms, Adam (bias-corrected, eps 1e-8) with a linear warm-up and cosine
decay to zero. It starts from the weights rise initialised and reads the same rows of the
dump in the same order, from the directory rise bench --run writes:

  init.safetensors  W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc, b_dec (float32), and
                    the run's settings as metadata (input_scale, l1, lr, warmup_steps, steps,
                    batch, beta1, beta2, shards: a JSON list of the layer's .npy files)
  order.npy         int64 [steps * batch]: the layer row of each row of each batch

With --precision bf16 the two matrix products of the forward pass (and so their gradients)
run under torch.autocast in bfloat16, their results taken back to float32: PyTorch's
mixed precision on the CPU, beside rise's --precision bf16. Weights and Adam stay float32.

The timed part (wall clock and CPU time) is the loop: reading each batch's rows from the shards, the forward and
backward pass, and the optimiser step. Prints one JSON object.

  python3 torch_run.py --ref DIR --threads 2 [--precision bf16]

On Debian: apt-get install -y python3-torch
"""
import argparse, json, math, struct, time

import numpy as np
import torch


def read_safetensors(path):
    """Returns the float32 tensors and the metadata of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {e['dtype']}, expected F32")
        lo, hi = e["data_offsets"]
        out[name] = np.frombuffer(raw, dtype="<f4", count=(hi - lo) // 4, offset=base + lo).reshape(e["shape"])
    return out, meta


class Rows:
    """The rows of a layer stored in .npy shards that concatenate in order."""

    def __init__(self, paths):
        self.arrays = [np.load(p, mmap_mode="r") for p in paths]
        for p, a in zip(paths, self.arrays):
            if a.ndim != 2 or a.dtype not in (np.float32, np.float16):
                raise SystemExit(f"{p}: expected a 2-D float32 or float16 array, found {a.dtype} {a.shape}")
        self.starts = np.cumsum([0] + [a.shape[0] for a in self.arrays])

    def take(self, ids):
        if len(self.arrays) == 1:
            return np.asarray(self.arrays[0][ids], dtype=np.float32)
        shard = np.searchsorted(self.starts, ids, side="right") - 1
        out = np.empty((len(ids), self.arrays[0].shape[1]), dtype=np.float32)
        for s in np.unique(shard):
            sel = np.nonzero(shard == s)[0]
            out[sel] = self.arrays[s][ids[sel] - self.starts[s]]
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="directory written by rise bench --run")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                    help="bf16: the forward pass's matrix products under torch.autocast in bfloat16")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    w, meta = read_safetensors(f"{a.ref}/init.safetensors")
    if meta.get("reference_format") != "rise-bench-run/1":
        raise SystemExit(f"{a.ref}/init.safetensors: expected reference_format rise-bench-run/1, found {meta.get('reference_format')!r}")
    order = np.load(f"{a.ref}/order.npy")
    steps, batch = int(meta["steps"]), int(meta["batch"])
    if order.shape != (steps * batch,):
        raise SystemExit(f"{a.ref}/order.npy: expected {steps * batch} row indices, found shape {order.shape}")
    scale, l1 = float(meta["input_scale"]), float(meta["l1"])
    lr, warm = float(meta["lr"]), int(meta["warmup_steps"])
    apply_b_dec = meta["apply_b_dec"] == "true"
    rows = Rows(json.loads(meta["shards"]))

    p = {k: torch.tensor(np.array(w[k])).requires_grad_(True) for k in ("W_enc", "W_dec", "b_enc", "b_dec")}
    opt = torch.optim.Adam(p.values(), lr=lr, betas=(float(meta["beta1"]), float(meta["beta2"])), eps=float(meta["adam_eps"]))

    def lr_at(step):  # rise's schedule: linear warm-up, then cosine decay to zero
        if step < warm:
            return lr * (step + 1) / warm
        if meta["decay"] == "constant":
            return lr
        return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    bf16 = a.precision == "bf16"

    def mm(u, v):
        if not bf16:
            return u @ v
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return (u @ v).float()

    def loss_fn(x):
        x_in = x - p["b_dec"] if apply_b_dec else x
        f = torch.relu(mm(x_in, p["W_enc"]) + p["b_enc"])
        x_hat = mm(f, p["W_dec"]) + p["b_dec"]
        mse = (x_hat - x).pow(2).sum(-1).mean()
        sparsity = l1 * (f * p["W_dec"].norm(dim=1)).sum(-1).mean()
        l0 = (f > 0).float().sum(-1).mean()
        return mse + sparsity, mse, l0

    t, cpu = time.perf_counter(), time.process_time()
    for step in range(steps):
        x = torch.from_numpy(rows.take(order[step * batch:(step + 1) * batch]))
        x.mul_(scale)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad()
        loss, mse, l0 = loss_fn(x)
        loss.backward()
        opt.step()
    el, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(json.dumps({
        "engine": "torch", "precision": a.precision, "impl": "torch-" + torch.__version__, "threads": torch.get_num_threads(),
        "arch": "relu", "d_in": int(w["W_enc"].shape[0]), "d_sae": int(w["W_enc"].shape[1]),
        "batch": batch, "steps": steps, "seconds": round(el, 3), "cpu_seconds": round(cpu, 3),
        "samples_per_s": round(batch * steps / el, 1),
        "final_loss": loss.item(), "final_mse": mse.item(), "final_l0": l0.item(),
    }))


if __name__ == "__main__":
    main()
