//! Image quality score, as in the hosted `embed` operation: `overall`, `sharpness`,
//! `brightness` and `composition`, each in 0..1 (higher is better).
//!
//! Every score is a closed-form statistic of the working image (and of the product mask when
//! one is given), so it is cheap, deterministic and explainable. All luminance values are
//! Rec. 709 luma of the sRGB bytes, `Y = (0.2126 R + 0.7152 G + 0.0722 B) / 255` in 0..1.
//! The constants are calibrated on working images with a long side of about 256 px (the
//! size the pipeline computes whole-image statistics on) and the 40 committed real product
//! photos (`tests/assets/clothing`), which score: sharpness 0.13–0.89 (median ≈ 0.53; the
//! low ones are visibly soft), brightness 0.90–1.00, composition without a mask 0.74–0.96,
//! overall 0.60–0.93. A Gaussian blur of σ = 2 px takes sharpness to ≈ 0.02; darkening to
//! 40% takes brightness to ≈ 0.4–0.65.
//!
//! * **Sharpness** — variance of the Laplacian (Pech-Pacheco et al. 2000, the classic
//!   "is this photo blurry" measure): `L = Y(x−1,y) + Y(x+1,y) + Y(x,y−1) + Y(x,y+1) − 4·Y(x,y)`
//!   on luma in 0..255 over interior pixels, `v = Var(L)`, and
//!   `sharpness = v / (v + 300)`. Blur removes high frequencies, so `v` drops; 300 is the
//!   variance at which a 256-px photo reads as half sharp (the committed photos range from
//!   ~40, visibly soft, to ~2400, crisp). Images smaller than 3×3 score 0.
//! * **Brightness** — luminance against a target band, plus use of the highlights:
//!   `μ` = mean luma of the product pixels (mask coverage ≥ 50%; the whole image when there
//!   is no mask or it selects under 1% of the pixels), `h` = 98th percentile of luma over
//!   the whole image, `exposure = μ/0.4` below 0.4, `1` in `[0.4, 0.7]`, `(1−μ)/0.3` above
//!   0.7, and `brightness = 0.7·exposure + 0.3·min(1, h/0.9)`. The band is where a
//!   correctly exposed product sits; the highlight term separates a dim photo from a
//!   well-exposed dark product (whose photo still has a white point). A genuinely black
//!   product on a black background scores lower — this measures exposure, not colour.
//! * **Composition** — product framing from the silhouette: with weights `w` per pixel
//!   (mask coverage / 255), `centring = 1 − d/√2` where `d` is the distance of the weighted
//!   centroid from the image centre in half-extents (`d = √(dx² + dy²)`, `dx = |cx − ½|/½`),
//!   `fill = min(1, s/0.2)` where `s` is the area of the product's bounding box over the
//!   image area (a product under a fifth of the frame is too small), `margin =
//!   max(0, 1 − 4·b)` where `b` is the share of the 2-px image border covered by the product
//!   (a product cut off by the frame touches the border), and
//!   `composition = centring · fill · margin`. Without a mask, the alpha plane is the mask
//!   when the image has one with some transparency; otherwise the fallback uses gradient energy
//!   `w = |Y(x+1,y) − Y(x,y)| + |Y(x,y+1) − Y(x,y)|` (products carry the edges and texture
//!   of a photo, plain backgrounds do not): the centroid is the energy centroid, the box
//!   spans the 5th–95th percentiles of the energy's x and y marginals, and `b` is the share
//!   of energy within 2 px of the border. A mask with no product scores 0.
//! * **Overall** — `0.4·sharpness + 0.3·brightness + 0.3·composition`: blur is the defect
//!   that most hurts embeddings and shoppers alike, so it weighs most.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::raster::{Mask, WorkingImage};

/// Quality of one product photo; every field is in 0..1, higher is better. See the module
/// docs for the formulas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityScore {
    /// `0.4·sharpness + 0.3·brightness + 0.3·composition`.
    pub overall: f32,
    /// `v / (v + 300)` for the variance `v` of the luma Laplacian.
    pub sharpness: f32,
    /// `0.7·exposure(mean product luma) + 0.3·min(1, p98 luma / 0.9)`.
    pub brightness: f32,
    /// `centring · fill · margin` of the product silhouette.
    pub composition: f32,
}

