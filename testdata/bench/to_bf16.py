#!/usr/bin/env python3
"""Copy a Hugging Face model directory with its F32 safetensors weights
rounded to BF16 (to nearest, ties to even, as torch's .to(torch.bfloat16)).

usage: to_bf16.py SRC_DIR DST_DIR

Every other file is copied as it is, and config.json gets
"torch_dtype": "bfloat16". Needs numpy; tensors are converted one at a
time."""
import json
import os
import shutil
import struct
import sys

import numpy as np


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if name.endswith(".safetensors"):
            convert(s, d)
        elif name == "config.json":
            with open(s) as f:
                cfg = json.load(f)
            cfg["torch_dtype"] = "bfloat16"
            with open(d, "w") as f:
                json.dump(cfg, f, indent=2)
        elif os.path.isfile(s):
            shutil.copyfile(s, d)


def convert(src, dst):
    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        meta = hdr.pop("__metadata__", None)
        names = sorted(hdr, key=lambda k: hdr[k]["data_offsets"][0])
        out, off = {}, 0
        for k in names:
            e = hdr[k]
            if e["dtype"] != "F32":
                sys.exit(f"{src}: tensor {k} is {e['dtype']}, expected F32")
            size = (e["data_offsets"][1] - e["data_offsets"][0]) // 2
            out[k] = {"dtype": "BF16", "shape": e["shape"], "data_offsets": [off, off + size]}
            off += size
        if meta is not None:
            out["__metadata__"] = meta
        h = json.dumps(out, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(dst, "wb") as g:
            g.write(struct.pack("<Q", len(h)))
            g.write(h)
            for k in names:
                b0, b1 = hdr[k]["data_offsets"]
                f.seek(base + b0)
                a = np.frombuffer(f.read(b1 - b0), dtype="<u4")
                r = ((a + np.uint32(0x7FFF) + ((a >> 16) & np.uint32(1))) >> 16).astype("<u2")
                g.write(r.tobytes())


if __name__ == "__main__":
    main()
