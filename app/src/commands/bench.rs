//! `mae-explorer bench`: time the forward pass as the window runs it (attentions kept), after warm-up.
//! The PyTorch side of the comparison is `tools/bench_torch.py`; `tools/bench_compare.sh` runs both.

use std::time::Instant;

use anyhow::{Result, bail};
use candle_core::{Device, Tensor};
use mae_model::{ForwardOptions, MaskSpec, TorchGenerator};

use super::model_arg::load_model_as;
use crate::cli::BenchArgs;
use mae_model::parse_dtype;

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    mae_model::masking::check_ratio(args.mask_ratio)?;
    if let Some(threads) = args.threads {
        if threads == 0 {
            bail!("--threads must be at least 1");
        }
        set_thread_count(threads);
    }
    let load_start = Instant::now();
    let loaded = load_model_as(&args.model, &args.device, parse_dtype(&args.dtype)?)?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;
    let config = loaded.model.config();
    let side = config.image_size;
    // Deterministic input; the values do not change the work done.
    let values: Vec<f32> = TorchGenerator::rand(1, 3 * side * side).iter().map(|v| v * 4.0 - 2.0).collect();
    let pixel_values = Tensor::from_vec(values, (1, 3, side, side), &Device::Cpu)?;
    let spec = MaskSpec::Seed { seed: 0, ratio: args.mask_ratio };
    let options = ForwardOptions { attentions: true };

    let first_start = Instant::now();
    loaded.model.forward(&pixel_values, &spec, options)?;
    let first_ms = first_start.elapsed().as_secs_f64() * 1e3;
    for _ in 1..args.warmup {
        loaded.model.forward(&pixel_values, &spec, options)?;
    }
    let mut times_ms = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let start = Instant::now();
        let output = loaded.model.forward(&pixel_values, &spec, options)?;
        // Make sure asynchronous devices have finished.
        output.logits.to_device(&Device::Cpu)?;
        times_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times_ms.sort_by(f64::total_cmp);
    let median = if times_ms.len() % 2 == 1 {
        times_ms[times_ms.len() / 2]
    } else {
        (times_ms[times_ms.len() / 2 - 1] + times_ms[times_ms.len() / 2]) / 2.0
    };
    println!(
        "mae-explorer bench model={} device={} threads={} mask_ratio={} runs={} median_ms={median:.1} min_ms={:.1} \
         load_ms={load_ms:.0} first_forward_ms={first_ms:.1}",
        loaded.name,
        loaded.model.device_name(),
        candle_core::utils::get_num_threads(),
        args.mask_ratio,
        args.runs,
        times_ms[0],
    );
    Ok(())
}

/// candle sizes its CPU pool from these variables when the pool is first used.
fn set_thread_count(threads: usize) {
    // SAFETY: called from the main thread before any other thread (and before candle's pool) exists.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
    }
}
