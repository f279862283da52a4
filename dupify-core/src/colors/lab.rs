//! sRGB ↔ CIELAB (D65) conversion and the CIEDE2000 colour difference.
//!
//! Conversions follow IEC 61966-2-1 (sRGB transfer curve and primaries, D65 white) and the CIE
//! 1976 L\*a\*b\* definition. ΔE2000 is implemented from G. Sharma, W. Wu, E. N. Dalal, "The
//! CIEDE2000 color-difference formula: implementation notes, supplementary test data, and
//! mathematical observations", Color Res. Appl. 30(1), 2005, and tested against the 34 pairs
//! published there.
//!
//! The hot path (per pixel) never calls these float functions directly: pixels are binned into
//! a 12-bit RGB histogram and converted once per occupied bin, with the sRGB decoding curve read
//! from a 256-entry table.

use std::sync::OnceLock;

/// D65 reference white (X, Z; Y = 1), the same white the sRGB matrix is built on.
const WHITE_X: f32 = 0.950_47;
const WHITE_Z: f32 = 1.088_83;
/// CIE constants: (6/29)^3 and 1 / (3 * (6/29)^2).
const EPS: f32 = 216.0 / 24389.0;
const KAPPA_INV: f32 = 841.0 / 108.0;

/// sRGB byte → linear light, the IEC 61966-2-1 decoding curve, tabulated once.
fn linear_table() -> &'static [f32; 256] {
    static T: OnceLock<[f32; 256]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = [0.0f32; 256];
        for (i, v) in t.iter_mut().enumerate() {
            *v = srgb_decode(i as f64 / 255.0) as f32;
        }
        t
    })
}

