//! Attention maps mapped back onto image patches, and attention rollout (Abnar & Zuidema 2020).
//!
//! Encoder attention is over CLS + the visible tokens in HF's shuffled order: token `t ≥ 1` is spatial patch
//! `masking.ids_keep[t − 1]`, and masked patches have no token at all (their scores are `None`). Decoder attention
//! is over CLS + every patch in spatial order.

use std::fmt;

use anyhow::{Result, bail};
use candle_core::{Device, Tensor};
use image::RgbaImage;
use mae_model::MaeOutput;

use super::colormap::{Colormap, normalize};
use super::{blend, empty_patch_pixel, patch_at};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Stack {
    #[default]
    Encoder,
    Decoder,
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stack::Encoder => "encoder",
            Stack::Decoder => "decoder",
        })
    }
}

/// Which head, or how heads are combined (element-wise over the attention matrices).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HeadFusion {
    Head(usize),
    #[default]
    Mean,
    Max,
    Min,
}

impl fmt::Display for HeadFusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadFusion::Head(head) => write!(f, "head {head}"),
            HeadFusion::Mean => f.write_str("mean"),
            HeadFusion::Max => f.write_str("max"),
            HeadFusion::Min => f.write_str("min"),
        }
    }
}

impl std::str::FromStr for Query {
    type Err = String;

    /// `cls`, or a spatial patch index.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("cls") {
            return Ok(Query::Cls);
        }
        text.parse::<usize>()
            .map(Query::Patch)
            .map_err(|_| format!("\"{text}\" is not a query (cls, or a patch index from 0)"))
    }
}

/// Whose attention row is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Query {
    /// The CLS token's row (CLS → patch).
    #[default]
    Cls,
    /// The row of this spatial patch (patch → patch).
    Patch(usize),
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Cls => f.write_str("CLS"),
            Query::Patch(patch) => write!(f, "patch {patch}"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttentionSelection {
    pub stack: Stack,
    /// 0-based; with `rollout`, the last layer included in the product.
    pub layer: usize,
    pub heads: HeadFusion,
    pub query: Query,
    pub rollout: bool,
    /// Rollout only: this fraction of the smallest fused weights of each layer is zeroed (vit-explain's
    /// `discard_ratio`), 0 keeps everything.
    pub discard_ratio: f32,
}

impl fmt::Display for AttentionSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rollout {
            write!(f, "{} rollout 0–{} {}", self.stack, self.layer, self.heads)?;
            if self.discard_ratio > 0.0 {
                write!(f, " discard {}", self.discard_ratio)?;
            }
        } else {
            write!(f, "{} layer {} {}", self.stack, self.layer, self.heads)?;
        }
        write!(f, " · {}", self.query)
    }
}

/// A square `tokens × tokens` matrix, row-major (row = query, column = key).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenMatrix {
    pub tokens: usize,
    pub values: Vec<f32>,
}

impl TokenMatrix {
    pub fn row(&self, query: usize) -> &[f32] {
        &self.values[query * self.tokens..(query + 1) * self.tokens]
    }
}

/// One layer's `[1, heads, n, n]` attention fused over heads as `heads` says.
pub fn fuse_heads(attention: &Tensor, heads: HeadFusion) -> Result<TokenMatrix> {
    let (batch, head_count, tokens, keys) = attention.dims4()?;
    if batch != 1 || tokens != keys || head_count == 0 {
        bail!("attention must be [1, heads, n, n], got {:?}", attention.dims());
    }
    let all: Vec<f32> = attention.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
    let plane = tokens * tokens;
    let head_plane = |head: usize| &all[head * plane..(head + 1) * plane];
    let values = match heads {
        HeadFusion::Head(head) => {
            if head >= head_count {
                bail!("head {head} does not exist (this layer has {head_count} heads, 0–{})", head_count - 1);
            }
            head_plane(head).to_vec()
        }
        HeadFusion::Mean => {
            let mut sum = vec![0f64; plane];
            for head in 0..head_count {
                sum.iter_mut().zip(head_plane(head)).for_each(|(total, &v)| *total += f64::from(v));
            }
            sum.into_iter().map(|total| (total / head_count as f64) as f32).collect()
        }
        HeadFusion::Max | HeadFusion::Min => {
            let pick = if heads == HeadFusion::Max { f32::max } else { f32::min };
            let mut fused = head_plane(0).to_vec();
            for head in 1..head_count {
                fused.iter_mut().zip(head_plane(head)).for_each(|(kept, &v)| *kept = pick(*kept, v));
            }
            fused
        }
    };
    Ok(TokenMatrix { tokens, values })
}

