//! `mae-explorer dump`: one forward pass, every output written to a safetensors file under HF's names.
//! The parity checks call this interface; keep names and shapes stable.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use mae_model::masking::check_ratio;
use mae_model::npy::NpyFile;
use mae_model::preprocess::load_rgb_image;
use mae_model::{ForwardOptions, MaeModel, MaeOutput, MaskSpec};

use crate::atomic_file::{check_output_folder, check_overwrite, write_bytes, write_output};
use crate::cli::DumpArgs;
use crate::model_arg::{load_model_as, parse_dtype};

pub fn run(args: &DumpArgs) -> Result<()> {
    if let Some(ratio) = args.mask_ratio {
        check_ratio(ratio)?;
    }
    // Before the model loads: a typo in --out should not cost a load and a forward pass.
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    let loaded = load_model_as(&args.model, &args.device, parse_dtype(&args.dtype)?)?;
    let pixel_values = match (&args.image, &args.pixel_values) {
        (Some(image), _) => loaded.preprocessor.pixel_values(&load_rgb_image(image)?, &Device::Cpu)?,
        (None, Some(npy)) => read_pixel_values(npy, &loaded.model)?,
        (None, None) => bail!("give an input with --image or --pixel-values"),
    };
    let (_, _, height, width) = pixel_values.dims4()?;
    let (rows, cols) = loaded.model.grid_for(height, width)?;
    let ratio = args.mask_ratio.unwrap_or(loaded.model.config().mask_ratio);
    let spec = match &args.noise {
        Some(npy) => MaskSpec::Noise { noise: read_noise(npy, rows * cols)?, ratio },
        None => MaskSpec::Seed { seed: args.seed.unwrap_or(0), ratio },
    };
    let output = loaded.model.forward(&pixel_values, &spec, ForwardOptions { attentions: true })?;
    // Serialized in memory (the budget of `grid_for` counts this copy): safetensors' own file writer goes through
    // a private 0600 temporary file, which would ignore the user's umask.
    let bytes = safetensors::serialize(output_tensors(&output)?, None)
        .with_context(|| format!("{}: cannot encode the outputs", args.out.display()))?;
    write_output(&args.out, args.force, |temporary| write_bytes(temporary, &bytes, &args.out))
}

/// Every output under the names `dump` promises, on the CPU.
pub fn output_tensors(output: &MaeOutput) -> Result<HashMap<String, Tensor>> {
    let cpu = |t: &Tensor| -> Result<Tensor> { Ok(t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?) };
    let patches = output.num_patches();
    let row = |values: Vec<f32>| Tensor::from_vec(values, (1, patches), &Device::Cpu);
    let ids_restore: Vec<i64> = output.masking.ids_restore.iter().map(|&i| i as i64).collect();
    let mut tensors = HashMap::from([
        ("pixel_values".to_string(), cpu(&output.pixel_values)?),
        ("noise".to_string(), row(output.masking.noise.clone())?),
        ("logits".to_string(), cpu(&output.logits)?),
        ("mask".to_string(), row(output.masking.mask.clone())?),
        ("ids_restore".to_string(), Tensor::from_vec(ids_restore, (1, patches), &Device::Cpu)?),
        ("loss".to_string(), Tensor::new(output.loss.unwrap_or(f32::NAN), &Device::Cpu)?),
        ("patch_loss".to_string(), row(output.patch_loss.clone())?),
        ("last_hidden_state".to_string(), cpu(&output.last_hidden_state)?),
        ("reconstruction".to_string(), cpu(&output.reconstruction)?),
    ]);
    for (i, attention) in output.encoder_attentions.iter().enumerate() {
        tensors.insert(format!("encoder_attentions.{i}"), cpu(attention)?);
    }
    for (j, attention) in output.decoder_attentions.iter().enumerate() {
        tensors.insert(format!("decoder_attentions.{j}"), cpu(attention)?);
    }
    Ok(tensors)
}

/// Reads `[1, 3, H, W]` pixel values, checking the declared shape (and the memory a forward pass on it would
/// need) before the data is read.
pub fn read_pixel_values(path: &Path, model: &MaeModel) -> Result<Tensor> {
    let npy = NpyFile::open(path)?;
    let &[1, 3, height, width] = npy.shape() else {
        bail!("{}: pixel values must have shape [1, 3, H, W], got {:?}", path.display(), npy.shape());
    };
    model.grid_for(height, width).with_context(|| path.display().to_string())?;
    Ok(Tensor::from_vec(npy.read_f32()?, (1, 3, height, width), &Device::Cpu)?)
}

/// Reads noise of shape `[1, L]` (or `[L]`) for an input with `patches` patches.
pub fn read_noise(path: &Path, patches: usize) -> Result<Vec<f32>> {
    let npy = NpyFile::open(path)?;
    match npy.shape() {
        [1, n] | [n] if *n == patches => Ok(npy.read_f32()?),
        dims => bail!("{}: noise must have shape [1, {patches}] for this input, got {dims:?}", path.display()),
    }
}
