//! `dupify cutout IMAGE -o OUT.png`: the product on a transparent background (the hosted
//! `background-remove`). Needs no model.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use dupify_core::{ImageInput, Ops};

use crate::cli::{CutoutArgs, Global};
use crate::common;

pub fn run(global: &Global, args: &CutoutArgs) -> anyhow::Result<ExitCode> {
    let x = common::extractor(global, None)?;
    let ops = Ops {
        cutout: true,
        silhouette: true,
        ..Ops::default()
    };
    let f = x
        .extract(&ImageInput::Path(args.image.clone()), ops)
        .with_context(|| format!("{}", args.image.display()))?;
    let png = f
        .cutout_png
        .context("the extractor returned no cut-out (a bug: please report it)")?;
    if args.output == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(&png)?;
        out.flush()?;
    } else {
        write_atomically(&args.output, &png)
            .with_context(|| format!("writing {}", args.output.display()))?;
        if let Some(s) = &f.silhouette {
            eprintln!(
                "wrote {} ({} bytes, product {}x{} at ({}, {}), confidence {:.2})",
                args.output.display(),
                png.len(),
                s.bbox.width,
                s.bbox.height,
                s.bbox.x,
                s.bbox.y,
                s.confidence
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes through a temporary file in the same folder and renames it into place, so an
/// interrupted run never leaves a truncated PNG under the requested name.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}
