#!/usr/bin/env python3
"""Reference data for mask strategies and reconstruction metrics (deterministic; overwrites).

    tools/.venv/bin/python tools/make_mask_fixtures.py [--out tests/fixtures/masks] [--images /work/shared/images]

Writes, under --out:

  block_masks.json   transformers' own FlavaMaskingGenerator after random.seed(s), with its defaults
                     (mask_group_min_patches=16, aspect ratios 0.3 .. 1/0.3) and
                     total_mask_patches = L - int(L * (1 - ratio)), for several seeds, grids and ratios
  metrics.safetensors + metrics.json
                     picture pairs ([3, H, W] float32 in [0, 1]) and pixel masks, with scikit-image's
                     structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                     data_range=1.0, channel_axis=-1) and PSNR (10 log10(1 / MSE)) over all and masked pixels
  mask_picture.png + mask_picture.json
                     a picture with alpha, of an odd size, and the patch mask PIL gives for it:
                     resize((W, H), NEAREST), convert("L"), pixel >= 128 is masked, a patch is masked when at
                     least half of its pixels are

Needs transformers (the generator only; no torch), Pillow, NumPy and scikit-image with SciPy.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from safetensors.numpy import save_file
from skimage.metrics import structural_similarity
from transformers.models.flava.image_processing_pil_flava import FlavaMaskingGenerator

REPO = Path(__file__).resolve().parent.parent

BLOCK_CASES = [
    (grid, ratio, seed)
    for grid in [(14, 14), (16, 16)]
    for ratio in [0.4, 0.5, 0.6, 0.75]
    for seed in [0, 1, 2, 3, 7, 42, 1234, 2**33 + 5]
]
# A non-square grid, as a model with a non-square input has.
BLOCK_CASES += [((6, 10), 0.5, seed) for seed in range(4)]
# The test models' grids (tiny-p8: 4x4, tiny-p4-normpix: 6x6), for the dump command's end-to-end check.
BLOCK_CASES += [(grid, ratio, seed) for grid in [(4, 4), (6, 6)] for ratio in [0.5, 0.75] for seed in range(3)]


def block_masks() -> list[dict]:
    cases = []
    for (rows, cols), ratio, seed in BLOCK_CASES:
        num_patches = rows * cols
        total = num_patches - int(num_patches * (1 - ratio))
        generator = FlavaMaskingGenerator(input_size=(rows, cols), total_mask_patches=total, mask_group_min_patches=16)
        random.seed(seed)
        mask = np.asarray(generator()).astype(int).reshape(-1)
        cases.append(dict(grid=[rows, cols], ratio=ratio, seed=seed, total_mask_patches=total,
                          masked=int(mask.sum()), mask=mask.tolist()))
    return cases


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a.transpose(1, 2, 0), b.transpose(1, 2, 0), gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=1.0, channel_axis=-1))


def psnr(a: np.ndarray, b: np.ndarray, pixels: np.ndarray) -> float | str | None:
    """In dB; "inf" (JSON has no infinity) for identical pixels, None when no pixel is selected."""
    if not pixels.any():
        return None
    diff = (a.astype(np.float64) - b.astype(np.float64))[:, pixels]
    mse = float(np.mean(diff * diff))
    return "inf" if mse == 0 else float(10 * np.log10(1 / mse))


def metric_pairs(images: Path) -> tuple[dict[str, np.ndarray], list[dict]]:
    rng = np.random.default_rng(16)
    photo = np.asarray(Image.open(images / "chelsea.png").convert("RGB").resize((96, 96), Image.BILINEAR))
    original = (photo.astype(np.float32) / 255).transpose(2, 0, 1).copy()
    # Patch masks as pixel masks: 16-pixel patches, 75% masked at random (fixed here, not torch's).
    patch_mask = rng.random((6, 6)) < 0.75
    pixel_mask = np.kron(patch_mask, np.ones((16, 16), dtype=bool))
    noisy = np.clip(original + rng.normal(0, 0.08, original.shape).astype(np.float32), 0, 1)
    pasted = np.where(pixel_mask[None], noisy, original).astype(np.float32)
    blurred = original.copy()
    blurred[:, 1:-1, 1:-1] = (original[:, :-2, 1:-1] + original[:, 2:, 1:-1] + original[:, 1:-1, :-2]
                              + original[:, 1:-1, 2:]) / 4
    small = rng.random((3, 24, 40), dtype=np.float32)
    small_b = np.clip(small + rng.normal(0, 0.2, small.shape).astype(np.float32), 0, 1)
    flat = np.full((3, 32, 32), 0.5, dtype=np.float32)
    flat_b = np.full((3, 32, 32), 0.25, dtype=np.float32)
    pairs = {
        "photo_pasted": (original, pasted, pixel_mask),
        "photo_blurred": (original, blurred, np.ones((96, 96), dtype=bool)),
        "perfect": (original, original.copy(), pixel_mask),
        "flat": (flat, flat_b, np.zeros((32, 32), dtype=bool)),
        "small_noisy": (small, small_b, np.eye(24, 40, dtype=bool)),
    }
    tensors, cases = {}, []
    for name, (a, b, pixels) in pairs.items():
        tensors[f"{name}.original"] = a.astype(np.float32)
        tensors[f"{name}.pasted_back"] = b.astype(np.float32)
        tensors[f"{name}.masked_pixels"] = pixels.astype(np.uint8)
        cases.append(dict(name=name, psnr_db=psnr(a, b, np.ones(pixels.shape, dtype=bool)),
                          psnr_masked_db=psnr(a, b, pixels), ssim=ssim(a, b)))
    return tensors, cases


def mask_picture(out: Path) -> dict:
    # 50x37 RGBA: a white ellipse with a half-transparent red bar; alpha must be ignored as convert("L") drops it.
    picture = Image.new("RGBA", (50, 37), (0, 0, 0, 0))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((6, 4, 40, 30), fill=(255, 255, 255, 40))
    draw.rectangle((30, 20, 49, 27), fill=(250, 60, 60, 128))
    draw.rectangle((0, 0, 9, 9), fill=(180, 180, 180, 255))
    picture.save(out / "mask_picture.png")
    expected = {}
    for (height, width), patch in [((224, 224), 16), ((32, 32), 8), ((48, 32), 8)]:
        grey = np.asarray(picture.resize((width, height), Image.NEAREST).convert("L"))
        white = (grey >= 128).reshape(height // patch, patch, width // patch, patch)
        masked = white.sum(axis=(1, 3)) * 2 >= patch * patch
        expected[f"{height}x{width}/{patch}"] = masked.astype(int).reshape(-1).tolist()
    return expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "masks")
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cases = block_masks()
    short = sum(case["masked"] < case["total_mask_patches"] for case in cases)
    (args.out / "block_masks.json").write_text(json.dumps(cases, indent=0) + "\n")
    tensors, metric_cases = metric_pairs(args.images)
    save_file(tensors, args.out / "metrics.safetensors")
    (args.out / "metrics.json").write_text(json.dumps(metric_cases, indent=1) + "\n")
    (args.out / "mask_picture.json").write_text(json.dumps(mask_picture(args.out)) + "\n")
    print(f"{len(cases)} block masks ({short} stop short of their target), {len(metric_cases)} metric pairs")


if __name__ == "__main__":
    main()
