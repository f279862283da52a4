//! CLIP input tensors from a [`DecodedImage`].
//!
//! [`ResizeMode::CenterCrop`] reproduces Hugging Face `CLIPImageProcessor` (checked against
//! its PIL backend, `CLIPImageProcessorPil` in transformers 5.24, by
//! `weights/gen_preprocess_reference.py` and `tests/input/preprocess_parity.rs`):
//! 1. resize so the shortest side is `image_size`, the long side `int(size * long / short)`
//!    (truncated, exactly as `get_resize_output_image_size`), with PIL's BICUBIC filter — a
//!    Catmull-Rom (a = -0.5) convolution that widens with the downscale factor, which is what
//!    `fast_image_resize`'s `FilterType::CatmullRom` convolution computes;
//! 2. centre crop `image_size²` with the top-left corner at `((h - S) // 2, (w - S) // 2)`;
//! 3. rescale by 1/255 and normalise with the mean/std.
//!
//! Steps 1–2 run as one resize from the matching fractional source box: the filter taps of
//! every kept output pixel are then exactly those of "resize whole, then crop" (the kernel
//! still reads pixels outside the box, clamped to the image), without computing the columns
//! or rows the crop throws away.
//!
//! Transparent images are composited onto a matte (white by default, like transformers'
//! `convert_to_rgb`), never flattened to black.

use fast_image_resize::{FilterType, PixelType};
use serde::{Deserialize, Serialize};

use super::decode::{DecodedImage, MinDecodedSize};
use super::working::resize_packed;
use crate::error::{Error, Result};

/// OpenAI CLIP's per-channel mean (RGB), as in `transformers.image_utils.OPENAI_CLIP_MEAN`.
pub const OPENAI_CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI CLIP's per-channel std (RGB), as in `transformers.image_utils.OPENAI_CLIP_STD`.
// The published decimals, kept verbatim so they can be compared with the reference by eye.
#[allow(clippy::excessive_precision)]
pub const OPENAI_CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// How a non-square image becomes the square model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Shortest side to the model size, then centre crop: identical in effect to
    /// `CLIPImageProcessor`, what CLIP was trained with.
    #[default]
    CenterCrop,
    /// Longest side to the model size, then letterbox onto a square filled with the image's
    /// estimated background colour (median of its border pixels). Keeps the whole product:
    /// centre crop cuts the hem off long garments such as dresses.
    PadToSquare,
}

/// Where a centre crop starts when the margin to cut is odd: the two reference
/// implementations disagree by one pixel, and a one-pixel shift moves a convolutional
/// network's embedding measurably (cosine 0.98 on some photos), so a model declares which
/// reference it was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CropOffset {
    /// `(size - crop) // 2`, as Hugging Face `CLIPImageProcessor` (CLIP's reference).
    #[default]
    Floor,
    /// `round((size - crop) / 2)` with ties to even, as torchvision's `CenterCrop` (the
    /// reference preprocessing of the ImageNet models, e.g. EfficientNet-Lite).
    RoundHalfEven,
}

impl CropOffset {
    fn offset(self, margin: u32) -> u32 {
        match self {
            CropOffset::Floor => margin / 2,
            // margin / 2 = k + 0.5 for odd margins: ties go to the even neighbour.
            CropOffset::RoundHalfEven => {
                let k = margin / 2;
                if margin % 2 == 1 && k % 2 == 1 {
                    k + 1
                } else {
                    k
                }
            }
        }
    }
}

/// CLIP image preprocessing parameters. Defaults are OpenAI CLIP's (224 px, its mean/std,
/// centre crop, white matte for transparency).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClipPreprocess {
    /// Side of the square model input (224 for ViT-B/32 and ViT-L/14).
    pub image_size: u32,
    /// Per-channel mean subtracted after rescaling to 0..1.
    pub mean: [f32; 3],
    /// Per-channel std divided by after subtracting the mean.
    pub std: [f32; 3],
    /// Centre crop (reference behaviour) or pad to square.
    pub mode: ResizeMode,
    /// Colour transparent pixels are composited onto.
    pub matte: [u8; 3],
    /// Rounding of the centre crop's offset (CLIP's `Floor` by default).
    #[serde(default)]
    pub crop_offset: CropOffset,
}

impl Default for ClipPreprocess {
    fn default() -> Self {
        Self {
            image_size: 224,
            mean: OPENAI_CLIP_MEAN,
            std: OPENAI_CLIP_STD,
            mode: ResizeMode::CenterCrop,
            matte: [255, 255, 255],
            crop_offset: CropOffset::Floor,
        }
    }
}

