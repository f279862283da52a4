//! Dupe-search quality on a labelled photo folder (`DIR/<category>/*.jpg`, e.g. the test split
//! of clothing-dataset-small): how often the products found for a photo are of its category.
//!
//! For every photo, leave-one-out over the rest of the folder:
//! - **embedding precision@10**: the 10 nearest by embedding cosine alone (exact);
//! - **catalog precision@10**: every photo indexed into an in-memory [`Catalog`] with its
//!   embedding, shape and colours, then `dupes_of` each product with the catalog's fused score
//!   (default channel weights, or `--weights CLIP,SHAPE,COLOR`);
//! - **category head**: top-1 accuracy of `attributes`' category against the folder name,
//!   and its expected calibration error (10 bins);
//! - `--sweep`: catalog precision@10 over a grid of shape/colour weights (to choose defaults
//!   on a training split, never on the split that is reported).
//!
//! ```text
//! eval_dupes DIR [--model DIR] [--weights C,S,K] [--per-class N] [--sweep]
//! ```
//! Without `--model`, the default model (`dupify_core::find_default_model`). The figures the
//! README reports come from this program; its real output is quoted there.
//!
//! [`Catalog`]: dupify_core::catalog::Catalog

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dupify_core::catalog::{
    Catalog, CatalogOptions, ChannelWeights, Environment, Namespace, NewProduct, ProductFeatures,
    SearchQuery,
};
use dupify_core::extractor::{BatchOptions, Features, Ops};
use dupify_core::{Error, Extractor, ImageInput, Result};

struct Args {
    dir: PathBuf,
    model: Option<PathBuf>,
    weights: Option<ChannelWeights>,
    per_class: Option<usize>,
    sweep: bool,
}

fn invalid(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: name.into(),
        reason: reason.into(),
    }
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        dir: PathBuf::new(),
        model: None,
        weights: None,
        per_class: None,
        sweep: false,
    };
    let mut dir = None;
    while let Some(x) = it.next() {
        let mut val = |n: &str| it.next().ok_or_else(|| invalid(n, "needs a value"));
        match x.as_str() {
            "--model" => a.model = Some(val("--model")?.into()),
            "--per-class" => {
                a.per_class = Some(
                    val("--per-class")?
                        .parse()
                        .map_err(|_| invalid("--per-class", "not a number"))?,
                )
            }
            "--weights" => {
                let v: Vec<f32> = val("--weights")?
                    .split(',')
                    .map(|p| p.trim().parse::<f32>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| invalid("--weights", "expected three numbers CLIP,SHAPE,COLOR"))?;
                let [clip, shape, color] = v[..] else {
                    return Err(invalid("--weights", "expected three numbers"));
                };
                a.weights = Some(ChannelWeights { clip, shape, color });
            }
            "--sweep" => a.sweep = true,
            s if !s.starts_with("--") && dir.is_none() => dir = Some(PathBuf::from(s)),
            other => return Err(invalid("arguments", format!("unexpected `{other}`"))),
        }
    }
    a.dir = dir.ok_or_else(|| {
        invalid(
            "arguments",
            "usage: eval_dupes DIR [--model DIR] [--weights C,S,K] [--per-class N] [--sweep]",
        )
    })?;
    Ok(a)
}

