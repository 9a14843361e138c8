//! Comparison grids for export: one row per (image, mask ratio, seed), one column per view, a title naming the
//! model, column captions on top and row captions on the left, all drawn with the bundled font.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use image::{Rgba, RgbaImage, imageops};
use mae_model::{MaeOutput, Quality};

use super::attention::{self, AttentionSelection, HeadFusion, Query, Stack};
use super::colormap::Colormap;
use super::loss::{format_value, loss_overlay};
use super::panels::Panels;
use super::text::{draw_text, fit_text, line_height, text_width, wrap_text};

/// What one column of the grid shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Column {
    Original,
    Mask,
    Masked,
    Reconstruction,
    Pasted,
    Loss,
    Attention(AttentionColumn),
}

/// An attention column: CLS → patch attention of one layer (or rollout up to it), drawn over the original.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionColumn {
    pub stack: Stack,
    /// `None`: the last layer of the stack.
    pub layer: Option<usize>,
    pub heads: HeadFusion,
    pub rollout: bool,
    pub discard_ratio: f32,
}

impl AttentionColumn {
    /// The column that shows what an attention selection shows (its layer; the query is always CLS in a grid).
    pub fn of(selection: &AttentionSelection) -> Self {
        Self {
            stack: selection.stack,
            layer: Some(selection.layer),
            heads: selection.heads,
            rollout: selection.rollout,
            discard_ratio: selection.discard_ratio,
        }
    }
}

/// Column names accepted by `--columns`.
const COLUMN_NAMES: &str = "original, mask, masked, reconstruction, pasted, loss, attention[:encoder|decoder]\
[:L<layer>][:mean|max|min|h<head>][:rollout][:discard=<ratio>], rollout[:...]";

impl FromStr for Column {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let spec = text.trim().to_ascii_lowercase();
        let mut parts = spec.split(':');
        let name = parts.next().unwrap_or_default();
        let simple = match name {
            "original" => Some(Column::Original),
            "mask" => Some(Column::Mask),
            "masked" => Some(Column::Masked),
            "reconstruction" => Some(Column::Reconstruction),
            "pasted" => Some(Column::Pasted),
            "loss" => Some(Column::Loss),
            "attention" | "rollout" => None,
            _ => return Err(format!("unknown column \"{text}\" (choose from {COLUMN_NAMES})")),
        };
        if let Some(column) = simple {
            return if spec.contains(':') { Err(format!("column \"{text}\" takes no options")) } else { Ok(column) };
        }
        let mut column = AttentionColumn { rollout: name == "rollout", ..AttentionColumn::default() };
        for part in parts {
            let number = |digits: &str| digits.parse::<usize>().ok();
            match part {
                "encoder" => column.stack = Stack::Encoder,
                "decoder" => column.stack = Stack::Decoder,
                "mean" => column.heads = HeadFusion::Mean,
                "max" => column.heads = HeadFusion::Max,
                "min" => column.heads = HeadFusion::Min,
                "rollout" => column.rollout = true,
                _ if part.starts_with('l') && number(&part[1..]).is_some() => column.layer = number(&part[1..]),
                _ if part.starts_with('h') && number(&part[1..]).is_some() => {
                    column.heads = HeadFusion::Head(number(&part[1..]).unwrap_or_default())
                }
                _ if part.starts_with("discard=") => match part["discard=".len()..].parse::<f32>() {
                    Ok(ratio) if (0.0..=1.0).contains(&ratio) => column.discard_ratio = ratio,
                    _ => return Err(format!("column \"{text}\": the discard ratio must be a number in [0, 1]")),
                },
                _ => return Err(format!("column \"{text}\": unknown attention option \"{part}\" ({COLUMN_NAMES})")),
            }
        }
        Ok(Column::Attention(column))
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Original => f.write_str("original"),
            Column::Mask => f.write_str("mask"),
            Column::Masked => f.write_str("masked"),
            Column::Reconstruction => f.write_str("reconstruction"),
            Column::Pasted => f.write_str("pasted"),
            Column::Loss => f.write_str("loss"),
            Column::Attention(column) => {
                let layer = column.layer.map_or("last".to_string(), |layer| format!("L{layer}"));
                let kind = if column.rollout { "rollout" } else { "attention" };
                write!(f, "{kind} {} {layer} {}", column.stack, column.heads)?;
                if column.discard_ratio > 0.0 {
                    write!(f, " discard {}", column.discard_ratio)?;
                }
                Ok(())
            }
        }
    }
}