impl ClipPreprocess {
    /// Largest accepted `image_size`.
    pub const MAX_IMAGE_SIZE: u32 = 4096;

    /// Defaults with another input size (e.g. 336 for ViT-L/14-336).
    pub fn new(image_size: u32) -> Self {
        Self {
            image_size,
            ..Self::default()
        }
    }
    /// Sets the resize mode.
    pub fn with_mode(mut self, mode: ResizeMode) -> Self {
        self.mode = mode;
        self
    }
    /// Sets the normalisation mean and std.
    pub fn with_mean_std(mut self, mean: [f32; 3], std: [f32; 3]) -> Self {
        self.mean = mean;
        self.std = std;
        self
    }
    /// Sets how the centre crop's offset is rounded.
    pub fn with_crop_offset(mut self, crop_offset: CropOffset) -> Self {
        self.crop_offset = crop_offset;
        self
    }
    /// Sets the matte colour for transparent pixels.
    pub fn with_matte(mut self, matte: [u8; 3]) -> Self {
        self.matte = matte;
        self
    }

    /// Number of `f32`s one preprocessed image occupies (`3 × S × S`).
    pub fn tensor_len(&self) -> usize {
        3 * self.image_size as usize * self.image_size as usize
    }

    /// The smallest decode this preprocessing only ever downscales from: the shortest side
    /// at `image_size` for a centre crop, the long side for pad-to-square. Pass it (with any
    /// margin) to [`decode_reduced`](super::decode_reduced).
    pub fn min_decoded_size(&self) -> MinDecodedSize {
        match self.mode {
            ResizeMode::CenterCrop => MinDecodedSize::short_side(self.image_size),
            ResizeMode::PadToSquare => MinDecodedSize::long_side(self.image_size),
        }
    }

