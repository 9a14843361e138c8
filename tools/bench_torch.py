#!/usr/bin/env python3
"""Time Hugging Face ViTMAEForPreTraining on the CPU or a CUDA GPU (the reference for `mae-explorer bench`).

    python tools/bench_torch.py --make-base /tmp/mae-base-random [--torch-only]   # write a random vit-mae-base, exit
    python tools/bench_torch.py --make-base /tmp/mae-huge-random --shape huge     # -large / -huge shapes (torch only)
    python tools/bench_torch.py --model DIR [--runs 20] [--warmup 3] [--threads 2] [--mask-ratio 0.75]
                                [--device cpu|cuda] [--dtype f32|f16|bf16] [--batch N] [--modes eager,sdpa]
                                [--matmul]
    python tools/bench_torch.py --shapes [--model DIR | --shape base|large|huge] [--mask-ratio R] [--batch N]

Batch N (default 1), random normal pixel values of the config's size, noise from
torch.manual_seed(0); torch.rand(N, L) (`mae-explorer bench --batch N` masks image i with seed i instead: the
same count, so the same work). Modes: eager (output_attentions=True), eager-noatt (eager, attentions off) and
sdpa (attentions off). --matmul also times torch's own 2048x2048x2048 f32 matmul on the same threads and prints
its GFLOP/s, this machine's practical peak.
On CUDA the model and inputs are moved to the GPU in --dtype, TF32 is switched off for f32 (matmuls and the
patch-embedding convolution: f32 means f32, as in our binary), and every timed forward is bracketed by
torch.cuda.synchronize(). Prints, one per mode:

    torch eager median_ms=311.2 min_ms=300.1 runs=20 threads=2 device=cpu dtype=f32  (output_attentions=True)
    torch sdpa median_ms=264.0 min_ms=255.3 runs=20 threads=2 device=cpu dtype=f32   (attentions off)

--shapes times torch's F.linear at every distinct linear product of one forward pass (the model's config, or a
hub shape without --model; at --mask-ratio and --batch; best of 10 after 3 warm-ups in a second pass over the list, on --threads), printing each
the way `mae-explorer bench --shapes` does, so the two can be set side by side:

    shape=50x2304x768 gflops=224.1 what=encoder-q/k/v

--torch-only writes the random model without transformers (hub names written directly), for a transformers
whose in-memory parameter names hub_layout.hub_key does not know; it is then checked to load completely.

plus `torch load+first_forward_s=...` (from_pretrained + first forward, imports excluded; the
import time is printed beside it) and the peak RSS at the end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

T_START = time.perf_counter()

sys.path.insert(0, str(Path(__file__).resolve().parent))


DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


# The encoders of facebook/vit-mae-large and -huge (their config.json files); the decoder is the same in all three.
SHAPES = {
    "base": {},
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "huge": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, intermediate_size=5120, patch_size=14),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (config.json + model.safetensors)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mask-ratio", type=float, default=0.75)
    ap.add_argument("--make-base", metavar="DIR", help="write a vit-mae-base-shaped random model to DIR and exit")
    ap.add_argument("--modes", default="eager,sdpa", help="comma-separated subset of eager,eager-noatt,sdpa")
    ap.add_argument("--batch", type=int, default=1, help="images per forward pass")
    ap.add_argument("--matmul", action="store_true", help="also time a 2048^3 f32 matmul (GFLOP/s)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    ap.add_argument("--torch-only", action="store_true", help="with --make-base: write without transformers")
    ap.add_argument("--shapes", action="store_true", help="time F.linear at each linear product of a forward pass")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="base",
                    help="with --make-base: vit-mae-base, -large or -huge shapes (large and huge imply --torch-only)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    if args.make_base:
        import hub_layout as H

        t = time.perf_counter()
        if args.torch_only or args.shape != "base":
            H.write_random_hub_model_torch_only(args.make_base, seed=0, **SHAPES[args.shape])
            out = Path(args.make_base)
            H.check_loads_completely(out)
            how = "written without transformers, loads with no missing/unexpected key"
        else:
            out = H.make_base(args.make_base, seed=0, verify=True)
            how = "verified by reloading"
        size = sum(p.stat().st_size for p in out.iterdir())
        print(f"wrote {out} ({size / 1e6:.1f} MB, hub layout, {how}) in {time.perf_counter() - t:.1f} s")
        return
    if args.shapes:
        time_linear_products(args)
        return
    if args.device == "cuda":
        if not torch.cuda.is_available():
            ap.error("--device cuda: torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    dtype = getattr(torch, DTYPES[args.dtype])
    if args.device == "cpu" and args.dtype != "f32":
        ap.error("--dtype f16/bf16 only with --device cuda")
    if not args.model:
        ap.error("--model DIR is required (or --make-base DIR)")
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    if args.batch < 1:
        ap.error("--batch must be >= 1")

    from transformers import ViTMAEForPreTraining
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import_s = time.perf_counter() - T_START

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("eager", "eager-noatt", "sdpa"):
            ap.error(f"unknown mode {m}")

    ref_logits = None
    for i, mode in enumerate(modes):
        t0 = time.perf_counter()
        implementation = "eager" if mode.startswith("eager") else mode
        model = ViTMAEForPreTraining.from_pretrained(args.model, attn_implementation=implementation)
        model.to(device=device, dtype=dtype)
        model.eval()
        cfg = model.config
        assert cfg._attn_implementation == implementation
        assert model.decoder.config._attn_implementation == implementation
        cfg.mask_ratio = args.mask_ratio
        size, p = cfg.image_size, cfg.patch_size
        L = (size // p) ** 2
        pixel_values = torch.randn(args.batch, 3, size, size, generator=torch.Generator().manual_seed(1))
        pixel_values = pixel_values.to(device=device, dtype=dtype)
        torch.manual_seed(0)
        noise = torch.rand(args.batch, L).to(device)
        want_att = mode == "eager"

        def forward():
            with torch.inference_mode():
                out = model(pixel_values=pixel_values, noise=noise, output_attentions=want_att)
            synchronize()
            return out

        def synchronize():
            if args.device == "cuda":
                torch.cuda.synchronize()

        out = forward()
        first_s = time.perf_counter() - t0
        if i == 0:
            print(
                f"torch load+first_forward_s={first_s:.2f} import_s={import_s:.2f} "
                f"import+load+first_forward_s={import_s + first_s:.2f} mode={mode}",
                flush=True,
            )
        if want_att:
            assert out.attentions is not None and len(out.attentions) == cfg.num_hidden_layers
        if ref_logits is None:
            ref_logits = out.logits
        else:
            diff = (out.logits - ref_logits).abs().max().item()
            limit = 1e-3 if args.dtype == "f32" else 0.1
            assert diff < limit, f"{mode} logits differ from {modes[0]} by {diff}"

        for _ in range(max(0, args.warmup)):
            forward()
        times = []
        for _ in range(args.runs):
            synchronize()
            t = time.perf_counter()
            forward()
            times.append((time.perf_counter() - t) * 1000)
        print(
            f"torch {mode} median_ms={statistics.median(times):.3f} min_ms={min(times):.3f} "
            f"runs={args.runs} threads={torch.get_num_threads()} device={args.device} dtype={args.dtype} "
            f"batch={args.batch} images_per_s={args.batch * 1000 / statistics.median(times):.3f}",
            flush=True,
        )
        del model, out

    if args.matmul:
        print(f"torch matmul_2048_gflops={matmul_gflops(args.runs, device):.1f} threads={torch.get_num_threads()}")
    print(f"torch peak_rss_mb={peak_rss_mb():.0f}", flush=True)


def linear_products(cfg: dict, len_keep: int, batch: int) -> list[tuple[int, int, int, str]]:
    """The distinct linear products of one forward pass, as MaeConfig::linear_products lists them (M, N, K)."""
    d, dd = cfg["hidden_size"], cfg["decoder_hidden_size"]
    patches = (cfg["image_size"] // cfg["patch_size"]) ** 2
    encoder_rows, decoder_rows = batch * (len_keep + 1), batch * (patches + 1)
    patch_dim = cfg["num_channels"] * cfg["patch_size"] ** 2
    every = [
        (batch * len_keep, d, patch_dim, "patch embedding"),
        (encoder_rows, 3 * d, d, "encoder q/k/v"),
        (encoder_rows, d, d, "encoder out-projection"),
        (encoder_rows, cfg["intermediate_size"], d, "encoder MLP up"),
        (encoder_rows, d, cfg["intermediate_size"], "encoder MLP down"),
        (encoder_rows, dd, d, "decoder embedding"),
        (decoder_rows, 3 * dd, dd, "decoder q/k/v"),
        (decoder_rows, dd, dd, "decoder out-projection"),
        (decoder_rows, cfg["decoder_intermediate_size"], dd, "decoder MLP up"),
        (decoder_rows, dd, cfg["decoder_intermediate_size"], "decoder MLP down"),
        (decoder_rows, patch_dim, dd, "decoder prediction"),
    ]
    products = []
    for m, n, k, what in every:
        if m > 0 and all((m, n, k) != p[:3] for p in products):
            products.append((m, n, k, what))
    return products


def time_linear_products(args) -> None:
    """`--shapes`: F.linear at each product, best of 10 after 3 warm-ups in a second pass over the list, as
    `bench --shapes` times its own."""
    import json

    import torch
    import torch.nn.functional as F

    defaults = dict(hidden_size=768, intermediate_size=3072, decoder_hidden_size=512, decoder_intermediate_size=2048,
                    image_size=224, patch_size=16, num_channels=3)
    cfg = dict(defaults, **SHAPES[args.shape])
    if args.model:
        cfg.update({k: v for k, v in json.loads((Path(args.model) / "config.json").read_text()).items() if k in cfg})
    patches = (cfg["image_size"] // cfg["patch_size"]) ** 2
    len_keep = int(patches * (1 - args.mask_ratio))
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    # Two passes over the list, the second printed, as `bench --shapes` does (the first takes start-up costs).
    for timed_pass in (False, True):
        for m, n, k, what in linear_products(cfg, len_keep, args.batch):
            x = torch.randn(m, k, generator=generator).to(device)
            weight = torch.randn(n, k, generator=generator).to(device)
            bias = torch.randn(n, generator=generator).to(device)
            best = float("inf")
            with torch.inference_mode():
                for run in range(3 + 10):
                    t = time.perf_counter()
                    F.linear(x, weight, bias)
                    if args.device == "cuda":
                        torch.cuda.synchronize()
                    if run >= 3:
                        best = min(best, time.perf_counter() - t)
            if timed_pass:
                print(f"shape={m}x{n}x{k} gflops={2 * m * n * k / best / 1e9:.1f} what={what.replace(' ', '-')}",
                      flush=True)


def matmul_gflops(runs: int, device) -> float:
    """Median GFLOP/s of torch's own 2048x2048x2048 f32 matmul (2 * 2048^3 flops), after one warm-up."""
    import torch

    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    times = []
    for i in range(runs + 1):
        t = time.perf_counter()
        (a @ b).sum().item()
        if i > 0:
            times.append(time.perf_counter() - t)
    return 2 * 2048**3 / statistics.median(times) / 1e9


if __name__ == "__main__":
    main()