/// How strongly heatmaps cover the picture beneath.
const OVERLAY_ALPHA: f32 = 0.65;

/// The caption of a column for this model (reconstructions of `norm_pix_loss` models are marked).
pub fn column_caption(column: &Column, uses_target_statistics: bool) -> String {
    match column {
        Column::Reconstruction | Column::Pasted if uses_target_statistics => format!("{column}*"),
        Column::Mask => "mask (white = masked)".to_string(),
        _ => column.to_string(),
    }
}

/// One tile at model resolution.
fn render_tile(column: &Column, output: &MaeOutput, panels: &Panels, colormap: Colormap) -> Result<RgbaImage> {
    Ok(match column {
        Column::Original => panels.original.clone(),
        Column::Mask => panels.mask.clone(),
        Column::Masked => panels.masked.clone(),
        Column::Reconstruction => panels.reconstruction.clone(),
        Column::Pasted => panels.pasted.clone(),
        Column::Loss => loss_overlay(&panels.original, &output.patch_loss, output.grid, colormap, OVERLAY_ALPHA),
        Column::Attention(column) => {
            let layers = match column.stack {
                Stack::Encoder => output.encoder_attentions.len(),
                Stack::Decoder => output.decoder_attentions.len(),
            };
            let selection = AttentionSelection {
                stack: column.stack,
                layer: column.layer.unwrap_or(layers.saturating_sub(1)),
                heads: column.heads,
                query: Query::Cls,
                rollout: column.rollout,
                discard_ratio: column.discard_ratio,
            };
            let scores = attention::patch_scores(output, &selection)?;
            attention::overlay(&panels.original, &scores, output.grid, output.patch_size, colormap, OVERLAY_ALPHA)
        }
    })
}

/// What a row's caption says besides what the output itself tells.
#[derive(Clone, Copy, Debug)]
pub struct RowLabel<'a> {
    pub image: &'a str,
    /// The model's name, when the row shows several models (each one's measurements then follow its name).
    pub model: Option<&'a str>,
    pub mask: &'a str,
    /// `None` for masks the ratio does not change (grid, picture).
    pub ratio: Option<f64>,
    pub seed: u64,
    /// How many patches the mask aimed for, where it aims for a count (block masks may stop short).
    pub requested_masked: Option<usize>,
    pub quality: &'a Quality,
}

/// The row for one (image, mask, ratio, seed) forward pass: a tile per column and the caption lines (image name,
/// mask, ratio and masked count, seed, loss, PSNR and SSIM).
pub fn grid_row(
    label: &RowLabel,
    output: &MaeOutput,
    panels: &Panels,
    columns: &[Column],
    colormap: Colormap,
) -> Result<GridRow> {
    let tiles = columns.iter().map(|column| render_tile(column, output, panels, colormap)).collect::<Result<_>>()?;
    let loss = output.loss.map_or("none".to_string(), format_value);
    let mask = match label.ratio {
        Some(ratio) => format!("{} {ratio}", label.mask),
        None => label.mask.to_string(),
    };
    let masked = masked_count(output.masking.num_masked(), output.num_patches(), label.requested_masked);
    let measured = [
        format!("loss {loss}"),
        psnr_line(label.quality),
        format!("SSIM {}", label.quality.ssim.map_or("none".to_string(), |ssim| format!("{ssim:.3}"))),
    ];
    let (image, mask, seed) = (
        fit_text(label.image, CAPTION_SIZE, MAX_NAME_WIDTH),
        fit_text(&mask, CAPTION_SIZE, MAX_NAME_WIDTH),
        format!("seed {}", label.seed),
    );
    let caption = match label.model {
        None => [vec![image, mask, masked, seed], measured.to_vec()].concat(),
        // The row's own lines first (`RowLabel::shared_lines` of them), then this model's.
        Some(model) => {
            [vec![image, mask, seed, fit_text(model, CAPTION_SIZE, MAX_NAME_WIDTH), masked], measured.to_vec()].concat()
        }
    };
    Ok(GridRow { caption, tiles })
}

