//! Image input on real photos: every input kind and format, orientation, colour conversions,
//! alpha, and a typed error for every bad-input class.
//!
//! Fixtures are built from a committed CC0 photo by `weights/make_input_fixtures.py` (Pillow);
//! expected pixels come from `source.rgb`, written by numpy, never from our decoder.

use std::path::PathBuf;

use base64::Engine as _;
use dupify_core::input::{
    decode, decode_bytes, DecodedImage, ImageInput, InputFormat, InputLimits, PixelLayout,
};
use dupify_core::Error;

const W: u32 = 96;
const H: u32 = 163;

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/assets/input")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(asset(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn source() -> Vec<u8> {
    let s = read("source.rgb");
    assert_eq!(s.len(), (W * H * 3) as usize);
    s
}

fn dec(name: &str) -> DecodedImage {
    decode(&ImageInput::Bytes(read(name)), &InputLimits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
        .sum::<f64>()
        / a.len() as f64
}

/// Pillow's `convert("L")`: ITU-R 601-2 luma in 16-bit fixed point.
fn pillow_luma(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| {
            ((u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471 + 0x8000)
                >> 16) as u8
        })
        .collect()
}

#[test]
fn lossless_formats_decode_to_the_exact_source_pixels() {
    let src = source();
    for (name, fmt) in [
        ("source.png", InputFormat::Png),
        ("lossless.webp", InputFormat::WebP),
        ("source.bmp", InputFormat::Bmp),
        // 16-bit RGB holding v * 257: the correct 8-bit value is exactly v.
        ("rgb16.png", InputFormat::Png),
    ] {
        let img = dec(name);
        assert_eq!(
            (img.width(), img.height(), img.format()),
            (W, H, fmt),
            "{name}"
        );
        assert!(img.alpha().is_none(), "{name}");
        assert!(
            img.rgb() == src.as_slice(),
            "{name}: pixels differ from source"
        );
    }
}

#[test]
fn lossy_formats_decode_close_to_the_source() {
    let src = source();
    for (name, fmt, tol) in [
        ("upright.jpg", InputFormat::Jpeg, 3.0),
        ("lossy.webp", InputFormat::WebP, 6.0),
        ("anim.gif", InputFormat::Gif, 6.0),
    ] {
        let img = dec(name);
        assert_eq!(
            (img.width(), img.height(), img.format()),
            (W, H, fmt),
            "{name}"
        );
        let d = mean_abs_diff(img.rgb(), &src);
        assert!(d < tol, "{name}: mean |diff| {d:.2} ≥ {tol}");
    }
}

#[test]
fn gif_gives_its_first_frame() {
    // Frame 2 is the inverted photo; the decode must be frame 1.
    let img = dec("anim.gif");
    let inverted: Vec<u8> = source().iter().map(|v| 255 - v).collect();
    assert!(mean_abs_diff(img.rgb(), &inverted) > 60.0);
    assert!(mean_abs_diff(img.rgb(), &source()) < 6.0);
}

#[test]
fn exif_rotated_jpegs_come_out_upright() {
    let src = source();
    let upright = dec("upright.jpg");
    for name in ["exif3.jpg", "exif6.jpg", "exif8.jpg"] {
        let img = dec(name);
        assert_eq!((img.width(), img.height()), (W, H), "{name} not upright");
        let d = mean_abs_diff(img.rgb(), &src);
        assert!(d < 4.0, "{name}: mean |diff| to upright source {d:.2}");
        let d = mean_abs_diff(img.rgb(), upright.rgb());
        assert!(d < 4.0, "{name}: mean |diff| to upright.jpg {d:.2}");
    }
}

#[test]
fn cmyk_jpeg_converts_to_the_right_colours() {
    // Adobe (inverted) CMYK with a real K channel; R = (255-C)(255-K)/255 reconstructs the
    // source. Inverted or naively converted CMYK would be off by tens of levels.
    let img = dec("cmyk.jpg");
    assert_eq!(
        (img.width(), img.height(), img.format()),
        (W, H, InputFormat::Jpeg)
    );
    let d = mean_abs_diff(img.rgb(), &source());
    assert!(d < 3.0, "CMYK mean |diff| {d:.2}");
}

