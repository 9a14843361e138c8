//! Which size a picture is fed to the model at (`--size` and the window's Size control): the model's own input
//! size (as its preprocessor says: today's behaviour), the picture's own shape, or a size given as width×height.
//! Any size other than the model's runs as transformers' `ViTImageProcessor(size={"height": H, "width": W})`
//! followed by `ViTMAEForPreTraining(..., interpolate_pos_encoding=True)`: the same resampling, and position
//! embeddings interpolated to the patch grid (`MaeModel::grid_for`).

use crate::config::{ImageSize, MaeConfig};
use crate::error::{MaeError, Result};
use crate::model::check_forward_fits;
use crate::preprocess::Preprocessor;

/// `native` scales a picture down so its longer side is at most this many pixels (DINO's viewer and the 384–448 px
/// of fine-tuned MAE models sit well under it; a 12-megapixel photo's full size would not fit most memory).
pub const NATIVE_LONGEST_SIDE: u32 = 1024;

/// How a picture is sized for the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SizeRule {
    /// The model's own input size (its preprocessor's `size`): every picture squashed to it.
    #[default]
    Model,
    /// The picture's own shape: scaled by min(1, 1024 / its longer side), each side floored to a multiple of the
    /// patch size.
    Native,
    /// Exactly this width and height (multiples of the patch size).
    Exact { width: usize, height: usize },
}

/// The size a picture is fed at, and why when it is not the picture's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSize {
    pub width: usize,
    pub height: usize,
    /// For `native`: the picture was larger than [`NATIVE_LONGEST_SIDE`] or not a multiple of the patch size,
    /// so it was scaled or cut to this size (the words say which).
    pub note: Option<String>,
}

impl std::fmt::Display for SizeRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SizeRule::Model => f.write_str("model"),
            SizeRule::Native => f.write_str("native"),
            SizeRule::Exact { width, height } => write!(f, "{width}x{height}"),
        }
    }
}

impl std::str::FromStr for SizeRule {
    type Err = String;

    /// `model`, `native` or `WxH` (also `W×H`), with a sentence for each way of getting it wrong.
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let text = text.trim();
        match text {
            "model" => return Ok(SizeRule::Model),
            "native" => return Ok(SizeRule::Native),
            _ => {}
        }
        let Some((width, height)) = text.split_once(['x', 'X', '×']) else {
            return Err(match text.parse::<u64>() {
                Ok(side) => format!("\"{text}\" is one number: a size is WIDTHxHEIGHT (did you mean {side}x{side}?)"),
                Err(_) => format!("\"{text}\" is not a size: use model, native or WIDTHxHEIGHT (e.g. 320x240)"),
            });
        };
        let side = |value: &str, which: &str| -> std::result::Result<usize, String> {
            match value.trim().parse::<i64>() {
                Ok(side) if side >= 1 => usize::try_from(side).map_err(|_| format!("the {which} {side} is too large")),
                Ok(side) => Err(format!("the {which} in \"{text}\" is {side}: sides are at least 1 pixel")),
                Err(_) => Err(format!("\"{text}\": the {which} \"{value}\" is not a whole number of pixels")),
            }
        };
        Ok(SizeRule::Exact { width: side(width, "width")?, height: side(height, "height")? })
    }
}

impl SizeRule {
    /// The size a picture of `picture` (width, height) pixels is fed at, for a model cutting `patch`-pixel patches
    /// whose preprocessor asks for `model_size` (height, width). Arithmetic only: [`SizeRule::check`] adds the
    /// memory. An exact size that is not a multiple of `patch` is refused with the nearest ones that are, naming
    /// `model`.
    pub fn input_size(
        &self,
        picture: (u32, u32),
        patch: usize,
        model_size: (usize, usize),
        model: &str,
    ) -> Result<InputSize> {
        let patch = patch.max(1);
        match *self {
            SizeRule::Model => Ok(InputSize { width: model_size.1, height: model_size.0, note: None }),
            SizeRule::Exact { width, height } => {
                if !width.is_multiple_of(patch) || !height.is_multiple_of(patch) {
                    let near = |side: usize| {
                        let below = (side / patch * patch).max(patch);
                        (below, below + patch)
                    };
                    let ((w_low, w_high), (h_low, h_high)) = (near(width), near(height));
                    return Err(MaeError::InvalidInput(format!(
                        "size {width}x{height}: {model} cuts {patch}-pixel patches, so both sides must be multiples of \
                         {patch}; the nearest sizes are {w_low}x{h_low} and {w_high}x{h_high}"
                    )));
                }
                Ok(InputSize { width, height, note: None })
            }
            SizeRule::Native => {
                let (width, height) = (picture.0.max(1), picture.1.max(1));
                let longer = width.max(height);
                let scale = (f64::from(NATIVE_LONGEST_SIDE) / f64::from(longer)).min(1.0);
                let side = |pixels: u32| {
                    let scaled = (f64::from(pixels) * scale).floor() as usize;
                    (scaled / patch * patch).max(patch)
                };
                let (fed_width, fed_height) = (side(width), side(height));
                let note = if scale < 1.0 {
                    Some(format!("the {width}×{height} picture scaled to at most {NATIVE_LONGEST_SIDE} px"))
                } else if (fed_width, fed_height) != (width as usize, height as usize) {
                    Some(format!("the {width}×{height} picture's sides floored to multiples of {patch}"))
                } else {
                    None
                };
                Ok(InputSize { width: fed_width, height: fed_height, note })
            }
        }
    }

