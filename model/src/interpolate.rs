//! torch's `F.interpolate(mode="bicubic", align_corners=False)` for position embeddings, as HF's
//! `interpolate_pos_encoding` uses it for inputs whose size differs from the config's.
//!
//! The tables are small (at most a few hundred positions), so this runs on the host in f32 like torch's CPU kernel.

/// torch's cubic convolution coefficient A.
const CUBIC_A: f32 = -0.75;

/// The four weights torch applies to samples at offsets -1, 0, 1, 2 for fractional position `t`.
fn cubic_weights(t: f32) -> [f32; 4] {
    let near = |x: f32| ((CUBIC_A + 2.0) * x - (CUBIC_A + 3.0)) * x * x + 1.0;
    let far = |x: f32| ((CUBIC_A * x - 5.0 * CUBIC_A) * x + 8.0 * CUBIC_A) * x - 4.0 * CUBIC_A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// For each output index: the four clamped source indices and their weights.
fn taps(input: usize, output: usize) -> Vec<([usize; 4], [f32; 4])> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|out| {
            let real = scale * (out as f32 + 0.5) - 0.5;
            let floor = real.floor();
            let weights = cubic_weights(real - floor);
            let base = floor as isize;
            let index = |offset: isize| (base + offset).clamp(0, input as isize - 1) as usize;
            ([index(-1), index(0), index(1), index(2)], weights)
        })
        .collect()
}

/// Bicubic resize of a `[in_h, in_w, dim]` grid (row-major, channels last) to `[out_h, out_w, dim]`.
pub fn bicubic_resize(grid: &[f32], in_h: usize, in_w: usize, dim: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let rows = taps(in_h, out_h);
    let cols = taps(in_w, out_w);
    let mut out = vec![0f32; out_h * out_w * dim];
    let at = |y: usize, x: usize, c: usize| grid[(y * in_w + x) * dim + c];
    for (oy, (ys, wy)) in rows.iter().enumerate() {
        for (ox, (xs, wx)) in cols.iter().enumerate() {
            for c in 0..dim {
                // Like torch: interpolate each of the four source rows along x, then those along y.
                let mut value = 0f32;
                for (y, weight_y) in ys.iter().zip(wy) {
                    let row: f32 = xs.iter().zip(wx).map(|(x, weight_x)| at(*y, *x, c) * weight_x).sum();
                    value += row * weight_y;
                }
                out[(oy * out_w + ox) * dim + c] = value;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_the_identity() {
        let grid: Vec<f32> = (0..3 * 4 * 2).map(|v| v as f32 * 0.37).collect();
        let out = bicubic_resize(&grid, 3, 4, 2, 3, 4);
        for (a, b) in grid.iter().zip(&out) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn constants_stay_constant() {
        let grid = vec![2.5f32; 4 * 4];
        let out = bicubic_resize(&grid, 4, 4, 1, 7, 3);
        assert!(out.iter().all(|v| (v - 2.5).abs() < 1e-5));
    }
}
