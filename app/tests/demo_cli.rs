//! `--model demo` in every command that takes a model: the built-in model runs with the network switched off
//! (`HF_HUB_OFFLINE=1`) and an empty Hugging Face cache, and writes nothing into that cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A scratch HOME with an empty `HF_HOME`, and a command that can only see those.
struct OfflineHome {
    dir: tempfile::TempDir,
}

impl OfflineHome {
    fn new() -> Self {
        let home = Self { dir: tempfile::tempdir().unwrap() };
        std::fs::create_dir_all(home.hf_home()).unwrap();
        home
    }

    fn hf_home(&self) -> PathBuf {
        self.dir.path().join("hf-home")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
            .args(args)
            .env("HOME", self.dir.path())
            .env("HF_HOME", self.hf_home())
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("HF_HUB_CACHE")
            .env_remove("HUGGINGFACE_HUB_CACHE")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("HF_ENDPOINT")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?} failed: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        output
    }

    /// The cache stays as empty as it started: the demo model never goes near the hub code.
    fn assert_cache_untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(self.hf_home()).unwrap().collect();
        assert!(entries.is_empty(), "something was written to HF_HOME: {entries:?}");
    }
}

fn chelsea() -> String {
    repo().join("assets/chelsea.png").to_string_lossy().into_owned()
}

#[test]
fn dump_runs_the_built_in_model_offline_with_an_empty_cache() {
    let home = OfflineHome::new();
    let out = home.path("demo.safetensors");
    let image = chelsea();
    home.run(&["dump", "--model", "demo", "--image", &image, "--seed", "0", "--out", out.to_str().unwrap()]);
    let tensors = candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("assets/demo-model/config.json")).unwrap()).unwrap();
    let (image_size, patch) = (config["image_size"].as_u64().unwrap(), config["patch_size"].as_u64().unwrap());
    let patches = ((image_size / patch) * (image_size / patch)) as usize;
    assert_eq!(tensors["logits"].dims(), [1, patches, (patch * patch * 3) as usize]);
    assert_eq!(tensors["pixel_values"].dims(), [1, 3, image_size as usize, image_size as usize]);
    let loss: f32 = tensors["loss"].to_scalar().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
    // the config's own ratio (0.75) applies when --mask-ratio is absent
    let masked: f32 = tensors["mask"].sum_all().unwrap().to_scalar().unwrap();
    assert_eq!(masked as usize, patches - (patches as f64 * 0.25) as usize);
    home.assert_cache_untouched();
}

#[test]
fn export_loss_curve_heads_and_bench_accept_demo_offline() {
    let home = OfflineHome::new();
    let image = chelsea();

    let grid = home.path("grid.png");
    home.run(&["export", "--model", "demo", "--image", &image, "--device", "cpu", "--out", grid.to_str().unwrap()]);
    let picture = image::open(&grid).unwrap();
    assert!(picture.width() > 0 && picture.height() > 0);

    let csv = home.path("curve.csv");
    home.run(&[
        "loss-curve",
        "--model",
        "demo",
        "--image",
        &image,
        "--mask-ratios",
        "0.25,0.75",
        "--device",
        "cpu",
        "--out",
        csv.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 3, "header + two ratios:\n{text}");
    // The default ratios, each printed at its decimal (0.15, not 0.15000000000000002); `--images` is `--image`.
    let curve = home.path("default-curve.csv");
    home.run(&["loss-curve", "--model", "demo", "--images", &image, "--out", curve.to_str().unwrap()]);
    let ratios: Vec<String> = std::fs::read_to_string(&curve)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().to_string())
        .collect();
    let expected: Vec<String> =
        (1..=19).map(|step| format!("{:.2}", f64::from(step) / 20.0).trim_end_matches('0').to_string()).collect();
    assert_eq!(ratios, expected);

    let heads = home.path("heads.csv");
    home.run(&["heads", "--model", "demo", "--image", &image, "--out", heads.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&heads).unwrap().lines().count() > 1, "no head rows");

    let bench = home.run(&["bench", "--model", "demo", "--runs", "2", "--warmup", "1", "--threads", "1"]);
    let printed = String::from_utf8_lossy(&bench.stdout);
    assert!(printed.contains("model=demo (built in) ") && printed.contains("median_ms="), "bench printed: {printed}");
    // `bench --shapes`: one line per distinct linear product of a forward pass. The demo: 224 px in 16-px patches
    // (L = 196, 768 values a patch), 128 wide in both stacks, MLPs of 512; at ratio 0.75, 49 patches kept, so the
    // encoder sees 50 tokens and the decoder 197 (its 50×128×128 embedding is the encoder's out-projection shape).
    let shapes = home.run(&["bench", "--model", "demo", "--shapes", "--threads", "1"]);
    let printed = String::from_utf8_lossy(&shapes.stdout);
    let found: Vec<(String, f64)> = printed
        .lines()
        .filter_map(|line| {
            let shape = line.split_whitespace().find_map(|word| word.strip_prefix("shape="))?;
            let gflops = line.split_whitespace().find_map(|word| word.strip_prefix("gflops="))?.parse().ok()?;
            Some((shape.to_string(), gflops))
        })
        .collect();
    let expected = [
        "49x128x768",
        "50x384x128",
        "50x128x128",
        "50x512x128",
        "50x128x512",
        "197x384x128",
        "197x128x128",
        "197x512x128",
        "197x128x512",
        "197x768x128",
    ];
    assert_eq!(found.iter().map(|(shape, _)| shape.as_str()).collect::<Vec<_>>(), expected, "{printed}");
    assert!(found.iter().all(|(_, gflops)| *gflops > 0.0 && gflops.is_finite()), "{printed}");
    home.assert_cache_untouched();
}
