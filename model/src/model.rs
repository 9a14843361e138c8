//! The ViTMAE forward pass as HF's `ViTMAEForPreTraining` computes it: [`Embeddings`] of the visible patches →
//! [`Encoder`] → [`Decoder`] over all patches, batched over items that keep the same number of patches, then the
//! loss and reconstruction of each item.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};

use crate::config::{CheckedJson, MaeConfig};
use crate::decoder::Decoder;
use crate::embeddings::{Embeddings, index_tensor};
use crate::encoder::Encoder;
use crate::error::{MaeError, Result};
use crate::masking::{MaskSpec, Masking};
use crate::memory;
use crate::ops::KernelChoice;
use crate::outputs::MaeOutput;
use crate::patches::{self, PatchGrid, masked_mean};
use crate::weights::{Placement, WeightStore};

/// What a forward pass should keep besides the logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardOptions {
    /// Keep the attention probabilities of every encoder and decoder layer (costs memory, little time).
    pub attentions: bool,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        Self { attentions: true }
    }
}

/// A loaded ViTMAE model (`ViTMAEForPreTraining`) ready to run on one device: HF's modules, each with its own
/// weights and forward — [`Embeddings`] → [`Encoder`] → [`Decoder`].
#[derive(Debug, Clone)]
pub struct MaeModel {
    config: MaeConfig,
    device: Device,
    dtype: DType,
    /// Fused kernels or candle's composed ops (see `ops.rs`).
    kernels: KernelChoice,
    embeddings: Embeddings,
    encoder: Encoder,
    decoder: Decoder,
    /// The position tables of the last patch grid used, on the device: a forward pass uploads nothing that only
    /// depends on the input size. Shared by clones (the tables depend only on the weights and the grid).
    position_cache: Arc<Mutex<Option<PositionTables>>>,
}

/// Encoder and decoder position tables for one patch grid, on the model's device in its dtype.
#[derive(Debug, Clone)]
struct PositionTables {
    grid: (usize, usize),
    /// `[L, D]`: the patch rows of the encoder table ([`Embeddings::position_table`]).
    encoder_patches: Tensor,
    /// `[1 + L, Dd]` ([`Decoder::position_table`]).
    decoder: Tensor,
}

impl MaeModel {
    /// Builds the model from hub-named tensors, checking every shape against `config`, its weights laid out for
    /// `kernels` on `device` as they are read (one copy, never two).
    pub fn from_store(
        config: MaeConfig,
        store: &WeightStore,
        device: &Device,
        dtype: DType,
        kernels: KernelChoice,
    ) -> Result<Self> {
        config.validate().map_err(MaeError::InvalidInput)?;
        if device.is_cpu() && dtype != DType::F32 {
            return Err(MaeError::Device(format!("{dtype:?} is not supported on the CPU (use f32)")));
        }
        let at = Placement { device, dtype, kernels };
        Ok(Self {
            kernels,
            embeddings: Embeddings::load(&config, store, at)?,
            encoder: Encoder::load(&config, store, at)?,
            decoder: Decoder::load(&config, store, at)?,
            position_cache: Arc::default(),
            device: device.clone(),
            dtype,
            config,
        })
    }

    /// HF's `vit.embeddings`.
    pub fn embeddings(&self) -> &Embeddings {
        &self.embeddings
    }

    /// HF's encoder layers and `vit.layernorm`.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// HF's `decoder`.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    pub fn config(&self) -> &MaeConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Which kernels the layers run on (fused where the device and dtype have them, unless told otherwise).
    pub fn kernels(&self) -> KernelChoice {
        self.kernels
    }

    /// Runs the layers on `kernels` from the next forward pass on (`Candle` is the reference the fused kernels are
    /// compared and timed against), laying every weight out as they read it: the old layout is replaced, never
    /// kept beside the new one.
    pub fn set_kernels(&mut self, kernels: KernelChoice) -> Result<()> {
        self.embeddings.set_kernels(kernels)?;
        self.encoder.set_kernels(kernels)?;
        self.decoder.set_kernels(kernels)?;
        self.kernels = kernels;
        Ok(())
    }

