//! Command-line interface: `mae-explorer [--model M] [IMAGE]` opens the window; subcommands work headless.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The default model: the base ViTMAE checkpoint from the Hugging Face hub.
pub const DEFAULT_MODEL: &str = "facebook/vit-mae-base";

#[derive(Debug, Parser)]
#[command(
    name = "mae-explorer",
    version,
    about = "Watch a ViTMAE masked autoencoder take an image apart and put it back together"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// Options of the window (no subcommand).
#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    /// Model folder, Hugging Face hub id, or `demo` (the small model built in; a folder named demo is `./demo`)
    /// [default: the last model used, else facebook/vit-mae-base]
    #[arg(long, value_name = "DIR|HUB_ID|demo")]
    pub model: Option<String>,
    /// auto, cpu, cuda or metal [default: the last one used, else auto]
    #[arg(long)]
    pub device: Option<String>,
    /// Compute dtype: f32, or f16/bf16 on a GPU [default: the last one used, else f32]
    #[arg(long)]
    pub dtype: Option<String>,
    /// Mask ratio to start with [default: the last one used, else 0.75]
    #[arg(long, allow_negative_numbers = true)]
    pub mask_ratio: Option<f64>,
    /// Seed of the mask to start with (torch.manual_seed value) [default: the last one used, else 2]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Image to open [default: the built-in sample photo]
    #[arg(value_name = "IMAGE")]
    pub image: Option<PathBuf>,
    /// Save a picture of the whole window once the first reconstruction is on screen, print the time of its
    /// forward pass as `forward_ms=<x>`, then exit.
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
    /// Window size in pixels, e.g. 1920x1080 [default: 1280x800, or the size it had last time]
    #[arg(long, value_name = "WxH", value_parser = parse_window_size)]
    pub window_size: Option<(u32, u32)>,
    /// Bring a panel to the front at start (repeatable).
    #[arg(long, value_enum)]
    pub panel: Vec<WindowPanel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WindowPanel {
    Attention,
    Loss,
    Ensemble,
    Heads,
}

/// "1920x1080" → (1920, 1080), each side 320..=8192.
fn parse_window_size(text: &str) -> Result<(u32, u32), String> {
    let invalid = || format!("\"{text}\" is not a window size like 1280x800");
    let (width, height) = text.split_once(['x', 'X', '×']).ok_or_else(invalid)?;
    let side = |value: &str| value.trim().parse::<u32>().ok().filter(|side| (320..=8192).contains(side));
    Ok((side(width).ok_or_else(invalid)?, side(height).ok_or_else(invalid)?))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one forward pass and write every output tensor to a safetensors file (for parity checks).
    Dump(DumpArgs),
    /// Time the forward pass (attentions kept) and print median/min milliseconds.
    Bench(BenchArgs),
    /// Write a comparison grid (images × mask ratios × seeds by chosen columns) as a PNG, JPEG or WebP.
    Export(ExportArgs),
    /// Mean masked loss of one image at a range of mask ratios (same seed), written as CSV.
    LossCurve(LossCurveArgs),
    /// Per-head attention statistics (mean attention distance, entropy, CLS share) as CSV, and the head gallery.
    Heads(HeadsArgs),
}

