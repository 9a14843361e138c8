//! `y = x·Wᵀ + b` on the CPU in f32, with W packed once at load and the bias, GELU or residual add written in the
//! same pass as the product.
//!
//! Why our own kernel rather than the `gemm` crate's (which candle uses): the products of a forward pass have few
//! rows (50 at ratio 0.75, 197 in the decoder) and many columns, and there `gemm` re-packs the weight on every call
//! and splits the work along the rows, so two threads can lose to one (#30: 0.42–0.82 of torch's `F.linear` on an
//! Intel Xeon). Here:
//! - the weight lives in panels of [`PANEL`] columns, each `[K, 32]` contiguous and 64-byte aligned — the order the
//!   micro-kernel reads it — made once when the model loads (`WeightStore::packed_matrix`); no forward re-lays it;
//! - the threads of candle's pool split the panels (the columns), so each thread streams only its own share of the
//!   weight and no row is split;
//! - each thread walks its panels in memory order, each panel's depth in blocks of [`DEPTH_BLOCK`] so the block
//!   (32 KiB) stays in L1 while every row block of the input passes over it; meanwhile the next block is prefetched
//!   into L2, each row block's pass fetching its share of it (see `Tile::prefetch`). The
//!   input is read where it lies, row-major: packing it as BLIS does (`[K, rows]` per block) cost more than it saved
//!   at these sizes (197×512×2048: 275–290 GFLOP/s packed, 305–324 in place, on the 2-core Intel Xeon);
//! - the micro-kernel keeps up to 12 rows × 32 columns of the output in 24 AVX-512 registers (6 × 16 in 12 AVX2
//!   registers on CPUs without AVX-512, or when `MAE_CPU_KERNEL=avx2` asks for it), starting from the bias, and
//!   applies GELU or adds the residual while the tile is still in cache.
//!
//! The loop order is BLIS's (Van Zee & van de Geijn 2015); the layout of the packed weight is that of oneDNN's and
//! MKL's packed GEMM. `faer` and `gemm` expose no packed-operand entry point, which is what the shapes here need.

use std::sync::OnceLock;

use rayon::prelude::*;

/// Columns per weight panel: two 512-bit vectors.
pub(crate) const PANEL: usize = 32;
/// Depth (K) per pass over a panel: 256 × 32 floats = 32 KiB, within any x86 L1 data cache of the last decade.
const DEPTH_BLOCK: usize = 256;
/// Bytes of input rows multiplied per pass over the panels: every panel reads all of them, so they should stay in L2
/// (1 MiB: half of a Xeon core's L2, all of a Zen 4 core's).
const INPUT_CHUNK_BYTES: usize = 1 << 20;
/// Bytes of one full weight block (a panel's [`DEPTH_BLOCK`] rows), the unit the next block is prefetched in.
const BLOCK_BYTES: usize = DEPTH_BLOCK * PANEL * std::mem::size_of::<f32>();

/// One 64-byte line: the packed weight's unit of storage, so every panel row starts on a cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A weight matrix `W: [N, K]` (HF's `[out, in]`) as panels of [`PANEL`] columns of `Wᵀ`: panel `p` holds
/// `Wᵀ[k, 32p..32p + 32]` for every k, row after row; columns past N are zero.
#[derive(Clone)]
pub struct PackedWeight {
    lines: Vec<Line>,
    inputs: usize,
    outputs: usize,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedWeight([{}, {}] in panels of {PANEL})", self.outputs, self.inputs)
    }
}

impl PackedWeight {
    /// A zeroed matrix for `outputs × inputs`, filled by [`PackedWeight::values_mut`] at [`PackedWeight::index`].
    pub(crate) fn zeroed(inputs: usize, outputs: usize) -> Self {
        let lines = outputs.div_ceil(PANEL) * inputs * (PANEL / 16);
        Self { lines: vec![Line::default(); lines], inputs, outputs }
    }

