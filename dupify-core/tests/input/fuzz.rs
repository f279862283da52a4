//! Property tests: random bytes, random truncations and random byte flips of valid files in
//! every format give `Ok` or a typed error — never a panic. A decoded image is also pushed
//! through CLIP preprocessing and the working image, which must not panic either.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use dupify_core::input::{decode, ClipPreprocess, ImageInput, InputLimits, ResizeMode};
use proptest::prelude::*;

const FILES: [&str; 10] = [
    "source.png",
    "upright.jpg",
    "exif6.jpg",
    "cmyk.jpg",
    "rgb16.png",
    "rgba.png",
    "lossless.webp",
    "lossy.webp",
    "anim.gif",
    "source.bmp",
];

fn fixtures() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/assets/input");
    FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect()
}

static DECODER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// `decode` turns a decoder panic into a typed error as a last line of defence; this hook
/// counts such panics anyway, so the property is "no panic at all", not "no panic escaped".
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            DECODER_PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Decodes with small limits (so hostile headers are cheap) and exercises every derived view.
fn exercise(input: ImageInput) {
    count_panics();
    let before = DECODER_PANICS.load(Ordering::SeqCst);
    let limits = InputLimits::default().with_max_pixels(4_000_000);
    match decode(&input, &limits) {
        Ok(img) => {
            assert!(img.width() > 0 && img.height() > 0);
            assert_eq!(
                img.rgb().len(),
                img.width() as usize * img.height() as usize * 3
            );
            for mode in [ResizeMode::CenterCrop, ResizeMode::PadToSquare] {
                let t = ClipPreprocess::new(32)
                    .with_mode(mode)
                    .preprocess(&img)
                    .unwrap();
                assert!(t.iter().all(|v| v.is_finite()));
            }
            img.working(64).unwrap();
        }
        Err(e) => {
            // Every error carries a hosted code.
            assert!(!e.code().is_empty());
        }
    }
    assert_eq!(
        DECODER_PANICS.load(Ordering::SeqCst),
        before,
        "a panic happened inside decode"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(ImageInput::Bytes(bytes));
    }

    #[test]
    fn random_bytes_behind_a_real_signature_never_panic(
        which in 0..FILES.len(),
        keep in 0usize..64,
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let f = &fixtures()[which];
        let mut bytes = f[..keep.min(f.len())].to_vec();
        bytes.extend_from_slice(&tail);
        exercise(ImageInput::Bytes(bytes));
    }

    #[test]
    fn truncations_never_panic(which in 0..FILES.len(), frac in 0.0f64..1.0) {
        let f = &fixtures()[which];
        let cut = (f.len() as f64 * frac) as usize;
        exercise(ImageInput::Bytes(f[..cut].to_vec()));
    }

    #[test]
    fn byte_flips_never_panic(
        which in 0..FILES.len(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut f = fixtures()[which].clone();
        for (at, v) in flips {
            let i = at.index(f.len());
            f[i] ^= v | 1;
        }
        exercise(ImageInput::Bytes(f));
    }

    #[test]
    fn random_base64_never_panics(s in "(data:image/[a-z]{0,5};base64,)?[A-Za-z0-9+/=_ \\n-]{0,400}") {
        exercise(ImageInput::Base64(s));
    }

    #[test]
    fn random_raw_buffers_never_panic(w in 0u32..40, h in 0u32..40, rgba in any::<bool>(), extra in 0usize..3) {
        let ch = if rgba { 4 } else { 3 };
        let data = vec![7u8; (w * h) as usize * ch + extra];
        let layout = if rgba { dupify_core::input::PixelLayout::Rgba } else { dupify_core::input::PixelLayout::Rgb };
        exercise(ImageInput::Raw { width: w, height: h, layout, data });
    }
}
