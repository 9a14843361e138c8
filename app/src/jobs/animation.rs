//! Animations: one comparison grid drawn once per value of the one list that varies (the mask ratios or the
//! seeds), written as a GIF or an APNG.
//!
//! The `animate` command and the window's File → Export animation… both describe theirs as an [`AnimationJob`] and
//! write it here, so the same job gives the same bytes. Each frame is the grid [`GridJob`] draws for that frame's
//! one ratio and seed — the picture `export` writes with those options — so an APNG frame equals that PNG pixel for
//! pixel and a GIF frame equals it within its palette.

use std::io::Cursor;
use std::ops::RangeInclusive;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, DynamicImage, Frame, RgbImage, imageops};
use mae_model::LoadedModel;
use mae_model::memory::check_fits;

use super::grid::{CheckedGridJob, GridJob, GridProgress};
use super::lists::MAX_FRAMES;
use crate::atomic_file::{write_bytes, write_output};
use crate::render::grid::BACKGROUND;

/// Frames per second an animation may play at: GIF delays are whole centiseconds, and browsers play delays under
/// 2 cs (over 50 fps) at 10 cs.
pub const FPS: RangeInclusive<u32> = 1..=50;
pub const DEFAULT_FPS: u32 = 8;

/// The largest side a GIF can describe (its sizes are 16-bit).
const GIF_MAX_SIDE: u32 = u16::MAX as u32;

/// The file an animation is written as, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnimationFormat {
    /// A palette of up to 256 colours per frame.
    Gif,
    /// Animated PNG: lossless.
    Apng,
}

impl AnimationFormat {
    /// `.gif` or `.png` (APNG); anything else is refused, naming the file.
    pub fn of(path: &Path) -> Result<Self> {
        let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        match extension.as_str() {
            "gif" => Ok(AnimationFormat::Gif),
            "png" => Ok(AnimationFormat::Apng),
            _ => bail!("{}: unsupported animation format (use a .gif or .png file name)", path.display()),
        }
    }
}

/// Which of a grid's lists the frames step through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Varied {
    Ratios,
    Seeds,
}

/// A checked animation: one grid job per frame, each with a single ratio and a single seed, and the frame rate.
/// Only [`AnimationJob::new`] makes one.
#[derive(Clone, Debug)]
pub struct AnimationJob {
    frames: Vec<CheckedGridJob>,
    fps: u32,
}

/// `Ok` for a frame rate in [`FPS`], else a sentence naming the range.
pub fn check_fps(fps: u32) -> Result<(), String> {
    if FPS.contains(&fps) {
        Ok(())
    } else {
        Err(format!("the frame rate must be {} to {} frames per second, got {fps}", FPS.start(), FPS.end()))
    }
}

/// How long a GIF shows each frame: 100/fps centiseconds, rounded (8 fps: 12.5 → 13 cs).
pub fn gif_delay_centiseconds(fps: u32) -> u32 {
    (100.0 / f64::from(fps)).round() as u32
}

