//! What decoding large JPEGs at a reduced scale (`ExtractorConfig::reduced_decode_margin`, 1
//! by default) does to real photos: every `.jpg` under `DIR` (recursively, sorted) is
//! - preprocessed into the model input from a full-size decode and from the reduced decode the
//!   extractor would use; the program reports the absolute differences of the two tensors
//!   (normalised units: mean, 99th percentile, max over all photos);
//! - embedded with reduced decoding off and with margin `K`: the cosine of each photo's two
//!   embeddings
//!   (mean, 1st percentile, min) and how much of each photo's 10 nearest other photos stays the
//!   same.
//!
//! ```text
//! reduced_decode DIR [--margin K (default 1)] [--model DIR] [--threads N]
//! ```
//! Without `--model`, the default model (`dupify_core::find_default_model`). The README's
//! large-photo figures come from this program, on the photos `benches/large_photos.py` makes.

use std::path::PathBuf;
use std::process::ExitCode;

use dupify_core::extractor::{BatchOptions, Ops};
use dupify_core::input::{decode_bytes, decode_bytes_reduced, InputLimits, MinDecodedSize};
use dupify_core::{Error, Extractor, ImageInput, Result};

mod common;
use common::{agreement, invalid, photos};

fn embed(
    model: &Option<PathBuf>,
    threads: usize,
    margin: u32,
    inputs: &[ImageInput],
) -> Result<(Extractor, Vec<Vec<f32>>)> {
    let mut b = Extractor::builder()
        .threads(threads)
        .reduced_decode_margin(margin);
    if let Some(m) = model {
        b = b.model_dir(m);
    }
    let ex = b.build()?;
    let embs = ex
        .extract_batch(inputs, Ops::EMBED, &BatchOptions::default())?
        .into_iter()
        .map(|r| {
            r?.embedding
                .ok_or_else(|| Error::Internal("no embedding".into()))
        })
        .collect::<Result<_>>()?;
    Ok((ex, embs))
}

fn run() -> Result<()> {
    let mut it = std::env::args().skip(1);
    let (mut dir, mut model, mut threads, mut margin) = (None, None, 2usize, 1u32);
    while let Some(a) = it.next() {
        let mut val = |n: &str| it.next().ok_or_else(|| invalid(n, "needs a value"));
        match a.as_str() {
            "--model" => model = Some(PathBuf::from(val("--model")?)),
            "--margin" => {
                margin = val("--margin")?
                    .parse()
                    .ok()
                    .filter(|&m| m > 0)
                    .ok_or_else(|| invalid("--margin", "a whole number >= 1"))?
            }
            "--threads" => {
                threads = val("--threads")?
                    .parse()
                    .map_err(|_| invalid("--threads", "not a number"))?
            }
            s if !s.starts_with("--") && dir.is_none() => dir = Some(PathBuf::from(s)),
            s => return Err(invalid(s, "unknown argument")),
        }
    }
    let dir = dir.ok_or_else(|| invalid("DIR", "a folder of .jpg photos"))?;
    // Without --model: the default model, looked up from the working directory.
    let model = model.or_else(|| dupify_core::find_default_model(&[PathBuf::from(".")]));
    let files = photos(&dir)?;
    let inputs: Vec<ImageInput> = files.iter().cloned().map(ImageInput::Path).collect();
    let (ex, full) = embed(&model, threads, 0, &inputs)?;
    let (_, reduced) = embed(&model, threads, margin, &inputs)?;
    let info = ex.model_info()?;
    println!(
        "{} photos; model {}; margin {margin}",
        inputs.len(),
        info.name
    );

    // The model input, from each decode.
    let pre = ex.preprocess()?;
    // The extractor's rule: the model input and the working image, times the margin.
    let min = pre
        .min_decoded_size()
        .max(MinDecodedSize::long_side(ex.config().working_side))
        .times(margin);
    let limits = InputLimits::default();
    let mut diffs = Vec::new();
    let mut scales = std::collections::BTreeMap::new();
    for f in &files {
        let bytes = std::fs::read(f).map_err(|source| Error::InputFile {
            path: f.clone(),
            source,
        })?;
        let a = pre.preprocess(&decode_bytes(&bytes, &limits)?)?;
        let small = decode_bytes_reduced(&bytes, &limits, min)?;
        *scales
            .entry((f64::from(small.source_width()) / f64::from(small.width())).round() as u32)
            .or_insert(0usize) += 1;
        let b = pre.preprocess(&small)?;
        diffs.extend(a.iter().zip(&b).map(|(x, y)| (x - y).abs()));
    }
    diffs.sort_by(f32::total_cmp);
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    println!(
        "decode scale 1/n: {}",
        scales
            .iter()
            .map(|(d, n)| format!("1/{d}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "model input |reduced - full|: mean {mean:.5}, p99 {:.5}, max {:.5}",
        diffs[diffs.len() * 99 / 100],
        diffs[diffs.len() - 1]
    );

    let a = agreement(&reduced, &full);
    println!(
        "embedding cosine, reduced vs full decode: mean {:.5}, 1st percentile {:.5}, min {:.5}; \
         top-10 neighbours kept {:.1}%",
        a.cos_mean, a.cos_p1, a.cos_min, a.top10_kept_pct
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reduced_decode: {e}");
            ExitCode::FAILURE
        }
    }
}
