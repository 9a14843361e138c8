//! The fused CUDA kernels of `cuda_kernels.cu` as candle custom ops (f32, f16, bf16), and the CUDA device set-up
//! they assume. Built only with the `cuda` feature; `ops.rs` decides where they are used.
//!
//! Hand-written because candle has no fused op for these (its LayerNorm uses E[x²]−E[x]², no fused op returns
//! attention probabilities, and there are no matmul epilogues); see the .cu file for the kernels themselves.
//! Each op checks its shapes on the host and refuses (with the op's name) what the kernel does not cover, so a
//! wrong call is an error, never an out-of-bounds access.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use candle_core::cuda_backend::{Map1, Map2, Map3, WrapErr};
use candle_core::{CpuStorage, CudaDevice, CudaStorage, CustomOp1, CustomOp2, CustomOp3, DType, Device, Layout};
use candle_core::{Shape, WithDType, bail};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/cuda_kernels.ptx"));
/// The name candle caches the loaded PTX module under (per device).
const MODULE: &str = "mae-explorer-kernels";
/// Threads per block of the row kernels (LayerNorm, attention) and of the element-wise epilogues.
const ROW_THREADS: u32 = 128;
const ELEMENTWISE_THREADS: u32 = 256;
/// Dynamic shared memory a block may use without opting in to more (the kernels size theirs from the row).
const SHARED_MEMORY_LIMIT: usize = 48 * 1024;
/// Per-block reduction scratch, in floats (one per warp of up to 1024 threads).
const REDUCTION_SCRATCH: usize = 32;

/// Sets up a freshly opened CUDA device the way the model runs on it: f32 matmuls without TF32 (candle's default,
/// made explicit because parity with PyTorch is 1e-4 and TF32 alone moves results by ~1e-3), and no CUDA events
/// per allocation. cudarc creates two events with every buffer and destroys them with it, but only waits on them
/// once a context has a second stream; candle's device (`Device::new_cuda`) creates none, so the events are pure
/// overhead on every op.
pub fn prepare_device(device: &Device) {
    candle_core::cuda_backend::set_gemm_reduced_precision_f32(false);
    if let Device::Cuda(cuda) = device {
        // SAFETY: cudarc requires that buffers created without event tracking are not shared between streams.
        // This device's context has only candle's per-thread stream (no `new_stream`/`fork`), so cudarc would
        // never have waited on these events: no ordering changes.
        #[allow(unsafe_code)]
        unsafe {
            cuda.disable_event_tracking()
        };
    }
}

/// Whether the kernels can run a row of `width` values (LayerNorm keeps the row in shared memory).
pub fn layer_norm_fits(width: usize) -> bool {
    (width + REDUCTION_SCRATCH) * 4 <= SHARED_MEMORY_LIMIT && width > 0
}

/// Whether the attention kernel can run `tokens` keys of `head_dim` (the scores of one query stay in shared
/// memory).
pub fn attention_fits(tokens: usize, head_dim: usize) -> bool {
    attention_shared_floats(tokens, head_dim) * 4 <= SHARED_MEMORY_LIMIT && head_dim > 0 && tokens > 0
}

fn attention_shared_floats(tokens: usize, head_dim: usize) -> usize {
    // q, the scores, the context partial sums (max(threads, head_dim) of them), reduction scratch.
    head_dim + tokens + (ROW_THREADS as usize).max(head_dim) + REDUCTION_SCRATCH
}

fn kernel_name<T: WithDType>(base: &str) -> candle_core::Result<String> {
    let suffix = match T::DTYPE {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        other => bail!("{base}: {other:?} is not supported by the fused CUDA kernels (f32, f16, bf16)"),
    };
    Ok(format!("{base}_{suffix}"))
}

fn contiguous<'a, T>(slice: &'a CudaSlice<T>, layout: &Layout, op: &str) -> candle_core::Result<CudaView<'a, T>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(slice.slice(start..end)),
        None => bail!("{op}: input must be contiguous"),
    }
}

fn last_dim(layout: &Layout) -> usize {
    layout.shape().dims().last().copied().unwrap_or(1)
}

