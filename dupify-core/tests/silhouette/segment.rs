//! Segmentation quality on synthetic garments composited onto real floor/wall/fabric patches,
//! the alpha-hint path, cut-outs, and sanity on the committed real photos.

use crate::common::*;
use dupify_core::raster::WorkingImage;
use dupify_core::silhouette::{cutout_png, BoundingBox, ClassicalSegmenter, Segmenter};

const PALETTE: [[u8; 3]; 6] = [
    [30, 40, 95],   // navy
    [170, 30, 40],  // red
    [40, 105, 55],  // green
    [205, 160, 40], // mustard
    [95, 45, 120],  // purple
    [25, 25, 30],   // black
];

/// Box of a garment with aspect `ar` (w/h) centred-ish on a `w × h` canvas, covering about
/// 60-70% of the short dimension it is limited by, shifted by `(dx, dy)`.
fn place(w: u32, h: u32, ar: f32, dx: f32, dy: f32) -> (f32, f32, f32, f32) {
    let (wf, hf) = (w as f32, h as f32);
    let mut bh = hf * 0.7;
    let mut bw = bh * ar;
    if bw > wf * 0.7 {
        bw = wf * 0.7;
        bh = bw / ar;
    }
    ((wf - bw) / 2.0 + dx, (hf - bh) / 2.0 + dy, bw, bh)
}

#[test]
fn synthetic_composites_reach_mean_iou_0_9() {
    let seg = ClassicalSegmenter::new();
    let mut ious = Vec::new();
    for (bi, bg_name) in BACKGROUNDS.iter().enumerate() {
        for (si, (name, poly, ar)) in shapes().into_iter().enumerate() {
            // Portrait canvases for tall garments, landscape for shoes, like phone photos.
            let (w, h) = if ar > 1.2 { (256, 192) } else { (192, 256) };
            let bg = background(bg_name, w, h);
            let colour = PALETTE[(bi + si) % PALETTE.len()];
            let rect = place(w, h, ar, (si as f32 - 1.5) * 6.0, (bi as f32 - 2.5) * 4.0);
            let (img, truth) = composite(&bg, w, h, &poly, rect, colour, (bi * 7 + si) as u64 + 11);
            let s = seg
                .segment(&img)
                .unwrap_or_else(|e| panic!("{name} on {bg_name}: {e}"));
            let v = iou(&s.mask, &truth);
            println!(
                "{name:>8} on {bg_name:>10}: IoU {v:.3} confidence {:.2}",
                s.confidence
            );
            assert!((0.0..=1.0).contains(&s.confidence));
            let truth_frac = truth.foreground_fraction();
            assert!((s.area_fraction - s.mask.foreground_fraction()).abs() < 1e-6);
            if v > 0.9 {
                assert!((s.area_fraction - truth_frac).abs() < 0.1 * truth_frac + 0.01);
            }
            ious.push(v);
        }
    }
    let mean = ious.iter().sum::<f32>() / ious.len() as f32;
    println!("mean IoU {mean:.3} over {} composites", ious.len());
    assert!(mean >= 0.9, "mean IoU {mean:.3} < 0.9");
}

#[test]
fn bbox_matches_the_mask_and_scales_to_the_original() {
    let (w, h) = (192, 256);
    let bg = background("light_wood", w, h);
    let rect = place(w, h, 0.45, 0.0, 0.0);
    let (img, truth) = composite(&bg, w, h, &trouser(), rect, PALETTE[0], 5);
    let s = ClassicalSegmenter::new().segment(&img).unwrap();
    // The box of the true mask, within 3 px (the clean-up rounds the sharp leg corners).
    let t = BoundingBox::of_mask(&truth).unwrap();
    for (got, want) in [
        (s.bbox.x, t.x),
        (s.bbox.y, t.y),
        (s.bbox.width, t.width),
        (s.bbox.height, t.height),
    ] {
        assert!(got.abs_diff(want) <= 3, "{:?} vs {t:?}", s.bbox);
    }
    let big = s.bbox_at(w * 4, h * 4);
    assert_eq!(big.x, s.bbox.x * 4);
    assert_eq!(big.width, s.bbox.width * 4);
    let full = s.mask_at(w * 4, h * 4).unwrap();
    assert_eq!((full.width, full.height), (w * 4, h * 4));
    // The upsampled mask agrees with the working mask at corresponding pixels.
    let mut agree = 0usize;
    for y in 0..h {
        for x in 0..w {
            let a = s.mask.data[(y * w + x) as usize] >= 128;
            let b = full.data[((y * 4 + 2) * w * 4 + x * 4 + 2) as usize] >= 128;
            agree += (a == b) as usize;
        }
    }
    assert!(agree as f32 / (w * h) as f32 > 0.99);
    assert!(iou(&s.mask, &truth) > 0.9);
}

