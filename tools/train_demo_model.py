"""Train the small ViTMAE that MAE Explorer embeds as ``--model demo`` (CPU, reproducible).

    tools/.venv/bin/python tools/train_demo_model.py [--out assets/demo-model]

Data: only photos whose licence lets us redistribute a model trained on them (public domain / CC0),
taken from the data folder that ships inside the scikit-image wheel pinned in requirements.txt (each
file's licence is quoted in TRAIN_IMAGES below, from skimage/data/_fetchers.py's docstrings; files
whose docstring states no licence, or only "no known copyright restrictions", are not used). Every
file is checked against its SHA-256 so a different package version cannot silently change the data.

Held out (never trained on) and used to report the held-out loss and the in-painter ratio:
chelsea.png (the app's embedded sample, so the app's reconstruction test is honest), rocket.jpg (a
photo the Rust fixtures use) and camera.png; plus, for evaluation only, matplotlib's sample photo
grace_hopper.jpg (a U.S. Navy photograph; never trained on, not redistributed).

Training: random-resized crops (area 10-100 %, aspect 1:2-2:1, because the processor squashes any
image to a square), horizontal flips, mild colour jitter; a mask ratio drawn per batch from
U(0.4, 0.9) so the app's ratio slider looks sensible over its range; ``norm_pix_loss`` off so the
logits are viewable pixels; AdamW with warm-up and cosine decay. Everything random comes from seeded
generators, torch runs on a fixed number of threads with deterministic algorithms: the same versions
on the same kind of CPU give the same weights.

The bar (issue 10): on photos the model never saw, the masked loss at ratio 0.75 (the app's "seed N"
masks, ``torch.manual_seed(N); torch.rand(1, L)``) must be at most 0.75x that of a trivial in-painter
that fills every masked patch with the mean colour of the visible patches, in the same normalized pixel
space the loss uses. The script prints both, per image and averaged, and with ``--report FILE`` writes them
and the training log as JSON (the committed run: tools/demo_model_training.json).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

# Two threads share two cores with other jobs (builds): OpenMP's default busy-wait then burns the CPU time it waits
# for. Passive waiting changes no result, only the speed; it must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hub_layout as H  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# file -> (sha256, licence as skimage 0.26.0's data docstrings state it)
TRAIN_IMAGES = {
    "astronaut.png": (
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "public domain (NASA; 'No known copyright restrictions, released into the public domain')",
    ),
    "coffee.png": (
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "CC0 (photographer Rachel Michetti)",
    ),
    "hubble_deep_field.jpg": (
        "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
        "public domain (NASA)",
    ),
    "retina.jpg": (
        "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
        "CC0 1.0 (Wikimedia Commons, Fundus photograph of normal left eye)",
    ),
    "brick.png": ("7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf", "CC0 (CC0Textures Bricks25)"),
    "grass.png": ("b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89", "CC0 (DeviantArt linolafett, Grass-01)"),
    "gravel.png": ("c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12", "CC0 (CC0Textures Gravel04)"),
    "cell.png": ("8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515", "CC0 ('dedicated to the public domain')"),
    "clock_motion.png": ("f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955", "public domain (photographer Stefan van der Walt)"),
}
HELD_OUT_IMAGES = {
    "chelsea.png": ("596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb", "CC0 (photographer Stefan van der Walt)"),
    "rocket.jpg": ("c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c", "public domain (SpaceX)"),
    "camera.png": ("b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a", "CC0 (photographer Lav Varshney)"),
}
# evaluation only (not trained on, not redistributed): matplotlib's sample photo
EXTRA_EVAL_IMAGES = {
    "grace_hopper.jpg": ("a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130", "U.S. Navy photograph (public domain as a work of the U.S. federal government)"),
}


def package_dir(package: str, sub: str) -> Path:
    """The data folder of an installed package, found without importing it (scikit-image and matplotlib are
    installed --no-deps only for their data files)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{package} is not installed: tools/.venv/bin/pip install --no-deps -r tools/requirements.txt")
    return Path(list(spec.submodule_search_locations)[0]) / sub


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_file(path: Path, expected: str) -> None:
    if not path.is_file():
        sys.exit(f"missing data file {path}: install the versions pinned in tools/requirements.txt")
    got = sha256(path)
    if expected and got != expected:
        sys.exit(f"{path}: SHA-256 {got} differs from the pinned {expected}; install the pinned package version")


