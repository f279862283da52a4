//! The background model used when no product mask is available.
//!
//! Product photos are shot on a floor, a wall, a bed sheet or a studio sweep that fills the
//! frame's edges, and the product sits inside it. So:
//!
//! 1. **Border colours.** The outer band of the image (width `max(2, short side / 32)` pixels)
//!    is histogrammed and clustered in CIELAB (k-means, k = 4, clusters closer than ΔE2000 4
//!    merged). Clusters holding at least 15% of the band are background colours; smaller
//!    ones are usually the product touching the edge and are ignored.
//! 2. **Likeness.** A pixel is background-like when its distance to some background colour is
//!    below that colour's tolerance. The distance is Euclidean in CIELAB with the lightness
//!    difference weighted by 0.7, so soft shadows (same hue, a bit darker) stay background; the
//!    tolerance is three times the colour's RMS spread in the band (textured floors spread
//!    more), clamped to 10..=18. Likeness is decided once per 15-bit RGB bin.
//! 3. **Connectivity.** Background is what is background-like *and* 4-connected to the image
//!    edge (flood fill from the outermost ring). A white print inside a dress on a white sheet
//!    stays product because the dress surrounds it.
//! 4. **Specks.** Product components smaller than 2% of the largest one (a crumb, a knot in a
//!    floorboard) are returned to the background.
//!
//! Transparent pixels are background whatever their colour and let the flood pass.

use super::kmeans::{bin_of, kmeans, merge_close, Histogram};
use super::lab::bin_center_lab;

/// Pixel labels produced by the segmentation.
pub(crate) const BG: u8 = 0;
pub(crate) const PRODUCT: u8 = 1;
/// Transparent pixel (alpha < 128): background, and it has no colour to report.
pub(crate) const CLEAR: u8 = 2;

const LIGHTNESS_WEIGHT: f32 = 0.7;
const MIN_BAND_SHARE: f64 = 0.15;
const BORDER_K: usize = 4;
const TOL_MIN: f32 = 10.0;
const TOL_MAX: f32 = 18.0;
const SPECK_FRACTION: f64 = 0.02;

#[inline]
fn weighted_d2(p: [f32; 3], q: [f32; 3]) -> f32 {
    let dl = (p[0] - q[0]) * LIGHTNESS_WEIGHT;
    let da = p[1] - q[1];
    let db = p[2] - q[2];
    dl * dl + da * da + db * db
}

/// Labels every pixel BG / PRODUCT / CLEAR from the image border (see the module docs).
/// `labels` holds CLEAR for transparent pixels and PRODUCT elsewhere on entry.
pub(crate) fn segment_by_border(w: usize, h: usize, rgb: &[u8], labels: &mut [u8]) {
    let band = (w.min(h) / 32).max(2).min(w.min(h));
    // 1. Border colours.
    let mut hist = Histogram::new();
    for y in 0..h {
        let in_band_row = y < band || y >= h - band;
        for x in 0..w {
            if in_band_row || x < band || x >= w - band {
                let i = y * w + x;
                if labels[i] != CLEAR {
                    let px = &rgb[i * 3..i * 3 + 3];
                    hist.add(bin_of(px[0], px[1], px[2]), px);
                }
            }
        }
    }
    let band_total = hist.total() as f64;
    if band_total == 0.0 {
        return; // the whole border is transparent: nothing to learn, keep labels
    }
    let (pts, wts) = hist.points();
    let clusters = merge_close(kmeans(&pts, &wts, BORDER_K, 25), 4.0);
    let bg: Vec<[f32; 3]> = clusters
        .iter()
        .filter(|c| c.weight / band_total >= MIN_BAND_SHARE)
        .map(|c| c.lab)
        .collect();
    if bg.is_empty() {
        return;
    }
    // Spread of the band around each background colour → tolerance.
    let mut spread = vec![(0.0f64, 0.0f64); bg.len()];
    for (p, &wt) in pts.iter().zip(&wts) {
        let (j, d) = nearest(&bg, *p);
        spread[j].0 += d as f64 * wt as f64;
        spread[j].1 += wt as f64;
    }
    let tol2: Vec<f32> = spread
        .iter()
        .map(|&(s, n)| {
            let rms = if n > 0.0 { (s / n).sqrt() as f32 } else { 0.0 };
            let t = (3.0 * rms).clamp(TOL_MIN, TOL_MAX);
            t * t
        })
        .collect();
    // 2. Likeness per 15-bit bin, decided lazily (0 = no, 1 = yes, 2 = not yet known), written
    // into a per-pixel plane: 1 = passable (background-like or clear), 0 = not.
    let centres = bin_center_lab();
    let mut like = vec![2u8; 1 << 15];
    let mut pass: Vec<u8> = labels
        .iter()
        .zip(rgb.chunks_exact(3))
        .map(|(&l, px)| {
            if l == CLEAR {
                return 1;
            }
            let b = ((px[0] as usize >> 3) << 10)
                | ((px[1] as usize >> 3) << 5)
                | (px[2] as usize >> 3);
            if like[b] == 2 {
                let lab = centres[b];
                like[b] = bg
                    .iter()
                    .zip(&tol2)
                    .any(|(c, &t2)| weighted_d2(lab, *c) < t2) as u8;
            }
            like[b]
        })
        .collect();
    // 3. Flood fill from the outer ring through passable pixels (visited = 2).
    let mut stack: Vec<(u32, u32)> = Vec::with_capacity(4 * (w + h));
    let seed = |x: usize, y: usize, pass: &mut [u8], stack: &mut Vec<(u32, u32)>| {
        let i = y * w + x;
        if pass[i] == 1 {
            pass[i] = 2;
            stack.push((x as u32, y as u32));
        }
    };
    for x in 0..w {
        seed(x, 0, &mut pass, &mut stack);
        seed(x, h - 1, &mut pass, &mut stack);
    }
    for y in 0..h {
        seed(0, y, &mut pass, &mut stack);
        seed(w - 1, y, &mut pass, &mut stack);
    }
    while let Some((x, y)) = stack.pop() {
        let (x, y) = (x as usize, y as usize);
        let i = y * w + x;
        if x > 0 && pass[i - 1] == 1 {
            pass[i - 1] = 2;
            stack.push((x as u32 - 1, y as u32));
        }
        if x + 1 < w && pass[i + 1] == 1 {
            pass[i + 1] = 2;
            stack.push((x as u32 + 1, y as u32));
        }
        if y > 0 && pass[i - w] == 1 {
            pass[i - w] = 2;
            stack.push((x as u32, y as u32 - 1));
        }
        if y + 1 < h && pass[i + w] == 1 {
            pass[i + w] = 2;
            stack.push((x as u32, y as u32 + 1));
        }
    }
    for (l, &p) in labels.iter_mut().zip(&pass) {
        if p == 2 && *l == PRODUCT {
            *l = BG;
        }
    }
    // 4. Specks.
    remove_specks(w, h, labels);
}

