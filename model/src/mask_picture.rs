//! Masks as pictures: a picture file becomes a mask (white = masked), and a mask becomes a picture that reads back
//! as the same mask. The conversion follows what a Python user would write with PIL:
//! `img.resize((W, H), Image.NEAREST).convert("L")`, a pixel ≥ 128 is masked, and a patch is masked when at least
//! half of its pixels are.

use std::path::Path;

use image::{GrayImage, Luma, RgbImage};

use crate::error::{MaeError, Result};
use crate::preprocess::{load_rgb_image, resize_nearest};

/// Grey level from which a pixel counts as masked (white).
const MASKED_FROM: u8 = 128;

/// PIL's `convert("L")` of an RGB pixel: ITU-R 601-2 luma in 16-bit fixed point, rounded.
fn pil_luma([red, green, blue]: [u8; 3]) -> u8 {
    ((u32::from(red) * 19595 + u32::from(green) * 38470 + u32::from(blue) * 7471 + 0x8000) >> 16) as u8
}

/// Reads a mask picture from a file (any format the app reads, through the same bounded reader as images).
pub fn load_mask_picture(path: &Path) -> Result<RgbImage> {
    load_rgb_image(path).map_err(|error| {
        MaeError::InvalidInput(format!("{error}: a mask must be a picture whose white areas are masked"))
    })
}

/// Which patches `picture` masks (spatial order) for a model input of `input_size` (height, width) pixels cut
/// into `patch`×`patch` patches. Alpha was already dropped when the picture was read, as `convert("L")` drops it.
pub fn mask_from_picture(picture: &RgbImage, (height, width): (usize, usize), patch: usize) -> Result<Vec<bool>> {
    if patch == 0 || height % patch != 0 || width % patch != 0 {
        return Err(MaeError::InvalidInput(format!(
            "{height}×{width} pixels is not a whole number of {patch}-pixel patches"
        )));
    }
    let resized = resize_nearest(picture, (width as u32, height as u32))?;
    let (rows, cols) = (height / patch, width / patch);
    let mut masked_pixels = vec![0usize; rows * cols];
    for (x, y, pixel) in resized.enumerate_pixels() {
        if pil_luma(pixel.0) >= MASKED_FROM {
            masked_pixels[(y as usize / patch) * cols + x as usize / patch] += 1;
        }
    }
    Ok(masked_pixels.into_iter().map(|count| 2 * count >= patch * patch).collect())
}

/// The mask as a picture of the model's input size: white (255) on masked patches, black elsewhere.
pub fn mask_to_picture(masked: &[bool], (rows, cols): (usize, usize), patch: usize) -> GrayImage {
    GrayImage::from_fn((cols * patch) as u32, (rows * patch) as u32, |x, y| {
        let index = (y as usize / patch) * cols + x as usize / patch;
        Luma([if masked.get(index).copied().unwrap_or(false) { 255 } else { 0 }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_matches_pil() {
        // python3 -c "from PIL import Image; print([Image.new('RGB', (1, 1), c).convert('L').getpixel((0, 0))
        //   for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128), (200, 100, 50)]])"
        let grey: Vec<u8> = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128], [200, 100, 50]]
            .into_iter()
            .map(pil_luma)
            .collect();
        assert_eq!(grey, vec![76, 150, 29, 128, 124]);
    }

    #[test]
    fn half_white_patches_are_masked_and_pictures_read_back() {
        // A 4×4-pixel input of 2×2 patches: the top-left patch has 2 of 4 pixels white (masked: at least half), the
        // top-right 1 of 4 (visible), the bottom-left all (masked), the bottom-right none.
        let white = image::Rgb([255, 255, 255]);
        let mut picture = RgbImage::new(4, 4);
        for (x, y) in [(0, 0), (1, 0), (3, 0), (0, 2), (1, 2), (0, 3), (1, 3)] {
            picture.put_pixel(x, y, white);
        }
        let masked = mask_from_picture(&picture, (4, 4), 2).unwrap();
        assert_eq!(masked, vec![true, false, true, false]);
        let written = mask_to_picture(&masked, (2, 2), 2);
        let reread = image::DynamicImage::ImageLuma8(written).to_rgb8();
        assert_eq!(mask_from_picture(&reread, (4, 4), 2).unwrap(), masked);
        // Any size is resized to the input first (nearest): a 1×2 picture, white on the right, masks the right half.
        let halves = RgbImage::from_fn(2, 1, |x, _| if x == 1 { white } else { image::Rgb([0, 0, 0]) });
        assert_eq!(mask_from_picture(&halves, (4, 4), 2).unwrap(), vec![false, true, false, true]);
    }
}
