//! Shape embedding of a foreground mask: fixed length ([`SHAPE_EMBEDDING_DIM`]),
//! L2-normalised, compared by cosine ([`shape_cosine`]).
//!
//! Invariances, and how each is obtained:
//! - **translation**: every block is measured relative to the mask's centroid or its own
//!   contour/moments;
//! - **scale**: lengths are divided by the radius of gyration `s = sqrt((μ20 + μ02) / area)`
//!   (a second-moment quantity, so a few stray pixels barely move it, unlike a bounding box);
//!   moments are the scale-normalised η's;
//! - **horizontal mirroring** (garments are photographed facing either way): the grid block
//!   is averaged with its mirror image, the radial profile is stored as sums and absolute
//!   differences of mirror-paired angle bins, Fourier magnitudes are paired `|c_k| + |c_-k|`,
//!   Hu's 7th moment (the one that flips sign) is taken in absolute value, and `|μ11|` is used.
//!
//! Orientation is deliberately **not** factored out: products are photographed upright, and
//! "tall and narrow" (trousers) versus "wide and short" (shoes) is the most useful cue.
//!
//! Layout (each block is L2-normalised, multiplied by its weight, then the whole vector is
//! L2-normalised):
//!
//! | offset | len | block | weight |
//! |---|---|---|---|
//! | 0 | 128 | low-res mask: 16×16 coverage grid centred on the centroid, half-width `2.5 s`, mirror-averaged, left 8 columns kept | 0.55 |
//! | 128 | 32 | radial profile: max radius / `s` in 32 angle bins, 16 mirror-pair sums + 16 mirror-pair differences | 0.45 |
//! | 160 | 15 | contour Fourier descriptors: outer contour of the largest component resampled to 64 points, `(|c_k| + |c_-k|) / (|c_1| + |c_-1|)`, k = 2..16 | 0.30 |
//! | 175 | 7 | Hu moments, root-scaled (`sign(h)·|h|^(1/p)`) so they share a range, `|h7|` | 0.35 |
//! | 182 | 10 | global geometry: log bbox aspect, extent, solidity, elongation, vertical-spread share, `|μ11|` share, centroid height in the box, extra components, width profile top/bottom | 0.50 |
//!
//! Total: 192.
//!
//! Before measuring, components under 20% of the largest are dropped and holes filled, so
//! specks and pinholes in a noisy mask do not move the bounding box or extreme radii.
//!
//! A mask with fewer than [`MIN_SHAPE_PIXELS`] foreground pixels has no meaningful shape and
//! gives [`Error::InvalidParameter`] (`name = "mask"`).

use crate::error::{Error, Result};
use crate::raster::Mask;

use super::morphology;

/// Length of [`shape_embedding`]'s output.
pub const SHAPE_EMBEDDING_DIM: usize = 192;

/// Fewest foreground pixels (coverage ≥ 50%) a mask needs for a shape embedding.
pub const MIN_SHAPE_PIXELS: usize = 32;

/// Components smaller than this fraction of the largest are ignored.
const MIN_COMPONENT_RATIO: f32 = 0.2;

const GRID: usize = 16;
const GRID_HALF_WIDTH: f32 = 2.5;
const ANGLE_BINS: usize = 32;
const CONTOUR_POINTS: usize = 64;
const FOURIER_MAX_K: usize = 16;

const W_GRID: f32 = 0.55;
const W_RADIAL: f32 = 0.45;
const W_FOURIER: f32 = 0.30;
const W_HU: f32 = 0.35;
const W_GEOMETRY: f32 = 0.50;