    pub fn device_name(&self) -> &'static str {
        match self.device {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
            Device::Metal(_) => "metal",
        }
    }

    /// Patch grid (rows, columns) for an input of `height`×`width` pixels, or why that size cannot be used: not a
    /// whole number of patches, or a forward pass on it would not fit in memory ([`check_forward_fits`]).
    pub fn grid_for(&self, height: usize, width: usize) -> Result<(usize, usize)> {
        let p = self.config.patch_size;
        if height == 0 || width == 0 || !height.is_multiple_of(p) || !width.is_multiple_of(p) {
            return Err(MaeError::InvalidInput(format!(
                "input of {height}×{width} pixels is not a whole number of {p}×{p} patches"
            )));
        }
        let grid = (height / p, width / p);
        check_forward_fits(&self.config, grid).map_err(MaeError::InvalidInput)?;
        Ok(grid)
    }

    /// Runs the whole model on `pixel_values` (`[1, 3, H, W]`, normalized) with the mask `spec` describes.
    pub fn forward(&self, pixel_values: &Tensor, spec: &MaskSpec, options: ForwardOptions) -> Result<MaeOutput> {
        let mut outputs = self.forward_batch(pixel_values, std::slice::from_ref(spec), options)?;
        Ok(outputs.pop().expect("one input gives one output"))
    }

    /// Runs the whole model on a batch `pixel_values` (`[B, 3, H, W]`, normalized), item i masked as `specs[i]`
    /// describes; returns one output per item, each what [`MaeModel::forward`] gives for that item alone. Items
    /// with the same number of visible patches run as one batch (HF's requirement too: a batch shares one token
    /// count); masks that keep other counts (block, centre and painted ones vary) run in their own groups.
    pub fn forward_batch(
        &self,
        pixel_values: &Tensor,
        specs: &[MaskSpec],
        options: ForwardOptions,
    ) -> Result<Vec<MaeOutput>> {
        let expected = || format!("[{}, {}, H, W]", specs.len(), self.config.num_channels);
        let (batch, channels, height, width) = pixel_values.dims4().map_err(|_| {
            MaeError::InvalidInput(format!("pixel values must be {}, got {:?}", expected(), pixel_values.dims()))
        })?;
        if batch == 0 || batch != specs.len() || channels != self.config.num_channels {
            return Err(MaeError::InvalidInput(format!(
                "pixel values must be {} (one mask per image), got {:?}",
                expected(),
                pixel_values.dims()
            )));
        }
        let grid = self.grid_for(height, width)?;
        let maskings = specs.iter().map(|spec| Masking::new(spec, grid)).collect::<Result<Vec<_>>>()?;
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (item, masking) in maskings.iter().enumerate() {
            groups.entry(masking.len_keep()).or_default().push(item);
        }
        // One item is what `grid_for` just checked; a larger group holds several items' activations at once.
        let largest = groups.values().map(Vec::len).max().unwrap_or(1);
        if largest > 1 {
            check_batch_fits(&self.config, grid, largest, options.attentions).map_err(MaeError::InvalidInput)?;
        }
        let mut maskings: Vec<Option<Masking>> = maskings.into_iter().map(Some).collect();
        let mut outputs: Vec<Option<MaeOutput>> = (0..batch).map(|_| None).collect();
        for members in groups.values() {
            let group: Vec<(Tensor, Masking)> = members
                .iter()
                .map(|&item| Ok((pixel_values.narrow(0, item, 1)?, maskings[item].take().expect("each item once"))))
                .collect::<Result<_>>()?;
            let results = self.device.with_context(|| self.forward_group(group, grid, options))?;
            for (&item, output) in members.iter().zip(results) {
                outputs[item] = Some(output);
            }
        }
        Ok(outputs.into_iter().map(|output| output.expect("every item is in one group")).collect())
    }

    /// One batch of items that keep the same number of patches: their tokens are stacked (`[items·n, D]`) so
    /// every projection is one gemm over all of them, and attention runs per item. Embeddings → encoder →
    /// decoder, then each item's loss and reconstruction on the host.
    fn forward_group(
        &self,
        items: Vec<(Tensor, Masking)>,
        grid: (usize, usize),
        options: ForwardOptions,
    ) -> Result<Vec<MaeOutput>> {
        let config = &self.config;
        let kernels = self.kernels;
        let count = items.len();
        let len_keep = items[0].1.len_keep();
        let geometry =
            PatchGrid { channels: config.num_channels, rows: grid.0, cols: grid.1, patch: config.patch_size };
        // Each input as the model sees it (rounded to the compute dtype), kept on the host: the patch rows, the
        // loss target and the output are all made from this copy, so the device never sends pixels back.
        let mut inputs = Vec::with_capacity(count);
        for (pixel_values, masking) in items {
            let pixel_values = pixel_values.to_device(&Device::Cpu)?.to_dtype(self.dtype)?.to_dtype(DType::F32)?;
            let pixel_host: Vec<f32> = pixel_values.flatten_all()?.to_vec1()?;
            inputs.push((pixel_values, pixel_host, masking));
        }
        // Every upload first, then the layers: nothing in between waits on the host.
        let positions = self.position_tables(grid)?;
        let ids_restore = inputs
            .iter()
            .map(|(_, _, masking)| index_tensor(&masking.ids_restore, &self.device))
            .collect::<Result<Vec<_>>>()?;

        let pixels: Vec<&[f32]> = inputs.iter().map(|(_, host, _)| host.as_slice()).collect();
        let maskings: Vec<&Masking> = inputs.iter().map(|(_, _, masking)| masking).collect();
        let embedded = self.embeddings.forward(&pixels, &maskings, &geometry, &positions.encoder_patches)?;
        let (last_hidden_state, encoder_attentions) =
            self.encoder.forward(&embedded, count, options.attentions, kernels)?;
        let (logits, decoder_attentions) =
            self.decoder.forward(&last_hidden_state, &ids_restore, &positions.decoder, options.attentions, kernels)?;

        let layer_maps = |per_layer: &[Vec<Tensor>], item: usize| -> Result<Vec<Tensor>> {
            per_layer.iter().filter_map(|maps| maps.get(item)).map(|map| batched(map.clone())).collect()
        };
        let mut outputs = Vec::with_capacity(count);
        for (item, ((pixel_values, pixel_host, masking), logits)) in inputs.into_iter().zip(logits).enumerate() {
            let logits = logits.to_dtype(DType::F32)?;
            // The one download per item: the loss and the reconstruction are computed on the host.
            let logits_host: Vec<f32> = logits.flatten_all()?.to_vec1()?;
            let mut loss_target = geometry.patchify(&pixel_host);
            if config.norm_pix_loss {
                patches::normalize_rows(&mut loss_target, geometry.patch_dim());
            }
            let patch_loss = patches::patch_mse(&logits_host, &loss_target, geometry.patch_dim());
            outputs.push(MaeOutput {
                grid,
                patch_size: config.patch_size,
                norm_pix_loss: config.norm_pix_loss,
                loss: masked_mean(&patch_loss, &masking.mask),
                patch_loss,
                reconstruction: patches::image_tensor(geometry.unpatchify(&logits_host), &geometry, &Device::Cpu)?,
                logits: logits.unsqueeze(0)?,
                pixel_values,
                last_hidden_state: batched(last_hidden_state.narrow(0, item * (1 + len_keep), 1 + len_keep)?)?,
                encoder_attentions: layer_maps(&encoder_attentions, item)?,
                decoder_attentions: layer_maps(&decoder_attentions, item)?,
                masking,
            });
        }
        Ok(outputs)
    }

    /// The position tables for a patch grid, interpolated as HF's `interpolate_pos_encoding` does when the grid is
    /// not the config's; uploaded once per grid (the last grid's stay cached).
    fn position_tables(&self, grid: (usize, usize)) -> Result<PositionTables> {
        let mut cache = self.position_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tables) = cache.as_ref().filter(|tables| tables.grid == grid) {
            return Ok(tables.clone());
        }
        let tables = self.make_position_tables(grid)?;
        *cache = Some(tables.clone());
        Ok(tables)
    }

    fn make_position_tables(&self, grid: (usize, usize)) -> Result<PositionTables> {
        Ok(PositionTables {
            grid,
            encoder_patches: self.embeddings.position_table(grid)?,
            decoder: self.decoder.position_table(grid.0 * grid.1)?,
        })
    }
}

