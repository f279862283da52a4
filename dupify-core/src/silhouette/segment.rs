//! The classical foreground segmenter: a GrabCut-style colour-model segmentation with a
//! mean-field CRF instead of a max-flow cut.
//!
//! Steps, on the working image (long side ~256 px, so every step is a few passes):
//!
//! 1. **Alpha shortcut.** If the image has a real alpha plane (some transparent, some opaque
//!    pixels), alpha ≥ 50% *is* the answer, cleaned of specks.
//! 2. **Lab features.** Each pixel becomes CIELAB with lightness down-weighted
//!    ([`SegmenterOptions::lightness_weight`]): shadows and uneven lighting on a floor or wall
//!    change L* much more than a*/b*, so a product's own colour stands out more than its shadow.
//! 3. **Background model from the border.** Pixels in a thin band along the image border are
//!    clustered (k-means) into a diagonal-covariance mixture. Clusters that hold only a small
//!    share of the band are dropped: those are usually the product itself touching the frame
//!    (trouser legs at the bottom, a hanger at the top), not background.
//! 4. **Initial labelling.** A pixel is foreground when its Mahalanobis distance to every
//!    background cluster is large (chi-square 3-dof tail), with a mild centre prior.
//! 5. **GrabCut-style refinement.** Foreground and background mixtures are re-fitted from the
//!    current labels; the per-pixel log-likelihood ratio is the unary term of a CRF with a
//!    contrast-sensitive Potts pairwise term (4-neighbours, weight `exp(-β‖ΔI‖²)` as in
//!    GrabCut). Instead of a max-flow cut the CRF is solved approximately with a few
//!    mean-field updates, which is simple, allocation-light and smooth enough at this size.
//!    Fitting and inference alternate [`SegmenterOptions::iterations`] times; after the first
//!    round each mixture is re-fitted from the previous round's components (a few k-means steps
//!    instead of a cold start), as GrabCut does.
//! 6. **Morphological clean-up.** Closing then opening with a small disk, keep the largest
//!    connected component and any component at least [`SegmenterOptions::min_component_ratio`]
//!    of it (a pair of shoes), fill holes.
//!
//! The confidence combines how well the two colour models separate, how decisive the CRF
//! was along the mask boundary, whether the area is plausible, and how much of the image
//! border the mask covers (a mask that hugs the frame usually means the background model
//! failed).

use crate::error::{Error, Result};
use crate::raster::{Mask, WorkingImage};

use super::morphology;
use super::{BoundingBox, Segmentation, Segmenter};

/// Tunables of [`ClassicalSegmenter`]. The defaults were chosen on the clothing photos
/// (floors, walls, hangers) and the synthetic composites in the tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegmenterOptions {
    /// Width of the border band that seeds the background model, as a fraction of the short
    /// side (default 0.05).
    pub border_fraction: f32,
    /// Number of background colour clusters (default 6).
    pub background_clusters: usize,
    /// Number of foreground colour clusters (default 5).
    pub foreground_clusters: usize,
    /// Border clusters holding less than this share of the band are treated as product
    /// touching the frame and dropped (default 0.06).
    pub min_border_cluster_share: f32,
    /// Weight of L* relative to a*/b* in colour distances (default 0.4): < 1 makes shadows
    /// and lighting gradients look more like background.
    pub lightness_weight: f32,
    /// GrabCut-style model re-fit / inference rounds (default 3).
    pub iterations: usize,
    /// Mean-field updates per round (default 5).
    pub mean_field_steps: usize,
    /// Strength of the contrast-sensitive smoothness term (default 1.6).
    pub smoothness: f32,
    /// Radius in pixels of the closing/opening disk (default 2).
    pub morph_radius: u32,
    /// Components smaller than this fraction of the largest are dropped (default 0.2).
    pub min_component_ratio: f32,
}