/// Cosine similarity of two shape embeddings (they are unit length, so this is their dot
/// product; a length mismatch gives 0).
pub fn shape_cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The shape embedding of `mask` (see the module docs for the construction).
pub fn shape_embedding(mask: &Mask) -> Result<Vec<f32>> {
    let (w, h) = (mask.width as usize, mask.height as usize);
    if w == 0 || h == 0 || mask.data.len() != w * h {
        return Err(Error::invalid(
            "mask",
            format!(
                "mask is {}x{} with {} bytes; it must be non-empty and width*height bytes",
                mask.width,
                mask.height,
                mask.data.len()
            ),
        ));
    }
    let raw: Vec<bool> = mask.data.iter().map(|&v| v >= 128).collect();
    // Specks and pinholes say nothing about the shape but move the bounding box, the
    // extreme radii and the component count: drop components under 20% of the largest and
    // fill holes first (a no-op on a segmenter's cleaned mask).
    let fg = morphology::fill_holes(
        &morphology::keep_significant_components(&raw, w, h, MIN_COMPONENT_RATIO),
        w,
        h,
    );
    let area = fg.iter().filter(|&&f| f).count();
    if area < MIN_SHAPE_PIXELS {
        return Err(Error::invalid(
            "mask",
            format!(
                "mask has {area} foreground pixels; a shape embedding needs at least \
                 {MIN_SHAPE_PIXELS}"
            ),
        ));
    }

    let m = Moments::of(&fg, w);
    let s = m.gyration_radius().max(0.5);

    let mut out = Vec::with_capacity(SHAPE_EMBEDDING_DIM);
    push_block(&mut out, grid_block(&fg, w, &m, s), W_GRID);
    push_block(&mut out, radial_block(&fg, w, &m, s), W_RADIAL);
    let largest = morphology::largest_component(&fg, w, h);
    let contour = morphology::trace_outer_contour(&largest, w, h);
    push_block(&mut out, fourier_block(&contour), W_FOURIER);
    push_block(&mut out, hu_block(&m), W_HU);
    push_block(
        &mut out,
        geometry_block(&fg, &largest, &contour, w, h, &m),
        W_GEOMETRY,
    );
    debug_assert_eq!(out.len(), SHAPE_EMBEDDING_DIM);
    normalise(&mut out);
    Ok(out)
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 1e-12 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

fn push_block(out: &mut Vec<f32>, mut block: Vec<f32>, weight: f32) {
    normalise(&mut block);
    out.extend(block.into_iter().map(|x| x * weight));
}

/// Raw and central moments up to order 3, pixel centres at `(x + 0.5, y + 0.5)`.
struct Moments {
    n: f64,
    cx: f64,
    cy: f64,
    mu: [[f64; 4]; 4], // mu[p][q]
}

impl Moments {
    fn of(fg: &[bool], w: usize) -> Self {
        let (mut n, mut sx, mut sy) = (0f64, 0f64, 0f64);
        for (i, _) in fg.iter().enumerate().filter(|(_, &f)| f) {
            n += 1.0;
            sx += (i % w) as f64 + 0.5;
            sy += (i / w) as f64 + 0.5;
        }
        let (cx, cy) = (sx / n, sy / n);
        let mut mu = [[0f64; 4]; 4];
        for (i, _) in fg.iter().enumerate().filter(|(_, &f)| f) {
            let dx = (i % w) as f64 + 0.5 - cx;
            let dy = (i / w) as f64 + 0.5 - cy;
            let xp = [1.0, dx, dx * dx, dx * dx * dx];
            let yp = [1.0, dy, dy * dy, dy * dy * dy];
            for p in 0..4 {
                for q in 0..4 - p {
                    mu[p][q] += xp[p] * yp[q];
                }
            }
        }
        Self { n, cx, cy, mu }
    }

    fn gyration_radius(&self) -> f32 {
        ((self.mu[2][0] + self.mu[0][2]) / self.n).sqrt() as f32
    }

    /// Scale-normalised central moment η_pq.
    fn eta(&self, p: usize, q: usize) -> f64 {
        self.mu[p][q] / self.n.powf(1.0 + (p + q) as f64 / 2.0)
    }
}

/// 16×16 coverage grid centred on the centroid, mirror-averaged; left half kept.
fn grid_block(fg: &[bool], w: usize, m: &Moments, s: f32) -> Vec<f32> {
    let half = GRID_HALF_WIDTH * s;
    let cell = 2.0 * half / GRID as f32;
    let mut acc = vec![0f32; GRID * GRID];
    for (i, _) in fg.iter().enumerate().filter(|(_, &f)| f) {
        let px = (i % w) as f32 + 0.5 - m.cx as f32;
        let py = (i / w) as f32 + 0.5 - m.cy as f32;
        let gx = (px + half) / cell - 0.5;
        let gy = (py + half) / cell - 0.5;
        let (x0, y0) = (gx.floor(), gy.floor());
        let (fx, fy) = (gx - x0, gy - y0);
        for (dx, wx) in [(0i32, 1.0 - fx), (1, fx)] {
            for (dy, wy) in [(0i32, 1.0 - fy), (1, fy)] {
                let (cx, cy) = (x0 as i32 + dx, y0 as i32 + dy);
                if cx >= 0 && cy >= 0 && (cx as usize) < GRID && (cy as usize) < GRID {
                    acc[cy as usize * GRID + cx as usize] += wx * wy;
                }
            }
        }
    }
    let cell_area = cell * cell;
    let mut out = Vec::with_capacity(GRID * GRID / 2);
    for y in 0..GRID {
        for x in 0..GRID / 2 {
            let a = acc[y * GRID + x] / cell_area;
            let b = acc[y * GRID + GRID - 1 - x] / cell_area;
            out.push(((a + b) / 2.0).min(1.0));
        }
    }
    out
}

/// Max radius / s per angle bin, as mirror-pair sums and absolute differences.
fn radial_block(fg: &[bool], w: usize, m: &Moments, s: f32) -> Vec<f32> {
    let mut rmax = [0f32; ANGLE_BINS];
    for (i, _) in fg.iter().enumerate().filter(|(_, &f)| f) {
        let dx = (i % w) as f32 + 0.5 - m.cx as f32;
        let dy = (i / w) as f32 + 0.5 - m.cy as f32;
        // The pixel's far edge: + half a pixel, so a 1-pixel-wide spoke has radius > 0.
        let r = (dx * dx + dy * dy).sqrt() + 0.5;
        let u = (dy.atan2(dx) + std::f32::consts::PI) / std::f32::consts::TAU * ANGLE_BINS as f32;
        let b = (u as usize).min(ANGLE_BINS - 1);
        rmax[b] = rmax[b].max(r / s);
    }
    // Mirroring x ↦ -x maps bin b to bin (47 - b) mod 32 (θ ↦ π - θ).
    let mut sums = Vec::with_capacity(ANGLE_BINS / 2);
    let mut diffs = Vec::with_capacity(ANGLE_BINS / 2);
    for b in 0..ANGLE_BINS {
        let p = (ANGLE_BINS + ANGLE_BINS / 2 - 1 - b) % ANGLE_BINS;
        if b < p {
            sums.push(rmax[b] + rmax[p]);
            diffs.push((rmax[b] - rmax[p]).abs());
        }
    }
    sums.extend(diffs);
    sums
}

/// Contour Fourier magnitudes, mirror- and start-point-invariant.
fn fourier_block(contour: &[(i32, i32)]) -> Vec<f32> {
    let mut out = vec![0f32; FOURIER_MAX_K - 1];
    if contour.len() < 3 {
        return out;
    }
    // Resample by arc length (closed polygon).
    let pts: Vec<(f64, f64)> = contour.iter().map(|&(x, y)| (x as f64, y as f64)).collect();
    let k = pts.len();
    let mut cum = vec![0f64; k + 1];
    for i in 0..k {
        let (a, b) = (pts[i], pts[(i + 1) % k]);
        cum[i + 1] = cum[i] + ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
    }
    let total = cum[k];
    if total <= 0.0 {
        return out;
    }
    let mut z = Vec::with_capacity(CONTOUR_POINTS);
    let mut seg = 0usize;
    for j in 0..CONTOUR_POINTS {
        let t = total * j as f64 / CONTOUR_POINTS as f64;
        while seg + 1 < k && cum[seg + 1] <= t {
            seg += 1;
        }
        let len = cum[seg + 1] - cum[seg];
        let f = if len > 0.0 { (t - cum[seg]) / len } else { 0.0 };
        let (a, b) = (pts[seg], pts[(seg + 1) % k]);
        z.push((a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1)));
    }
    let mag = |freq: i64| -> f64 {
        let (mut re, mut im) = (0f64, 0f64);
        for (m, &(x, y)) in z.iter().enumerate() {
            let ang = -std::f64::consts::TAU * freq as f64 * m as f64 / CONTOUR_POINTS as f64;
            let (s, c) = ang.sin_cos();
            re += x * c - y * s;
            im += x * s + y * c;
        }
        (re * re + im * im).sqrt() / CONTOUR_POINTS as f64
    };
    let base = mag(1) + mag(-1);
    if base <= 1e-9 {
        return out;
    }
    for (slot, kk) in out.iter_mut().zip(2..=FOURIER_MAX_K as i64) {
        *slot = ((mag(kk) + mag(-kk)) / base) as f32;
    }
    out
}

