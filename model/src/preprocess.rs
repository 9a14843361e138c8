//! Image → `pixel_values`, as HF's ViTImageProcessor computes them with PIL.
//!
//! Steps: decode (any format the `image` crate reads), apply the EXIF orientation (HF's `load_image` calls
//! `ImageOps.exif_transpose`), convert to 8-bit RGB exactly as PIL's `convert("RGB")` does, resize straight to
//! the configured size with Pillow's own convolution arithmetic (`pil_resize.rs`), rescale, normalize.

use std::io::Cursor;
use std::path::Path;

use candle_core::{Device, Tensor};
use fast_image_resize::images::Image as ResizeImage;
use fast_image_resize::{PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::config::{PreprocessorConfig, Resample};
use crate::error::{MaeError, Result};
use crate::input_file::{MAX_IMAGE_FILE_BYTES, MAX_PIXELS, read_limited};
use crate::memory;
use crate::pil_resize::{PilFilter, resize_rgb};

/// Decodes an image file into PIL-equivalent RGB with its EXIF orientation applied. Only regular files are read,
/// and only up to [`MAX_IMAGE_FILE_BYTES`] (see `input_file.rs`).
pub fn load_rgb_image(path: &Path) -> Result<RgbImage> {
    let bytes = read_limited(path, MAX_IMAGE_FILE_BYTES, "an image file").map_err(|e| MaeError::image(path, e))?;
    decode_rgb_image(&bytes).map_err(|problem| MaeError::image(path, problem))
}

/// Decodes image bytes (a dropped file, the clipboard) into PIL-equivalent RGB; the error is a sentence.
pub fn decode_rgb_image(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the image: {e}"))?;
    let Some(format) = reader.format() else {
        return Err("not an image in a format MAE Explorer can read (PNG, JPEG, GIF, BMP, TIFF, WebP, ...)".into());
    };
    let mut decoder = reader.into_decoder().map_err(|e| format!("cannot decode the image: {e}"))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err("the image is empty (0 pixels)".into());
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(format!(
            "the image is too large ({width}×{height} = {pixels} pixels; at most {MAX_PIXELS}, PIL's limit against \
             decompression bombs)"
        ));
    }
    // The decoded samples, then the 8-bit RGB copy and its oriented copy.
    memory::check_fits("decoding the image", decoder.total_bytes().saturating_add(2 * 3 * pixels))?;
    let orientation = decoder.orientation().map_err(|e| format!("cannot read the image orientation: {e}"))?;
    let mut image = match format {
        image::ImageFormat::Jpeg => DynamicImage::ImageRgb8(decode_jpeg_like_pil(bytes)?),
        _ => DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode the image: {e}"))?,
    };
    image.apply_orientation(orientation);
    Ok(to_rgb_like_pil(image))
}

/// PIL's error for a file that ends before its picture does.
const TRUNCATED: &str = "image file is truncated (it ends before the picture is complete; was the download cut off?)";

/// Decodes a JPEG with libjpeg-turbo's defaults (accurate integer IDCT, fancy upsampling), as PIL does, so the
/// pixels are bit-identical to PIL's; CMYK and YCCK files are read as CMYK and converted as PIL converts them.
///
/// A file that ends early is refused as PIL refuses it. libjpeg itself only *warns* ("Premature end of JPEG
/// file"), invents an end marker and leaves the rest of the picture flat grey; PIL instead fails when the decoder
/// asks for bytes the file does not have. [`EndWatch`] notices that same request.
fn decode_jpeg_like_pil(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    let read_past_end = std::cell::Cell::new(false);
    // libjpeg reports fatal errors by unwinding out of its error handler; keep that inside this function.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> std::io::Result<_> {
        let decompress = mozjpeg::Decompress::new_reader(EndWatch { rest: bytes, read_past_end: &read_past_end })?;
        let cmyk = matches!(decompress.color_space(), mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK);
        let mut started =
            if cmyk { decompress.to_colorspace(mozjpeg::ColorSpace::JCS_CMYK)? } else { decompress.rgb()? };
        let (width, height) = (started.width(), started.height());
        let samples: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        Ok((width, height, cmyk, samples))
    }));
    if read_past_end.get() {
        return Err(TRUNCATED.into());
    }
    let (width, height, cmyk, samples) = match decoded {
        Ok(Ok(decoded)) => decoded,
        Ok(Err(error)) => return Err(format!("cannot decode the JPEG: {error}")),
        Err(_) => return Err("cannot decode the JPEG: the file is corrupt".into()),
    };
    let rgb = if cmyk { samples.chunks_exact(4).flat_map(adobe_cmyk_to_rgb_like_pil).collect() } else { samples };
    RgbImage::from_raw(width as u32, height as u32, rgb).ok_or_else(|| TRUNCATED.to_string())
}