#[test]
fn grayscale_replicates_luma_into_rgb() {
    let luma = pillow_luma(&source());
    for (name, exact) in [
        ("gray.png", true),
        ("gray16.png", true),
        ("gray.jpg", false),
    ] {
        let img = dec(name);
        assert_eq!((img.width(), img.height()), (W, H), "{name}");
        let mut got = Vec::new();
        for px in img.rgb().chunks_exact(3) {
            assert!(px[0] == px[1] && px[1] == px[2], "{name}: not gray {px:?}");
            got.push(px[0]);
        }
        if exact {
            assert!(got == luma, "{name}: luma differs");
        } else {
            let d = mean_abs_diff(&got, &luma);
            assert!(d < 3.0, "{name}: mean |diff| {d:.2}");
        }
    }
}

#[test]
fn alpha_is_kept_as_a_plane_not_flattened() {
    let img = dec("rgba.png");
    let alpha = img.alpha().expect("rgba.png has transparency");
    let src = source();
    let n = (W * H) as usize;
    assert_eq!(alpha.len(), n);
    let transparent = alpha.iter().filter(|&&a| a == 0).count();
    assert!((0.4..0.6).contains(&(transparent as f64 / n as f64)));
    assert!(alpha.iter().all(|&a| a == 0 || a == 128 || a == 255));
    for i in 0..n {
        let px = &img.rgb()[i * 3..i * 3 + 3];
        match alpha[i] {
            0 => assert_eq!(px, &[0, 0, 0], "stored colour of transparent pixel {i}"),
            _ => assert_eq!(px, &src[i * 3..i * 3 + 3], "opaque pixel {i}"),
        }
    }
    // The cut-out view round-trips.
    let rgba = img.rgba_bytes();
    assert_eq!(rgba.len(), n * 4);
    assert_eq!(
        rgba[3..].iter().step_by(4).copied().collect::<Vec<_>>(),
        alpha
    );

    // The working image keeps the plane, resized, and transparent corners stay transparent.
    let w = img.working(64).unwrap();
    assert_eq!((w.width(), w.height()), (38, 64));
    let wa = w.alpha().expect("working image keeps alpha");
    assert_eq!(wa[0], 0);
    let centre = (32 * 38 + 19) as usize;
    assert_eq!(wa[centre], 255);
    // Alpha-weighted resize: the opaque centre keeps the photo's colours, no black bleed.
    assert!(w.pixel(19, 32).iter().any(|&c| c > 60));
}

#[test]
fn working_image_fits_the_long_side_and_never_upscales() {
    let img = dec("upright.jpg");
    assert!(img.alpha().is_none());
    let w = img.working(64).unwrap();
    assert_eq!((w.width(), w.height()), (38, 64));
    assert!(w.alpha().is_none());
    let same = img.working(256).unwrap();
    assert_eq!((same.width(), same.height()), (W, H));
    assert_eq!(same.rgb(), img.rgb());
    assert_eq!(img.working(0).unwrap_err().code(), "invalid_parameter");
}

#[test]
fn every_input_kind_gives_the_same_image() {
    let bytes = read("source.png");
    let limits = InputLimits::default();
    let want = decode(&ImageInput::from(bytes.clone()), &limits).unwrap();
    assert_eq!(want.rgb(), source().as_slice());

    let std = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    let wrapped: String = std
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let inputs = [
        ImageInput::Base64(std.clone()),
        ImageInput::Base64(url_safe),
        ImageInput::Base64(format!("data:image/png;base64,{std}")),
        ImageInput::Base64(format!("  data:image/png;base64,\n{wrapped}\n")),
        ImageInput::from(asset("source.png")),
        ImageInput::from(asset("source.png").as_path()),
        ImageInput::from(bytes.as_slice()),
        ImageInput::Raw {
            width: W,
            height: H,
            layout: PixelLayout::Rgb,
            data: source(),
        },
    ];
    for input in &inputs {
        let got = decode(input, &limits).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!((got.width(), got.height()), (W, H), "{input:?}");
        assert!(got.rgb() == want.rgb(), "{input:?}: pixels differ");
    }
    assert_eq!(decode_bytes(&bytes, &limits).unwrap(), want);

    // Raw RGBA: opaque drops the plane, transparent keeps it.
    let opaque: Vec<u8> = source()
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let raw = |data: Vec<u8>| ImageInput::Raw {
        width: W,
        height: H,
        layout: PixelLayout::Rgba,
        data,
    };
    let img = decode(&raw(opaque.clone()), &limits).unwrap();
    assert!(img.alpha().is_none() && img.rgb() == want.rgb());
    assert_eq!(img.format(), InputFormat::Raw);
    let mut holey = opaque;
    holey[3] = 0;
    let img = decode(&raw(holey), &limits).unwrap();
    assert_eq!(img.alpha().unwrap()[0], 0);
}

