#!/usr/bin/env python3
"""Time Hugging Face ViTMAEForPreTraining on the CPU or a CUDA GPU (the reference for `mae-explorer bench`).

    python tools/bench_torch.py --make-base /tmp/mae-base-random [--torch-only]   # write a random vit-mae-base, exit
    python tools/bench_torch.py --model DIR [--runs 20] [--warmup 3] [--threads 2] [--mask-ratio 0.75]
                                [--device cpu|cuda] [--dtype f32|f16|bf16]

Batch 1, random normal pixel values of the config's size, noise from torch.manual_seed(0); torch.rand(1, L).
On CUDA the model and inputs are moved to the GPU in --dtype, TF32 is switched off for f32 (matmuls and the
patch-embedding convolution: f32 means f32, as in our binary), and every timed forward is bracketed by
torch.cuda.synchronize(). Prints, one per mode:

    torch eager median_ms=311.2 min_ms=300.1 runs=20 threads=2 device=cpu dtype=f32  (output_attentions=True)
    torch sdpa median_ms=264.0 min_ms=255.3 runs=20 threads=2 device=cpu dtype=f32   (attentions off)

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (config.json + model.safetensors)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mask-ratio", type=float, default=0.75)
    ap.add_argument("--make-base", metavar="DIR", help="write a vit-mae-base-shaped random model to DIR and exit")
    ap.add_argument("--modes", default="eager,sdpa", help="comma-separated subset of eager,sdpa")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    ap.add_argument("--torch-only", action="store_true", help="with --make-base: write without transformers")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    if args.make_base:
        import hub_layout as H

        t = time.perf_counter()
        if args.torch_only:
            H.write_random_hub_model_torch_only(args.make_base, seed=0)
            out = Path(args.make_base)
            H.check_loads_completely(out)
            how = "written without transformers, loads with no missing/unexpected key"
        else:
            out = H.make_base(args.make_base, seed=0, verify=True)
            how = "verified by reloading"
        size = sum(p.stat().st_size for p in out.iterdir())
        print(f"wrote {out} ({size / 1e6:.1f} MB, hub layout, {how}) in {time.perf_counter() - t:.1f} s")
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

    from transformers import ViTMAEForPreTraining
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import_s = time.perf_counter() - T_START

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("eager", "sdpa"):
            ap.error(f"unknown mode {m}")

    ref_logits = None
    for i, mode in enumerate(modes):
        t0 = time.perf_counter()
        model = ViTMAEForPreTraining.from_pretrained(args.model, attn_implementation=mode)
        model.to(device=device, dtype=dtype)
        model.eval()
        cfg = model.config
        assert cfg._attn_implementation == mode and model.decoder.config._attn_implementation == mode
        cfg.mask_ratio = args.mask_ratio
        size, p = cfg.image_size, cfg.patch_size
        L = (size // p) ** 2
        pixel_values = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
        pixel_values = pixel_values.to(device=device, dtype=dtype)
        torch.manual_seed(0)
        noise = torch.rand(1, L).to(device)
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
            f"runs={args.runs} threads={torch.get_num_threads()} device={args.device} dtype={args.dtype}",
            flush=True,
        )
        del model, out

    print(f"torch peak_rss_mb={peak_rss_mb():.0f}", flush=True)


if __name__ == "__main__":
    main()
