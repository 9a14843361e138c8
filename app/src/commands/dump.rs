//! `mae-explorer dump`: one forward pass, every output written to a safetensors file under HF's names.
//! The parity checks call this interface; keep names and shapes stable.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use mae_model::{DisplayPair, ForwardOptions, MaeOutput, Preprocessor};

use super::model_arg::load_model;
use crate::atomic_file::{check_output_folder, check_overwrite, write_bytes, write_output};
use crate::cli::DumpArgs;

pub fn run(args: &DumpArgs) -> Result<()> {
    let mask = args.input.check()?;
    // Before the model loads: a typo in --out should not cost a load and a forward pass.
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    let loaded = load_model(&args.model, &args.engine)?;
    let input = args.input.resolve(&loaded, &mask)?;
    let output = loaded.model.forward(&input.pixel_values, &input.spec, ForwardOptions { attentions: true })?;
    let mut tensors = output_tensors(&output)?;
    tensors.extend(quality_tensors(&output, &loaded.preprocessor)?);
    let metadata = HashMap::from([
        ("mask".to_string(), input.mask_name.clone()),
        ("mask_ratio".to_string(), input.ratio.to_string()),
        ("seed".to_string(), input.seed.map_or_else(String::new, |seed| seed.to_string())),
        ("masked_patches".to_string(), output.masking.num_masked().to_string()),
        (
            "requested_masked_patches".to_string(),
            input.spec.requested_masked(output.num_patches()).map_or_else(String::new, |n| n.to_string()),
        ),
    ]);
    // Serialized in memory (the budget of `grid_for` counts this copy): safetensors' own file writer goes through
    // a private 0600 temporary file, which would ignore the user's umask.
    let bytes = safetensors::serialize(tensors, Some(metadata))
        .with_context(|| format!("{}: cannot encode the outputs", args.out.display()))?;
    write_output(&args.out, args.force, |temporary| write_bytes(temporary, &bytes, &args.out))
}

/// The pasted-back picture ([1, 3, H, W] in [0, 1]) and its quality: `psnr_db`, `psnr_masked_db` and `ssim` as
/// f32 of shape [1] (a perfect match is +inf), and `visible_loss` (0-d). A value that does not exist — the masked
/// PSNR with no masked patch, SSIM of a picture under 11×11 pixels, the visible loss with nothing visible — is left
/// out, never written as NaN.
fn quality_tensors(output: &MaeOutput, preprocessor: &Preprocessor) -> Result<HashMap<String, Tensor>> {
    let pair = DisplayPair::of(output, preprocessor)?;
    let quality = pair.quality(output);
    let (height, width) = (pair.height, pair.width);
    let mut tensors = HashMap::from([
        ("pasted_back".to_string(), Tensor::from_vec(pair.pasted_back, (1, 3, height, width), &Device::Cpu)?),
        ("psnr_db".to_string(), Tensor::new(&[quality.psnr_db as f32], &Device::Cpu)?),
    ]);
    let optional =
        [("psnr_masked_db", quality.psnr_masked_db.map(|v| v as f32)), ("ssim", quality.ssim.map(|v| v as f32))];
    for (name, value) in optional {
        if let Some(value) = value {
            tensors.insert(name.to_string(), Tensor::new(&[value], &Device::Cpu)?);
        }
    }
    if let Some(visible_loss) = quality.visible_loss {
        tensors.insert("visible_loss".to_string(), Tensor::new(visible_loss, &Device::Cpu)?);
    }
    Ok(tensors)
}

/// Every output under the names `dump` promises, on the CPU. `loss` is left out when nothing is masked (HF
/// computes NaN there).
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
        ("patch_loss".to_string(), row(output.patch_loss.clone())?),
        ("last_hidden_state".to_string(), cpu(&output.last_hidden_state)?),
        ("reconstruction".to_string(), cpu(&output.reconstruction)?),
    ]);
    if let Some(loss) = output.loss {
        tensors.insert("loss".to_string(), Tensor::new(loss, &Device::Cpu)?);
    }
    for (i, attention) in output.encoder_attentions.iter().enumerate() {
        tensors.insert(format!("encoder_attentions.{i}"), cpu(attention)?);
    }
    for (j, attention) in output.decoder_attentions.iter().enumerate() {
        tensors.insert(format!("decoder_attentions.{j}"), cpu(attention)?);
    }
    Ok(tensors)
}
