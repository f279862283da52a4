//! Shape-embedding invariances and discrimination on procedurally drawn garment outlines.

use crate::common::*;
use dupify_core::raster::Mask;
use dupify_core::silhouette::{shape_cosine, shape_embedding, SHAPE_EMBEDDING_DIM};

/// The garment drawn with box height `bh` at `(x0, y0)` on a 420×420 canvas.
fn draw(poly: &[(f32, f32)], ar: f32, bh: f32, x0: f32, y0: f32, mirror: bool) -> Mask {
    let (w, h) = (420, 420);
    let cov = coverage(poly, w, h, (x0, y0, bh * ar, bh), mirror);
    mask_from(&cov, w, h)
}

/// Base size: the box's long side is 120 px, so ×0.5 is 60 px and ×2 is 240 px.
fn base_height(ar: f32) -> f32 {
    if ar > 1.0 {
        120.0 / ar
    } else {
        120.0
    }
}

fn variants(poly: &[(f32, f32)], ar: f32) -> Vec<(String, Mask)> {
    let bh = base_height(ar);
    let mut v = vec![
        (
            "translated".to_string(),
            draw(poly, ar, bh, 200.0, 230.0, false),
        ),
        ("mirrored".to_string(), draw(poly, ar, bh, 80.0, 60.0, true)),
        (
            "translated+mirrored".to_string(),
            draw(poly, ar, bh, 251.3, 17.7, true),
        ),
    ];
    for s in [0.5f32, 0.75, 1.5, 2.0] {
        v.push((
            format!("scaled x{s}"),
            draw(poly, ar, bh * s, 13.4, 21.8, false),
        ));
        v.push((
            format!("scaled x{s} + mirrored"),
            draw(poly, ar, bh * s, 40.0, 9.0, true),
        ));
    }
    v
}

#[test]
fn embedding_is_invariant_to_translation_scale_and_mirroring() {
    for (name, poly, ar) in shapes() {
        let base = shape_embedding(&draw(&poly, ar, base_height(ar), 60.0, 50.0, false)).unwrap();
        assert_eq!(base.len(), SHAPE_EMBEDDING_DIM);
        for (what, m) in variants(&poly, ar) {
            let e = shape_embedding(&m).unwrap();
            let c = shape_cosine(&base, &e);
            println!("{name:>8} {what:>24}: cosine {c:.4}");
            assert!(c >= 0.99, "{name} {what}: cosine {c:.4} < 0.99");
        }
    }
}

#[test]
fn different_garments_are_farther_apart_than_transformed_copies() {
    let all: Vec<(&str, Vec<Vec<f32>>)> = shapes()
        .into_iter()
        .map(|(name, poly, ar)| {
            let mut embs =
                vec![
                    shape_embedding(&draw(&poly, ar, base_height(ar), 60.0, 50.0, false)).unwrap(),
                ];
            embs.extend(
                variants(&poly, ar)
                    .iter()
                    .map(|(_, m)| shape_embedding(m).unwrap()),
            );
            (name, embs)
        })
        .collect();
    for (i, (na, ea)) in all.iter().enumerate() {
        let within = ea
            .iter()
            .flat_map(|x| ea.iter().map(move |y| shape_cosine(x, y)))
            .fold(f32::INFINITY, f32::min);
        for (nb, eb) in all.iter().skip(i + 1) {
            let across = ea
                .iter()
                .flat_map(|x| eb.iter().map(move |y| shape_cosine(x, y)))
                .fold(f32::NEG_INFINITY, f32::max);
            println!("{na} vs {nb}: max across {across:.3}, min within {na} {within:.3}");
            assert!(across < within, "{na} vs {nb}: {across:.3} >= {within:.3}");
            assert!(across < 0.95, "{na} vs {nb}: {across:.3}");
        }
    }
}

#[test]
fn embedding_is_robust_to_small_mask_noise() {
    let mut rng = Rng(0x5eed);
    for (name, poly, ar) in shapes() {
        let clean = draw(&poly, ar, base_height(ar), 100.0, 100.0, false);
        let base = shape_embedding(&clean).unwrap();
        // Flip ~15% of the pixels on the boundary (both sides) and sprinkle 20 specks.
        let (w, h) = (clean.width as usize, clean.height as usize);
        let mut noisy = clean.clone();
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let i = y * w + x;
                let edge = clean.data[i] != clean.data[i + 1] || clean.data[i] != clean.data[i + w];
                if edge && rng.unif24() < 0.15 {
                    noisy.data[i] = 255 - noisy.data[i];
                }
            }
        }
        for _ in 0..20 {
            let i = (rng.unif24() * (w * h) as f32) as usize;
            noisy.data[i] = 255;
        }
        let c = shape_cosine(&base, &shape_embedding(&noisy).unwrap());
        println!("{name}: noisy cosine {c:.4}");
        assert!(c >= 0.97, "{name}: noisy cosine {c:.4}");
    }
}

#[test]
fn empty_and_tiny_masks_are_clear_errors() {
    let empty = Mask::new(50, 50, vec![0; 2500]).unwrap();
    let e = shape_embedding(&empty).unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("invalid_parameter", 400));
    assert!(e.to_string().contains("has 0 foreground pixels"), "{e}");
    let mut tiny = vec![0u8; 2500];
    for y in 20..24 {
        for x in 20..24 {
            tiny[y * 50 + x] = 255;
        }
    }
    let e = shape_embedding(&Mask::new(50, 50, tiny).unwrap()).unwrap_err();
    assert!(e.to_string().contains("has 16 foreground pixels"), "{e}");
    let zero = Mask {
        width: 0,
        height: 0,
        data: vec![],
    };
    assert_eq!(
        shape_embedding(&zero).unwrap_err().code(),
        "invalid_parameter"
    );
}
