//! Properties of the render module that must hold exactly, checked on the committed tiny-p16 fixture model and the
//! bundled sample photo.

use candle_core::{Device, Tensor};
use image::{Rgba, RgbaImage};
use mae_explorer::cli::{EngineArgs, ModelArgs};
use mae_explorer::commands::model_arg::load_model;
use mae_explorer::jobs::ensemble::SeedEnsemble;
use mae_explorer::jobs::loss_curve::LossCurve;
use mae_explorer::render::attention::{
    AttentionSelection, HeadFusion, Query, Stack, TokenMatrix, fuse_heads, overlay, patch_scores, rollout, rollout_row,
    score_range,
};
use mae_explorer::render::colormap::{Colormap, normalize};
use mae_explorer::render::grid::{GAP, GridGeometry, GridRow, GridSpec, compose_grid};
use mae_explorer::render::loss::loss_overlay;
use mae_explorer::render::panels::{MaskedStyle, PanelOptions, render_panels};
use mae_explorer::render::{empty_patch_pixel, patch_at};
use mae_model::preprocess::load_rgb_image;
use mae_model::{DeviceChoice, ForwardOptions, LoadedModel, MaeOutput, MaskSpec, MaskStrategy};

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/models/tiny-p16");
const PHOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/chelsea.png");

fn model() -> LoadedModel {
    load_on_cpu(MODEL)
}

fn load_on_cpu(model: &str) -> LoadedModel {
    let engine = EngineArgs { device: DeviceChoice::Cpu, ..EngineArgs::default() };
    load_model(&ModelArgs { location: model.into() }, &engine).unwrap()
}

fn photo_values(loaded: &LoadedModel) -> Tensor {
    let rgb = load_rgb_image(std::path::Path::new(PHOTO)).unwrap();
    loaded.preprocessor.pixel_values(&rgb, &Device::Cpu).unwrap()
}

fn forward(loaded: &LoadedModel, seed: u64, ratio: f64) -> MaeOutput {
    let spec = MaskSpec::random(seed, ratio);
    loaded.model.forward(&photo_values(loaded), &spec, ForwardOptions { attentions: true }).unwrap()
}

/// Every pixel of `image` with the patch it belongs to.
fn pixels_by_patch(image: &RgbaImage, output: &MaeOutput) -> Vec<(usize, u32, u32, Rgba<u8>)> {
    let (width, height) = image.dimensions();
    image.enumerate_pixels().map(|(x, y, p)| (patch_at(x, y, width, height, output.grid), x, y, *p)).collect()
}

const NORM_PIX_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/models/tiny-p4-normpix");

#[test]
fn pasted_back_equals_the_original_on_every_visible_patch_bit_for_bit() {
    for (loaded, norm_pix) in [(model(), false), (load_on_cpu(NORM_PIX_MODEL), true)] {
        pasted_back_is_exact(&loaded, norm_pix);
    }
}

fn pasted_back_is_exact(loaded: &LoadedModel, norm_pix: bool) {
    let side = loaded.model.config().image_size as u32;
    let patch_pixels = loaded.model.config().patch_size.pow(2);
    for (seed, ratio) in [(2, 0.75), (0, 0.5), (7, 0.25)] {
        let output = forward(loaded, seed, ratio);
        let panels = render_panels(&output, &loaded.preprocessor, &PanelOptions::default()).unwrap();
        // norm_pix_loss reconstructions are de-normalized with the targets' own statistics: flagged.
        assert_eq!(panels.uses_target_statistics, norm_pix);
        assert_eq!(panels.pasted.dimensions(), (side, side));
        let (mut visible, mut masked) = (0, 0);
        for (patch, x, y, pixel) in pixels_by_patch(&panels.pasted, &output) {
            if output.masking.is_masked(patch) {
                assert_eq!(pixel, *panels.reconstruction.get_pixel(x, y));
                masked += 1;
            } else {
                assert_eq!(pixel, *panels.original.get_pixel(x, y), "pixel ({x}, {y}) of visible patch {patch}");
                visible += 1;
            }
        }
        assert_eq!(visible, output.masking.len_keep() * patch_pixels);
        assert_eq!(masked, output.masking.num_masked() * patch_pixels);
        // The reconstruction of this random model is nothing like the photo, so "equal" above is not vacuous.
        assert_ne!(panels.reconstruction, panels.original);
    }
}