/// PIL reads JPEG CMYK as Adobe writes it, inverted (raw mode `CMYK;I`), then `convert("RGB")` computes
/// `255 − K − C·(255 − K)/255` with its own rounding (`MULDIV255`); this is that arithmetic on the stored samples.
fn adobe_cmyk_to_rgb_like_pil(stored: &[u8]) -> [u8; 3] {
    let not_black = u32::from(stored[3]); // 255 − K, with K = 255 − stored
    let times_not_black = |stored_ink: u8| {
        let product = (255 - u32::from(stored_ink)) * not_black + 128;
        ((product >> 8) + product) >> 8
    };
    std::array::from_fn(|c| (not_black - times_not_black(stored[c]).min(not_black)) as u8)
}

/// The JPEG bytes as libjpeg's data source, remembering whether libjpeg asked for more after the last byte.
struct EndWatch<'a> {
    rest: &'a [u8],
    read_past_end: &'a std::cell::Cell<bool>,
}

impl std::io::Read for EndWatch<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = std::io::Read::read(&mut self.rest, buffer)?;
        if count == 0 && !buffer.is_empty() {
            self.read_past_end.set(true);
        }
        Ok(count)
    }
}

impl std::io::BufRead for EndWatch<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.rest.is_empty() {
            self.read_past_end.set(true);
        }
        Ok(self.rest)
    }

    fn consume(&mut self, amount: usize) {
        self.rest = &self.rest[amount.min(self.rest.len())..];
    }
}

/// PIL's `convert("RGB")`: alpha is dropped (not composited), grey is replicated, and 16-bit data follows PIL's
/// rules — 16-bit greyscale opens as mode `I;16` and *clips* to 255, while 16-bit grey+alpha and colour keep the
/// high byte. Clipping makes such images look washed out, but it is what HF feeds the model.
fn to_rgb_like_pil(image: DynamicImage) -> RgbImage {
    let (width, height) = (image.width(), image.height());
    let high_byte = |v: u16| (v >> 8) as u8;
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageLuma16(grey) => {
            RgbImage::from_fn(width, height, |x, y| image::Rgb([grey.get_pixel(x, y).0[0].min(255) as u8; 3]))
        }
        DynamicImage::ImageLumaA16(grey) => {
            RgbImage::from_fn(width, height, |x, y| image::Rgb([high_byte(grey.get_pixel(x, y).0[0]); 3]))
        }
        DynamicImage::ImageRgb16(rgb) => {
            RgbImage::from_fn(width, height, |x, y| image::Rgb(rgb.get_pixel(x, y).0.map(high_byte)))
        }
        DynamicImage::ImageRgba16(rgba) => RgbImage::from_fn(width, height, |x, y| {
            let [r, g, b, _] = rgba.get_pixel(x, y).0;
            image::Rgb([high_byte(r), high_byte(g), high_byte(b)])
        }),
        // 8-bit grey, grey+alpha, RGBA and float images: the image crate's conversion drops alpha and replicates
        // grey exactly as PIL does.
        other => other.to_rgb8(),
    }
}

