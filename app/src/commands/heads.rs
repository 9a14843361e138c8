//! `mae-explorer heads`: per-head attention statistics of one forward pass as CSV, and optionally the head
//! gallery (the window's Heads panel picture) as a picture file. Both are written atomically, and an existing file
//! is only replaced with `--force`.

use anyhow::{Context, Result, anyhow, bail};
use mae_model::{ForwardOptions, MaeOutput};

use super::model_arg::load_model;
use crate::atomic_file::{check_output_folder, check_overwrite, picture_format, write_output, write_picture_output};
use crate::cli::{HeadsArgs, ScaleChoice, StackChoice};
use crate::head_stats::{head_stats, write_csv};
use crate::render::Colormap;
use crate::render::attention::{Query, Stack};
use crate::render::gallery::{GalleryScale, GallerySpec, THUMBNAIL_WIDTH, render_gallery};
use crate::render::panels::{PanelOptions, render_panels};

pub fn run(args: &HeadsArgs) -> Result<()> {
    let mask = args.input.check()?;
    let query: Query = args.query.parse().map_err(|e| anyhow!("--query: {e}"))?;
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    if let Some(gallery) = &args.gallery {
        if *gallery == args.out {
            bail!("{}: --gallery and --out name the same file", gallery.display());
        }
        picture_format(gallery)?;
        check_output_folder(gallery)?;
        check_overwrite(gallery, args.force)?;
    }
    let stacks = match args.stack {
        StackChoice::Encoder => vec![Stack::Encoder],
        StackChoice::Decoder => vec![Stack::Decoder],
        StackChoice::Both => vec![Stack::Encoder, Stack::Decoder],
    };
    let loaded = load_model(&args.model, &args.engine)?;
    let input = args.input.resolve(&loaded, &mask)?;
    let output = loaded.model.forward(&input.pixel_values, &input.spec, ForwardOptions { attentions: true })?;
    if let Query::Patch(patch) = query
        && patch >= output.num_patches()
    {
        bail!(
            "--query: patch {patch} does not exist (the input has {} patches, 0–{})",
            output.num_patches(),
            output.num_patches() - 1
        );
    }
    let stats = head_stats(&output, &stacks)?;
    let gallery = match &args.gallery {
        Some(path) => {
            Some((path, gallery_picture(&output, &loaded.preprocessor, stacks, query, args.scale, args.colormap)?))
        }
        None => None,
    };
    write_output(&args.out, args.force, |temporary| {
        let file = std::fs::File::create(temporary)?;
        write_csv(&stats, std::io::BufWriter::new(file))
            .with_context(|| format!("{}: cannot write the CSV", args.out.display()))
    })?;
    if let Some((path, picture)) = gallery
        && let Err(error) = write_picture_output(&picture, path, args.force)
    {
        // Both files or neither: the CSV was just written by this run.
        let _ = std::fs::remove_file(&args.out);
        return Err(error);
    }
    Ok(())
}

fn gallery_picture(
    output: &MaeOutput,
    preprocessor: &mae_model::Preprocessor,
    stacks: Vec<Stack>,
    query: Query,
    scale: ScaleChoice,
    colormap: Colormap,
) -> Result<image::RgbaImage> {
    let original = render_panels(output, preprocessor, &PanelOptions::default())?.original;
    let scale = match scale {
        ScaleChoice::Shared => GalleryScale::Shared,
        ScaleChoice::PerHead => GalleryScale::PerHead,
    };
    let spec = GallerySpec { stacks, query, scale, colormap, thumbnail: THUMBNAIL_WIDTH, text: true };
    Ok(render_gallery(output, &original, &spec)?.picture)
}
