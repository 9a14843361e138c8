//! Per-head attention statistics, from the attention probabilities a forward pass kept:
//!
//! - `mean_distance_px`: mean over query tokens i ≥ 1 of Σ_{j≥1} A[i,j]·dist(i,j) / Σ_{j≥1} A[i,j], where
//!   `dist` is `patch_size ×` the Euclidean distance between the two tokens' patches on the grid (the ViT paper's
//!   "mean attention distance", local vs global heads);
//! - `entropy`: mean over all query tokens i of −Σ_j A[i,j]·ln A[i,j] in nats (0·ln 0 = 0);
//! - `cls_share`: mean over query tokens i ≥ 1 of A[i,0].
//!
//! Token 0 is CLS; the others map to patches as `render::attention::token_patches` says (the encoder's visible
//! patches in HF's shuffled order, the decoder's in spatial order). Sums run in f64.

use std::io::Write;

use anyhow::{Result, bail};
use mae_model::MaeOutput;
use rayon::prelude::*;

use crate::render::attention::{Stack, stack_layers, token_patches};

/// The statistics of one head of one layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadStats {
    pub stack: Stack,
    pub layer: usize,
    pub head: usize,
    pub mean_distance_px: f64,
    pub entropy: f64,
    pub cls_share: f64,
}

/// Statistics of every head of every layer of `stacks`, in stack, layer, head order.
pub fn head_stats(output: &MaeOutput, stacks: &[Stack]) -> Result<Vec<HeadStats>> {
    let mut all = Vec::new();
    for &stack in stacks {
        let layers = stack_layers(output, stack)?;
        let distances = token_distances(output, stack);
        for (layer, attention) in layers.iter().enumerate() {
            let (heads, tokens, values) = MaeOutput::attention_host(attention)?;
            if tokens != distances.tokens {
                bail!("{stack} layer {layer} covers {tokens} tokens, expected {}", distances.tokens);
            }
            // Heads in parallel: each is a few hundred thousand logarithms for a base-sized decoder layer.
            let layer_stats: Vec<HeadStats> = values
                .par_chunks_exact(tokens * tokens)
                .take(heads)
                .enumerate()
                .map(|(head, plane)| one_head(stack, layer, head, plane, &distances))
                .collect();
            all.extend(layer_stats);
        }
    }
    Ok(all)
}

/// Pixel distances between the patches of every pair of tokens after CLS.
struct TokenDistances {
    /// Tokens including CLS.
    tokens: usize,
    /// `(tokens − 1)²`, row-major.
    pixels: Vec<f64>,
}

fn token_distances(output: &MaeOutput, stack: Stack) -> TokenDistances {
    let patches = token_patches(output, stack);
    let cols = output.grid.1;
    let patch_size = output.patch_size as f64;
    let position = |patch: usize| ((patch / cols) as f64, (patch % cols) as f64);
    let pixels = patches
        .iter()
        .flat_map(|&from| {
            let (row, col) = position(from);
            patches.iter().map(move |&to| {
                let (to_row, to_col) = position(to);
                patch_size * ((row - to_row).powi(2) + (col - to_col).powi(2)).sqrt()
            })
        })
        .collect();
    TokenDistances { tokens: patches.len() + 1, pixels }
}

fn one_head(stack: Stack, layer: usize, head: usize, plane: &[f32], distances: &TokenDistances) -> HeadStats {
    let n = distances.tokens;
    let (mut distance_sum, mut entropy_sum, mut cls_sum) = (0.0f64, 0.0f64, 0.0f64);
    for (query, row) in plane.chunks_exact(n).enumerate() {
        entropy_sum -= row.iter().filter(|&&a| a > 0.0).map(|&a| f64::from(a) * f64::from(a.ln())).sum::<f64>();
        if query == 0 {
            continue;
        }
        let pixels = &distances.pixels[(query - 1) * (n - 1)..query * (n - 1)];
        let (weighted, mass) = row[1..]
            .iter()
            .zip(pixels)
            .fold((0.0f64, 0.0f64), |(weighted, mass), (&a, &d)| (weighted + f64::from(a) * d, mass + f64::from(a)));
        distance_sum += weighted / mass;
        cls_sum += f64::from(row[0]);
    }
    let patch_queries = (n - 1) as f64;
    HeadStats {
        stack,
        layer,
        head,
        mean_distance_px: distance_sum / patch_queries,
        entropy: entropy_sum / n as f64,
        cls_share: cls_sum / patch_queries,
    }
}

/// The statistics as CSV: `stack,layer,head,mean_distance_px,entropy,cls_share`, one row per head.
pub fn write_csv(stats: &[HeadStats], mut writer: impl Write) -> std::io::Result<()> {
    writeln!(writer, "stack,layer,head,mean_distance_px,entropy,cls_share")?;
    for s in stats {
        writeln!(writer, "{},{},{},{},{},{}", s.stack, s.layer, s.head, s.mean_distance_px, s.entropy, s.cls_share)?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distances_on_a_line(patches: usize, patch_size: f64) -> TokenDistances {
        let pixels =
            (0..patches).flat_map(|i| (0..patches).map(move |j| patch_size * (i as f64 - j as f64).abs())).collect();
        TokenDistances { tokens: patches + 1, pixels }
    }

    #[test]
    fn a_head_that_looks_at_itself_is_local_sharp_and_ignores_cls() {
        // 3 tokens: CLS, patch 0, patch 1 (8 px apart). Every query attends only to itself.
        let plane = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let stats = one_head(Stack::Decoder, 0, 0, &plane, &distances_on_a_line(2, 8.0));
        assert_eq!((stats.mean_distance_px, stats.entropy, stats.cls_share), (0.0, 0.0, 0.0));
    }

    #[test]
    fn a_uniform_head_spreads_its_attention() {
        let third = 1.0f32 / 3.0;
        let plane = [third; 9];
        let stats = one_head(Stack::Encoder, 1, 2, &plane, &distances_on_a_line(2, 8.0));
        // Each patch query weighs itself (0 px) and the other patch (8 px) equally, ignoring CLS's share.
        assert!((stats.mean_distance_px - 4.0).abs() < 1e-6, "{stats:?}");
        assert!((stats.entropy - 3f64.ln()).abs() < 1e-6, "{stats:?}");
        assert!((stats.cls_share - 1.0 / 3.0).abs() < 1e-6, "{stats:?}");
        let mut csv = Vec::new();
        write_csv(&[stats], &mut csv).unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert!(text.starts_with("stack,layer,head,mean_distance_px,entropy,cls_share\nencoder,1,2,4"), "{text}");
    }
}