/// One matrix product of a forward pass as `F.linear` computes it: `M` rows of `K` inputs to `N` outputs, bias
/// added; `what` says where in the model it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearProduct {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub what: &'static str,
}

impl MaeConfig {
    /// The distinct linear products of one forward pass of `batch` images on the configured grid with
    /// `len_keep` patches kept (attention's per-head products are not linear layers and are left out): the patch
    /// embedding, the encoder's projections and MLP, the decoder's embedding, projections, MLP and prediction.
    /// The first place a shape appears names it.
    pub fn linear_products(&self, len_keep: usize, batch: usize) -> Vec<LinearProduct> {
        let (d, dd) = (self.hidden_size, self.decoder_hidden_size);
        let (encoder_rows, decoder_rows) = (batch * (len_keep + 1), batch * (self.num_patches() + 1));
        let all = [
            (batch * len_keep, d, self.num_channels * self.patch_size * self.patch_size, "patch embedding"),
            (encoder_rows, 3 * d, d, "encoder q/k/v"),
            (encoder_rows, d, d, "encoder out-projection"),
            (encoder_rows, self.intermediate_size, d, "encoder MLP up"),
            (encoder_rows, d, self.intermediate_size, "encoder MLP down"),
            (encoder_rows, dd, d, "decoder embedding"),
            (decoder_rows, 3 * dd, dd, "decoder q/k/v"),
            (decoder_rows, dd, dd, "decoder out-projection"),
            (decoder_rows, self.decoder_intermediate_size, dd, "decoder MLP up"),
            (decoder_rows, dd, self.decoder_intermediate_size, "decoder MLP down"),
            (decoder_rows, self.patch_dim(), dd, "decoder prediction"),
        ];
        let mut products: Vec<LinearProduct> = Vec::new();
        for (m, n, k, what) in all {
            if m > 0 && !products.iter().any(|p| (p.m, p.n, p.k) == (m, n, k)) {
                products.push(LinearProduct { m, n, k, what });
            }
        }
        products
    }
}

