//! Original facebookresearch/mae checkpoints under Hugging Face hub names.
//!
//! They use timm names and a fused `qkv` projection; [`to_hub_layout`] renames them to the hub layout and splits
//! `qkv`, [`original_name`] maps a hub key back so errors name what is in the file, and [`infer_original_config`]
//! derives the architecture from the tensor shapes when no `config.json` is given.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::Tensor;

use crate::config::{CheckedJson, MaeConfig};
use crate::error::{MaeError, Result};

/// Which naming scheme a checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLayout {
    /// Hugging Face hub names (`vit.encoder.layer.0.attention.attention.query.weight`, ...).
    Hub,
    /// facebookresearch/mae (timm) names (`blocks.0.attn.qkv.weight`, `decoder_blocks.0...`, ...).
    OriginalMae,
}

/// Tells hub-named from MAE-named checkpoints by their keys.
pub fn detect_layout(names: impl IntoIterator<Item = impl AsRef<str>>) -> Option<KeyLayout> {
    let mut original = false;
    for name in names {
        let name = name.as_ref();
        if name.starts_with("vit.") || name.starts_with("decoder.") {
            return Some(KeyLayout::Hub);
        }
        original |= name.starts_with("blocks.")
            || name.starts_with("patch_embed.")
            || name.starts_with("decoder_blocks.")
            || name == "cls_token"
            || name == "pos_embed";
    }
    original.then_some(KeyLayout::OriginalMae)
}

/// The sub-module renames inside one transformer block: (timm, hub).
const BLOCK_RENAMES: [(&str, &str); 5] = [
    ("norm1", "layernorm_before"),
    ("attn.proj", "attention.output.dense"),
    ("norm2", "layernorm_after"),
    ("mlp.fc1", "intermediate.dense"),
    ("mlp.fc2", "output.dense"),
];

/// Top-level renames: (timm, hub). Prefix entries end with a dot.
const TOP_RENAMES: [(&str, &str); 10] = [
    ("cls_token", "vit.embeddings.cls_token"),
    ("pos_embed", "vit.embeddings.position_embeddings"),
    ("patch_embed.proj.", "vit.embeddings.patch_embeddings.projection."),
    ("norm.", "vit.layernorm."),
    ("mask_token", "decoder.mask_token"),
    ("decoder_pos_embed", "decoder.decoder_pos_embed"),
    ("decoder_embed.", "decoder.decoder_embed."),
    ("decoder_norm.", "decoder.decoder_norm."),
    ("decoder_pred.", "decoder.decoder_pred."),
    ("blocks.", "vit.encoder.layer."),
];

/// Renames facebookresearch/mae tensors to hub names and splits each fused `qkv` into query/key/value (rows
/// `[:D]`, `[D:2D]`, `[2D:]`). Tensors the model does not use (classifier heads, ...) are dropped.
pub fn to_hub_layout(path: &Path, tensors: HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    let mut hub = HashMap::with_capacity(tensors.len() + 16);
    for (name, tensor) in tensors {
        let Some((stack, index, rest)) = split_block_name(&name) else {
            if let Some(renamed) = rename_top_level(&name) {
                hub.insert(renamed, tensor);
            }
            continue;
        };
        let prefix = match stack {
            "blocks" => format!("vit.encoder.layer.{index}"),
            _ => format!("decoder.decoder_layers.{index}"),
        };
        if let Some(suffix) = rest.strip_prefix("attn.qkv.") {
            let rows = tensor.dim(0)?;
            if rows % 3 != 0 {
                return Err(MaeError::weights(
                    path,
                    format!("tensor `{name}` has {rows} rows, which cannot be split into query, key and value"),
                ));
            }
            let width = rows / 3;
            for (part, start) in [("query", 0), ("key", width), ("value", 2 * width)] {
                let slice = tensor.narrow(0, start, width)?.contiguous()?;
                hub.insert(format!("{prefix}.attention.attention.{part}.{suffix}"), slice);
            }
            continue;
        }
        if let Some((timm, renamed)) = BLOCK_RENAMES.iter().find(|(timm, _)| rest.starts_with(&format!("{timm}."))) {
            hub.insert(format!("{prefix}.{renamed}{}", &rest[timm.len()..]), tensor);
        }
    }
    Ok(hub)
}

