//! Command-line interface: `mae-explorer [--model M] [IMAGE]` opens the window; subcommands work headless.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use mae_model::{ComputeDtype, DeviceChoice, KernelChoice, ModelLocation, SizeRule};

use crate::jobs::animation::{DEFAULT_FPS, check_fps};
use crate::jobs::evaluate::DEFAULT_BATCH;
use crate::jobs::lists::{ColumnList, RatioFrames, Ratios, SeedFrames, Seeds, comma_items, parse_seed};
use crate::jobs::masks::MaskList;
use crate::render::Colormap;
use crate::render::panels::MaskedStyle;

/// The default model: the base ViTMAE checkpoint from the Hugging Face hub.
pub const DEFAULT_MODEL: &str = "facebook/vit-mae-base";

// The help of `--model`, `--device` and `--dtype`, written once for the commands and the window (which appends its
// own default: the last one used).
macro_rules! model_help {
    () => {
        "Hub id (owner/name[@revision]), model folder, weights file (.safetensors/.bin/.pth), or `demo` (the small \
         model built in; a folder named demo is `./demo`)"
    };
}
macro_rules! device_help {
    () => {
        "Where the model runs: auto is the GPU when this build has one, else the CPU (saying why)"
    };
}
macro_rules! dtype_help {
    () => {
        "Compute dtype: f16 and bf16 only on a GPU"
    };
}

/// `--model`, as every command takes it.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    #[arg(long = "model", id = "model", value_name = "DIR|FILE|HUB_ID|demo", help = model_help!())]
    pub location: String,
}

/// `--size`, as the window and every command that reads pictures take it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Args)]
pub struct SizeArgs {
    /// The size pictures are fed to the model at: model (its preprocessor's size, e.g. 224x224: every picture
    /// squashed to it), native (the picture's own shape, scaled so the longer side is at most 1024 px, each side
    /// floored to a multiple of the patch size) or WIDTHxHEIGHT (multiples of the patch size); other sizes run as
    /// transformers' interpolate_pos_encoding=True
    #[arg(long, value_name = "model|native|WxH", default_value = "model", allow_hyphen_values = true, value_parser = parse_size)]
    pub size: SizeRule,
}

fn parse_size(text: &str) -> Result<SizeRule, String> {
    text.parse()
}

/// Where and how the model computes: the same options, values and defaults in every command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Args)]
pub struct EngineArgs {
    #[arg(long, value_enum, ignore_case = true, default_value_t, help = device_help!())]
    pub device: DeviceChoice,
    #[arg(long, value_enum, ignore_case = true, default_value_t, help = dtype_help!())]
    pub dtype: ComputeDtype,
    /// Layer kernels: fused (the device's fused kernels where it has them) or candle (candle's composed ops, the
    /// reference the fused kernels are checked and timed against)
    #[arg(long, value_enum, ignore_case = true, default_value_t)]
    pub kernels: KernelChoice,
}

