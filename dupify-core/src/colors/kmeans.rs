//! Colour histogram and deterministic weighted k-means in CIELAB.
//!
//! Pixels are first binned into a 12-bit RGB histogram (4 bits per channel) that keeps the
//! exact channel sums of each bin, so a bin's colour is the true mean of its pixels, not the bin
//! centre. k-means then runs on the occupied bins weighted by their pixel counts: a photo of
//! 65k pixels has a few hundred to two thousand occupied bins, which is what makes clustering
//! cheap (< 2 ms per image); bins this size are far finer than the clusters reported. The
//! initialisation is k-means++ (Arthur & Vassilvitskii 2007) driven by a fixed-seed SplitMix64
//! generator over the bins in index order, so the same image always gives the same clusters.

use super::lab::{delta_e2000, delta_e76_sq, srgb_f32_to_lab};

/// Number of bins of the 12-bit histogram.
pub(crate) const BINS: usize = 1 << 12;

/// The histogram bin of an sRGB pixel.
#[inline(always)]
pub(crate) fn bin_of(r: u8, g: u8, b: u8) -> u16 {
    ((r as u16 >> 4) << 8) | ((g as u16 >> 4) << 4) | (b as u16 >> 4)
}

/// A 12-bit RGB histogram with per-bin channel sums.
pub(crate) struct Histogram {
    count: Vec<u32>,
    sums: Vec<[u32; 3]>,
    occupied: usize,
    total: u64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            count: vec![0; BINS],
            sums: vec![[0; 3]; BINS],
            occupied: 0,
            total: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn add(&mut self, bin: u16, rgb: &[u8]) {
        let b = bin as usize;
        self.occupied += (self.count[b] == 0) as usize;
        self.count[b] += 1;
        let s = &mut self.sums[b];
        s[0] += rgb[0] as u32;
        s[1] += rgb[1] as u32;
        s[2] += rgb[2] as u32;
        self.total += 1;
    }

    /// Pixels counted.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The occupied bins as weighted CIELAB points (bin mean colour, pixel count), in
    /// ascending bin order so the result does not depend on pixel order.
    pub(crate) fn points(&self) -> (Vec<[f32; 3]>, Vec<f32>) {
        let mut pts = Vec::with_capacity(self.occupied);
        let mut w = Vec::with_capacity(self.occupied);
        // Scanning 4096 counters is cheaper than sorting the occupied list.
        for (b, &c) in self.count.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let n = c as f32;
            let s = self.sums[b];
            pts.push(srgb_f32_to_lab([
                s[0] as f32 / n,
                s[1] as f32 / n,
                s[2] as f32 / n,
            ]));
            w.push(n);
        }
        (pts, w)
    }
}

/// One cluster: its mean CIELAB colour and its total weight (pixel count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cluster {
    pub lab: [f32; 3],
    pub weight: f64,
}

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and fully determined by its seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Fixed seed of the k-means++ initialisation: part of the output contract (determinism).
pub(crate) const SEED: u64 = 0x0D0F_1F7C_0105_2024;