impl Default for SegmenterOptions {
    fn default() -> Self {
        Self {
            border_fraction: 0.05,
            background_clusters: 6,
            foreground_clusters: 5,
            min_border_cluster_share: 0.06,
            lightness_weight: 0.4,
            iterations: 3,
            mean_field_steps: 5,
            smoothness: 1.6,
            morph_radius: 2,
            min_component_ratio: 0.2,
        }
    }
}

impl SegmenterOptions {
    /// Checks every field's domain.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &str, reason: &str| Err(Error::invalid(name, reason.to_string()));
        if !(self.border_fraction > 0.0 && self.border_fraction <= 0.25) {
            return bad("border_fraction", "must be in (0, 0.25]");
        }
        if !(1..=16).contains(&self.background_clusters) {
            return bad("background_clusters", "must be in 1..=16");
        }
        if !(1..=16).contains(&self.foreground_clusters) {
            return bad("foreground_clusters", "must be in 1..=16");
        }
        if !(0.0..0.5).contains(&self.min_border_cluster_share) {
            return bad("min_border_cluster_share", "must be in [0, 0.5)");
        }
        if !(self.lightness_weight > 0.0 && self.lightness_weight <= 2.0) {
            return bad("lightness_weight", "must be in (0, 2]");
        }
        if self.iterations > 10 || self.mean_field_steps > 20 {
            return bad(
                "iterations",
                "at most 10 rounds of at most 20 mean-field steps",
            );
        }
        if !(0.0..=10.0).contains(&self.smoothness) {
            return bad("smoothness", "must be in [0, 10]");
        }
        if self.morph_radius > 16 {
            return bad("morph_radius", "must be at most 16");
        }
        if !(0.0..=1.0).contains(&self.min_component_ratio) {
            return bad("min_component_ratio", "must be in [0, 1]");
        }
        Ok(())
    }
}

/// The default [`Segmenter`]: classical colour-model segmentation (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ClassicalSegmenter {
    options: SegmenterOptions,
}

impl ClassicalSegmenter {
    /// A segmenter with the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// A segmenter with custom options, validated.
    pub fn try_new(options: SegmenterOptions) -> Result<Self> {
        options.validate()?;
        Ok(Self { options })
    }

    /// The options in use.
    pub fn options(&self) -> &SegmenterOptions {
        &self.options
    }
}

impl Segmenter for ClassicalSegmenter {
    fn segment(&self, img: &WorkingImage) -> Result<Segmentation> {
        let w = img.width() as usize;
        let h = img.height() as usize;
        if w < 8 || h < 8 {
            return Err(Error::EmptyImage {
                reason: format!("image is {w}x{h}; segmentation needs at least 8x8 pixels"),
            });
        }
        if let Some(alpha) = img.alpha() {
            if let Some(seg) = self.segment_alpha(alpha, w, h)? {
                return Ok(seg);
            }
        }
        self.segment_colour(img, w, h)
    }
}

/// sRGB byte → linear light.
fn srgb_to_linear_lut() -> [f32; 256] {
    let mut lut = [0f32; 256];
    for (i, v) in lut.iter_mut().enumerate() {
        let c = i as f32 / 255.0;
        *v = if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        };
    }
    lut
}