    /// Packs `Wᵀ` given row-major as `[inputs, outputs]`.
    pub(crate) fn from_transposed(weight_t: &[f32], inputs: usize, outputs: usize) -> Self {
        let mut packed = Self::zeroed(inputs, outputs);
        for (k, row) in weight_t.chunks_exact(outputs).enumerate().take(inputs) {
            for (n, value) in row.iter().enumerate() {
                let index = packed.index(k, n);
                packed.values_mut()[index] = *value;
            }
        }
        packed
    }

    /// `Wᵀ` row-major as `[inputs, outputs]` (for candle's kernels, which take the plain layout).
    pub(crate) fn to_transposed(&self) -> Vec<f32> {
        let values = self.values();
        let mut out = Vec::with_capacity(self.inputs * self.outputs);
        for k in 0..self.inputs {
            out.extend((0..self.outputs).map(|n| values[self.index(k, n)]));
        }
        out
    }

    /// Where `Wᵀ[k, n]` (= `W[n, k]`) lies in [`PackedWeight::values`].
    pub(crate) fn index(&self, k: usize, n: usize) -> usize {
        Self::index_of(self.inputs, k, n)
    }

    /// [`PackedWeight::index`] for a matrix of `inputs` inputs.
    pub(crate) fn index_of(inputs: usize, k: usize, n: usize) -> usize {
        (n / PANEL) * inputs * PANEL + k * PANEL + n % PANEL
    }

    pub(crate) fn values(&self) -> &[f32] {
        bytemuck_lines(&self.lines)
    }

    pub(crate) fn values_mut(&mut self) -> &mut [f32] {
        let len = self.lines.len() * 16;
        // SAFETY: `Line` is `repr(C)` around `[f32; 16]` with no padding (64 bytes, aligned to 64), so the lines are
        // exactly `len` consecutive f32 values, borrowed mutably for as long as `self` is.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), len)
        }
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }
}

fn bytemuck_lines(lines: &[Line]) -> &[f32] {
    // SAFETY: as in `values_mut`, shared.
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts(lines.as_ptr().cast::<f32>(), lines.len() * 16)
    }
}

/// What is done to the product before it is stored (the bias is always added).
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    Bias,
    /// Exact (erf) GELU of the biased product.
    BiasGelu,
    /// `residual + product`, the residual shaped as the output.
    BiasResidual(&'a [f32]),
}

/// The instruction sets the kernels are compiled for, chosen once per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Simd {
    Avx512,
    Avx2,
    Portable,
}

/// Environment variable that forces a narrower kernel: `avx2` (the AVX2 + FMA path on an AVX-512 CPU) or
/// `portable`. Read once.
pub const KERNEL_VARIABLE: &str = "MAE_CPU_KERNEL";

pub(crate) fn simd() -> Simd {
    static CHOSEN: OnceLock<Simd> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let asked = std::env::var(KERNEL_VARIABLE).unwrap_or_default().to_ascii_lowercase();
        detected().min_with(match asked.as_str() {
            "portable" => Simd::Portable,
            "avx2" => Simd::Avx2,
            _ => Simd::Avx512,
        })
    })
}

impl Simd {
    /// The narrower of the two.
    fn min_with(self, other: Simd) -> Simd {
        let rank = |simd: Simd| match simd {
            Simd::Portable => 0,
            Simd::Avx2 => 1,
            Simd::Avx512 => 2,
        };
        if rank(other) < rank(self) { other } else { self }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Simd::Avx512 => "avx512",
            Simd::Avx2 => "avx2",
            Simd::Portable => "portable",
        }
    }
}

fn detected() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Simd::Avx2;
        }
    }
    Simd::Portable
}

/// Rows of the output tile the micro-kernel of `simd` keeps in registers.
fn tile_rows(simd: Simd) -> usize {
    match simd {
        Simd::Avx512 => MOST_TILE_ROWS,
        Simd::Avx2 => 6,
        Simd::Portable => 4,
    }
}

/// The most rows any micro-kernel takes (the partial-panel scratch tile is this tall).
const MOST_TILE_ROWS: usize = 12;

