#!/usr/bin/env python3
"""Fixtures for `--size`: transformers' outputs of the embedded demo model (assets/demo-model) on chelsea.png fed at
sizes other than its own 224x224 (deterministic; overwrites).

    python tools/make_size_fixtures.py [--out tests/fixtures]

For each size WxH it writes sizes/demo_WxH.safetensors: `pixel_values` from
``ViTImageProcessor(size={"height": H, "width": W})`` (the PIL backend, as tools/make_fixtures.py pins it), and the
outputs of ``ViTMAEForPreTraining(pixel_values, noise=..., interpolate_pos_encoding=True)`` with the noise of
``torch.manual_seed(2); torch.rand(1, L)`` — the mask `dump --seed 2` draws — at ratio 0.75: noise, mask,
ids_restore, loss, patch_loss, logits and last_hidden_state. tests/tests/parity.rs runs `dump --image chelsea.png
--size WxH --seed 2` and compares everything at 1e-4 relative (pixel values, mask and noise exactly).

Sizes: 320x240 (non-square, landscape), 240x320 (portrait), 448x448 (larger than the model's own).
Nothing here is needed to build or test the Rust code: the outputs are committed.
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hub_layout as H  # noqa: E402
from make_fixtures import REPO, run_case, seeded_noise, vit_image_processor  # noqa: E402

SIZES = [(320, 240), (240, 320), (448, 448)]
SEED = 2
RATIO = 0.75
KEPT = ("pixel_values", "noise", "mask", "ids_restore", "loss", "patch_loss", "logits", "last_hidden_state")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures")
    args = parser.parse_args()

    from safetensors import safe_open
    from transformers import ViTMAEForPreTraining
    from transformers.image_utils import load_image

    torch.set_num_threads(1)
    mdir = REPO / "assets" / "demo-model"
    model = ViTMAEForPreTraining.from_pretrained(str(mdir), attn_implementation="eager")
    model.eval()
    patch = model.config.patch_size
    image = load_image(str(REPO / "assets" / "chelsea.png"))
    folder = args.out / "sizes"
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        processor = vit_image_processor().from_pretrained(str(mdir), size={"height": height, "width": width})
        pixel_values = np.asarray(processor(images=image, return_tensors="np")["pixel_values"])
        pixel_values = torch.from_numpy(pixel_values).float()
        assert pixel_values.shape == (1, 3, height, width), pixel_values.shape
        patches = (height // patch) * (width // patch)
        full = folder / f"demo_{width}x{height}.full.safetensors"
        meta = {"seed": str(SEED), "image": "chelsea.png", "model": "demo", "size": f"{width}x{height}"}
        stats = run_case(model, pixel_values, seeded_noise(SEED, patches), RATIO, True, meta, full)
        with safe_open(str(full), "pt") as f:
            metadata = f.metadata()
            tensors = OrderedDict((name, f.get_tensor(name)) for name in KEPT)
        full.unlink()
        H.save_safetensors(tensors, folder / f"demo_{width}x{height}.safetensors", metadata=metadata)
        print(f"sizes/demo_{width}x{height}: L={stats['L']} keep={stats['len_keep']} loss={stats['loss']:.5f}")


if __name__ == "__main__":
    main()