/// Laplacian variance at which sharpness is 0.5.
const SHARPNESS_HALF: f64 = 300.0;
/// Border band width (px) for the margin term.
const BORDER: usize = 2;

/// Scores a working image. `mask` (same size as the image) is the product silhouette; when
/// absent, the image's alpha plane is used if present, else a gradient-energy fallback for
/// composition. `invalid_parameter` if the mask size differs from the image's.
///
/// ```
/// use dupify_core::{quality_score, Mask, WorkingImage};
///
/// // A flat grey 64x64 photo with a centred 32x32 product mask.
/// let img = WorkingImage::new(64, 64, vec![140; 64 * 64 * 3], None)?;
/// let mut data = vec![0u8; 64 * 64];
/// for y in 16..48 {
///     data[y * 64 + 16..y * 64 + 48].fill(255);
/// }
/// let q = quality_score(&img, Some(&Mask::new(64, 64, data)?))?;
/// assert_eq!(q.sharpness, 0.0); // no detail at all
/// assert!((q.composition - 1.0).abs() < 1e-6); // centred, a quarter of the frame
/// # Ok::<(), dupify_core::Error>(())
/// ```
pub fn quality_score(image: &WorkingImage, mask: Option<&Mask>) -> Result<QualityScore> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if let Some(m) = mask {
        if m.width as usize != w || m.height as usize != h || m.data.len() != w * h {
            return Err(Error::invalid(
                "mask",
                format!("mask is {}x{}, the image is {w}x{h}", m.width, m.height),
            ));
        }
    }
    // An alpha plane is a silhouette only if it marks something as transparent; a fully
    // opaque one says nothing about where the product is.
    let alpha = image.alpha().filter(|a| a.iter().any(|&v| v != 255));
    let weights: Option<&[u8]> = mask.map(|m| m.data.as_slice()).or(alpha);
    let luma: Vec<f32> = image
        .rgb()
        .chunks_exact(3)
        .map(|p| {
            (0.2126 * f32::from(p[0]) + 0.7152 * f32::from(p[1]) + 0.0722 * f32::from(p[2])) / 255.0
        })
        .collect();

    let sharpness = sharpness(&luma, w, h);
    let brightness = brightness(&luma, weights);
    let composition = match weights {
        Some(wts) => {
            let f: Vec<f32> = wts.iter().map(|&v| f32::from(v) / 255.0).collect();
            composition(&f, w, h, true)
        }
        None => composition(&gradient_energy(&luma, w, h), w, h, false),
    };
    let overall = 0.4 * sharpness + 0.3 * brightness + 0.3 * composition;
    Ok(QualityScore {
        overall: overall.clamp(0.0, 1.0),
        sharpness,
        brightness,
        composition,
    })
}

fn sharpness(luma: &[f32], w: usize, h: usize) -> f32 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (mut sum, mut sum2, mut n) = (0f64, 0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            let l = 255.0
                * f64::from(luma[i - 1] + luma[i + 1] + luma[i - w] + luma[i + w] - 4.0 * luma[i]);
            sum += l;
            sum2 += l * l;
            n += 1.0;
        }
    }
    let mean = sum / n;
    let var = (sum2 / n - mean * mean).max(0.0);
    (var / (var + SHARPNESS_HALF)) as f32
}