/// Row blocks of at most `most` rows and balanced sizes (50 rows at 12 → five blocks of 10, not 12+12+12+12+2).
fn row_blocks(rows: usize, most: usize) -> Vec<(usize, usize)> {
    let count = rows.div_ceil(most).max(1);
    let (base, extra) = (rows / count, rows % count);
    let mut start = 0;
    (0..count)
        .map(|block| {
            let len = base + usize::from(block < extra);
            let range = (start, len);
            start += len;
            range
        })
        .filter(|(_, len)| *len > 0)
        .collect()
}

/// A raw output pointer that parallel tasks write through, each to its own disjoint part (here a task's panels;
/// in `cpu_kernels.rs` an attention head's blocks).
#[derive(Clone, Copy)]
pub(crate) struct Shared(pub(crate) *mut f32);
impl Shared {
    /// The pointer `offset` values further on (a method, so closures capture the `Sync` wrapper, not the pointer).
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

// SAFETY: every user hands each task a region no other task touches.
#[allow(unsafe_code)]
unsafe impl Send for Shared {}
#[allow(unsafe_code)]
unsafe impl Sync for Shared {}

/// `epilogue(x·Wᵀ + bias)` for `x: [rows, K]` row-major; returns `[rows, N]` row-major. Runs on the current rayon
/// pool (candle's, inside `Device::with_context`).
pub(crate) fn linear(x: &[f32], rows: usize, weight: &PackedWeight, bias: &[f32], epilogue: Epilogue) -> Vec<f32> {
    linear_on(simd(), x, rows, weight, bias, epilogue)
}

fn linear_on(simd: Simd, x: &[f32], rows: usize, weight: &PackedWeight, bias: &[f32], epilogue: Epilogue) -> Vec<f32> {
    let (inputs, outputs) = (weight.inputs, weight.outputs);
    assert_eq!(x.len(), rows * inputs, "input is not [rows, K]");
    assert_eq!(bias.len(), outputs, "bias is not [N]");
    if let Epilogue::BiasResidual(residual) = epilogue {
        assert_eq!(residual.len(), rows * outputs, "residual is not [rows, N]");
    }
    let mut out = Vec::<f32>::with_capacity(rows * outputs);
    let blocks = row_blocks(rows, tile_rows(simd));
    let panels = outputs.div_ceil(PANEL);
    let tasks = rayon::current_num_threads().clamp(1, panels.max(1));
    let panels_per_task = panels.div_ceil(tasks);
    let job = Product { input: x, blocks: &blocks, weight, bias, epilogue, simd, out: Shared(out.as_mut_ptr()) };
    (0..tasks).into_par_iter().for_each(|task| {
        let first = (task * panels_per_task).min(panels);
        job.run(first..(first + panels_per_task).min(panels));
    });
    // SAFETY: the tasks above wrote every one of the rows × N outputs (the panel ranges cover every panel once, and
    // each tile of a panel is stored in full for its valid columns).
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(rows * outputs)
    };
    out
}

/// One product's operands, shared by the tasks that split its panels.
struct Product<'a> {
    /// `x: [rows, K]`, read in place.
    input: &'a [f32],
    blocks: &'a [(usize, usize)],
    weight: &'a PackedWeight,
    bias: &'a [f32],
    epilogue: Epilogue<'a>,
    simd: Simd,
    out: Shared,
}

// SAFETY: `out` is written only at disjoint places by the tasks (see `Shared`); the rest is shared read-only.
#[allow(unsafe_code)]
unsafe impl Sync for Product<'_> {}