// With the `url-fetch` feature the URL is fetched instead: see tests/input/url.rs.
#[cfg(not(feature = "url-fetch"))]
#[test]
fn url_input_is_not_available() {
    let e = decode(
        &ImageInput::Url("https://example.com/a.jpg".into()),
        &InputLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::NotAvailable { .. }));
    assert_eq!((e.code(), e.http_status()), ("not_available", 501));
}

fn err(input: ImageInput, limits: &InputLimits) -> Error {
    match decode(&input, limits) {
        Ok(img) => panic!("{input:?} decoded to {img:?}, expected an error"),
        Err(e) => e,
    }
}

#[test]
fn empty_and_zero_sized_inputs_are_image_processing_failures() {
    let l = InputLimits::default();
    assert!(matches!(
        err(ImageInput::Bytes(vec![]), &l),
        Error::EmptyImage { .. }
    ));
    let e = err(
        ImageInput::Raw {
            width: 0,
            height: 10,
            layout: PixelLayout::Rgb,
            data: vec![],
        },
        &l,
    );
    assert!(matches!(e, Error::EmptyImage { .. }), "{e:?}");
    // BMP whose header says width 0 (width is the i32 at offset 18).
    let mut bmp = read("source.bmp");
    bmp[18..22].copy_from_slice(&0i32.to_le_bytes());
    let e = err(ImageInput::Bytes(bmp), &l);
    assert!(matches!(e, Error::EmptyImage { .. }), "{e:?}");
    assert_eq!(e.code(), "image_processing_failed");
    // PNG whose IHDR says width 0 (CRC fixed so only the size is wrong).
    let mut png = read("source.png");
    png[16..20].copy_from_slice(&0u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let e = err(ImageInput::Bytes(png), &l);
    assert_eq!(e.code(), "image_processing_failed", "{e:?}");
}

/// CRC-32 (IEEE), for patching PNG chunks.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn truncated_and_corrupt_files_are_image_processing_failures() {
    let l = InputLimits::default();
    for name in [
        "source.png",
        "upright.jpg",
        "lossless.webp",
        "anim.gif",
        "source.bmp",
    ] {
        let bytes = read(name);
        for cut in [bytes.len() / 2, 40, 12] {
            let e = err(ImageInput::Bytes(bytes[..cut].to_vec()), &l);
            assert_eq!(
                e.code(),
                "image_processing_failed",
                "{name} cut at {cut}: {e:?}"
            );
            assert_eq!(e.http_status(), 422);
        }
    }
    // Valid PNG signature and IHDR, garbage afterwards.
    let mut png = read("source.png");
    for b in png.iter_mut().skip(40) {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    assert_eq!(
        err(ImageInput::Bytes(png), &l).code(),
        "image_processing_failed"
    );
}

#[test]
fn unsupported_formats_are_typed() {
    let l = InputLimits::default();
    let e = err(ImageInput::Bytes(read("tiny.tiff")), &l);
    assert!(matches!(e, Error::UnsupportedFormat { .. }), "{e:?}");
    assert!(e.to_string().contains("tif"), "{e}");
    let e = err(
        ImageInput::Bytes(b"hello, this is not an image".to_vec()),
        &l,
    );
    assert_eq!((e.code(), e.http_status()), ("unsupported_format", 422));
    let e = err(
        ImageInput::Base64("data:text/plain;base64,aGVsbG8=".into()),
        &l,
    );
    assert_eq!(e.code(), "unsupported_format");
}

#[test]
fn bad_base64_is_invalid_base64() {
    let l = InputLimits::default();
    for bad in [
        "not base64 at all!",
        "data:image/png;base64,@@@@",
        "",
        "QQ=x",
    ] {
        let e = err(ImageInput::Base64(bad.into()), &l);
        assert!(matches!(e, Error::InvalidBase64 { .. }), "{bad:?}: {e:?}");
        assert_eq!(e.http_status(), 400);
    }
}

#[test]
fn limits_are_enforced_from_the_header() {
    let bytes = read("upright.jpg");
    let d = InputLimits::default();
    let e = err(ImageInput::Bytes(bytes.clone()), &d.with_max_bytes(1000));
    assert!(
        matches!(e, Error::ImageTooLarge { actual, limit: 1000, .. } if actual == bytes.len() as u64)
    );
    let e = err(ImageInput::Bytes(bytes.clone()), &d.with_max_pixels(10_000));
    assert!(
        matches!(e, Error::ImageTooLarge { actual, .. } if actual == u64::from(W * H)),
        "{e:?}"
    );
    let e = err(ImageInput::Bytes(bytes.clone()), &d.with_max_side(100));
    assert!(
        matches!(
            e,
            Error::ImageTooLarge {
                actual: 163,
                limit: 100,
                ..
            }
        ),
        "{e:?}"
    );
    let e = err(
        ImageInput::from(asset("upright.jpg")),
        &d.with_max_bytes(1000),
    );
    assert!(matches!(e, Error::ImageTooLarge { .. }), "{e:?}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let e = err(ImageInput::Base64(b64), &d.with_max_bytes(1000));
    assert!(matches!(e, Error::ImageTooLarge { .. }), "{e:?}");
    let e = err(
        ImageInput::Raw {
            width: W,
            height: H,
            layout: PixelLayout::Rgb,
            data: source(),
        },
        &d.with_max_pixels(100),
    );
    assert!(matches!(e, Error::ImageTooLarge { .. }), "{e:?}");
    assert!(matches!(
        decode(&ImageInput::Bytes(bytes), &d.with_max_side(0)),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn decompression_bombs_are_refused_before_decoding() {
    // A real JPEG whose SOF0 header claims 60000 x 60000 (3.6 GP): refused from the header.
    let mut jpeg = read("upright.jpg");
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    jpeg[sof + 5..sof + 7].copy_from_slice(&60000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&60000u16.to_be_bytes());
    let e = err(ImageInput::Bytes(jpeg.clone()), &InputLimits::default());
    assert!(
        matches!(
            e,
            Error::ImageTooLarge {
                actual: 60000,
                limit: 20000,
                ..
            }
        ),
        "{e:?}"
    );
    // 8000 x 8000 = 64 MP passes the side limit and trips the pixel limit.
    jpeg[sof + 5..sof + 7].copy_from_slice(&8000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&8000u16.to_be_bytes());
    let e = err(ImageInput::Bytes(jpeg), &InputLimits::default());
    assert!(
        matches!(e, Error::ImageTooLarge { what, actual: 64_000_000, limit: 50_000_000 } if what.contains("pixel")),
        "{e:?}"
    );
    // A BMP claiming 20000 x 20000.
    let mut bmp = read("source.bmp");
    bmp[18..22].copy_from_slice(&20000i32.to_le_bytes());
    bmp[22..26].copy_from_slice(&20000i32.to_le_bytes());
    let e = err(ImageInput::Bytes(bmp), &InputLimits::default());
    assert!(
        matches!(
            e,
            Error::ImageTooLarge {
                actual: 400_000_000,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn bad_paths_and_raw_buffers_are_typed() {
    let l = InputLimits::default();
    let e = err(ImageInput::from(asset("does-not-exist.png")), &l);
    assert!(matches!(e, Error::InputFile { .. }), "{e:?}");
    let e = err(ImageInput::from(asset("")), &l);
    assert_eq!(e.code(), "invalid_parameter", "{e:?}");
    let e = err(
        ImageInput::Raw {
            width: 4,
            height: 4,
            layout: PixelLayout::Rgba,
            data: vec![0; 48],
        },
        &l,
    );
    assert!(matches!(e, Error::InvalidParameter { .. }), "{e:?}");
}