    /// [`SizeRule::input_size`], refused when one forward pass at that size (attention maps kept) would not fit
    /// the memory budget, with the figures.
    pub fn check(
        &self,
        picture: (u32, u32),
        config: &MaeConfig,
        model_size: (usize, usize),
        model: &str,
    ) -> Result<InputSize> {
        let patch = config.patch_size.max(1);
        let fits = |width: usize, height: usize| {
            check_forward_fits(config, (height / patch, width / patch))
                .map_err(|problem| MaeError::InvalidInput(format!("{width}x{height}: {problem}")))
        };
        let size = match self.input_size(picture, config.patch_size, model_size, model) {
            Ok(size) => size,
            // Off the patch grid and too large besides: the memory is the problem to name (the nearest sizes
            // would not fit either).
            Err(off_grid) => {
                if let SizeRule::Exact { width, height } = *self {
                    fits(width, height)?;
                }
                return Err(off_grid);
            }
        };
        fits(size.width, size.height)?;
        Ok(size)
    }
}

impl InputSize {
    /// "size 1024x576 (the 1920×1080 picture scaled to at most 1024 px)": the one line commands print.
    pub fn describe(&self) -> String {
        match &self.note {
            Some(note) => format!("size {}x{} ({note})", self.width, self.height),
            None => format!("size {}x{}", self.width, self.height),
        }
    }
}

impl Preprocessor {
    /// This preprocessing resizing to `height`×`width` instead: transformers' `ViTImageProcessor` with
    /// `size={"height": height, "width": width}` (and resizing on, whatever the file said).
    pub fn with_size(&self, height: usize, width: usize) -> Preprocessor {
        let mut config = self.config.clone();
        config.do_resize = true;
        config.size = ImageSize::HeightWidth { height, width };
        Preprocessor::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> std::result::Result<SizeRule, String> {
        text.parse()
    }

    #[test]
    fn sizes_parse_and_every_mistake_gets_its_sentence() {
        assert_eq!(rule("model"), Ok(SizeRule::Model));
        assert_eq!(rule("native"), Ok(SizeRule::Native));
        assert_eq!(rule("320x240"), Ok(SizeRule::Exact { width: 320, height: 240 }));
        assert_eq!(rule("320×240"), Ok(SizeRule::Exact { width: 320, height: 240 }));
        assert!(rule("224").unwrap_err().contains("did you mean 224x224?"));
        assert!(rule("0x224").unwrap_err().contains("at least 1 pixel"));
        assert!(rule("-16x32").unwrap_err().contains("is -16"));
        assert!(rule("axb").unwrap_err().contains("not a whole number"));
        assert!(rule("big").unwrap_err().contains("model, native or WIDTHxHEIGHT"));
        assert_eq!(SizeRule::Exact { width: 320, height: 240 }.to_string(), "320x240");
    }

    #[test]
    fn native_scales_the_longer_side_to_1024_and_floors_to_patches() {
        let native = |picture| SizeRule::Native.input_size(picture, 16, (224, 224), "m").unwrap();
        let wide = native((1920, 1080));
        assert_eq!((wide.width, wide.height), (1024, 576));
        assert!(wide.note.unwrap().contains("scaled to at most 1024 px"));
        let small = native((451, 300));
        assert_eq!((small.width, small.height), (448, 288));
        assert!(small.note.unwrap().contains("floored to multiples of 16"));
        let exact = native((320, 240));
        assert_eq!((exact.width, exact.height, exact.note), (320, 240, None));
        let tiny = native((5, 3));
        assert_eq!((tiny.width, tiny.height), (16, 16), "at least one patch each way");
        let model = SizeRule::Model.input_size((1920, 1080), 16, (224, 224), "m").unwrap();
        assert_eq!((model.width, model.height), (224, 224));
    }

    #[test]
    fn an_exact_size_off_the_patch_grid_names_the_model_and_the_nearest_sizes() {
        let error = SizeRule::Exact { width: 100, height: 100 }.input_size((1, 1), 16, (224, 224), "demo").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("demo cuts 16-pixel patches"), "{text}");
        assert!(text.contains("96x96 and 112x112"), "{text}");
    }
}
