//! Fused CPU kernels for the element-wise parts of a transformer layer.
//!
//! Composed from candle's generic ops, LayerNorm is ten passes with ten allocations, and candle's GELU-erf and
//! scaling are single-threaded scalar loops; together they cost about as much as all the matmuls of a forward
//! pass. Each kernel here is one pass per row, parallel over rows on candle's thread pool (we run inside
//! `Device::with_context`). `ops.rs` decides where they are used.

use std::cell::RefCell;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, bail};

use crate::cpu_matmul::{Epilogue, PackedWeight, Shared};
use rayon::prelude::*;

/// Rows per parallel task: enough work per task that scheduling costs nothing.
const MIN_ELEMENTS_PER_TASK: usize = 16 * 1024;

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else { bail!("{op}: only f32 is supported on the CPU") };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => bail!("{op}: input must be contiguous"),
    }
}

fn last_dim(layout: &Layout) -> usize {
    layout.shape().dims().last().copied().unwrap_or(1).max(1)
}

/// Rows per task so each task holds at least `MIN_ELEMENTS_PER_TASK` values.
fn rows_per_task(width: usize) -> usize {
    MIN_ELEMENTS_PER_TASK.div_ceil(width).max(1)
}

/// LayerNorm over the last axis: two-pass mean and (biased) variance in f32, as torch computes it. candle's
/// fused kernel uses E[x²]−E[x]², which cancels badly on rows with a large mean.
#[derive(Debug, Clone, Copy)]
pub struct LayerNormOp {
    pub eps: f32,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "mae-layer-norm"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(input, input_layout, self.name())?;
        let (weight, bias) =
            (contiguous(weight, weight_layout, self.name())?, contiguous(bias, bias_layout, self.name())?);
        let width = last_dim(input_layout);
        if weight.len() != width || bias.len() != width {
            bail!("{}: weight/bias length {} / {} for rows of {width}", self.name(), weight.len(), bias.len());
        }
        let mut out = vec![0f32; x.len()];
        let chunk = rows_per_task(width) * width;
        out.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(out_rows, rows)| {
            for (out_row, row) in out_rows.chunks_exact_mut(width).zip(rows.chunks_exact(width)) {
                let mean = row.iter().sum::<f32>() / width as f32;
                let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
                let inverse_std = 1.0 / (variance + self.eps).sqrt();
                for (((o, v), w), b) in out_row.iter_mut().zip(row).zip(weight).zip(bias) {
                    *o = (v - mean) * inverse_std * w + b;
                }
            }
        });
        Ok((CpuStorage::F32(out), input_layout.shape().clone()))
    }
}

/// e^x in branch-free arithmetic that vectorizes once compiled for AVX2/AVX-512 (libm's `expf` is a scalar call
/// per element). x = n·ln2 + r with a two-part ln2, then a degree-6 polynomial for e^r on |r| ≤ ln2/2: relative
/// error below 3e-7, the order of f32 rounding. Inputs are clamped to [−87, 88].
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and removing 1.5·2²³ (vectorizes, unlike `round`).
    const ROUNDING: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUNDING) - ROUNDING;
    let r = x - n * LN2_HIGH - n * LN2_LOW;
    let polynomial = 1.0
        + r * (1.0 + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    // 2^n from the exponent bits (n is in [−126, 127] after the clamp). Adding 2²³ + 127 puts the integer
    // n + 127 into the mantissa bits without a float→int conversion (Rust's saturating `as` does not vectorize).
    const EXPONENT_BIAS_IN_MANTISSA: f32 = 8_388_608.0 + 127.0;
    let biased_exponent = (n + EXPONENT_BIAS_IN_MANTISSA).to_bits() & 0x007f_ffff;
    polynomial * f32::from_bits(biased_exponent << 23)
}

/// Runs `kernel` compiled for the vector unit `cpu_matmul::simd()` chose (the widest this CPU has, unless
/// `MAE_CPU_KERNEL` narrows it). The kernels are `#[inline(always)]` generic code, so each wrapper below is a copy
/// built with its target features enabled.
macro_rules! dispatch_simd {
    ($kernel:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn wide(f: impl FnOnce()) { f() }
            #[target_feature(enable = "avx2,fma")]
            fn narrow(f: impl FnOnce()) { f() }
            match crate::cpu_matmul::simd() {
                // SAFETY: `simd()` reports only features the CPU has.
                #[allow(unsafe_code)]
                crate::cpu_matmul::Simd::Avx512 => unsafe { wide(|| $kernel($($arg),*)) },
                // SAFETY: as above.
                #[allow(unsafe_code)]
                crate::cpu_matmul::Simd::Avx2 => unsafe { narrow(|| $kernel($($arg),*)) },
                crate::cpu_matmul::Simd::Portable => $kernel($($arg),*),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $kernel($($arg),*)
        }
    }};
}

/// erf with torch's own vectorized CPU formula (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7): what
/// `torch.nn.functional.gelu` evaluates on the CPU, so our GELU tracks HF's closely.
#[inline]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let magnitude = x.abs();
    let t = 1.0 / (1.0 + P * magnitude);
    let polynomial = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
    let value = 1.0 - polynomial * exp(-magnitude * magnitude);
    value.copysign(x)
}

