//! `dupify extract`: features of each image, as text (with colour swatches) or JSON. Every
//! image is attempted; a bad one is reported and makes the exit status 1, never stops the rest.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use dupify_core::extractor::BatchOptions;
use dupify_core::{Features, ImageInput};
use serde::Serialize;

use crate::cli::{ExtractArgs, Global};
use crate::common::{self, BOLD, DIM, RED};

/// One image's outcome in `--json` output.
#[derive(Serialize)]
struct Item<'a> {
    path: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    features: Option<&'a Features>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ItemError>,
}

/// A per-image failure: the hosted error code and the message.
#[derive(Serialize)]
pub struct ItemError {
    pub code: &'static str,
    pub message: String,
}

pub fn run(global: &Global, args: &ExtractArgs) -> anyhow::Result<ExitCode> {
    // Embeddings and attributes need CLIP; colours, silhouette, cut-out and quality do not, so
    // they run (and warn about nothing) without any model.
    let model = if args.ops.embed || args.ops.attributes {
        Some(common::resolve_model(global)?)
    } else {
        None
    };
    let x = common::extractor(global, model.as_ref())?;
    let inputs: Vec<ImageInput> = args
        .images
        .iter()
        .map(|p| ImageInput::Path(p.clone()))
        .collect();
    let pb = (inputs.len() > 1).then(|| common::progress_bar(inputs.len() as u64, "extracting"));
    let mut opts = BatchOptions::default();
    opts.progress = pb.as_ref().map(common::progress_fn);
    let results = x.extract_batch(&inputs, args.ops, &opts)?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }

    let failed = results.iter().filter(|r| r.is_err()).count();
    if args.json {
        let items: Vec<Item> = args
            .images
            .iter()
            .zip(&results)
            .map(|(path, r)| Item {
                path,
                features: r.as_ref().ok(),
                error: r.as_ref().err().map(|e| ItemError {
                    code: e.code(),
                    message: e.to_string(),
                }),
            })
            .collect();
        common::print_json(&items)?;
    } else {
        // Data on stdout, failures on stderr (below).
        let mut out = anstream::stdout().lock();
        let ok = args
            .images
            .iter()
            .zip(&results)
            .filter_map(|(p, r)| Some((p, r.as_ref().ok()?)));
        for (i, (path, f)) in ok.enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            print_features(&mut out, path, f)?;
        }
    }
    for (path, r) in args.images.iter().zip(&results) {
        if let Err(e) = r {
            let mut err = anstream::stderr();
            writeln!(
                err,
                "dupify: {RED}error{RED:#}: {}: [{}] {e}",
                path.display(),
                e.code()
            )?;
        }
    }
    if failed > 0 {
        eprintln!("dupify: {failed} of {} images failed", results.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable report of one image.
pub fn print_features(out: &mut impl Write, path: &Path, f: &Features) -> anyhow::Result<()> {
    writeln!(
        out,
        "{BOLD}{}{BOLD:#}  {DIM}{}x{} sha256 {}…{DIM:#}",
        path.display(),
        f.width,
        f.height,
        f.content_hash.get(..12).unwrap_or(&f.content_hash)
    )?;
    if let Some(e) = &f.embedding {
        let head: Vec<String> = e.iter().take(4).map(|v| format!("{v:+.4}")).collect();
        writeln!(
            out,
            "  embedding   {}-d [{}, …]  {DIM}model {}{DIM:#}",
            e.len(),
            head.join(", "),
            f.model_id
                .as_deref()
                .map(|m| m.get(..12).unwrap_or(m))
                .unwrap_or("-")
        )?;
    }
    if let Some(c) = &f.colors {
        writeln!(
            out,
            "  colours     product {:.0}% of the frame, family {}",
            c.product_fraction * 100.0,
            c.family.map_or("-", |f| f.as_str())
        )?;
        for d in &c.colors {
            writeln!(
                out,
                "    {} {:>5.1}%  {}  {:<20} {}",
                common::swatch(d.rgb),
                d.share,
                d.hex,
                d.name,
                d.family.as_str()
            )?;
        }
        if let Some(bg) = c.background.first() {
            writeln!(
                out,
                "    {DIM}background{DIM:#} {} {}  {}",
                common::swatch(bg.rgb),
                bg.hex,
                bg.name
            )?;
        }
    }
    if let Some(s) = &f.silhouette {
        writeln!(
            out,
            "  silhouette  bbox {}x{} at ({}, {}), area {:.0}%, confidence {:.2}, shape {}-d{}",
            s.bbox.width,
            s.bbox.height,
            s.bbox.x,
            s.bbox.y,
            s.area_fraction * 100.0,
            s.confidence,
            s.embedding.len(),
            if s.foreground == dupify_core::silhouette::SilhouetteSource::CenterPrior {
                " (no clear foreground: centre prior)"
            } else {
                ""
            }
        )?;
    }
    if let Some(png) = &f.cutout_png {
        writeln!(
            out,
            "  cutout      PNG, {} bytes (write it with `dupify cutout IMAGE -o OUT.png`)",
            png.len()
        )?;
    }
    if let Some(a) = &f.attributes {
        writeln!(out, "  attributes  category {}", a.category)?;
        for p in &a.attributes {
            writeln!(
                out,
                "    {:<16} {:<20} {:.2}",
                p.attribute, p.label, p.probability
            )?;
        }
    }
    if let Some(q) = &f.quality {
        writeln!(
            out,
            "  quality     {:.2} (sharpness {:.2}, brightness {:.2}, composition {:.2})",
            q.overall, q.sharpness, q.brightness, q.composition
        )?;
    }
    Ok(())
}