impl AnimationJob {
    /// The animation of `grid`, one frame per value of whichever of its ratio and seed lists has several (the other
    /// has one), at `fps`. Everything is checked here, before any model is needed: one image, exactly one list
    /// varying, every mask changed by it, at most [`MAX_FRAMES`] frames, each frame's grid as `GridJob::check`
    /// checks it.
    pub fn new(grid: GridJob, fps: u32) -> Result<Self> {
        check_fps(fps).map_err(|problem| anyhow!(problem))?;
        if grid.images.len() != 1 {
            bail!("an animation shows one image, and {} were given: name one image file", grid.images.len());
        }
        let varied = match (grid.ratios.len() > 1, grid.seeds.len() > 1) {
            (true, true) => bail!(
                "both the mask ratios ({}) and the seeds ({}) have several values: an animation steps through one \
                 list, so give the other a single value",
                grid.ratios.len(),
                grid.seeds.len()
            ),
            (false, false) => {
                bail!("nothing to animate: give several mask ratios (e.g. 0.1:0.9:0.1) or several seeds (e.g. 0-9)")
            }
            (true, false) => Varied::Ratios,
            (false, true) => Varied::Seeds,
        };
        let frame_count = match varied {
            Varied::Ratios => grid.ratios.len(),
            Varied::Seeds => grid.seeds.len(),
        };
        if frame_count > MAX_FRAMES {
            bail!("{frame_count} frames are more than the {MAX_FRAMES} an animation may have: give fewer values");
        }
        // A mask the varied list does not change would make frames that repeat, or, with its own ratio, silently
        // ignore the ratios asked for.
        for mask in &grid.masks {
            let name = mask.source.name();
            match varied {
                Varied::Ratios if mask.ratio.is_some() => bail!(
                    "mask \"{name}\" has its own ratio, so several mask ratios would not change it: remove its \
                     :ratio, or vary the seeds instead"
                ),
                Varied::Ratios if !mask.source.uses_ratio() => bail!(
                    "the {name} mask does not change with the mask ratio, so every frame would be the same: use \
                     random or block, or vary the seeds instead"
                ),
                Varied::Seeds if !mask.source.uses_seed() => bail!(
                    "the {name} mask does not change with the seed, so every frame would be the same: use random, \
                     block or grid, or vary the mask ratios instead"
                ),
                _ => {}
            }
        }
        let frames = (0..frame_count)
            .map(|index| {
                let mut frame = grid.clone();
                match varied {
                    Varied::Ratios => frame.ratios = vec![grid.ratios[index]],
                    Varied::Seeds => frame.seeds = vec![grid.seeds[index]],
                }
                frame.check()
            })
            .collect::<Result<_>>()?;
        Ok(Self { frames, fps })
    }

    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// How many models each frame shows (the first that many of the caller's).
    pub fn models(&self) -> usize {
        self.frames[0].models
    }

    /// Grid rows over all frames: the progress total.
    pub fn row_count(&self) -> usize {
        self.frames.iter().map(|frame| frame.row_count()).sum()
    }

