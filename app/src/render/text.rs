//! Text drawn into exported pictures with the bundled DejaVu Sans (assets/fonts), so captions look the same on
//! every machine and need no system fonts.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use image::{Rgba, RgbaImage};

static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

fn font() -> FontRef<'static> {
    // The bytes are a known-good TrueType file compiled into the binary; a test parses them.
    FontRef::try_from_slice(FONT_BYTES).expect("the bundled DejaVu Sans font parses")
}

/// Horizontal advance of `text` at `size` pixels (em height), kerning included, rounded up.
pub fn text_width(text: &str, size: f32) -> u32 {
    let font = font();
    let scaled = font.as_scaled(PxScale::from(size));
    let mut width = 0.0;
    let mut previous = None;
    for character in text.chars() {
        let id = scaled.glyph_id(character);
        if let Some(previous) = previous {
            width += scaled.kern(previous, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width.ceil() as u32
}

/// Height of one line at `size` pixels (ascent − descent), rounded up.
pub fn line_height(size: f32) -> u32 {
    let font = font();
    let scaled = font.as_scaled(PxScale::from(size));
    (scaled.ascent() - scaled.descent()).ceil() as u32
}

/// Draws `text` with its line box's top-left corner at (`x`, `top`), anti-aliased onto `image`; glyphs outside
/// the image are clipped.
pub fn draw_text(image: &mut RgbaImage, text: &str, x: f32, top: f32, size: f32, color: [u8; 3]) {
    let font = font();
    let scale = PxScale::from(size);
    let scaled = font.as_scaled(scale);
    let baseline = top + scaled.ascent();
    let mut caret = x;
    let mut previous = None;
    for character in text.chars() {
        let id = scaled.glyph_id(character);
        if let Some(previous) = previous {
            caret += scaled.kern(previous, id);
        }
        let glyph = id.with_scale_and_position(scale, point(caret, baseline));
        caret += scaled.h_advance(id);
        previous = Some(id);
        let Some(outlined) = font.outline_glyph(glyph) else { continue };
        let bounds = outlined.px_bounds();
        outlined.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i64 + i64::from(gx);
            let py = bounds.min.y as i64 + i64::from(gy);
            if px < 0 || py < 0 || px >= i64::from(image.width()) || py >= i64::from(image.height()) {
                return;
            }
            let pixel = image.get_pixel_mut(px as u32, py as u32);
            let blended = super::blend(*pixel, color, coverage);
            *pixel = Rgba([blended[0], blended[1], blended[2], pixel[3]]);
        });
    }
}

/// `text` shortened with "…" so that it fits in `max_width` pixels at `size`.
pub fn fit_text(text: &str, size: f32, max_width: u32) -> String {
    if text_width(text, size) <= max_width {
        return text.to_string();
    }
    let mut characters: Vec<char> = text.chars().collect();
    while !characters.is_empty() {
        characters.pop();
        let candidate: String = characters.iter().collect::<String>() + "…";
        if text_width(&candidate, size) <= max_width {
            return candidate;
        }
    }
    String::new()
}

/// `text` broken at spaces into lines no wider than `max_width` at `size`; a single word too wide for a line is
/// shortened with "…".
pub fn wrap_text(text: &str, size: f32, max_width: u32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ').filter(|word| !word.is_empty()) {
        let candidate = if current.is_empty() { word.to_string() } else { format!("{current} {word}") };
        if text_width(&candidate, size) <= max_width || current.is_empty() {
            current = candidate;
        } else {
            lines.push(std::mem::replace(&mut current, word.to_string()));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines.into_iter().map(|line| fit_text(&line, size, max_width)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_width_and_ink() {
        assert!(text_width("reconstruction", 16.0) > text_width("mask", 16.0));
        assert_eq!(text_width("", 16.0), 0);
        let mut image = RgbaImage::from_pixel(120, 30, Rgba([255, 255, 255, 255]));
        draw_text(&mut image, "Chelsea 0.75", 2.0, 2.0, 16.0, [0, 0, 0]);
        let dark = image.pixels().filter(|p| p[0] < 128).count();
        assert!(dark > 50, "only {dark} dark pixels");
        // Drawing partly outside the picture clips instead of panicking.
        draw_text(&mut image, "clipped", 100.0, 20.0, 16.0, [0, 0, 0]);
        let short = fit_text("a very long file name indeed.png", 14.0, 80);
        assert!(short.ends_with('…') && text_width(&short, 14.0) <= 80, "{short}");
        let lines = wrap_text("attention decoder last head 3", 14.0, 120);
        assert!(lines.len() >= 2 && lines.iter().all(|l| text_width(l, 14.0) <= 120), "{lines:?}");
        assert_eq!(lines.join(" "), "attention decoder last head 3");
        assert_eq!(wrap_text("short", 14.0, 500), vec!["short".to_string()]);
    }
}