fn to_i32(value: usize, what: &str, op: &str) -> candle_core::Result<i32> {
    i32::try_from(value).or_else(|_| bail!("{op}: {what} {value} is too large for the kernel"))
}

/// Blocks for an element-wise kernel over `count` values (grid-stride loop inside, so the grid can be capped).
fn elementwise_config(count: usize) -> LaunchConfig {
    let blocks = count.div_ceil(ELEMENTWISE_THREADS as usize).clamp(1, 65_535) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (ELEMENTWISE_THREADS, 1, 1), shared_mem_bytes: 0 }
}

fn wrap(slice: candle_core::cuda_backend::CudaStorageSlice, device: &CudaDevice) -> CudaStorage {
    CudaStorage { slice, device: device.clone() }
}

/// LayerNorm over the last axis with two-pass f32 statistics; input, weight and bias of one dtype.
#[derive(Debug, Clone, Copy)]
pub struct LayerNormOp {
    pub eps: f32,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "mae-cuda-layer-norm"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        bail!("{} runs on CUDA only", self.name())
    }

    fn cuda_fwd(
        &self,
        input: &CudaStorage,
        input_layout: &Layout,
        weight: &CudaStorage,
        weight_layout: &Layout,
        bias: &CudaStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let device = input.device();
        let slice =
            self.map(&input.slice, input_layout, &weight.slice, weight_layout, &bias.slice, bias_layout, device)?;
        Ok((wrap(slice, device), input_layout.shape().clone()))
    }
}

impl Map3 for LayerNormOp {
    fn f<T: DeviceRepr + WithDType + ValidAsZeroBits>(
        &self,
        input: &CudaSlice<T>,
        input_layout: &Layout,
        weight: &CudaSlice<T>,
        weight_layout: &Layout,
        bias: &CudaSlice<T>,
        bias_layout: &Layout,
        device: &CudaDevice,
    ) -> candle_core::Result<CudaSlice<T>> {
        let op = CustomOp3::name(self);
        let (x, weight, bias) = (
            contiguous(input, input_layout, op)?,
            contiguous(weight, weight_layout, op)?,
            contiguous(bias, bias_layout, op)?,
        );
        let width = last_dim(input_layout);
        if weight.len() != width || bias.len() != width || !layer_norm_fits(width) {
            bail!("{op}: weight/bias length {} / {} for rows of {width}", weight.len(), bias.len());
        }
        let count = input_layout.shape().elem_count();
        let rows = count / width;
        // SAFETY: every element is written by the kernel below (one block per row, every column of it).
        #[allow(unsafe_code)]
        let out = unsafe { device.alloc::<T>(count)? };
        if rows == 0 {
            return Ok(out);
        }
        let function = device.get_or_load_custom_func(&kernel_name::<T>("mae_layer_norm")?, MODULE, PTX)?;
        let config = LaunchConfig {
            grid_dim: (rows as u32, 1, 1),
            block_dim: (ROW_THREADS, 1, 1),
            shared_mem_bytes: ((width + REDUCTION_SCRATCH) * 4) as u32,
        };
        let (rows, width) = (to_i32(rows, "row count", op)?, to_i32(width, "width", op)?);
        let mut launch = function.builder();
        launch.arg(&x).arg(&weight).arg(&bias).arg(&out).arg(&rows).arg(&width).arg(&self.eps);
        // SAFETY: the arguments match the kernel's signature (mae_layer_norm_*: x, weight, bias, out, rows, width,
        // eps); x and out hold rows·width values, weight and bias width (checked above).
        #[allow(unsafe_code)]
        unsafe { launch.launch(config) }.w()?;
        Ok(out)
    }
}

/// `gelu_erf(x + bias)` for a matmul output `x: [.., width]` and `bias: [width]`.
#[derive(Debug, Clone, Copy)]
pub struct BiasGeluOp;