/// The input of one forward pass, as `dump` and `heads` take it.
#[derive(Debug, Clone, Args)]
pub struct ForwardInputArgs {
    /// Image to preprocess as the model's preprocessor_config.json says.
    #[arg(long, conflicts_with = "pixel_values", required_unless_present = "pixel_values")]
    pub image: Option<PathBuf>,
    /// Already-preprocessed input, a float .npy of shape [1, 3, H, W].
    #[arg(long)]
    pub pixel_values: Option<PathBuf>,
    /// Masking noise, a float .npy of shape [1, L] (HF's `noise` argument).
    #[arg(long, conflicts_with = "seed")]
    pub noise: Option<PathBuf>,
    /// Draw the noise as `torch.manual_seed(SEED); torch.rand(1, L)` does (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fraction of patches to mask (default: the config's mask_ratio).
    #[arg(long, allow_negative_numbers = true)]
    pub mask_ratio: Option<f64>,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Hub id (owner/name[@revision]), model folder, weights file (.safetensors/.bin/.pth), or `demo` (the small
    /// model built in; a folder named demo is `./demo`).
    #[arg(long, value_name = "DIR|FILE|HUB_ID|demo")]
    pub model: String,
    #[command(flatten)]
    pub input: ForwardInputArgs,
    /// auto, cpu, cuda or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype: f32, or f16/bf16 on a GPU.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Layer kernels: fused (the device's fused kernels where it has them) or candle (candle's composed ops, the
    /// reference the fused kernels are checked against).
    #[arg(long, default_value = "fused")]
    pub kernels: String,
    /// Output .safetensors file.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct HeadsArgs {
    /// Hub id (owner/name[@revision]), model folder, weights file (.safetensors/.bin/.pth), or `demo` (the small
    /// model built in; a folder named demo is `./demo`).
    #[arg(long, value_name = "DIR|FILE|HUB_ID|demo")]
    pub model: String,
    #[command(flatten)]
    pub input: ForwardInputArgs,
    /// Output .csv file (stack,layer,head,mean_distance_px,entropy,cls_share; one row per head).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the head gallery (every head's attention over the image) as a PNG, JPEG or WebP.
    #[arg(long, value_name = "FILE")]
    pub gallery: Option<PathBuf>,
    /// Which stacks: encoder, decoder or both.
    #[arg(long, value_enum, default_value = "both")]
    pub stack: StackChoice,
    /// The gallery's query: cls, or a spatial patch index (row-major from 0).
    #[arg(long, default_value = "cls")]
    pub query: String,
    /// The gallery's colours: one scale for all heads (shared) or one per head (per-head).
    #[arg(long, value_enum, default_value = "shared")]
    pub scale: ScaleChoice,
    /// Colormap of the gallery: viridis, inferno, magma, turbo or cividis.
    #[arg(long, default_value = "inferno")]
    pub colormap: String,
    /// auto, cpu, cuda or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Replace output files that exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StackChoice {
    Encoder,
    Decoder,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleChoice {
    Shared,
    PerHead,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Hub id (owner/name[@revision]), model folder, weights file (.safetensors/.bin/.pth), or `demo` (the small
    /// model built in; a folder named demo is `./demo`).
    #[arg(long, value_name = "DIR|FILE|HUB_ID|demo")]
    pub model: String,
    /// Timed runs after warm-up.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// CPU threads (default: all physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Fraction of patches to mask.
    #[arg(long, default_value_t = 0.75, allow_negative_numbers = true)]
    pub mask_ratio: f64,
    /// auto, cpu, cuda or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype: f32, or f16/bf16 on a GPU.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Also time the Heads panel's work on each output: every head's statistics (both stacks) and the head
    /// gallery of each stack, printed as heads_ms.
    #[arg(long)]
    pub heads: bool,
    /// Layer kernels: fused (the device's fused kernels where it has them) or candle (candle's composed ops).
    #[arg(long, default_value = "fused")]
    pub kernels: String,
    /// Time the forward pass without attention probabilities (as PyTorch's sdpa runs it) instead of with them.
    #[arg(long, conflicts_with = "heads")]
    pub no_attentions: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Model folder, weights file, Hugging Face hub id, or `demo` (the small model built in; a folder named demo
    /// is `./demo`).
    #[arg(long, value_name = "DIR|FILE|HUB_ID|demo")]
    pub model: String,
    /// Images, or folders whose images all become rows (repeatable).
    #[arg(long, value_name = "PATH", required = true, num_args = 1..)]
    pub image: Vec<PathBuf>,
    /// Comma-separated mask ratios in [0, 1]; each makes rows.
    #[arg(long, value_name = "R,R,...", default_value = "0.5,0.75,0.9", allow_hyphen_values = true)]
    pub mask_ratios: String,
    /// Comma-separated seeds (torch.manual_seed values); each makes rows.
    #[arg(long, value_name = "S,S,...", default_value = "0,1,2", allow_hyphen_values = true)]
    pub seeds: String,
    /// Comma-separated columns: original, mask, masked, reconstruction, pasted, loss,
    /// attention[:encoder|decoder][:L<layer>][:mean|max|min|h<head>][:rollout][:discard=<ratio>], rollout[:...].
    #[arg(long, value_name = "C,C,...", default_value = "original,masked,reconstruction,pasted")]
    pub columns: String,
    /// Colormap of loss and attention heatmaps: viridis, inferno, magma, turbo or cividis.
    #[arg(long, default_value = "viridis")]
    pub colormap: String,
    /// How masked patches look in the "masked" column: mean-grey, dimmed or checker.
    #[arg(long, default_value = "mean-grey")]
    pub masked_style: String,
    /// Side of each tile in pixels (model-resolution pictures are scaled with nearest-neighbour).
    #[arg(long, default_value_t = 224)]
    pub tile_size: u32,
    /// auto, cpu, cuda or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Output picture; the extension picks the format (.png, .jpg/.jpeg, .webp).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct LossCurveArgs {
    /// Model folder, weights file, Hugging Face hub id, or `demo` (the small model built in; a folder named demo
    /// is `./demo`).
    #[arg(long, value_name = "DIR|FILE|HUB_ID|demo")]
    pub model: String,
    /// The image.
    #[arg(long)]
    pub image: PathBuf,
    /// Seed of the masks (torch.manual_seed value); every ratio masks a prefix of the same noise order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Comma-separated mask ratios in [0, 1] [default: 0.05, 0.10, ..., 0.95].
    #[arg(long, value_name = "R,R,...", allow_hyphen_values = true)]
    pub mask_ratios: Option<String>,
    /// auto, cpu, cuda or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Output .csv file (columns mask_ratio, masked_loss).
    #[arg(long)]
    pub out: PathBuf,
}