fn brightness(luma: &[f32], mask: Option<&[u8]>) -> f32 {
    let whole_mean = || luma.iter().map(|&y| f64::from(y)).sum::<f64>() / luma.len() as f64;
    let mu = match mask {
        Some(m) => {
            let (s, n) = luma
                .iter()
                .zip(m)
                .filter(|(_, &c)| c >= 128)
                .fold((0f64, 0usize), |(s, n), (&y, _)| (s + f64::from(y), n + 1));
            if n * 100 >= luma.len() {
                s / n as f64
            } else {
                whole_mean()
            }
        }
        None => whole_mean(),
    };
    let exposure = if mu < 0.4 {
        mu / 0.4
    } else if mu <= 0.7 {
        1.0
    } else {
        (1.0 - mu) / 0.3
    };
    // 98th percentile through a 256-bin histogram (exact at byte resolution).
    let mut hist = [0usize; 256];
    for &y in luma {
        hist[(y * 255.0).round().clamp(0.0, 255.0) as usize] += 1;
    }
    let target = (0.98 * luma.len() as f64).ceil() as usize;
    let mut acc = 0;
    let mut p98 = 255;
    for (v, &c) in hist.iter().enumerate() {
        acc += c;
        if acc >= target {
            p98 = v;
            break;
        }
    }
    let highlights = (p98 as f64 / 255.0 / 0.9).min(1.0);
    (0.7 * exposure + 0.3 * highlights).clamp(0.0, 1.0) as f32
}

fn gradient_energy(luma: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut e = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let gx = if x + 1 < w {
                (luma[i + 1] - luma[i]).abs()
            } else {
                0.0
            };
            let gy = if y + 1 < h {
                (luma[i + w] - luma[i]).abs()
            } else {
                0.0
            };
            e[i] = gx + gy;
        }
    }
    e
}

/// `centring · fill · margin` for per-pixel product weights `wts` (see module docs).
/// `is_mask`: the box is the bounding box of coverage ≥ 50%; otherwise the 5–95%
/// percentile box of the weights' marginals.
fn composition(wts: &[f32], w: usize, h: usize, is_mask: bool) -> f32 {
    let total: f64 = wts.iter().map(|&v| f64::from(v)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let (mut col, mut row) = (vec![0f64; w], vec![0f64; h]);
    let (mut sx, mut sy, mut border) = (0f64, 0f64, 0f64);
    for y in 0..h {
        for x in 0..w {
            let v = f64::from(wts[y * w + x]);
            col[x] += v;
            row[y] += v;
            sx += v * (x as f64 + 0.5);
            sy += v * (y as f64 + 0.5);
            let in_band = x < BORDER || y < BORDER || x + BORDER >= w || y + BORDER >= h;
            if in_band && (!is_mask || v >= 0.5) {
                border += if is_mask { 1.0 } else { v };
            }
        }
    }
    let (cx, cy) = (sx / total / w as f64, sy / total / h as f64);
    let d = (((cx - 0.5) / 0.5).powi(2) + ((cy - 0.5) / 0.5).powi(2)).sqrt();
    let centring = (1.0 - d / std::f64::consts::SQRT_2).max(0.0);

    let (x0, x1, y0, y1) = if is_mask {
        let mut bb: Option<(usize, usize, usize, usize)> = None;
        for y in 0..h {
            for x in 0..w {
                if wts[y * w + x] >= 0.5 {
                    bb = Some(match bb {
                        None => (x, x, y, y),
                        Some((a, b, c, d)) => (a.min(x), b.max(x), c.min(y), d.max(y)),
                    });
                }
            }
        }
        match bb {
            Some(b) => b,
            None => return 0.0,
        }
    } else {
        let (a, b) = percentile_span(&col, total);
        let (c, d) = percentile_span(&row, total);
        (a, b, c, d)
    };
    let s = ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64 / (w * h) as f64;
    let fill = (s / 0.2).min(1.0);

    let border_share = if is_mask {
        let band_px = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| x < BORDER || y < BORDER || x + BORDER >= w || y + BORDER >= h)
            .count();
        border / band_px as f64
    } else {
        border / total
    };
    let margin = (1.0 - 4.0 * border_share).max(0.0);
    (centring * fill * margin).clamp(0.0, 1.0) as f32
}