#[derive(Debug, Parser)]
#[command(
    name = "mae-explorer",
    version,
    about = "Watch a ViTMAE masked autoencoder take an image apart and put it back together",
    // Every command lays out its help alike (clap would pick per command), so shared options read the same in each.
    next_line_help = true
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
    #[arg(
        long,
        value_name = "DIR|FILE|HUB_ID|demo",
        help = concat!(model_help!(), " [default: the last model used, else facebook/vit-mae-base]")
    )]
    pub model: Option<String>,
    #[arg(long, value_enum, ignore_case = true, help = concat!(device_help!(), " [default: the last one used, else auto]"))]
    pub device: Option<DeviceChoice>,
    #[arg(long, value_enum, ignore_case = true, help = concat!(dtype_help!(), " [default: the last one used, else f32]"))]
    pub dtype: Option<ComputeDtype>,
    /// The size pictures are fed to the model at: model, native or WIDTHxHEIGHT, as the commands' --size
    /// [default: the last one used, else model]
    #[arg(long, value_name = "model|native|WxH", allow_hyphen_values = true, value_parser = parse_size)]
    pub size: Option<SizeRule>,
    /// Mask ratio to start with [default: the last one used, else 0.75]
    #[arg(long, allow_negative_numbers = true)]
    pub mask_ratio: Option<f64>,
    /// Seed of the mask to start with (torch.manual_seed value) [default: the last one used, else 2]
    #[arg(long, allow_negative_numbers = true, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Up to three models (B, C, D; comma-separated, each in the forms --model takes) to compare the first with,
    /// side by side on the same mask [default: those compared last time, if the comparison was left open]
    #[arg(long, value_name = "M,M,...")]
    pub compare: Option<ModelList>,
    /// Evaluate every image of this folder in the Dataset panel once the model is ready (with --screenshot, the
    /// picture waits until all are measured)
    #[arg(long, value_name = "FOLDER")]
    pub evaluate: Option<PathBuf>,
    /// Image to open [default: the built-in sample photo]
    #[arg(value_name = "IMAGE")]
    pub image: Option<PathBuf>,
    /// Save a picture of the whole window once the first reconstruction is on screen, print the time of its
    /// forward pass as `forward_ms=<x>` (of both models' passes with --compare), then exit.
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
    /// With --screenshot: first move the mask ratio this many times as a slow drag does (+0.01 each, -0.01 past
    /// 0.95, each picture awaited), then print the medians as `warm_forward_ms=` and `latency_ms=` (from a move to
    /// its picture on screen)
    #[arg(long, value_name = "N", default_value_t = 0, requires = "screenshot")]
    pub ratio_steps: usize,
    /// With --screenshot: wait until every distinct mask of the slider is cached (the sweep), then drag the slider
    /// across this many steps (+0.01 each, -0.01 past 0.95, held, each picture awaited) and let go; print
    /// `sweep_fill_ms=`, `sweep_forwards=`, `sweep_cache_bytes=` (per model), `scrub_frame_ms=` (median UI-thread
    /// time per frame), `scrub_step_ms=` (median from a move to its picture) and `scrub_forwards=`
    #[arg(long, value_name = "N", default_value_t = 0, requires = "screenshot")]
    pub scrub: usize,
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
    Compare,
    Dataset,
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
    /// Write an animation of one image's grid, a frame per mask ratio or per seed, as a GIF or an APNG (.png).
    Animate(AnimateArgs),
    /// Mean masked loss of one image at a range of mask ratios (same seed), written as CSV.
    LossCurve(LossCurveArgs),
    /// Per-head attention statistics (mean attention distance, entropy, CLS share) as CSV, and the head gallery.
    Heads(HeadsArgs),
    /// Evaluate a folder (or a list) of images: losses, PSNR and SSIM per image and seed, written as CSV row by
    /// row (resumable, shardable), with a summary at the end.
    Eval(EvalArgs),
    /// Run the same images and masks through several models: one CSV row per image × ratio × seed × model, each
    /// model's means and how many cases each wins.
    Compare(CompareArgs),
}

