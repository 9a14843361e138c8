//! With the `cuda` feature, compiles `src/cuda_kernels.cu` to PTX (loaded by `src/cuda_kernels.rs` at run time).
//! Without it this does nothing, so the CPU build needs no CUDA toolkit.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "cuda")]
    compile_cuda_kernels();
}

/// nvcc from `CUDA_HOME`/`PATH`, target from `CUDA_COMPUTE_CAP` (or the GPU's own, through nvidia-smi), as
/// candle-kernels builds its kernels, so both PTX modules target the same chip. Writes `cuda_kernels.ptx` to
/// `OUT_DIR`.
#[cfg(feature = "cuda")]
fn compile_cuda_kernels() {
    let built = cudaforge::KernelBuilder::new()
        .source_files(["src/cuda_kernels.cu"])
        .arg("-std=c++17")
        // No --use_fast_math: expf, erff, sqrtf and division stay IEEE-accurate (f32 must match PyTorch to 1e-4).
        .arg("-O3")
        .build_ptx();
    if let Err(error) = built {
        panic!("compiling src/cuda_kernels.cu with nvcc failed (set CUDA_HOME and CUDA_COMPUTE_CAP): {error}");
    }
}
