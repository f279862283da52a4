//! Dupe scoring: a weighted combination of per-channel similarities, each in [0, 1]-ish
//! ranges so weights mean what they say.
//!
//! - CLIP: cosine similarity of the L2-normalised image embeddings.
//! - Shape: cosine similarity of the silhouette shape embeddings.
//! - Colour: `1 - min(d, 100) / 100`, where `d` is the earth mover's distance between the
//!   palettes in ΔE2000 units: the same [`crate::colors::palette_distance`] the colour stage
//!   offers (ΔE ≈ 2.3 is a just-noticeable difference, 100 is black vs white).
//!
//! A channel missing on either side is left out and the remaining weights renormalised, so a
//! product without a silhouette is not punished against one with it.

use serde::{Deserialize, Serialize};

use super::ColorSwatch;
use crate::colors::palette_distance;

/// Weights of the score channels. Negative or non-finite weights are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelWeights {
    /// CLIP embedding similarity. Default 0.7.
    pub clip: f32,
    /// Silhouette shape similarity. Default 0.15.
    pub shape: f32,
    /// Colour palette similarity. Default 0.15.
    pub color: f32,
}

impl Default for ChannelWeights {
    fn default() -> Self {
        ChannelWeights {
            clip: 0.7,
            shape: 0.15,
            color: 0.15,
        }
    }
}

/// Per-channel similarities of one hit (absent when either side lacks the channel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelScores {
    /// CLIP cosine similarity.
    pub clip: Option<f32>,
    /// Shape cosine similarity.
    pub shape: Option<f32>,
    /// Colour palette similarity.
    pub color: Option<f32>,
}

impl ChannelScores {
    /// The weighted mean of the present channels (0 when none is present or weighted).
    pub fn combined(&self, w: &ChannelWeights) -> f32 {
        let mut num = 0.0;
        let mut den = 0.0;
        for (s, w) in [
            (self.clip, w.clip),
            (self.shape, w.shape),
            (self.color, w.color),
        ] {
            if let Some(s) = s {
                num += s * w;
                den += w;
            }
        }
        if den > 0.0 {
            num / den
        } else {
            0.0
        }
    }
}

/// Cosine similarity of two vectors of any norm (0 when either is zero or lengths differ).
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (na, nb) = (dot(a, a).sqrt(), dot(b, b).sqrt());
    if na == 0.0 || nb == 0.0 {
        return Some(0.0);
    }
    Some(dot(a, b) / (na * nb))
}

/// Palette similarity in [0, 1] (None when either palette is empty): one minus the earth
/// mover's distance between the palettes ([`crate::colors::palette_distance`], ΔE2000
/// units), scaled by 100 and clamped.
pub fn palette_similarity(a: &[ColorSwatch], b: &[ColorSwatch]) -> Option<f32> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    Some(1.0 - palette_distance(a, b).min(100.0) / 100.0)
}

/// Dot product with 8 independent accumulators, which LLVM vectorises. Compiled for the
/// baseline target and again for AVX2+FMA and AVX-512, picked at run time (`multiversion`):
/// the default x86-64 target has only SSE2, and this is the inner loop of every graph insert
/// and search.
#[multiversion::multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(l: f32, a: f32, b: f32, share: f32) -> ColorSwatch {
        ColorSwatch {
            lab: [l, a, b],
            share,
        }
    }

    #[test]
    fn palette_similarity_is_one_for_identical_and_lower_for_far() {
        let red = vec![sw(53.2, 80.1, 67.2, 80.0), sw(100.0, 0.0, 0.0, 20.0)];
        let blue = vec![sw(32.3, 79.2, -107.9, 100.0)];
        assert_eq!(palette_similarity(&red, &red), Some(1.0));
        let s = palette_similarity(&red, &blue).unwrap();
        assert!(s < 0.5, "{s}");
        assert_eq!(
            palette_similarity(&red, &blue),
            palette_similarity(&blue, &red)
        );
        assert_eq!(palette_similarity(&[], &red), None);
        // black vs white: ΔE = 100 → 0
        let s = palette_similarity(&[sw(0.0, 0.0, 0.0, 100.0)], &[sw(100.0, 0.0, 0.0, 100.0)]);
        assert_eq!(s, Some(0.0));
    }

    #[test]
    fn combined_renormalises_over_present_channels() {
        let w = ChannelWeights::default();
        let s = ChannelScores {
            clip: Some(0.8),
            shape: None,
            color: None,
        };
        assert!((s.combined(&w) - 0.8).abs() < 1e-6);
        let s = ChannelScores {
            clip: Some(1.0),
            shape: Some(0.0),
            color: Some(0.0),
        };
        assert!((s.combined(&w) - 0.7).abs() < 1e-6);
        assert_eq!(ChannelScores::default().combined(&w), 0.0);
    }

    #[test]
    fn cosine_handles_mismatch_and_zero() {
        assert_eq!(cosine(&[1.0, 0.0], &[1.0]), None);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), Some(0.0));
        assert!((cosine(&[2.0, 0.0], &[1.0, 0.0]).unwrap() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn palette_similarity_weighs_shares_as_the_colour_stage_does() {
        // Same two colours, different proportions: the nearest-swatch distance would call
        // them identical; the earth mover's distance moves 40% of the mass across ΔE(navy,
        // white) and says how far.
        let navy = [24.0, 5.0, -30.0];
        let white = [96.0, 0.0, 1.0];
        let mostly_navy = [
            sw(navy[0], navy[1], navy[2], 90.0),
            sw(white[0], white[1], white[2], 10.0),
        ];
        let half = [
            sw(navy[0], navy[1], navy[2], 50.0),
            sw(white[0], white[1], white[2], 50.0),
        ];
        let s = palette_similarity(&mostly_navy, &half).unwrap();
        let de = crate::colors::delta_e2000(navy, white);
        assert!(
            (s - (1.0 - 0.4 * de / 100.0)).abs() < 1e-3,
            "{s} vs ΔE {de}"
        );
        // Shares are ratios: percent or any other scale gives the same similarity.
        let scaled: Vec<ColorSwatch> = half
            .iter()
            .map(|c| sw(c.lab[0], c.lab[1], c.lab[2], c.share / 100.0))
            .collect();
        assert_eq!(
            palette_similarity(&mostly_navy, &half),
            palette_similarity(&mostly_navy, &scaled)
        );
    }
}