/// The input of one forward pass, as `dump` and `heads` take it.
#[derive(Debug, Clone, Args)]
pub struct ForwardInputArgs {
    /// Image to preprocess as the model's preprocessor_config.json says (--images is the same option).
    #[arg(long, alias = "images", conflicts_with = "pixel_values", required_unless_present = "pixel_values")]
    pub image: Option<PathBuf>,
    /// Already-preprocessed input, a float .npy of shape [1, 3, H, W].
    #[arg(long)]
    pub pixel_values: Option<PathBuf>,
    /// The mask: random (HF's, after torch.manual_seed), block (BEiT's block-wise, after Python's random.seed),
    /// grid (one patch of every 2×2 kept: 75%), centre (a centred hole), or a picture file whose white areas are
    /// masked (named as a path: `./grid` is a file, `grid` the strategy).
    #[arg(long, value_name = "random|block|grid|centre|FILE", default_value = "random", conflicts_with = "noise")]
    pub mask: String,
    /// Masking noise, a float .npy of shape [1, L] (HF's `noise` argument).
    #[arg(long, conflicts_with = "seed")]
    pub noise: Option<PathBuf>,
    /// Seed of the mask (default 0): `torch.manual_seed(SEED); torch.rand(1, L)` for random, `random.seed(SEED)`
    /// for block, the kept corner of each 2×2 for grid.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Fraction of patches to mask (default: the config's mask_ratio).
    #[arg(long, allow_negative_numbers = true)]
    pub mask_ratio: Option<f64>,
    #[command(flatten)]
    pub size: SizeArgs,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub input: ForwardInputArgs,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Output .safetensors file.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct HeadsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
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
    /// Colormap of the gallery.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Colormap::Inferno)]
    pub colormap: Colormap,
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
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
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
    /// The mask: random (HF's, after torch.manual_seed), block (BEiT's block-wise, after Python's random.seed),
    /// grid (one patch of every 2×2 kept: 75%), centre (a centred hole), or a picture file whose white areas are
    /// masked, drawn with seed 0 (named as a path: `./grid` is a file, `grid` the strategy).
    #[arg(long, value_name = "random|block|grid|centre|FILE", default_value = "random")]
    pub mask: String,
    /// Also time the Heads panel's work on each output: every head's statistics (both stacks) and the head
    /// gallery of each stack, printed as heads_ms.
    #[arg(long)]
    pub heads: bool,
    /// Time the forward pass without attention probabilities (as PyTorch's sdpa runs it) instead of with them.
    #[arg(long, conflicts_with = "heads")]
    pub no_attentions: bool,
    /// Instead of the forward pass, time each distinct linear product of one (at --mask-ratio and --batch; bias
    /// included, as F.linear; best of 10 after 3 warm-ups, in a second pass over the list), one line each:
    /// `shape=MxNxK gflops=<x> what=<where>`
    /// (`tools/bench_torch.py --shapes` prints torch's the same way)
    #[arg(long, conflicts_with = "heads")]
    pub shapes: bool,
    /// Images per forward pass: a batched forward of N different images (image i masked with seed i), printed as
    /// images_per_s as well as the time per pass.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_batch, conflicts_with = "heads")]
    pub batch: usize,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub model: ModelChoiceArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub size: SizeArgs,
    /// Images, or folders whose images all become rows (repeatable; --images is the same option).
    #[arg(long, alias = "images", value_name = "PATH", required = true, num_args = 1..)]
    pub image: Vec<PathBuf>,
    /// Comma-separated mask ratios in [0, 1]; each makes rows.
    #[arg(long, value_name = "R,R,...", default_value = "0.5,0.75,0.9", allow_hyphen_values = true)]
    pub mask_ratios: Ratios,
    /// Comma-separated seeds of the masks; each makes rows.
    #[arg(long, value_name = "S,S,...", default_value = "0,1,2", allow_hyphen_values = true)]
    pub seeds: Seeds,
    /// Comma-separated masks; each makes rows: random, block, grid, centre or a picture file (white = masked),
    /// each optionally with its own ratio, which replaces --mask-ratios for it: `random:0.75,block:0.5,grid` draws
    /// the MAE paper's Figure 6. A mask the ratio does not change (grid, picture) takes the first ratio only, one
    /// the seed does not change (centre, picture) the first seed only, so no row repeats another.
    #[arg(long = "masks", alias = "mask", value_name = "M[:R],...", default_value = "random")]
    pub masks: MaskList,
    /// Also write one CSV row per grid row: image, mask, ratio, seed, masked patches, losses, PSNR and SSIM.
    #[arg(long, value_name = "CSV")]
    pub metrics_csv: Option<PathBuf>,
    #[command(flatten)]
    pub look: GridLookArgs,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Output picture; the extension picks the format (.png, .jpg/.jpeg, .webp).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// How a grid looks, as `export` and `animate` take it: its columns, heatmap colours, masked patches and tile size.
#[derive(Debug, Clone, Args)]
pub struct GridLookArgs {
    /// Comma-separated columns: original, mask, masked, reconstruction, pasted, loss,
    /// attention[:encoder|decoder][:L<layer>][:mean|max|min|h<head>][:rollout][:discard=<ratio>], rollout[:...].
    #[arg(long, value_name = "C,C,...", default_value = "original,masked,reconstruction,pasted")]
    pub columns: ColumnList,
    /// Colormap of loss and attention heatmaps.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Colormap::Viridis)]
    pub colormap: Colormap,
    /// How masked patches look in the "masked" column.
    #[arg(long, value_enum, ignore_case = true, default_value_t = MaskedStyle::MeanGrey)]
    pub masked_style: MaskedStyle,
    /// Side of each tile in pixels (model-resolution pictures are scaled with nearest-neighbour).
    #[arg(long, default_value_t = 224)]
    pub tile_size: u32,
}

#[derive(Debug, Args)]
pub struct AnimateArgs {
    #[command(flatten)]
    pub model: ModelChoiceArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub size: SizeArgs,
    /// The image (one file; --images is the same option).
    #[arg(long, alias = "images", value_name = "FILE")]
    pub image: PathBuf,
    /// Mask ratios in [0, 1], comma-separated, or FROM:TO:STEP (both ends included, e.g. 0.1:0.9:0.05); several
    /// make one frame each (then --seeds takes one seed).
    #[arg(long, value_name = "R,R,...|FROM:TO:STEP", default_value = "0.75", allow_hyphen_values = true)]
    pub mask_ratios: RatioFrames,
    /// Seeds of the masks, comma-separated, or A-B (both included, e.g. 0-9); several make one frame each (then
    /// --mask-ratios takes one ratio).
    #[arg(long, value_name = "S,S,...|A-B", default_value = "0", allow_hyphen_values = true)]
    pub seeds: SeedFrames,
    /// Comma-separated masks, each a row of every frame: random, block, grid, centre or a picture file (white =
    /// masked), each optionally with its own ratio (then the seeds must vary). Every mask must change with the list
    /// that varies: grid and picture masks ignore the ratio, centre and picture masks the seed.
    #[arg(long = "masks", alias = "mask", value_name = "M[:R],...", default_value = "random")]
    pub masks: MaskList,
    #[command(flatten)]
    pub look: GridLookArgs,
    /// Frames per second, 1 to 50 (a GIF stores each frame's delay in whole centiseconds: round(100/fps)).
    #[arg(long, default_value_t = DEFAULT_FPS, value_parser = parse_fps)]
    pub fps: u32,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Output animation; the extension picks the format: .gif (a palette of 256 colours per frame) or .png
    /// (APNG, lossless).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `--fps`: a whole number of frames per second in the range animations take.
fn parse_fps(text: &str) -> Result<u32, String> {
    let fps = text.trim().parse::<u32>().map_err(|_| format!("\"{text}\" is not a frame rate (a whole number)"))?;
    check_fps(fps)?;
    Ok(fps)
}

/// `--model M` or `--models A,B,...`: one model, or several compared.
#[derive(Debug, Clone, Args)]
pub struct ModelChoiceArgs {
    #[arg(
        long = "model",
        id = "model",
        value_name = "DIR|FILE|HUB_ID|demo",
        help = model_help!(),
        required_unless_present = "models",
        conflicts_with = "models"
    )]
    pub location: Option<String>,
    /// Several models, comma-separated (each as --model takes it), each loaded once: loss-curve gives each its own
    /// column, export and animate repeat the columns once per model (labelled with its name).
    #[arg(long, value_name = "M,M,...")]
    pub models: Option<ModelList>,
}

