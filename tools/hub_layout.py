"""Shared helpers: build random ViTMAE models and write them in the *hub* key layout.

transformers 5.x keeps different parameter names in memory (``vit.layers.N.attention.q_proj``,
``mlp.fc1``, ...) and its ``save_pretrained`` does not write the layout of the files on the hub
(``facebook/vit-mae-base``).  The Rust loader must read the hub layout, so we write it ourselves
and prove, by reloading with ``from_pretrained``, that transformers reads every tensor back.

Used by ``make_fixtures.py`` and ``bench_torch.py``.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from pathlib import Path

import torch
from safetensors.torch import save_file

PREPROCESSOR_MEAN = [0.485, 0.456, 0.406]
PREPROCESSOR_STD = [0.229, 0.224, 0.225]

# in-memory (transformers 5.x) layer sub-key -> hub layer sub-key
_LAYER_SUBKEYS = {
    "attention.q_proj": "attention.attention.query",
    "attention.k_proj": "attention.attention.key",
    "attention.v_proj": "attention.attention.value",
    "attention.o_proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
    "layernorm_before": "layernorm_before",
    "layernorm_after": "layernorm_after",
}

# hub layer sub-key -> timm (facebookresearch/mae) block sub-key, for the non-fused ones
_HUB_TO_TIMM_LAYER = {
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
}


def hub_key(name: str) -> str:
    """Map an in-memory transformers 5.x state-dict key to the hub key."""
    m = re.fullmatch(r"(vit\.layers|decoder\.decoder_layers)\.(\d+)\.(.+)\.(weight|bias)", name)
    if m:
        prefix, idx, sub, kind = m.groups()
        if sub not in _LAYER_SUBKEYS:
            raise KeyError(f"unknown layer parameter {name}")
        hub_prefix = "vit.encoder.layer" if prefix == "vit.layers" else "decoder.decoder_layers"
        return f"{hub_prefix}.{idx}.{_LAYER_SUBKEYS[sub]}.{kind}"
    # everything else already has the hub name (embeddings, vit.layernorm, decoder.* top level)
    known = (
        "vit.embeddings.cls_token",
        "vit.embeddings.position_embeddings",
        "vit.embeddings.patch_embeddings.projection.weight",
        "vit.embeddings.patch_embeddings.projection.bias",
        "vit.layernorm.weight",
        "vit.layernorm.bias",
        "decoder.mask_token",
        "decoder.decoder_pos_embed",
        "decoder.decoder_embed.weight",
        "decoder.decoder_embed.bias",
        "decoder.decoder_norm.weight",
        "decoder.decoder_norm.bias",
        "decoder.decoder_pred.weight",
        "decoder.decoder_pred.bias",
    )
    if name not in known:
        raise KeyError(f"unexpected parameter {name}")
    return name


def hub_state_dict(model) -> dict[str, torch.Tensor]:
    """The model's weights under hub names (contiguous f32 copies, no shared storage)."""
    out = {}
    for name, t in model.state_dict().items():
        k = hub_key(name)
        if k in out:
            raise KeyError(f"duplicate hub key {k}")
        out[k] = t.detach().to(torch.float32).contiguous().clone()
    return out


