//! `mae-explorer dump`: one forward pass, every output written to a safetensors file under HF's names.
//! The parity checks call this interface; keep names and shapes stable.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use mae_model::{ForwardOptions, KernelChoice, MaeOutput, parse_dtype};

use super::model_arg::load_model_as;
use crate::atomic_file::{check_output_folder, check_overwrite, write_bytes, write_output};
use crate::cli::DumpArgs;

pub fn run(args: &DumpArgs) -> Result<()> {
    args.input.check()?;
    // Before the model loads: a typo in --out should not cost a load and a forward pass.
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    let kernels: KernelChoice = args.kernels.parse()?;
    let mut loaded = load_model_as(&args.model, &args.device, parse_dtype(&args.dtype)?)?;
    loaded.model.set_kernels(kernels);
    let (pixel_values, spec) = args.input.resolve(&loaded)?;
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
