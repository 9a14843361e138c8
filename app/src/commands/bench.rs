//! `mae-explorer bench`: time the forward pass as the window runs it (attentions kept; `--no-attentions` to compare
//! with PyTorch's sdpa, which returns none), after warm-up; `--batch N` times a batched forward of N images.
//! The PyTorch side of the comparison is `tools/bench_torch.py`; `tools/bench_compare.sh` runs both.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use mae_model::ops::LinearWeight;
use mae_model::{ForwardOptions, TorchGenerator, dtype_name};

use super::model_arg::load_model;
use crate::cli::BenchArgs;
use crate::head_stats::head_stats;
use crate::jobs::masks::MaskSource;
use crate::render::Colormap;
use crate::render::attention::{Query, Stack};
use crate::render::gallery::{GalleryScale, GallerySpec, THUMBNAIL_WIDTH, render_gallery};
use crate::render::panels::{PanelOptions, render_panels};

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
    let mask = MaskSource::parse(&args.mask).context("--mask")?;
    let load_start = Instant::now();
    let loaded = load_model(&args.model, &args.engine)?;
    if args.shapes {
        return time_linear_products(&loaded.model, args.mask_ratio, args.batch);
    }
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;
    let config = loaded.model.config();
    let side = config.image_size;
    // Deterministic input; the values do not change the work done.
    let batch = args.batch;
    let values: Vec<f32> = TorchGenerator::rand(1, batch * 3 * side * side).iter().map(|v| v * 4.0 - 2.0).collect();
    let pixel_values = Tensor::from_vec(values, (batch, 3, side, side), &Device::Cpu)?;
    // Drawn masks without a seed use seed 0, as everywhere else; in a batch, image i uses seed i.
    let specs = (0..batch as u64)
        .map(|seed| mask.spec(seed, args.mask_ratio, (side, side), config.patch_size))
        .collect::<Result<Vec<_>>>()?;
    let options = ForwardOptions { attentions: !args.no_attentions };

    let first_start = Instant::now();
    let masked_patches = loaded.model.forward_batch(&pixel_values, &specs, options)?[0].masking.num_masked();
    let first_ms = first_start.elapsed().as_secs_f64() * 1e3;
    for _ in 1..args.warmup {
        loaded.model.forward_batch(&pixel_values, &specs, options)?;
    }
    let mut times_ms = Vec::with_capacity(args.runs);
    let mut heads_ms = Vec::new();
    for _ in 0..args.runs {
        let start = Instant::now();
        let outputs = loaded.model.forward_batch(&pixel_values, &specs, options)?;
        // Make sure asynchronous devices have finished.
        for output in &outputs {
            output.logits.to_device(&Device::Cpu)?;
        }
        times_ms.push(start.elapsed().as_secs_f64() * 1e3);
        if args.heads {
            let start = Instant::now();
            heads_work(&outputs[0], &loaded.preprocessor)?;
            heads_ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let forward_median = median(&mut times_ms);
    if args.heads {
        let heads_median = median(&mut heads_ms);
        println!("mae-explorer bench heads_ms={heads_median:.1} (statistics of every head + both galleries, median)");
    }
    println!(
        "mae-explorer bench model={} device={} dtype={} kernels={} cpu_kernel={} attentions={} threads={} mask={} mask_ratio={} \
         masked_patches={} batch={batch} runs={} \
         median_ms={forward_median:.3} min_ms={:.3} images_per_s={:.3} load_ms={load_ms:.0} \
         first_forward_ms={first_ms:.1}",
        loaded.name,
        loaded.model.device_name(),
        dtype_name(loaded.model.dtype()),
        loaded.model.kernels().name(),
        mae_model::ops::cpu_instruction_set(),
        options.attentions,
        candle_core::utils::get_num_threads(),
        mask.name(),
        args.mask_ratio,
        masked_patches,
        args.runs,
        times_ms[0],
        batch as f64 * 1e3 / forward_median,
    );
    Ok(())
}

/// Warm-up and timed calls of each linear product (`bench --shapes`).
const PRODUCT_WARMUP: usize = 3;
const PRODUCT_RUNS: usize = 10;
/// Which pass over the products is printed (see `time_linear_products`).
const TIMED_PASS: usize = 1;

/// Times every distinct linear product of one forward pass on the model's device, with its kernels, in the layout
/// the model keeps its weights (packed once for the CPU kernel, `[K, N]` for candle's and CUDA's), and prints each
/// as `shape=MxNxK gflops=<x>`.
fn time_linear_products(model: &mae_model::MaeModel, ratio: f64, batch: usize) -> Result<()> {
    let config = model.config();
    let len_keep = mae_model::masking::len_keep(config.num_patches(), ratio);
    let device = model.device();
    // The whole list twice, printing the second pass: timed right after the model loaded, the first product (the patch
    // embedding) ran at about half speed in four of nine rounds on the 2-core Xeon (0.44–0.62 of torch's, against
    // 1.28–1.69 in the others); an unprinted first pass takes that start-up cost.
    for pass in 0..=TIMED_PASS {
        for product in config.linear_products(len_keep, batch) {
            let (m, n, k) = (product.m, product.n, product.k);
            let random = |count: usize, seed: u64| -> Result<Tensor> {
                let values: Vec<f32> = TorchGenerator::rand(seed, count).iter().map(|v| v - 0.5).collect();
                Ok(Tensor::from_vec(values, count, &Device::Cpu)?.to_dtype(model.dtype())?.to_device(device)?)
            };
            let x = random(m * k, 1)?.reshape((m, k))?;
            let weight = LinearWeight::new(random(k * n, 2)?.reshape((k, n))?, model.kernels())?;
            let bias = random(n, 3)?;
            let mut best = f64::INFINITY;
            for run in 0..PRODUCT_WARMUP + PRODUCT_RUNS {
                let start = Instant::now();
                let y = device.with_context(|| mae_model::ops::linear(&x, &weight, &bias))?;
                // Asynchronous devices have finished once the result is read back.
                y.to_device(&Device::Cpu)?;
                if run >= PRODUCT_WARMUP {
                    best = best.min(start.elapsed().as_secs_f64());
                }
            }
            let gflops = 2.0 * (m * n * k) as f64 / best / 1e9;
            if pass == TIMED_PASS {
                println!("shape={m}x{n}x{k} gflops={gflops:.1} what={}", product.what.replace(' ', "-"));
            }
        }
    }
    Ok(())
}

/// Sorts `values` and returns their median.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
}

/// What the Heads panel costs on top of a forward pass: every head's statistics and the gallery of each stack.
fn heads_work(output: &mae_model::MaeOutput, preprocessor: &mae_model::Preprocessor) -> Result<()> {
    let stacks = [Stack::Encoder, Stack::Decoder];
    head_stats(output, &stacks)?;
    let original = render_panels(output, preprocessor, &PanelOptions::default())?.original;
    for stack in stacks {
        let spec = GallerySpec {
            stacks: vec![stack],
            query: Query::Cls,
            scale: GalleryScale::Shared,
            colormap: Colormap::Inferno,
            thumbnail: THUMBNAIL_WIDTH,
            // As the window asks for it.
            text: false,
        };
        render_gallery(output, &original, &spec)?;
    }
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
