//! Dominant colours of the product, not of the floor it was photographed on.
//!
//! [`extract_colors`] works on the small [`WorkingImage`] (long side ≈ 256):
//!
//! 1. **Which pixels are the product.** In order of preference: the silhouette [`Mask`]
//!    (255 = product); the image's alpha plane when at least 1% of it is transparent; otherwise
//!    a background model estimated from the image border (documented in `background.rs`:
//!    border colours clustered in CIELAB, background = pixels like them *and* connected to the
//!    edge). Transparent pixels are always background. If a source leaves too little product
//!    (under 1% of the opaque pixels for a mask or alpha, under 5% for the border model: a
//!    plain image, a product the same colour as its backdrop), the next source is tried, and
//!    finally the whole image is used: a plain image reports its one colour instead of
//!    nothing. [`ColorReport::foreground`] says which source was used.
//! 2. **Edge pixels out.** Pixels on the product/background boundary blend both colours (JPEG
//!    and anti-aliasing halos), so only pixels whose four neighbours share their label are
//!    counted, unless that would drop more than half of a (thin) region.
//! 3. **Clustering.** Pixels go into a 12-bit RGB histogram with exact per-bin means; the
//!    occupied bins are clustered in CIELAB by weighted k-means (k = `num_colors`, k-means++
//!    seeding with a fixed seed: same input, same output), then clusters closer than
//!    `merge_delta_e` (CIEDE2000) are merged.
//! 4. **Skin.** On worn garments skin is a frequent false product colour. A product cluster is
//!    treated as skin, and removed from the product's colours (its share is reported in
//!    [`ColorReport::skin_share`]), only when it is clearly separate: its colour is in the skin
//!    range (45 ≤ L\* ≤ 85, 15 ≤ C\* ≤ 45, 35° ≤ h < 70°), it is not the largest cluster, it
//!    holds under 25% of the product, it is more than ΔE2000 20 from the largest cluster and
//!    more than 10 from every other cluster (a tan print that shades into a brown fabric is
//!    kept). Off with [`ColorOptions::with_suppress_skin`].
//! 5. **Report.** Colours sorted by share (percent of product pixels), each with hex, sRGB,
//!    CIELAB, the nearest CSS named colour with its ΔE2000, and a fashion [`ColorFamily`]; the
//!    background's own colours; the product's share of the frame; the product's overall family
//!    (`multicolour` when no family covers half of the product). For the overall family the
//!    neutral clusters (black, grey, white) whose lightnesses form one run (steps of at most
//!    25 L\*) count as one group named by its lit part, the lightest cluster holding a quarter
//!    of the group: shading splits a white shirt into white and grey clusters, and a shopper
//!    still calls it white; black and white stripes stay two colours.
//!
//! Colour maths: [`srgb_to_lab`], [`delta_e2000`] (checked against the 34 pairs of Sharma et
//! al. 2005); palettes are compared with [`palette_distance`] (earth mover's distance).

mod background;
mod distance;
mod kmeans;
mod lab;
mod names;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::raster::{Mask, WorkingImage};

use background::{segment_by_border, BG, CLEAR, PRODUCT};
use kmeans::{bin_of, kmeans, merge_close, Cluster, Histogram};

pub use distance::{palette_distance, PaletteEntry, EMPTY_PALETTE_DISTANCE};
pub use lab::{delta_e2000, lab_to_lch, lab_to_srgb, srgb_to_lab};
pub use names::{color_family, named_colors, nearest_named_color, ColorFamily};

/// Maximum `num_colors` / `num_background_colors`.
pub const MAX_COLORS: usize = 16;
/// k-means iteration cap (Lloyd usually converges in well under this on histogram bins).
const MAX_ITER: usize = 30;
/// A mask or alpha split must leave at least this fraction of the opaque pixels as product.
const MIN_PRODUCT_FRACTION: f64 = 0.01;
/// The border model must leave at least this fraction: less means it mistook the product for
/// the backdrop (a beige dress on a beige door), and the whole image is the better answer.
const MIN_BORDER_PRODUCT_FRACTION: f64 = 0.05;
/// A family must cover this share of the product (percent) to be the product's family.
const DOMINANT_FAMILY_SHARE: f32 = 50.0;

