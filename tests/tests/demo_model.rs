//! The embedded demo model really reconstructs: on the app's sample photo (chelsea.png, held out from its
//! training), its masked loss at ratio 0.75 is clearly below that of a trivial in-painter that fills every masked
//! patch with the mean colour of the visible patches (issue 10's bar, measured in the normalized pixel space the
//! loss uses). The same comparison on more held-out photos is in tools/README.md (tools/train_demo_model.py).

use mae_integration_tests::repo_root;
use mae_model::patches::PatchGrid;
use mae_model::preprocess::load_rgb_image;
use mae_model::source::{LoadOptions, ModelLocation, load_model};
use mae_model::{DEMO_MODEL_NAME, DeviceChoice, ForwardOptions, MaeOutput, MaskSpec, select_device};

/// Issue 10's bar for photos the model never saw, taken as it is (not fitted to the model). The model retrained for
/// issue 20 (colour augmentation, 4800 steps, then 600 with a loss on the visible patches) scores 0.686 here (seeds
/// 0–7; transformers gives 0.685 over seeds 0–9); chelsea is among the hardest photos of its held-out set
/// (rocket.jpg 0.420, grace_hopper.jpg 0.556, a chameleon in leaves 0.658, a plain sky 0.049, sky over green grass
/// 0.178; only pure textures, grass and gravel, are worse at 1.03–1.08; tools/README.md). Earlier models scored
/// 0.732 and 0.727. The forward pass is deterministic, so the test cannot flake; it fails when a retrained or broken
/// model loses to the bar. For scale: a model with its position tables left at zero (a training bug found on the
/// way) scored 1.33 — no better than the mean colour.
const MAX_RATIO_TO_MEAN_COLOUR: f64 = 0.75;
const SEEDS: std::ops::Range<u64> = 0..8;

/// Masked loss of the in-painter that predicts, for every masked patch, the mean colour of the visible patches.
fn mean_colour_loss(output: &MaeOutput) -> f64 {
    let grid = PatchGrid::of(&output.pixel_values, output.patch_size).unwrap();
    let pixels: Vec<f32> = output.pixel_values.flatten_all().unwrap().to_vec1().unwrap();
    let rows = grid.patchify(&pixels);
    let patch_dim = grid.patch_dim();
    let mask = &output.masking.mask;
    let mut colour = [0.0f64; 3];
    let mut visible_pixels = 0usize;
    for (row, _) in rows.chunks_exact(patch_dim).zip(mask).filter(|(_, m)| **m == 0.0) {
        // inside a patch row the channel is the innermost index
        for pixel in row.chunks_exact(3) {
            colour.iter_mut().zip(pixel).for_each(|(sum, v)| *sum += f64::from(*v));
            visible_pixels += 1;
        }
    }
    colour.iter_mut().for_each(|sum| *sum /= visible_pixels as f64);
    let masked_errors: Vec<f64> = rows
        .chunks_exact(patch_dim)
        .zip(mask)
        .filter(|(_, m)| **m == 1.0)
        .map(|(row, _)| {
            let squares: f64 = row.iter().enumerate().map(|(i, v)| (f64::from(*v) - colour[i % 3]).powi(2)).sum();
            squares / patch_dim as f64
        })
        .collect();
    masked_errors.iter().sum::<f64>() / masked_errors.len() as f64
}

#[test]
fn demo_model_beats_a_mean_colour_in_painter_on_a_photo_it_never_saw() {
    let device = select_device(DeviceChoice::Cpu).unwrap();
    let loaded = load_model(&ModelLocation::Demo, &device, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.name, DEMO_MODEL_NAME);
    let image = load_rgb_image(&repo_root().join("assets/chelsea.png")).unwrap();
    let pixel_values = loaded.preprocessor.pixel_values(&image, &device.device).unwrap();

    let (mut model_sum, mut trivial_sum) = (0.0, 0.0);
    for seed in SEEDS {
        let spec = MaskSpec::random(seed, 0.75);
        let output = loaded.model.forward(&pixel_values, &spec, ForwardOptions { attentions: false }).unwrap();
        let masked = output.masking.mask.iter().filter(|m| **m == 1.0).count();
        assert_eq!(masked, output.num_patches() - (output.num_patches() as f64 * 0.25) as usize);
        model_sum += f64::from(output.loss.unwrap());
        trivial_sum += mean_colour_loss(&output);
    }
    let ratio = model_sum / trivial_sum;
    let n = SEEDS.count() as f64;
    eprintln!(
        "demo model on chelsea.png, ratio 0.75, {n} seeds: masked loss {:.4}, mean-colour in-painter {:.4}, ratio {ratio:.3}",
        model_sum / n,
        trivial_sum / n
    );
    assert!(
        ratio <= MAX_RATIO_TO_MEAN_COLOUR,
        "the demo model's masked loss is {ratio:.3}× the mean-colour in-painter's (bound {MAX_RATIO_TO_MEAN_COLOUR})"
    );
}