impl RowLabel<'_> {
    /// Caption lines every model of a row shares (image, mask, seed), written once.
    pub fn shared_lines(&self) -> usize {
        3
    }
}

/// "147/196 masked", and the count asked for when a mask fell short of it.
pub fn masked_count(masked: usize, patches: usize, requested: Option<usize>) -> String {
    match requested {
        Some(requested) if requested != masked => format!("{masked}/{patches} masked ({requested} asked)"),
        _ => format!("{masked}/{patches} masked"),
    }
}

/// "PSNR 23.4 dB (masked 21.0)": over all pixels, then over the masked ones only.
pub fn psnr_line(quality: &Quality) -> String {
    match quality.psnr_masked_db {
        Some(masked) => format!("PSNR {} (masked {})", format_psnr(quality.psnr_db), format_psnr(masked)),
        None => format!("PSNR {}", format_psnr(quality.psnr_db)),
    }
}

/// A PSNR in dB, with a perfect match said in words.
pub fn format_psnr(psnr_db: f64) -> String {
    if psnr_db.is_infinite() { "∞ (identical)".to_string() } else { format!("{psnr_db:.2} dB") }
}

/// The title line: model, input size and patch, the heatmap colormap when heatmaps are shown, and the warning that
/// `norm_pix_loss` reconstructions used the targets' own statistics.
pub fn grid_title(
    model_name: &str,
    (height, width): (usize, usize),
    patch_size: usize,
    columns: &[Column],
    colormap: Colormap,
    uses_target_statistics: bool,
) -> String {
    let mut title = format!("MAE Explorer · {model_name} · {width}×{height} px, patch {patch_size}");
    if columns.iter().any(|column| matches!(column, Column::Loss | Column::Attention(_))) {
        title.push_str(&format!(" · heatmaps: {colormap} over each tile's own range"));
    }
    if uses_target_statistics {
        title.push_str(" · * de-normalized with the target patches' own statistics");
    }
    title
}

/// One row: caption lines for the left margin and one tile per column (any size; scaled into the grid).
#[derive(Clone, Debug)]
pub struct GridRow {
    pub caption: Vec<String>,
    pub tiles: Vec<RgbaImage>,
}

/// Text and size of the whole grid.
#[derive(Clone, Debug)]
pub struct GridSpec {
    pub title: String,
    pub column_captions: Vec<String>,
    /// Side of each square tile in pixels; tiles are scaled with nearest-neighbour so patches stay crisp.
    pub tile_size: u32,
}

pub const TITLE_SIZE: f32 = 18.0;
/// Longer image names are shortened with "…" so one long name cannot widen the caption margin without bound.
const MAX_NAME_WIDTH: u32 = 260;
const CAPTION_SIZE: f32 = 14.0;
const PADDING: u32 = 8;
/// Largest grid written (pixels): about 1 GiB of RGBA while composing.
pub const MAX_GRID_PIXELS: u64 = 256 * 1024 * 1024;
/// Space after each tile, right and below.
pub const GAP: u32 = 4;
/// The grid's background, also the padding of animation frames smaller than the others.
pub const BACKGROUND: Rgba<u8> = Rgba([236, 236, 236, 255]);
const INK: [u8; 3] = [20, 20, 20];

/// Where everything goes: width = `caption_width + columns·(tile_size + GAP)`, height = `title_height +
/// header_height + Σ (row height + GAP)` (each tile is followed by a thin gap so neighbouring tiles, and white
/// mask tiles, stay apart). A cell keeps its picture's aspect with the longer side `tile_size`: a row of square
/// pictures is `tile_size` high, a 16:9 row 9/16 of it (a portrait picture is centred in its column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridGeometry {
    pub columns: u32,
    pub tile_size: u32,
    /// Each row's height: its tallest cell.
    pub row_heights: Vec<u32>,
    pub caption_width: u32,
    pub title_height: u32,
    pub header_height: u32,
}

/// Height of a row caption of `lines` lines, as `compose_grid` draws them.
fn caption_height(lines: usize) -> u32 {
    PADDING / 2 + lines as u32 * (line_height(CAPTION_SIZE) + 2)
}

/// A `width`×`height` picture's cell: scaled so the longer side is `size`, each side at least 1 pixel.
fn cell_size((width, height): (u32, u32), size: u32) -> (u32, u32) {
    if width == height {
        return (size, size);
    }
    let scale = f64::from(size) / f64::from(width.max(height).max(1));
    let side = |pixels: u32| ((f64::from(pixels) * scale).round() as u32).clamp(1, size);
    (side(width), side(height))
}