def load_rgb(path: Path) -> Image.Image:
    """As transformers' load_image does: EXIF orientation, then PIL's convert('RGB')."""
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def shrink(im: Image.Image, short_side: int) -> Image.Image:
    """Large photos are reduced once up front (antialiased), so that cropping stays cheap: a 10 % crop of the
    result still has about the model's input resolution."""
    scale = short_side / min(im.size)
    if scale >= 1.0:
        return im
    return im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)


# ============================================================================ augmentation


def uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def random_resized_crop(img: Image.Image, g: torch.Generator, size: int, area=(0.1, 1.0), aspect=(0.5, 2.0)):
    """torchvision's RandomResizedCrop, written out (torchvision must not be installed, see README); PIL crops and
    resizes in one antialiased pass (``box``), much faster than torch on single images."""
    w, h = img.size
    for _ in range(10):
        target_area = h * w * uniform(g, *area)
        ratio = math.exp(uniform(g, math.log(aspect[0]), math.log(aspect[1])))
        cw = int(round(math.sqrt(target_area * ratio)))
        ch = int(round(math.sqrt(target_area / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=g))
            left = int(torch.randint(0, w - cw + 1, (), generator=g))
            break
    else:  # whole image
        top, left, ch, cw = 0, 0, h, w
    return img.resize((size, size), Image.BILINEAR, box=(left, top, left + cw, top + ch))


def colour_jitter(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Saturation, contrast and brightness factors drawn per image; x is [B, 3, H, W] in [0, 1]."""
    b = x.shape[0]

    def factors(lo, hi):
        return (lo + (hi - lo) * torch.rand(b, generator=g)).view(b, 1, 1, 1)

    grey = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]
    x = grey + (x - grey) * factors(0.6, 1.4)  # saturation
    m = grey.mean(dim=(1, 2, 3), keepdim=True)
    x = m + (x - m) * factors(0.8, 1.2)  # contrast
    x = x * factors(0.8, 1.2)  # brightness
    return x.clamp(0.0, 1.0)


def make_batch(images: list[Image.Image], g: torch.Generator, batch: int, size: int) -> torch.Tensor:
    """Normalized [B, 3, size, size]: random image, random-resized crop, horizontal flip (p 0.5), colour jitter."""
    crops = []
    for _ in range(batch):
        crop = random_resized_crop(images[int(torch.randint(0, len(images), (), generator=g))], g, size)
        if torch.rand((), generator=g).item() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crops.append(np.asarray(crop, dtype=np.uint8))
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    x = colour_jitter(x, g)
    mean = torch.tensor(H.PREPROCESSOR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(H.PREPROCESSOR_STD).view(1, 3, 1, 1)
    return (x - mean) / std


# ============================================================================ evaluation


def patchify(pixel_values: torch.Tensor, p: int) -> torch.Tensor:
    b, c, h, w = pixel_values.shape
    x = pixel_values.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def mean_colour_loss(pixel_values: torch.Tensor, mask: torch.Tensor, p: int) -> float:
    """Masked loss of the trivial in-painter: every masked patch = the mean colour of the visible patches."""
    target = patchify(pixel_values, p)[0]  # [L, p*p*3], channel innermost
    m = mask[0].bool()
    visible = target[~m].reshape(-1, 3)
    colour = visible.mean(0)
    pred = colour.repeat(p * p)  # [p*p*3], same channel-innermost order
    return ((target[m] - pred) ** 2).mean(-1).mean().item()


def preprocess(paths, image_size: int) -> dict[str, torch.Tensor]:
    from transformers import ViTImageProcessorPil

    proc = ViTImageProcessorPil(
        **{k: v for k, v in H.preprocessor_config(image_size).items() if k != "image_processor_type"}
    )
    return {p.name: proc(images=load_rgb(p), return_tensors="pt")["pixel_values"] for p in paths}


@torch.no_grad()
def evaluate(model, pixel_values: dict[str, torch.Tensor], ratio: float, seeds) -> dict:
    """Model vs trivial in-painter on whole images, masks from torch.manual_seed(N); torch.rand(1, L)."""
    model.eval()
    cfg = model.config
    old_ratio = cfg.mask_ratio
    cfg.mask_ratio = ratio
    L = (cfg.image_size // cfg.patch_size) ** 2
    per_image = {}
    for name, x in pixel_values.items():
        ours, trivial = [], []
        for seed in seeds:
            torch.manual_seed(seed)
            noise = torch.rand(1, L)
            out = model(pixel_values=x, noise=noise)
            ours.append(out.loss.item())
            trivial.append(mean_colour_loss(x, out.mask, cfg.patch_size))
        per_image[name] = {
            "model_loss": float(np.mean(ours)),
            "mean_colour_loss": float(np.mean(trivial)),
            "ratio": float(np.mean(ours) / np.mean(trivial)),
        }
    cfg.mask_ratio = old_ratio
    model_mean = float(np.mean([v["model_loss"] for v in per_image.values()]))
    trivial_mean = float(np.mean([v["mean_colour_loss"] for v in per_image.values()]))
    return {
        "mask_ratio": ratio,
        "seeds": list(seeds),
        "per_image": per_image,
        "model_loss": model_mean,
        "mean_colour_loss": trivial_mean,
        "ratio_of_means": model_mean / trivial_mean,
        "mean_of_ratios": float(np.mean([v["ratio"] for v in per_image.values()])),
    }


def print_eval(title: str, ev: dict) -> None:
    print(f"{title} (ratio {ev['mask_ratio']}, seeds {ev['seeds'][0]}..{ev['seeds'][-1]}):")
    for name, v in ev["per_image"].items():
        print(f"  {name:24s} model {v['model_loss']:.4f}  mean-colour {v['mean_colour_loss']:.4f}  x{v['ratio']:.3f}")
    print(
        f"  {'average':24s} model {ev['model_loss']:.4f}  mean-colour {ev['mean_colour_loss']:.4f}  "
        f"x{ev['ratio_of_means']:.3f} (mean of per-image ratios x{ev['mean_of_ratios']:.3f})"
    )


# ============================================================================ training


def build_model(args):
    from transformers import ViTMAEForPreTraining

    cfg = H.make_config(
        attn_implementation="sdpa",
        hidden_size=args.width,
        num_hidden_layers=args.depth,
        num_attention_heads=args.heads,
        intermediate_size=4 * args.width,
        decoder_hidden_size=args.decoder_width,
        decoder_num_hidden_layers=args.decoder_depth,
        decoder_num_attention_heads=args.decoder_heads,
        decoder_intermediate_size=4 * args.decoder_width,
        patch_size=args.patch,
        image_size=args.size,
        num_channels=3,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        mask_ratio=0.75,
        norm_pix_loss=False,
        qkv_bias=True,
    )
    torch.manual_seed(args.seed)
    model = ViTMAEForPreTraining(cfg)
    init_like_original_mae(model)
    return model


@torch.no_grad()
def init_like_original_mae(model) -> None:
    """Initialize as facebookresearch/mae's models_mae.py does, because transformers 5.24 does not when a
    ViTMAEForPreTraining is built from a config (checked): it leaves BOTH position tables at zero (the encoder's
    sin-cos init is skipped once the patch projection counts as initialized, and ``_init_weights`` zeroes the
    decoder's) and zeroes cls_token and mask_token. With zero position tables the model cannot tell patches apart and
    learns nothing better than the mean colour. So: fixed 2-D sin-cos position tables (HF's half order, the layout
    of the hub checkpoints), xavier-uniform Linear weights and patch projection (as a Linear), zero biases,
    LayerNorm 1/0, cls and mask tokens N(0, 0.02); all drawn after ``torch.manual_seed`` (reproducible)."""
    from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

    def sincos(table: torch.Tensor) -> torch.Tensor:
        grid = int(round(math.sqrt(table.shape[1] - 1)))
        pe = build_2d_sinusoidal_position_embedding(height=grid, width=grid, embed_dim=table.shape[-1], cls_token=True)
        half = pe.shape[-1] // 2
        return torch.cat([pe[..., half:], pe[..., :half]], dim=-1).reshape(table.shape)

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, torch.nn.LayerNorm):
            torch.nn.init.ones_(module.weight)
            torch.nn.init.zeros_(module.bias)
    projection = model.vit.embeddings.patch_embeddings.projection.weight
    torch.nn.init.xavier_uniform_(projection.view(projection.shape[0], -1))
    torch.nn.init.zeros_(model.vit.embeddings.patch_embeddings.projection.bias)
    torch.nn.init.normal_(model.vit.embeddings.cls_token, std=0.02)
    torch.nn.init.normal_(model.decoder.mask_token, std=0.02)
    for table in (model.vit.embeddings.position_embeddings, model.decoder.decoder_pos_embed):
        table.copy_(sincos(table))
        assert not table.requires_grad and table.abs().max() > 0.5  # fixed, and really set


def lr_at(step: int, args) -> float:
    warmup = max(1, int(args.steps * args.warmup))
    if step < warmup:
        return args.lr * (step + 1) / warmup
    t = (step - warmup) / max(1, args.steps - warmup)
    return args.lr * 0.5 * (1.0 + math.cos(math.pi * t))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def train(model, images, args, held_out) -> list[dict]:
    device = torch.device(args.device)
    model.to(device)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2 and "token" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and not (p.dim() >= 2 and "token" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    g = torch.Generator().manual_seed(args.seed)
    L = (args.size // args.patch) ** 2
    log = []
    t0, c0 = time.time(), cpu_seconds()
    running = []
    for step in range(args.steps):
        model.train()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        x = make_batch(images, g, args.batch, args.size).to(device)
        model.config.mask_ratio = uniform(g, args.min_ratio, args.max_ratio)
        noise = torch.rand(args.batch, L, generator=g).to(device)
        loss = model(pixel_values=x, noise=noise).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            entry = {
                "step": step + 1,
                "train_loss": float(np.mean(running)),
                "wall_s": time.time() - t0,
                "cpu_s": cpu_seconds() - c0,
            }
            if held_out is not None and ((step + 1) % (args.log_every * 5) == 0 or step + 1 == args.steps):
                model.to("cpu")
                entry["held_out_x"] = evaluate(model, held_out, 0.75, range(2))["ratio_of_means"]
                model.to(device)
            running = []
            log.append(entry)
            print(json.dumps(entry), flush=True)
    model.to("cpu")
    model.config.mask_ratio = 0.75
    return log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "assets" / "demo-model"))
    ap.add_argument("--report", help="also write the measurements (JSON) to this file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the weights depend on it)")
    ap.add_argument("--device", default="cpu", help="cpu (the documented run); cuda only for geometry pilots")
    # geometry
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--decoder-width", type=int, default=128)
    ap.add_argument("--decoder-depth", type=int, default=2)
    ap.add_argument("--decoder-heads", type=int, default=4)
    # optimisation
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=float, default=0.05, help="fraction of the steps")
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--min-ratio", type=float, default=0.4)
    ap.add_argument("--max-ratio", type=float, default=0.9)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-seeds", type=int, default=10)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    skimage_data = package_dir("skimage", "data")
    mpl_data = package_dir("matplotlib", "mpl-data/sample_data")
    for name, (digest, _) in {**TRAIN_IMAGES, **HELD_OUT_IMAGES}.items():
        check_file(skimage_data / name, digest)
    for name, (digest, _) in EXTRA_EVAL_IMAGES.items():
        check_file(mpl_data / name, digest)
    images = [shrink(load_rgb(skimage_data / name), 2 * args.size) for name in TRAIN_IMAGES]
    held_out = preprocess([skimage_data / n for n in HELD_OUT_IMAGES], args.size)
    extra = preprocess([mpl_data / n for n in EXTRA_EVAL_IMAGES], args.size)

    model = build_model(args)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params:,} ({n_params * 4 / 1e6:.2f} MB as f32)", flush=True)
    t0, c0 = time.time(), cpu_seconds()
    log = train(model, images, args, held_out)
    wall, cpu = time.time() - t0, cpu_seconds() - c0
    print(f"training: {args.steps} steps x {args.batch} in {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)

    out = Path(args.out)
    reference = H.write_hub_model(model, out)
    reloaded = H.load_and_verify(out, reference)  # what transformers reads back from the files
    seeds = range(args.eval_seeds)
    report = {
        "training": {
            "steps": args.steps,
            "batch": args.batch,
            "wall_s": wall,
            "cpu_s": cpu,
            "threads": args.threads,
            "final_train_loss": log[-1]["train_loss"],
            "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        },
        "parameters": n_params,
        "files": {p.name: p.stat().st_size for p in sorted(out.iterdir())},
        "held_out": evaluate(reloaded, held_out, 0.75, seeds),
        "extra_eval": evaluate(reloaded, extra, 0.75, seeds),
        "held_out_by_ratio": {
            r: evaluate(reloaded, held_out, r, seeds)["ratio_of_means"] for r in (0.5, 0.6, 0.9)
        },
        "log": log,
    }
    print_eval("held out", report["held_out"])
    print_eval("extra (matplotlib)", report["extra_eval"])
    print(f"held-out in-painter ratio at other mask ratios: {report['held_out_by_ratio']}")
    print(f"files: {report['files']}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