/// Options of [`extract_colors`]. Build with [`ColorOptions::default`] and the `with_*`
/// setters; [`ColorOptions::validate`] (called by `extract_colors`) rejects bad values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ColorOptions {
    /// Number of product colours to cluster and report, 1..=16. Default 5 (what colour
    /// pickers and the hosted API return; more mostly splits shading).
    pub num_colors: usize,
    /// Exclude the background (mask, alpha or border model). Default true. When false, every
    /// opaque pixel is product and no background colours are reported.
    pub exclude_background: bool,
    /// Drop colours holding less than this percent of the product, 0..=100. Default 1.0:
    /// stitching, labels and stray pixels are not colours of the product.
    pub min_share: f32,
    /// Clusters closer than this CIEDE2000 are merged, 0..=50. Default 8.0: sensor and JPEG
    /// noise on dark, near-neutral fabric alone splits k-means clusters about ΔE2000 7 apart
    /// (ΔE2000 stretches a\*/b\* near the grey axis), and two colours that close read as one
    /// colour on a garment; 0 disables merging.
    pub merge_delta_e: f32,
    /// Number of background colours to report, 0..=16. Default 3.
    pub num_background_colors: usize,
    /// Remove a clearly separate skin-tone cluster from the product colours (module docs).
    /// Default true.
    pub suppress_skin: bool,
}

impl Default for ColorOptions {
    fn default() -> Self {
        Self {
            num_colors: 5,
            exclude_background: true,
            min_share: 1.0,
            merge_delta_e: 8.0,
            num_background_colors: 3,
            suppress_skin: true,
        }
    }
}

impl ColorOptions {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_COLORS).contains(&self.num_colors) {
            return Err(Error::invalid(
                "num_colors",
                format!("must be in 1..={MAX_COLORS}, got {}", self.num_colors),
            ));
        }
        if self.num_background_colors > MAX_COLORS {
            return Err(Error::invalid(
                "num_background_colors",
                format!(
                    "must be in 0..={MAX_COLORS}, got {}",
                    self.num_background_colors
                ),
            ));
        }
        if !(0.0..=100.0).contains(&self.min_share) {
            return Err(Error::invalid(
                "min_share",
                format!("must be a percentage in 0..=100, got {}", self.min_share),
            ));
        }
        if !(0.0..=50.0).contains(&self.merge_delta_e) {
            return Err(Error::invalid(
                "merge_delta_e",
                format!("must be in 0..=50, got {}", self.merge_delta_e),
            ));
        }
        Ok(())
    }
}

/// Where the product/background split came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ForegroundSource {
    /// The silhouette mask passed by the caller.
    Mask,
    /// The image's alpha channel (transparent = background).
    Alpha,
    /// The border background model (no mask, no transparency).
    BorderModel,
    /// No split: background exclusion was off, or no source left enough product pixels (a
    /// plain image), so every opaque pixel counts as product.
    WholeImage,
}

/// One dominant colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DominantColor {
    /// Percent of the product's pixels (or of the background's, in
    /// [`ColorReport::background`]) in this colour.
    pub share: f32,
    /// `#rrggbb`, lower case.
    pub hex: String,
    /// sRGB, the nearest displayable colour to `lab`.
    pub rgb: [u8; 3],
    /// CIELAB (D65): the mean colour of the cluster.
    pub lab: [f32; 3],
    /// Nearest CSS named colour (CSS Color 4 keywords).
    pub name: String,
    /// CIEDE2000 between `lab` and the named colour.
    pub name_distance: f32,
    /// Fashion colour family.
    pub family: ColorFamily,
}

impl DominantColor {
    /// Describes a CIELAB colour holding `share` percent.
    pub fn from_lab(lab: [f32; 3], share: f32) -> Self {
        let rgb = lab_to_srgb(lab);
        let (name, name_distance) = nearest_named_color(lab);
        Self {
            share,
            hex: format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]),
            rgb,
            lab,
            name: name.to_string(),
            name_distance,
            family: color_family(lab),
        }
    }
}

/// Result of [`extract_colors`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ColorReport {
    /// Product colours, largest share first, at most `num_colors`, each ≥ `min_share`.
    pub colors: Vec<DominantColor>,
    /// Background colours (shares in percent of the opaque background pixels), largest first.
    pub background: Vec<DominantColor>,
    /// Fraction of the frame (all pixels, transparent ones included) that is product, 0..=1.
    pub product_fraction: f32,
    /// The product's family: the family covering at least half of the product, else
    /// `multicolour`. `None` when the image has no opaque pixel.
    pub family: Option<ColorFamily>,
    /// Which pixels were taken as product.
    pub foreground: ForegroundSource,
    /// Percent of the product region removed as skin (0 when none was).
    pub skin_share: f32,
}

