//! What several subcommands share: choosing the model (and warning about the seeded one),
//! building the extractor, opening the catalog, progress bars, terminal styles.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anstyle::{AnsiColor, Color, RgbColor, Style};
use anyhow::{bail, Context};
use dupify_core::catalog::{postgres_url, redact_url, Catalog, CatalogOptions, Namespace};
use dupify_core::Extractor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{CatalogArgs, Global};

pub use dupify_core::ModelChoice;

/// Chooses the model with the library's one resolver ([`dupify_core::resolve_model_dir`]):
/// `--model` (or `DUPIFY_MODEL`) when given, else the default (a real CLIP checkpoint in
/// `weights/real/clip-vit-base-patch32`, else the real EfficientNet-Lite2 that
/// `scripts/setup.sh` installs). Defaults are looked up relative to the working directory
/// first, then to the source tree this binary was built from (so `dupify` works from any
/// directory of a checkout). The seeded test models are used only when named explicitly, and
/// then a warning says their model channel is not semantic.
pub fn resolve_model(global: &Global) -> anyhow::Result<ModelChoice> {
    let roots = [
        PathBuf::new(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    ];
    let choice =
        dupify_core::resolve_model_dir(global.model.as_deref(), &roots).context("--model")?;
    if choice.seeded {
        let warn = Style::new()
            .bold()
            .fg_color(Some(Color::Ansi(AnsiColor::Yellow)));
        let mut err = anstream::stderr();
        // A failed warning write must not stop the work; stderr is best effort.
        let _ = writeln!(
            err,
            "{warn}warning:{warn:#} {} is a seeded RANDOM-weight test model: its embeddings, \
             text search and attributes are NOT semantic; colours, silhouette and quality are \
             real. Leave --model out to use the pretrained default.",
            choice.dir.display()
        );
    }
    Ok(choice)
}

/// An extractor on `--device` in `--precision`, with the model when one is given (loaded on
/// first use).
pub fn extractor(global: &Global, model: Option<&ModelChoice>) -> anyhow::Result<Extractor> {
    let mut b = Extractor::builder()
        .device(global.device)
        .precision(global.precision);
    if let Some(m) = model {
        b = b.model_dir(&m.dir);
    }
    b.build().context("building the extractor")
}

/// The namespace the catalog arguments name.
pub fn namespace(args: &CatalogArgs) -> anyhow::Result<Namespace> {
    Ok(Namespace::new(args.account.clone(), args.environment)?)
}

/// Opens the catalog; with `must_exist`, refuses a path with no database instead of creating
/// an empty one (a search of a mistyped path should say so, not find nothing).
pub fn open_catalog(args: &CatalogArgs, must_exist: bool) -> anyhow::Result<Catalog> {
    if postgres_url(&args.catalog).is_some() {
        // A database server: nothing to check on disk; the URL is shown without its password.
        return Catalog::open(&args.catalog, CatalogOptions::default())
            .with_context(|| format!("opening catalog {}", catalog_name(args)));
    }
    if must_exist && !args.catalog.is_file() {
        bail!(
            "catalog {} does not exist (create it with `dupify index FOLDER --catalog {}`)",
            args.catalog.display(),
            args.catalog.display()
        );
    }
    if let Some(parent) = args.catalog.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            bail!("catalog folder {} does not exist", parent.display());
        }
    }
    Catalog::open(&args.catalog, CatalogOptions::default())
        .with_context(|| format!("opening catalog {}", args.catalog.display()))
}

/// The catalog as messages name it: its path, or its URL with the password hidden.
pub fn catalog_name(args: &CatalogArgs) -> String {
    match postgres_url(&args.catalog) {
        Some(url) => redact_url(url),
        None => args.catalog.display().to_string(),
    }
}

/// A progress bar on stderr with rate and ETA; drawn only when stderr is a terminal.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    // The template is a constant: a parse failure is a bug caught by every test run.
    let style = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar:.cyan/blue} {pos}/{len} {per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

/// A `(done, total)` callback that moves `pb`.
pub fn progress_fn(pb: &ProgressBar) -> Arc<dyn Fn(usize, usize) + Send + Sync> {
    let pb = pb.clone();
    Arc::new(move |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })
}

/// Bold, for headings.
pub const BOLD: Style = Style::new().bold();
/// Dim, for secondary details.
pub const DIM: Style = Style::new().dimmed();
/// Red bold, for failures.
pub const RED: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Red)));

/// Two cells painted in `rgb` (a colour swatch); plain spaces when styles are stripped.
pub fn swatch(rgb: [u8; 3]) -> String {
    let s = Style::new().bg_color(Some(Color::Rgb(RgbColor(rgb[0], rgb[1], rgb[2]))));
    format!("{s}    {s:#}")
}

/// A similarity or `-` when the channel is absent.
pub fn score(v: Option<f32>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

/// A Unix time (seconds) as RFC 3339 UTC, or the number itself when out of range.
pub fn time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// Writes JSON to stdout followed by a newline.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}
