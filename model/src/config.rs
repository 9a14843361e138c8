//! `config.json` and `preprocessor_config.json` as Hugging Face writes them, with HF's defaults and our checks.

use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{MaeError, Result};
use crate::input_file::{MAX_CONFIG_FILE_BYTES, MAX_PIXELS, read_limited};

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
        let bytes = read_limited(path, MAX_CONFIG_FILE_BYTES, "a config file").map_err(|problem| {
            MaeError::config(path, format!("cannot read the model config: {problem}; a model folder needs config.json"))
        })?;
        Self::from_json_bytes(&bytes).map_err(|problem| MaeError::config(path, problem))
    }
}

impl CheckedJson for MaeConfig {
    const KIND: &'static str = "config JSON";

    /// Checks the invariants the forward pass relies on.
    fn validate(&self) -> std::result::Result<(), String> {
        let sizes = [
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
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0; it must be at least 1"));
        }
        if let Some((name, value)) = sizes.iter().find(|(_, v)| *v > MAX_DIMENSION) {
            return Err(format!("{name} is {value}; no ViTMAE is that large (at most {MAX_DIMENSION})"));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !self.decoder_hidden_size.is_multiple_of(self.decoder_num_attention_heads) {
            return Err(format!(
                "decoder_hidden_size {} is not divisible by decoder_num_attention_heads {}",
                self.decoder_hidden_size, self.decoder_num_attention_heads
            ));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
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
}

impl MaeConfig {
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

/// Largest width, depth or head count a config may declare: 64× vit-mae-huge's widest layer. Larger values can only
/// be forged, and they would overflow the size arithmetic of shape checks.
const MAX_DIMENSION: usize = 1 << 20;

/// A config read from JSON and checked before use (the model's `config.json` and `preprocessor_config.json`): one
/// way to parse, refuse what is not an object, and validate, for both.
pub trait CheckedJson: Sized + DeserializeOwned {
    /// What the JSON is, in errors ("config JSON").
    const KIND: &'static str;

    /// Checks what the code relying on the config needs; the error is a sentence without the file name.
    fn validate(&self) -> std::result::Result<(), String>;

    /// Parses and validates the JSON text; the error is a sentence without the file name.
    fn from_json(text: &str) -> std::result::Result<Self, String> {
        Self::from_json_bytes(text.as_bytes())
    }

    /// [`from_json`](Self::from_json) on a file's raw bytes (which need not be UTF-8 to be refused cleanly).
    fn from_json_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        let config: Self = parse_json_object(bytes, Self::KIND)?;
        config.validate()?;
        Ok(config)
    }
}

/// Parses JSON that must be an object, as HF's `from_pretrained` requires (`serde` alone would read a JSON array
/// into the fields by position).
fn parse_json_object<T: DeserializeOwned>(bytes: &[u8], what: &str) -> std::result::Result<T, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("malformed {what}: {e}"))?;
    let kind = match &value {
        serde_json::Value::Object(_) => {
            return serde_json::from_value(value).map_err(|e| format!("malformed {what}: {e}"));
        }
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
    };
    Err(format!("malformed {what}: the file holds {kind}, but it must be a JSON object ({{\"key\": value, ...}})"))
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
/// a model folder without one preprocesses as the published checkpoints do. Two configs are compared by what they
/// do (`difference_from`), never field by field: the same resize has several spellings.
#[derive(Debug, Clone, Deserialize)]
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

/// A preprocessing as the pixels see it: the resize (size and PIL filter number) when there is one, the factor
/// that scales 0–255 values, and the mean/std subtracted and divided (0 and 1 when normalisation is off).
#[derive(Debug, PartialEq)]
struct PreprocessingEffect {
    resize: Option<((usize, usize), u8)>,
    scale: f64,
    mean_std: ([f32; 3], [f32; 3]),
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

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
        let bytes = read_limited(path, MAX_CONFIG_FILE_BYTES, "a config file")
            .map_err(|problem| MaeError::config(path, format!("cannot read the preprocessor config: {problem}")))?;
        Self::from_json_bytes(&bytes).map_err(|problem| MaeError::config(path, problem))
    }
}

impl CheckedJson for PreprocessorConfig {
    const KIND: &'static str = "preprocessor JSON";

    /// Checks what preprocessing relies on: a size, a pixel count PIL would read, positive std, a known filter.
    fn validate(&self) -> std::result::Result<(), String> {
        let (h, w) = self.target_size();
        if h == 0 || w == 0 {
            return Err("size must be at least 1×1".into());
        }
        if self.do_resize && (h as u64).saturating_mul(w as u64) > MAX_PIXELS {
            return Err(format!(
                "size {h}×{w} is more pixels than any image MAE Explorer reads (at most {MAX_PIXELS}, PIL's limit)"
            ));
        }
        if self.image_std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!("image_std {:?} must be positive", self.image_std));
        }
        self.resample_filter()?;
        Ok(())
    }
}

impl PreprocessorConfig {
    /// (height, width) after resizing.
    pub fn target_size(&self) -> (usize, usize) {
        match self.size {
            ImageSize::HeightWidth { height, width } => (height, width),
            ImageSize::ShortestEdge { shortest_edge: s } | ImageSize::Square(s) => (s, s),
        }
    }

