#!/usr/bin/env python3
"""Generate every test fixture under tests/fixtures/ (deterministic; overwrites).

    python tools/make_fixtures.py [--out tests/fixtures] [--images /work/shared/images]

What it writes (see tools/README.md for the details and the surprises found on the way):

  models/<name>/{config.json, preprocessor_config.json, model.safetensors}   tiny random ViTMAEs, hub layout
  models/tiny-p8-bin/{config.json, preprocessor_config.json, pytorch_model.bin}
  models/tiny-p8-pth/{config.json, preprocessor_config.json, mae_tiny.pth}  facebookresearch/mae layout
  models/tiny-p8-bin-deflated/        the same pytorch_model.bin with deflate-compressed zip entries
  cases/<model>/<case>.safetensors    HF eager outputs for one input (+ captured decoder attentions)
  demo/chelsea.safetensors            HF outputs of the embedded demo model (assets/demo-model) on chelsea.png
  seeds.safetensors                   torch.manual_seed(N); torch.rand(1, L) streams
  preprocess/*.{png,jpg} + preprocess/expected.safetensors   image decoding + PIL resize reference
  bad/*.pth                           checkpoints a loader must reject (incl. a pickle code-exec attempt)

Nothing here is needed to build or test the Rust code: the outputs are committed.
"""

from __future__ import annotations

import argparse
import io
import os
import pickletools
import shutil
import struct
import sys
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hub_layout as H  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

MODELS = {
    "tiny-p8": dict(
        seed=8,
        config=dict(
            image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, decoder_hidden_size=24, decoder_num_hidden_layers=2,
            decoder_num_attention_heads=4, decoder_intermediate_size=48, norm_pix_loss=False,
            mask_ratio=0.75,
        ),
        interp=(48, 32),  # H, W for the interpolate_pos_encoding case (6x4 patches, L=24)
    ),
    "tiny-p4-normpix": dict(
        seed=4,
        config=dict(
            image_size=24, patch_size=4, hidden_size=48, num_hidden_layers=3, num_attention_heads=6,
            intermediate_size=96, decoder_hidden_size=32, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=8, decoder_intermediate_size=40, norm_pix_loss=True,
            mask_ratio=0.6,
        ),
        interp=None,
    ),
    "tiny-p16": dict(
        seed=16,
        config=dict(
            image_size=64, patch_size=16, hidden_size=40, num_hidden_layers=2, num_attention_heads=5,
            intermediate_size=80, decoder_hidden_size=16, decoder_num_hidden_layers=3,
            decoder_num_attention_heads=2, decoder_intermediate_size=64, norm_pix_loss=False,
            mask_ratio=0.75, qkv_bias=True,
        ),
        interp=(64, 112),  # 4x7 patches, L=28 (wider than tall)
    ),
}
COMMON_CONFIG = dict(hidden_act="gelu", layer_norm_eps=1e-12, num_channels=3, qkv_bias=True)

SEEDS = [0, 1, 2, 42, 123456789, 4294967295, 4294967296 + 7, 2**63 + 5]
SEED_LENS = [16, 196, 256, 1000]


def log(*a):
    print(*a, flush=True)


def crc_seed(s: str) -> int:
    return zlib.crc32(s.encode())


def fmt_ratio(r: float) -> str:
    return repr(float(r))


# ============================================================================ models