impl CustomOp2 for BiasGeluOp {
    fn name(&self) -> &'static str {
        "mae-cuda-bias-gelu"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        bail!("{} runs on CUDA only", self.name())
    }

    fn cuda_fwd(
        &self,
        input: &CudaStorage,
        input_layout: &Layout,
        bias: &CudaStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let device = input.device();
        let slice = Map2::map(self, &input.slice, input_layout, &bias.slice, bias_layout, device)?;
        Ok((wrap(slice, device), input_layout.shape().clone()))
    }
}

impl Map2 for BiasGeluOp {
    fn f<T: DeviceRepr + WithDType + ValidAsZeroBits>(
        &self,
        input: &CudaSlice<T>,
        input_layout: &Layout,
        bias: &CudaSlice<T>,
        bias_layout: &Layout,
        device: &CudaDevice,
    ) -> candle_core::Result<CudaSlice<T>> {
        let op = CustomOp2::name(self);
        let (x, bias) = (contiguous(input, input_layout, op)?, contiguous(bias, bias_layout, op)?);
        let width = last_dim(input_layout);
        if bias.len() != width || width == 0 {
            bail!("{op}: bias of {} for rows of {width}", bias.len());
        }
        let count = x.len();
        // SAFETY: the kernel's grid-stride loop writes every one of the `count` elements.
        #[allow(unsafe_code)]
        let out = unsafe { device.alloc::<T>(count)? };
        if count == 0 {
            return Ok(out);
        }
        let function = device.get_or_load_custom_func(&kernel_name::<T>("mae_bias_gelu")?, MODULE, PTX)?;
        let (count_arg, width) = (count as u64, to_i32(width, "width", op)?);
        let mut launch = function.builder();
        launch.arg(&x).arg(&bias).arg(&out).arg(&count_arg).arg(&width);
        // SAFETY: matches mae_bias_gelu_*(x, bias, out, count, width); x and out hold count values, bias width.
        #[allow(unsafe_code)]
        unsafe { launch.launch(elementwise_config(count)) }.w()?;
        Ok(out)
    }
}

/// `residual + (x + bias)` for a matmul output `x: [.., width]`, `bias: [width]` and `residual` shaped as x.
#[derive(Debug, Clone, Copy)]
pub struct BiasResidualOp;

impl CustomOp3 for BiasResidualOp {
    fn name(&self) -> &'static str {
        "mae-cuda-bias-residual"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        bail!("{} runs on CUDA only", self.name())
    }

    fn cuda_fwd(
        &self,
        input: &CudaStorage,
        input_layout: &Layout,
        bias: &CudaStorage,
        bias_layout: &Layout,
        residual: &CudaStorage,
        residual_layout: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let device = input.device();
        let slice =
            self.map(&input.slice, input_layout, &bias.slice, bias_layout, &residual.slice, residual_layout, device)?;
        Ok((wrap(slice, device), input_layout.shape().clone()))
    }
}

impl Map3 for BiasResidualOp {
    fn f<T: DeviceRepr + WithDType + ValidAsZeroBits>(
        &self,
        input: &CudaSlice<T>,
        input_layout: &Layout,
        bias: &CudaSlice<T>,
        bias_layout: &Layout,
        residual: &CudaSlice<T>,
        residual_layout: &Layout,
        device: &CudaDevice,
    ) -> candle_core::Result<CudaSlice<T>> {
        let op = CustomOp3::name(self);
        let (x, bias, residual) = (
            contiguous(input, input_layout, op)?,
            contiguous(bias, bias_layout, op)?,
            contiguous(residual, residual_layout, op)?,
        );
        let width = last_dim(input_layout);
        if bias.len() != width || width == 0 || input_layout.dims() != residual_layout.dims() {
            bail!(
                "{op}: bias of {} and residual {:?} for an input {:?}",
                bias.len(),
                residual_layout.dims(),
                input_layout.dims()
            );
        }
        let count = x.len();
        // SAFETY: the kernel's grid-stride loop writes every one of the `count` elements.
        #[allow(unsafe_code)]
        let out = unsafe { device.alloc::<T>(count)? };
        if count == 0 {
            return Ok(out);
        }
        let function = device.get_or_load_custom_func(&kernel_name::<T>("mae_bias_residual")?, MODULE, PTX)?;
        let (count_arg, width) = (count as u64, to_i32(width, "width", op)?);
        let mut launch = function.builder();
        launch.arg(&x).arg(&bias).arg(&residual).arg(&out).arg(&count_arg).arg(&width);
        // SAFETY: matches mae_bias_residual_*(x, bias, residual, out, count, width); x, residual and out hold
        // count values, bias width.
        #[allow(unsafe_code)]
        unsafe { launch.launch(elementwise_config(count)) }.w()?;
        Ok(out)
    }
}