/// Refuses a patch grid whose forward pass (attention maps kept, nothing masked) would not fit in memory, with
/// both figures; see [`memory::forward_pass_bytes`].
pub fn check_forward_fits(config: &MaeConfig, (rows, cols): (usize, usize)) -> std::result::Result<(), String> {
    let patches = (rows as u64).saturating_mul(cols as u64);
    let p = config.patch_size;
    let what = format!(
        "one forward pass on {}×{} pixels ({rows}×{cols} = {patches} patches, attention maps kept)",
        rows.saturating_mul(p),
        cols.saturating_mul(p)
    );
    memory::check_fits(&what, memory::forward_pass_bytes(config, patches))
}

/// Refuses a batch of `items` forward passes on one patch grid that would not fit in memory together (the
/// attention maps counted only when they are kept), with both figures.
pub fn check_batch_fits(
    config: &MaeConfig,
    (rows, cols): (usize, usize),
    items: usize,
    attentions: bool,
) -> std::result::Result<(), String> {
    let patches = (rows as u64).saturating_mul(cols as u64);
    let what = format!("a batch of {items} forward passes on {rows}×{cols} patches");
    memory::check_fits(&what, memory::batch_pass_bytes(config, patches, items as u64, attentions))
}

/// One item's tensor as HF shapes it in a batch of one (`[1, …]`, f32).
fn batched(t: Tensor) -> Result<Tensor> {
    Ok(t.to_dtype(DType::F32)?.unsqueeze(0)?)
}
