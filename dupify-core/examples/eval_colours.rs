//! Colour-family accuracy against by-eye labels: does `colors.family` (the garment's dominant
//! colour family, or `multicolour` for prints) match what a person says?
//!
//! ```text
//! eval_colours <test-split-dir> [--labels dupify-core/examples/data/colour_labels.csv]
//!              [--peers peers.json] [--confusions] [--dump colours.json]
//! ```
//! `<test-split-dir>` holds the labelled photos (`file` column of the labels, relative to it).
//! `--peers` is the JSON written by `benches/peers/colour_families.py` (each peer's dominant
//! RGB per file); a peer's colour is named with the same family rules as ours
//! (`dupify_core::colors::color_family`), so only the choice of dominant colour differs.
//! Reports accuracy overall and on photos labelled `strong` (coloured or patterned
//! backgrounds), for ours and every peer, strictly and counting the labeller's `alt` family
//! (a second family noted as a real possibility) as a match too; `--confusions` lists our
//! misses; `--dump` writes every photo's label and full colour report as JSON (for analysing
//! the rules).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dupify_core::colors::{color_family, srgb_to_lab};
use dupify_core::extractor::{BatchOptions, Ops};
use dupify_core::{Error, Extractor, ImageInput, Result};

struct Label {
    file: String,
    family: String,
    strong: bool,
    /// Second families the labeller noted as real possibilities (`alt X` in the notes), with
    /// the words that join them.
    alts: Vec<String>,
}

/// The words after `alt` in a notes cell (`alt grey`, `alt green or multicolour`,
/// `alt white / multicolour`), up to a `;` or the end of the cell. Only the family names among
/// them can ever equal a family, so the connecting words need no filtering.
fn alt_words(notes: &str) -> Vec<String> {
    notes
        .split("alt ")
        .skip(1)
        .flat_map(|part| {
            part.split([';', '"'])
                .next()
                .unwrap_or("")
                .split([' ', ','])
        })
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

impl Label {
    /// True when `family` is the label or one of the labeller's alternatives.
    fn accepts(&self, family: &str) -> bool {
        family == self.family || self.alts.iter().any(|a| a == family)
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: name.into(),
        reason: reason.into(),
    }
}

fn read_labels(path: &Path) -> Result<Vec<Label>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Storage {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.splitn(4, ',').collect();
        if cols.len() < 3 {
            return Err(invalid("labels", format!("line {}: `{line}`", i + 1)));
        }
        out.push(Label {
            file: cols[0].trim().to_string(),
            family: cols[1].trim().to_string(),
            strong: cols[2].trim() == "strong",
            alts: cols.get(3).map(|n| alt_words(n)).unwrap_or_default(),
        });
    }
    Ok(out)
}

struct Score {
    right: usize,
    total: usize,
    right_strong: usize,
    total_strong: usize,
}

impl Score {
    fn new() -> Self {
        Score {
            right: 0,
            total: 0,
            right_strong: 0,
            total_strong: 0,
        }
    }
    fn add(&mut self, ok: bool, strong: bool) {
        self.total += 1;
        self.right += usize::from(ok);
        if strong {
            self.total_strong += 1;
            self.right_strong += usize::from(ok);
        }
    }
    fn line(&self, who: &str) -> String {
        let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
        format!(
            "{who:<28} {:>5.1}% ({}/{})   strong backgrounds {:>5.1}% ({}/{})",
            pct(self.right, self.total),
            self.right,
            self.total,
            pct(self.right_strong, self.total_strong),
            self.right_strong,
            self.total_strong
        )
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut labels =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/colour_labels.csv");
    let mut peers = None;
    let mut confusions = false;
    let mut dump = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--labels" => {
                labels = args
                    .next()
                    .ok_or_else(|| invalid("--labels", "value"))?
                    .into()
            }
            "--peers" => {
                peers = Some(PathBuf::from(
                    args.next().ok_or_else(|| invalid("--peers", "value"))?,
                ))
            }
            "--confusions" => confusions = true,
            "--dump" => {
                dump = Some(PathBuf::from(
                    args.next().ok_or_else(|| invalid("--dump", "value"))?,
                ))
            }
            s if dir.is_none() && !s.starts_with("--") => dir = Some(PathBuf::from(s)),
            other => return Err(invalid("arguments", format!("unexpected `{other}`"))),
        }
    }
    let dir = dir.ok_or_else(|| {
        invalid(
            "arguments",
            "usage: eval_colours <test-split-dir> [--labels CSV] [--peers JSON] [--confusions]",
        )
    })?;
    let labels = read_labels(&labels)?;
    let x = Extractor::builder().build()?;
    let inputs: Vec<ImageInput> = labels
        .iter()
        .map(|l| ImageInput::Path(dir.join(&l.file)))
        .collect();
    let ops = Ops {
        colors: true,
        ..Ops::default()
    };
    let results = x.extract_batch(&inputs, ops, &BatchOptions::default())?;
    let mut ours = Score::new();
    let mut ours_or_alt = Score::new();
    let mut misses = Vec::new();
    let mut dumped = Vec::new();
    for (l, r) in labels.iter().zip(results) {
        let report = r?.colors;
        if dump.is_some() {
            dumped.push(serde_json::json!({
                "file": l.file, "label": l.family, "strong": l.strong, "colors": report,
            }));
        }
        let got = report
            .and_then(|c| c.family)
            .map_or("none".to_string(), |f| f.as_str().to_string());
        let ok = got == l.family;
        ours.add(ok, l.strong);
        ours_or_alt.add(l.accepts(&got), l.strong);
        if !ok {
            misses.push((l.file.clone(), l.family.clone(), got, l.strong));
        }
    }
    if let Some(path) = &dump {
        let text = serde_json::to_string(&dumped).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(path, text).map_err(|source| Error::Storage {
            path: path.clone(),
            source,
        })?;
    }
    println!(
        "{} labelled photos ({} with strong backgrounds)",
        ours.total, ours.total_strong
    );
    println!("{}", ours.line("dupify colors.family"));
    println!("{}", ours_or_alt.line("  label or its alt"));
    if let Some(p) = peers {
        let text = std::fs::read_to_string(&p).map_err(|source| Error::Storage {
            path: p.clone(),
            source,
        })?;
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("{}");
        let v: BTreeMap<String, BTreeMap<String, [u8; 3]>> =
            serde_json::from_str(last).map_err(|e| invalid("--peers", e.to_string()))?;
        for (peer, colours) in &v {
            let mut s = Score::new();
            let mut s_alt = Score::new();
            for l in &labels {
                let Some(rgb) = colours.get(&l.file) else {
                    return Err(invalid(
                        "--peers",
                        format!("{peer} has no colour for {}", l.file),
                    ));
                };
                let got = color_family(srgb_to_lab(*rgb)).as_str();
                s.add(got == l.family, l.strong);
                s_alt.add(l.accepts(got), l.strong);
            }
            println!("{}", s.line(&format!("{peer} (dominant colour)")));
            println!("{}", s_alt.line("  label or its alt"));
        }
    }
    if confusions {
        let mut by_pair: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (file, want, got, strong) in &misses {
            println!(
                "miss {file}: labelled {want}, ours {got}{}",
                if *strong { " (strong bg)" } else { "" }
            );
            *by_pair.entry((want.clone(), got.clone())).or_default() += 1;
        }
        for ((want, got), n) in by_pair {
            println!("confusion {want} -> {got}: {n}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eval_colours: {e} ({})", e.code());
            ExitCode::FAILURE
        }
    }
}
