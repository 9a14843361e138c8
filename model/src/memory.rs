//! The one memory budget that every allocation an input can size is checked against, before it is made.
//!
//! Rust aborts the whole process when an allocation fails, so a forged size (a preprocessor asking for a
//! 100 000-pixel-wide picture, a model grid whose attention maps need tens of GB, a checkpoint declaring huge
//! tensors) would kill the CLI and the window alike. Each such allocation is estimated from the declared sizes first
//! and refused with a sentence saying how much it needs and how much there is.

use std::path::Path;

/// Used where the operating system does not tell us (not Linux): a laptop-sized amount.
const FALLBACK_BUDGET: u64 = 8 << 30;

/// Bytes this process may still allocate: the memory the kernel reports as available (`MemAvailable`), lowered to
/// what is left under the cgroup's limit when the process runs in a container, and under the address-space limit
/// (`ulimit -v`) when one is set.
pub fn budget() -> u64 {
    let available = meminfo_bytes("MemAvailable").unwrap_or(FALLBACK_BUDGET);
    [cgroup_headroom(), address_space_headroom()].into_iter().flatten().fold(available, u64::min)
}

/// `Ok` when `needed` bytes fit in [`budget`]; otherwise a sentence naming `what`, the need and the budget.
pub fn check_fits(what: &str, needed: u64) -> Result<(), String> {
    let budget = budget();
    if needed <= budget {
        return Ok(());
    }
    Err(format!(
        "{what} would need about {} of memory, more than the {} available",
        format_bytes(needed),
        format_bytes(budget)
    ))
}

/// Memory one forward pass needs when the encoder sees all `patches` (mask ratio 0, the worst case) and the
/// attention maps of every layer are kept, as the window and `dump` keep them. The terms follow `model.rs`:
/// every layer's attention probabilities (`heads·n²` floats, kept, and copied once more when written out or
/// drawn), plus the largest single layer's working set (q/k/v, residuals and MLP activations, scores and
/// probabilities), plus the pixel-sized host buffers (input, loss target, reconstruction).
pub fn forward_pass_bytes(config: &crate::MaeConfig, patches: u64) -> u64 {
    batch_pass_bytes(config, patches, 1, true)
}

/// [`forward_pass_bytes`] for a batch of `items` inputs run together: every item's share (its kept attention
/// maps, when `attentions`, and its pixel buffers), and the largest layer's working set for all of them at once.
pub fn batch_pass_bytes(config: &crate::MaeConfig, patches: u64, items: u64, attentions: bool) -> u64 {
    // u128 with saturation: a forged grid must give "too much", never an overflow.
    const FLOAT: u128 = 4;
    let items = u128::from(items);
    let tokens = u128::from(patches) + 1;
    let token_pairs = tokens.saturating_mul(tokens);
    let stack = |layers: usize, heads: usize, width: usize, mlp: usize| -> (u128, u128) {
        let maps = (layers as u128 * heads as u128).saturating_mul(token_pairs).saturating_mul(FLOAT);
        let activations = tokens.saturating_mul(6 * width as u128 + 2 * mlp as u128).saturating_mul(FLOAT);
        let scores = (2 * heads as u128).saturating_mul(token_pairs).saturating_mul(FLOAT);
        (if attentions { maps } else { 0 }, activations.saturating_add(scores))
    };
    let (encoder_maps, encoder_layer) =
        stack(config.num_hidden_layers, config.num_attention_heads, config.hidden_size, config.intermediate_size);
    let (decoder_maps, decoder_layer) = stack(
        config.decoder_num_hidden_layers,
        config.decoder_num_attention_heads,
        config.decoder_hidden_size,
        config.decoder_intermediate_size,
    );
    let pixels = u128::from(patches).saturating_mul((config.patch_size as u128).pow(2) * config.num_channels as u128);
    let per_item = encoder_maps
        .saturating_add(decoder_maps)
        .saturating_mul(2)
        .saturating_add(encoder_layer.max(decoder_layer))
        .saturating_add(pixels.saturating_mul(4 * FLOAT));
    u64::try_from(per_item.saturating_mul(items)).unwrap_or(u64::MAX)
}

