//! The head gallery: every head of every layer as a small attention overlay, layers down and heads across (as
//! BertViz's model view lays them out), for one query token, with row and column labels and a title that states
//! the colour scale. The window's Heads panel shows this picture and the `heads` command writes it.

use anyhow::{Result, bail};
use image::{Rgba, RgbaImage, imageops};
use mae_model::MaeOutput;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::attention::{Query, Stack, overlay_in_range, query_token, score_range, stack_layers, token_patches};
use super::colormap::Colormap;
use super::text::{draw_text, line_height, text_width, wrap_text};

/// How the thumbnails' colours are scaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GalleryScale {
    /// One scale over every head shown: heads compare colour for colour.
    #[default]
    Shared,
    /// Each thumbnail over its own lowest..highest weight: every head's pattern shows, magnitudes do not compare.
    PerHead,
}

/// What the gallery shows.
#[derive(Clone, Debug, PartialEq)]
pub struct GallerySpec {
    pub stacks: Vec<Stack>,
    pub query: Query,
    pub scale: GalleryScale,
    pub colormap: Colormap,
    /// Width of a thumbnail in pixels (its height follows the image's aspect).
    pub thumbnail: u32,
    /// The title and the row and column labels drawn into the picture (the `heads` command's file). The window
    /// shows the picture scaled to its tile, where baked-in text shrank past reading ("at:ention"): it asks for
    /// the thumbnails alone and writes the title and labels itself at its own text size.
    pub text: bool,
}

/// Where each head's thumbnail sits in the gallery picture.
#[derive(Clone, Debug, PartialEq)]
pub struct GalleryGeometry {
    /// (stack, layer) of each row, top to bottom.
    pub rows: Vec<(Stack, usize)>,
    /// Heads in each row.
    pub heads: Vec<usize>,
    pub thumbnail: (u32, u32),
    /// Left edge and top edge of the first thumbnail.
    pub origin: (u32, u32),
    pub width: u32,
    pub height: u32,
}

/// Width of a thumbnail in the window's gallery and the `heads` command's (the same picture).
pub const THUMBNAIL_WIDTH: u32 = 64;
/// Space between thumbnails.
const GAP: u32 = 2;
const TITLE_SIZE: f32 = 14.0;
const LABEL_SIZE: f32 = 12.0;
const PADDING: u32 = 6;
const BACKGROUND: Rgba<u8> = Rgba([30, 30, 30, 255]);
const INK: [u8; 3] = [230, 230, 230];
/// Heatmap opacity over the picture.
const ALPHA: f32 = 0.75;

impl GalleryGeometry {
    /// The head whose thumbnail covers picture pixel (x, y), if any.
    pub fn head_at(&self, x: f32, y: f32) -> Option<(Stack, usize, usize)> {
        let (pitch_x, pitch_y) = (self.thumbnail.0 + GAP, self.thumbnail.1 + GAP);
        let (dx, dy) = (x - self.origin.0 as f32, y - self.origin.1 as f32);
        if dx < 0.0 || dy < 0.0 {
            return None;
        }
        let (column, row) = ((dx / pitch_x as f32) as usize, (dy / pitch_y as f32) as usize);
        let inside = dx - (column as u32 * pitch_x) as f32 <= self.thumbnail.0 as f32
            && dy - (row as u32 * pitch_y) as f32 <= self.thumbnail.1 as f32;
        let &(stack, layer) = self.rows.get(row)?;
        (inside && column < self.heads[row]).then_some((stack, layer, column))
    }

    /// The centre of a head's thumbnail in picture pixels.
    pub fn centre_of(&self, stack: Stack, layer: usize, head: usize) -> Option<(f32, f32)> {
        let row = self.rows.iter().position(|&known| known == (stack, layer))?;
        (head < self.heads[row]).then(|| {
            let x = self.origin.0 + head as u32 * (self.thumbnail.0 + GAP) + self.thumbnail.0 / 2;
            let y = self.origin.1 + row as u32 * (self.thumbnail.1 + GAP) + self.thumbnail.1 / 2;
            (x as f32, y as f32)
        })
    }
}