/// Dominant colours of the product in `img` (see the module docs for the method).
///
/// `mask`, when given, must have the working image's size; 255 (≥ 128) marks product pixels.
///
/// ```
/// use dupify_core::colors::{extract_colors, ColorOptions, ColorFamily};
/// use dupify_core::WorkingImage;
///
/// // A navy square on a white wall.
/// let (w, h) = (64u32, 64u32);
/// let mut rgb = Vec::new();
/// for y in 0..h {
///     for x in 0..w {
///         let inside = (16..48).contains(&x) && (16..48).contains(&y);
///         rgb.extend_from_slice(if inside { &[20, 30, 90] } else { &[250, 250, 250] });
///     }
/// }
/// let img = WorkingImage::new(w, h, rgb, None)?;
/// let report = extract_colors(&img, None, &ColorOptions::default())?;
/// assert_eq!(report.colors[0].family, ColorFamily::Navy);
/// assert_eq!(report.background[0].family, ColorFamily::White);
/// assert!((report.product_fraction - 0.25).abs() < 1e-6);
/// # Ok::<(), dupify_core::Error>(())
/// ```
pub fn extract_colors(
    img: &WorkingImage,
    mask: Option<&Mask>,
    opts: &ColorOptions,
) -> Result<ColorReport> {
    opts.validate()?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let n = w * h;
    if let Some(m) = mask {
        if m.width != img.width() || m.height != img.height() || m.data.len() != n {
            return Err(Error::invalid(
                "mask",
                format!(
                    "mask is {}x{} ({} bytes), the working image is {w}x{h}",
                    m.width,
                    m.height,
                    m.data.len()
                ),
            ));
        }
    }
    let rgb = img.rgb();
    let mut labels = vec![PRODUCT; n];
    let mut clear = 0usize;
    if let Some(alpha) = img.alpha() {
        for (l, &a) in labels.iter_mut().zip(alpha) {
            if a < 128 {
                *l = CLEAR;
                clear += 1;
            }
        }
    }
    let opaque = n - clear;
    let min_product = ((opaque as f64 * MIN_PRODUCT_FRACTION).ceil() as usize).max(1);
    let count = |labels: &[u8]| labels.iter().filter(|&&l| l == PRODUCT).count();

    let mut source = ForegroundSource::WholeImage;
    if opts.exclude_background && opaque > 0 {
        if let Some(m) = mask {
            let mut trial = labels.clone();
            for (l, &v) in trial.iter_mut().zip(&m.data) {
                if *l != CLEAR && v < 128 {
                    *l = BG;
                }
            }
            if count(&trial) >= min_product {
                labels = trial;
                source = ForegroundSource::Mask;
            }
        }
        if source == ForegroundSource::WholeImage
            && clear as f64 >= n as f64 * 0.01
            && opaque >= min_product
        {
            source = ForegroundSource::Alpha;
        }
        if source == ForegroundSource::WholeImage {
            let mut trial = labels.clone();
            segment_by_border(w, h, rgb, &mut trial);
            let min_border = (opaque as f64 * MIN_BORDER_PRODUCT_FRACTION).ceil() as usize;
            if count(&trial) >= min_border.max(1) {
                labels = trial;
                source = ForegroundSource::BorderModel;
            }
        }
    }

    let (product_hist, bg_hist) = histograms(w, h, rgb, &labels);
    let product_pixels = count(&labels);
    let product_fraction = product_pixels as f32 / n as f32;

    // Product colours.
    let (pts, wts) = product_hist.points();
    let clusters = merge_close(
        kmeans(&pts, &wts, opts.num_colors, MAX_ITER),
        opts.merge_delta_e,
    );
    let (clusters, skin_weight) = if opts.suppress_skin {
        remove_skin(clusters)
    } else {
        (clusters, 0.0)
    };
    let region_total = product_hist.total() as f64;
    let kept_total = region_total - skin_weight;
    let skin_share = if region_total > 0.0 {
        (skin_weight / region_total * 100.0) as f32
    } else {
        0.0
    };
    let family = product_family(&clusters, kept_total);
    let colors = describe(&clusters, kept_total, opts.num_colors, opts.min_share);

    // Background colours.
    let background = if source == ForegroundSource::WholeImage || opts.num_background_colors == 0 {
        Vec::new()
    } else {
        let (pts, wts) = bg_hist.points();
        let cl = merge_close(
            kmeans(&pts, &wts, opts.num_background_colors, MAX_ITER),
            opts.merge_delta_e,
        );
        describe(
            &cl,
            bg_hist.total() as f64,
            opts.num_background_colors,
            opts.min_share,
        )
    };

    Ok(ColorReport {
        colors,
        background,
        product_fraction,
        family,
        foreground: source,
        skin_share,
    })
}