/// Attention rollout over `layers` (first layer first): each layer's fused attention `A` with the smallest
/// `discard_ratio` of its weights zeroed (never the CLS→CLS weight, as vit-explain does), then `(A + I) / 2` with
/// every row renormalized to sum 1 (row-wise: vit-explain divides by the row sums without `keepdim`, which
/// broadcasts them along the wrong axis — its issue #16 — and is not copied here), multiplied as
/// `Ã_l = A_l · Ã_(l−1)`. Every row of the result sums to 1.
pub fn rollout(layers: &[TokenMatrix], discard_ratio: f32) -> Result<TokenMatrix> {
    let n = check_rollout_input(layers, discard_ratio)?;
    let mut result: Vec<f64> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    for layer in layers {
        result = matmul(&rollout_step(layer, discard_ratio), &result, n);
    }
    Ok(TokenMatrix { tokens: n, values: result.into_iter().map(|v| v as f32).collect() })
}

/// Row `query` of `rollout(layers, discard_ratio)`, computed as `e_query · Ã_L · … · Ã_1` with vector-matrix
/// products: n² work per layer instead of n³, so a 197-token decoder rollout stays interactive.
pub fn rollout_row(layers: &[TokenMatrix], discard_ratio: f32, query: usize) -> Result<Vec<f32>> {
    let n = check_rollout_input(layers, discard_ratio)?;
    if query >= n {
        bail!("query token {query} does not exist ({n} tokens)");
    }
    let mut row = vec![0.0f64; n];
    row[query] = 1.0;
    for layer in layers.iter().rev() {
        let step = rollout_step(layer, discard_ratio);
        let mut next = vec![0.0f64; n];
        for (k, &weight) in row.iter().enumerate().filter(|(_, weight)| **weight != 0.0) {
            for (out, &value) in next.iter_mut().zip(&step[k * n..(k + 1) * n]) {
                *out += weight * value;
            }
        }
        row = next;
    }
    Ok(row.into_iter().map(|v| v as f32).collect())
}

/// The token count shared by all layers, or why rollout cannot run.
fn check_rollout_input(layers: &[TokenMatrix], discard_ratio: f32) -> Result<usize> {
    let Some(first) = layers.first() else { bail!("attention rollout needs at least one layer") };
    if !(0.0..=1.0).contains(&discard_ratio) {
        bail!("discard ratio {discard_ratio} is outside [0, 1]");
    }
    if let Some(other) = layers.iter().find(|layer| layer.tokens != first.tokens) {
        bail!("attention rollout needs layers of equal size ({} and {} tokens)", first.tokens, other.tokens);
    }
    Ok(first.tokens)
}

/// One layer's factor: smallest weights discarded, then `(A + I)/2` with each row divided by its own sum.
fn rollout_step(layer: &TokenMatrix, discard_ratio: f32) -> Vec<f64> {
    let n = layer.tokens;
    let mut attention: Vec<f64> = layer.values.iter().map(|&v| f64::from(v)).collect();
    let discard = (attention.len() as f64 * f64::from(discard_ratio)) as usize;
    if discard > 0 {
        // Only which weights are among the smallest matters, not their order: a linear-time selection.
        let mut order: Vec<usize> = (0..attention.len()).collect();
        order.select_nth_unstable_by(discard - 1, |&a, &b| attention[a].total_cmp(&attention[b]));
        for &index in order[..discard].iter().filter(|&&index| index != 0) {
            attention[index] = 0.0;
        }
    }
    for row in 0..n {
        attention[row * n + row] += 1.0;
        let sum: f64 = attention[row * n..(row + 1) * n].iter().map(|v| v / 2.0).sum();
        for value in &mut attention[row * n..(row + 1) * n] {
            // (A + I)/2 divided by its own row sum; the 1/2 cancels but is kept to mirror the paper.
            *value = *value / 2.0 / sum;
        }
    }
    attention
}

fn matmul(left: &[f64], right: &[f64], n: usize) -> Vec<f64> {
    let mut product = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let factor = left[i * n + k];
            if factor == 0.0 {
                continue;
            }
            for j in 0..n {
                product[i * n + j] += factor * right[k * n + j];
            }
        }
    }
    product
}