    /// Draws every frame (`progress(done, total)` after each grid row), then encodes them in the format `path`'s
    /// extension names and writes the file atomically: a failure leaves no file behind, and without `force` an
    /// existing `path` is never replaced.
    pub fn write(
        &self,
        models: &[&LoadedModel],
        path: &Path,
        force: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<()> {
        let format = AnimationFormat::of(path)?;
        let frames = self.render(models, progress)?;
        let bytes = self.encode(&frames, format).with_context(|| format!("{}: cannot encode", path.display()))?;
        write_output(path, force, |temporary| write_bytes(temporary, &bytes, path))
    }

    /// Every frame as the RGB picture `export` would write for it — except where the frames' captions differ in
    /// width: an animation has one size, so the smaller frames are padded on the right and at the bottom, in the
    /// grid's background colour, to the largest.
    fn render(&self, models: &[&LoadedModel], progress: &mut dyn FnMut(usize, usize)) -> Result<Vec<RgbImage>> {
        let total = self.row_count();
        let mut before = 0;
        let mut frames = Vec::with_capacity(self.frames.len());
        for (index, frame) in self.frames.iter().enumerate() {
            let output = frame.run(models, &mut |update| {
                if let GridProgress::Rows { done, .. } = update {
                    progress(before + done, total);
                }
            })?;
            // The same conversion `export` writes its pictures with (they are opaque).
            let picture = DynamicImage::ImageRgba8(output.picture).to_rgb8();
            if index == 0 {
                let bytes = picture.as_raw().len() as u64 * self.frames.len() as u64;
                check_fits(&format!("the animation's {} frames", self.frames.len()), bytes)
                    .map_err(|problem| anyhow!("{problem}: use fewer frames or a smaller tile size"))?;
            }
            frames.push(picture);
            before += frame.row_count();
        }
        let width = frames.iter().map(RgbImage::width).max().unwrap_or(0);
        let height = frames.iter().map(RgbImage::height).max().unwrap_or(0);
        Ok(frames.into_iter().map(|frame| pad(frame, width, height)).collect())
    }

    /// The file's bytes: a GIF looping forever, each frame with its own palette and a delay of
    /// [`gif_delay_centiseconds`], or an APNG looping forever, RGB 8-bit, each frame shown 1/fps s.
    fn encode(&self, frames: &[RgbImage], format: AnimationFormat) -> Result<Vec<u8>> {
        let Some(first) = frames.first() else { bail!("an animation needs at least one frame") };
        let (width, height) = first.dimensions();
        let mut bytes = Vec::new();
        match format {
            AnimationFormat::Gif => {
                if width > GIF_MAX_SIDE || height > GIF_MAX_SIDE {
                    bail!(
                        "the frames are {width}×{height} pixels and a GIF is at most {GIF_MAX_SIDE} on a side: use a \
                         .png file or a smaller tile size"
                    );
                }
                let delay = Delay::from_numer_denom_ms(gif_delay_centiseconds(self.fps) * 10, 1);
                // NeuQuant learns each frame's palette from every pixel (the encoder's default, speed 1): on the
                // demo model's default grid that is ~0.2 s a frame against ~0.02 s at speed 10, and a third fewer
                // pixels are more than 16 levels off (1.7% against 2.6% on a small grid).
                let mut encoder = GifEncoder::new(Cursor::new(&mut bytes));
                encoder.set_repeat(Repeat::Infinite)?;
                for frame in frames {
                    let rgba = DynamicImage::ImageRgb8(frame.clone()).to_rgba8();
                    encoder.encode_frame(Frame::from_parts(rgba, 0, 0, delay))?;
                }
            }
            AnimationFormat::Apng => {
                let mut encoder = png::Encoder::new(Cursor::new(&mut bytes), width, height);
                encoder.set_color(png::ColorType::Rgb);
                encoder.set_depth(png::BitDepth::Eight);
                // 0 plays: forever, as the GIF.
                encoder.set_animated(frames.len() as u32, 0)?;
                encoder.set_frame_delay(1, self.fps as u16)?;
                let mut writer = encoder.write_header()?;
                for frame in frames {
                    writer.write_image_data(frame.as_raw())?;
                }
                writer.finish()?;
            }
        }
        Ok(bytes)
    }
}

/// `frame` on a `width`×`height` canvas of the grid's background, at the top left (unchanged when it fills it).
fn pad(frame: RgbImage, width: u32, height: u32) -> RgbImage {
    if frame.dimensions() == (width, height) {
        return frame;
    }
    let [red, green, blue, _] = BACKGROUND.0;
    let mut canvas = RgbImage::from_pixel(width, height, image::Rgb([red, green, blue]));
    imageops::replace(&mut canvas, &frame, 0, 0);
    canvas
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::jobs::grid::{GridImage, GridImageSource};
    use crate::jobs::masks::parse_mask_items;
    use crate::render::Colormap;
    use crate::render::grid::Column;
    use crate::render::panels::MaskedStyle;

    fn grid(masks: &str, ratios: &[f64], seeds: &[u64]) -> GridJob {
        GridJob {
            images: vec![GridImage {
                name: "cat.png".into(),
                source: GridImageSource::File { path: PathBuf::from("cat.png"), skip_if_unreadable: false },
            }],
            masks: parse_mask_items(masks).unwrap(),
            ratios: ratios.to_vec(),
            seeds: seeds.to_vec(),
            columns: vec![Column::Original, Column::Reconstruction],
            colormap: Colormap::Viridis,
            masked_style: MaskedStyle::MeanGrey,
            tile_size: 32,
            models: 1,
            size: mae_model::SizeRule::Model,
        }
    }

    fn refusal(grid: GridJob, fps: u32) -> String {
        format!("{:#}", AnimationJob::new(grid, fps).unwrap_err())
    }

    #[test]
    fn one_frame_per_value_of_the_list_that_varies() {
        let ratios = AnimationJob::new(grid("random,block", &[0.25, 0.5, 0.75], &[4]), 8).unwrap();
        assert_eq!(ratios.frame_count(), 3);
        assert_eq!((ratios.frames[1].ratios.as_slice(), ratios.frames[1].seeds.as_slice()), (&[0.5][..], &[4][..]));
        // Two masks: two rows in every frame.
        assert_eq!(ratios.row_count(), 6);
        let seeds = AnimationJob::new(grid("random:0.5,grid", &[0.75], &[0, 1, 2, 3]), 8).unwrap();
        assert_eq!(seeds.frame_count(), 4);
        assert_eq!((seeds.frames[3].ratios.as_slice(), seeds.frames[3].seeds.as_slice()), (&[0.75][..], &[3][..]));
    }

    #[test]
    fn what_cannot_animate_is_refused_before_any_model() {
        let both = refusal(grid("random", &[0.5, 0.75], &[0, 1]), 8);
        assert!(both.contains("both the mask ratios (2) and the seeds (2)"), "{both}");
        assert!(refusal(grid("random", &[0.5], &[0]), 8).contains("nothing to animate"));
        let own = refusal(grid("random:0.75", &[0.5, 0.75], &[0]), 8);
        assert!(own.contains("mask \"random\" has its own ratio"), "{own}");
        assert!(refusal(grid("grid", &[0.5, 0.75], &[0]), 8).contains("the grid mask does not change with the mask"));
        assert!(refusal(grid("centre", &[0.5], &[0, 1]), 8).contains("the centre mask does not change with the seed"));
        let seeds: Vec<u64> = (0..1001).collect();
        assert!(refusal(grid("random", &[0.5], &seeds), 8).contains("1001 frames are more than the 1000"));
        for fps in [0, 51] {
            assert!(refusal(grid("random", &[0.5], &[0, 1]), fps).contains("1 to 50 frames per second"));
        }
        let mut two_images = grid("random", &[0.5], &[0, 1]);
        two_images.images.push(two_images.images[0].clone());
        assert!(refusal(two_images, 8).contains("one image, and 2 were given"));
        // Each frame's grid is checked as `export` checks it.
        let mut tiny_tiles = grid("random", &[0.5], &[0, 1]);
        tiny_tiles.tile_size = 1;
        assert!(refusal(tiny_tiles, 8).contains("tile size"));
    }

    #[test]
    fn formats_follow_the_extension_and_gif_delays_round_to_centiseconds() {
        assert_eq!(AnimationFormat::of(Path::new("a.GIF")).unwrap(), AnimationFormat::Gif);
        assert_eq!(AnimationFormat::of(Path::new("a.png")).unwrap(), AnimationFormat::Apng);
        let error = AnimationFormat::of(Path::new("a.webp")).unwrap_err().to_string();
        assert_eq!(error, "a.webp: unsupported animation format (use a .gif or .png file name)");
        assert_eq!([1, 3, 8, 10, 40, 50].map(gif_delay_centiseconds), [100, 33, 13, 10, 3, 2]);
    }

    #[test]
    fn smaller_frames_are_padded_with_the_background_at_the_bottom_right() {
        let frame = RgbImage::from_pixel(2, 1, image::Rgb([1, 2, 3]));
        let padded = pad(frame, 3, 2);
        assert_eq!(padded.get_pixel(1, 0).0, [1, 2, 3]);
        assert_eq!(padded.get_pixel(2, 0).0, BACKGROUND.0[..3]);
        assert_eq!(padded.get_pixel(0, 1).0, BACKGROUND.0[..3]);
    }
}