/// The drawn gallery.
#[derive(Clone, Debug, PartialEq)]
pub struct Gallery {
    pub picture: RgbaImage,
    pub geometry: GalleryGeometry,
    /// The title, which says what is shown and how the colours scale.
    pub title: String,
}

/// One head's attention row as a score per patch (`None`: no token, i.e. masked in the encoder).
type HeadScores = Vec<Option<f32>>;

/// Draws the gallery of `spec.stacks` over `base` (the original at model resolution).
pub fn render_gallery(output: &MaeOutput, base: &RgbaImage, spec: &GallerySpec) -> Result<Gallery> {
    if spec.thumbnail < 8 {
        bail!("thumbnails must be at least 8 pixels wide");
    }
    // Rows of (stack, layer, one score vector per head), and why a stack shows nothing for this query.
    let mut rows: Vec<(Stack, usize, Vec<HeadScores>)> = Vec::new();
    let mut notes = Vec::new();
    for &stack in &spec.stacks {
        let layers = stack_layers(output, stack)?;
        let patches = token_patches(output, stack);
        let query = match query_token(output, stack, spec.query) {
            Ok(token) => Some(token),
            Err(why) => {
                notes.push(format!("{why:#}"));
                None
            }
        };
        for (layer, attention) in layers.iter().enumerate() {
            let (heads, tokens, values) = MaeOutput::attention_host(attention)?;
            if tokens != patches.len() + 1 {
                bail!("{stack} layer {layer} covers {tokens} tokens, expected {}", patches.len() + 1);
            }
            let scores = (0..heads)
                .map(|head| {
                    let mut scores = vec![None; output.num_patches()];
                    if let Some(query) = query {
                        let row = &values[(head * tokens + query) * tokens..(head * tokens + query + 1) * tokens];
                        for (&patch, &weight) in patches.iter().zip(&row[1..]) {
                            scores[patch] = Some(weight);
                        }
                    }
                    scores
                })
                .collect();
            rows.push((stack, layer, scores));
        }
    }
    let all: Vec<Option<f32>> = rows.iter().flat_map(|(_, _, heads)| heads.iter().flatten().copied()).collect();
    let shared = score_range(&all);
    let what = format!("{} attention of {}", stack_names(&spec.stacks), spec.query);
    let scale = match (spec.scale, shared) {
        // Attention weights lie in [0, 1]: three decimals say it as a person reads it (not "2.34e-23").
        (GalleryScale::Shared, Some((low, high))) => {
            format!("one colour scale for all heads, attention weight {low:.3} to {high:.3}")
        }
        (GalleryScale::Shared, None) => "one colour scale for all heads".to_string(),
        (GalleryScale::PerHead, _) => "each head scaled to its own lowest..highest weight".to_string(),
    };
    let mut title = format!("{what} · {}: {scale}", spec.colormap);
    for note in &notes {
        title.push_str(&format!(" · {note}"));
    }

    let (height, width) = output.image_size();
    let thumbnail = (spec.thumbnail, ((spec.thumbnail as f32) * height as f32 / width as f32).round().max(8.0) as u32);
    let small = imageops::resize(base, thumbnail.0, thumbnail.1, imageops::FilterType::Triangle);
    let label_width =
        rows.iter().map(|(stack, layer, _)| text_width(&row_label(&spec.stacks, *stack, *layer), LABEL_SIZE)).max();
    let most_heads = rows.iter().map(|(_, _, heads)| heads.len()).max().unwrap_or(0) as u32;
    let left = if spec.text { label_width.unwrap_or(0) + 2 * PADDING } else { PADDING };
    let width = left + most_heads * (thumbnail.0 + GAP) + PADDING;
    let title_lines =
        if spec.text { wrap_text(&title, TITLE_SIZE, width.saturating_sub(2 * PADDING).max(80)) } else { Vec::new() };
    let top = if spec.text {
        PADDING + title_lines.len() as u32 * line_height(TITLE_SIZE) + PADDING + line_height(LABEL_SIZE) + 2
    } else {
        PADDING
    };
    let height = top + rows.len() as u32 * (thumbnail.1 + GAP) + PADDING;
    let mut picture = RgbaImage::from_pixel(width, height, BACKGROUND);

    for (index, line) in title_lines.iter().enumerate() {
        let line_top = PADDING + index as u32 * line_height(TITLE_SIZE);
        draw_text(&mut picture, line, PADDING as f32, line_top as f32, TITLE_SIZE, INK);
    }
    for head in (0..most_heads).filter(|_| spec.text) {
        let text = format!("h{head}");
        let x = left + head * (thumbnail.0 + GAP) + thumbnail.0.saturating_sub(text_width(&text, LABEL_SIZE)) / 2;
        draw_text(&mut picture, &text, x as f32, (top - line_height(LABEL_SIZE) - 2) as f32, LABEL_SIZE, INK);
    }
    for (row, (stack, layer, heads)) in rows.iter().enumerate() {
        let y = top + row as u32 * (thumbnail.1 + GAP);
        if spec.text {
            let label_top = y + thumbnail.1.saturating_sub(line_height(LABEL_SIZE)) / 2;
            draw_text(
                &mut picture,
                &row_label(&spec.stacks, *stack, *layer),
                PADDING as f32,
                label_top as f32,
                LABEL_SIZE,
                INK,
            );
        }
        // Thumbnails in parallel (a base-sized decoder has 16 per row), placed in order.
        let tiles: Vec<RgbaImage> = heads
            .par_iter()
            .map(|scores| {
                let range = match spec.scale {
                    GalleryScale::Shared => shared,
                    GalleryScale::PerHead => score_range(scores),
                };
                overlay_in_range(&small, scores, output.grid, spec.colormap, ALPHA, range.unwrap_or((0.0, 1.0)))
            })
            .collect();
        for (head, tile) in tiles.iter().enumerate() {
            let x = left + head as u32 * (thumbnail.0 + GAP);
            imageops::replace(&mut picture, tile, i64::from(x), i64::from(y));
        }
    }
    let geometry = GalleryGeometry {
        rows: rows.iter().map(|(stack, layer, _)| (*stack, *layer)).collect(),
        heads: rows.iter().map(|(_, _, heads)| heads.len()).collect(),
        thumbnail,
        origin: (left, top),
        width,
        height,
    };
    Ok(Gallery { picture, geometry, title })
}