/// The selected attention row as one score per spatial patch; `None` where a patch has no token (masked patches
/// in the encoder). The CLS column is left out.
pub fn patch_scores(output: &MaeOutput, selection: &AttentionSelection) -> Result<Vec<Option<f32>>> {
    let stack = selection.stack;
    let layers = stack_layers(output, stack)?;
    if selection.layer >= layers.len() {
        bail!("{stack} layer {} does not exist (the model has {} {stack} layers)", selection.layer, layers.len());
    }

    let num_patches = output.num_patches();
    let patches = token_patches(output, stack);
    let check_token_count = |tokens: usize| -> Result<()> {
        if tokens != patches.len() + 1 {
            bail!("{stack} attention covers {tokens} tokens, expected {}", patches.len() + 1);
        }
        Ok(())
    };
    let query_token = query_token(output, stack, selection.query)?;
    let row: Vec<f32> = if selection.rollout {
        let fused: Vec<TokenMatrix> =
            layers[..=selection.layer].iter().map(|a| fuse_heads(a, selection.heads)).collect::<Result<_>>()?;
        check_token_count(fused[0].tokens)?;
        rollout_row(&fused, selection.discard_ratio, query_token)?
    } else {
        let matrix = fuse_heads(&layers[selection.layer], selection.heads)?;
        check_token_count(matrix.tokens)?;
        matrix.row(query_token).to_vec()
    };
    let mut scores = vec![None; num_patches];
    for (token, &patch) in patches.iter().enumerate() {
        scores[patch] = Some(row[token + 1]);
    }
    Ok(scores)
}

/// The attention probabilities a forward pass kept for every layer of `stack`, or why there are none.
pub fn stack_layers(output: &MaeOutput, stack: Stack) -> Result<&[Tensor]> {
    let layers = match stack {
        Stack::Encoder => &output.encoder_attentions,
        Stack::Decoder => &output.decoder_attentions,
    };
    if layers.is_empty() {
        bail!("this forward pass kept no {stack} attentions (run it with attentions on)");
    }
    Ok(layers)
}

/// The spatial patch of each token after CLS: the encoder's tokens are the visible patches in HF's shuffled order
/// (`ids_keep`), the decoder's are all patches in spatial order.
pub fn token_patches(output: &MaeOutput, stack: Stack) -> Vec<usize> {
    match stack {
        Stack::Encoder => output.masking.ids_keep.clone(),
        Stack::Decoder => (0..output.num_patches()).collect(),
    }
}

/// The token whose attention row a query selects, or why the stack has none.
pub fn query_token(output: &MaeOutput, stack: Stack, query: Query) -> Result<usize> {
    let num_patches = output.num_patches();
    match query {
        Query::Cls => Ok(0),
        Query::Patch(patch) if patch >= num_patches => {
            bail!("patch {patch} does not exist (the image has {num_patches} patches)")
        }
        Query::Patch(patch) => match token_patches(output, stack).iter().position(|&kept| kept == patch) {
            Some(position) => Ok(position + 1),
            None => bail!("patch {patch} is masked, so the encoder has no token for it"),
        },
    }
}

/// Smallest and largest present score, or `None` when every patch is empty.
pub fn score_range(scores: &[Option<f32>]) -> Option<(f32, f32)> {
    scores.iter().flatten().filter(|v| v.is_finite()).fold(None, |range, &v| match range {
        None => Some((v, v)),
        Some((low, high)) => Some((low.min(v), high.max(v))),
    })
}

/// Scores drawn over `base` (any resolution showing the whole patch grid): each patch blended with its colour
/// (scaled over this map's own min..max) at `alpha`; patches without a score drawn visibly empty.
/// `patch_size` is the model's; pixels map to patches by proportion, so an upscaled base works too.
pub fn overlay(
    base: &RgbaImage,
    scores: &[Option<f32>],
    grid: (usize, usize),
    patch_size: usize,
    colormap: Colormap,
    alpha: f32,
) -> RgbaImage {
    debug_assert!(patch_size > 0, "a patch has at least one pixel");
    let range = score_range(scores).unwrap_or((0.0, 1.0));
    overlay_in_range(base, scores, grid, colormap, alpha, range)
}