/// Histograms of product and background pixels, interior pixels only (module docs, step 2).
fn histograms(w: usize, h: usize, rgb: &[u8], labels: &[u8]) -> (Histogram, Histogram) {
    // Interior = all in-bounds 4-neighbours carry the same label. Computed once into a flag
    // plane with row/column loops (no per-pixel division).
    let mut interior = vec![false; w * h];
    let mut all = [0usize; 2];
    let mut inner = [0usize; 2];
    for y in 0..h {
        let row = y * w;
        for x in 0..w {
            let i = row + x;
            let l = labels[i];
            if l == CLEAR {
                continue;
            }
            let inside = (x == 0 || labels[i - 1] == l)
                && (x + 1 == w || labels[i + 1] == l)
                && (y == 0 || labels[i - w] == l)
                && (y + 1 == h || labels[i + w] == l);
            interior[i] = inside;
            all[l as usize] += 1;
            inner[l as usize] += inside as usize;
        }
    }
    // Use interior pixels for a label unless that drops more than half of it.
    let use_inner = [2 * inner[0] >= all[0], 2 * inner[1] >= all[1]];
    let mut hists = [Histogram::new(), Histogram::new()];
    for ((&l, &inside), px) in labels.iter().zip(&interior).zip(rgb.chunks_exact(3)) {
        if l == CLEAR {
            continue;
        }
        let li = l as usize;
        if inside || !use_inner[li] {
            hists[li].add(bin_of(px[0], px[1], px[2]), px);
        }
    }
    let [bg, product] = hists;
    (product, bg)
}

fn is_skin_tone(lab: [f32; 3]) -> bool {
    let [l, c, h] = lab_to_lch(lab);
    (45.0..=85.0).contains(&l) && (15.0..=45.0).contains(&c) && (35.0..70.0).contains(&h)
}

/// Removes clearly separate skin clusters (module docs, step 4); returns the removed weight.
fn remove_skin(clusters: Vec<Cluster>) -> (Vec<Cluster>, f64) {
    let total: f64 = clusters.iter().map(|c| c.weight).sum();
    if clusters.len() < 2 || total <= 0.0 {
        return (clusters, 0.0);
    }
    let top = clusters[0];
    let skin: Vec<bool> = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            i > 0
                && is_skin_tone(c.lab)
                && c.weight / total < 0.25
                && delta_e2000(c.lab, top.lab) > 20.0
                && clusters
                    .iter()
                    .enumerate()
                    .all(|(j, o)| j == i || j == 0 || delta_e2000(c.lab, o.lab) > 10.0)
        })
        .collect();
    let removed = clusters
        .iter()
        .zip(&skin)
        .filter(|(_, &s)| s)
        .fold(0.0, |acc, (c, _)| acc + c.weight);
    let kept = clusters
        .into_iter()
        .zip(skin)
        .filter(|(_, s)| !s)
        .map(|(c, _)| c)
        .collect();
    (kept, removed)
}

fn product_family(clusters: &[Cluster], total: f64) -> Option<ColorFamily> {
    if clusters.is_empty() || total <= 0.0 {
        return None;
    }
    let mut shares: Vec<(ColorFamily, f64)> = Vec::new();
    let mut add = |f: ColorFamily, w: f64| match shares.iter_mut().find(|(g, _)| *g == f) {
        Some(s) => s.1 += w,
        None => shares.push((f, w)),
    };
    // Shading splits one neutral fabric into lighter and darker clusters (a white shirt into
    // white and greys): neutral clusters in one run of lightness are one group, named by its
    // lit part. A jump in lightness is another fabric (black and white stripes).
    let (mut neutral, coloured): (Vec<&Cluster>, Vec<&Cluster>) =
        clusters.iter().partition(|c| is_neutral(c.lab));
    for c in coloured {
        add(color_family(c.lab), c.weight);
    }
    neutral.sort_by(|a, b| a.lab[0].total_cmp(&b.lab[0]));
    for run in neutral.chunk_by(|a, b| b.lab[0] - a.lab[0] <= SHADE_GAP) {
        if let Some(family) = neutral_family(run) {
            add(family, run.iter().map(|c| c.weight).sum());
        }
    }
    let (fam, wt) = shares
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    Some(if (wt / total * 100.0) as f32 >= DOMINANT_FAMILY_SHARE {
        fam
    } else {
        ColorFamily::Multicolour
    })
}

