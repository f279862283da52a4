//! Prints the features the Rust API extracts from image files, as the core's JSON: the
//! reference the Python and Node bindings' tests compare themselves against.
//!
//! ```text
//! $ cargo run -q -p dupify-examples --example features_json -- weights/test/clip/tiny embed,colors a.jpg b.png
//! [{"content_hash":"…","embedding":[…],…},…]
//! ```

use anyhow::{bail, Context};
use dupify_core::{BatchOptions, Device, Extractor, ImageInput, Ops};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_dir, ops, files @ ..] = args.as_slice() else {
        bail!("usage: features_json <model_dir> <ops> <image>...");
    };
    if files.is_empty() {
        bail!("usage: features_json <model_dir> <ops> <image>...");
    }
    let ops: Ops = ops.parse().context("parsing ops")?;
    let x = Extractor::builder()
        .model_dir(model_dir)
        .device(Device::Cpu)
        .build()?;
    let inputs: Vec<ImageInput> = files.iter().map(|f| ImageInput::Path(f.into())).collect();
    let mut out = Vec::with_capacity(inputs.len());
    for (file, r) in files
        .iter()
        .zip(x.extract_batch(&inputs, ops, &BatchOptions::default())?)
    {
        out.push(r.with_context(|| format!("extracting {file}"))?);
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