/// `(file, category)` for every photo, categories = sorted folder names.
fn photos(dir: &Path, per_class: Option<usize>) -> Result<Vec<(PathBuf, String)>> {
    let io = |source| Error::Storage {
        path: dir.to_path_buf(),
        source,
    };
    let mut cats: Vec<String> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cats.sort();
    let mut out = Vec::new();
    for c in cats {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(&c))
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
            .collect();
        files.sort();
        if let Some(n) = per_class {
            files.truncate(n);
        }
        out.extend(files.into_iter().map(|f| (f, c.clone())));
    }
    Ok(out)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eval_dupes: {e} ({})", e.code());
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let model = match args.model.clone() {
        Some(m) => m,
        None => dupify_core::find_default_model(&[
            PathBuf::new(),
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        ])
        .ok_or_else(|| invalid("--model", "no default model: run scripts/setup.sh"))?,
    };
    let items = photos(&args.dir, args.per_class)?;
    let x = Extractor::builder().model_dir(&model).build()?;
    let info = x.model_info()?;
    println!(
        "model {} ({}), {} photos in {}",
        info.name,
        info.architecture.as_str(),
        items.len(),
        args.dir.display()
    );
    let with_attributes = x.warm_up().is_ok();
    let ops = Ops {
        embed: true,
        colors: true,
        silhouette: true,
        attributes: with_attributes,
        ..Ops::default()
    };
    let inputs: Vec<ImageInput> = items
        .iter()
        .map(|(p, _)| ImageInput::Path(p.clone()))
        .collect();
    let started = std::time::Instant::now();
    let results = x.extract_batch(&inputs, ops, &BatchOptions::default())?;
    println!("extracted in {:.1} s", started.elapsed().as_secs_f64());
    let mut feats: Vec<(usize, Features)> = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(f) => feats.push((i, f)),
            Err(e) => println!("failed {}: {e}", items[i].0.display()),
        }
    }
    let label = |i: usize| items[i].1.as_str();

    // Embedding alone, exact leave-one-out.
    let embs: Vec<&[f32]> = feats
        .iter()
        .map(|(_, f)| f.embedding.as_deref().unwrap_or(&[]))
        .collect();
    let (mut p10, mut nn1) = (0.0f64, 0.0f64);
    let mut per_cat: std::collections::BTreeMap<&str, (f64, usize)> = Default::default();
    for (a, (ia, _)) in feats.iter().enumerate() {
        let mut sims: Vec<(f32, usize)> = feats
            .iter()
            .enumerate()
            .filter(|(b, _)| *b != a)
            .map(|(b, (ib, _))| (dot(embs[a], embs[b]), *ib))
            .collect();
        sims.sort_by(|x, y| y.0.total_cmp(&x.0));
        let hits = sims
            .iter()
            .take(10)
            .filter(|s| label(s.1) == label(*ia))
            .count();
        p10 += hits as f64 / 10.0;
        let e = per_cat.entry(label(*ia)).or_default();
        e.0 += hits as f64 / 10.0;
        e.1 += 1;
        nn1 += f64::from(u8::from(label(sims[0].1) == label(*ia)));
    }
    let n = feats.len() as f64;
    println!("embedding precision@10 {:.4}", p10 / n);
    println!(
        "embedding nearest-neighbour category accuracy {:.4}",
        nn1 / n
    );
    for (cat, (sum, count)) in &per_cat {
        println!(
            "  {cat:<12} {count:>4} photos  precision@10 {:.3}",
            sum / *count as f64
        );
    }

    // Category head.
    if with_attributes {
        let (mut ok, mut bins) = (0usize, [(0usize, 0f64, 0usize); 10]);
        for (i, f) in &feats {
            let Some(cat) = f.attributes.as_ref().and_then(|a| a.attributes.first()) else {
                continue;
            };
            let right = cat.label == label(*i);
            ok += usize::from(right);
            let b = ((f64::from(cat.probability) * 10.0) as usize).min(9);
            bins[b].0 += 1;
            bins[b].1 += f64::from(cat.probability);
            bins[b].2 += usize::from(right);
        }
        let ece: f64 = bins
            .iter()
            .map(|&(_, conf, right)| (conf - right as f64).abs() / n)
            .sum();
        println!(
            "category head top-1 accuracy {:.4}, expected calibration error {ece:.4}",
            ok as f64 / n
        );
    } else {
        println!("category head: not available for this model");
    }

    // Catalog: fused score.
    let cat = Catalog::open_in_memory(CatalogOptions::default())?;
    let ns = Namespace::new("eval", Environment::Test)?;
    let mut ids = Vec::new();
    for (i, f) in &feats {
        let mut p = NewProduct::new(format!("{i}"));
        p.features = ProductFeatures::from(f);
        ids.push((cat.upsert(&ns, p)?.id, *i));
    }
    let fused = |w: Option<ChannelWeights>| -> Result<f64> {
        let mut total = 0.0;
        for (id, i) in &ids {
            let q = SearchQuery {
                by_product: Some(id.clone()),
                weights: w,
                limit: 10,
                ..Default::default()
            };
            let hits = cat.search(&ns, &q)?;
            let same = hits
                .iter()
                .filter(|h| {
                    h.product
                        .external_id
                        .parse::<usize>()
                        .is_ok_and(|j| label(j) == label(*i))
                })
                .count();
            total += same as f64 / 10.0;
        }
        Ok(total / ids.len() as f64)
    };
    let w = args.weights.unwrap_or_default();
    println!(
        "catalog precision@10 {:.4} (weights clip {}, shape {}, color {})",
        fused(Some(w))?,
        w.clip,
        w.shape,
        w.color
    );
    if args.sweep {
        for shape in [0.0f32, 0.05, 0.1, 0.15, 0.2, 0.3] {
            for color in [0.0f32, 0.05, 0.1, 0.15, 0.2] {
                let w = ChannelWeights {
                    clip: 1.0 - shape - color,
                    shape,
                    color,
                };
                println!(
                    "sweep clip {:.2} shape {:.2} color {:.2}: precision@10 {:.4}",
                    w.clip,
                    shape,
                    color,
                    fused(Some(w))?
                );
            }
        }
    }
    Ok(())
}