/// Multi-head attention on the fused projection `[n, 3·D]`. Output, one buffer of the input's dtype: when
/// `keep_probabilities`, the probabilities `[heads, n, n]`, then always the context `[n, D]`.
#[derive(Debug, Clone, Copy)]
pub struct AttentionOp {
    pub heads: usize,
    pub scale: f32,
    pub keep_probabilities: bool,
}

impl AttentionOp {
    /// Values in the output buffer for `tokens` rows of `width`.
    fn output_len(&self, tokens: usize, width: usize) -> usize {
        let probabilities = if self.keep_probabilities { self.heads * tokens * tokens } else { 0 };
        probabilities + tokens * width
    }
}

impl CustomOp1 for AttentionOp {
    fn name(&self) -> &'static str {
        "mae-cuda-attention"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        bail!("{} runs on CUDA only", self.name())
    }

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        let device = storage.device();
        let slice = Map1::map(self, &storage.slice, device, layout)?;
        let &[tokens, fused] = layout.dims() else { bail!("{}: expected [n, 3·D]", CustomOp1::name(self)) };
        Ok((wrap(slice, device), Shape::from(self.output_len(tokens, fused / 3))))
    }
}

impl Map1 for AttentionOp {
    fn f<T: DeviceRepr + WithDType + ValidAsZeroBits>(
        &self,
        storage: &CudaSlice<T>,
        device: &CudaDevice,
        layout: &Layout,
    ) -> candle_core::Result<CudaSlice<T>> {
        let op = CustomOp1::name(self);
        let qkv = contiguous(storage, layout, op)?;
        let &[tokens, fused] = layout.dims() else { bail!("{op}: expected [n, 3·D]") };
        let width = fused / 3;
        if fused % 3 != 0 || self.heads == 0 || width % self.heads != 0 {
            bail!("{op}: width {fused} is not 3 × heads ({}) × head size", self.heads);
        }
        let head_dim = width / self.heads;
        if !attention_fits(tokens, head_dim) || self.heads > 65_535 {
            bail!("{op}: {tokens} tokens of head size {head_dim} ({} heads) do not fit the kernel", self.heads);
        }
        let count = self.output_len(tokens, width);
        // SAFETY: every (query, head) block writes its probability row (when kept) and its head_dim context
        // columns; together the blocks cover the whole buffer.
        #[allow(unsafe_code)]
        let out = unsafe { device.alloc::<T>(count)? };
        let function = device.get_or_load_custom_func(&kernel_name::<T>("mae_attention")?, MODULE, PTX)?;
        let config = LaunchConfig {
            grid_dim: (tokens as u32, self.heads as u32, 1),
            block_dim: (ROW_THREADS, 1, 1),
            shared_mem_bytes: (attention_shared_floats(tokens, head_dim) * 4) as u32,
        };
        let (tokens, heads, head_dim) =
            (to_i32(tokens, "token count", op)?, to_i32(self.heads, "heads", op)?, to_i32(head_dim, "head size", op)?);
        let keep = i32::from(self.keep_probabilities);
        let mut launch = function.builder();
        launch.arg(&qkv).arg(&out).arg(&tokens).arg(&heads).arg(&head_dim).arg(&self.scale).arg(&keep);
        // SAFETY: matches mae_attention_*(qkv, out, tokens, heads, head_dim, scale, keep_probabilities); qkv holds
        // tokens·3·heads·head_dim values and out `count` (checked above), the shared memory is what the kernel
        // lays out for these sizes.
        #[allow(unsafe_code)]
        unsafe { launch.launch(config) }.w()?;
        Ok(out)
    }
}
