//! Dominant colours on the 40 committed real clothing photos: structural invariants on all of
//! them, determinism, and the product colour on a few photos whose colour is unambiguous to a
//! human looking at them (labels written down by eye, not produced by this code).

use crate::common::{assets, clothing_photos, working_image};
use dupify_core::colors::{extract_colors, ColorFamily, ColorOptions, ForegroundSource};

#[test]
fn every_photo_gives_a_sane_report() {
    let opts = ColorOptions::default();
    let mut border = 0;
    for p in clothing_photos() {
        let img = working_image(&p);
        let r = extract_colors(&img, None, &opts).unwrap();
        let ctx = format!("{}: {r:#?}", p.display());
        assert!(!r.colors.is_empty() && r.colors.len() <= 5, "{ctx}");
        assert!(
            r.colors.windows(2).all(|w| w[0].share >= w[1].share),
            "{ctx}"
        );
        assert!(r.colors.iter().all(|c| c.share >= 1.0), "{ctx}");
        let sum: f32 = r.colors.iter().map(|c| c.share).sum();
        assert!(sum <= 100.0 + 1e-3, "{ctx}");
        assert!(
            r.product_fraction > 0.0 && r.product_fraction <= 1.0,
            "{ctx}"
        );
        assert!(r.family.is_some(), "{ctx}");
        for c in &r.colors {
            assert_eq!(c.hex.len(), 7);
            assert!(c.name_distance >= 0.0 && c.name_distance.is_finite());
        }
        if r.foreground == ForegroundSource::BorderModel {
            border += 1;
            // A product photo: the product is neither a sliver nor the whole frame.
            assert!(
                r.product_fraction > 0.05 && r.product_fraction < 0.95,
                "{ctx}"
            );
            assert!(!r.background.is_empty(), "{ctx}");
        }
    }
    assert!(
        border >= 36,
        "border model used on only {border} of 40 photos"
    );
}

#[test]
fn photos_give_identical_reports_on_repeat() {
    for p in clothing_photos().into_iter().step_by(5) {
        let img = working_image(&p);
        let a = extract_colors(&img, None, &ColorOptions::default()).unwrap();
        let b = extract_colors(&img, None, &ColorOptions::default()).unwrap();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }
}

#[test]
fn clear_cut_photos_get_the_colour_a_person_sees() {
    // (photo, acceptable families for the product's first colour), judged by eye.
    let cases: [(&str, &[ColorFamily]); 5] = [
        // black leather cap on a white sheet
        (
            "hat/2a12baab-f020-42e3-8e6b-5d82e3ed0b55.jpg",
            &[ColorFamily::Black],
        ),
        // red long-sleeve top with a bear print, on a wooden floor
        (
            "longsleeve/11f2ff4e-6b43-4071-b5b1-2036ec0fe8fe.jpg",
            &[ColorFamily::Red, ColorFamily::Orange],
        ),
        // lime/yellow-green sandals on a tiled floor
        (
            "shoes/0dd87e47-ca85-4d5c-9fd1-59f5a01eb656.jpg",
            &[ColorFamily::Yellow, ColorFamily::Green],
        ),
        // light grey-blue trousers on a wooden floor
        (
            "pants/05814dc4-0520-47e6-91e0-402a971ba40a.jpg",
            &[ColorFamily::Grey, ColorFamily::Blue],
        ),
        // black skirt on a beige bedspread
        (
            "skirt/0558b2c5-be00-49de-b27f-8c88114ac36f.jpg",
            &[ColorFamily::Black],
        ),
    ];
    for (rel, fams) in cases {
        let img = working_image(&assets().join("clothing").join(rel));
        let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
        assert!(
            fams.contains(&r.colors[0].family),
            "{rel}: first colour {:?}, want one of {fams:?}; {r:#?}",
            r.colors[0]
        );
    }
}