/// Largest L* step between neutral clusters that are still shades of one fabric.
const SHADE_GAP: f32 = 25.0;

/// Share of a neutral group a cluster needs to count as its lit part: highlights and specks
/// smaller than this do not lighten the name.
const LIT_SHARE: f64 = 0.25;

/// Black, grey or white without hue: the achromatic branch of [`color_family`] (navy, whose
/// faint blue chroma survives in photos, is not neutral).
fn is_neutral(lab: [f32; 3]) -> bool {
    matches!(
        color_family(lab),
        ColorFamily::Black | ColorFamily::Grey | ColorFamily::White
    ) && lab_to_lch(lab)[1] < names::NEUTRAL_CHROMA
}

/// The family of a group of neutral clusters: the lightest cluster holding at least
/// [`LIT_SHARE`] of the group (or the largest, when none does) decides between black, grey
/// and white, since shadows only darken a fabric.
fn neutral_family(group: &[&Cluster]) -> Option<ColorFamily> {
    let total: f64 = group.iter().map(|c| c.weight).sum();
    let largest = group.iter().max_by(|a, b| a.weight.total_cmp(&b.weight))?;
    let lit = group
        .iter()
        .filter(|c| c.weight >= LIT_SHARE * total)
        .max_by(|a, b| a.lab[0].total_cmp(&b.lab[0]))
        .unwrap_or(largest);
    Some(color_family([lit.lab[0], 0.0, 0.0]))
}

fn describe(clusters: &[Cluster], total: f64, max: usize, min_share: f32) -> Vec<DominantColor> {
    if total <= 0.0 {
        return Vec::new();
    }
    clusters
        .iter()
        .map(|c| (c, (c.weight / total * 100.0) as f32))
        .filter(|&(_, s)| s >= min_share && s > 0.0)
        .take(max)
        .map(|(c, s)| DominantColor::from_lab(c.lab, s))
        .collect()
}

dupify_types::setters! { ColorOptions {
    /// Sets [`ColorOptions::num_colors`].
    with_num_colors(num_colors: usize),
    /// Sets [`ColorOptions::exclude_background`].
    with_exclude_background(exclude_background: bool),
    /// Sets [`ColorOptions::min_share`] (percent).
    with_min_share(min_share: f32),
    /// Sets [`ColorOptions::merge_delta_e`].
    with_merge_delta_e(merge_delta_e: f32),
    /// Sets [`ColorOptions::num_background_colors`].
    with_num_background_colors(num_background_colors: usize),
    /// Sets [`ColorOptions::suppress_skin`].
    with_suppress_skin(suppress_skin: bool),
} }

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(l: f32, weight: f64) -> Cluster {
        Cluster {
            lab: [l, 0.5, -0.5],
            weight,
        }
    }

    /// A white shirt with folds: its lit part is white, its shadows grey; the shopper's
    /// name is white, although the grey clusters hold more pixels.
    #[test]
    fn shaded_white_fabric_is_white() {
        let c = [grey(80.0, 30.0), grey(60.0, 40.0), grey(45.0, 30.0)];
        assert_eq!(color_family(c[1].lab), ColorFamily::Grey);
        assert_eq!(product_family(&c, 100.0), Some(ColorFamily::White));
    }

    /// Small highlights do not lighten a black garment, and a navy garment is not neutral.
    #[test]
    fn highlights_and_navy_keep_their_family() {
        let c = [grey(10.0, 80.0), grey(55.0, 15.0), grey(90.0, 5.0)];
        assert_eq!(product_family(&c, 100.0), Some(ColorFamily::Black));
        let navy = Cluster {
            lab: [14.0, 1.0, -6.0],
            weight: 60.0,
        };
        let c = [navy, grey(75.0, 40.0)];
        assert_eq!(product_family(&c, 100.0), Some(ColorFamily::Navy));
    }

    /// Black and white blocks are two fabrics, not one shaded one.
    #[test]
    fn black_and_white_blocks_are_not_pooled() {
        let green = Cluster {
            lab: [46.0, -50.0, 45.0],
            weight: 33.0,
        };
        let c = [grey(8.0, 34.0), grey(97.0, 33.0), green];
        assert_eq!(product_family(&c, 100.0), Some(ColorFamily::Multicolour));
    }
}