impl ModelChoiceArgs {
    /// The models named, in order: the one `--model`, or each of `--models` once.
    pub fn names(&self) -> Result<Vec<String>> {
        match (&self.location, &self.models) {
            (Some(model), _) => Ok(vec![model.clone()]),
            (None, Some(list)) => Ok(list.0.clone()),
            (None, None) => bail!("give the model with --model, or several with --models"),
        }
    }
}

#[derive(Debug, Args)]
pub struct LossCurveArgs {
    #[command(flatten)]
    pub model: ModelChoiceArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub size: SizeArgs,
    /// The image (--images is the same option).
    #[arg(long, alias = "images")]
    pub image: PathBuf,
    /// Seed of the masks; with random masks every ratio masks a prefix of the same noise order, other strategies
    /// are drawn afresh at each ratio with this seed.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = parse_seed)]
    pub seed: u64,
    /// The mask strategy: random, block or centre (grid masks and pictures do not change with the ratio).
    #[arg(long, value_name = "random|block|centre", default_value = "random")]
    pub mask: String,
    /// Comma-separated mask ratios in [0, 1] [default: 0.05, 0.10, ..., 0.95].
    #[arg(long, value_name = "R,R,...", allow_hyphen_values = true)]
    pub mask_ratios: Option<Ratios>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Output .csv file (columns mask_ratio, masked_loss; with --models, mask_ratio and one loss column per model).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub size: SizeArgs,
    /// A folder of images (taken in sorted path order), a text file naming one image path a line (relative to the
    /// current folder; blank lines and lines starting with # skipped), or one image (--image is the same option).
    #[arg(long, alias = "image", value_name = "DIR|LIST.txt")]
    pub images: PathBuf,
    /// Also take the images in the folder's subfolders (hidden ones and links to folders are not entered).
    #[arg(long)]
    pub recursive: bool,
    /// Fraction of patches to mask.
    #[arg(long, default_value_t = 0.75, allow_negative_numbers = true)]
    pub mask_ratio: f64,
    /// Comma-separated seeds of the masks: one row per image and seed (`torch.manual_seed(SEED)` before the
    /// image's own forward pass, so every image gets the same mask at one seed).
    #[arg(long, value_name = "S,S,...", default_value = "0", allow_hyphen_values = true)]
    pub seeds: Seeds,
    /// The mask: random (HF's, after torch.manual_seed), block (BEiT's block-wise, after Python's random.seed),
    /// grid (one patch of every 2×2 kept: 75%), centre (a centred hole), or a picture file whose white areas are
    /// masked (named as a path: `./grid` is a file, `grid` the strategy).
    #[arg(long, value_name = "random|block|grid|centre|FILE", default_value = "random")]
    pub mask: String,
    /// Forward passes run together as one batch (each image's values are what it gives alone; larger batches
    /// use the CPU's matrix units better, and hold more images in memory).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH, value_parser = parse_batch)]
    pub batch: usize,
    /// Take only every N-th image from the K-th (counting from 0) in sorted path order, so N machines split a data
    /// set; their CSVs concatenated (headers after the first dropped) hold the rows one run would write.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Start over when the output exists.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Continue an output a stopped run left: its complete rows (by path and seed) are kept, a half-written last
    /// line dropped, and the rest computed. Refused when its settings file records other settings.
    #[arg(long)]
    pub resume: bool,
    /// Output .csv file (path,width,height,seed,masked_loss,visible_loss,psnr_db,psnr_masked_db,ssim,error,
    /// masked_fraction), with the settings beside it in <out>.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// A batch size from 1 to 1024 (larger gains nothing on a CPU and only holds more images).
fn parse_batch(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(batch @ 1..=1024) => Ok(batch),
        _ => Err(format!("\"{text}\" is not a batch size: give a whole number from 1 to 1024")),
    }
}