#[test]
fn the_original_panel_is_the_denormalized_input() {
    let loaded = model();
    let output = forward(&loaded, 2, 0.75);
    let panels = render_panels(&output, &loaded.preprocessor, &PanelOptions::default()).unwrap();
    // The photo resized by the preprocessor, independently of the render code.
    let resized = loaded.preprocessor.resize(&load_rgb_image(std::path::Path::new(PHOTO)).unwrap()).unwrap();
    for (x, y, pixel) in resized.enumerate_pixels() {
        let shown = panels.original.get_pixel(x, y);
        for channel in 0..3 {
            // Normalize then de-normalize in f32 may move a value by one level at most.
            assert!(shown[channel].abs_diff(pixel[channel]) <= 1, "({x}, {y}): {shown:?} vs {pixel:?}");
        }
        assert_eq!(shown[3], 255);
    }
}

#[test]
fn the_mask_picture_matches_the_mask_tensor() {
    let loaded = model();
    for (seed, ratio) in [(2, 0.75), (3, 0.5), (1, 0.0), (3, 1.0)] {
        let output = forward(&loaded, seed, ratio);
        let panels = render_panels(&output, &loaded.preprocessor, &PanelOptions::default()).unwrap();
        for (patch, _, _, pixel) in pixels_by_patch(&panels.mask, &output) {
            let level = (output.masking.mask[patch] * 255.0) as u8;
            assert_eq!(pixel, Rgba([level, level, level, 255]), "patch {patch}");
        }
    }
}

#[test]
fn masked_patches_are_drawn_in_the_chosen_style() {
    let loaded = model();
    let output = forward(&loaded, 2, 0.75);
    // Normalized 0 de-normalized: the ImageNet mean colour.
    let grey = loaded.preprocessor.denormalize_to_rgb(&[0.0, 0.0, 0.0], 1, 1).get_pixel(0, 0).0;
    for style in MaskedStyle::ALL {
        let panels = render_panels(&output, &loaded.preprocessor, &PanelOptions { masked_style: style }).unwrap();
        for (patch, x, y, pixel) in pixels_by_patch(&panels.masked, &output) {
            let original = *panels.original.get_pixel(x, y);
            if !output.masking.is_masked(patch) {
                assert_eq!(pixel, original);
            } else if style == MaskedStyle::MeanGrey {
                assert_eq!(pixel, Rgba([grey[0], grey[1], grey[2], 255]));
            } else if style == MaskedStyle::Dimmed {
                // 30% of the original brightness, rounded.
                let dimmed = |c: usize| (f32::from(original[c]) * 0.3).round() as u8;
                assert_eq!(pixel, Rgba([dimmed(0), dimmed(1), dimmed(2), 255]), "({x}, {y})");
            } else {
                // A checkerboard of light and dark grey cells, four to a patch side.
                let cell = (output.patch_size / 4) as u32;
                let light = (x / cell + y / cell).is_multiple_of(2);
                let level = if light { 205 } else { 150 };
                assert_eq!(pixel, Rgba([level, level, level, 255]), "({x}, {y})");
            }
        }
    }
}