/// Nearest-neighbour resize (resample 0), which no ViTMAE checkpoint uses; fast_image_resize's matches Pillow's.
pub(crate) fn resize_nearest(image: &RgbImage, (width, height): (u32, u32)) -> Result<RgbImage> {
    let source = ResizeImage::from_vec_u8(image.width(), image.height(), image.as_raw().clone(), PixelType::U8x3)
        .map_err(|e| MaeError::InvalidInput(format!("cannot resize the image: {e}")))?;
    let mut target = ResizeImage::new(width, height, PixelType::U8x3);
    Resizer::new()
        .resize(&source, &mut target, &ResizeOptions::new().resize_alg(ResizeAlg::Nearest))
        .map_err(|e| MaeError::InvalidInput(format!("cannot resize the image: {e}")))?;
    RgbImage::from_raw(width, height, target.into_vec())
        .ok_or_else(|| MaeError::InvalidInput("resize produced a buffer of the wrong size".into()))
}

/// Resizes and normalizes images the way the model's `preprocessor_config.json` says.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    pub config: PreprocessorConfig,
}

impl Preprocessor {
    pub fn new(config: PreprocessorConfig) -> Self {
        Self { config }
    }

    /// Output (height, width) of `resize` for this configuration.
    fn output_size(&self, image: &RgbImage) -> (usize, usize) {
        if self.config.do_resize {
            self.config.target_size()
        } else {
            (image.height() as usize, image.width() as usize)
        }
    }

    /// PIL-compatible resize to the configured size (a copy when no resize is configured or needed).
    pub fn resize(&self, image: &RgbImage) -> Result<RgbImage> {
        let (height, width) = self.output_size(image);
        if (width as u32, height as u32) == image.dimensions() {
            return Ok(image.clone());
        }
        let filter = match self.config.resample_filter().map_err(MaeError::InvalidInput)? {
            Resample::Bilinear => PilFilter::Bilinear,
            Resample::Bicubic => PilFilter::Bicubic,
            Resample::Lanczos => PilFilter::Lanczos,
            Resample::Nearest => return resize_nearest(image, (width as u32, height as u32)),
        };
        let pixels =
            resize_rgb(image.as_raw(), (image.width() as usize, image.height() as usize), (width, height), filter);
        RgbImage::from_raw(width as u32, height as u32, pixels)
            .ok_or_else(|| MaeError::InvalidInput("resize produced a buffer of the wrong size".into()))
    }

    /// Rescales and normalizes an already-resized RGB image into `[1, 3, H, W]` float32 values.
    pub fn normalize(&self, image: &RgbImage, device: &Device) -> Result<Tensor> {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let scale = if self.config.do_rescale { self.config.rescale_factor as f32 } else { 1.0 };
        let (mean, std) = if self.config.do_normalize {
            (self.config.image_mean, self.config.image_std)
        } else {
            ([0.0; 3], [1.0; 3])
        };
        memory::check_fits("the pixel values of the image", 3 * 4 * (height as u64) * (width as u64))
            .map_err(MaeError::InvalidInput)?;
        let mut values = vec![0f32; 3 * height * width];
        for (index, pixel) in image.pixels().enumerate() {
            for channel in 0..3 {
                values[channel * height * width + index] =
                    (pixel.0[channel] as f32 * scale - mean[channel]) / std[channel];
            }
        }
        Ok(Tensor::from_vec(values, (1, 3, height, width), device)?)
    }

    /// `resize` then `normalize`.
    pub fn pixel_values(&self, image: &RgbImage, device: &Device) -> Result<Tensor> {
        self.normalize(&self.resize(image)?, device)
    }