/// `blocks.3.mlp.fc1.weight` → ("blocks", 3, "mlp.fc1.weight").
fn split_block_name(name: &str) -> Option<(&str, usize, &str)> {
    let (stack, rest) = name.split_once('.')?;
    if stack != "blocks" && stack != "decoder_blocks" {
        return None;
    }
    let (index, rest) = rest.split_once('.')?;
    Some((stack, index.parse().ok()?, rest))
}

fn rename_top_level(name: &str) -> Option<String> {
    TOP_RENAMES.iter().find_map(|(timm, hub)| {
        if timm.ends_with('.') {
            name.strip_prefix(timm).map(|rest| format!("{hub}{rest}"))
        } else {
            (name == *timm).then(|| hub.to_string())
        }
    })
}

/// The facebookresearch/mae name a hub key came from, so errors name what is actually in the file.
pub fn original_name(hub_key: &str) -> Option<String> {
    let block = |prefix: &str, stack: &str| -> Option<String> {
        let rest = hub_key.strip_prefix(prefix)?;
        let (index, rest) = rest.split_once('.')?;
        if let Some(suffix) = rest.strip_prefix("attention.attention.") {
            let (_, suffix) = suffix.split_once('.')?;
            return Some(format!("{stack}.{index}.attn.qkv.{suffix}"));
        }
        BLOCK_RENAMES.iter().find_map(|(timm, hub)| {
            rest.strip_prefix(&format!("{hub}.")).map(|suffix| format!("{stack}.{index}.{timm}.{suffix}"))
        })
    };
    block("vit.encoder.layer.", "blocks").or_else(|| block("decoder.decoder_layers.", "decoder_blocks")).or_else(|| {
        TOP_RENAMES.iter().find_map(|(timm, hub)| {
            if hub.ends_with('.') {
                hub_key.strip_prefix(hub).map(|rest| format!("{timm}{rest}"))
            } else {
                (hub_key == *hub).then(|| timm.to_string())
            }
        })
    })
}

