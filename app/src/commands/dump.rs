//! `mae-explorer dump`: one forward pass, every output written to a safetensors file under HF's names.
//! The parity checks call this interface; keep names and shapes stable.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use mae_model::{ForwardOptions, KernelChoice, MaeOutput, parse_dtype};

use super::model_arg::load_model_as;
use crate::atomic_file::write_atomically;
use crate::cli::DumpArgs;

pub fn run(args: &DumpArgs) -> Result<()> {
    args.input.check()?;
    let kernels: KernelChoice = args.kernels.parse()?;
    let mut loaded = load_model_as(&args.model, &args.device, parse_dtype(&args.dtype)?)?;
    loaded.model.set_kernels(kernels);
    let (pixel_values, spec) = args.input.resolve(&loaded)?;
    let output = loaded.model.forward(&pixel_values, &spec, ForwardOptions { attentions: true })?;
    let tensors = output_tensors(&output)?;
    write_atomically(&args.out, |temporary| {
        candle_core::safetensors::save(&tensors, temporary)
            .with_context(|| format!("{}: cannot write the output", args.out.display()))
    })
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