/// "K/N" → (K, N) with N ≥ 1 and K < N.
fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let invalid = || format!("\"{text}\" is not a shard like 0/4 (K/N: the K-th of N parts, K from 0 to N − 1)");
    let (part, parts) = text.split_once('/').ok_or_else(invalid)?;
    let number = |value: &str| value.trim().parse::<usize>().map_err(|_| invalid());
    let (part, parts) = (number(part)?, number(parts)?);
    if parts == 0 || part >= parts {
        return Err(invalid());
    }
    Ok((part, parts))
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The models, comma-separated, each as --model takes it (one works too); each is loaded once and named in the
    /// rows as given.
    #[arg(long, value_name = "M,M,...", required = true)]
    pub models: ModelList,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub size: SizeArgs,
    /// Images, or folders whose images all make rows (repeatable; --images is the same option); rows name an image
    /// by its file name.
    #[arg(long, alias = "images", value_name = "PATH", required = true, num_args = 1..)]
    pub image: Vec<PathBuf>,
    /// Comma-separated mask ratios in [0, 1]; each makes rows.
    #[arg(long, value_name = "R,R,...", default_value = "0.75", allow_hyphen_values = true)]
    pub mask_ratios: Ratios,
    /// Comma-separated seeds of the masks; each makes rows.
    #[arg(long, value_name = "S,S,...", default_value = "0", allow_hyphen_values = true)]
    pub seeds: Seeds,
    /// Comma-separated masks, as export's --masks (--mask is the same option): random, block, grid, centre or a
    /// picture file (white = masked), each optionally with its own ratio (`random:0.75,block:0.5`).
    #[arg(long = "masks", alias = "mask", value_name = "M[:R],...", default_value = "random")]
    pub masks: MaskList,
    /// Forward passes run together as one batch (each image's values are what it gives alone; larger batches
    /// use the CPU's matrix units better, and hold more images in memory).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH, value_parser = parse_batch)]
    pub batch: usize,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Output .csv file (image,model,mask,mask_ratio,seed,masked_loss,visible_loss,psnr_db,psnr_masked_db,ssim,
    /// masked_fraction).
    #[arg(long)]
    pub out: PathBuf,
}

/// `--models A,B,...`: each model as `--model` takes it, at least one, none twice (each is loaded once). Twice means
/// the same place once resolved: `x` and `x/`, or a folder and a link to it, are one model.
pub fn parse_model_list(text: &str) -> Result<Vec<String>> {
    let mut models: Vec<(String, ModelLocation)> = Vec::new();
    for model in comma_items(text).map_err(|problem| anyhow!(problem))? {
        // Parsed now, so a malformed hub id is refused before any model loads.
        let location = model.parse::<ModelLocation>().with_context(|| format!("--models: {model}"))?;
        if let Some((seen, _)) = models.iter().find(|(_, seen)| same_model(seen, &location)) {
            let again = if seen == model { String::new() } else { format!(" (as {seen} and {model})") };
            bail!("the list names one model twice{again}: {model} (each model is loaded once)");
        }
        models.push((model.to_string(), location));
    }
    if models.is_empty() {
        bail!("the list of models is empty (give models separated by commas)");
    }
    Ok(models.into_iter().map(|(model, _)| model).collect())
}