impl Product<'_> {
    /// Every row of panels `panels` (the output's columns 32·first .. 32·end).
    fn run(&self, panels: std::ops::Range<usize>) {
        let (inputs, outputs) = (self.weight.inputs, self.weight.outputs);
        let weights = self.weight.values();
        let chunk_rows = INPUT_CHUNK_BYTES / (inputs * std::mem::size_of::<f32>()).max(1);
        let blocks_per_chunk = (chunk_rows / tile_rows(self.simd)).max(1);
        for chunk in self.blocks.chunks(blocks_per_chunk) {
            for panel in panels.clone() {
                let column = panel * PANEL;
                let columns = PANEL.min(outputs - column);
                for depth_start in (0..inputs).step_by(DEPTH_BLOCK) {
                    let depth = DEPTH_BLOCK.min(inputs - depth_start);
                    let step = Step { first: depth_start == 0, last: depth_start + depth == inputs };
                    let panel_weights = &weights[panel * inputs * PANEL + depth_start * PANEL..][..depth * PANEL];
                    // The block after this one in the thread's stream (this panel's next depth block, or the next
                    // panel's first), split among the row blocks that pass over this one.
                    let next_block = panel_weights.as_ptr_range().end.cast::<u8>();
                    let share = BLOCK_BYTES / chunk.len();
                    for (index, &(start, len)) in chunk.iter().enumerate() {
                        let block_input = &self.input[start * inputs + depth_start..];
                        let residual = match self.epilogue {
                            Epilogue::BiasResidual(residual) => Some(&residual[start * outputs + column..]),
                            _ => None,
                        };
                        // SAFETY: row `start`, column `column` of the rows × N output; the tile stays inside it.
                        #[allow(unsafe_code)]
                        let out = unsafe { self.out.0.add(start * outputs + column) };
                        let tile = Tile {
                            input: block_input,
                            input_row: inputs,
                            weights: panel_weights,
                            rows: len,
                            columns,
                            depth,
                            bias: &self.bias[column..column + columns],
                            residual,
                            gelu: matches!(self.epilogue, Epilogue::BiasGelu),
                            out,
                            stride: outputs,
                            step,
                            prefetch: next_block.wrapping_add(index * share),
                            prefetch_step: share / depth,
                        };
                        tile.compute(self.simd);
                    }
                }
            }
        }
    }
}

/// Where a depth block lies in the whole product: the first starts from the bias, the last applies the epilogue.
#[derive(Clone, Copy)]
struct Step {
    first: bool,
    last: bool,
}

/// One output tile (at most the micro-kernel's rows × one panel) over one depth block.
struct Tile<'a> {
    /// `[depth, rows]`.
    /// The input at the tile's first row and depth; rows `input_row` apart.
    input: &'a [f32],
    input_row: usize,
    /// `[depth, PANEL]`.
    weights: &'a [f32],
    rows: usize,
    columns: usize,
    depth: usize,
    bias: &'a [f32],
    /// The residual at the tile's first element, rows `stride` apart.
    residual: Option<&'a [f32]>,
    gelu: bool,
    out: *mut f32,
    stride: usize,
    step: Step,
    /// Where this tile starts prefetching the next weight block into L2, moving `prefetch_step` bytes per depth row
    /// (a hint only: past the thread's last panel it fetches nothing useful and faults on nothing). A forward pass
    /// reads each weight once, from memory (a base model's 450 MB); fetching the next block a whole block's time
    /// ahead, spread over every row block's pass, took a batch-1 forward from 98–99 to 83–85 ms on the 2-core Intel
    /// Xeon (a fixed distance of 8 KiB into L1, before, left a 12-row tile waiting on memory at each new block).
    prefetch: *const u8,
    prefetch_step: usize,
}