/// Memory a loaded model holds while the window uses it: its parameters at `bytes_per_value` each (the position
/// embeddings included, as HF stores them), plus one forward pass at mask ratio 0 with every attention map kept.
pub fn model_bytes(config: &crate::MaeConfig, bytes_per_value: u64) -> u64 {
    let patches = config.num_patches() as u128;
    let patch_values = (config.patch_size as u128).pow(2) * config.num_channels as u128;
    // One transformer layer: q/k/v and output projections with biases, the MLP, two layer norms.
    let layer = |width: usize, mlp: usize| {
        let (width, mlp) = (width as u128, mlp as u128);
        4 * width * width + 4 * width + 2 * width * mlp + mlp + width + 4 * width
    };
    let (encoder, decoder) = (config.hidden_size as u128, config.decoder_hidden_size as u128);
    // Patch embedding, position table, CLS token; layers; final norm; decoder embedding, mask token, position
    // table; layers; norm; pixel prediction.
    let parameters = (patch_values * encoder + encoder)
        + (patches + 1) * encoder
        + encoder
        + config.num_hidden_layers as u128 * layer(config.hidden_size, config.intermediate_size)
        + 2 * encoder
        + (encoder * decoder + decoder)
        + decoder
        + (patches + 1) * decoder
        + config.decoder_num_hidden_layers as u128
            * layer(config.decoder_hidden_size, config.decoder_intermediate_size)
        + 2 * decoder
        + (decoder * patch_values + patch_values);
    let weights = u64::try_from(parameters.saturating_mul(u128::from(bytes_per_value))).unwrap_or(u64::MAX);
    weights.saturating_add(forward_pass_bytes(config, config.num_patches() as u64))
}

/// "1.5 GB", "340 MB", "12 kB" (decimal units, as file managers show sizes).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} bytes"),
        _ if value < 10.0 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.0} {}", UNITS[unit]),
    }
}

/// A `Name:   1234 kB` line of `/proc/meminfo`, in bytes.
fn meminfo_bytes(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|line| line.split(':').next() == Some(name))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kilobytes.checked_mul(1024)
}

/// Bytes left under this process's cgroup (v2) memory limit, if it has one.
fn cgroup_headroom() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // cgroup v2: a single line "0::/path".
    let relative = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    let folder = Path::new("/sys/fs/cgroup").join(relative.trim_start_matches('/'));
    let read = |file: &str| std::fs::read_to_string(folder.join(file)).ok();
    let limit: u64 = read("memory.max")?.trim().parse().ok()?; // "max" (no limit) does not parse
    let used: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(limit.saturating_sub(used))
}

/// Bytes left under `ulimit -v` (`Max address space` in `/proc/self/limits`), if it is set.
fn address_space_headroom() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max address space"))?;
    // "Max address space   <soft>   <hard>   bytes"; "unlimited" does not parse.
    let soft: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let used_kb: u64 =
        status.lines().find_map(|line| line.strip_prefix("VmSize:"))?.split_whitespace().next()?.parse().ok()?;
    Some(soft.saturating_sub(used_kb.saturating_mul(1024)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(format_bytes(999), "999 bytes");
        assert_eq!(format_bytes(1_500), "1.5 kB");
        assert_eq!(format_bytes(34_500_000_000), "34 GB");
        assert_eq!(format_bytes(u64::MAX), "18447 PB");
    }

    #[test]
    fn the_budget_is_some_memory_and_absurd_needs_are_refused_with_both_figures() {
        // The kernel's own figure, read here independently: the budget is never more, and without a container or
        // `ulimit -v` limit it is that figure (it moves a little between two reads, hence 10%).
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let available_kb: u64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemAvailable:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap();
        let (budget, available) = (budget() as f64, available_kb as f64 * 1024.0);
        assert!(budget > 0.0 && budget <= available * 1.1, "budget {budget}, MemAvailable {available}");
        if cgroup_headroom().is_none() && address_space_headroom().is_none() {
            assert!(budget >= available * 0.9, "budget {budget}, MemAvailable {available}");
        }
        let error = check_fits("the test", u64::MAX).unwrap_err();
        assert!(error.starts_with("the test would need about 18447 PB of memory, more than the "), "{error}");
        assert!(check_fits("nothing", 0).is_ok());
    }

    #[test]
    fn a_model_holds_its_parameters_and_one_forward_pass() {
        // The parameter count against what a checkpoint in the hub's layout actually stores.
        for name in ["tiny-p8", "tiny-p16", "tiny-p4-normpix"] {
            let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models").join(name);
            let config = crate::MaeConfig::from_file(&folder.join("config.json")).unwrap();
            let tensors =
                candle_core::safetensors::load(folder.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
            let stored: u64 = tensors.values().map(|tensor| tensor.elem_count() as u64).sum();
            let forward = forward_pass_bytes(&config, config.num_patches() as u64);
            assert_eq!(model_bytes(&config, 4) - forward, 4 * stored, "{name}");
        }
    }

    #[test]
    fn forward_estimate_grows_with_the_square_of_the_tokens() {
        let config = crate::MaeConfig::default();
        let base = forward_pass_bytes(&config, 196);
        // vit-mae-base at 224×224: 12 + 8 layers of 12/16 heads × 197² floats, kept and copied once: ~100 MB.
        assert!((80_000_000..200_000_000).contains(&base), "{base}");
        let large = forward_pass_bytes(&config, 196 * 16);
        assert!(large > 200 * base, "{large} vs {base}");
        assert_eq!(forward_pass_bytes(&config, u64::MAX), u64::MAX);
    }
}
