//! What a lower precision does to the embeddings of real photos: every `.jpg` under `DIR`
//! (recursively, sorted) is embedded at f32 and at each lower precision the model supports on
//! the CPU (bf16; int8 for CLIP), and the program reports
//! - the cosine of each photo's embedding to its f32 embedding (mean, 1st percentile, min);
//! - how much of each photo's 10 nearest neighbours among the other photos (exact, by cosine)
//!   stays the same: what a dupe search would notice.
//!
//! ```text
//! precision_cosine DIR [--model DIR] [--threads N]
//! ```
//! Without `--model`, the default model (`dupify_core::find_default_model`). The README's
//! precision figures come from this program.

use std::path::PathBuf;
use std::process::ExitCode;

use dupify_core::extractor::{BatchOptions, Ops};
use dupify_core::{Error, Extractor, ImageInput, Precision, Result};

mod common;
use common::{agreement, invalid, photos};

fn embed(
    model: &Option<PathBuf>,
    threads: usize,
    precision: Precision,
    inputs: &[ImageInput],
) -> Result<Vec<Vec<f32>>> {
    let mut b = Extractor::builder().precision(precision).threads(threads);
    if let Some(m) = model {
        b = b.model_dir(m);
    }
    let ex = b.build()?;
    ex.extract_batch(inputs, Ops::EMBED, &BatchOptions::default())?
        .into_iter()
        .map(|r| {
            r?.embedding
                .ok_or_else(|| Error::Internal("no embedding".into()))
        })
        .collect()
}

fn run() -> Result<()> {
    let mut it = std::env::args().skip(1);
    let (mut dir, mut model, mut threads) = (None, None, 2usize);
    while let Some(a) = it.next() {
        let mut val = |n: &str| it.next().ok_or_else(|| invalid(n, "needs a value"));
        match a.as_str() {
            "--model" => model = Some(PathBuf::from(val("--model")?)),
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
    let inputs: Vec<ImageInput> = files.into_iter().map(ImageInput::Path).collect();
    let reference = embed(&model, threads, Precision::F32, &inputs)?;
    println!(
        "{} photos; model {}",
        inputs.len(),
        model
            .as_deref()
            .map_or("(default)".into(), |m| m.display().to_string())
    );
    println!("| precision | cosine to f32: mean | 1st percentile | min | top-10 neighbours kept |");
    println!("|---|---|---|---|---|");
    for p in [Precision::Bf16, Precision::Int8] {
        let got = match embed(&model, threads, p, &inputs) {
            Ok(g) => g,
            // int8 exists for CLIP only: say so and go on
            Err(e) if e.code() == "invalid_parameter" || e.code() == "not_available" => {
                println!("| {p:?} | {e} | | | |");
                continue;
            }
            Err(e) => return Err(e),
        };
        let a = agreement(&got, &reference);
        println!(
            "| {p:?} | {:.5} | {:.5} | {:.5} | {:.1}% |",
            a.cos_mean, a.cos_p1, a.cos_min, a.top10_kept_pct
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("precision_cosine: {e} ({})", e.code());
            ExitCode::FAILURE
        }
    }
}