/// CIELAB (D65) of every pixel, with L* scaled by `lw`.
fn lab_features(rgb: &[u8], lw: f32) -> Vec<[f32; 3]> {
    let lut = srgb_to_linear_lut();
    let f = |t: f32| {
        if t > 0.008_856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    rgb.chunks_exact(3)
        .map(|p| {
            let (r, g, b) = (lut[p[0] as usize], lut[p[1] as usize], lut[p[2] as usize]);
            let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
            let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
            let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
            let (fx, fy, fz) = (f(x), f(y), f(z));
            [
                (116.0 * fy - 16.0) * lw,
                500.0 * (fx - fy),
                200.0 * (fy - fz),
            ]
        })
        .collect()
}

/// A diagonal-covariance Gaussian mixture component.
#[derive(Debug, Clone, Copy)]
struct Gaussian {
    mean: [f32; 3],
    inv_var: [f32; 3],
    /// log(weight) - 0.5 * log(det) (the constant 2π term is shared and dropped).
    log_norm: f32,
    weight: f32,
}

/// Smallest per-channel standard deviation of a cluster: flat studio backgrounds would
/// otherwise get a near-zero variance and call sensor noise "foreground".
const MIN_STD: f32 = 2.5;

fn dist2(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// Nearest-centre assignment of samples held as planes, centre by centre over all samples
/// (so the distance loop vectorises); ties go to the lower centre index.
struct Nearest {
    best_d: Vec<f32>,
    assign: Vec<usize>,
}

impl Nearest {
    fn new(n: usize) -> Self {
        Nearest {
            best_d: vec![0.0; n],
            assign: vec![0; n],
        }
    }

    fn assign(&mut self, planes: &[Vec<f32>; 3], centres: &[[f32; 3]]) -> &[usize] {
        self.best_d.fill(f32::INFINITY);
        self.assign.fill(0);
        let [l, a, b] = planes;
        for (ci, c) in centres.iter().enumerate() {
            for ((((d, k), &x0), &x1), &x2) in self
                .best_d
                .iter_mut()
                .zip(self.assign.iter_mut())
                .zip(l)
                .zip(a)
                .zip(b)
            {
                let dd = (x0 - c[0]).powi(2) + (x1 - c[1]).powi(2) + (x2 - c[2]).powi(2);
                if dd < *d {
                    *d = dd;
                    *k = ci;
                }
            }
        }
        &self.assign
    }
}

/// Deterministic k-means (farthest-point initialisation from the mean) into a mixture.
fn fit_mixture(samples: &[[f32; 3]], k: usize) -> Vec<Gaussian> {
    fit_mixture_from(samples, k, &[])
}

/// Lloyd steps of a cold start; a warm start (GrabCut's re-fit, from the previous round's
/// components) converges in [`WARM_ITERATIONS`].
const KMEANS_ITERATIONS: usize = 8;
const WARM_ITERATIONS: usize = 3;

/// [`fit_mixture`] starting from `init` centres when given (the previous round's model,
/// [`WARM_ITERATIONS`] steps), else from farthest-point seeds ([`KMEANS_ITERATIONS`]).
fn fit_mixture_from(samples: &[[f32; 3]], k: usize, init: &[[f32; 3]]) -> Vec<Gaussian> {
    if samples.is_empty() {
        return Vec::new();
    }
    let n = samples.len() as f32;
    let (mut centres, iterations): (Vec<[f32; 3]>, usize) = if init.is_empty() {
        (farthest_point_seeds(samples, k), KMEANS_ITERATIONS)
    } else {
        (init.iter().copied().take(k).collect(), WARM_ITERATIONS)
    };
    let kk = centres.len();
    let planes = lab_planes(samples);
    let mut nearest = Nearest::new(samples.len());
    let mut sum = vec![[0f64; 3]; kk];
    let mut cnt = vec![0usize; kk];
    for _ in 0..iterations {
        let assign = nearest.assign(&planes, &centres);
        sum.iter_mut().for_each(|v| *v = [0.0; 3]);
        cnt.iter_mut().for_each(|v| *v = 0);
        for (a, s) in assign.iter().zip(samples) {
            cnt[*a] += 1;
            for c in 0..3 {
                sum[*a][c] += s[c] as f64;
            }
        }
        for i in 0..kk {
            if cnt[i] > 0 {
                for c in 0..3 {
                    centres[i][c] = (sum[i][c] / cnt[i] as f64) as f32;
                }
            }
        }
    }
    // Final assignment to the updated centres, for the variances.
    let assign = nearest.assign(&planes, &centres);
    let mut var = vec![[0f64; 3]; kk];
    let mut cnt = vec![0usize; kk];
    for (a, s) in assign.iter().zip(samples) {
        cnt[*a] += 1;
        for c in 0..3 {
            var[*a][c] += ((s[c] - centres[*a][c]) as f64).powi(2);
        }
    }
    (0..kk)
        .filter(|&i| cnt[i] > 0)
        .map(|i| {
            let mut inv_var = [0f32; 3];
            let mut log_det = 0f32;
            for c in 0..3 {
                let v = ((var[i][c] / cnt[i] as f64) as f32).max(MIN_STD * MIN_STD);
                inv_var[c] = 1.0 / v;
                log_det += v.ln();
            }
            let weight = cnt[i] as f32 / n;
            Gaussian {
                mean: centres[i],
                inv_var,
                log_norm: weight.ln() - 0.5 * log_det,
                weight,
            }
        })
        .collect()
}

/// Up to `k` seeds: the sample nearest the mean, then repeatedly the sample farthest from
/// every seed so far (stopping when every sample is within 1 unit of a seed).
fn farthest_point_seeds(samples: &[[f32; 3]], k: usize) -> Vec<[f32; 3]> {
    let n = samples.len() as f32;
    let mut mean = [0f32; 3];
    for s in samples {
        for c in 0..3 {
            mean[c] += s[c] / n;
        }
    }
    let mut centres: Vec<[f32; 3]> = Vec::with_capacity(k);
    let first = samples
        .iter()
        .min_by(|a, b| dist2(a, &mean).total_cmp(&dist2(b, &mean)))
        .copied()
        .unwrap_or(mean);
    centres.push(first);
    let mut nearest: Vec<f32> = samples.iter().map(|s| dist2(s, &first)).collect();
    while centres.len() < k {
        let (idx, &far) = nearest
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap_or((0, &0.0));
        if far < 1.0 {
            break; // every sample is already within 1 unit of a centre
        }
        let c = samples[idx];
        centres.push(c);
        for (d, s) in nearest.iter_mut().zip(samples) {
            *d = d.min(dist2(s, &c));
        }
    }
    centres
}

fn mahalanobis2(g: &Gaussian, x: &[f32; 3]) -> f32 {
    (x[0] - g.mean[0]).powi(2) * g.inv_var[0]
        + (x[1] - g.mean[1]).powi(2) * g.inv_var[1]
        + (x[2] - g.mean[2]).powi(2) * g.inv_var[2]
}

/// Max-component log-likelihood (up to a shared constant).
fn log_likelihood(mix: &[Gaussian], x: &[f32; 3]) -> f32 {
    mix.iter()
        .map(|g| g.log_norm - 0.5 * mahalanobis2(g, x))
        .fold(f32::NEG_INFINITY, f32::max)
}

/// The L*, a*, b* planes of per-pixel features, so per-pixel loops over one component at a
/// time vectorise.
fn lab_planes(feats: &[[f32; 3]]) -> [Vec<f32>; 3] {
    std::array::from_fn(|c| feats.iter().map(|x| x[c]).collect())
}

/// [`log_likelihood`] of every pixel, component by component over whole planes (the same
/// arithmetic in the same order, so the same values, but in SIMD lanes).
fn log_likelihood_planes(mix: &[Gaussian], planes: &[Vec<f32>; 3], out: &mut [f32]) {
    out.fill(f32::NEG_INFINITY);
    let [l, a, b] = planes;
    for g in mix {
        let ([m0, m1, m2], [v0, v1, v2]) = (g.mean, g.inv_var);
        for (((o, &x0), &x1), &x2) in out.iter_mut().zip(l).zip(a).zip(b) {
            let d2 = (x0 - m0).powi(2) * v0 + (x1 - m1).powi(2) * v1 + (x2 - m2).powi(2) * v2;
            *o = o.max(g.log_norm - 0.5 * d2);
        }
    }
}

/// Chi-square 3-dof 99.9% quantile: beyond this a pixel is unlikely under a cluster.
const CHI2_3_999: f32 = 16.27;

/// Pixels in the border band, as indices.
fn border_band(w: usize, h: usize, band: usize) -> Vec<usize> {
    (0..w * h)
        .filter(|&i| {
            let (x, y) = (i % w, i / w);
            x < band || y < band || x + band >= w || y + band >= h
        })
        .collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl ClassicalSegmenter {
    /// The alpha plane as the answer, when it carries real transparency. Returns `None` when
    /// alpha is (almost) all opaque or all transparent, so colour segmentation runs instead.
    fn segment_alpha(&self, alpha: &[u8], w: usize, h: usize) -> Result<Option<Segmentation>> {
        let n = alpha.len();
        let transparent = alpha.iter().filter(|&&a| a < 128).count();
        if transparent < n / 100 || transparent > n - n / 200 {
            return Ok(None);
        }
        let fg: Vec<bool> = alpha.iter().map(|&a| a >= 128).collect();
        let fg = morphology::keep_significant_components(
            &fg,
            w,
            h,
            self.options.min_component_ratio * 0.25,
        );
        // Alpha is authored, not estimated: confidence reflects only how crisp it is.
        let soft = alpha.iter().filter(|&&a| a > 16 && a < 240).count() as f32 / n as f32;
        let confidence = (0.98 - 2.0 * soft).clamp(0.5, 0.98);
        finish(fg, w, h, confidence).map(Some)
    }

    fn segment_colour(&self, img: &WorkingImage, w: usize, h: usize) -> Result<Segmentation> {
        let o = &self.options;
        let n = w * h;
        let feats = lab_features(img.rgb(), o.lightness_weight);

        // --- background model from the border band ---
        let band = ((w.min(h) as f32 * o.border_fraction).round() as usize).max(2);
        let band_idx = border_band(w, h, band);
        let band_samples: Vec<[f32; 3]> = band_idx.iter().map(|&i| feats[i]).collect();
        let mut border_model = fit_mixture(&band_samples, o.background_clusters);
        let strong: Vec<Gaussian> = border_model
            .iter()
            .copied()
            .filter(|g| g.weight >= o.min_border_cluster_share)
            .collect();
        if !strong.is_empty() {
            border_model = strong;
        }

        // --- spatial prior: mild preference for the centre, stronger against the band ---
        let (cxf, cyf) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
        let prior: Vec<f32> = (0..n)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let dx = (x - cxf) / (w as f32 / 2.0);
                let dy = (y - cyf) / (h as f32 / 2.0);
                let r2 = dx * dx + dy * dy; // 0 centre, 1 mid-edge, 2 corner
                0.8 - 0.9 * r2 // log-odds added to "foreground"
            })
            .collect();

        // --- initial labelling: far from every border cluster ---
        let mut fg: Vec<bool> = feats
            .iter()
            .zip(&prior)
            .map(|(x, &p)| {
                let d = border_model
                    .iter()
                    .map(|g| mahalanobis2(g, x))
                    .fold(f32::INFINITY, f32::min);
                d + 2.0 * p > CHI2_3_999
            })
            .collect();
        if fg.iter().filter(|&&f| f).count() < n / 400 {
            return Err(Error::EmptyImage {
                reason: "no foreground object found: the whole image matches its border \
                         (background) colours"
                    .into(),
            });
        }

        // --- pairwise weights (GrabCut's contrast-sensitive Potts, 4-neighbours) ---
        let mut sum_d = 0f64;
        let mut cnt_d = 0usize;
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if x + 1 < w {
                    sum_d += dist2(&feats[i], &feats[i + 1]) as f64;
                    cnt_d += 1;
                }
                if y + 1 < h {
                    sum_d += dist2(&feats[i], &feats[i + w]) as f64;
                    cnt_d += 1;
                }
            }
        }
        let beta = 1.0 / (2.0 * (sum_d / cnt_d.max(1) as f64) as f32).max(1e-3);
        let right: Vec<f32> = (0..n)
            .map(|i| {
                if i % w + 1 < w {
                    o.smoothness * (-beta * dist2(&feats[i], &feats[i + 1])).exp()
                } else {
                    0.0
                }
            })
            .collect();
        let down: Vec<f32> = (0..n)
            .map(|i| {
                if i + w < n {
                    o.smoothness * (-beta * dist2(&feats[i], &feats[i + w])).exp()
                } else {
                    0.0
                }
            })
            .collect();

        // --- GrabCut-style rounds: refit models, mean-field inference ---
        let mut q: Vec<f32> = fg.iter().map(|&f| if f { 0.9 } else { 0.1 }).collect();
        let mut unary = vec![0f32; n];
        let mut separation = 0f32;
        let (mut next, mut spin) = (vec![0f32; n], vec![0f32; n]);
        let planes = lab_planes(&feats);
        let (mut lf, mut lb) = (vec![0f32; n], vec![0f32; n]);
        let (mut fg_means, mut bg_means): (Vec<[f32; 3]>, Vec<[f32; 3]>) = (vec![], vec![]);
        for _ in 0..o.iterations.max(1) {
            // Subsample for fitting: a few thousand pixels per model pin down a handful of
            // colour clusters; k-means over every pixel would cost more than everything else.
            let fg_samples: Vec<[f32; 3]> = subsample(&feats, |i| fg[i], FIT_SAMPLES);
            let bg_samples: Vec<[f32; 3]> = subsample(&feats, |i| !fg[i], FIT_SAMPLES);
            if fg_samples.len() < 16 || bg_samples.len() < 16 {
                break;
            }
            // After the first round the labels move little: re-fit from the previous
            // components, as GrabCut does.
            let fg_model = fit_mixture_from(&fg_samples, o.foreground_clusters, &fg_means);
            let bg_model = fit_mixture_from(&bg_samples, o.background_clusters, &bg_means);
            fg_means = fg_model.iter().map(|g| g.mean).collect();
            bg_means = bg_model.iter().map(|g| g.mean).collect();
            let mut sep_sum = 0f32;
            let mut sep_n = 0usize;
            log_likelihood_planes(&fg_model, &planes, &mut lf);
            log_likelihood_planes(&bg_model, &planes, &mut lb);
            for &i in &band_idx {
                // The border colours are background by construction.
                lb[i] = lb[i].max(log_likelihood(&border_model, &feats[i]));
            }
            for i in 0..n {
                let u = (lf[i] - lb[i]).clamp(-12.0, 12.0) + prior[i];
                unary[i] = u;
                if fg[i] {
                    sep_sum += u.clamp(-6.0, 6.0);
                    sep_n += 1;
                }
            }
            separation = sep_sum / sep_n.max(1) as f32;
            for i in 0..n {
                q[i] = sigmoid(unary[i]);
            }
            for _ in 0..o.mean_field_steps {
                // Each neighbour pushes towards its own label: spin 2q - 1 in [-1, 1].
                for (s, &p) in spin.iter_mut().zip(q.iter()) {
                    *s = 2.0 * p - 1.0;
                }
                for y in 0..h {
                    let row = y * w;
                    for x in 0..w {
                        let i = row + x;
                        let mut m = 0f32;
                        if x + 1 < w {
                            m += right[i] * spin[i + 1];
                        }
                        if x > 0 {
                            m += right[i - 1] * spin[i - 1];
                        }
                        if y + 1 < h {
                            m += down[i] * spin[i + w];
                        }
                        if y > 0 {
                            m += down[i - w] * spin[i - w];
                        }
                        next[i] = sigmoid(unary[i] + m);
                    }
                }
                std::mem::swap(&mut q, &mut next);
            }
            fg = q.iter().map(|&p| p > 0.5).collect();
        }

        // --- morphological clean-up ---
        let r = o.morph_radius;
        let cleaned = morphology::open(&morphology::close(&fg, w, h, r), w, h, r);
        let cleaned =
            morphology::keep_significant_components(&cleaned, w, h, o.min_component_ratio);
        let cleaned = morphology::fill_holes(&cleaned, w, h);
        let area = cleaned.iter().filter(|&&f| f).count();
        if area < (n / 400).max(16) {
            return Err(Error::EmptyImage {
                reason: format!(
                    "no foreground object found: only {area} of {n} pixels survived clean-up"
                ),
            });
        }

        // --- confidence ---
        let frac = area as f32 / n as f32;
        let sep_term = sigmoid(separation - 2.0);
        let boundary: Vec<usize> = (0..n)
            .filter(|&i| {
                let (x, y) = (i % w, i / w);
                let v = cleaned[i];
                (x > 0 && cleaned[i - 1] != v)
                    || (x + 1 < w && cleaned[i + 1] != v)
                    || (y > 0 && cleaned[i - w] != v)
                    || (y + 1 < h && cleaned[i + w] != v)
            })
            .collect();
        let decisive = if boundary.is_empty() {
            0.5
        } else {
            // Average |2q-1| on the boundary pixels: near 1 when the CRF put the edge decisively.
            boundary
                .iter()
                .map(|&i| (2.0 * q[i] - 1.0).abs())
                .sum::<f32>()
                / boundary.len() as f32
        };
        let area_term = if frac < 0.02 {
            frac / 0.02
        } else if frac > 0.85 {
            ((1.0 - frac) / 0.15).max(0.0)
        } else {
            1.0
        };
        let edge_px: Vec<usize> = border_band(w, h, 1);
        let touching =
            edge_px.iter().filter(|&&i| cleaned[i]).count() as f32 / edge_px.len() as f32;
        let border_term = (1.0 - 1.5 * touching).clamp(0.0, 1.0);
        let confidence =
            (sep_term * (0.5 + 0.5 * decisive) * area_term * border_term).clamp(0.0, 1.0);
        finish(cleaned, w, h, confidence)
    }
}