def write_models(out: Path) -> dict:
    models = {}
    for name, spec in MODELS.items():
        d = out / "models" / name
        if d.exists():
            shutil.rmtree(d)
        model = H.build_random_model(spec["seed"], **{**COMMON_CONFIG, **spec["config"]})
        sd = H.write_hub_model(model, d)
        loaded = H.load_and_verify(d, sd)
        # the reloaded model must also compute exactly what the in-memory one does
        x = torch.randn(1, 3, model.config.image_size, model.config.image_size, generator=torch.Generator().manual_seed(1))
        L = (model.config.image_size // model.config.patch_size) ** 2
        noise = torch.rand(1, L, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            a = model(x, noise=noise).logits
            b = loaded(x, noise=noise).logits
        assert torch.equal(a, b), name
        log(f"model {name}: {len(sd)} tensors, round-trip through from_pretrained OK")
        models[name] = (loaded, sd, d)
    return models


def self_test_verifier(out: Path, sd: dict) -> None:
    """Prove load_and_verify would catch a wrong layout (renamed key => missing+unexpected).

    (Note: transformers 5.x also accepts its own save_pretrained spelling
    ``decoder.decoder_encoder.layer.N``, so that rename would NOT be an error.)
    """
    tmp = out / "_verify_selftest"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy(out / "models" / "tiny-p8" / "config.json", tmp / "config.json")
        bad = dict(sd)
        k = "decoder.decoder_layers.0.attention.output.dense.weight"
        bad["decoder.decoder_layers.0.attention.output.dense_typo.weight"] = bad.pop(k)
        save_file(bad, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        try:
            H.load_and_verify(tmp, sd)
        except AssertionError as e:
            log(f"verifier self-test: a renamed key is caught ({str(e)[:90]}...)")
        else:
            raise AssertionError("verifier did not notice a wrongly named tensor")
    finally:
        shutil.rmtree(tmp)


# ============================================================================ cases


def patchify(pixel_values: torch.Tensor, p: int) -> torch.Tensor:
    b, c, h, w = pixel_values.shape
    x = pixel_values.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def run_case(model, pixel_values, noise, ratio, interpolate, meta, path: Path):
    cfg = model.config
    p = cfg.patch_size
    H_, W_ = pixel_values.shape[2:]
    L = (H_ // p) * (W_ // p)
    assert noise.shape == (1, L), (noise.shape, L)
    cfg.mask_ratio = ratio
    assert model.vit.embeddings.config.mask_ratio == ratio  # the value random_masking reads
    len_keep = int(L * (1 - ratio))
    n = len_keep + 1

    captured = {}
    hooks = []
    # encoder output after vit.layernorm
    hooks.append(model.vit.layernorm.register_forward_hook(lambda m, i, o: captured.__setitem__("lhs", o.detach().clone())))
    # what the decoder receives must be exactly that tensor
    hooks.append(
        model.decoder.decoder_embed.register_forward_pre_hook(
            lambda m, i: captured.__setitem__("dec_in", i[0].detach().clone())
        )
    )
    for j, layer in enumerate(model.decoder.decoder_layers):
        def pre(m, args, kwargs, j=j):
            captured[f"dec_attn_in.{j}"] = args[0].detach().clone()

        def post(m, args, kwargs, output, j=j):
            captured[f"dec_attn.{j}"] = None if output[1] is None else output[1].detach().clone()

        hooks.append(layer.attention.register_forward_pre_hook(pre, with_kwargs=True))
        hooks.append(layer.attention.register_forward_hook(post, with_kwargs=True))
    try:
        with torch.no_grad():
            out = model(
                pixel_values=pixel_values,
                noise=noise,
                interpolate_pos_encoding=interpolate,
                output_attentions=True,
            )
    finally:
        for h in hooks:
            h.remove()

    logits, mask, ids_restore = out.logits, out.mask, out.ids_restore
    assert logits.shape == (1, L, p * p * 3)
    assert int(mask.sum().item()) == L - len_keep, (mask.sum(), L, len_keep)
    # mask / ids_restore are exactly what the noise implies
    ids_shuffle = torch.argsort(noise, dim=1)
    assert torch.equal(ids_restore, torch.argsort(ids_shuffle, dim=1))
    exp_mask = torch.ones(1, L)
    exp_mask[:, :len_keep] = 0
    assert torch.equal(mask, torch.gather(exp_mask, 1, ids_restore))

    lhs = captured["lhs"]
    assert lhs.shape == (1, n, cfg.hidden_size), lhs.shape
    assert torch.equal(lhs, captured["dec_in"])

    # encoder attentions from HF (shuffled token order)
    enc_att = out.attentions
    assert enc_att is not None and len(enc_att) == cfg.num_hidden_layers, "expected only encoder attentions"
    for a in enc_att:
        assert a.shape == (1, cfg.num_attention_heads, n, n), a.shape
        assert torch.allclose(a.sum(-1), torch.ones(()), atol=1e-5)

    # decoder attentions from the hooks: verify they are the softmax probabilities
    dh = cfg.decoder_num_attention_heads
    dec_att = []
    for j, layer in enumerate(model.decoder.decoder_layers):
        a = captured[f"dec_attn.{j}"]
        assert a is not None, "decoder attention weights are None: not eager?"
        assert a.shape == (1, dh, L + 1, L + 1), a.shape
        assert torch.allclose(a.sum(-1), torch.ones(()), atol=1e-5), "rows do not sum to 1"
        assert (a >= 0).all()
        x = captured[f"dec_attn_in.{j}"]
        att = layer.attention
        hd = att.head_dim
        with torch.no_grad():
            q = att.q_proj(x).view(1, L + 1, dh, hd).transpose(1, 2)
            k = att.k_proj(x).view(1, L + 1, dh, hd).transpose(1, 2)
            ref = torch.softmax((q @ k.transpose(2, 3)) * hd**-0.5, dim=-1)
        assert torch.allclose(a, ref, atol=1e-6, rtol=1e-5), (a - ref).abs().max()
        dec_att.append(a)

    # loss
    target = patchify(pixel_values, p)
    if cfg.norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)  # unbiased
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    patch_loss = ((logits - target) ** 2).mean(dim=-1)
    my_loss = (patch_loss * mask).sum() / mask.sum()
    hf_loss = out.loss
    if mask.sum() == 0:
        assert torch.isnan(hf_loss) and torch.isnan(my_loss)
    else:
        assert abs(hf_loss.item() - my_loss.item()) <= 1e-6 * max(1.0, abs(my_loss.item())), (hf_loss, my_loss)

    recon = model.unpatchify(logits, original_image_size=(H_, W_))
    assert torch.equal(patchify(recon, p), logits)

    tensors = OrderedDict()
    tensors["pixel_values"] = pixel_values.float()
    tensors["noise"] = noise.float()
    tensors["logits"] = logits
    tensors["mask"] = mask
    tensors["ids_restore"] = ids_restore.to(torch.int64)
    tensors["loss"] = hf_loss.reshape(())
    tensors["patch_loss"] = patch_loss
    tensors["last_hidden_state"] = lhs
    for i, a in enumerate(enc_att):
        tensors[f"encoder_attentions.{i}"] = a
    for j, a in enumerate(dec_att):
        tensors[f"decoder_attentions.{j}"] = a
    tensors["reconstruction"] = recon
    for k, v in tensors.items():
        if k != "ids_restore":
            assert v.dtype == torch.float32, k
    tensors = {k: v.detach().contiguous().clone() for k, v in tensors.items()}

    meta = dict(meta)
    meta["mask_ratio"] = fmt_ratio(ratio)
    meta["interpolate_pos_encoding"] = "true" if interpolate else "false"
    path.parent.mkdir(parents=True, exist_ok=True)
    H.save_safetensors(tensors, path, metadata=meta)

    # attention sharpness, to show weights are neither uniform nor one-hot
    enc_max = max(a.max(-1).values.mean().item() for a in enc_att)
    dec_max = max(a.max(-1).values.mean().item() for a in dec_att)
    return dict(
        L=L, len_keep=len_keep, loss=hf_loss.item(), enc_att_rowmax=enc_max, dec_att_rowmax=dec_max,
        lhs_std=lhs.std().item(), logits_std=logits.std().item(),
    )


def seeded_noise(seed: int, L: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(1, L)


def vit_image_processor():
    """The PIL-backed ViTImageProcessor (what ViTImageProcessor falls back to without torchvision).

    With torchvision installed, transformers 5.x's ``ViTImageProcessor`` would pick the torchvision backend,
    whose antialiased bilinear resize is NOT bit-identical to PIL's. We pin the PIL one (as the hub
    models' processors behaved in transformers 4.x) so the fixtures don't depend on what is installed.
    """
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil


def write_cases(out: Path, models: dict, images_dir: Path) -> dict:
    from transformers.image_utils import load_image

    ViTImageProcessor = vit_image_processor()

    cases_root = out / "cases"
    if cases_root.exists():
        shutil.rmtree(cases_root)
    summary = {}
    for name, (model, _sd, mdir) in models.items():
        cfg = model.config
        size = cfg.image_size
        L = (size // cfg.patch_size) ** 2
        default_ratio = MODELS[name]["config"]["mask_ratio"]

        def randn(case, h=size, w=size):
            g = torch.Generator().manual_seed(crc_seed(f"{name}/{case}"))
            return torch.randn(1, 3, h, w, generator=g)

        plan = []  # (case, pixel_values, noise, ratio, interpolate, meta)
        plan.append(("seed0", randn("seed0"), seeded_noise(0, L), default_ratio, False, {"seed": "0"}))
        plan.append(("seed2_r0.5", randn("seed2_r0.5"), seeded_noise(2, L), 0.5, False, {"seed": "2"}))
        if name != "tiny-p16":  # (size budget: tiny-p16 cases are the largest, skip the optional ones)
            # keep 1 (L=16) / 3 (L=36: 36 * 0.09999999999999998 = 3.5999999999999996)
            plan.append(("seed42_r0.9", randn("seed42_r0.9"), seeded_noise(42, L), 0.9, False, {"seed": "42"}))
        if name == "tiny-p8":
            # int(L * (1 - 0.6)): 16 * 0.4 = 6.4 -> 6 (the normpix model already runs at 0.6: 36 * 0.4 = 14.4 -> 14)
            plan.append(("seed7_r0.6", randn("seed7_r0.6"), seeded_noise(7, L), 0.6, False, {"seed": "7"}))
        g = torch.Generator().manual_seed(crc_seed(f"{name}/custom"))
        custom = (torch.randperm(L, generator=g).to(torch.float32) / L).reshape(1, L)  # distinct, in [0, 1)
        plan.append(("custom_noise", randn("custom_noise"), custom, default_ratio, False, {}))
        plan.append(("ratio0", randn("ratio0"), seeded_noise(1, L), 0.0, False, {"seed": "1"}))
        plan.append(("ratio1", randn("ratio1"), seeded_noise(3, L), 1.0, False, {"seed": "3"}))

        proc = ViTImageProcessor.from_pretrained(str(mdir))
        assert proc.size == {"height": size, "width": size} or dict(proc.size) == {"height": size, "width": size}
        assert list(proc.image_mean) == H.PREPROCESSOR_MEAN and list(proc.image_std) == H.PREPROCESSOR_STD
        img = load_image(str(images_dir / "chelsea.png"))
        pv = torch.from_numpy(np.asarray(proc(images=img, return_tensors="np")["pixel_values"])).float()
        assert pv.shape == (1, 3, size, size)
        plan.append(("chelsea", pv, seeded_noise(2, L), default_ratio, False, {"seed": "2", "image": "chelsea.png"}))

        interp = MODELS[name]["interp"]
        if interp is not None:
            h, w = interp
            Li = (h // cfg.patch_size) * (w // cfg.patch_size)
            plan.append(
                (f"interp_{h}x{w}", randn("interp", h, w), seeded_noise(5, Li), default_ratio, True, {"seed": "5"})
            )
            if name == "tiny-p8":
                # also a ratio where truncation matters on the new L: 24 * 0.4 = 9.6 -> 9
                plan.append(
                    (f"interp_{h}x{w}_r0.6", randn("interp_r0.6", h, w), seeded_noise(6, Li), 0.6, True, {"seed": "6"})
                )

        summary[name] = {}
        for case, pv, noise, ratio, interpolate, meta in plan:
            meta = dict(meta, model=name, case=case)
            stats = run_case(model, pv, noise, ratio, interpolate, meta, cases_root / name / f"{case}.safetensors")
            summary[name][case] = stats
            log(
                f"  {name}/{case}: L={stats['L']} keep={stats['len_keep']} loss={stats['loss']:.5f} "
                f"enc_rowmax={stats['enc_att_rowmax']:.3f} dec_rowmax={stats['dec_att_rowmax']:.3f} "
                f"lhs_std={stats['lhs_std']:.3f} logits_std={stats['logits_std']:.3f}"
            )
        model.config.mask_ratio = default_ratio
    return summary


# ============================================================================ the embedded demo model

# What the demo case keeps of run_case's outputs. All of them would be ~3.5 MB at 224 px (decoder attentions alone
# 197x197 per head and layer); these test the trained weights end to end, and the attention / reconstruction code
# paths are already covered by the tiny models' cases.
DEMO_CASE_TENSORS = ("noise", "mask", "ids_restore", "loss", "patch_loss", "logits", "last_hidden_state")


def write_demo_case(out: Path, images_dir: Path) -> None:
    """demo/chelsea.safetensors: transformers' outputs for assets/demo-model (``--model demo``) on chelsea.png."""
    from safetensors import safe_open
    from transformers import ViTMAEForPreTraining
    from transformers.image_utils import load_image

    mdir = REPO / "assets" / "demo-model"
    model, info = ViTMAEForPreTraining.from_pretrained(str(mdir), attn_implementation="eager", output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    model.eval()
    cfg = model.config
    L = (cfg.image_size // cfg.patch_size) ** 2
    proc = vit_image_processor().from_pretrained(str(mdir))
    pv = torch.from_numpy(np.asarray(proc(images=load_image(str(images_dir / "chelsea.png")), return_tensors="np")["pixel_values"])).float()
    assert pv.shape == (1, 3, cfg.image_size, cfg.image_size)
    demo_dir = out / "demo"
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    full = demo_dir / "full.safetensors"
    meta = {"seed": "2", "image": "chelsea.png", "model": "demo", "case": "chelsea"}
    stats = run_case(model, pv, seeded_noise(2, L), 0.75, False, meta, full)
    with safe_open(str(full), "pt") as f:
        metadata = f.metadata()
        tensors = OrderedDict(
            (k, f.get_tensor(k))
            for k in list(DEMO_CASE_TENSORS) + sorted(k for k in f.keys() if k.startswith("encoder_attentions."))
        )
    full.unlink()
    H.save_safetensors(tensors, demo_dir / "chelsea.safetensors", metadata=metadata)
    log(f"  demo/chelsea: L={stats['L']} keep={stats['len_keep']} loss={stats['loss']:.5f}")


# ============================================================================ seeds


def write_seeds(out: Path) -> None:
    tensors = {}
    for n in SEEDS:
        for L in SEED_LENS:
            torch.manual_seed(n)
            tensors[f"seed_{n}_len_{L}"] = torch.rand(1, L)
    # what torch does with seeds >= 2^32: the CPU MT19937 is seeded with the low 32 bits only
    same_7 = torch.equal(tensors[f"seed_{2**32 + 7}_len_1000"], seeded_noise(7, 1000))
    same_5 = torch.equal(tensors[f"seed_{2**63 + 5}_len_1000"], seeded_noise(5, 1000))
    assert same_7 and same_5, "torch no longer truncates seeds to 32 bits: update NOTES and the Rust side"
    torch.manual_seed(2**63 + 5)
    initial = torch.initial_seed()
    torch.manual_seed(-1)
    neg = torch.initial_seed()
    meta = {
        "generator": "torch.manual_seed(N); torch.rand(1, L) on CPU, torch " + torch.__version__,
        "seeds": ",".join(str(s) for s in SEEDS),
        "lens": ",".join(str(x) for x in SEED_LENS),
        "seed_truncation": (
            "torch seeds the CPU MT19937 with the low 32 bits of the 64-bit seed: seed 2**32+7 gives exactly "
            "the stream of seed 7 and 2**63+5 that of seed 5 (checked on L=1000); torch.initial_seed() still "
            f"reports the full value ({initial}). Seeds must be in [-2**63, 2**64-1]; a negative seed is "
            f"reinterpreted as uint64 (-1 -> {neg}); 2**64 raises."
        ),
    }
    H.save_safetensors(tensors, out / "seeds.safetensors", metadata=meta)
    log(f"seeds: {len(tensors)} tensors; 2**32+7 == 7: {same_7}; 2**63+5 == 5: {same_5}; -1 -> {neg}")


# ============================================================================ preprocessing


def base_rgb(w: int, h: int) -> np.ndarray:
    """Asymmetric gradient + shapes (so resize, orientation and channel errors all show)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * xx / (w - 1)
    g = 255 * yy / (h - 1)
    b = 255 * (0.5 + 0.5 * np.sin((xx + 2 * yy) / (w / 6)))
    img = np.stack([r, g, b], -1)
    im = Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    s = w / 80
    d.ellipse([6 * s, 5 * s, 28 * s, 27 * s], fill=(230, 30, 40))  # red disc, upper left
    d.rectangle([50 * s, 36 * s, 74 * s, 54 * s], fill=(250, 250, 250), outline=(0, 0, 0))  # white box, lower right
    d.line([0, h - 1, w * 0.6, 0], fill=(0, 0, 0), width=max(1, int(s)))  # black diagonal
    d.polygon([(60 * s, 4 * s), (76 * s, 4 * s), (76 * s, 22 * s)], fill=(20, 200, 60))  # green triangle, upper right
    a = np.asarray(im).copy()
    # 1-px checkerboard patch (aliasing / filter-support errors show here)
    cy, cx = int(36 * s), int(6 * s)
    blk = ((np.add.outer(np.arange(int(16 * s)), np.arange(int(16 * s))) % 2) * 255).astype(np.uint8)
    a[cy : cy + blk.shape[0], cx : cx + blk.shape[1], :] = blk[..., None]
    return a


def write_png_rgb16(path: Path, arr: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG, written by hand (PIL cannot write one)."""
    h, w, c = arr.shape
    assert c == 3 and arr.dtype == np.uint16
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    )


def jpeg_with_orientation(upright: Image.Image, orientation: int, path: Path) -> None:
    """Store pixels such that applying EXIF `orientation` yields `upright`."""
    if orientation == 6:  # viewer rotates 90 deg clockwise
        stored = upright.transpose(Image.Transpose.ROTATE_90)
    elif orientation == 3:
        stored = upright.transpose(Image.Transpose.ROTATE_180)
    else:
        raise ValueError(orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, "JPEG", quality=92, subsampling=0, exif=exif.tobytes())


def write_preprocess(out: Path, images_dir: Path) -> dict:
    from transformers.image_utils import load_image

    ViTImageProcessor = vit_image_processor()

    d = out / "preprocess"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    W, Hh = 80, 60
    rgb = base_rgb(W, Hh)
    im_rgb = Image.fromarray(rgb, "RGB")
    notes = {}

    # 8-bit grayscale
    Image.fromarray(np.asarray(im_rgb.convert("L")), "L").save(d / "gray8.png")
    notes["gray8.png"] = "PNG 8-bit grayscale (mode L); RGB = L replicated"

    # RGBA, varied alpha incl. fully transparent pixels that still carry colour
    yy, xx = np.mgrid[0:Hh, 0:W]
    alpha = (255 * xx / (W - 1)).astype(np.uint8)
    alpha[:, :8] = 0
    alpha[yy > 50] = 128
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(d / "rgba.png")
    notes["rgba.png"] = "PNG RGBA, alpha 0..255 (column 0-7 fully transparent): convert('RGB') drops alpha, no compositing"

    # LA
    la = np.dstack([np.asarray(im_rgb.convert("L")), 255 - alpha])
    Image.fromarray(la, "LA").save(d / "la.png")
    notes["la.png"] = "PNG grayscale+alpha (mode LA): alpha dropped, gray replicated"

    # 16-bit grayscale, values 0..~700 so part of it is <= 255 and part saturates
    g16 = (np.asarray(im_rgb.convert("L")).astype(np.float64) * 2.75 + 3 * xx).astype(np.uint16)
    g16[:4, :] = np.linspace(0, 65535, W).astype(np.uint16)  # top rows: full 16-bit range
    im16 = Image.fromarray(g16)
    assert im16.mode == "I;16"
    im16.save(d / "gray16.png")
    notes["gray16.png"] = (
        "PNG 16-bit grayscale, PIL mode I;16: convert('RGB') CLAMPS each value to 255 (min(v, 255)), it does not "
        "scale by 1/257; values here span 0..~700 (top 4 rows 0..65535), so most of the right side is white"
    )

    # 16-bit RGB: high bytes follow the image, low bytes are noise (so >>8 and /257 rounding differ)
    rng = np.random.default_rng(16)
    rgb16 = (rgb.astype(np.uint16) << 8) | rng.integers(0, 256, size=rgb.shape, dtype=np.uint16)
    write_png_rgb16(d / "rgb16.png", rgb16)
    notes["rgb16.png"] = (
        "PNG 16-bit RGB (hand-written, bit depth 16, colour type 2): PIL opens it as mode RGB via rawmode RGB;16B, "
        "i.e. keeps the HIGH byte of each sample (v >> 8, truncation, not round(v/257))"
    )

    # palette, with and without transparency
    pal = im_rgb.quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.save(d / "palette.png")
    notes["palette.png"] = "PNG palette (mode P, 16 colours, no transparency)"
    pal_t = pal.copy()
    trns = bytes([0, 64, 128, 200] + [255] * 12)
    pal_t.save(d / "palette_trns.png", transparency=trns)
    notes["palette_trns.png"] = (
        "PNG palette (mode P) with a tRNS chunk (entries 0-3 alpha 0/64/128/200): convert('RGB') ignores it and "
        "keeps the palette colour"
    )

    # JPEGs
    jpeg_with_orientation(im_rgb, 6, d / "exif6.jpg")
    notes["exif6.jpg"] = "JPEG (4:4:4) stored 60x80 with EXIF Orientation 6; displayed (after exif_transpose) 80x60"
    jpeg_with_orientation(im_rgb, 3, d / "exif3.jpg")
    notes["exif3.jpg"] = "JPEG (4:4:4) stored upside down with EXIF Orientation 3"
    im_rgb.save(d / "rgb.jpg", "JPEG", quality=90)  # default 4:2:0 chroma subsampling
    notes["rgb.jpg"] = "plain RGB JPEG, quality 90, 4:2:0 chroma subsampling (decoder upsampling differences show)"

    # a larger PNG so that the resize DOWN-scales (antialiased bilinear: support widens with the scale)
    Image.fromarray(base_rgb(320, 240), "RGB").save(d / "large.png", optimize=True)
    notes["large.png"] = "PNG RGB 320x240: downscaled to 224x224 (PIL's bilinear widens its support when shrinking)"

    # Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the
    # width (measured: see pil_resize_order below); each pass rounds to 8 bits, so the order shows. These greyscale
    # and colour PNGs shrink with one order each (a user's 8-bit greyscale photo of this shape differed from PIL by
    # one level on ~20% of the values while we always went horizontal first).
    Image.fromarray(np.asarray(Image.fromarray(base_rgb(300, 451), "RGB").convert("L")), "L").save(
        d / "gray8_tall.png", optimize=True
    )
    notes["gray8_tall.png"] = "PNG 8-bit grayscale 300x451 -> 224x224: Pillow 13 resizes vertically first"
    Image.fromarray(np.asarray(Image.fromarray(base_rgb(480, 360), "RGB").convert("L")), "L").save(
        d / "gray8_wide.png", optimize=True
    )
    notes["gray8_wide.png"] = "PNG 8-bit grayscale 480x360 -> 224x224: Pillow 13 resizes horizontally first"
    Image.fromarray(base_rgb(240, 400), "RGB").save(d / "tall.png", optimize=True)
    notes["tall.png"] = "PNG RGB 240x400 -> 224x224: vertical pass first, as for the greyscale one"

    # CMYK JPEG: PIL reads it as Adobe-inverted CMYK (raw mode CMYK;I) and convert('RGB') applies its own formula
    im_rgb.convert("CMYK").save(d / "cmyk.jpg", "JPEG", quality=90)
    notes["cmyk.jpg"] = "JPEG CMYK (Adobe marker, inverted): decoded to CMYK by libjpeg, converted as PIL converts"

    # verify the sources are what we claim
    def info(f):
        im = Image.open(d / f)
        return im.mode, im.size, im.tile[0].args if im.tile else None, im.info.get("transparency") is not None
    checks = {
        "gray8.png": ("L",), "rgba.png": ("RGBA",), "la.png": ("LA",), "gray16.png": ("I;16",),
        "rgb16.png": ("RGB",), "palette.png": ("P",), "palette_trns.png": ("P",), "exif6.jpg": ("RGB",),
        "exif3.jpg": ("RGB",), "rgb.jpg": ("RGB",), "large.png": ("RGB",), "gray8_tall.png": ("L",),
        "gray8_wide.png": ("L",), "tall.png": ("RGB",), "cmyk.jpg": ("CMYK",),
    }
    for f, (mode,) in checks.items():
        m, size, rawmode, has_t = info(f)
        assert m == mode, (f, m)
        assert (d / f).stat().st_size < 60_000, f
    assert info("rgb16.png")[2] == "RGB;16B", info("rgb16.png")  # really read from 16-bit samples
    assert info("gray16.png")[2] == "I;16B", info("gray16.png")
    assert info("palette_trns.png")[3] and not info("palette.png")[3]
    assert Image.open(d / "exif6.jpg").getexif().get(0x0112) == 6
    assert Image.open(d / "exif6.jpg").size == (Hh, W)
    assert Image.open(d / "exif3.jpg").getexif().get(0x0112) == 3

    # PIL conversion facts checked, not assumed
    g = np.asarray(load_image(str(d / "gray16.png")))
    assert np.array_equal(g[..., 0], np.minimum(g16, 255).astype(np.uint8)), "I;16 -> RGB is no longer a clamp"
    c = np.asarray(load_image(str(d / "rgb16.png")))
    assert np.array_equal(c, (rgb16 >> 8).astype(np.uint8)), "16-bit RGB is no longer the high byte"
    assert np.array_equal(np.asarray(load_image(str(d / "rgba.png"))), rgb)  # alpha dropped, no compositing
    assert load_image(str(d / "exif6.jpg")).size == (W, Hh)

    def pil_resize_order(img: Image.Image, size: tuple) -> str:
        """Which single-pass composition equals PIL's own resize ("H" or "V" first; "both" when they agree)."""
        (iw, ih), (ow, oh) = img.size, size
        direct = np.asarray(img.resize(size, Image.Resampling.BILINEAR))
        h = np.asarray(img.resize((ow, ih), Image.Resampling.BILINEAR).resize(size, Image.Resampling.BILINEAR))
        v = np.asarray(img.resize((iw, oh), Image.Resampling.BILINEAR).resize(size, Image.Resampling.BILINEAR))
        h_ok, v_ok = np.array_equal(direct, h), np.array_equal(direct, v)
        assert h_ok or v_ok, "PIL's resize is neither pass order: pil_resize.rs needs another look"
        return "both" if h_ok and v_ok else "H" if h_ok else "V"

    def rule(iw, ih, ow, oh):  # the rule model/src/pil_resize.rs implements
        return "V" if oh < ih and ih - oh > 2 * max(iw - ow, 0) else "H"

    order_rng = np.random.default_rng(13)
    for _ in range(200):
        iw, ih, ow, oh = (int(v) for v in order_rng.integers(5, 400, 4))
        noise = Image.fromarray(order_rng.integers(0, 256, (ih, iw), dtype=np.uint8), "L")
        found = pil_resize_order(noise, (ow, oh))
        assert found in ("both", rule(iw, ih, ow, oh)), (iw, ih, ow, oh, found)
    for f, expected in [("gray8_tall.png", "V"), ("tall.png", "V"), ("gray8_wide.png", "H"), ("large.png", "H")]:
        assert pil_resize_order(load_image(str(d / f)), (224, 224)) == expected, f

    proc_u8 = ViTImageProcessor(
        do_resize=True, size={"height": 224, "width": 224}, resample=2, do_rescale=False, do_normalize=False
    )

    def resized(path: Path) -> torch.Tensor:
        img = load_image(str(path))
        pv = np.asarray(proc_u8(images=img, return_tensors="np")["pixel_values"])[0]  # [3,224,224]
        assert pv.shape == (3, 224, 224)
        r = np.round(pv.astype(np.float64))
        assert np.abs(pv - r).max() == 0 and r.min() >= 0 and r.max() <= 255  # PIL output is integral
        # cross-check: exactly PIL's own resize
        direct = np.asarray(img.resize((224, 224), Image.Resampling.BILINEAR))
        assert np.array_equal(direct, r.transpose(1, 2, 0).astype(np.uint8))
        return torch.from_numpy(r.transpose(1, 2, 0).astype(np.uint8).copy())

    tensors = {}
    for f in sorted(checks):
        tensors[f] = resized(d / f)
        # (lossless PNGs that exist for their resize: decoding them is not the interesting part; saves ~1.4 MB)
        if f not in ("large.png", "gray8_tall.png", "gray8_wide.png", "tall.png"):
            tensors[f"decoded.{f}"] = torch.from_numpy(np.asarray(load_image(str(d / f))).copy())
    tensors["resized.chelsea"] = resized(images_dir / "chelsea.png")
    tensors["resized.rocket"] = resized(images_dir / "rocket.jpg")
    proc = ViTImageProcessor(
        do_resize=True, size={"height": 224, "width": 224}, resample=2, do_rescale=True, rescale_factor=1 / 255,
        do_normalize=True, image_mean=H.PREPROCESSOR_MEAN, image_std=H.PREPROCESSOR_STD,
    )
    pv = np.asarray(proc(images=load_image(str(images_dir / "chelsea.png")), return_tensors="np")["pixel_values"])
    assert pv.dtype == np.float32 and pv.shape == (1, 3, 224, 224)
    # the exact arithmetic: f32(u8 * (1/255) in f64), then (x - f32 mean) / f32 std in f32
    u8 = tensors["resized.chelsea"].numpy().transpose(2, 0, 1).astype(np.float64)
    mine = ((u8 * (1 / 255)).astype(np.float32) - np.array(H.PREPROCESSOR_MEAN, np.float32)[:, None, None]) / np.array(
        H.PREPROCESSOR_STD, np.float32
    )[:, None, None]
    assert np.array_equal(mine[None], pv), np.abs(mine[None] - pv).max()
    tensors["pixel_values.chelsea"] = torch.from_numpy(pv.copy())

    meta = {
        "about": (
            "Tensor F (uint8 [224,224,3]) = transformers.image_utils.load_image(F) (exif_transpose + convert('RGB')) "
            "resized by ViTImageProcessor to 224x224, resample=2 (PIL BILINEAR), do_rescale/do_normalize off. "
            "decoded.F = load_image(F) before resizing (uint8 [h,w,3]). resized.chelsea/resized.rocket: same for "
            "shared/images/chelsea.png and rocket.jpg (not copied here). pixel_values.chelsea: the default "
            "vit-mae processor output (f32 [1,3,224,224])."
        ),
        "pillow": Image.__version__ if hasattr(Image, "__version__") else __import__("PIL").__version__,
        "transformers": __import__("transformers").__version__,
    }
    meta.update({f"note.{k}": v for k, v in notes.items()})
    H.save_safetensors(tensors, d / "expected.safetensors", metadata=meta)
    log(f"preprocess: {len(checks)} source images, {len(tensors)} expected tensors")
    return notes


# ============================================================================ other checkpoint formats


def timm_ordered(hub: dict, cfg) -> OrderedDict:
    """State dict in the order models_mae.MaskedAutoencoderViT.state_dict() produces."""
    t = H.hub_to_timm(hub)
    order = ["cls_token", "pos_embed", "mask_token", "decoder_pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    sub = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]
    for i in range(cfg.num_hidden_layers):
        order += [f"blocks.{i}.{s}.{k}" for s in sub for k in ("weight", "bias")]
    order += ["norm.weight", "norm.bias", "decoder_embed.weight", "decoder_embed.bias"]
    for j in range(cfg.decoder_num_hidden_layers):
        order += [f"decoder_blocks.{j}.{s}.{k}" for s in sub for k in ("weight", "bias")]
    order += ["decoder_norm.weight", "decoder_norm.bias", "decoder_pred.weight", "decoder_pred.bias"]
    assert sorted(order) == sorted(t), set(order) ^ set(t)
    return OrderedDict((k, t[k]) for k in order)


class _Evil:
    """Pickles to a REDUCE of os.system: a loader that executes pickles would run the command."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/mae_evil_marker",))


def write_other_formats(out: Path, models: dict) -> None:
    model, hub, src = models["tiny-p8"]
    cfg = model.config

    # pytorch_model.bin: hub layout, torch.save default (zip)
    d = out / "models" / "tiny-p8-bin"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for f in ("config.json", "preprocessor_config.json"):
        shutil.copy(src / f, d / f)
    torch.save(OrderedDict((k, v.clone()) for k, v in hub.items()), d / "pytorch_model.bin")
    assert zipfile.is_zipfile(d / "pytorch_model.bin")
    H.load_and_verify(d, hub)
    log("tiny-p8-bin: pytorch_model.bin reloads through from_pretrained with identical tensors")

    # original facebookresearch/mae layout
    d = out / "models" / "tiny-p8-pth"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for f in ("config.json", "preprocessor_config.json"):
        shutil.copy(src / f, d / f)
    timm = timm_ordered(hub, cfg)
    torch.save({"model": timm}, d / "mae_tiny.pth")
    back = torch.load(d / "mae_tiny.pth", weights_only=True, map_location="cpu")
    assert list(back) == ["model"]
    rt = H.timm_to_hub(back["model"])
    assert set(rt) == set(hub) and all(torch.equal(rt[k], hub[k]) for k in hub)
    D = cfg.hidden_size
    q = hub["vit.encoder.layer.0.attention.attention.query.weight"]
    assert torch.equal(back["model"]["blocks.0.attn.qkv.weight"][:D], q)
    log(f"tiny-p8-pth: mae_tiny.pth ({len(timm)} timm tensors) maps back to the hub tensors exactly")

    # pytorch_model.bin with deflate-compressed entries: torch.save never writes them, but torch.load reads them
    # (a checkpoint re-zipped by another tool), so a loader must too.
    d = out / "models" / "tiny-p8-bin-deflated"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for f in ("config.json", "preprocessor_config.json"):
        shutil.copy(src / f, d / f)
    with zipfile.ZipFile(out / "models" / "tiny-p8-bin" / "pytorch_model.bin") as stored, zipfile.ZipFile(
        d / "pytorch_model.bin", "w"
    ) as deflated:
        for info in stored.infolist():
            assert info.compress_type == zipfile.ZIP_STORED, info
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            deflated.writestr(copy, stored.read(info), compress_type=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(d / "pytorch_model.bin") as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    back = torch.load(d / "pytorch_model.bin", weights_only=True, map_location="cpu")
    assert set(back) == set(hub) and all(torch.equal(back[k], hub[k]) for k in hub)
    log("tiny-p8-bin-deflated: every entry deflated; torch.load reads the same tensors")

    # bad files (bad/ also holds tools/make_bad_inputs.py's corpus: only this script's own files are replaced)
    b = out / "bad"
    b.mkdir(parents=True, exist_ok=True)
    junk = np.random.default_rng(1234).bytes(1024)
    assert not junk.startswith(b"PK") and not junk.startswith(b"\x80")
    (b / "not_a_zip.pth").write_bytes(junk)
    torch.save({"model": {"x": 3, "y": "hello"}}, b / "non_tensor.pth")
    t = OrderedDict(timm)
    del t["blocks.0.attn.qkv.weight"]
    torch.save({"model": t}, b / "missing_key.pth")
    t = OrderedDict(timm)
    t["norm.weight"] = torch.ones(D + 3)
    torch.save({"model": t}, b / "wrong_shape.pth")
    marker = Path("/tmp/mae_evil_marker")
    if marker.exists():
        marker.unlink()
    torch.save({"model": {"cls_token": timm["cls_token"], "payload": _Evil()}}, b / "evil.pth")
    with zipfile.ZipFile(b / "evil.pth") as z:
        pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
        ops = io.StringIO()
        pickletools.dis(z.read(pkl[0]), out=ops)
    dis = ops.getvalue()
    assert "posix" in dis and "system" in dis and "REDUCE" in dis, dis
    try:
        torch.load(b / "evil.pth", weights_only=True)
    except Exception as e:  # UnpicklingError
        log(f"bad/evil.pth: refused by torch.load(weights_only=True): {type(e).__name__}")
    else:
        raise AssertionError("weights_only load accepted evil.pth")
    assert not marker.exists(), "the payload ran during generation"
    for f in ("non_tensor.pth", "missing_key.pth", "wrong_shape.pth"):
        torch.load(b / f, weights_only=True)  # loadable by a safe unpickler, wrong in content
    log("bad/: not_a_zip, non_tensor, missing_key, wrong_shape, evil written")


# ============================================================================ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures"))
    ap.add_argument("--images", default="/work/shared/images", help="folder with chelsea.png and rocket.jpg")
    args = ap.parse_args()
    out = Path(args.out)
    images = Path(args.images)
    for f in ("chelsea.png", "rocket.jpg"):
        if not (images / f).is_file():
            sys.exit(f"missing {images / f} (use --images DIR)")
    torch.set_num_threads(1)  # same reduction order on any machine
    torch.use_deterministic_algorithms(True)
    out.mkdir(parents=True, exist_ok=True)

    models = write_models(out)
    self_test_verifier(out, models["tiny-p8"][1])
    write_cases(out, models, images)
    write_seeds(out)
    write_preprocess(out, images)
    write_demo_case(out, images)
    write_other_formats(out, models)

    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log(f"total fixture size: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
