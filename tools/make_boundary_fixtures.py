"""Writes tests/fixtures/boundaries/: what each of HF's ViTMAE sub-modules gives at its own boundary, so the Rust
model's Embeddings, Encoder and Decoder are each tested alone against transformers.

For every committed tiny model (tests/fixtures/models/<name>) and two inputs — the configured size at ratio 0.5
(seed 2) and, for tiny-p8, a 48×32 input through interpolate_pos_encoding at ratio 0.6 (seed 7) — one file
<name>[_interp].safetensors with:

  pixel_values [1,3,H,W], noise [1,L]     the inputs
  embeddings [1,n,D]                      model.vit.embeddings(pixel_values, noise): CLS + visible tokens, in
                                          HF's shuffled order, position embeddings added (n = len_keep + 1)
  ids_restore [1,L] (i64)                 from the same call
  last_hidden_state [1,n,D]               model.vit.layers over embeddings, then model.vit.layernorm
  logits [1,L,p*p*3]                      model.decoder(last_hidden_state, ids_restore, interpolate_pos_encoding)

and metadata mask_ratio, interpolate_pos_encoding, model. Each boundary is also checked against the whole
model's forward pass (the same tensors to 1e-6), so the pieces are what ViTMAEForPreTraining computes.

Deterministic and byte-reproducible: python tools/make_boundary_fixtures.py (environment: tools/README.md).
"""

import sys
from pathlib import Path

import torch
from transformers import ViTMAEForPreTraining

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hub_layout as H  # noqa: E402  (its byte-reproducible safetensors writer)

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "fixtures" / "models"
OUT = ROOT / "tests" / "fixtures" / "boundaries"

# (model, file suffix, (H, W) or None for the configured size, ratio, noise seed, input seed)
CASES = [
    ("tiny-p8", "", None, 0.5, 2, 11),
    ("tiny-p4-normpix", "", None, 0.5, 2, 12),
    ("tiny-p16", "", None, 0.5, 2, 13),
    ("tiny-p8", "_interp", (48, 32), 0.6, 7, 14),
]


def main() -> None:
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, suffix, size, ratio, noise_seed, input_seed in CASES:
        model = ViTMAEForPreTraining.from_pretrained(MODELS / name, attn_implementation="eager").eval()
        config = model.config
        config.mask_ratio = ratio
        assert model.vit.embeddings.config.mask_ratio == ratio  # the value random_masking reads
        height, width = size or (config.image_size, config.image_size)
        interpolate = size is not None
        p = config.patch_size
        patches = (height // p) * (width // p)
        pixel_values = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(input_seed))
        torch.manual_seed(noise_seed)
        noise = torch.rand(1, patches)
        with torch.no_grad():
            embeddings, mask, ids_restore = model.vit.embeddings(
                pixel_values, noise=noise, interpolate_pos_encoding=interpolate
            )
            # transformers 5.x runs the layers inline in ViTMAEModel.forward (no `encoder` module): the same here.
            hidden = embeddings
            for layer in model.vit.layers:
                hidden = layer(hidden, None)
            last_hidden_state = model.vit.layernorm(hidden)
            logits = model.decoder(
                last_hidden_state, ids_restore, interpolate_pos_encoding=interpolate
            ).logits
            whole = model(pixel_values=pixel_values, noise=noise, interpolate_pos_encoding=interpolate)
        # The pieces chained are the whole model.
        assert torch.equal(whole.ids_restore, ids_restore) and torch.equal(whole.mask, mask)
        assert torch.allclose(whole.logits, logits, atol=1e-6), (whole.logits - logits).abs().max()
        encoder_only = model.vit(pixel_values=pixel_values, noise=noise, interpolate_pos_encoding=interpolate)
        assert torch.allclose(encoder_only.last_hidden_state, last_hidden_state, atol=1e-6)
        tensors = {
            "pixel_values": pixel_values.contiguous(),
            "noise": noise.contiguous(),
            "embeddings": embeddings.contiguous(),
            "ids_restore": ids_restore.contiguous(),
            "last_hidden_state": last_hidden_state.contiguous(),
            "logits": logits.contiguous(),
        }
        metadata = {
            "model": name,
            "mask_ratio": repr(ratio),
            "interpolate_pos_encoding": "true" if interpolate else "false",
        }
        path = OUT / f"{name}{suffix}.safetensors"
        H.save_safetensors(tensors, path, metadata=metadata)
        print(f"{path.relative_to(ROOT)}: {height}x{width}, L={patches}, kept {embeddings.shape[1] - 1}")


if __name__ == "__main__":
    main()
