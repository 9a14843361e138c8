#!/usr/bin/env python3
"""Write the corpus of bad inputs under tests/fixtures/bad/ (deterministic; overwrites its own files only).

    tools/.venv/bin/python tools/make_bad_inputs.py [--out tests/fixtures/bad]

Every file is small: sizes that would need gigabytes are *declared* in forged headers, not stored. Each case is
listed in bad/cases.json with the argument it is given as (image, model, pixel_values, noise) and the words the
one-line refusal must contain; app/tests/bad_inputs.rs runs every case through the CLI commands that take that
argument. Where the reference stack has an opinion, this script checks it refuses the file too (PIL for images,
transformers for configs, torch.load for checkpoints), so "refused like HF refuses it" is checked, not assumed.

The checkpoints made by tools/make_fixtures.py (bad/*.pth) are left alone.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import re
import shutil
import struct
import sys
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "fixtures" / "models" / "tiny-p8"


def log(*a):
    print("[make_bad_inputs]", *a, file=sys.stderr)


def photo(w: int, h: int, seed: int) -> Image.Image:
    """A smooth picture with detail (compresses like a photo, so cuts land inside the entropy-coded scan)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([128 + 100 * np.sin(xx / 7 + c) * np.cos(yy / 9 - c) for c in range(3)], -1)
    noisy = base + rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def pil_refuses(data: bytes) -> str:
    """PIL's error for these bytes, as transformers' load_image meets it (open, then convert loads the pixels)."""
    try:
        Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as error:  # noqa: BLE001 - any refusal counts; the message is recorded
        return f"{type(error).__name__}: {error}"
    raise AssertionError("PIL accepted a file that must be refused")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def forged_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width×height grey pixels, with one tiny (valid) row of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def forged_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its SOF header claiming another size."""
    data = bytearray(jpeg)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at >= 0:
            struct.pack_into(">HH", data, at + 5, height, width)
            return bytes(data)
    raise AssertionError("no SOF marker")


def minimal_safetensors() -> bytes:
    """A valid safetensors file with one 1-element tensor (a model folder needs *a* weights file to get as far
    as its config)."""
    header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00\x00\x80\x3f"


def pickle_int(value: int) -> bytes:
    """BININT for small values, LONG1 beyond 32 bits (as pickle protocol 2 writes them)."""
    if 0 <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def pickle_text(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def state_dict_pickle(tensors: dict) -> bytes:
    """The opcodes torch.save writes for {name: float tensor}, written directly so the declared sizes can be
    anything: `_rebuild_tensor_v2(persistent ('storage', FloatStorage, key, 'cpu', numel), 0, shape, stride, False,
    OrderedDict())` per tensor. No torch needed, nothing here is callable."""
    ints = lambda values: b"(" + b"".join(pickle_int(v) for v in values) + b"t"  # noqa: E731
    body = b"\x80\x02}("
    for name, (key, numel, shape, stride) in tensors.items():
        storage = b"(" + pickle_text("storage") + b"ctorch\nFloatStorage\n" + pickle_text(key)
        storage += pickle_text("cpu") + pickle_int(numel) + b"tQ"
        arguments = b"(" + storage + pickle_int(0) + ints(shape) + ints(stride) + b"\x89"
        arguments += b"ccollections\nOrderedDict\n)R" + b"t"
        body += pickle_text(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + arguments + b"R"
    return body + b"u."


def torch_zip(entries: dict, archive: str = "archive", compression=zipfile.ZIP_STORED) -> bytes:
    """A torch.save-style zip: `archive/data.pkl`, `archive/byteorder`, `archive/data/<key>`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as z:
        for name, data in entries.items():
            # A fixed timestamp keeps the file byte-reproducible.
            info = zipfile.ZipInfo(f"{archive}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data, compress_type=compression)
    return buffer.getvalue()


def check_pickle_shape(data: bytes) -> None:
    """Python's own unpickler reads it (with stand-ins for the two torch names), so the bytes are a real pickle."""

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return OrderedDict
            return lambda *args: (module, name, args)

        def persistent_load(self, pid):
            return pid

    loaded = Reader(io.BytesIO(data)).load()
    assert isinstance(loaded, dict) and loaded, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "bad"))
    out = Path(parser.parse_args().out)
    for sub in ("images", "models", "arrays"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        (out / sub).mkdir(parents=True)
    cases = []

    def case(path: Path, role: str, expect: list, why: str, reference: str = "") -> None:
        assert path.exists() and path.stat().st_size < 64_000, path
        entry = {"path": str(path.relative_to(out)), "as": role, "expect": expect, "why": why}
        if reference:
            # Deterministic text: no object addresses, paths relative to the repository.
            entry["reference"] = re.sub(r" at 0x[0-9a-f]+", "", reference).replace(f"{REPO}/", "")
        cases.append(entry)

    # ---------------------------------------------------------------- images
    images = out / "images"
    picture = photo(160, 120, 1)
    for name, data, cut in [
        ("truncated_baseline.jpg", encoded(picture, "JPEG", quality=90), 0.5),
        ("truncated_progressive.jpg", encoded(picture, "JPEG", quality=90, progressive=True), 0.6),
        ("truncated_cmyk.jpg", encoded(picture.convert("CMYK"), "JPEG", quality=90), 0.5),
        ("jpeg_without_end_marker.jpg", encoded(picture, "JPEG", quality=90), None),
    ]:
        keep = len(data) - 2 if cut is None else int(len(data) * cut)
        (images / name).write_bytes(data[:keep])
        refusal = pil_refuses(data[:keep])
        assert "truncated" in refusal, (name, refusal)
        case(images / name, "image", ["image file is truncated"], f"{len(data)}-byte JPEG cut to {keep} bytes", refusal)

    for name, fmt, options in [
        ("truncated.png", "PNG", {}),
        ("truncated.gif", "GIF", {}),
        ("truncated.bmp", "BMP", {}),
        ("truncated.tiff", "TIFF", {}),
        ("truncated.webp", "WEBP", {"lossless": True}),
    ]:
        data = encoded(picture, fmt, **options)
        keep = len(data) // 2
        (images / name).write_bytes(data[:keep])
        case(images / name, "image", ["cannot decode"], f"{fmt} cut to half ({keep} of {len(data)} bytes)",
             pil_refuses(data[:keep]))

    big = forged_png(100_000, 100_000)
    (images / "declares_10G_pixels.png").write_bytes(big)
    case(images / "declares_10G_pixels.png", "image", ["too large", "100000×100000"],
         "PNG header declaring 100000×100000 pixels (10¹⁰), a few bytes of data", pil_refuses(big))
    jpeg = forged_jpeg_size(encoded(photo(16, 16, 2), "JPEG"), 65000, 65000)
    (images / "declares_4G_pixels.jpg").write_bytes(jpeg)
    case(images / "declares_4G_pixels.jpg", "image", ["too large"], "JPEG SOF declaring 65000×65000 pixels",
         pil_refuses(jpeg))
    (images / "not_an_image.png").write_bytes(b"just some text that happens to be called .png\n")
    case(images / "not_an_image.png", "image", ["not an image"], "text with an image extension",
         pil_refuses((images / "not_an_image.png").read_bytes()))
    (images / "empty.jpg").write_bytes(b"")
    case(images / "empty.jpg", "image", ["not an image"], "0 bytes", pil_refuses(b""))

    # ---------------------------------------------------------------- model folders
    models = out / "models"
    tiny_config = json.loads((TINY / "config.json").read_text())
    tiny_preprocessor = json.loads((TINY / "preprocessor_config.json").read_text())

    def model_folder(name: str, config=None, preprocessor=None, weights: tuple = ("model.safetensors", None)) -> Path:
        folder = models / name
        folder.mkdir()
        config_text = config if isinstance(config, str) else json.dumps(config or tiny_config, indent=1)
        (folder / "config.json").write_text(config_text)
        if preprocessor is not None:
            text = preprocessor if isinstance(preprocessor, str) else json.dumps(preprocessor, indent=1)
            (folder / "preprocessor_config.json").write_text(text)
        file, data = weights
        (folder / file).write_bytes(minimal_safetensors() if data is None else data)
        return folder

    def hf_refuses_config(folder: Path) -> str:
        from transformers import ViTMAEConfig

        try:
            ViTMAEConfig.from_pretrained(folder)
        except Exception as error:  # noqa: BLE001
            return f"{type(error).__name__}: {error}"
        raise AssertionError(f"transformers accepted {folder}")

    def hf_refuses_preprocessor(folder: Path) -> str:
        from transformers import ViTImageProcessorPil

        try:
            ViTImageProcessorPil.from_pretrained(folder)
        except Exception as error:  # noqa: BLE001
            return f"{type(error).__name__}: {error}"
        raise AssertionError(f"transformers accepted {folder}")

    # tiny-p8's values in ViTMAEConfig's field order: serde alone would read it by position, as a valid config.
    positional = [32, 2, 4, 64, "gelu", 1e-12, 32, 8, 3, True, 4, 24, 2, 48, 0.75, False]
    folder = model_folder("config_is_an_array", config=json.dumps(positional))
    case(folder, "model", ["config.json", "holds an array", "JSON object"],
         "config.json is a JSON array of tiny-p8's values in field order (serde alone reads arrays by position)",
         hf_refuses_config(folder))
    folder = model_folder("config_is_not_utf8", config="")
    (folder / "config.json").write_bytes(b"\xff\xfe{\x00}\x00")
    case(folder, "model", ["config.json", "malformed"], "config.json in UTF-16 with a BOM", hf_refuses_config(folder))
    folder = model_folder("attention_needs_petabytes", config={**tiny_config, "image_size": 4096, "patch_size": 1})
    case(folder, "model", ["config.json", "of memory, more than the", "available"],
         "image_size 4096 with patch_size 1: 16.8 M patches, attention maps of ~10¹⁵ bytes")
    folder = model_folder("hidden_size_10_to_the_12", config={**tiny_config, "hidden_size": 10**12})
    case(folder, "model", ["config.json", "hidden_size is 1000000000000"], "a width no ViTMAE has")
    folder = model_folder("preprocessor_10G_pixels", preprocessor={**tiny_preprocessor, "size": {"height": 100000, "width": 100000}})
    case(folder, "model", ["preprocessor_config.json", "100000×100000"], "resize target of 10¹⁰ pixels")
    folder = model_folder("preprocessor_grid_needs_terabytes", preprocessor={**tiny_preprocessor, "size": {"height": 8192, "width": 8192}})
    case(folder, "model", ["preprocessor_config.json", "8192×8192", "of memory, more than the"],
         "8192×8192 resize target: 1 M patches of 8×8, attention maps of ~10¹³ bytes")
    folder = model_folder("preprocessor_is_an_array", preprocessor="[224, 224]")
    case(folder, "model", ["preprocessor_config.json", "holds an array"], "preprocessor_config.json is a JSON array",
         hf_refuses_preprocessor(folder))

    # ---------------------------------------------------------------- checkpoints (zip + pickle, forged without torch)
    huge = state_dict_pickle({"vit.embeddings.cls_token": ("0", 10**11, (10**11,), (1,))})
    check_pickle_shape(huge)
    data = torch_zip({"data.pkl": huge, "byteorder": b"little", "data/0": b"\x00" * 16})
    folder = model_folder("checkpoint_declares_400GB", weights=("pytorch_model.bin", data))
    case(folder, "model", ["pytorch_model.bin", "checkpoint's tensors", "of memory, more than the"],
         "pickle declaring a 10¹¹-element float tensor; 16 bytes of data")
    small = state_dict_pickle({"vit.embeddings.cls_token": ("0", 4, (4,), (1,))})
    check_pickle_shape(small)
    data = torch_zip({"data.pkl": small, "byteorder": b"big", "data/0": b"\x00" * 16})
    folder = model_folder("checkpoint_big_endian", weights=("pytorch_model.bin", data))
    case(folder, "model", ["pytorch_model.bin", "byteorder", "little endian"], "byteorder says big")
    data = torch_zip({"data.pkl": small, "byteorder": b"little", "data/0": b"\x00" * 8})
    folder = model_folder("checkpoint_storage_too_short", weights=("pytorch_model.bin", data))
    case(folder, "model", ["pytorch_model.bin", "storage", "expected 16"], "a 4-float tensor with 8 bytes of storage")
    bad = data[: len(data) // 2]
    folder = model_folder("checkpoint_cut_in_half", weights=("pytorch_model.bin", bad))
    case(folder, "model", ["pytorch_model.bin", "not a PyTorch zip checkpoint"], "zip cut in half (no central directory)")
    folder = model_folder("safetensors_cut_in_half", weights=("model.safetensors", minimal_safetensors()[:30]))
    case(folder, "model", ["model.safetensors", "not a valid safetensors file"], "safetensors header cut off")

    # ---------------------------------------------------------------- .npy arrays
    arrays = out / "arrays"

    def npy_header(descr: str, shape: tuple, fortran: bool = False) -> bytes:
        text = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}"
        text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()

    (arrays / "declares_10_to_the_11.npy").write_bytes(npy_header("<f4", (1, 3, 100000, 333334)) + b"\x00" * 16)
    case(arrays / "declares_10_to_the_11.npy", "pixel_values", ["declares shape", "holds 16 bytes"],
         "header declaring 10¹¹ floats, 16 bytes of data (candle's read_npy allocated 400 GB from the header)")
    full = np.zeros((1, 3, 32, 32), np.float32)
    buffer = io.BytesIO()
    np.save(buffer, full)
    (arrays / "truncated.npy").write_bytes(buffer.getvalue()[:-100])
    case(arrays / "truncated.npy", "pixel_values", ["truncated or not written by numpy"], "np.save output minus 100 bytes")
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 3, 32, 32), np.int64))
    (arrays / "integers.npy").write_bytes(buffer.getvalue())
    case(arrays / "integers.npy", "pixel_values", ["`i8` values", "floats"], "int64 pixel values")
    buffer = io.BytesIO()
    np.save(buffer, np.asfortranarray(np.zeros((1, 3, 32, 32), np.float32)[0]))
    (arrays / "fortran_order.npy").write_bytes(buffer.getvalue())
    case(arrays / "fortran_order.npy", "pixel_values", ["Fortran order"], "a Fortran-ordered array")
    (arrays / "header_over_numpys_limit.npy").write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{")
    case(arrays / "header_over_numpys_limit.npy", "pixel_values", ["refuses more than 10000"],
         "version-2 header length of 2 GiB")
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 3, 30, 32), np.float32))
    (arrays / "not_whole_patches.npy").write_bytes(buffer.getvalue())
    case(arrays / "not_whole_patches.npy", "pixel_values", ["30×32", "patches"], "30×32 pixels with 8×8 patches")
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 17), np.float32))
    (arrays / "noise_of_17.npy").write_bytes(buffer.getvalue())
    case(arrays / "noise_of_17.npy", "noise", ["[1, 16]", "[1, 17]"], "noise for 17 patches, the model has 16")

    # numpy itself must refuse or mis-read what we refuse
    for name in ("declares_10_to_the_11.npy", "truncated.npy", "header_over_numpys_limit.npy"):
        try:
            np.load(arrays / name)
        except Exception as error:  # noqa: BLE001
            refusal = f"{type(error).__name__}: {error}"
            next(c for c in cases if c["path"].endswith(name))["reference"] = refusal.replace(f"{REPO}/", "")
        else:
            raise AssertionError(f"numpy loaded {name}")

    (out / "cases.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")
    total = sum(p.stat().st_size for sub in ("images", "models", "arrays") for p in (out / sub).rglob("*") if p.is_file())
    log(f"{len(cases)} cases, {total / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