impl GridGeometry {
    pub fn new(spec: &GridSpec, rows: &[GridRow]) -> Self {
        let widest_caption = rows.iter().flat_map(|row| &row.caption).map(|line| text_width(line, CAPTION_SIZE)).max();
        let row_heights = rows
            .iter()
            .map(|row| {
                let tallest = row.tiles.iter().map(|tile| cell_size(tile.dimensions(), spec.tile_size).1).max();
                let tallest = tallest.unwrap_or(spec.tile_size);
                // A row lower than a tile (wide pictures) still holds its caption. (A full-tile row keeps exactly
                // the tile's height, as grids of the model's square input always had.)
                if tallest < spec.tile_size { tallest.max(caption_height(row.caption.len())) } else { tallest }
            })
            .collect();
        let mut geometry = Self {
            columns: spec.column_captions.len() as u32,
            tile_size: spec.tile_size,
            row_heights,
            caption_width: widest_caption.unwrap_or(0).max(40) + 2 * PADDING,
            title_height: 0,
            header_height: 0,
        };
        // Title and column captions wrap (never truncate) when the grid or the tiles are narrow.
        let title_lines = geometry.title_lines(&spec.title).len().max(1) as u32;
        let header_lines = spec.column_captions.iter().map(|c| geometry.header_lines(c).len()).max().unwrap_or(1);
        geometry.title_height = title_lines * line_height(TITLE_SIZE) + 2 * PADDING;
        geometry.header_height = header_lines.max(1) as u32 * line_height(CAPTION_SIZE) + PADDING;
        geometry
    }

    fn title_lines(&self, title: &str) -> Vec<String> {
        let width = self.width().min(u64::from(u32::MAX)) as u32;
        wrap_text(title, TITLE_SIZE, width.saturating_sub(2 * PADDING))
    }

    fn header_lines(&self, caption: &str) -> Vec<String> {
        wrap_text(caption, CAPTION_SIZE, self.tile_size.saturating_sub(4))
    }

    pub fn width(&self) -> u64 {
        u64::from(self.caption_width) + u64::from(self.columns) * u64::from(self.tile_size + GAP)
    }

    pub fn height(&self) -> u64 {
        let rows: u64 = self.row_heights.iter().map(|&height| u64::from(height + GAP)).sum();
        u64::from(self.title_height + self.header_height) + rows
    }

    /// Top-left corner of the cell in `row`, `column`.
    pub fn tile_origin(&self, row: u32, column: u32) -> (u32, u32) {
        let above: u32 = self.row_heights.iter().take(row as usize).map(|&height| height + GAP).sum();
        (self.caption_width + column * (self.tile_size + GAP), self.title_height + self.header_height + above)
    }

    /// Refuses grids too large to compose in memory, naming the size.
    fn check_size(&self) -> Result<()> {
        let pixels = self.width() * self.height();
        if self.width() > u64::from(u32::MAX) || self.height() > u64::from(u32::MAX) || pixels > MAX_GRID_PIXELS {
            bail!(
                "the grid would be {}×{} pixels (at most {MAX_GRID_PIXELS} pixels): use fewer images, mask ratios or \
                 seeds, or a smaller --tile-size",
                self.width(),
                self.height()
            );
        }
        Ok(())
    }
}

/// `tile` scaled (nearest) to its cell ([`cell_size`]: the longer side `size`), centred in a `size` wide,
/// `row_height` high box on the background colour.
fn fit_tile(tile: &RgbaImage, size: u32, row_height: u32) -> RgbaImage {
    let (width, height) = tile.dimensions();
    if (width, height) == (size, row_height) {
        return tile.clone();
    }
    let (scaled_width, scaled_height) = cell_size((width, height), size);
    let scaled = imageops::resize(tile, scaled_width, scaled_height, imageops::FilterType::Nearest);
    let mut cell = RgbaImage::from_pixel(size, row_height, BACKGROUND);
    imageops::replace(
        &mut cell,
        &scaled,
        i64::from(size.saturating_sub(scaled_width) / 2),
        i64::from(row_height.saturating_sub(scaled_height) / 2),
    );
    cell
}