/// `overlay` with the colour scale spanning `(low, high)` (shared by several maps, say).
pub fn overlay_in_range(
    base: &RgbaImage,
    scores: &[Option<f32>],
    grid: (usize, usize),
    colormap: Colormap,
    alpha: f32,
    (low, high): (f32, f32),
) -> RgbaImage {
    let (width, height) = base.dimensions();
    // One colour per patch, not per pixel: evaluating the colormap is the costly part (the head gallery draws
    // hundreds of these).
    let colors: Vec<_> =
        scores.iter().map(|score| score.map(|score| colormap.color(normalize(score, low, high)))).collect();
    RgbaImage::from_fn(width, height, |x, y| {
        let pixel = *base.get_pixel(x, y);
        match colors.get(patch_at(x, y, width, height, grid)).copied().flatten() {
            Some(color) => blend(pixel, color, alpha),
            None => empty_patch_pixel(pixel),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_sums(matrix: &TokenMatrix) -> Vec<f32> {
        (0..matrix.tokens).map(|row| matrix.row(row).iter().sum()).collect()
    }

    #[test]
    fn rollout_of_one_layer_is_the_renormalized_half_identity_mix() {
        // Rows of a deliberately non-stochastic matrix: rollout must still produce rows that sum to 1.
        let layer = TokenMatrix { tokens: 3, values: vec![0.2, 0.5, 0.3, 0.0, 0.0, 1.0, 2.0, 1.0, 1.0] };
        let rolled = rollout(std::slice::from_ref(&layer), 0.0).unwrap();
        // Row 0: (A + I)/2 = [0.6, 0.25, 0.15], sum 1.
        assert!((rolled.values[0] - 0.6).abs() < 1e-6 && (rolled.values[1] - 0.25).abs() < 1e-6);
        // Row 2: [1, 0.5, 1] / 2.5.
        assert!((rolled.values[8] - 0.4).abs() < 1e-6);
        for sum in row_sums(&rolled) {
            assert!((sum - 1.0).abs() < 1e-6, "{sum}");
        }
    }

    #[test]
    fn discarding_zeroes_the_smallest_weights_but_never_cls_to_cls() {
        let layer = TokenMatrix { tokens: 2, values: vec![0.01, 0.99, 0.7, 0.3] };
        // Discarding half of 4 weights picks the two smallest, 0.01 (CLS→CLS, index 0, spared) and 0.3: A becomes
        // [[0.01, 0.99], [0.7, 0]], so the step is [[1.01, 0.99] / 2, [0.7, 1] / 1.7] and two layers are its square.
        let step = [[0.505, 0.495], [0.7 / 1.7, 1.0 / 1.7]];
        let squared: Vec<f64> = (0..4)
            .map(|index| {
                let (i, j) = (index / 2, index % 2);
                step[i][0] * step[0][j] + step[i][1] * step[1][j]
            })
            .collect();
        let rolled = rollout(&[layer.clone(), layer.clone()], 0.5).unwrap();
        for (got, want) in rolled.values.iter().zip(&squared) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{:?} vs {squared:?}", rolled.values);
        }
        // A quarter of 4 weights is one, CLS→CLS itself: spared, so nothing changes from no discard at all.
        assert_eq!(
            rollout(std::slice::from_ref(&layer), 0.25).unwrap(),
            rollout(std::slice::from_ref(&layer), 0.0).unwrap()
        );
        // Without discarding, row 1 keeps 0.3: [0.7, 1.3] / 2.
        let kept = rollout(std::slice::from_ref(&layer), 0.0).unwrap();
        assert!((kept.values[2] - 0.35).abs() < 1e-6 && (kept.values[3] - 0.65).abs() < 1e-6, "{:?}", kept.values);
        assert!(rollout(&[], 0.0).is_err());
        assert!(rollout(std::slice::from_ref(&layer), 1.5).is_err());
    }

    #[test]
    fn one_rollout_row_equals_that_row_of_the_full_product() {
        let layers: Vec<TokenMatrix> = (0..3)
            .map(|l| TokenMatrix { tokens: 4, values: (0..16).map(|i| ((i * 7 + l * 3) % 11) as f32 / 10.0).collect() })
            .collect();
        for discard in [0.0, 0.3] {
            let full = rollout(&layers, discard).unwrap();
            for query in 0..4 {
                let row = rollout_row(&layers, discard, query).unwrap();
                for (a, b) in row.iter().zip(full.row(query)) {
                    assert!((a - b).abs() < 1e-6, "query {query}: {row:?} vs {:?}", full.row(query));
                }
            }
        }
        assert!(rollout_row(&layers, 0.0, 4).is_err());
    }
}