#[test]
fn encoder_attention_lands_on_the_kept_patches_and_nowhere_masked() {
    let loaded = model();
    let output = forward(&loaded, 2, 0.5);
    let ids_keep = &output.masking.ids_keep;
    let heads = output.encoder_attentions[0].dim(1).unwrap();
    for layer in 0..output.encoder_attentions.len() {
        let (_, tokens, all) = MaeOutput::attention_host(&output.encoder_attentions[layer]).unwrap();
        for head in 0..heads {
            let mut queries = vec![Query::Cls];
            queries.extend(ids_keep.iter().map(|&patch| Query::Patch(patch)));
            for query in queries {
                let selection = AttentionSelection {
                    stack: Stack::Encoder,
                    layer,
                    heads: HeadFusion::Head(head),
                    query,
                    ..AttentionSelection::default()
                };
                let scores = patch_scores(&output, &selection).unwrap();
                let query_token = match query {
                    Query::Cls => 0,
                    Query::Patch(patch) => ids_keep.iter().position(|&k| k == patch).unwrap() + 1,
                };
                for (patch, score) in scores.iter().enumerate() {
                    match ids_keep.iter().position(|&k| k == patch) {
                        // Token t ≥ 1 is spatial patch ids_keep[t − 1]: the score is that very entry.
                        Some(position) => {
                            let expected = all[(head * tokens + query_token) * tokens + position + 1];
                            assert_eq!(*score, Some(expected), "layer {layer} head {head} {query} patch {patch}");
                        }
                        None => assert_eq!(*score, None, "masked patch {patch} got attention"),
                    }
                }
            }
        }
    }
    // A masked patch has no encoder token to ask about.
    let masked_patch = (0..16).find(|&p| output.masking.is_masked(p)).unwrap();
    let selection = AttentionSelection { query: Query::Patch(masked_patch), ..AttentionSelection::default() };
    let err = patch_scores(&output, &selection).unwrap_err().to_string();
    assert!(err.contains("masked"), "{err}");
    // Drawn: masked patches are visibly empty; visible ones carry a colour.
    let panels = render_panels(&output, &loaded.preprocessor, &PanelOptions::default()).unwrap();
    let scores = patch_scores(&output, &AttentionSelection::default()).unwrap();
    let drawn = overlay(&panels.original, &scores, output.grid, output.patch_size, Colormap::Inferno, 1.0);
    for (patch, x, y, pixel) in pixels_by_patch(&drawn, &output) {
        if output.masking.is_masked(patch) {
            assert_eq!(pixel, empty_patch_pixel(*panels.original.get_pixel(x, y)));
        } else {
            // Full alpha: exactly the colormap's colour for this patch's score on the map's own scale.
            let (low, high) = score_range(&scores).unwrap();
            let expected = Colormap::Inferno.color(normalize(scores[patch].unwrap(), low, high));
            assert_eq!([pixel[0], pixel[1], pixel[2]], expected, "patch {patch}");
        }
    }
}

#[test]
fn decoder_attention_covers_every_patch_in_spatial_order() {
    let loaded = model();
    let output = forward(&loaded, 2, 0.75);
    let (heads, tokens, all) = MaeOutput::attention_host(&output.decoder_attentions[1]).unwrap();
    assert_eq!(tokens, 17);
    let selection = AttentionSelection {
        stack: Stack::Decoder,
        layer: 1,
        heads: HeadFusion::Mean,
        query: Query::Patch(5),
        ..AttentionSelection::default()
    };
    let scores = patch_scores(&output, &selection).unwrap();
    for (patch, score) in scores.iter().enumerate() {
        let mean: f32 = (0..heads).map(|h| all[(h * tokens + 6) * tokens + patch + 1]).sum::<f32>() / heads as f32;
        assert!((score.unwrap() - mean).abs() < 1e-6, "patch {patch}");
    }
    let max = AttentionSelection { heads: HeadFusion::Max, ..selection };
    let min = AttentionSelection { heads: HeadFusion::Min, ..selection };
    let (max, min) = (patch_scores(&output, &max).unwrap(), patch_scores(&output, &min).unwrap());
    for patch in 0..16 {
        assert!(min[patch].unwrap() <= scores[patch].unwrap() && scores[patch].unwrap() <= max[patch].unwrap());
    }
    let bad_head = AttentionSelection { heads: HeadFusion::Head(heads), ..selection };
    assert!(patch_scores(&output, &bad_head).unwrap_err().to_string().contains("head"));
    let bad_layer = AttentionSelection { layer: 9, ..selection };
    assert!(patch_scores(&output, &bad_layer).unwrap_err().to_string().contains("layer 9"));
}

/// `tests/fixtures/rollout/rollout.safetensors`: vit-explain's rollout (with discard ratio, rows renormalised with
/// keepdim) computed in numpy by `tools/rollout_reference.py` from transformers' own attentions in the cases.
const ROLLOUT_CASES: &[(&str, &str)] = &[("tiny-p8", "seed2_r0.5"), ("tiny-p4-normpix", "seed0")];