/// `x·Wᵀ + b` on a packed weight (`cpu_matmul.rs`), with GELU after it when `gelu`; as a `CustomOp3` the third
/// operand is a residual added in the same pass. Inputs: x `[n, in]`, b `[out]`, residual `[n, out]`.
#[derive(Debug, Clone, Copy)]
pub struct PackedLinearOp<'a> {
    pub weight: &'a PackedWeight,
    pub gelu: bool,
}

impl PackedLinearOp<'_> {
    fn run(
        &self,
        x: &[f32],
        x_layout: &Layout,
        bias: &[f32],
        residual: Option<&[f32]>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let &[rows, inputs] = x_layout.dims() else { bail!("mae-linear: expected a 2-D input") };
        let outputs = self.weight.outputs();
        if inputs != self.weight.inputs()
            || bias.len() != outputs
            || residual.is_some_and(|r| r.len() != rows * outputs)
        {
            bail!("mae-linear: [{rows}, {inputs}] · [{}, {outputs}] + [{}]", self.weight.inputs(), bias.len());
        }
        let epilogue = match (residual, self.gelu) {
            (Some(residual), _) => Epilogue::BiasResidual(residual),
            (None, true) => Epilogue::BiasGelu,
            (None, false) => Epilogue::Bias,
        };
        let out = crate::cpu_matmul::linear(x, rows, self.weight, bias, epilogue);
        Ok((CpuStorage::F32(out), Shape::from((rows, outputs))))
    }
}

impl CustomOp2 for PackedLinearOp<'_> {
    fn name(&self) -> &'static str {
        "mae-linear"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(input, input_layout, "mae-linear")?;
        self.run(x, input_layout, contiguous(bias, bias_layout, "mae-linear")?, None)
    }
}

impl CustomOp3 for PackedLinearOp<'_> {
    fn name(&self) -> &'static str {
        "mae-linear-add"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
        residual: &CpuStorage,
        residual_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(input, input_layout, "mae-linear-add")?;
        let bias = contiguous(bias, bias_layout, "mae-linear-add")?;
        let residual = contiguous(residual, residual_layout, "mae-linear-add")?;
        self.run(x, input_layout, bias, Some(residual))
    }
}

/// Multi-head attention core on the fused projection of `items` sequences stacked, `[items·n, 3·D]` (q | k | v,
/// heads side by side in each): per item and head `P = softmax(q·kᵀ · scale)`, `context = P·v`. Every head of every
/// item is one task of one parallel loop, its softmax applied to its scores while they are in cache; q, k and v are
/// read in place through gemm's strides, so nothing is permuted or copied. The output is one buffer: when
/// `keep_probabilities`, the probabilities `[items, heads, n, n]`, then the context `[items·n, D]` (heads
/// concatenated, as HF's `reshape` gives it). Probabilities not kept live in one reused scratch block per thread:
/// at batch 16 in the decoder they would be 40 MB per layer, freshly zeroed and faulted in.
#[derive(Debug, Clone, Copy)]
pub struct AttentionOp {
    pub items: usize,
    pub heads: usize,
    pub scale: f32,
    pub keep_probabilities: bool,
}