/// A row's label: "L3", or "enc L3" when the gallery shows both stacks (the window writes the same labels).
pub fn row_label(stacks: &[Stack], stack: Stack, layer: usize) -> String {
    if stacks.len() > 1 { format!("{} L{layer}", &stack.to_string()[..3]) } else { format!("L{layer}") }
}

fn stack_names(stacks: &[Stack]) -> String {
    stacks.iter().map(Stack::to_string).collect::<Vec<_>>().join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thumbnail_centre_maps_back_to_its_head() {
        let geometry = GalleryGeometry {
            rows: vec![(Stack::Encoder, 0), (Stack::Encoder, 1), (Stack::Decoder, 0)],
            heads: vec![3, 3, 2],
            thumbnail: (20, 16),
            origin: (30, 40),
            width: 100,
            height: 100,
        };
        for &(stack, layer) in &geometry.rows {
            let heads = if stack == Stack::Decoder { 2 } else { 3 };
            for head in 0..heads {
                let (x, y) = geometry.centre_of(stack, layer, head).unwrap();
                assert_eq!(geometry.head_at(x, y), Some((stack, layer, head)));
            }
        }
        assert_eq!(geometry.head_at(5.0, 50.0), None, "the label margin is no head");
        assert_eq!(geometry.head_at(30.0 + 2.0 * 22.0 + 5.0, 40.0 + 2.0 * 18.0 + 5.0), None, "the decoder has 2 heads");
        assert_eq!(geometry.centre_of(Stack::Decoder, 0, 2), None);
    }
}
