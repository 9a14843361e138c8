//! `config.json` and `preprocessor_config.json` as Hugging Face writes them, with HF's defaults and our checks.

use std::path::Path;

use serde::Deserialize;

use crate::error::{MaeError, Result};

/// ViTMAE architecture, field names and defaults exactly as transformers' `ViTMAEConfig`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MaeConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub qkv_bias: bool,
    pub decoder_num_attention_heads: usize,
    pub decoder_hidden_size: usize,
    pub decoder_num_hidden_layers: usize,
    pub decoder_intermediate_size: usize,
    pub mask_ratio: f64,
    pub norm_pix_loss: bool,
}

impl Default for MaeConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-12,
            image_size: 224,
            patch_size: 16,
            num_channels: 3,
            qkv_bias: true,
            decoder_num_attention_heads: 16,
            decoder_hidden_size: 512,
            decoder_num_hidden_layers: 8,
            decoder_intermediate_size: 2048,
            mask_ratio: 0.75,
            norm_pix_loss: false,
        }
    }
}

/// The activation functions HF names in `hidden_act` that we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: exact, erf-based (what every ViTMAE checkpoint uses).
    GeluErf,
    /// `gelu_new` / `gelu_pytorch_tanh` / `gelu_fast`: tanh approximation.
    GeluTanh,
    Relu,
    Silu,
}

impl MaeConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            MaeError::config(path, format!("cannot read the model config ({e}); a model folder needs config.json"))
        })?;
        Self::from_json(&text).map_err(|problem| MaeError::config(path, problem))
    }

    /// Parses and validates config JSON; the error is a sentence without the file name.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let config: Self = serde_json::from_str(text).map_err(|e| format!("malformed config JSON: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
            ("decoder_hidden_size", self.decoder_hidden_size),
            ("decoder_num_hidden_layers", self.decoder_num_hidden_layers),
            ("decoder_num_attention_heads", self.decoder_num_attention_heads),
            ("decoder_intermediate_size", self.decoder_intermediate_size),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0; it must be at least 1"));
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.decoder_hidden_size % self.decoder_num_attention_heads != 0 {
            return Err(format!(
                "decoder_hidden_size {} is not divisible by decoder_num_attention_heads {}",
                self.decoder_hidden_size, self.decoder_num_attention_heads
            ));
        }
        if self.image_size % self.patch_size != 0 {
            return Err(format!("image_size {} is not divisible by patch_size {}", self.image_size, self.patch_size));
        }
        if self.num_channels != 3 {
            return Err(format!("num_channels is {}; MAE Explorer supports RGB models (3)", self.num_channels));
        }
        if !(0.0..=1.0).contains(&self.mask_ratio) {
            return Err(format!("mask_ratio {} is outside [0, 1]", self.mask_ratio));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return Err(format!("layer_norm_eps {} must be a non-negative number", self.layer_norm_eps));
        }
        self.activation()?;
        Ok(())
    }

    pub fn activation(&self) -> std::result::Result<Activation, String> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            "silu" | "swish" => Ok(Activation::Silu),
            other => Err(format!(
                "hidden_act \"{other}\" is not supported (use gelu, gelu_new, gelu_pytorch_tanh, relu or silu)"
            )),
        }
    }

    /// Patches per side at the configured image size.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Number of patches at the configured image size (L).
    pub fn num_patches(&self) -> usize {
        self.grid_size() * self.grid_size()
    }

    /// Values per patch in the logits: p·p·C.
    pub fn patch_dim(&self) -> usize {
        self.patch_size * self.patch_size * self.num_channels
    }
}

/// How HF's image processor resamples (`resample` in preprocessor_config.json, PIL's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    Nearest,
    Bilinear,
    Bicubic,
    Lanczos,
}

/// `preprocessor_config.json` of a ViTImageProcessor. Defaults are those of the facebook/vit-mae-* hub files, so
/// a model folder without one preprocesses as the published checkpoints do.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct PreprocessorConfig {
    pub do_resize: bool,
    pub size: ImageSize,
    pub resample: u8,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
}

/// `size` as HF writes it: `{"height": h, "width": w}` or `{"shortest_edge": s}` (we treat the latter as s×s).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ImageSize {
    HeightWidth { height: usize, width: usize },
    ShortestEdge { shortest_edge: usize },
    Square(usize),
}

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Default for PreprocessorConfig {
    fn default() -> Self {
        Self {
            do_resize: true,
            size: ImageSize::HeightWidth { height: 224, width: 224 },
            resample: 2,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: IMAGENET_MEAN,
            image_std: IMAGENET_STD,
        }
    }
}

impl PreprocessorConfig {
    /// Reads `preprocessor_config.json`; a missing file means the hub defaults sized to the model's image size.
    pub fn from_file_or_default(path: &Path, model: &MaeConfig) -> Result<Self> {
        if !path.exists() {
            let size = ImageSize::HeightWidth { height: model.image_size, width: model.image_size };
            return Ok(Self { size, ..Self::default() });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| MaeError::config(path, format!("cannot read the preprocessor config: {e}")))?;
        Self::from_json(&text).map_err(|problem| MaeError::config(path, problem))
    }

    /// Parses and validates preprocessor config JSON; the error is a sentence without the file name.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let config: Self = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        let (h, w) = self.target_size();
        if h == 0 || w == 0 {
            return Err("size must be at least 1×1".into());
        }
        if self.image_std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!("image_std {:?} must be positive", self.image_std));
        }
        self.resample_filter()?;
        Ok(())
    }

    /// (height, width) after resizing.
    pub fn target_size(&self) -> (usize, usize) {
        match self.size {
            ImageSize::HeightWidth { height, width } => (height, width),
            ImageSize::ShortestEdge { shortest_edge: s } | ImageSize::Square(s) => (s, s),
        }
    }

    pub fn resample_filter(&self) -> std::result::Result<Resample, String> {
        match self.resample {
            0 => Ok(Resample::Nearest),
            1 => Ok(Resample::Lanczos),
            2 => Ok(Resample::Bilinear),
            3 => Ok(Resample::Bicubic),
            other => Err(format!("resample {other} is not supported (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_vit_mae_base() {
        let config = MaeConfig::from_json("{}").unwrap();
        assert_eq!(config, MaeConfig::default());
        assert_eq!(config.num_patches(), 196);
        assert_eq!(config.patch_dim(), 768);
    }

    #[test]
    fn rejects_inconsistent_shapes_with_a_reason() {
        let bad = [
            (r#"{"hidden_size": 100, "num_attention_heads": 12}"#, "not divisible by num_attention_heads"),
            (r#"{"image_size": 230}"#, "not divisible by patch_size"),
            (r#"{"num_hidden_layers": 0}"#, "num_hidden_layers is 0"),
            (r#"{"mask_ratio": 1.5}"#, "outside [0, 1]"),
            (r#"{"hidden_act": "mish"}"#, "not supported"),
            (r#"{"hidden_size": "big"}"#, "malformed config JSON"),
            (r#"{"decoder_hidden_size": 500}"#, "decoder_hidden_size 500"),
        ];
        for (json, expected) in bad {
            let err = MaeConfig::from_json(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn preprocessor_sizes_parse_in_all_hub_spellings() {
        for (json, size) in [
            (r#"{"size": {"height": 32, "width": 48}}"#, (32, 48)),
            (r#"{"size": {"shortest_edge": 64}}"#, (64, 64)),
            (r#"{"size": 96}"#, (96, 96)),
        ] {
            let config: PreprocessorConfig = serde_json::from_str(json).unwrap();
            assert_eq!(config.target_size(), size);
        }
    }
}