impl Tile<'_> {
    fn compute(&self, simd: Simd) {
        if self.columns == PANEL {
            self.compute_full(simd);
            return;
        }
        // A partial panel (models whose width is not a multiple of 32): computed into a full-width scratch tile.
        let mut scratch = [0f32; MOST_TILE_ROWS * PANEL];
        let mut residual = [0f32; MOST_TILE_ROWS * PANEL];
        for r in 0..self.rows {
            let row = &mut scratch[r * PANEL..][..self.columns];
            if !self.step.first {
                // SAFETY: the tile's own valid output values, written by the previous depth block.
                #[allow(unsafe_code)]
                let previous = unsafe { std::slice::from_raw_parts(self.out.add(r * self.stride), self.columns) };
                row.copy_from_slice(previous);
            }
            if let Some(source) = self.residual {
                residual[r * PANEL..][..self.columns].copy_from_slice(&source[r * self.stride..][..self.columns]);
            }
        }
        let mut bias = [0f32; PANEL];
        bias[..self.columns].copy_from_slice(self.bias);
        let full = Tile {
            bias: &bias,
            residual: self.residual.map(|_| &residual[..]),
            out: scratch.as_mut_ptr(),
            stride: PANEL,
            columns: PANEL,
            ..*self
        };
        full.compute_full(simd);
        for r in 0..self.rows {
            // SAFETY: the tile's own valid output values.
            #[allow(unsafe_code)]
            unsafe {
                std::ptr::copy_nonoverlapping(
                    scratch[r * PANEL..].as_ptr(),
                    self.out.add(r * self.stride),
                    self.columns,
                )
            };
        }
    }

    fn compute_full(&self, simd: Simd) {
        match simd {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd()` chose AVX-512 only where the CPU has it.
            #[allow(unsafe_code)]
            Simd::Avx512 => unsafe { x86::tile_avx512(self) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd()` chose AVX2 only where the CPU has AVX2 and FMA.
            #[allow(unsafe_code)]
            Simd::Avx2 => unsafe { x86::tile_avx2(self) },
            _ => self.portable(),
        }
        if self.step.last && self.gelu {
            for r in 0..self.rows {
                // SAFETY: the tile's own row, just written.
                #[allow(unsafe_code)]
                let row = unsafe { std::slice::from_raw_parts_mut(self.out.add(r * self.stride), PANEL) };
                crate::cpu_kernels::gelu_in_place(row);
            }
        }
    }

    /// The same arithmetic in plain Rust, for CPUs without AVX2.
    fn portable(&self) {
        for r in 0..self.rows {
            let mut accumulator = [0f32; PANEL];
            if self.step.first {
                accumulator.copy_from_slice(&self.bias[..PANEL]);
            } else {
                // SAFETY: the tile's own values, written by the previous depth block.
                #[allow(unsafe_code)]
                let previous = unsafe { std::slice::from_raw_parts(self.out.add(r * self.stride), PANEL) };
                accumulator.copy_from_slice(previous);
            }
            for k in 0..self.depth {
                let a = self.input[k + r * self.input_row];
                for (value, w) in accumulator.iter_mut().zip(&self.weights[k * PANEL..][..PANEL]) {
                    *value = a.mul_add(*w, *value);
                }
            }
            if let (true, Some(residual)) = (self.step.last, self.residual) {
                for (value, add) in accumulator.iter_mut().zip(&residual[r * self.stride..][..PANEL]) {
                    *value += add;
                }
            }
            for (c, value) in accumulator.iter().enumerate() {
                // SAFETY: the tile's own values.
                #[allow(unsafe_code)]
                unsafe {
                    *self.out.add(r * self.stride + c) = *value
                };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    //! The micro-kernels: a tile of `R` rows × 32 columns accumulated in registers over one depth block.

    use std::arch::x86_64::*;

    use super::{PANEL, Tile};

    /// Calls `$kernel::<R>` for the tile's row count (1..=`$most`), a constant in each copy so the
    /// accumulators stay in registers.
    macro_rules! by_rows {
        ($rows:expr, $kernel:ident $args:tt, $($count:literal)*) => {
            match $rows {
                $($count => $kernel::<$count> $args,)*
                rows => unreachable!("a tile of {rows} rows"),
            }
        };
    }

    /// # Safety
    /// The CPU has AVX-512F; the tile's pointers and lengths are as [`Tile`] documents, with 32 valid columns.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_avx512(tile: &Tile) {
        unsafe { by_rows!(tile.rows, avx512(tile), 1 2 3 4 5 6 7 8 9 10 11 12) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512<const R: usize>(tile: &Tile) {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            for (r, row) in acc.iter_mut().enumerate() {
                *row = if tile.step.first {
                    [_mm512_loadu_ps(tile.bias.as_ptr()), _mm512_loadu_ps(tile.bias.as_ptr().add(16))]
                } else {
                    let out = tile.out.add(r * tile.stride);
                    [_mm512_loadu_ps(out), _mm512_loadu_ps(out.add(16))]
                };
            }
            let mut a = tile.input.as_ptr();
            let mut b = tile.weights.as_ptr();
            let (mut prefetch, half_step) = (tile.prefetch, tile.prefetch_step / 2);
            for _ in 0..tile.depth {
                // Two hints a row: enough for a lone row block, whose share of a full block is two lines a row.
                _mm_prefetch::<_MM_HINT_T1>(prefetch.cast());
                _mm_prefetch::<_MM_HINT_T1>(prefetch.wrapping_add(half_step).cast());
                prefetch = prefetch.wrapping_add(tile.prefetch_step);
                let (b0, b1) = (_mm512_load_ps(b), _mm512_load_ps(b.add(16)));
                for (r, row) in acc.iter_mut().enumerate() {
                    let broadcast = _mm512_set1_ps(*a.add(r * tile.input_row));
                    row[0] = _mm512_fmadd_ps(broadcast, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(broadcast, b1, row[1]);
                }
                a = a.add(1);
                b = b.add(PANEL);
            }
            for (r, row) in acc.iter_mut().enumerate() {
                if let (true, Some(residual)) = (tile.step.last, tile.residual) {
                    let residual = residual.as_ptr().add(r * tile.stride);
                    row[0] = _mm512_add_ps(row[0], _mm512_loadu_ps(residual));
                    row[1] = _mm512_add_ps(row[1], _mm512_loadu_ps(residual.add(16)));
                }
                let out = tile.out.add(r * tile.stride);
                _mm512_storeu_ps(out, row[0]);
                _mm512_storeu_ps(out.add(16), row[1]);
            }
        }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA; otherwise as [`tile_avx512`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_avx2(tile: &Tile) {
        // The 32-column panel as two halves of 16 (two 256-bit vectors each), 6 rows: 12 accumulators.
        for half in 0..2 {
            unsafe { by_rows!(tile.rows, avx2(tile, half * 16), 1 2 3 4 5 6) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2<const R: usize>(tile: &Tile, offset: usize) {
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for (r, row) in acc.iter_mut().enumerate() {
                *row = if tile.step.first {
                    let bias = tile.bias.as_ptr().add(offset);
                    [_mm256_loadu_ps(bias), _mm256_loadu_ps(bias.add(8))]
                } else {
                    let out = tile.out.add(r * tile.stride + offset);
                    [_mm256_loadu_ps(out), _mm256_loadu_ps(out.add(8))]
                };
            }
            let mut a = tile.input.as_ptr();
            let mut b = tile.weights.as_ptr().add(offset);
            let (mut prefetch, half_step) = (tile.prefetch, tile.prefetch_step / 2);
            for _ in 0..tile.depth {
                if offset == 0 {
                    // As in the AVX-512 kernel; the panel's second half has nothing left to fetch.
                    _mm_prefetch::<_MM_HINT_T1>(prefetch.cast());
                    _mm_prefetch::<_MM_HINT_T1>(prefetch.wrapping_add(half_step).cast());
                    prefetch = prefetch.wrapping_add(tile.prefetch_step);
                }
                let (b0, b1) = (_mm256_load_ps(b), _mm256_load_ps(b.add(8)));
                for (r, row) in acc.iter_mut().enumerate() {
                    let broadcast = _mm256_set1_ps(*a.add(r * tile.input_row));
                    row[0] = _mm256_fmadd_ps(broadcast, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(broadcast, b1, row[1]);
                }
                a = a.add(1);
                b = b.add(PANEL);
            }
            for (r, row) in acc.iter_mut().enumerate() {
                if let (true, Some(residual)) = (tile.step.last, tile.residual) {
                    let residual = residual.as_ptr().add(r * tile.stride + offset);
                    row[0] = _mm256_add_ps(row[0], _mm256_loadu_ps(residual));
                    row[1] = _mm256_add_ps(row[1], _mm256_loadu_ps(residual.add(8)));
                }
                let out = tile.out.add(r * tile.stride + offset);
                _mm256_storeu_ps(out, row[0]);
                _mm256_storeu_ps(out.add(8), row[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `epilogue(x·Wᵀ + b)` in f64, straight from the definition.
    fn reference(x: &[f32], rows: usize, w: &[f32], n: usize, k: usize, bias: &[f32], epilogue: Epilogue) -> Vec<f64> {
        let mut out = vec![0f64; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let mut sum = bias[c] as f64;
                for i in 0..k {
                    sum += x[r * k + i] as f64 * w[c * k + i] as f64;
                }
                out[r * n + c] = match epilogue {
                    Epilogue::Bias => sum,
                    Epilogue::BiasGelu => 0.5 * sum * (1.0 + erf(sum / std::f64::consts::SQRT_2)),
                    Epilogue::BiasResidual(residual) => sum + residual[r * n + c] as f64,
                };
            }
        }
        out
    }

    /// erf by its series, accurate in f64 to |x| = 4; beyond, erf is ±1 within 2e-8.
    fn erf(x: f64) -> f64 {
        if x.abs() > 4.0 {
            return x.signum();
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) && n < 400.0 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    }

    fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn packing_round_trips_and_pads_with_zeros() {
        let (k, n) = (5, 37);
        let weight_t = values(k * n, 1);
        let packed = PackedWeight::from_transposed(&weight_t, k, n);
        assert_eq!(packed.to_transposed(), weight_t);
        assert_eq!(packed.values().len(), 2 * PANEL * k, "two panels of 32 columns");
        assert!(packed.values()[packed.index(0, 32) + 5..][..26].iter().all(|v| *v == 0.0));
        assert_eq!(packed.values().as_ptr() as usize % 64, 0, "panels start on a cache line");
    }

    #[test]
    fn row_blocks_are_balanced_and_cover_every_row() {
        assert_eq!(row_blocks(50, 12), vec![(0, 10), (10, 10), (20, 10), (30, 10), (40, 10)]);
        let blocks = row_blocks(197, 12);
        assert_eq!(blocks.len(), 17);
        assert!(blocks.iter().all(|(_, len)| (11..=12).contains(len)));
        assert_eq!(blocks.last().map(|(start, len)| start + len), Some(197));
        assert_eq!(row_blocks(1, 12), vec![(0, 1)]);
        assert!(row_blocks(0, 12).is_empty());
    }

    /// Every shape class the kernel meets: one row, rows that do not fill a tile, several depth blocks with a
    /// remainder, widths that leave a partial panel, rows too long to pass over all at once (40 × 9000: two passes
    /// of 20 rows with AVX-512), and each epilogue; on every instruction set this CPU has.
    #[test]
    fn products_match_the_definition() {
        let shapes =
            [(1, 32, 8), (7, 40, 300), (13, 64, 513), (50, 96, 256), (25, 5, 3), (197, 33, 70), (40, 33, 9000)];
        let simds = [Simd::Avx512, Simd::Avx2, Simd::Portable].into_iter().filter(|s| detected().min_with(*s) == *s);
        for simd in simds {
            for (rows, n, k) in shapes {
                let x = values(rows * k, 2);
                let w = values(n * k, 3);
                let bias = values(n, 4);
                let residual = values(rows * n, 5);
                let mut weight_t = vec![0f32; k * n];
                for c in 0..n {
                    for i in 0..k {
                        weight_t[i * n + c] = w[c * k + i];
                    }
                }
                let packed = PackedWeight::from_transposed(&weight_t, k, n);
                for (name, epilogue) in [
                    ("bias", Epilogue::Bias),
                    ("gelu", Epilogue::BiasGelu),
                    ("residual", Epilogue::BiasResidual(&residual)),
                ] {
                    let got = linear_on(simd, &x, rows, &packed, &bias, epilogue);
                    let expected = reference(&x, rows, &w, n, k, &bias, epilogue);
                    for (index, (g, e)) in got.iter().zip(&expected).enumerate() {
                        let tolerance = 1e-5 * (k as f64).sqrt() * e.abs().max(1.0);
                        assert!(
                            (*g as f64 - e).abs() <= tolerance,
                            "{} {name} {rows}×{n}×{k} at {index}: {g} against {e}",
                            simd.name()
                        );
                    }
                }
            }
        }
    }
}