/// Pixels sampled per colour model in each refinement round.
const FIT_SAMPLES: usize = 6000;

/// Every `step`-th pixel satisfying `keep`, so that at most about `max` samples are taken.
fn subsample(feats: &[[f32; 3]], keep: impl Fn(usize) -> bool, max: usize) -> Vec<[f32; 3]> {
    let count = (0..feats.len()).filter(|&i| keep(i)).count();
    let step = count.div_ceil(max.max(1)).max(1);
    (0..feats.len())
        .filter(|&i| keep(i))
        .step_by(step)
        .map(|i| feats[i])
        .collect()
}

/// Builds the [`Segmentation`] (mask, bbox, area) from a final binary plane.
fn finish(fg: Vec<bool>, w: usize, h: usize, confidence: f32) -> Result<Segmentation> {
    let data: Vec<u8> = fg.iter().map(|&f| if f { 255 } else { 0 }).collect();
    let mask = Mask::new(w as u32, h as u32, data)?;
    let bbox = BoundingBox::of_mask(&mask).ok_or_else(|| Error::EmptyImage {
        reason: "no foreground object found: the mask is empty".into(),
    })?;
    let area_fraction = mask.foreground_fraction();
    Ok(Segmentation {
        mask,
        bbox,
        area_fraction,
        confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_of_white_and_black() {
        let f = lab_features(&[255, 255, 255, 0, 0, 0], 1.0);
        assert!((f[0][0] - 100.0).abs() < 0.1 && f[0][1].abs() < 0.1 && f[0][2].abs() < 0.1);
        assert!(f[1][0].abs() < 0.1);
    }

    #[test]
    fn mixture_separates_two_colours() {
        let mut s = vec![[50.0, 10.0, 10.0]; 100];
        s.extend(vec![[20.0, -30.0, 40.0]; 50]);
        let m = fit_mixture(&s, 4);
        assert_eq!(m.len(), 2);
        assert!(log_likelihood(&m, &[50.0, 10.0, 10.0]) > log_likelihood(&m, &[80.0, 60.0, -60.0]));
    }

    #[test]
    fn bad_options_are_rejected() {
        let o = SegmenterOptions {
            border_fraction: 0.0,
            ..Default::default()
        };
        assert_eq!(
            ClassicalSegmenter::try_new(o).unwrap_err().code(),
            "invalid_parameter"
        );
    }
}