fn nearest(cs: &[[f32; 3]], p: [f32; 3]) -> (usize, f32) {
    let mut best = (0, f32::INFINITY);
    for (j, c) in cs.iter().enumerate() {
        let d = weighted_d2(p, *c);
        if d < best.1 {
            best = (j, d);
        }
    }
    best
}

/// Returns product components smaller than [`SPECK_FRACTION`] of the largest to background.
fn remove_specks(w: usize, h: usize, labels: &mut [u8]) {
    let n = w * h;
    let mut comp = vec![u32::MAX; n];
    let mut sizes: Vec<u32> = Vec::new();
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for s in 0..n {
        if labels[s] != PRODUCT || comp[s] != u32::MAX {
            continue;
        }
        let id = sizes.len() as u32;
        let mut size = 0u32;
        comp[s] = id;
        stack.push((s % w, s / w));
        while let Some((x, y)) = stack.pop() {
            size += 1;
            let i = y * w + x;
            let mut go = |j: usize, x: usize, y: usize| {
                if labels[j] == PRODUCT && comp[j] == u32::MAX {
                    comp[j] = id;
                    stack.push((x, y));
                }
            };
            if x > 0 {
                go(i - 1, x - 1, y);
            }
            if x + 1 < w {
                go(i + 1, x + 1, y);
            }
            if y > 0 {
                go(i - w, x, y - 1);
            }
            if y + 1 < h {
                go(i + w, x, y + 1);
            }
        }
        sizes.push(size);
    }
    let Some(&largest) = sizes.iter().max() else {
        return;
    };
    let min = (largest as f64 * SPECK_FRACTION).ceil() as u32;
    for (l, &c) in labels.iter_mut().zip(&comp) {
        if c != u32::MAX && sizes[c as usize] < min {
            *l = BG;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: usize, h: usize, f: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&f(x, y));
            }
        }
        v
    }

    #[test]
    fn a_centred_square_on_a_plain_wall_is_the_product() {
        let (w, h) = (64, 48);
        let rgb = image(w, h, |x, y| {
            if (16..48).contains(&x) && (12..36).contains(&y) {
                [30, 40, 150]
            } else {
                [235, 232, 225]
            }
        });
        let mut labels = vec![PRODUCT; w * h];
        segment_by_border(w, h, &rgb, &mut labels);
        for y in 0..h {
            for x in 0..w {
                let inside = (16..48).contains(&x) && (12..36).contains(&y);
                assert_eq!(labels[y * w + x] == PRODUCT, inside, "({x},{y})");
            }
        }
    }

    #[test]
    fn enclosed_background_coloured_print_stays_product_and_specks_go() {
        let (w, h) = (60, 60);
        let rgb = image(w, h, |x, y| {
            if (25..35).contains(&x) && (25..35).contains(&y) {
                [240, 240, 240] // white print inside the garment
            } else if (10..50).contains(&x) && (10..50).contains(&y) {
                [150, 20, 30]
            } else if (x, y) == (3, 55) {
                [10, 10, 10] // a speck on the wall, away from the ring
            } else {
                [240, 240, 240]
            }
        });
        let mut labels = vec![PRODUCT; w * h];
        segment_by_border(w, h, &rgb, &mut labels);
        assert_eq!(labels[30 * w + 30], PRODUCT);
        assert_eq!(labels[55 * w + 3], BG);
        assert_eq!(labels[5 * w + 5], BG);
        assert_eq!(labels.iter().filter(|&&l| l == PRODUCT).count(), 40 * 40);
    }

    #[test]
    fn soft_shadow_is_background() {
        let (w, h) = (64, 64);
        let rgb = image(w, h, |x, y| {
            if (20..44).contains(&x) && (20..44).contains(&y) {
                [20, 120, 40]
            } else if (44..50).contains(&x) && (24..48).contains(&y) {
                [205, 203, 198] // shadow: same wall, ~12 L* darker
            } else {
                [240, 238, 232]
            }
        });
        let mut labels = vec![PRODUCT; w * h];
        segment_by_border(w, h, &rgb, &mut labels);
        assert_eq!(labels[30 * w + 46], BG);
        assert_eq!(labels.iter().filter(|&&l| l == PRODUCT).count(), 24 * 24);
    }
}
