//! Masks as the command line, grids and the window name them: a drawn strategy (`random`, `block`, `grid`,
//! `centre`) or a picture file, and lists of them with optional per-item ratios (`random:0.75,block:0.5,grid`).
//! One parser and one rule for turning a name into the `MaskSpec` a forward pass takes.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use image::RgbImage;
use mae_model::mask_picture::{load_mask_picture, mask_from_picture};
use mae_model::masking::check_ratio;
use mae_model::{MaskSpec, MaskStrategy};

use super::lists::comma_items;

/// A mask picture: white patches are masked.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskPicture {
    /// The file name, for captions and titles.
    pub name: String,
    pub rgb: Arc<RgbImage>,
}

/// Where a mask comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum MaskSource {
    Strategy(MaskStrategy),
    Picture(MaskPicture),
}

impl Default for MaskSource {
    fn default() -> Self {
        MaskSource::Strategy(MaskStrategy::Random)
    }
}

impl MaskSource {
    /// A strategy's name, or else a picture file (so `grid` is the strategy and `./grid` a file).
    pub fn parse(text: &str) -> Result<Self> {
        if let Ok(strategy) = text.parse::<MaskStrategy>() {
            return Ok(MaskSource::Strategy(strategy));
        }
        let path = Path::new(text);
        if !path.exists() {
            bail!("\"{text}\" is neither a mask strategy (random, block, grid, centre) nor a picture file that exists");
        }
        Ok(MaskSource::Picture(MaskPicture::read(path)?))
    }

    /// The name rows, captions and CSV files show.
    pub fn name(&self) -> String {
        match self {
            MaskSource::Strategy(strategy) => strategy.name().to_string(),
            MaskSource::Picture(picture) => picture.name.clone(),
        }
    }

    /// Whether the mask ratio changes this mask (not for a grid or a picture).
    pub fn uses_ratio(&self) -> bool {
        matches!(self, MaskSource::Strategy(strategy) if strategy.uses_ratio())
    }

    /// Whether the seed changes this mask (not for a centred hole or a picture).
    pub fn uses_seed(&self) -> bool {
        matches!(self, MaskSource::Strategy(strategy) if strategy.uses_seed())
    }

    /// The mask for an input of `input_size` (height, width) pixels cut into `patch`-pixel patches.
    pub fn spec(&self, seed: u64, ratio: f64, input_size: (usize, usize), patch: usize) -> Result<MaskSpec> {
        match self {
            MaskSource::Strategy(strategy) => Ok(MaskSpec::Drawn { strategy: *strategy, seed, ratio }),
            MaskSource::Picture(picture) => {
                let masked = mask_from_picture(&picture.rgb, input_size, patch)
                    .with_context(|| format!("mask picture {}", picture.name))?;
                let visible = (0..masked.len()).filter(|&patch| !masked[patch]).collect();
                Ok(MaskSpec::Keep { visible })
            }
        }
    }
}

impl MaskPicture {
    /// Reads a picture through the bounded image reader; a file that is not a picture is refused with its reason.
    pub fn read(path: &Path) -> Result<Self> {
        let rgb = load_mask_picture(path)?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Self { name, rgb: Arc::new(rgb) })
    }
}

/// One item of a mask list: the mask, and the ratio it replaces the ratio list with, if it names one.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskItem {
    pub source: MaskSource,
    pub ratio: Option<f64>,
}

impl MaskItem {
    /// The ratios this item's rows use: its own, or the list's — only the first of it for a mask the ratio does
    /// not change, so a grid or a picture gives one row rather than identical copies.
    pub fn ratios<'a>(&'a self, list: &'a [f64]) -> &'a [f64] {
        match &self.ratio {
            Some(ratio) => std::slice::from_ref(ratio),
            None if self.source.uses_ratio() => list,
            None => &list[..list.len().min(1)],
        }
    }

    /// The seeds this item's rows use: the list's, or only its first for a mask the seed does not change.
    pub fn seeds<'a>(&self, list: &'a [u64]) -> &'a [u64] {
        if self.source.uses_seed() { list } else { &list[..list.len().min(1)] }
    }
}