/// Picks an index with probability proportional to `weights` (all ≥ 0, sum > 0).
fn pick(weights: &[f64], sum: f64, rng: &mut SplitMix64) -> usize {
    let target = rng.next_f64() * sum;
    let mut acc = 0.0;
    for (i, &w) in weights.iter().enumerate() {
        acc += w;
        if acc > target && w > 0.0 {
            return i;
        }
    }
    // Rounding left the target past the end: the last point with weight.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

/// Weighted k-means (Lloyd) in CIELAB with k-means++ seeding. Returns at most `k` non-empty
/// clusters (fewer when the data has fewer distinct colours), in no particular order.
pub(crate) fn kmeans(
    points: &[[f32; 3]],
    weights: &[f32],
    k: usize,
    max_iter: usize,
) -> Vec<Cluster> {
    let n = points.len();
    if n == 0 || k == 0 {
        return Vec::new();
    }
    let mut rng = SplitMix64(SEED);
    let w64: Vec<f64> = weights.iter().map(|&w| w as f64).collect();
    let wsum: f64 = w64.iter().sum();
    if wsum <= 0.0 {
        return Vec::new();
    }
    // k-means++: first centre by weight, then by weight × squared distance to the nearest centre.
    let mut centres: Vec<[f32; 3]> = Vec::with_capacity(k);
    centres.push(points[pick(&w64, wsum, &mut rng)]);
    let mut d2: Vec<f64> = points
        .iter()
        .map(|p| delta_e76_sq(*p, centres[0]) as f64)
        .collect();
    let mut score = vec![0.0f64; n];
    while centres.len() < k {
        let mut total = 0.0;
        for i in 0..n {
            score[i] = w64[i] * d2[i];
            total += score[i];
        }
        if total <= 1e-9 {
            break; // every point coincides with a centre: fewer distinct colours than k
        }
        let c = points[pick(&score, total, &mut rng)];
        centres.push(c);
        for (d, p) in d2.iter_mut().zip(points) {
            let nd = delta_e76_sq(*p, c) as f64;
            if nd < *d {
                *d = nd;
            }
        }
    }
    // Lloyd iterations.
    let kk = centres.len();
    let mut assign = vec![u8::MAX; n];
    let mut acc = vec![[0.0f64; 4]; kk];
    for _ in 0..max_iter {
        let mut changed = false;
        for (i, p) in points.iter().enumerate() {
            let mut best = 0usize;
            let mut bd = f32::INFINITY;
            for (j, c) in centres.iter().enumerate() {
                let d = delta_e76_sq(*p, *c);
                if d < bd {
                    bd = d;
                    best = j;
                }
            }
            if assign[i] != best as u8 {
                assign[i] = best as u8;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        accumulate(points, &w64, &assign, &mut acc);
        for (c, a) in centres.iter_mut().zip(&acc) {
            if a[3] > 0.0 {
                *c = [
                    (a[0] / a[3]) as f32,
                    (a[1] / a[3]) as f32,
                    (a[2] / a[3]) as f32,
                ];
            }
        }
    }
    accumulate(points, &w64, &assign, &mut acc);
    acc.iter()
        .filter(|a| a[3] > 0.0)
        .map(|a| Cluster {
            lab: [
                (a[0] / a[3]) as f32,
                (a[1] / a[3]) as f32,
                (a[2] / a[3]) as f32,
            ],
            weight: a[3],
        })
        .collect()
}

fn accumulate(points: &[[f32; 3]], w: &[f64], assign: &[u8], acc: &mut [[f64; 4]]) {
    for a in acc.iter_mut() {
        *a = [0.0; 4];
    }
    for ((p, &wi), &j) in points.iter().zip(w).zip(assign) {
        let a = &mut acc[j as usize];
        a[0] += p[0] as f64 * wi;
        a[1] += p[1] as f64 * wi;
        a[2] += p[2] as f64 * wi;
        a[3] += wi;
    }
}

/// Merges clusters closer than `threshold` (ΔE2000), closest pair first, into their
/// weight-averaged colour, until no pair is that close. Deterministic: ties go to the lowest
/// indices. The result is sorted by weight, heaviest first (ties by L\*, a\*, b\*).
pub(crate) fn merge_close(mut clusters: Vec<Cluster>, threshold: f32) -> Vec<Cluster> {
    loop {
        let mut best: Option<(usize, usize, f32)> = None;
        for i in 0..clusters.len() {
            for j in i + 1..clusters.len() {
                let d = delta_e2000(clusters[i].lab, clusters[j].lab);
                if d < threshold && best.is_none_or(|(_, _, bd)| d < bd) {
                    best = Some((i, j, d));
                }
            }
        }
        let Some((i, j, _)) = best else { break };
        let (a, b) = (clusters[i], clusters[j]);
        let w = a.weight + b.weight;
        let mix = |x: f32, y: f32| ((x as f64 * a.weight + y as f64 * b.weight) / w) as f32;
        clusters[i] = Cluster {
            lab: [
                mix(a.lab[0], b.lab[0]),
                mix(a.lab[1], b.lab[1]),
                mix(a.lab[2], b.lab[2]),
            ],
            weight: w,
        };
        clusters.remove(j);
    }
    sort_clusters(&mut clusters);
    clusters
}

/// Heaviest first; equal weights ordered by colour so the order never depends on input order.
pub(crate) fn sort_clusters(clusters: &mut [Cluster]) {
    clusters.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then(a.lab[0].total_cmp(&b.lab[0]))
            .then(a.lab[1].total_cmp(&b.lab[1]))
            .then(a.lab[2].total_cmp(&b.lab[2]))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colors::lab::srgb_to_lab;

    #[test]
    fn bins_split_channels_at_four_bits() {
        assert_eq!(bin_of(0, 0, 0), 0);
        assert_eq!(bin_of(255, 255, 255), 4095);
        assert_eq!(bin_of(16, 0, 0), 1 << 8);
        assert_eq!(bin_of(15, 15, 15), 0);
    }

    #[test]
    fn histogram_keeps_exact_means() {
        let mut h = Histogram::new();
        for px in [[2u8, 20, 30], [12, 22, 26], [200, 0, 0]] {
            h.add(bin_of(px[0], px[1], px[2]), &px);
        }
        let (pts, w) = h.points();
        assert_eq!(w, vec![2.0, 1.0]);
        let want = srgb_f32_to_lab([7.0, 21.0, 28.0]);
        assert!(delta_e76_sq(pts[0], want) < 1e-8);
        assert_eq!(h.total(), 3);
    }

    #[test]
    fn kmeans_recovers_separated_groups_with_their_weights() {
        let a = srgb_to_lab([200, 30, 30]);
        let b = srgb_to_lab([20, 40, 160]);
        let c = srgb_to_lab([240, 240, 240]);
        let pts = vec![a, b, c, a, b];
        let w = vec![30.0, 10.0, 5.0, 30.0, 10.0];
        let mut cl = kmeans(&pts, &w, 5, 20);
        sort_clusters(&mut cl);
        assert_eq!(cl.len(), 3, "only three distinct colours exist");
        assert_eq!(cl[0].weight, 60.0);
        assert_eq!(cl[1].weight, 20.0);
        assert_eq!(cl[2].weight, 5.0);
        assert!(delta_e76_sq(cl[0].lab, a) < 1e-6);
    }

    #[test]
    fn kmeans_is_deterministic() {
        let pts: Vec<[f32; 3]> = (0..500)
            .map(|i| {
                srgb_to_lab([
                    (i * 7 % 256) as u8,
                    (i * 13 % 256) as u8,
                    (i * 29 % 256) as u8,
                ])
            })
            .collect();
        let w: Vec<f32> = (0..500).map(|i| 1.0 + (i % 5) as f32).collect();
        assert_eq!(kmeans(&pts, &w, 6, 30), kmeans(&pts, &w, 6, 30));
    }

    #[test]
    fn merging_joins_only_close_clusters() {
        let c = |lab: [f32; 3], weight: f64| Cluster { lab, weight };
        let out = merge_close(
            vec![
                c([50.0, 10.0, 10.0], 1.0),
                c([51.0, 10.0, 10.0], 3.0),
                c([80.0, -20.0, 40.0], 2.0),
            ],
            3.0,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].weight, 4.0);
        assert!((out[0].lab[0] - 50.75).abs() < 1e-5);
        assert_eq!(out[1].weight, 2.0);
    }
}