/// Draws the grid.
pub fn compose_grid(spec: &GridSpec, rows: &[GridRow]) -> Result<RgbaImage> {
    if spec.tile_size == 0 {
        bail!("the tile size must be at least 1 pixel");
    }
    if let Some(row) = rows.iter().find(|row| row.tiles.len() != spec.column_captions.len()) {
        bail!("a grid row has {} tiles for {} columns", row.tiles.len(), spec.column_captions.len());
    }
    let geometry = GridGeometry::new(spec, rows);
    geometry.check_size()?;
    let mut canvas = RgbaImage::from_pixel(geometry.width() as u32, geometry.height() as u32, BACKGROUND);

    for (index, line) in geometry.title_lines(&spec.title).iter().enumerate() {
        let top = PADDING as f32 + (index as u32 * line_height(TITLE_SIZE)) as f32;
        draw_text(&mut canvas, line, PADDING as f32, top, TITLE_SIZE, INK);
    }
    for (index, caption) in spec.column_captions.iter().enumerate() {
        let (x, _) = geometry.tile_origin(0, index as u32);
        let lines = geometry.header_lines(caption);
        // Bottom-aligned, so every caption sits right above its column.
        let first_top =
            geometry.title_height + geometry.header_height - PADDING - lines.len() as u32 * line_height(CAPTION_SIZE);
        for (line_index, line) in lines.iter().enumerate() {
            let centred = x + spec.tile_size.saturating_sub(text_width(line, CAPTION_SIZE)) / 2;
            let top = first_top + line_index as u32 * line_height(CAPTION_SIZE);
            draw_text(&mut canvas, line, centred as f32, top as f32, CAPTION_SIZE, INK);
        }
    }
    // As `caption_height` counts them.
    let line = line_height(CAPTION_SIZE) as f32 + 2.0;
    for (row_index, row) in rows.iter().enumerate() {
        let (_, top) = geometry.tile_origin(row_index as u32, 0);
        for (line_index, text) in row.caption.iter().enumerate() {
            let y = top as f32 + PADDING as f32 / 2.0 + line_index as f32 * line;
            draw_text(&mut canvas, text, PADDING as f32, y, CAPTION_SIZE, INK);
        }
        let row_height = geometry.row_heights[row_index];
        for (column_index, tile) in row.tiles.iter().enumerate() {
            let (x, y) = geometry.tile_origin(row_index as u32, column_index as u32);
            imageops::replace(&mut canvas, &fit_tile(tile, spec.tile_size, row_height), i64::from(x), i64::from(y));
        }
    }
    Ok(canvas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_parse() {
        let attention: Column = "attention:decoder:L1:h0".parse().unwrap();
        assert_eq!(
            attention,
            Column::Attention(AttentionColumn {
                stack: Stack::Decoder,
                layer: Some(1),
                heads: HeadFusion::Head(0),
                ..AttentionColumn::default()
            })
        );
        assert!(matches!("rollout:discard=0.9".parse::<Column>().unwrap(), Column::Attention(c) if c.rollout));
        assert!("attention:sideways".parse::<Column>().unwrap_err().contains("sideways"));
        assert!("mask:L1".parse::<Column>().is_err());
    }

    #[test]
    fn cells_keep_the_pictures_aspect_with_the_longer_side_the_tile_size() {
        assert_eq!(cell_size((8, 4), 16), (16, 8));
        assert_eq!(cell_size((1024, 576), 224), (224, 126));
        assert_eq!(cell_size((240, 320), 224), (168, 224));
        assert_eq!(cell_size((3, 3), 224), (224, 224));
        let wide = RgbaImage::from_pixel(8, 4, Rgba([1, 2, 3, 255]));
        let cell = fit_tile(&wide, 16, 8);
        assert_eq!(cell.dimensions(), (16, 8));
        assert!(cell.pixels().all(|pixel| pixel.0 == [1, 2, 3, 255]), "a wide row is as high as its pictures");
        // In a taller row (a portrait picture beside it), a wide cell is centred on the background.
        let boxed = fit_tile(&wide, 16, 16);
        assert_eq!((boxed.get_pixel(0, 8).0, boxed.get_pixel(0, 0).0), ([1, 2, 3, 255], BACKGROUND.0));
    }
}