fn srgb_decode(c: f64) -> f64 {
    if c <= 0.040_45 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn srgb_encode(c: f64) -> f64 {
    if c <= 0.003_130_8 {
        12.92 * c
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

/// Linear light of a fractional sRGB level in 0..=255 (a bin mean), interpolated in the table.
/// The curve is smooth, so the error is far below anything visible (< 1e-4).
#[inline]
fn linear_of_level(v: f32) -> f32 {
    let t = linear_table();
    let v = v.clamp(0.0, 255.0);
    let i = (v as usize).min(254);
    let f = v - i as f32;
    t[i] + (t[i + 1] - t[i]) * f
}

#[inline]
fn lab_f(t: f32) -> f32 {
    if t > EPS {
        t.cbrt()
    } else {
        t * KAPPA_INV + 4.0 / 29.0
    }
}

#[inline]
fn linear_rgb_to_lab(r: f32, g: f32, b: f32) -> [f32; 3] {
    let x = 0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = 0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b;
    let fx = lab_f(x / WHITE_X);
    let fy = lab_f(y);
    let fz = lab_f(z / WHITE_Z);
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// CIELAB (D65) of an 8-bit sRGB colour. White is (100, 0, 0); L\* is in 0..=100.
pub fn srgb_to_lab(rgb: [u8; 3]) -> [f32; 3] {
    let t = linear_table();
    linear_rgb_to_lab(t[rgb[0] as usize], t[rgb[1] as usize], t[rgb[2] as usize])
}

/// CIELAB of a fractional sRGB colour (levels in 0..=255), e.g. the mean of a histogram bin.
pub(crate) fn srgb_f32_to_lab(rgb: [f32; 3]) -> [f32; 3] {
    linear_rgb_to_lab(
        linear_of_level(rgb[0]),
        linear_of_level(rgb[1]),
        linear_of_level(rgb[2]),
    )
}

/// The 8-bit sRGB colour nearest to a CIELAB value (out-of-gamut values are clipped per
/// channel, which is what a display does).
pub fn lab_to_srgb(lab: [f32; 3]) -> [u8; 3] {
    let (l, a, b) = (lab[0] as f64, lab[1] as f64, lab[2] as f64);
    let fy = (l + 16.0) / 116.0;
    let fx = fy + a / 500.0;
    let fz = fy - b / 200.0;
    let finv = |f: f64| {
        if f > 6.0 / 29.0 {
            f * f * f
        } else {
            3.0 * (6.0f64 / 29.0).powi(2) * (f - 4.0 / 29.0)
        }
    };
    let x = finv(fx) * WHITE_X as f64;
    let y = finv(fy);
    let z = finv(fz) * WHITE_Z as f64;
    let r = 3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z;
    let g = -0.969_266 * x + 1.876_010_8 * y + 0.041_556 * z;
    let bl = 0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z;
    let enc = |c: f64| {
        (srgb_encode(c.clamp(0.0, 1.0)) * 255.0)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    [enc(r), enc(g), enc(bl)]
}

/// Lightness, chroma and hue angle (degrees in 0..360) of a CIELAB colour.
pub fn lab_to_lch(lab: [f32; 3]) -> [f32; 3] {
    let c = (lab[1] * lab[1] + lab[2] * lab[2]).sqrt();
    let mut h = lab[2].atan2(lab[1]).to_degrees();
    if h < 0.0 {
        h += 360.0;
    }
    [lab[0], c, h]
}

/// Squared Euclidean distance in CIELAB (ΔE76²): the cheap distance k-means minimises.
#[inline]
pub(crate) fn delta_e76_sq(p: [f32; 3], q: [f32; 3]) -> f32 {
    let d0 = p[0] - q[0];
    let d1 = p[1] - q[1];
    let d2 = p[2] - q[2];
    d0 * d0 + d1 * d1 + d2 * d2
}

/// CIEDE2000 colour difference (kL = kC = kH = 1), symmetric, 0 for identical colours.
///
/// Computed in f64 following Sharma et al. (2005) step by step, including their conventions for
/// zero chroma (hue 0, ΔH 0) and the hue mean across the 0°/360° wrap.
pub fn delta_e2000(lab1: [f32; 3], lab2: [f32; 3]) -> f32 {
    delta_e2000_f64(
        [lab1[0] as f64, lab1[1] as f64, lab1[2] as f64],
        [lab2[0] as f64, lab2[1] as f64, lab2[2] as f64],
    ) as f32
}

pub(crate) fn delta_e2000_f64(lab1: [f64; 3], lab2: [f64; 3]) -> f64 {
    const POW25_7: f64 = 6_103_515_625.0; // 25^7
    let [l1, a1, b1] = lab1;
    let [l2, a2, b2] = lab2;
    // Step 1: C'ab, h'.
    let c1 = (a1 * a1 + b1 * b1).sqrt();
    let c2 = (a2 * a2 + b2 * b2).sqrt();
    let cbar = 0.5 * (c1 + c2);
    let cbar7 = cbar.powi(7);
    let g = 0.5 * (1.0 - (cbar7 / (cbar7 + POW25_7)).sqrt());
    let a1p = (1.0 + g) * a1;
    let a2p = (1.0 + g) * a2;
    let c1p = (a1p * a1p + b1 * b1).sqrt();
    let c2p = (a2p * a2p + b2 * b2).sqrt();
    let hue = |b: f64, ap: f64| {
        if b == 0.0 && ap == 0.0 {
            0.0
        } else {
            let h = b.atan2(ap).to_degrees();
            if h < 0.0 {
                h + 360.0
            } else {
                h
            }
        }
    };
    let h1p = hue(b1, a1p);
    let h2p = hue(b2, a2p);
    // Step 2: ΔL', ΔC', ΔH'.
    let dlp = l2 - l1;
    let dcp = c2p - c1p;
    let cprod = c1p * c2p;
    let dhp = if cprod == 0.0 {
        0.0
    } else {
        let d = h2p - h1p;
        if d > 180.0 {
            d - 360.0
        } else if d < -180.0 {
            d + 360.0
        } else {
            d
        }
    };
    let dhp_big = 2.0 * cprod.sqrt() * (dhp.to_radians() * 0.5).sin();
    // Step 3: weighting functions.
    let lbar = 0.5 * (l1 + l2);
    let cbarp = 0.5 * (c1p + c2p);
    let hbarp = if cprod == 0.0 {
        h1p + h2p
    } else if (h1p - h2p).abs() <= 180.0 {
        0.5 * (h1p + h2p)
    } else if h1p + h2p < 360.0 {
        0.5 * (h1p + h2p + 360.0)
    } else {
        0.5 * (h1p + h2p - 360.0)
    };
    let t = 1.0 - 0.17 * (hbarp - 30.0).to_radians().cos()
        + 0.24 * (2.0 * hbarp).to_radians().cos()
        + 0.32 * (3.0 * hbarp + 6.0).to_radians().cos()
        - 0.20 * (4.0 * hbarp - 63.0).to_radians().cos();
    let dtheta = 30.0 * (-((hbarp - 275.0) / 25.0).powi(2)).exp();
    let cbarp7 = cbarp.powi(7);
    let rc = 2.0 * (cbarp7 / (cbarp7 + POW25_7)).sqrt();
    let l50 = (lbar - 50.0).powi(2);
    let sl = 1.0 + 0.015 * l50 / (20.0 + l50).sqrt();
    let sc = 1.0 + 0.045 * cbarp;
    let sh = 1.0 + 0.015 * cbarp * t;
    let rt = -(2.0 * dtheta).to_radians().sin() * rc;
    let tl = dlp / sl;
    let tc = dcp / sc;
    let th = dhp_big / sh;
    (tl * tl + tc * tc + th * th + rt * tc * th).max(0.0).sqrt()
}

/// Lab of the centre of every 15-bit RGB bin (5 bits per channel), computed once per process.
/// Used where a bin-level colour is precise enough (background likeness), so the per-pixel
/// work is one table read.
pub(crate) fn bin_center_lab() -> &'static [[f32; 3]] {
    static T: OnceLock<Vec<[f32; 3]>> = OnceLock::new();
    T.get_or_init(|| {
        (0..32768u32)
            .map(|i| {
                let c = |v: u32| (v * 8 + 4) as f32 - 0.5;
                srgb_f32_to_lab([c(i >> 10), c((i >> 5) & 31), c(i & 31)])
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sharma, Wu & Dalal (2005), Table 1: L1 a1 b1, L2 a2 b2, ΔE00 (all 34 pairs).
    const SHARMA: [[f64; 7]; 34] = [
        [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
        [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
        [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
        [
            50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000,
        ],
        [
            50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000,
        ],
        [
            50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000,
        ],
        [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
        [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
        [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
        [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
        [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
        [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
        [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
        [
            60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644,
        ],
        [
            63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630,
        ],
        [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
        [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
        [
            22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373,
        ],
        [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
        [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
        [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
        [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
        [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
    ];

    #[test]
    fn ciede2000_matches_all_sharma_pairs_both_ways() {
        for (i, r) in SHARMA.iter().enumerate() {
            let p = [r[0], r[1], r[2]];
            let q = [r[3], r[4], r[5]];
            let d = delta_e2000_f64(p, q);
            let e = delta_e2000_f64(q, p);
            assert!((d - r[6]).abs() < 1e-4, "pair {}: {d} vs {}", i + 1, r[6]);
            assert!((e - r[6]).abs() < 1e-4, "pair {} reversed: {e}", i + 1);
        }
        // The f32 entry point agrees to display precision.
        let d = delta_e2000([50.0, 2.6772, -79.7751], [50.0, 0.0, -82.7485]);
        assert!((d - 2.0425).abs() < 1e-3);
    }

    #[test]
    fn srgb_to_lab_matches_published_values() {
        // Reference values for D65 sRGB (e.g. Bruce Lindbloom's calculator, ColorMine).
        let cases: [([u8; 3], [f32; 3]); 5] = [
            ([255, 255, 255], [100.0, 0.0, 0.0]),
            ([0, 0, 0], [0.0, 0.0, 0.0]),
            ([255, 0, 0], [53.2408, 80.0925, 67.2032]),
            ([0, 255, 0], [87.7347, -86.1827, 83.1793]),
            ([0, 0, 255], [32.2970, 79.1875, -107.8602]),
        ];
        for (rgb, want) in cases {
            let got = srgb_to_lab(rgb);
            for c in 0..3 {
                assert!(
                    (got[c] - want[c]).abs() < 0.02,
                    "{rgb:?}: got {got:?}, want {want:?}"
                );
            }
        }
        // 50% grey: L* of sRGB 128 is 53.585 (Y = 0.2158605).
        let g = srgb_to_lab([128, 128, 128]);
        assert!((g[0] - 53.585).abs() < 0.01 && g[1].abs() < 0.01 && g[2].abs() < 0.01);
    }

    #[test]
    fn lab_round_trips_every_grey_and_a_colour_cube() {
        for v in 0..=255u8 {
            assert_eq!(lab_to_srgb(srgb_to_lab([v, v, v])), [v, v, v]);
        }
        for r in (0..=255u8).step_by(17) {
            for g in (0..=255u8).step_by(17) {
                for b in (0..=255u8).step_by(17) {
                    assert_eq!(lab_to_srgb(srgb_to_lab([r, g, b])), [r, g, b]);
                }
            }
        }
    }

    #[test]
    fn fractional_levels_agree_with_the_byte_path() {
        for v in [0u8, 3, 10, 11, 100, 200, 254, 255] {
            let a = srgb_to_lab([v, 40, 200]);
            let b = srgb_f32_to_lab([v as f32, 40.0, 200.0]);
            assert!(delta_e76_sq(a, b) < 1e-6, "{v}: {a:?} vs {b:?}");
        }
    }

    #[test]
    fn lch_of_pure_colours() {
        let [l, c, h] = lab_to_lch(srgb_to_lab([0, 0, 255]));
        assert!((l - 32.3).abs() < 0.1 && (c - 133.8).abs() < 0.2 && (h - 306.3).abs() < 0.2);
        assert_eq!(lab_to_lch([50.0, 0.0, 0.0])[1], 0.0);
    }
}