thread_local! {
    /// One head's probabilities when they are not kept, reused from task to task on this thread.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl CustomOp1 for AttentionOp {
    fn name(&self) -> &'static str {
        "mae-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = contiguous(storage, layout, self.name())?;
        let &[rows, fused] = layout.dims() else { bail!("{}: expected [items·n, 3·D]", self.name()) };
        let width = fused / 3;
        if fused % 3 != 0 || self.heads == 0 || width % self.heads != 0 {
            bail!("{}: width {fused} is not 3 × heads ({}) × head size", self.name(), self.heads);
        }
        if self.items == 0 || rows % self.items != 0 {
            bail!("{}: {rows} rows cannot be split into {} items", self.name(), self.items);
        }
        let (heads, tokens, head_dim) = (self.heads, rows / self.items, width / self.heads);
        let probabilities_len = if self.keep_probabilities { self.items * heads * tokens * tokens } else { 0 };
        // Not zeroed first: every value is written below (zeroing the kept probabilities, 2.5 MB a decoder layer
        // at batch 1, was 1.7 % of a forward pass on the 2-core Intel Xeon).
        let out_len = probabilities_len + rows * width;
        let mut out = Vec::<f32>::with_capacity(out_len);
        let output = Shared(out.as_mut_ptr());
        let scale = self.scale;
        let attend = move |task: usize, probabilities: *mut f32| {
            let output = output;
            let (item, head) = (task / heads, task % heads);
            // SAFETY: `qkv` holds rows × 3·width values, `out` holds probabilities_len + rows·width and
            // `probabilities` tokens² (the task's block of `out`, or this thread's scratch); every pointer/stride pair
            // below stays inside them (an item's rows start at item·tokens; its query/key/value blocks at column
            // head·head_dim of their third; rows are 3·width apart). Each task writes only its own probability block
            // and its own head_dim context columns of its item's rows, so no writes overlap.
            #[allow(unsafe_code)]
            unsafe {
                let item_rows = qkv.as_ptr().add(item * tokens * fused);
                let query = item_rows.add(head * head_dim);
                let key = item_rows.add(width + head * head_dim);
                let value = item_rows.add(2 * width + head * head_dim);
                let row = fused as isize;
                // scores = q · kᵀ: kᵀ[c, j] = key[j, c], so its column stride is a row of qkv.
                gemm::gemm(
                    tokens,
                    tokens,
                    head_dim,
                    probabilities,
                    1,
                    tokens as isize,
                    false,
                    query,
                    1,
                    row,
                    key,
                    row,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
                let block = std::slice::from_raw_parts_mut(probabilities, tokens * tokens);
                softmax_in_place(block, tokens, scale);
                let context = output.0.add(probabilities_len + item * tokens * width + head * head_dim);
                gemm::gemm(
                    tokens,
                    head_dim,
                    tokens,
                    context,
                    1,
                    width as isize,
                    false,
                    probabilities,
                    1,
                    tokens as isize,
                    value,
                    1,
                    row,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        };
        (0..self.items * heads).into_par_iter().for_each(|task| {
            if probabilities_len > 0 {
                attend(task, output.at(task * tokens * tokens));
            } else {
                SCORES.with_borrow_mut(|scores| {
                    scores.resize(tokens * tokens, 0.0);
                    attend(task, scores.as_mut_ptr());
                });
            }
        });
        // SAFETY: the tasks above wrote all of it: task (item, head) its tokens² probabilities (when kept) and the
        // head_dim context columns of its head on each of its item's tokens rows; together every value once (gemm
        // with `read_dst` false only writes its destination).
        #[allow(unsafe_code)]
        unsafe {
            out.set_len(out_len)
        };
        Ok((CpuStorage::F32(out), Shape::from(out_len)))
    }
}

fn softmax_in_place(block: &mut [f32], width: usize, scale: f32) {
    dispatch_simd!(scaled_softmax_rows_in_place(block, width, scale));
}

/// GELU of a tile row the matmul has just written (`cpu_matmul.rs`: the epilogue of `intermediate.dense`).
pub(crate) fn gelu_in_place(values: &mut [f32]) {
    dispatch_simd!(gelu_erf_in_place(values));
}

#[inline(always)]
fn gelu_erf_in_place(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Lanes for the reductions below: independent partial results let the compiler vectorize them (a single
/// running float sum or max has a strict order it must keep).
const LANES: usize = 16;

#[inline(always)]
fn lane_max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane = if *v > *lane { *v } else { *lane };
        }
    }
    chunks.remainder().iter().chain(&lanes).fold(f32::NEG_INFINITY, |a, b| if *b > a { *b } else { a })
}

#[inline(always)]
fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    chunks.remainder().iter().sum::<f32>() + lanes.iter().sum::<f32>()
}

#[inline(always)]
fn scaled_softmax_rows_in_place(rows: &mut [f32], width: usize, scale: f32) {
    for row in rows.chunks_exact_mut(width) {
        for value in row.iter_mut() {
            *value *= scale;
        }
        let max = lane_max(row);
        for value in row.iter_mut() {
            *value = exp(*value - max);
        }
        let inverse = 1.0 / lane_sum(row);
        row.iter_mut().for_each(|value| *value *= inverse);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_to_float_rounding() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let reference = (x as f64).exp();
            let relative = ((exp(x) as f64 - reference) / reference).abs();
            assert!(relative < 3e-7, "exp({x}): relative error {relative}");
        }
        assert!(exp(-200.0) < 1e-37, "underflow gives ~0");
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_the_definition() {
        let row = [0.5f32, -3.0, 2.25, 0.0, 10.0];
        let mut out = row;
        softmax_in_place(&mut out, 5, 0.5);
        let total: f64 = row.iter().map(|v| (0.5 * *v as f64).exp()).sum();
        for (o, v) in out.iter().zip(&row) {
            let expected = (0.5 * *v as f64).exp() / total;
            assert!((*o as f64 - expected).abs() < 1e-6 * expected.max(1e-3));
        }
    }

    #[test]
    fn erf_is_within_torch_accuracy() {
        let mut worst = 0f64;
        for i in -400..=400 {
            let x = i as f32 / 100.0;
            let reference = libm_erf(x as f64);
            let error = (erf(x) as f64 - reference).abs();
            worst = worst.max(error);
            assert!(error < 5e-7, "erf({x}): error {error}");
        }
        eprintln!("worst erf error {worst:e}");
    }

    /// erf by its Taylor series / continued fraction in f64, independent of the kernel under test.
    fn libm_erf(x: f64) -> f64 {
        // Abramowitz & Stegun 7.1.5 series converges quickly for |x| ≤ 4 in f64.
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
            if n > 400.0 {
                break;
            }
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    }
}
