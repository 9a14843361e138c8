#!/usr/bin/env python3
"""A second model with the same shapes as a first one, for trying the Compare panel without another download.

    tools/.venv/bin/python tools/perturb_model.py --model assets/demo-model --out /tmp/demo-b [--scale 1.3] [--noise 0.02]

Copies config.json and preprocessor_config.json, and writes model.safetensors with the decoder's pixel prediction
(`decoder.decoder_pred.weight`) scaled by --scale and every decoder weight given Gaussian noise of --noise times
its own standard deviation (seed 0). Same grid, same preprocessing, same loss: the Compare panel draws the
per-patch loss difference. Needs NumPy and safetensors only.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a model folder (config.json + model.safetensors)")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write (created)")
    parser.add_argument("--scale", type=float, default=1.3)
    parser.add_argument("--noise", type=float, default=0.02)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(args.model / name, args.out / name)
    tensors = load_file(args.model / "model.safetensors")
    rng = np.random.default_rng(0)
    changed = {}
    for name, value in sorted(tensors.items()):
        if name.startswith("decoder.") and value.dtype == np.float32 and value.ndim >= 1 and value.std() > 0:
            value = value + rng.normal(0.0, args.noise * float(value.std()), value.shape).astype(np.float32)
        if name == "decoder.decoder_pred.weight":
            value = value * np.float32(args.scale)
        changed[name] = np.ascontiguousarray(value)
    save_file(changed, args.out / "model.safetensors")
    print(f"wrote {args.out / 'model.safetensors'} ({len(changed)} tensors)")


if __name__ == "__main__":
    main()
