//! `dupify index FOLDER --catalog FILE`: every image under the folder into the catalog.
//!
//! Resumable: the catalog skips an image whose external id is stored with the same content
//! hash, so a run that was interrupted (or a re-run after adding photos) does only the new
//! work. One bad file is listed at the end and never stops the run; the exit status is then 1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use dupify_core::catalog::{IngestItem, IngestOptions, NewProduct, ProductFilter};
use dupify_core::ImageInput;

use crate::cli::{Global, IndexArgs};
use crate::common::{self, BOLD, RED};

/// File extensions taken as images (the formats the decoder accepts).
const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];

pub fn run(global: &Global, args: &IndexArgs) -> anyhow::Result<ExitCode> {
    if !args.folder.is_dir() {
        bail!("{} is not a folder", args.folder.display());
    }
    let mut files = Vec::new();
    collect_images(&args.folder, &mut files)
        .with_context(|| format!("listing {}", args.folder.display()))?;
    files.sort();
    if files.is_empty() {
        bail!(
            "no images ({}) under {}",
            IMAGE_EXTENSIONS.join(", "),
            args.folder.display()
        );
    }
    let items: Vec<IngestItem> = files
        .iter()
        .map(|path| IngestItem {
            product: product_for(&args.folder, path, args.brand.as_deref()),
            image: ImageInput::Path(path.clone()),
        })
        .collect();

    let model = common::resolve_model(global)?;
    let x = common::extractor(global, Some(&model))?;
    let ns = common::namespace(&args.catalog)?;
    let catalog = common::open_catalog(&args.catalog, false)?;

    let pb = common::progress_bar(items.len() as u64, "indexing");
    let mut opts = IngestOptions::default();
    opts.progress = Some(common::progress_fn(&pb));
    let report = catalog.ingest(&ns, &x, items, &opts);
    pb.finish_and_clear();
    let report = report.context("indexing")?;
    catalog.flush().context("saving the catalog index")?;
    let total = catalog.count(&ns, &ProductFilter::default())?;

    if args.json {
        common::print_json(&report)?;
    } else {
        let mut out = anstream::stdout().lock();
        writeln!(
            out,
            "{BOLD}indexed {}{BOLD:#}, unchanged {} (skipped), failed {} — {} holds {} products \
             in {}/{}",
            report.indexed,
            report.skipped,
            report.failed.len(),
            common::catalog_name(&args.catalog),
            total,
            ns.account,
            ns.environment.as_str()
        )?;
    }
    if report.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut err = anstream::stderr();
    writeln!(
        err,
        "dupify: {RED}{} file(s) not indexed{RED:#}:",
        report.failed.len()
    )?;
    for f in &report.failed {
        writeln!(err, "  {}: [{}] {}", f.external_id, f.code, f.message)?;
    }
    Ok(ExitCode::from(1))
}

/// Every image file under `dir`, recursively. Hidden entries (`.name`) are skipped; symbolic
/// links to files are followed, links to folders are not (no cycles).
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_images(&path, out)?;
        } else if (kind.is_file() || (kind.is_symlink() && path.is_file())) && is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The product for one file: external id = path relative to the indexed folder (`/`-joined,
/// stable across machines), title = file stem, category = the folder holding it (none for
/// files directly in the indexed folder).
fn product_for(root: &Path, path: &Path, brand: Option<&str>) -> NewProduct {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut p = NewProduct::new(parts.join("/"));
    p.title = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    p.category = (parts.len() > 1).then(|| parts[parts.len() - 2].clone());
    p.brand = brand.map(str::to_string);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_fields_come_from_the_path() {
        let p = product_for(
            Path::new("/shop"),
            Path::new("/shop/dress/red.jpg"),
            Some("Acme"),
        );
        assert_eq!(p.external_id, "dress/red.jpg");
        assert_eq!(p.title.as_deref(), Some("red"));
        assert_eq!(p.category.as_deref(), Some("dress"));
        assert_eq!(p.brand.as_deref(), Some("Acme"));
        let top = product_for(Path::new("/shop"), Path::new("/shop/hat.png"), None);
        assert_eq!(top.external_id, "hat.png");
        assert_eq!(top.category, None);
    }

    #[test]
    fn image_extensions_are_case_insensitive() {
        assert!(is_image(Path::new("a/B.JPG")));
        assert!(is_image(Path::new("a.webp")));
        assert!(!is_image(Path::new("LICENSE")));
        assert!(!is_image(Path::new("notes.txt")));
    }
}