def save_safetensors(tensors: dict[str, torch.Tensor], path, metadata: dict[str, str] | None = None) -> None:
    """``safetensors.torch.save_file`` with a byte-reproducible header.

    safetensors writes ``__metadata__`` in hash-map order (it changes from run to run); we rewrite
    the JSON header with the metadata keys sorted, so regenerating the fixtures gives identical bytes.
    """
    path = str(path)
    save_file(tensors, path, metadata=metadata)
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n], object_pairs_hook=dict)  # keeps the tensor order
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * ((-len(text)) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    os.chmod(path, 0o644)  # save_file creates 0600


def make_config(attn_implementation: str = "eager", **kw):
    from transformers import ViTMAEConfig

    cfg = ViTMAEConfig(**kw)
    cfg.architectures = ["ViTMAEForPreTraining"]
    # must be set before the model is built: the decoder deep-copies the config at construction
    cfg._attn_implementation = attn_implementation
    return cfg


@torch.no_grad()
def randomize_(model, seed: int, gain: float = 1.0) -> None:
    """Overwrite EVERY parameter with deterministic random values.

    - LayerNorm weight 1 + 0.1*randn, all biases 0.1*randn;
    - Linear / Conv weights randn * gain/sqrt(fan_in) (keeps activations O(1) at any width:
      std 0.18 for fan_in 32, 0.036 for 768);
    - cls_token, mask_token 0.5*randn; position embeddings 0.5*randn (random, not sin-cos).
    """
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        shape = p.shape
        if name.endswith(".bias"):
            v = 0.1 * torch.randn(shape, generator=g)
        elif "layernorm" in name or "norm." in name:
            if not name.endswith(".weight"):
                raise AssertionError(name)
            v = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith("cls_token") or name.endswith("mask_token"):
            v = 0.5 * torch.randn(shape, generator=g)
        elif name.endswith("position_embeddings") or name.endswith("decoder_pos_embed"):
            v = 0.5 * torch.randn(shape, generator=g)
        elif name.endswith(".weight") and p.dim() >= 2:
            fan_in = math.prod(shape[1:])
            v = torch.randn(shape, generator=g) * (gain / math.sqrt(fan_in))
        else:
            raise AssertionError(f"don't know how to randomize {name} {tuple(shape)}")
        p.copy_(v)
    # buffers would escape the randomization: there are none in ViTMAE, keep it that way
    bufs = [n for n, _ in model.named_buffers()]
    if bufs:
        raise AssertionError(f"unexpected buffers {bufs}")


def preprocessor_config(image_size: int) -> dict:
    return {
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": PREPROCESSOR_MEAN,
        "image_processor_type": "ViTImageProcessor",
        "image_std": PREPROCESSOR_STD,
        "resample": 2,
        "rescale_factor": 1 / 255,
        "size": {"height": image_size, "width": image_size},
    }


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_configs(model, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    # runtime-only fields that have no place in a hub config
    for k in list(cfg):
        if k.startswith("_"):
            del cfg[k]
    cfg["dtype"] = "float32"
    write_json(out_dir / "config.json", cfg)
    write_json(out_dir / "preprocessor_config.json", preprocessor_config(model.config.image_size))


def write_hub_model(model, out_dir: Path) -> dict[str, torch.Tensor]:
    """config.json + preprocessor_config.json + model.safetensors (hub layout). Returns the dict."""
    out_dir = Path(out_dir)
    write_configs(model, out_dir)
    sd = hub_state_dict(model)
    save_safetensors(sd, out_dir / "model.safetensors", metadata={"format": "pt"})
    return sd


def load_and_verify(out_dir: Path, reference: dict[str, torch.Tensor], attn_implementation="eager"):
    """Reload with transformers and assert every tensor equals ``reference`` (hub-named dict).

    Fails on missing / unexpected / mismatched keys and on any value that differs (e.g. a parameter
    that transformers freshly initialized instead of loading).  Returns the loaded model (eval mode).
    """
    from transformers import ViTMAEForPreTraining

    model, info = ViTMAEForPreTraining.from_pretrained(
        str(out_dir), attn_implementation=attn_implementation, output_loading_info=True
    )
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(k):
            raise AssertionError(f"{out_dir}: {k} = {info[k]}")
    loaded = hub_state_dict(model)
    if set(loaded) != set(reference):
        raise AssertionError(
            f"{out_dir}: key sets differ: only loaded {set(loaded) - set(reference)}, "
            f"only reference {set(reference) - set(loaded)}"
        )
    for k, ref in reference.items():
        got = loaded[k]
        if got.shape != ref.shape or not torch.equal(got, ref):
            raise AssertionError(f"{out_dir}: tensor {k} differs after reload")
    model.eval()
    return model


# ---------------------------------------------------------------------------------------------
# original facebookresearch/mae (timm) layout


def hub_to_timm(hub: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hub-named dict -> facebookresearch/mae ``models_mae.MaskedAutoencoderViT`` state dict."""
    out: dict[str, torch.Tensor] = {
        "cls_token": hub["vit.embeddings.cls_token"],
        "pos_embed": hub["vit.embeddings.position_embeddings"],
        "patch_embed.proj.weight": hub["vit.embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": hub["vit.embeddings.patch_embeddings.projection.bias"],
        "norm.weight": hub["vit.layernorm.weight"],
        "norm.bias": hub["vit.layernorm.bias"],
        "mask_token": hub["decoder.mask_token"],
        "decoder_pos_embed": hub["decoder.decoder_pos_embed"],
        "decoder_embed.weight": hub["decoder.decoder_embed.weight"],
        "decoder_embed.bias": hub["decoder.decoder_embed.bias"],
        "decoder_norm.weight": hub["decoder.decoder_norm.weight"],
        "decoder_norm.bias": hub["decoder.decoder_norm.bias"],
        "decoder_pred.weight": hub["decoder.decoder_pred.weight"],
        "decoder_pred.bias": hub["decoder.decoder_pred.bias"],
    }
    for hub_prefix, timm_prefix in (("vit.encoder.layer", "blocks"), ("decoder.decoder_layers", "decoder_blocks")):
        i = 0
        while f"{hub_prefix}.{i}.layernorm_before.weight" in hub:
            h = f"{hub_prefix}.{i}"
            t = f"{timm_prefix}.{i}"
            for kind in ("weight", "bias"):
                out[f"{t}.attn.qkv.{kind}"] = torch.cat(
                    [hub[f"{h}.attention.attention.{n}.{kind}"] for n in ("query", "key", "value")], dim=0
                )
                for hs, ts in _HUB_TO_TIMM_LAYER.items():
                    out[f"{t}.{ts}.{kind}"] = hub[f"{h}.{hs}.{kind}"]
            i += 1
    return {k: v.contiguous().clone() for k, v in out.items()}


def timm_to_hub(timm: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`hub_to_timm` (used to verify the .pth fixture)."""
    inv_top = {
        "cls_token": "vit.embeddings.cls_token",
        "pos_embed": "vit.embeddings.position_embeddings",
        "patch_embed.proj.weight": "vit.embeddings.patch_embeddings.projection.weight",
        "patch_embed.proj.bias": "vit.embeddings.patch_embeddings.projection.bias",
        "norm.weight": "vit.layernorm.weight",
        "norm.bias": "vit.layernorm.bias",
        "mask_token": "decoder.mask_token",
        "decoder_pos_embed": "decoder.decoder_pos_embed",
        "decoder_embed.weight": "decoder.decoder_embed.weight",
        "decoder_embed.bias": "decoder.decoder_embed.bias",
        "decoder_norm.weight": "decoder.decoder_norm.weight",
        "decoder_norm.bias": "decoder.decoder_norm.bias",
        "decoder_pred.weight": "decoder.decoder_pred.weight",
        "decoder_pred.bias": "decoder.decoder_pred.bias",
    }
    inv_layer = {v: k for k, v in _HUB_TO_TIMM_LAYER.items()}
    out = {}
    for k, v in timm.items():
        if k in inv_top:
            out[inv_top[k]] = v
            continue
        m = re.fullmatch(r"(blocks|decoder_blocks)\.(\d+)\.(.+)\.(weight|bias)", k)
        if not m:
            raise KeyError(k)
        prefix, i, sub, kind = m.groups()
        h = f"{'vit.encoder.layer' if prefix == 'blocks' else 'decoder.decoder_layers'}.{i}"
        if sub == "attn.qkv":
            q, kk, vv = v.chunk(3, dim=0)
            out[f"{h}.attention.attention.query.{kind}"] = q
            out[f"{h}.attention.attention.key.{kind}"] = kk
            out[f"{h}.attention.attention.value.{kind}"] = vv
        else:
            out[f"{h}.{inv_layer[sub]}.{kind}"] = v
    return out


def build_random_model(seed: int, **config_kw):
    """A ViTMAEForPreTraining with every parameter randomized (eager attention, eval mode)."""
    from transformers import ViTMAEForPreTraining

    cfg = make_config(**config_kw)
    torch.manual_seed(seed)
    model = ViTMAEForPreTraining(cfg)
    randomize_(model, seed)
    model.eval()
    return model


def base_config_kw() -> dict:
    """vit-mae-base shapes: ViTMAEConfig() defaults, written out explicitly."""
    return dict(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        decoder_hidden_size=512,
        decoder_num_hidden_layers=8,
        decoder_num_attention_heads=16,
        decoder_intermediate_size=2048,
        patch_size=16,
        image_size=224,
        num_channels=3,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        mask_ratio=0.75,
        norm_pix_loss=False,
        qkv_bias=True,
    )


def make_base(out_dir: str | os.PathLike, seed: int = 0, verify: bool = True) -> Path:
    """Write a vit-mae-base-shaped random model (hub layout) to ``out_dir``."""
    out_dir = Path(out_dir)
    model = build_random_model(seed, **base_config_kw())
    sd = write_hub_model(model, out_dir)
    if verify:
        load_and_verify(out_dir, sd)
    return out_dir


def hub_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Every hub key of a ViTMAEForPreTraining with config ``cfg`` (``base_config_kw`` names) and its shape."""
    d, dd, c, p = cfg["hidden_size"], cfg["decoder_hidden_size"], cfg["num_channels"], cfg["patch_size"]
    n = (cfg["image_size"] // p) ** 2 + 1
    shapes = {
        "vit.embeddings.cls_token": (1, 1, d),
        "vit.embeddings.position_embeddings": (1, n, d),
        "vit.embeddings.patch_embeddings.projection.weight": (d, c, p, p),
        "vit.embeddings.patch_embeddings.projection.bias": (d,),
        "vit.layernorm.weight": (d,),
        "vit.layernorm.bias": (d,),
        "decoder.mask_token": (1, 1, dd),
        "decoder.decoder_pos_embed": (1, n, dd),
        "decoder.decoder_embed.weight": (dd, d),
        "decoder.decoder_embed.bias": (dd,),
        "decoder.decoder_norm.weight": (dd,),
        "decoder.decoder_norm.bias": (dd,),
        "decoder.decoder_pred.weight": (p * p * c, dd),
        "decoder.decoder_pred.bias": (p * p * c,),
    }
    stacks = (
        ("vit.encoder.layer", cfg["num_hidden_layers"], d, cfg["intermediate_size"]),
        ("decoder.decoder_layers", cfg["decoder_num_hidden_layers"], dd, cfg["decoder_intermediate_size"]),
    )
    for prefix, layers, width, mlp in stacks:
        for i in range(layers):
            linears = {
                "attention.attention.query": (width, width),
                "attention.attention.key": (width, width),
                "attention.attention.value": (width, width),
                "attention.output.dense": (width, width),
                "intermediate.dense": (mlp, width),
                "output.dense": (width, mlp),
            }
            for name, (out_features, in_features) in linears.items():
                shapes[f"{prefix}.{i}.{name}.weight"] = (out_features, in_features)
                shapes[f"{prefix}.{i}.{name}.bias"] = (out_features,)
            for name in ("layernorm_before", "layernorm_after"):
                shapes[f"{prefix}.{i}.{name}.weight"] = (width,)
                shapes[f"{prefix}.{i}.{name}.bias"] = (width,)
    return shapes


def write_random_hub_model_torch_only(out_dir: str | os.PathLike, seed: int = 0, **config_kw) -> dict[str, torch.Tensor]:
    """``make_base``'s model without transformers: hub-named random tensors written directly (same distributions as
    ``randomize_``), config.json and preprocessor_config.json. For machines whose transformers keeps other in-memory
    names than ``hub_key`` knows (it raises on any it does not). Returns the tensors written."""
    cfg = {**base_config_kw(), **config_kw}
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in hub_shapes(cfg).items():
        if name.endswith(".bias"):
            v = 0.1 * torch.randn(shape, generator=g)
        elif "layernorm" in name or "norm." in name:
            v = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith(("cls_token", "mask_token", "position_embeddings", "decoder_pos_embed")):
            v = 0.5 * torch.randn(shape, generator=g)
        else:
            v = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        tensors[name] = v.contiguous()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "config.json", {**cfg, "architectures": ["ViTMAEForPreTraining"], "model_type": "vit_mae"})
    write_json(out_dir / "preprocessor_config.json", preprocessor_config(cfg["image_size"]))
    save_safetensors(tensors, out_dir / "model.safetensors", metadata={"format": "pt"})
    return tensors


def check_loads_completely(out_dir: str | os.PathLike) -> None:
    """Load ``out_dir`` with transformers and fail on any missing, unexpected or mismatched key (a parameter it
    would initialize itself instead of reading)."""
    from transformers import ViTMAEForPreTraining

    _, info = ViTMAEForPreTraining.from_pretrained(str(out_dir), output_loading_info=True)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(k):
            raise AssertionError(f"{out_dir}: {k} = {info[k]}")