/// Hu's seven invariants, root-scaled to a common range; h7 in absolute value (its sign
/// flips under mirroring).
fn hu_block(m: &Moments) -> Vec<f32> {
    let (n20, n02, n11) = (m.eta(2, 0), m.eta(0, 2), m.eta(1, 1));
    let (n30, n03, n21, n12) = (m.eta(3, 0), m.eta(0, 3), m.eta(2, 1), m.eta(1, 2));
    let h1 = n20 + n02;
    let h2 = (n20 - n02).powi(2) + 4.0 * n11 * n11;
    let h3 = (n30 - 3.0 * n12).powi(2) + (3.0 * n21 - n03).powi(2);
    let h4 = (n30 + n12).powi(2) + (n21 + n03).powi(2);
    let a = n30 + n12;
    let b = n21 + n03;
    let h5 = (n30 - 3.0 * n12) * a * (a * a - 3.0 * b * b)
        + (3.0 * n21 - n03) * b * (3.0 * a * a - b * b);
    let h6 = (n20 - n02) * (a * a - b * b) + 4.0 * n11 * a * b;
    let h7 = (3.0 * n21 - n03) * a * (a * a - 3.0 * b * b)
        - (n30 - 3.0 * n12) * b * (3.0 * a * a - b * b);
    let root = |v: f64, p: f64| (v.signum() * v.abs().powf(1.0 / p)) as f32;
    vec![
        root(h1, 1.0),
        root(h2, 2.0),
        root(h3, 2.0),
        root(h4, 2.0),
        root(h5, 4.0),
        root(h6, 3.0),
        root(h7.abs(), 4.0),
    ]
}