/// The architecture of an original MAE checkpoint, read off its tensor shapes (given as timm names).
///
/// Head counts are not visible in the weights; they are those of the published models (encoder 12 for
/// ViT-B/768, 16 for ViT-L/1024 and ViT-H/1280; decoder 16). LayerNorm eps is MAE's 1e-6.
pub fn infer_original_config(shapes: &HashMap<String, Vec<usize>>) -> std::result::Result<MaeConfig, String> {
    let shape = |key: &str| -> std::result::Result<&Vec<usize>, String> {
        shapes.get(key).ok_or_else(|| format!("tensor `{key}` is missing, so the architecture cannot be inferred"))
    };
    let dim = |key: &str, axis: usize| -> std::result::Result<usize, String> {
        shape(key)?.get(axis).copied().ok_or_else(|| format!("tensor `{key}` has an unexpected shape"))
    };
    let count_blocks = |stack: &str| -> usize {
        shapes
            .keys()
            .filter_map(|k| split_block_name(k))
            .filter(|(s, _, _)| *s == stack)
            .map(|(_, i, _)| i)
            .fold(BTreeSet::new(), |mut set, i| {
                set.insert(i);
                set
            })
            .len()
    };
    let patch = shape("patch_embed.proj.weight")?;
    let [hidden, channels, patch_size, patch_w] = patch.as_slice() else {
        return Err(format!("tensor `patch_embed.proj.weight` has shape {patch:?}, expected [D, 3, p, p]"));
    };
    if patch_size != patch_w {
        return Err(format!("non-square patches {patch_size}×{patch_w} are not supported"));
    }
    let tokens = dim("pos_embed", 1)?;
    let grid = (tokens.saturating_sub(1) as f64).sqrt().round() as usize;
    if grid * grid + 1 != tokens {
        return Err(format!("`pos_embed` has {tokens} rows, which is not 1 + a square number of patches"));
    }
    let heads = match hidden {
        768 => 12,
        1024 | 1280 => 16,
        other => {
            return Err(format!(
                "encoder width {other} is not one of the published MAE models (768, 1024, 1280), so its head \
                 count is unknown; put a config.json beside the checkpoint"
            ));
        }
    };
    let decoder_hidden = dim("decoder_embed.weight", 0)?;
    if decoder_hidden % 16 != 0 {
        return Err(format!(
            "decoder width {decoder_hidden} does not fit MAE's 16 decoder heads; put a config.json beside the checkpoint"
        ));
    }
    let config = MaeConfig {
        hidden_size: *hidden,
        num_hidden_layers: count_blocks("blocks"),
        num_attention_heads: heads,
        intermediate_size: dim("blocks.0.mlp.fc1.weight", 0)?,
        hidden_act: "gelu".into(),
        layer_norm_eps: 1e-6,
        image_size: grid * patch_size,
        patch_size: *patch_size,
        num_channels: *channels,
        qkv_bias: shapes.contains_key("blocks.0.attn.qkv.bias"),
        decoder_num_attention_heads: 16,
        decoder_hidden_size: decoder_hidden,
        decoder_num_hidden_layers: count_blocks("decoder_blocks"),
        decoder_intermediate_size: dim("decoder_blocks.0.mlp.fc1.weight", 0)?,
        mask_ratio: 0.75,
        norm_pix_loss: false,
    };
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_names_round_trip_through_the_hub_names() {
        for name in [
            "blocks.3.norm1.weight",
            "blocks.0.mlp.fc2.bias",
            "decoder_blocks.7.attn.proj.weight",
            "patch_embed.proj.bias",
            "norm.weight",
            "cls_token",
            "decoder_pred.weight",
        ] {
            let hub = if let Some((stack, index, rest)) = split_block_name(name) {
                let (timm, renamed) = BLOCK_RENAMES.iter().find(|(t, _)| rest.starts_with(t)).unwrap();
                let prefix = if stack == "blocks" { "vit.encoder.layer" } else { "decoder.decoder_layers" }.to_string();
                format!("{prefix}.{index}.{renamed}{}", &rest[timm.len()..])
            } else {
                rename_top_level(name).unwrap()
            };
            assert_eq!(original_name(&hub).as_deref(), Some(name), "{hub}");
        }
        assert_eq!(
            original_name("vit.encoder.layer.2.attention.attention.key.bias").as_deref(),
            Some("blocks.2.attn.qkv.bias")
        );
    }

    fn base_shapes(hidden: usize, layers: usize, patch: usize, grid: usize) -> HashMap<String, Vec<usize>> {
        let mut shapes = HashMap::from([
            ("patch_embed.proj.weight".to_string(), vec![hidden, 3, patch, patch]),
            ("pos_embed".to_string(), vec![1, grid * grid + 1, hidden]),
            ("decoder_embed.weight".to_string(), vec![512, hidden]),
            ("blocks.0.attn.qkv.bias".to_string(), vec![3 * hidden]),
        ]);
        for i in 0..layers {
            shapes.insert(format!("blocks.{i}.mlp.fc1.weight"), vec![4 * hidden, hidden]);
        }
        for j in 0..8 {
            shapes.insert(format!("decoder_blocks.{j}.mlp.fc1.weight"), vec![2048, 512]);
        }
        shapes
    }

    #[test]
    fn published_variants_are_inferred_from_shapes() {
        let base = infer_original_config(&base_shapes(768, 12, 16, 14)).unwrap();
        assert_eq!(
            (base.hidden_size, base.num_hidden_layers, base.num_attention_heads, base.intermediate_size),
            (768, 12, 12, 3072)
        );
        assert_eq!((base.image_size, base.patch_size, base.layer_norm_eps), (224, 16, 1e-6));
        assert_eq!(
            (base.decoder_hidden_size, base.decoder_num_hidden_layers, base.decoder_num_attention_heads),
            (512, 8, 16)
        );
        let large = infer_original_config(&base_shapes(1024, 24, 16, 14)).unwrap();
        assert_eq!((large.num_hidden_layers, large.num_attention_heads), (24, 16));
        let huge = infer_original_config(&base_shapes(1280, 32, 14, 16)).unwrap();
        assert_eq!((huge.num_hidden_layers, huge.num_attention_heads, huge.image_size), (32, 16, 224));
        let unknown = infer_original_config(&base_shapes(32, 2, 8, 4)).unwrap_err();
        assert!(unknown.contains("config.json"), "{unknown}");
    }
}