/// `random:0.75,block:0.5,grid` — items separated by commas (as every list: [`comma_items`]); a `:ratio` suffix
/// that parses as a number is the item's ratio. At least one item.
pub fn parse_mask_items(text: &str) -> Result<Vec<MaskItem>> {
    let items = comma_items(text)
        .map_err(|problem| anyhow!(problem))?
        .into_iter()
        .map(|item| {
            let (name, ratio) = match item.rsplit_once(':') {
                Some((name, ratio)) if ratio.trim().parse::<f64>().is_ok() => {
                    let ratio: f64 = ratio.trim().parse()?;
                    check_ratio(ratio).with_context(|| format!("mask \"{item}\""))?;
                    (name.trim(), Some(ratio))
                }
                _ => (item, None),
            };
            Ok(MaskItem { source: MaskSource::parse(name)?, ratio })
        })
        .collect::<Result<Vec<_>>>()?;
    if items.is_empty() {
        bail!("the list is empty (give at least one mask: random, block, grid, centre or a picture file)");
    }
    Ok(items)
}

/// Whether a typed mask list takes the ratio list and the seed list: (ratios, seeds), read from the names alone
/// (no picture is opened, so a dialog can ask every frame). A mask with its own `:ratio` takes no ratio from the
/// list; a grid or a picture takes none, a centre or a picture no seed. A list that does not split takes both, so
/// nothing is disabled while it is being fixed.
pub fn list_takes(text: &str) -> (bool, bool) {
    let Ok(items) = comma_items(text) else { return (true, true) };
    items.iter().fold((false, false), |(ratios, seeds), item| {
        let (name, own_ratio) = match item.rsplit_once(':') {
            Some((name, ratio)) if ratio.trim().parse::<f64>().is_ok() => (name.trim(), true),
            _ => (*item, false),
        };
        let strategy = name.parse::<MaskStrategy>().ok();
        let takes_ratio = !own_ratio && strategy.is_some_and(MaskStrategy::uses_ratio);
        (ratios || takes_ratio, seeds || strategy.is_some_and(MaskStrategy::uses_seed))
    })
}

/// `--masks` as clap hands it to a command: every item parsed (picture files read).
#[derive(Clone, Debug, PartialEq)]
pub struct MaskList(pub Vec<MaskItem>);

impl std::str::FromStr for MaskList {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        parse_mask_items(text).map(MaskList).map_err(|error| format!("{error:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_take_strategies_ratios_and_files() {
        let items = parse_mask_items("random:0.75, block:0.5,grid,centre,block").unwrap();
        let names: Vec<(String, Option<f64>)> = items.iter().map(|i| (i.source.name(), i.ratio)).collect();
        let expected =
            [("random", Some(0.75)), ("block", Some(0.5)), ("grid", None), ("centre", None), ("block", None)];
        assert_eq!(names, expected.map(|(name, ratio)| (name.to_string(), ratio)));
        assert!(!items[2].source.uses_ratio() && items[1].source.uses_ratio());
        // Rows only where the ratio or seed changes the mask: a grid takes one ratio, a centred hole one seed.
        let (ratios, seeds) = ([0.1, 0.2], [7, 8]);
        assert_eq!(items[0].ratios(&ratios), &[0.75]);
        assert_eq!((items[2].ratios(&ratios), items[2].seeds(&seeds)), (&[0.1][..], &[7, 8][..]));
        assert_eq!((items[3].ratios(&ratios), items[3].seeds(&seeds)), (&[0.1, 0.2][..], &[7][..]));
        assert_eq!((items[4].ratios(&ratios), items[4].seeds(&seeds)), (&ratios[..], &seeds[..]));
    }

    #[test]
    fn a_list_says_which_of_the_ratio_and_seed_lists_it_takes() {
        assert_eq!(list_takes("random"), (true, true));
        assert_eq!(list_takes("random:0.75, grid"), (false, true));
        assert_eq!(list_takes("centre"), (true, false));
        assert_eq!(list_takes("grid, mask.png"), (false, true));
        assert_eq!(list_takes("mask.png"), (false, false));
        assert_eq!(list_takes("random,,grid"), (true, true));
    }

    #[test]
    fn bad_items_are_named() {
        let error = parse_mask_items("random,blocky").unwrap_err().to_string();
        assert!(error.contains("\"blocky\"") && error.contains("random, block, grid, centre"), "{error}");
        assert!(format!("{:#}", parse_mask_items("block:1.5").unwrap_err()).contains("outside [0, 1]"));
        assert!(parse_mask_items(" , ").unwrap_err().to_string().contains("empty"));
        assert!(parse_mask_items("random,,grid").unwrap_err().to_string().contains("two commas in a row"));
        // A file that is not a picture is refused with the reader's reason.
        let text = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(text.path(), "not a picture").unwrap();
        let error = MaskSource::parse(text.path().to_str().unwrap()).unwrap_err().to_string();
        assert!(error.contains("mask must be a picture"), "{error}");
    }
}
