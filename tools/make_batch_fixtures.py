#!/usr/bin/env python3
"""HF ViTMAE outputs at batch > 1, for the batched forward's parity test (tests/tests/batch.rs).

    tools/.venv/bin/python tools/make_batch_fixtures.py [--out tests/fixtures/batch]

For each tiny fixture model (tests/fixtures/models, made by make_fixtures.py) and seed: a batch of B random
inputs and the noise `torch.manual_seed(seed); torch.rand(B, L)` gives them. That noise fills the rows one after
another, so row i is NOT `torch.manual_seed(seed + i)`'s noise: the test hands our forward each row explicitly
(HF's `noise` argument). HF's `loss` is one mean over the whole batch, so the per-item losses are computed here
from the logits exactly as `ViTMAEForPreTraining.forward_loss` does per row, and checked to average to HF's.

Writes batch/<model>-seed<seed>.safetensors: pixel_values [B,3,H,W], noise [B,L], logits [B,L,p*p*3],
mask [B,L], ids_restore [B,L], item_loss [B], loss [] (HF's), last_hidden_state [B,1+len_keep,D];
metadata: mask_ratio, seed.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import torch
from transformers import ViTMAEForPreTraining

from hub_layout import save_safetensors

REPO = Path(__file__).resolve().parent.parent
BATCH = 3
# (model, seed, mask ratio): one ratio per model's own default plus one it is not trained at
PLAN = [("tiny-p8", 0, 0.75), ("tiny-p8", 5, 0.5), ("tiny-p4-normpix", 3, 0.6)]


def patchify(pixel_values: torch.Tensor, p: int) -> torch.Tensor:
    b, c, h, w = pixel_values.shape
    x = pixel_values.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def item_losses(model, pixel_values, logits, mask) -> torch.Tensor:
    """`forward_loss` per row: mean squared error per patch, then the mean over that row's masked patches."""
    target = patchify(pixel_values, model.config.patch_size)
    if model.config.norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    patch_loss = ((logits - target) ** 2).mean(dim=-1)
    return (patch_loss * mask).sum(dim=1) / mask.sum(dim=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "batch"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    for name, seed, ratio in PLAN:
        model = ViTMAEForPreTraining.from_pretrained(REPO / "tests" / "fixtures" / "models" / name).eval()
        model.config.mask_ratio = ratio
        cfg = model.config
        size = cfg.image_size
        L = (size // cfg.patch_size) ** 2
        generator = torch.Generator().manual_seed(zlib.crc32(f"{name}/batch/{seed}".encode()))
        pixel_values = torch.randn(BATCH, 3, size, size, generator=generator)
        torch.manual_seed(seed)
        noise = torch.rand(BATCH, L)
        result = model(pixel_values=pixel_values, noise=noise)
        losses = item_losses(model, pixel_values, result.logits, result.mask)
        # Every row keeps the same count, so HF's one mean over the batch is the mean of the rows' means.
        assert torch.allclose(losses.mean(), result.loss, rtol=1e-6), (losses, result.loss)
        tensors = {
            "pixel_values": pixel_values,
            "noise": noise,
            "logits": result.logits,
            "mask": result.mask,
            "ids_restore": result.ids_restore.to(torch.int64),
            "item_loss": losses,
            "loss": result.loss.reshape(()),
            "last_hidden_state": model.vit(pixel_values, noise=noise).last_hidden_state,
        }
        tensors = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
        path = out / f"{name}-seed{seed}.safetensors"
        save_safetensors(tensors, path, metadata={"mask_ratio": repr(float(ratio)), "seed": str(seed)})
        print(f"{path.relative_to(REPO)}: losses {[round(x, 6) for x in losses.tolist()]}", flush=True)


if __name__ == "__main__":
    main()