#[test]
fn rollout_with_discard_equals_vit_explains_numpy_rollout_on_transformers_attentions() {
    let fixtures = mae_integration_tests::fixtures();
    let reference = mae_integration_tests::read_tensor_file(&fixtures.join("rollout/rollout.safetensors"));
    let mut compared = 0;
    for (model, case) in ROLLOUT_CASES {
        let attentions =
            mae_integration_tests::read_tensor_file(&fixtures.join(format!("cases/{model}/{case}.safetensors")));
        for stack in ["encoder", "decoder"] {
            let layers: Vec<&Tensor> =
                (0..).map_while(|i| attentions.tensors.get(&format!("{stack}_attentions.{i}"))).collect();
            assert!(!layers.is_empty(), "{model}/{case}: {stack} layers missing");
            for (fusion_name, fusion) in
                [("mean", HeadFusion::Mean), ("max", HeadFusion::Max), ("min", HeadFusion::Min)]
            {
                let fused: Vec<TokenMatrix> = layers.iter().map(|a| fuse_heads(a, fusion).unwrap()).collect();
                for discard in ["0.0", "0.5", "0.9"] {
                    let name = format!("{model}.{case}.{stack}.{fusion_name}.{discard}");
                    let want = mae_integration_tests::to_f64(&reference.tensors[&name]);
                    let ratio: f32 = discard.parse().unwrap();
                    let ours = rollout(&fused, ratio).unwrap();
                    let n = ours.tokens;
                    assert_eq!(want.len(), n * n, "{name}");
                    let close = |got: f32, want: f64| (f64::from(got) - want).abs() <= 1e-4 * want.abs() + 1e-7;
                    for (index, (&got, &want)) in ours.values.iter().zip(&want).enumerate() {
                        assert!(close(got, want), "{name}: [{}, {}] = {got}, numpy {want}", index / n, index % n);
                    }
                    // The one-row path the window draws (CLS and a patch query) gives the same rows.
                    for query in [0, n - 1] {
                        let row = rollout_row(&fused, ratio, query).unwrap();
                        for (key, &got) in row.iter().enumerate() {
                            assert!(close(got, want[query * n + key]), "{name}: row {query} key {key}");
                        }
                    }
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, reference.tensors.len(), "every reference rollout compared");
}

#[test]
fn rollout_is_the_product_of_row_normalized_half_identity_mixes() {
    let loaded = model();
    let output = forward(&loaded, 2, 0.75);
    let fused: Vec<TokenMatrix> =
        output.decoder_attentions.iter().map(|a| fuse_heads(a, HeadFusion::Mean).unwrap()).collect();
    let n = fused[0].tokens;
    // Reference, written out independently: mix = (A + I)/2, each row divided by its own sum (keepdim), then
    // result = mix_l · result.
    let mut expected: Vec<f64> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    for layer in &fused {
        let mut mix = vec![0.0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                mix[i * n + j] = (f64::from(layer.values[i * n + j]) + if i == j { 1.0 } else { 0.0 }) / 2.0;
            }
            let sum: f64 = mix[i * n..(i + 1) * n].iter().sum();
            mix[i * n..(i + 1) * n].iter_mut().for_each(|v| *v /= sum);
        }
        let mut product = vec![0.0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                product[i * n + j] = (0..n).map(|k| mix[i * n + k] * expected[k * n + j]).sum();
            }
        }
        expected = product;
    }
    let rolled = rollout(&fused, 0.0).unwrap();
    for (got, want) in rolled.values.iter().zip(&expected) {
        assert!((f64::from(*got) - want).abs() < 1e-6);
    }
    // Through patch_scores: the CLS row of the rollout, CLS column dropped.
    let selection = AttentionSelection {
        stack: Stack::Decoder,
        layer: output.decoder_attentions.len() - 1,
        rollout: true,
        ..AttentionSelection::default()
    };
    let scores = patch_scores(&output, &selection).unwrap();
    for patch in 0..16 {
        assert!((f64::from(scores[patch].unwrap()) - expected[patch + 1]).abs() < 1e-6);
    }
    // Encoder rollout maps through ids_keep like single layers do.
    let encoder = AttentionSelection { rollout: true, layer: 1, discard_ratio: 0.5, ..AttentionSelection::default() };
    let scores = patch_scores(&output, &encoder).unwrap();
    for (patch, score) in scores.iter().enumerate() {
        assert_eq!(score.is_some(), output.masking.ids_keep.contains(&patch));
    }
}

/// Where on the colormap a colour lies (nearest of 1001 samples).
fn colormap_position(colormap: Colormap, [r, g, b]: [u8; 3]) -> f32 {
    let distance = |c: [u8; 3]| (0..3).map(|i| (i32::from(c[i]) - i32::from([r, g, b][i])).pow(2)).sum::<i32>();
    (0..=1000).min_by_key(|&step| distance(colormap.color(step as f32 / 1000.0))).unwrap() as f32 / 1000.0
}

#[test]
fn the_loss_heatmap_orders_patches_as_their_losses() {
    let loaded = model();
    let output = forward(&loaded, 2, 0.75);
    let panels = render_panels(&output, &loaded.preprocessor, &PanelOptions::default()).unwrap();
    for colormap in [Colormap::Viridis, Colormap::Magma] {
        let heatmap = loss_overlay(&panels.original, &output.patch_loss, output.grid, colormap, 1.0);
        let position: Vec<f32> = (0..16)
            .map(|patch| {
                let (x, y) = ((patch % 4) as u32 * 16 + 8, (patch / 4) as u32 * 16 + 8);
                let [r, g, b, _] = heatmap.get_pixel(x, y).0;
                colormap_position(colormap, [r, g, b])
            })
            .collect();
        let loss = &output.patch_loss;
        for i in 0..16 {
            for j in 0..16 {
                if loss[i] < loss[j] {
                    assert!(position[i] <= position[j], "patch {i} (loss {}) vs {j} (loss {})", loss[i], loss[j]);
                }
            }
        }
        let lowest = (0..16).min_by(|&a, &b| loss[a].total_cmp(&loss[b])).unwrap();
        let highest = (0..16).max_by(|&a, &b| loss[a].total_cmp(&loss[b])).unwrap();
        assert_eq!((position[lowest], position[highest]), (0.0, 1.0));
    }
}

#[test]
fn ensemble_std_is_zero_where_a_patch_was_never_masked() {
    let loaded = model();
    let values = photo_values(&loaded);
    let seeds = [0, 1, 2, 3];
    let ensemble = SeedEnsemble::new(values.clone(), MaskStrategy::Random, 0.25, seeds.to_vec(), Colormap::Viridis)
        .unwrap()
        .finish(&loaded)
        .unwrap();
    assert_eq!(ensemble.times_masked.iter().sum::<u32>(), 4 * 4, "4 seeds × 4 masked of 16 patches");
    let never: Vec<usize> = (0..16).filter(|&p| ensemble.times_masked[p] == 0).collect();
    let sometimes: Vec<usize> = (0..16).filter(|&p| ensemble.times_masked[p] > 0).collect();
    assert!(!never.is_empty() && !sometimes.is_empty(), "{:?}", ensemble.times_masked);
    let original =
        render_panels(&forward(&loaded, 0, 0.0), &loaded.preprocessor, &PanelOptions::default()).unwrap().original;
    let mut unsure = 0.0f32;
    for y in 0..64u32 {
        for x in 0..64u32 {
            let patch = patch_at(x, y, 64, 64, (4, 4));
            let std = ensemble.std_values[(y * 64 + x) as usize];
            if never.contains(&patch) {
                assert_eq!(std, 0.0, "({x}, {y})");
                assert_eq!(ensemble.mean.get_pixel(x, y), original.get_pixel(x, y));
            } else {
                unsure = unsure.max(std);
            }
        }
    }
    assert!(unsure > 0.0, "patches masked by some seeds only must disagree somewhere");
    assert!(SeedEnsemble::new(values, MaskStrategy::Random, 0.25, Vec::new(), Colormap::Viridis).is_err());
}

#[test]
fn loss_versus_ratio_repeats_the_forward_losses() {
    let loaded = model();
    let values = photo_values(&loaded);
    let points =
        LossCurve::new(values, MaskStrategy::Random, 2, vec![0.0, 0.5, 0.75]).unwrap().finish(&loaded.model).unwrap();
    assert_eq!(points[0], (0.0, None));
    assert_eq!(points[2].1, forward(&loaded, 2, 0.75).loss);
    assert!(points[1].1.unwrap() > 0.0);
}

#[test]
fn a_wide_row_is_as_high_as_its_pictures_and_a_square_row_is_a_full_tile() {
    let wide = RgbaImage::from_pixel(64, 36, Rgba([200, 0, 0, 255]));
    let square = RgbaImage::from_pixel(64, 64, Rgba([0, 200, 0, 255]));
    let spec = GridSpec { title: "t".into(), column_captions: vec!["a".into(), "b".into()], tile_size: 128 };
    let rows = vec![
        GridRow { caption: vec!["16:9".into()], tiles: vec![wide.clone(), wide] },
        GridRow { caption: vec!["square".into()], tiles: vec![square.clone(), square] },
    ];
    let geometry = GridGeometry::new(&spec, &rows);
    assert_eq!(geometry.row_heights, vec![72, 128], "one caption line fits in 72 pixels");
    let grid = compose_grid(&spec, &rows).unwrap();
    assert_eq!(
        u64::from(grid.height()),
        u64::from(geometry.title_height + geometry.header_height) + 72 + 128 + 2 * u64::from(GAP)
    );
    let (x, y) = geometry.tile_origin(0, 1);
    assert_eq!((grid.get_pixel(x, y).0, grid.get_pixel(x + 127, y + 71).0), ([200, 0, 0, 255], [200, 0, 0, 255]));
    let (x, y) = geometry.tile_origin(1, 0);
    assert_eq!(y, geometry.tile_origin(0, 0).1 + 72 + GAP);
    assert_eq!(grid.get_pixel(x + 127, y + 127).0, [0, 200, 0, 255]);
    // Ten caption lines do not fit a 72-pixel row: it grows to hold them.
    let tall = vec![GridRow { caption: vec!["line".into(); 10], tiles: rows[0].tiles.clone() }];
    let geometry = GridGeometry::new(&spec, &tall);
    assert!(geometry.row_heights[0] > 72 && geometry.row_heights[0] < 400, "{:?}", geometry.row_heights);
}

#[test]
fn grid_size_is_columns_and_rows_of_tiles_plus_captions() {
    let tile = |shade: u8| RgbaImage::from_pixel(64, 64, Rgba([shade, 0, 0, 255]));
    let spec = GridSpec {
        title: "MAE Explorer · tiny-p16".into(),
        column_captions: vec!["original".into(), "masked".into(), "pasted".into()],
        tile_size: 100,
    };
    let rows: Vec<GridRow> = (0..2u8)
        .map(|row| GridRow {
            caption: vec![format!("row {row}"), "ratio 0.75".into()],
            tiles: (0..3u8).map(|column| tile(10 + row * 3 + column)).collect(),
        })
        .collect();
    let grid = compose_grid(&spec, &rows).unwrap();
    let geometry = GridGeometry::new(&spec, &rows);
    assert_eq!(u64::from(grid.width()), u64::from(geometry.caption_width) + 3 * (100 + GAP as u64));
    assert_eq!(
        u64::from(grid.height()),
        u64::from(geometry.title_height + geometry.header_height) + 2 * (100 + GAP as u64)
    );
    assert!(geometry.caption_width > 0 && geometry.title_height > 0 && geometry.header_height > 0);
    // Each tile lands in its cell, scaled to fill it.
    for row in 0..2u32 {
        for column in 0..3u32 {
            let (x, y) = geometry.tile_origin(row, column);
            let shade = 10 + row as u8 * 3 + column as u8;
            for (dx, dy) in [(0, 0), (99, 99), (50, 0)] {
                assert_eq!(grid.get_pixel(x + dx, y + dy).0, [shade, 0, 0, 255]);
            }
            // The gap after the tile is background, not tile.
            assert_ne!(grid.get_pixel(x + 100, y + 50).0, [shade, 0, 0, 255]);
            assert_ne!(grid.get_pixel(x + 50, y + 100).0, [shade, 0, 0, 255]);
        }
    }
    // Captions put ink in the margins.
    let ink = (0..geometry.caption_width).filter(|&x| grid.get_pixel(x, geometry.tile_origin(0, 0).1 + 10)[1] < 128);
    assert!(ink.count() > 0);
    let wrong = vec![GridRow { caption: vec![], tiles: vec![tile(0)] }];
    assert!(compose_grid(&spec, &wrong).is_err());
}