    /// Rejects a zero or huge size and non-finite or non-positive std.
    pub fn validate(&self) -> Result<()> {
        if self.image_size == 0 || self.image_size > Self::MAX_IMAGE_SIZE {
            return Err(Error::invalid(
                "image_size",
                format!("must be in 1..={}", Self::MAX_IMAGE_SIZE),
            ));
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            return Err(Error::invalid("mean", "must be finite"));
        }
        if self.std.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(Error::invalid("std", "must be finite and > 0"));
        }
        Ok(())
    }

    /// The CHW `f32` tensor (`3 × S × S`, channel order RGB) for one image.
    pub fn preprocess(&self, image: &DecodedImage) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.tensor_len()];
        self.preprocess_into(image, &mut out)?;
        Ok(out)
    }

    /// Writes the CHW tensor into `out` (exactly [`tensor_len`](Self::tensor_len) long), so a
    /// batch buffer can be filled slot by slot, in parallel, without copies.
    pub fn preprocess_into(&self, image: &DecodedImage, out: &mut [f32]) -> Result<()> {
        self.validate()?;
        if out.len() != self.tensor_len() {
            return Err(Error::invalid(
                "out",
                format!(
                    "expected {} floats (3x{s}x{s}), got {}",
                    self.tensor_len(),
                    out.len(),
                    s = self.image_size
                ),
            ));
        }
        let canvas = self.square_rgb(image)?;
        let lut = self.lut();
        let plane = self.image_size as usize * self.image_size as usize;
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in canvas.chunks_exact(3).enumerate() {
            r[i] = lut[0][px[0] as usize];
            g[i] = lut[1][px[1] as usize];
            b[i] = lut[2][px[2] as usize];
        }
        Ok(())
    }

    /// The square RGB8 image (`S × S × 3`) before normalisation: what the model sees.
    pub fn square_rgb(&self, image: &DecodedImage) -> Result<Vec<u8>> {
        self.validate()?;
        match self.mode {
            ResizeMode::CenterCrop => self.center_crop(image),
            ResizeMode::PadToSquare => self.pad_to_square(image),
        }
    }

    /// `(v / 255 - mean[c]) / std[c]` for every byte value and channel: the whole
    /// normalisation, shared with the model's on-device path (`ClipModel::embed_rgb8`).
    pub(crate) fn lut(&self) -> [[f32; 256]; 3] {
        let mut lut = [[0.0f32; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, slot) in table.iter_mut().enumerate() {
                *slot = (v as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        lut
    }

    fn center_crop(&self, image: &DecodedImage) -> Result<Vec<u8>> {
        let s = self.image_size;
        let (w, h) = (image.width(), image.height());
        // The geometry of the photo as stored, so that a reduced decode (which covers the
        // same frame with fewer pixels) is cropped at the same place: rounding its smaller
        // size would move the crop by a fraction of an output pixel, which sharp edges show.
        let (nw, nh) = shortest_edge_size(image.source_width(), image.source_height(), s);
        let left = self.crop_offset.offset(nw - s);
        let top = self.crop_offset.offset(nh - s);
        let sx = f64::from(w) / f64::from(nw);
        let sy = f64::from(h) / f64::from(nh);
        let crop = (
            f64::from(left) * sx,
            f64::from(top) * sy,
            f64::from(s) * sx,
            f64::from(s) * sy,
        );
        self.resize_composited(image, (s, s), Some(crop))
    }

    fn pad_to_square(&self, image: &DecodedImage) -> Result<Vec<u8>> {
        let s = self.image_size;
        // The stored photo's proportions, as in `center_crop`.
        let (w, h) = (image.source_width(), image.source_height());
        let scale = f64::from(s) / f64::from(w.max(h));
        let fit = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(1, s);
        let (rw, rh) = (fit(w), fit(h));
        let resized = self.resize_composited(image, (rw, rh), None)?;
        let bg = border_median(image, self.matte);
        let mut canvas = Vec::with_capacity(s as usize * s as usize * 3);
        for _ in 0..s as usize * s as usize {
            canvas.extend_from_slice(&bg);
        }
        let (ox, oy) = (((s - rw) / 2) as usize, ((s - rh) / 2) as usize);
        let (s, rw) = (s as usize, rw as usize);
        for (y, row) in resized.chunks_exact(rw * 3).enumerate() {
            let start = ((oy + y) * s + ox) * 3;
            canvas[start..start + rw * 3].copy_from_slice(row);
        }
        Ok(canvas)
    }

    /// Bicubic resize to `dst`. Transparent images are composited onto the matte first, at
    /// full resolution, as `convert_to_rgb` does: compositing after an alpha-weighted resize is
    /// the same in exact arithmetic, but bicubic overshoot at sharp alpha edges is clamped
    /// differently and drifts by several levels there.
    fn resize_composited(
        &self,
        image: &DecodedImage,
        dst: (u32, u32),
        crop: Option<(f64, f64, f64, f64)>,
    ) -> Result<Vec<u8>> {
        let (w, h) = (image.width(), image.height());
        let flat;
        let rgb = match image.alpha() {
            None => image.rgb(),
            Some(a) => {
                flat = composite(image.rgb(), a, self.matte);
                &flat
            }
        };
        resize_packed(
            (rgb, w, h),
            PixelType::U8x3,
            dst,
            FilterType::CatmullRom,
            crop,
        )
    }
}

/// Hugging Face's `get_resize_output_image_size(default_to_square=False)`: the short side
/// becomes `size`, the long side `int(size * long / short)` (Python true division, truncated).
pub fn shortest_edge_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = (f64::from(size) * f64::from(long) / f64::from(short)) as u32;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// Straight RGB + alpha → RGB over `matte`, rounded.
pub(super) fn composite(rgb: &[u8], alpha: &[u8], matte: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len());
    for (px, &a) in rgb.chunks_exact(3).zip(alpha) {
        let a = u32::from(a);
        for c in 0..3 {
            let v = (u32::from(px[c]) * a + u32::from(matte[c]) * (255 - a) + 127) / 255;
            out.push(v as u8);
        }
    }
    out
}

/// Per-channel median of the image's one-pixel border (transparent pixels composited onto
/// the matte): a robust estimate of the backdrop colour of a product photo.
pub(super) fn border_median(image: &DecodedImage, matte: [u8; 3]) -> [u8; 3] {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut hist = [[0u32; 256]; 3];
    let mut count = 0u32;
    let mut add = |i: usize| {
        let px = &image.rgb()[i * 3..i * 3 + 3];
        let a = image.alpha().map_or(255, |al| u32::from(al[i]));
        for c in 0..3 {
            let v = (u32::from(px[c]) * a + u32::from(matte[c]) * (255 - a) + 127) / 255;
            hist[c][v as usize] += 1;
        }
        count += 1;
    };
    for x in 0..w {
        add(x);
        if h > 1 {
            add((h - 1) * w + x);
        }
    }
    for y in 1..h.saturating_sub(1) {
        add(y * w);
        if w > 1 {
            add(y * w + w - 1);
        }
    }
    let mut out = [0u8; 3];
    for c in 0..3 {
        let half = count.div_ceil(2);
        let mut acc = 0;
        for (v, n) in hist[c].iter().enumerate() {
            acc += n;
            if acc >= half {
                out[c] = v as u8;
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn crop_offset_rounds_like_each_reference() {
        // HF: floor. torchvision: Python's round(), ties to even.
        let cases = [
            (87, 43, 44),
            (7, 3, 4),
            (91, 45, 46),
            (89, 44, 44),
            (202, 101, 101),
        ];
        for (margin, floor, even) in cases {
            assert_eq!(CropOffset::Floor.offset(margin), floor, "{margin}");
            assert_eq!(CropOffset::RoundHalfEven.offset(margin), even, "{margin}");
        }
    }

    use super::*;
    use crate::input::{decode, ImageInput, InputLimits, PixelLayout};

    fn raw(w: u32, h: u32, layout: PixelLayout, data: Vec<u8>) -> DecodedImage {
        decode(
            &ImageInput::Raw {
                width: w,
                height: h,
                layout,
                data,
            },
            &InputLimits::default(),
        )
        .unwrap()
    }

    #[test]
    fn shortest_edge_matches_python_truncation() {
        // int(224 * 711 / 400) = int(398.16) = 398; int(224 * 455 / 400) = 254
        assert_eq!(shortest_edge_size(400, 711, 224), (224, 398));
        assert_eq!(shortest_edge_size(455, 400, 224), (254, 224));
        assert_eq!(shortest_edge_size(300, 300, 224), (224, 224));
        assert_eq!(shortest_edge_size(1, 1000, 224), (224, 224_000));
    }

    #[test]
    fn uniform_image_normalises_to_the_lut_value() {
        let img = raw(50, 80, PixelLayout::Rgb, [10u8, 128, 250].repeat(50 * 80));
        for mode in [ResizeMode::CenterCrop, ResizeMode::PadToSquare] {
            let p = ClipPreprocess::new(32).with_mode(mode);
            let t = p.preprocess(&img).unwrap();
            assert_eq!(t.len(), 3 * 32 * 32);
            for (c, v) in [10u8, 128, 250].iter().enumerate() {
                let want = (f32::from(*v) / 255.0 - OPENAI_CLIP_MEAN[c]) / OPENAI_CLIP_STD[c];
                let plane = &t[c * 1024..(c + 1) * 1024];
                assert!(
                    plane.iter().all(|x| (x - want).abs() < 1e-5),
                    "{mode:?} c={c}"
                );
            }
        }
    }

    #[test]
    fn transparent_pixels_become_the_matte_not_black() {
        let mut data = Vec::new();
        for i in 0..40 * 40 {
            // left half: opaque red; right half: transparent "black"
            if i % 40 < 20 {
                data.extend_from_slice(&[255, 0, 0, 255]);
            } else {
                data.extend_from_slice(&[0, 0, 0, 0]);
            }
        }
        let img = raw(40, 40, PixelLayout::Rgba, data);
        let sq = ClipPreprocess::new(20).square_rgb(&img).unwrap();
        assert_eq!(&sq[..3], &[255, 0, 0]);
        assert_eq!(&sq[sq.len() - 3..], &[255, 255, 255]);
        let grey = ClipPreprocess::new(20)
            .with_matte([128, 128, 128])
            .square_rgb(&img)
            .unwrap();
        assert_eq!(&grey[grey.len() - 3..], &[128, 128, 128]);
    }

    /// A horizontal edge at row `edge` of a `w × h` photo, decoded at full size and as a
    /// 1/`d` reduced decode would return it (means of `d × d` blocks, sizes rounded up).
    fn edge_photo(w: u32, h: u32, edge: u32, d: u32) -> (DecodedImage, DecodedImage) {
        let px = |y: u32| if y < edge { 20u8 } else { 230 };
        let full: Vec<u8> = (0..h)
            .flat_map(|y| std::iter::repeat_n(px(y), (w * 3) as usize))
            .collect();
        let (rw, rh) = (w.div_ceil(d), h.div_ceil(d));
        let small: Vec<u8> = (0..rh)
            .flat_map(|by| {
                let rows = by * d..((by + 1) * d).min(h);
                let n = rows.len() as u32;
                let mean = rows.map(|y| u32::from(px(y))).sum::<u32>() / n;
                std::iter::repeat_n(mean as u8, (rw * 3) as usize)
            })
            .collect();
        let mk = |width, height, rgb| DecodedImage {
            width,
            height,
            rgb,
            alpha: None,
            format: super::super::InputFormat::Jpeg,
            source_width: w,
            source_height: h,
        };
        (mk(w, h, full), mk(rw, rh, small))
    }

    #[test]
    fn reduced_decodes_are_cropped_where_the_full_decode_is() {
        // 2247 x 3000 at 1/8 is 281 x 375: sized from the decode, the resize would be
        // 224 x 298 instead of the photo's 224 x 299, moving the edge by half an output row.
        // The edge is off the middle so that both decodes' borders have the same median
        // (the letterbox colour).
        let (full, small) = edge_photo(2247, 3000, 1001, 8);
        for pre in [
            ClipPreprocess::default(),
            ClipPreprocess::default().with_mode(ResizeMode::PadToSquare),
        ] {
            let a = pre.square_rgb(&full).unwrap();
            let b = pre.square_rgb(&small).unwrap();
            let worst = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
            // The block means blur the edge over 8 source rows (0.6 of an output row).
            assert!(
                worst <= 16,
                "{:?}: worst |Δ| {worst} levels at the edge",
                pre.mode
            );
        }
        // The same decode cropped by its own size (224 x 298) puts the edge half a row off.
        let pre = ClipPreprocess::default();
        let mut own = small.clone();
        (own.source_width, own.source_height) = (small.width, small.height);
        let (a, c) = (
            pre.square_rgb(&full).unwrap(),
            pre.square_rgb(&own).unwrap(),
        );
        let off = a.iter().zip(&c).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
        assert!(
            off >= 40,
            "own-size crop: {off} levels (this test would not see the bug)"
        );
    }

    #[test]
    fn pad_to_square_letterboxes_with_the_border_colour() {
        // Tall 40x120 image: grey 1-px border, a red band at the top, blue below.
        let mut data = Vec::new();
        for y in 0..120 {
            for x in 0..40 {
                let edge = x == 0 || y == 0 || x == 39 || y == 119;
                let px: &[u8] = if edge {
                    &[200, 200, 200]
                } else if y < 16 {
                    &[255, 0, 0]
                } else {
                    &[0, 0, 255]
                };
                data.extend_from_slice(px);
            }
        }
        let img = raw(40, 120, PixelLayout::Rgb, data);
        assert_eq!(border_median(&img, [255; 3]), [200, 200, 200]);
        let at = |sq: &[u8], x: usize, y: usize| {
            let i = (y * 30 + x) * 3;
            [sq[i], sq[i + 1], sq[i + 2]]
        };
        let pad = ClipPreprocess::new(30).with_mode(ResizeMode::PadToSquare);
        let sq = pad.square_rgb(&img).unwrap();
        // Resized to 10x30 at x offset 10: the sides are padding in the border colour ...
        assert_eq!(at(&sq, 0, 0), [200, 200, 200]);
        assert_eq!(at(&sq, 29, 29), [200, 200, 200]);
        // ... and the full height is kept: the red band is still at the top.
        let top = at(&sq, 15, 1);
        assert!(top[0] > 150 && top[2] < 100, "{top:?}");
        let bottom = at(&sq, 15, 28);
        assert!(bottom[2] > 150 && bottom[0] < 100, "{bottom:?}");
        // Centre crop of the same image loses the band and fills the corners.
        let crop = ClipPreprocess::new(30).square_rgb(&img).unwrap();
        let top = at(&crop, 15, 1);
        assert!(top[2] > 150 && top[0] < 100, "{top:?}");
    }

    #[test]
    fn bad_parameters_and_buffers_are_refused() {
        let img = raw(4, 4, PixelLayout::Rgb, vec![0; 48]);
        assert!(ClipPreprocess::new(0).preprocess(&img).is_err());
        let bad_std = ClipPreprocess::default().with_mean_std([0.0; 3], [1.0, 0.0, 1.0]);
        assert_eq!(
            bad_std.preprocess(&img).unwrap_err().code(),
            "invalid_parameter"
        );
        let mut short = vec![0.0; 10];
        assert!(ClipPreprocess::default()
            .preprocess_into(&img, &mut short)
            .is_err());
    }
}