/// Indices of the 5th and 95th percentiles of a marginal distribution.
fn percentile_span(marginal: &[f64], total: f64) -> (usize, usize) {
    let (mut lo, mut hi) = (0, marginal.len() - 1);
    let mut acc = 0.0;
    let mut found_lo = false;
    for (i, &m) in marginal.iter().enumerate() {
        acc += m;
        if !found_lo && acc >= 0.05 * total {
            lo = i;
            found_lo = true;
        }
        if acc >= 0.95 * total {
            hi = i;
            break;
        }
    }
    (lo, hi.max(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(w: u32, h: u32, v: u8) -> WorkingImage {
        WorkingImage::new(w, h, vec![v; (w * h * 3) as usize], None).unwrap()
    }

    #[test]
    fn flat_grey_has_hand_computed_scores() {
        // Luma of (140,140,140) is 140/255 = 0.549: inside the exposure band (1.0), p98 is
        // 140/255, so highlights = 0.549/0.9 = 0.6100 and brightness = 0.7 + 0.3·0.6100.
        let q = quality_score(&gray(40, 30, 140), None).unwrap();
        let expected_b = 0.7 + 0.3 * (140.0 / 255.0 / 0.9);
        assert!((q.brightness - expected_b).abs() < 1e-5, "{q:?}");
        // No texture at all: Laplacian variance 0, no gradient energy → no product found.
        assert_eq!(q.sharpness, 0.0);
        assert_eq!(q.composition, 0.0);
        assert!((q.overall - 0.3 * expected_b).abs() < 1e-5);
    }

    #[test]
    fn centred_square_mask_scores_full_composition() {
        // 100x100 image, product = 50x50 square centred: centroid at the centre
        // (centring 1), box 25% of the frame (fill 1), no border contact (margin 1).
        let img = gray(100, 100, 128);
        let mut data = vec![0u8; 100 * 100];
        for y in 25..75 {
            for x in 25..75 {
                data[y * 100 + x] = 255;
            }
        }
        let m = Mask::new(100, 100, data).unwrap();
        let q = quality_score(&img, Some(&m)).unwrap();
        assert!((q.composition - 1.0).abs() < 1e-6, "{q:?}");
        // Same square in the top-left corner (0..50): centroid (0.25, 0.25) → d = √0.5,
        // centring = 1 − √0.5/√2 = 0.5; it touches 2 sides over 50 px each: the 2-px band
        // has 4·2·100 − 4·4 = 784 pixels, covered: 2·(2·50) − 4 = 196 → b = 0.25 → margin 0.
        let mut data = vec![0u8; 100 * 100];
        for y in 0..50 {
            for x in 0..50 {
                data[y * 100 + x] = 255;
            }
        }
        let m = Mask::new(100, 100, data).unwrap();
        let q = quality_score(&img, Some(&m)).unwrap();
        assert_eq!(q.composition, 0.0, "{q:?}");
    }

    #[test]
    fn opaque_alpha_is_not_a_silhouette() {
        // A 3x3 black square on white, centred in 9x9: no mask and an all-opaque alpha plane
        // must give the same (gradient-fallback) score.
        let mut rgb = vec![255u8; 9 * 9 * 3];
        for y in 3..6 {
            for x in 3..6 {
                let i = (y * 9 + x) * 3;
                rgb[i..i + 3].fill(0);
            }
        }
        let plain = WorkingImage::new(9, 9, rgb.clone(), None).unwrap();
        let opaque = WorkingImage::new(9, 9, rgb, Some(vec![255; 81])).unwrap();
        let (a, b) = (
            quality_score(&plain, None).unwrap(),
            quality_score(&opaque, None).unwrap(),
        );
        assert_eq!(a, b);
        assert!(a.composition > 0.0);
    }

    #[test]
    fn mismatched_mask_is_invalid_parameter() {
        let m = Mask::new(3, 3, vec![0; 9]).unwrap();
        let e = quality_score(&gray(4, 4, 10), Some(&m)).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
    }

    #[test]
    fn dark_photo_scores_low_brightness() {
        // Luma 0.1: exposure 0.25, highlights 0.1/0.9 → 0.7·0.25 + 0.3·0.111 = 0.2083.
        let v = (0.1f32 * 255.0).round() as u8; // 26 → 0.10196
        let y = f64::from(v) / 255.0;
        let q = quality_score(&gray(10, 10, v), None).unwrap();
        let expected = 0.7 * (y / 0.4) + 0.3 * (y / 0.9);
        assert!((f64::from(q.brightness) - expected).abs() < 1e-5, "{q:?}");
    }
}