    /// Inverse of `normalize` into [0, 1] for the quality metrics: `clip(x·std + mean, 0, 1)` for the hub's
    /// preprocessing (rescale 1/255), channel-major values with `plane` pixels per channel, computed in f32 as
    /// NumPy computes it on float32 arrays.
    pub fn to_unit_range(&self, chw: &[f32], plane: usize) -> Vec<f32> {
        let (mean, std) = if self.config.do_normalize {
            (self.config.image_mean, self.config.image_std)
        } else {
            ([0.0; 3], [1.0; 3])
        };
        let scale = if self.config.do_rescale { self.config.rescale_factor } else { 1.0 };
        // Values were divided by 255 (or by whatever the rescale factor is the inverse of); undo only the rest.
        let to_unit = (1.0 / (scale * 255.0)) as f32;
        chw.iter()
            .enumerate()
            .map(|(index, &value)| {
                let channel = index / plane;
                let unit = value * std[channel] + mean[channel];
                (if to_unit == 1.0 { unit } else { unit * to_unit }).clamp(0.0, 1.0)
            })
            .collect()
    }

    /// Inverse of `normalize` for display, as the MAE demo does: `clip((x·std + mean)·255, 0, 255)`.
    pub fn denormalize_to_rgb(&self, chw: &[f32], height: usize, width: usize) -> RgbImage {
        let (mean, std) = if self.config.do_normalize {
            (self.config.image_mean, self.config.image_std)
        } else {
            ([0.0; 3], [1.0; 3])
        };
        let scale = if self.config.do_rescale { self.config.rescale_factor as f32 } else { 1.0 };
        let plane = height * width;
        RgbImage::from_fn(width as u32, height as u32, |x, y| {
            let index = y as usize * width + x as usize;
            image::Rgb(std::array::from_fn(|c| {
                let value = (chw[c * plane + index] * std[c] + mean[c]) / scale;
                value.round().clamp(0.0, 255.0) as u8
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, LumaA, Rgba};

    #[test]
    fn pil_conversion_rules() {
        let grey16 = DynamicImage::ImageLuma16(ImageBuffer::from_pixel(1, 1, Luma([1000u16])));
        assert_eq!(to_rgb_like_pil(grey16).get_pixel(0, 0).0, [255; 3]);
        let grey_alpha16 = DynamicImage::ImageLumaA16(ImageBuffer::from_pixel(1, 1, LumaA([0x1234u16, 7])));
        assert_eq!(to_rgb_like_pil(grey_alpha16).get_pixel(0, 0).0, [0x12; 3]);
        let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(1, 1, Rgba([10u8, 20, 30, 0])));
        assert_eq!(to_rgb_like_pil(rgba).get_pixel(0, 0).0, [10, 20, 30]);
    }

    #[test]
    fn non_images_are_refused_with_a_reason() {
        let err = decode_rgb_image(b"this is plain text, not a picture").unwrap_err();
        assert!(err.contains("not an image"), "{err}");
        let mut png = Vec::new();
        RgbImage::new(4, 4).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let err = decode_rgb_image(&png[..png.len() / 2]).unwrap_err();
        assert!(err.contains("cannot decode"), "{err}");
        let mut jpeg = Vec::new();
        let gradient = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
        gradient.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        assert_eq!(decode_rgb_image(&jpeg).unwrap().dimensions(), (64, 48));
        for cut in [jpeg.len() / 2, 20] {
            let err = decode_rgb_image(&jpeg[..cut]).unwrap_err();
            assert!(err.contains("JPEG") || err.contains("decode"), "{err}");
        }
    }

    #[test]
    fn normalize_then_denormalize_round_trips() {
        let preprocessor = Preprocessor::new(PreprocessorConfig::default());
        let image = RgbImage::from_fn(5, 3, |x, y| image::Rgb([(x * 50) as u8, (y * 90) as u8, 128]));
        let values = preprocessor.normalize(&image, &Device::Cpu).unwrap();
        let flat: Vec<f32> = values.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(preprocessor.denormalize_to_rgb(&flat, 3, 5), image);
    }
}