#[test]
fn alpha_plane_is_the_answer() {
    // Uniform colour everywhere: only alpha says where the product is.
    let (w, h) = (160u32, 200u32);
    let cov = coverage(&dress(), w, h, (30.0, 20.0, 100.0, 150.0), false);
    let truth = mask_from(&cov, w, h);
    let alpha: Vec<u8> = cov.iter().map(|&c| (c * 255.0).round() as u8).collect();
    let img = WorkingImage::new(w, h, vec![128; (w * h * 3) as usize], Some(alpha)).unwrap();
    let s = ClassicalSegmenter::new().segment(&img).unwrap();
    assert!(iou(&s.mask, &truth) > 0.98, "IoU {}", iou(&s.mask, &truth));
    assert!(s.confidence > 0.5);
}

#[test]
fn uniform_image_has_no_foreground() {
    let img = WorkingImage::new(64, 48, vec![200; 64 * 48 * 3], None).unwrap();
    let err = ClassicalSegmenter::new().segment(&img).unwrap_err();
    assert_eq!(err.code(), "image_processing_failed");
    assert!(err.to_string().contains("no foreground"), "{err}");
    let tiny = WorkingImage::new(4, 4, vec![0; 48], None).unwrap();
    assert!(ClassicalSegmenter::new().segment(&tiny).is_err());
}

#[test]
fn cutout_of_a_composite_is_transparent_outside_the_product() {
    let (w, h) = (192, 256);
    let bg = background("wall", w, h);
    let rect = place(w, h, 1.05, 0.0, 0.0);
    let (img, _) = composite(&bg, w, h, &tshirt(), rect, PALETTE[1], 9);
    let s = ClassicalSegmenter::new().segment(&img).unwrap();
    // Pretend the original is 2x the working image.
    let (fw, fh) = (w * 2, h * 2);
    let mut full = Vec::with_capacity((fw * fh * 3) as usize);
    for y in 0..fh {
        for x in 0..fw {
            full.extend_from_slice(&img.pixel(x / 2, y / 2));
        }
    }
    let png = cutout_png(fw, fh, &full, &s.mask).unwrap();
    let out = image::load_from_memory(&png).unwrap().to_rgba8();
    assert_eq!(out.dimensions(), (fw, fh));
    assert_eq!(out.get_pixel(2, 2).0[3], 0, "corner is background");
    let (cx, cy) = (
        (rect.0 + rect.2 / 2.0) as u32 * 2,
        (rect.1 + rect.3 * 0.6) as u32 * 2,
    );
    let p = out.get_pixel(cx, cy).0;
    assert_eq!(p[3], 255, "product centre is opaque");
    assert_eq!(&p[..3], &full[((cy * fw + cx) * 3) as usize..][..3]);
    let soft = out.pixels().filter(|p| p.0[3] > 0 && p.0[3] < 255).count();
    assert!(soft > 0, "edges should be soft");
}

#[test]
fn real_photos_give_plausible_masks() {
    // No ground truth for these: check what any sane product mask satisfies.
    let dir = assets().join("clothing");
    let seg = ClassicalSegmenter::new();
    let mut n = 0;
    let mut plausible = 0;
    for cat in std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
    {
        for f in std::fs::read_dir(cat.path()).unwrap().flatten() {
            n += 1;
            let img = working_image_from_file(&f.path());
            let Ok(s) = seg.segment(&img) else {
                println!("{}: no segmentation", f.path().display());
                continue;
            };
            let (w, h) = (img.width() as f32, img.height() as f32);
            let cx = s.bbox.x as f32 + s.bbox.width as f32 / 2.0;
            let cy = s.bbox.y as f32 + s.bbox.height as f32 / 2.0;
            let ok = (0.05..0.9).contains(&s.area_fraction)
                && (0.2 * w..0.8 * w).contains(&cx)
                && (0.2 * h..0.8 * h).contains(&cy);
            println!(
                "{}: area {:.2} conf {:.2} ok {ok}",
                f.path().display(),
                s.area_fraction,
                s.confidence
            );
            plausible += ok as usize;
        }
    }
    assert_eq!(n, 40, "expected the 40 committed fixture photos");
    assert!(plausible >= 34, "only {plausible}/40 plausible masks");
}
