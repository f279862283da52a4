//! What the embedding-comparison examples (`precision_cosine`, `reduced_decode`) share: their
//! argument errors, the photo walk, and how a set of embeddings is compared with a reference.

use std::path::{Path, PathBuf};

use dupify_core::{Error, Result};

pub fn invalid(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: name.into(),
        reason: reason.into(),
    }
}

/// Every `.jpg` under `dir` (recursively, sorted); at least 11, so that each photo has 10
/// others to be compared with.
pub fn photos(dir: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Storage {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    if out.len() < 11 {
        return Err(invalid("DIR", "needs at least 11 photos"));
    }
    Ok(out)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Indices of the 10 most similar other embeddings of `i`.
fn top10(all: &[Vec<f32>], i: usize) -> Vec<usize> {
    let mut s: Vec<(usize, f32)> = all
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(j, v)| (j, dot(&all[i], v)))
        .collect();
    s.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    s.into_iter().take(10).map(|(j, _)| j).collect()
}

/// How a set of embeddings agrees with a reference set of the same photos.
pub struct Agreement {
    /// Cosine of each photo's two embeddings: mean, 1st percentile, minimum.
    pub cos_mean: f32,
    pub cos_p1: f32,
    pub cos_min: f32,
    /// Share (%) of each photo's 10 nearest other photos that stay the same.
    pub top10_kept_pct: f64,
}

pub fn agreement(got: &[Vec<f32>], reference: &[Vec<f32>]) -> Agreement {
    let mut cos: Vec<f32> = got.iter().zip(reference).map(|(a, b)| dot(a, b)).collect();
    cos.sort_by(f32::total_cmp);
    let kept: usize = (0..got.len())
        .map(|i| {
            let want = top10(reference, i);
            top10(got, i).iter().filter(|j| want.contains(j)).count()
        })
        .sum();
    Agreement {
        cos_mean: cos.iter().sum::<f32>() / cos.len() as f32,
        cos_p1: cos[cos.len() / 100],
        cos_min: cos[0],
        top10_kept_pct: 100.0 * kept as f64 / (10 * got.len()) as f64,
    }
}