    /// What this preprocessing does to an image, resolved from however the JSON spells it (`"size": 224` and
    /// `{"height": 224, "width": 224}` are one resize; a resample filter is moot without a resize, and so are the
    /// rescale factor and mean/std when their step is off).
    fn effect(&self) -> PreprocessingEffect {
        PreprocessingEffect {
            resize: self.do_resize.then(|| (self.target_size(), self.resample)),
            scale: if self.do_rescale { self.rescale_factor } else { 1.0 },
            mean_std: if self.do_normalize { (self.image_mean, self.image_std) } else { ([0.0; 3], [1.0; 3]) },
        }
    }

    /// The one place that decides whether two models preprocess alike: `None` when every image comes out as the
    /// same pixel values under both, else what differs, named as a person reads it ("resize to 256×256 against
    /// 224×224"), `self` first.
    pub fn difference_from(&self, other: &Self) -> Option<String> {
        let (this, that) = (self.effect(), other.effect());
        let resize = |resize: Option<((usize, usize), u8)>| match resize {
            None => "no resize".to_string(),
            Some(((height, width), resample)) => {
                let filter = match resample {
                    0 => "nearest",
                    1 => "lanczos",
                    2 => "bilinear",
                    3 => "bicubic",
                    _ => "an unknown filter",
                };
                format!("resize to {width}×{height} ({filter})")
            }
        };
        if this.resize != that.resize {
            return Some(format!("{} against {}", resize(this.resize), resize(that.resize)));
        }
        if this.scale != that.scale {
            return Some(format!("rescale factor {} against {}", this.scale, that.scale));
        }
        let ((mean, std), (other_mean, other_std)) = (this.mean_std, that.mean_std);
        if mean != other_mean {
            return Some(format!("image_mean {mean:?} against {other_mean:?}"));
        }
        if std != other_std {
            return Some(format!("image_std {std:?} against {other_std:?}"));
        }
        None
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
            (r#"{"image_size": 1099511627776, "patch_size": 1}"#, "image_size is 1099511627776; no ViTMAE"),
            // HF refuses a config that is not a JSON object; serde alone would read an array by position.
            ("[768, 12, 12, 3072]", "holds an array, but it must be a JSON object"),
            ("null", "holds null"),
        ];
        for (json, expected) in bad {
            let err = MaeConfig::from_json(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn preprocessor_configs_that_cannot_be_met_are_refused() {
        for (json, expected) in [
            (r#"{"size": {"height": 100000, "width": 100000}}"#, "size 100000×100000 is more pixels"),
            (r#"{"size": 0}"#, "at least 1×1"),
            (r#"[true, {"height": 32, "width": 32}]"#, "holds an array"),
            (r#"{"image_std": [0.2, 0.0, 0.2]}"#, "must be positive"),
        ] {
            let error = PreprocessorConfig::from_json_bytes(json.as_bytes()).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn preprocessing_is_compared_by_what_it_does_not_by_its_spelling() {
        let parse = |json: &str| PreprocessorConfig::from_json(json).unwrap();
        // The hub's vit-mae-base file and the spelling newer transformers versions save.
        let hub = parse(r#"{"size": 224, "resample": 2, "do_normalize": true}"#);
        let new = parse(r#"{"size": {"height": 224, "width": 224}, "resample": 2}"#);
        assert_eq!(hub.difference_from(&new), None);
        assert_eq!(new.difference_from(&PreprocessorConfig::default()), None);
        assert_eq!(parse(r#"{"size": {"shortest_edge": 224}}"#).difference_from(&hub), None);
        // A filter or a mean/std that is never applied does not make a difference.
        let unresized = parse(r#"{"do_resize": false, "resample": 3, "size": 96}"#);
        assert_eq!(unresized.difference_from(&parse(r#"{"do_resize": false}"#)), None);
        let unnormalised = parse(r#"{"do_normalize": false, "image_mean": [0.5, 0.5, 0.5]}"#);
        assert_eq!(unnormalised.difference_from(&parse(r#"{"do_normalize": false}"#)), None);
        // What does differ is named, this config first.
        for (json, expected) in [
            (r#"{"size": 256}"#, "resize to 256×256 (bilinear) against resize to 224×224 (bilinear)"),
            (r#"{"size": {"height": 224, "width": 320}}"#, "resize to 320×224 (bilinear) against"),
            (r#"{"resample": 3}"#, "resize to 224×224 (bicubic) against resize to 224×224 (bilinear)"),
            (r#"{"do_resize": false}"#, "no resize against resize to 224×224"),
            (r#"{"do_rescale": false}"#, "rescale factor 1 against 0.00392"),
            (r#"{"image_mean": [0.5, 0.5, 0.5]}"#, "image_mean [0.5, 0.5, 0.5] against [0.485, 0.456, 0.406]"),
            (r#"{"image_std": [0.5, 0.5, 0.5]}"#, "image_std [0.5, 0.5, 0.5] against [0.229, 0.224, 0.225]"),
            (r#"{"do_normalize": false}"#, "image_mean [0.0, 0.0, 0.0] against [0.485, 0.456, 0.406]"),
        ] {
            let difference = parse(json).difference_from(&hub);
            assert!(difference.as_deref().is_some_and(|d| d.starts_with(expected)), "{json}: {difference:?}");
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
