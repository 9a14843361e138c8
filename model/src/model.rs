//! The ViTMAE forward pass (encoder on the visible patches, decoder on all of them), as HF computes it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::config::{Activation, CheckedJson, MaeConfig};
use crate::error::{MaeError, Result};
use crate::interpolate::bicubic_resize;
use crate::masking::{MaskSpec, Masking};
use crate::memory;
use crate::ops::{self, KernelChoice};
use crate::outputs::MaeOutput;
use crate::patches::{self, PatchGrid, masked_mean};
use crate::weights::WeightStore;

/// `y = x·Wᵀ + b` with W (HF's `[out, in]`) stored transposed, `[in, out]`: the layout gemm multiplies fastest.
#[derive(Debug, Clone)]
struct Linear {
    weight_t: Tensor,
    bias: Tensor,
}

impl Linear {
    /// `prefix.weight` (`[outputs, inputs]`, or `shape` when it is stored with more axes, as the patch conv is)
    /// and `prefix.bias`.
    fn load(store: &WeightStore, prefix: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Self> {
        Self::load_side_by_side(store, &[prefix.to_string()], shape, dtype, device)
    }

    /// Linears of the same `shape` that read the same input, as one whose outputs lie side by side (q, k, v →
    /// one matmul); their weights are transposed straight into one matrix (see `WeightStore::transposed_matrix`).
    fn load_side_by_side(
        store: &WeightStore,
        prefixes: &[String],
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let keys: Vec<String> = prefixes.iter().map(|prefix| format!("{prefix}.weight")).collect();
        let weight_t = store.transposed_matrix(&keys, shape, dtype, device)?;
        let biases = prefixes
            .iter()
            .map(|prefix| store.get(&format!("{prefix}.bias"), &shape[..1], dtype, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { weight_t, bias: Tensor::cat(&biases, 0)? })
    }

    fn forward(&self, x: &Tensor, kernels: KernelChoice) -> Result<Tensor> {
        ops::linear(x, &self.weight_t, &self.bias, kernels)
    }

    /// `residual + self(x)`.
    fn forward_add(&self, x: &Tensor, residual: &Tensor, kernels: KernelChoice) -> Result<Tensor> {
        ops::linear_add(x, &self.weight_t, &self.bias, residual, kernels)
    }

    /// `activation(self(x))`; exact GELU, the ViTMAE default, fused with the bias.
    fn forward_activated(&self, x: &Tensor, activation: Activation, kernels: KernelChoice) -> Result<Tensor> {
        Ok(match activation {
            Activation::GeluErf => ops::linear_gelu(x, &self.weight_t, &self.bias, kernels)?,
            Activation::GeluTanh => self.forward(x, kernels)?.gelu()?,
            Activation::Relu => self.forward(x, kernels)?.relu()?,
            Activation::Silu => self.forward(x, kernels)?.silu()?,
        })
    }
}

/// LayerNorm over the last axis (see `ops::layer_norm` for how it is computed).
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(store: &WeightStore, prefix: &str, dim: usize, eps: f64, dtype: DType, device: &Device) -> Result<Self> {
        Ok(Self {
            weight: store.get(&format!("{prefix}.weight"), &[dim], dtype, device)?,
            bias: store.get(&format!("{prefix}.bias"), &[dim], dtype, device)?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor, kernels: KernelChoice) -> Result<Tensor> {
        ops::layer_norm(x, &self.weight, &self.bias, self.eps, kernels)
    }
}

/// One pre-norm transformer layer (same structure in encoder and decoder).
#[derive(Debug, Clone)]
struct Layer {
    norm_before: LayerNorm,
    qkv: Linear,
    attention_out: Linear,
    norm_after: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
    activation: Activation,
}

struct LayerDims {
    hidden: usize,
    heads: usize,
    mlp: usize,
    eps: f64,
    activation: Activation,
}

impl Layer {
    fn load(store: &WeightStore, prefix: &str, dims: &LayerDims, dtype: DType, device: &Device) -> Result<Self> {
        let d = dims.hidden;
        let linear = |name: &str, inputs: usize, outputs: usize| {
            Linear::load(store, &format!("{prefix}.{name}"), &[outputs, inputs], dtype, device)
        };
        let norm = |name: &str| LayerNorm::load(store, &format!("{prefix}.{name}"), d, dims.eps, dtype, device);
        let qkv_prefixes = ["query", "key", "value"].map(|name| format!("{prefix}.attention.attention.{name}"));
        let qkv = Linear::load_side_by_side(store, &qkv_prefixes, &[d, d], dtype, device)?;
        Ok(Self {
            norm_before: norm("layernorm_before")?,
            qkv,
            attention_out: linear("attention.output.dense", d, d)?,
            norm_after: norm("layernorm_after")?,
            fc1: linear("intermediate.dense", d, dims.mlp)?,
            fc2: linear("output.dense", dims.mlp, d)?,
            heads: dims.heads,
            activation: dims.activation,
        })
    }

    /// `h += attn(LN(h)); h += mlp(LN(h))` for `h: [items·n, D]` (`items` sequences of `n` tokens stacked, each
    /// attending only to itself); returns one item's attention probabilities `[heads, n, n]` per item when asked.
    fn forward(
        &self,
        hidden: &Tensor,
        items: usize,
        keep_attention: bool,
        kernels: KernelChoice,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let qkv = self.qkv.forward(&self.norm_before.forward(hidden, kernels)?, kernels)?;
        let (context, probabilities) = ops::batched_attention(&qkv, items, self.heads, keep_attention, kernels)?;
        let hidden = self.attention_out.forward_add(&context, hidden, kernels)?;
        let mlp_input = self.norm_after.forward(&hidden, kernels)?;
        let activated = self.fc1.forward_activated(&mlp_input, self.activation, kernels)?;
        let hidden = self.fc2.forward_add(&activated, &hidden, kernels)?;
        Ok((hidden, probabilities))
    }
}

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

/// A loaded ViTMAE model (`ViTMAEForPreTraining`) ready to run on one device.
#[derive(Debug, Clone)]
pub struct MaeModel {
    config: MaeConfig,
    device: Device,
    dtype: DType,
    /// Fused kernels or candle's composed ops (see `ops.rs`).
    kernels: KernelChoice,
    /// Patch-embedding conv as a matmul: `[C·p·p, D]` (transposed conv kernel), applied to visible patches only.
    patch_embed: Linear,
    /// `cls_token + position_embeddings[0]` (`[1, D]`): the first encoder token, the same for every input size.
    cls_with_position: Tensor,
    /// `[1 + L, D]` host copy, for interpolation to other sizes.
    position_embeddings: Vec<f32>,
    encoder_layers: Vec<Layer>,
    encoder_norm: LayerNorm,
    decoder_embed: Linear,
    mask_token: Tensor,
    decoder_position_embeddings: Vec<f32>,
    decoder_layers: Vec<Layer>,
    decoder_norm: LayerNorm,
    decoder_pred: Linear,
    /// The position tables of the last patch grid used, on the device: a forward pass uploads nothing that only
    /// depends on the input size. Shared by clones (the tables depend only on the weights and the grid).
    position_cache: Arc<Mutex<Option<PositionTables>>>,
}

/// Encoder and decoder position tables for one patch grid, on the model's device in its dtype.
#[derive(Debug, Clone)]
struct PositionTables {
    grid: (usize, usize),
    /// `[L, D]`: the patch rows of the encoder table (the CLS row is in `cls_with_position`).
    encoder_patches: Tensor,
    /// `[1 + L, Dd]`.
    decoder: Tensor,
}

impl MaeModel {
    /// Builds the model from hub-named tensors, checking every shape against `config`.
    pub fn from_store(config: MaeConfig, store: &WeightStore, device: &Device, dtype: DType) -> Result<Self> {
        config.validate().map_err(MaeError::InvalidInput)?;
        if device.is_cpu() && dtype != DType::F32 {
            return Err(MaeError::Device(format!("{dtype:?} is not supported on the CPU (use f32)")));
        }
        let activation = config.activation().map_err(MaeError::InvalidInput)?;
        let (d, dd, p, c, l) = (
            config.hidden_size,
            config.decoder_hidden_size,
            config.patch_size,
            config.num_channels,
            config.num_patches(),
        );
        let get = |key: &str, shape: &[usize]| store.get(key, shape, dtype, device);
        let host = |key: &str, shape: &[usize]| -> Result<Vec<f32>> {
            Ok(store.get(key, shape, DType::F32, &Device::Cpu)?.flatten_all()?.to_vec1()?)
        };
        let position_embeddings = host("vit.embeddings.position_embeddings", &[1, l + 1, d])?;
        // In f32 on the host, then one rounding to the compute dtype.
        let cls_with_position: Vec<f32> = host("vit.embeddings.cls_token", &[1, 1, d])?
            .iter()
            .zip(&position_embeddings[..d])
            .map(|(cls, position)| cls + position)
            .collect();

        // The conv kernel `[D, C, p, p]` is a `[D, C·p·p]` matrix over each patch's (c, i, j) values.
        let patch_embed =
            Linear::load(store, "vit.embeddings.patch_embeddings.projection", &[d, c, p, p], dtype, device)?;
        let encoder_dims = LayerDims {
            hidden: d,
            heads: config.num_attention_heads,
            mlp: config.intermediate_size,
            eps: config.layer_norm_eps,
            activation,
        };
        let decoder_dims = LayerDims {
            hidden: dd,
            heads: config.decoder_num_attention_heads,
            mlp: config.decoder_intermediate_size,
            eps: config.layer_norm_eps,
            activation,
        };
        // Layers load in parallel: reading and transposing a base model's 448 MB is most of its start.
        let encoder_layers = (0..config.num_hidden_layers)
            .into_par_iter()
            .map(|i| Layer::load(store, &format!("vit.encoder.layer.{i}"), &encoder_dims, dtype, device))
            .collect::<Result<_>>()?;
        let decoder_layers = (0..config.decoder_num_hidden_layers)
            .into_par_iter()
            .map(|j| Layer::load(store, &format!("decoder.decoder_layers.{j}"), &decoder_dims, dtype, device))
            .collect::<Result<_>>()?;
        Ok(Self {
            kernels: KernelChoice::default(),
            patch_embed,
            cls_with_position: upload(cls_with_position, (1, d), dtype, device)?,
            position_embeddings,
            encoder_layers,
            encoder_norm: LayerNorm::load(store, "vit.layernorm", d, config.layer_norm_eps, dtype, device)?,
            decoder_embed: Linear::load(store, "decoder.decoder_embed", &[dd, d], dtype, device)?,
            mask_token: get("decoder.mask_token", &[1, 1, dd])?.reshape((1, dd))?,
            decoder_position_embeddings: host("decoder.decoder_pos_embed", &[1, l + 1, dd])?,
            decoder_layers,
            decoder_norm: LayerNorm::load(store, "decoder.decoder_norm", dd, config.layer_norm_eps, dtype, device)?,
            decoder_pred: Linear::load(store, "decoder.decoder_pred", &[config.patch_dim(), dd], dtype, device)?,
            position_cache: Arc::default(),
            device: device.clone(),
            dtype,
            config,
        })
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
    /// compared and timed against).
    pub fn set_kernels(&mut self, kernels: KernelChoice) {
        self.kernels = kernels;
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
        if height == 0 || width == 0 || height % p != 0 || width % p != 0 {
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
    /// every projection is one gemm over all of them, and attention runs per item.
    fn forward_group(
        &self,
        items: Vec<(Tensor, Masking)>,
        grid: (usize, usize),
        options: ForwardOptions,
    ) -> Result<Vec<MaeOutput>> {
        let config = &self.config;
        let (dd, p) = (config.decoder_hidden_size, config.patch_size);
        let kernels = self.kernels;
        let count = items.len();
        let num_patches = grid.0 * grid.1;
        let len_keep = items[0].1.len_keep();
        let geometry = PatchGrid { channels: config.num_channels, rows: grid.0, cols: grid.1, patch: p };
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

        // Encoder input: embed only the visible patches (the conv is a matmul over each patch's (c, i, j) values),
        // in HF's shuffled order, then prepend CLS. Masked patches cost nothing; with all of them masked the
        // encoder sees CLS alone (and no empty tensor reaches a GPU kernel).
        let mut hidden = if len_keep == 0 {
            Tensor::cat(&vec![&self.cls_with_position; count], 0)?
        } else {
            let mut rows = Vec::with_capacity(count * len_keep * geometry.patch_dim());
            let mut ids_keep = Vec::with_capacity(count * len_keep);
            for (_, pixel_host, masking) in &inputs {
                rows.extend(geometry.conv_rows(pixel_host, &masking.ids_keep));
                ids_keep.extend_from_slice(&masking.ids_keep);
            }
            let kept_patches = upload(rows, (count * len_keep, geometry.patch_dim()), self.dtype, &self.device)?;
            let ids_keep = index_tensor(&ids_keep, &self.device)?;
            let visible = self
                .patch_embed
                .forward(&kept_patches, kernels)?
                .add(&positions.encoder_patches.index_select(&ids_keep, 0)?)?;
            let mut sequences = Vec::with_capacity(2 * count);
            for item in 0..count {
                sequences.push(self.cls_with_position.clone());
                sequences.push(visible.narrow(0, item * len_keep, len_keep)?);
            }
            Tensor::cat(&sequences, 0)?
        };

        let mut encoder_attentions = Vec::new();
        for layer in &self.encoder_layers {
            let (next, attention) = layer.forward(&hidden, count, options.attentions, kernels)?;
            hidden = next;
            encoder_attentions.push(attention);
        }
        let last_hidden_state = self.encoder_norm.forward(&hidden, kernels)?;

        // Decoder: visible tokens, then mask tokens, unshuffled back to spatial order, CLS in front.
        let embedded = self.decoder_embed.forward(&last_hidden_state, kernels)?;
        let num_masked = num_patches - len_keep;
        let mask_tokens = (num_masked > 0).then(|| self.mask_token.broadcast_as((num_masked, dd))).transpose()?;
        let mut sequences = Vec::with_capacity(count);
        for (item, ids_restore) in ids_restore.iter().enumerate() {
            let item_tokens = embedded.narrow(0, item * (1 + len_keep), 1 + len_keep)?;
            let visible_tokens = item_tokens.narrow(0, 1, len_keep)?;
            let tokens_in_shuffled_order = match &mask_tokens {
                None => visible_tokens,
                Some(mask_tokens) => Tensor::cat(&[&visible_tokens, mask_tokens], 0)?,
            };
            let spatial_tokens = tokens_in_shuffled_order.index_select(ids_restore, 0)?;
            sequences.push(Tensor::cat(&[&item_tokens.narrow(0, 0, 1)?, &spatial_tokens], 0)?.add(&positions.decoder)?);
        }
        let mut hidden = Tensor::cat(&sequences, 0)?;
        let mut decoder_attentions = Vec::new();
        for layer in &self.decoder_layers {
            let (next, attention) = layer.forward(&hidden, count, options.attentions, kernels)?;
            hidden = next;
            decoder_attentions.push(attention);
        }
        let predictions = self.decoder_pred.forward(&self.decoder_norm.forward(&hidden, kernels)?, kernels)?;

        let layer_maps = |per_layer: &[Vec<Tensor>], item: usize| -> Result<Vec<Tensor>> {
            per_layer.iter().filter_map(|maps| maps.get(item)).map(|map| batched(map.clone())).collect()
        };
        let mut outputs = Vec::with_capacity(count);
        for (item, (pixel_values, pixel_host, masking)) in inputs.into_iter().enumerate() {
            let logits = predictions.narrow(0, item * (1 + num_patches) + 1, num_patches)?.to_dtype(DType::F32)?;
            // The one download per item: the loss and the reconstruction are computed on the host.
            let logits_host: Vec<f32> = logits.flatten_all()?.to_vec1()?;
            let mut loss_target = geometry.patchify(&pixel_host);
            if config.norm_pix_loss {
                patches::normalize_rows(&mut loss_target, geometry.patch_dim());
            }
            let patch_loss = patches::patch_mse(&logits_host, &loss_target, geometry.patch_dim());
            outputs.push(MaeOutput {
                grid,
                patch_size: p,
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

    fn make_position_tables(&self, (rows, cols): (usize, usize)) -> Result<PositionTables> {
        let config = &self.config;
        let (d, dd, side) = (config.hidden_size, config.decoder_hidden_size, config.grid_size());
        let (configured, patches) = (config.num_patches(), rows * cols);
        // HF skips the encoder interpolation only for a square input with the configured patch count.
        let encoder_patches = if patches == configured && rows == cols {
            self.position_embeddings[d..].to_vec()
        } else {
            bicubic_resize(&self.position_embeddings[d..], side, side, d, rows, cols)
        };
        // HF's decoder quirk: a 1-D bicubic along the flattened patch sequence (identity at the same length).
        let decoder = if patches == configured {
            self.decoder_position_embeddings.clone()
        } else {
            let mut table = self.decoder_position_embeddings[..dd].to_vec();
            table.extend(bicubic_resize(&self.decoder_position_embeddings[dd..], 1, configured, dd, 1, patches));
            table
        };
        Ok(PositionTables {
            grid: (rows, cols),
            encoder_patches: upload(encoder_patches, (patches, d), self.dtype, &self.device)?,
            decoder: upload(decoder, (patches + 1, dd), self.dtype, &self.device)?,
        })
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

/// Host values to a tensor on `device` in `dtype`, converted on the host (half the bytes cross for f16/bf16).
fn upload(values: Vec<f32>, shape: (usize, usize), dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
}

fn index_tensor(indices: &[usize], device: &Device) -> Result<Tensor> {
    let values: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
    Ok(Tensor::from_vec(values, indices.len(), device)?)
}