/// Whether two model arguments name the same model once resolved (see [`same_model`]); one that does not parse
/// names none.
pub fn same_model_argument(a: &str, b: &str) -> bool {
    match (a.parse::<ModelLocation>(), b.parse::<ModelLocation>()) {
        (Ok(a), Ok(b)) => same_model(&a, &b),
        _ => false,
    }
}

/// Whether two locations name the same model: paths compared once resolved (a path that does not exist by its
/// components, where `x` and `x/` are equal), everything else as parsed.
fn same_model(a: &ModelLocation, b: &ModelLocation) -> bool {
    let resolved = |path: &std::path::Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match (a, b) {
        (ModelLocation::Folder(a) | ModelLocation::File(a), ModelLocation::Folder(b) | ModelLocation::File(b)) => {
            resolved(a) == resolved(b)
        }
        _ => a == b,
    }
}

/// `--models` as clap hands it to a command: each model as given, checked as [`parse_model_list`] checks them.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelList(pub Vec<String>);

impl std::str::FromStr for ModelList {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        parse_model_list(text).map(ModelList).map_err(|error| format!("{error:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_lists_name_each_model_once() {
        assert_eq!(parse_model_list(" a/b , ./c,").unwrap(), ["a/b", "./c"]);
        assert!(parse_model_list("a/b,a/b").unwrap_err().to_string().contains("twice"));
        assert!(parse_model_list(" , ").unwrap_err().to_string().contains("empty"));
        assert!(parse_model_list("a/b,,./c").unwrap_err().to_string().contains("two commas in a row"));
        // One folder however it is spelled.
        let folder = tempfile::tempdir().unwrap();
        let (plain, slash) = (folder.path().display().to_string(), format!("{}/", folder.path().display()));
        let error = parse_model_list(&format!("demo,{plain},{slash}")).unwrap_err().to_string();
        assert!(error.contains("twice") && error.contains(&slash), "{error}");
        assert!(parse_model_list("./no-such-x,./no-such-x/").unwrap_err().to_string().contains("twice"));
    }

    fn parse(arguments: &[&str]) -> Command {
        let arguments = ["mae-explorer"].iter().chain(arguments);
        Cli::try_parse_from(arguments).unwrap().command.expect("a subcommand")
    }

    #[test]
    fn commands_default_to_the_engine_defaults_and_accept_the_old_spellings() {
        let dump = ["dump", "--model", "demo", "--image", "cat.png", "--out", "out.safetensors"];
        let Command::Dump(args) = parse(&dump) else { panic!("not dump") };
        assert_eq!(args.engine, EngineArgs::default());
        assert_eq!(args.engine.device, DeviceChoice::Auto);
        assert_eq!((args.engine.dtype, args.engine.kernels), (ComputeDtype::F32, KernelChoice::Fused));
        assert_eq!(args.model.location, "demo");
        let export = [
            "export",
            "--model",
            "demo",
            "--image",
            "cat.png",
            "--out",
            "grid.png",
            "--device",
            "GPU",
            "--dtype",
            "half",
            "--kernels",
            "Candle",
            "--colormap",
            "Turbo",
            "--masked-style",
            "mean-gray",
        ];
        let Command::Export(args) = parse(&export) else { panic!("not export") };
        let engine = EngineArgs { device: DeviceChoice::Cuda, dtype: ComputeDtype::F16, kernels: KernelChoice::Candle };
        assert_eq!(args.engine, engine);
        assert_eq!((args.look.colormap, args.look.masked_style), (Colormap::Turbo, MaskedStyle::MeanGrey));
        let Command::Heads(args) = parse(&["heads", "--model", "demo", "--image", "cat.png", "--out", "h.csv"]) else {
            panic!("not heads")
        };
        assert_eq!(args.colormap, Colormap::Inferno);
        let window = Cli::try_parse_from(["mae-explorer", "--device", "cpu", "--dtype", "bfloat16"]).unwrap().window;
        assert_eq!((window.device, window.dtype), (Some(DeviceChoice::Cpu), Some(ComputeDtype::Bf16)));
        assert_eq!(Cli::try_parse_from(["mae-explorer"]).unwrap().window.device, None, "the window remembers");
    }
}
