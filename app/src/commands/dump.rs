//! `mae-explorer dump`: one forward pass, every output written to a safetensors file under HF's names.
//! The parity checks call this interface; keep names and shapes stable.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, ensure};
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
    let metadata = BTreeMap::from([
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
    let bytes = serialize_in_key_order(tensors, &metadata)
        .with_context(|| format!("{}: cannot encode the outputs", args.out.display()))?;
    write_output(&args.out, args.force, |temporary| write_bytes(temporary, &bytes, &args.out))
}

/// What `safetensors` writes before the metadata object: `{"__metadata__":` (its header starts with the metadata).
const METADATA_PREFIX: &[u8] = br#"{"__metadata__":"#;

/// The safetensors file of `tensors` and `metadata`, the same bytes for the same outputs. The crate writes its
/// metadata `HashMap` in iteration order, which changes from run to run (so two dumps of one forward differed);
/// the object is rewritten here with its keys in order: the same entries in compact JSON, so the same length, and
/// no offset or tensor byte moves.
fn serialize_in_key_order(tensors: HashMap<String, Tensor>, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let as_written: HashMap<String, String> = metadata.clone().into_iter().collect();
    let mut bytes = safetensors::serialize(tensors, Some(as_written))?;
    let in_key_order = serde_json::to_vec(metadata)?;
    // The header follows its own length, a little-endian u64.
    let start = size_of::<u64>() + METADATA_PREFIX.len();
    let end = start + in_key_order.len();
    ensure!(
        bytes.get(size_of::<u64>()..start) == Some(METADATA_PREFIX) && bytes.get(end) == Some(&b','),
        "the safetensors header does not start with its metadata (a changed safetensors crate?)"
    );
    bytes[start..end].copy_from_slice(&in_key_order);
    Ok(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> BTreeMap<String, String> {
        ["mask", "mask_ratio", "seed", "masked_patches", "requested_masked_patches", "a \"quoted\" {path}"]
            .iter()
            .enumerate()
            .map(|(i, key)| (key.to_string(), format!("value {i} with \"quotes\" and }} braces")))
            .collect()
    }

    fn tensors() -> HashMap<String, Tensor> {
        let values = Tensor::arange(0f32, 6.0, &Device::Cpu).unwrap().reshape((2, 3)).unwrap();
        HashMap::from([("logits".to_string(), values.clone()), ("noise".to_string(), (values * 2.0).unwrap())])
    }

    #[test]
    fn the_same_outputs_give_the_same_bytes_and_read_back_whole() {
        // Each HashMap gets its own random hasher: without the rewrite, 21 encodings of six keys would almost never
        // all list them in one order.
        let first = serialize_in_key_order(tensors(), &metadata()).unwrap();
        for _ in 0..20 {
            assert_eq!(serialize_in_key_order(tensors(), &metadata()).unwrap(), first);
        }
        let (_, header) = safetensors::SafeTensors::read_metadata(&first).unwrap();
        let read: BTreeMap<String, String> = header.metadata().clone().unwrap().into_iter().collect();
        assert_eq!(read, metadata());
        let loaded = candle_core::safetensors::load_buffer(&first, &Device::Cpu).unwrap();
        for (name, tensor) in tensors() {
            let back = loaded[&name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(back, tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap(), "{name}");
        }
    }
}