/// Cross product of (b - a) and (c - a).
fn cross(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

/// Area of the convex hull of the contour pixels' squares (Andrew's monotone chain).
fn hull_area(contour: &[(i32, i32)]) -> f64 {
    let mut pts: Vec<(f64, f64)> = contour
        .iter()
        .flat_map(|&(x, y)| {
            let (x, y) = (x as f64, y as f64);
            [(x, y), (x + 1.0, y), (x, y + 1.0), (x + 1.0, y + 1.0)]
        })
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    pts.dedup();
    if pts.len() < 3 {
        return 0.0;
    }
    let mut hull: Vec<(f64, f64)> = Vec::with_capacity(pts.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(f64, f64)>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    let k = hull.len();
    (0..k)
        .map(|i| {
            let (a, b) = (hull[i], hull[(i + 1) % k]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f64>()
        .abs()
        / 2.0
}

/// Global geometry, each value centred roughly on 0 so cosine sees differences.
fn geometry_block(
    fg: &[bool],
    largest: &[bool],
    contour: &[(i32, i32)],
    w: usize,
    h: usize,
    m: &Moments,
) -> Vec<f32> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0usize, 0usize);
    for (i, _) in fg.iter().enumerate().filter(|(_, &f)| f) {
        let (x, y) = (i % w, i / w);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let (bw, bh) = ((x1 - x0 + 1) as f64, (y1 - y0 + 1) as f64);
    let aspect = (bh / bw).ln().tanh();
    let extent = m.n / (bw * bh) - 0.5;
    let largest_area = largest.iter().filter(|&&f| f).count() as f64;
    let hull = hull_area(contour);
    let solidity = if hull > 0.0 {
        (largest_area / hull).min(1.0) - 0.5
    } else {
        0.5
    };
    let (a, c, b) = (m.mu[2][0], m.mu[0][2], m.mu[1][1]);
    let disc = ((a - c).powi(2) + 4.0 * b * b).sqrt();
    let (l1, l2) = ((a + c + disc) / 2.0, ((a + c - disc) / 2.0).max(0.0));
    let elongation = if l1 > 0.0 {
        (l2 / l1).sqrt() - 0.5
    } else {
        0.5
    };
    let vertical = c / (a + c).max(1e-9) - 0.5;
    let shear = b.abs() / (a + c).max(1e-9);
    let centroid_height = (m.cy - y0 as f64) / bh - 0.5;
    let (_, sizes) = morphology::components(fg, w, h);
    let big = sizes
        .iter()
        .skip(1)
        .filter(|&&sz| sz as f64 >= MIN_COMPONENT_RATIO as f64 * largest_area)
        .count();
    let extra = ((big.saturating_sub(1)).min(2) as f64) / 2.0;
    // Width of the mask in the top and bottom fifths of the box, relative to the box width
    // (a dress flares at the bottom, a t-shirt is widest at the top).
    let row_width = |ya: usize, yb: usize| -> f64 {
        let mut best = 0usize;
        for y in ya..=yb.min(h - 1) {
            let row = &fg[y * w..(y + 1) * w];
            let first = row.iter().position(|&f| f);
            let last = row.iter().rposition(|&f| f);
            if let (Some(f), Some(l)) = (first, last) {
                best = best.max(l - f + 1);
            }
        }
        best as f64 / bw
    };
    let band = ((bh / 5.0) as usize).max(1);
    let top = row_width(y0, y0 + band - 1) - 0.5;
    let bottom = row_width((y1 + 1).saturating_sub(band), y1) - 0.5;
    [
        aspect,
        extent,
        solidity,
        elongation,
        vertical,
        shear,
        centroid_height,
        extra,
        top,
        bottom,
    ]
    .iter()
    .map(|&v| v as f32)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ellipse(w: u32, h: u32, cx: f32, cy: f32, rx: f32, ry: f32) -> Mask {
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
                if ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) <= 1.0 {
                    255
                } else {
                    0
                }
            })
            .collect();
        Mask::new(w, h, data).unwrap()
    }

    #[test]
    fn has_documented_length_and_unit_norm() {
        let e = shape_embedding(&ellipse(64, 64, 32.0, 30.0, 12.0, 20.0)).unwrap();
        assert_eq!(e.len(), SHAPE_EMBEDDING_DIM);
        let n: f32 = e.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-4);
        assert!(e.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn tiny_and_malformed_masks_are_invalid_parameters() {
        let tiny = ellipse(64, 64, 32.0, 32.0, 2.0, 2.0);
        let err = shape_embedding(&tiny).unwrap_err();
        assert_eq!(err.code(), "invalid_parameter");
        assert!(err.to_string().contains("foreground pixels"), "{err}");
        let bad = Mask {
            width: 4,
            height: 4,
            data: vec![255; 3],
        };
        assert!(shape_embedding(&bad).is_err());
    }

    #[test]
    fn hull_of_a_square_contour() {
        // Contour pixels of a 3x3 block: hull of their squares is the 3x3 square.
        let c = vec![
            (0, 0),
            (1, 0),
            (2, 0),
            (2, 1),
            (2, 2),
            (1, 2),
            (0, 2),
            (0, 1),
        ];
        assert!((hull_area(&c) - 9.0).abs() < 1e-9);
    }
}
