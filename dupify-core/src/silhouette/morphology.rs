//! Binary-mask morphology on the working image: distance-transform erosion/dilation, opening,
//! closing, connected components, hole filling and outer-contour tracing.
//!
//! Masks here are `&[bool]` planes (row-major, `width * height`). Erosion and dilation use a
//! two-pass 3-4 chamfer distance transform, so a disk-like structuring element of any radius
//! costs two passes over the image, independent of the radius (a naive `r × r` kernel on a
//! 256² image at `r = 4` is ~80× more work). These few operations are all the silhouette stage
//! needs; pulling in `imageproc` (and its nalgebra/rand tree) for them was not worth the
//! compile time.

/// Chamfer weights (3 for an edge step, 4 for a diagonal step): distance ≈ 3 × Euclidean.
const CHAMFER_EDGE: u32 = 3;
const CHAMFER_DIAG: u32 = 4;

/// Chamfer distance (in units of 1/3 pixel) from every pixel to the nearest pixel where
/// `target` is true. Pixels outside the image are not targets.
fn chamfer_distance(target: &[bool], w: usize, h: usize) -> Vec<u32> {
    let inf = u32::MAX / 2;
    let mut d: Vec<u32> = target.iter().map(|&t| if t { 0 } else { inf }).collect();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let mut v = d[i];
            if x > 0 {
                v = v.min(d[i - 1] + CHAMFER_EDGE);
            }
            if y > 0 {
                v = v.min(d[i - w] + CHAMFER_EDGE);
                if x > 0 {
                    v = v.min(d[i - w - 1] + CHAMFER_DIAG);
                }
                if x + 1 < w {
                    v = v.min(d[i - w + 1] + CHAMFER_DIAG);
                }
            }
            d[i] = v;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            let mut v = d[i];
            if x + 1 < w {
                v = v.min(d[i + 1] + CHAMFER_EDGE);
            }
            if y + 1 < h {
                v = v.min(d[i + w] + CHAMFER_EDGE);
                if x + 1 < w {
                    v = v.min(d[i + w + 1] + CHAMFER_DIAG);
                }
                if x > 0 {
                    v = v.min(d[i + w - 1] + CHAMFER_DIAG);
                }
            }
            d[i] = v;
        }
    }
    d
}

/// Dilation by a disk of `radius` pixels.
pub(crate) fn dilate(mask: &[bool], w: usize, h: usize, radius: u32) -> Vec<bool> {
    if radius == 0 {
        return mask.to_vec();
    }
    let d = chamfer_distance(mask, w, h);
    d.iter().map(|&v| v <= radius * CHAMFER_EDGE).collect()
}

/// Erosion by a disk of `radius` pixels. The image border counts as foreground, so a product
/// touching the frame edge is not eaten away from that side.
pub(crate) fn erode(mask: &[bool], w: usize, h: usize, radius: u32) -> Vec<bool> {
    if radius == 0 {
        return mask.to_vec();
    }
    let inv: Vec<bool> = mask.iter().map(|&m| !m).collect();
    let d = chamfer_distance(&inv, w, h);
    d.iter().map(|&v| v > radius * CHAMFER_EDGE).collect()
}

/// Opening (erode then dilate): removes specks and thin spurs narrower than `2 * radius`.
pub(crate) fn open(mask: &[bool], w: usize, h: usize, radius: u32) -> Vec<bool> {
    dilate(&erode(mask, w, h, radius), w, h, radius)
}

/// Closing (dilate then erode): bridges gaps and notches narrower than `2 * radius`.
pub(crate) fn close(mask: &[bool], w: usize, h: usize, radius: u32) -> Vec<bool> {
    erode(&dilate(mask, w, h, radius), w, h, radius)
}

/// 8-connected components of the foreground. Returns a label per pixel (0 = background,
/// components numbered from 1) and the pixel count of each component (index 0 unused).
pub(crate) fn components(mask: &[bool], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
    let mut labels = vec![0u32; mask.len()];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32;
        let mut size = 0usize;
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            // The 3x3 neighbourhood clipped to the image, visited row by row.
            let (x0, x1) = (x.saturating_sub(1), (x + 1).min(w - 1));
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                let row = ny * w;
                for j in row + x0..=row + x1 {
                    if mask[j] && labels[j] == 0 {
                        labels[j] = label;
                        stack.push(j);
                    }
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// Keeps the largest component and every component at least `min_ratio` of its size (a pair
/// of shoes is two components of similar size; specks of background are not). Returns an
/// all-false mask when there is no foreground.
pub(crate) fn keep_significant_components(
    mask: &[bool],
    w: usize,
    h: usize,
    min_ratio: f32,
) -> Vec<bool> {
    let (labels, sizes) = components(mask, w, h);
    let largest = sizes.iter().skip(1).copied().max().unwrap_or(0);
    if largest == 0 {
        return vec![false; mask.len()];
    }
    let min_size = ((largest as f32 * min_ratio).ceil() as usize).max(1);
    let keep: Vec<bool> = sizes.iter().map(|&s| s >= min_size).collect();
    labels.iter().map(|&l| l != 0 && keep[l as usize]).collect()
}

/// Only the largest component.
pub(crate) fn largest_component(mask: &[bool], w: usize, h: usize) -> Vec<bool> {
    let (labels, sizes) = components(mask, w, h);
    let Some((best, _)) = sizes.iter().enumerate().skip(1).max_by_key(|&(_, &s)| s) else {
        return vec![false; mask.len()];
    };
    labels.iter().map(|&l| l as usize == best).collect()
}

/// Fills holes: background regions not 4-connected to the image border become foreground.
pub(crate) fn fill_holes(mask: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut outside = vec![false; mask.len()];
    let mut stack = Vec::new();
    let seed = |i: usize, outside: &mut Vec<bool>, stack: &mut Vec<usize>| {
        if !mask[i] && !outside[i] {
            outside[i] = true;
            stack.push(i);
        }
    };
    for x in 0..w {
        seed(x, &mut outside, &mut stack);
        seed((h - 1) * w + x, &mut outside, &mut stack);
    }
    for y in 0..h {
        seed(y * w, &mut outside, &mut stack);
        seed(y * w + w - 1, &mut outside, &mut stack);
    }
    while let Some(i) = stack.pop() {
        let (x, y) = (i % w, i / w);
        let mut push = |j: usize| {
            if !mask[j] && !outside[j] {
                outside[j] = true;
                stack.push(j);
            }
        };
        if x > 0 {
            push(i - 1);
        }
        if x + 1 < w {
            push(i + 1);
        }
        if y > 0 {
            push(i - w);
        }
        if y + 1 < h {
            push(i + w);
        }
    }
    outside.iter().map(|&o| !o).collect()
}

/// Outer boundary of the component containing the first foreground pixel in raster order of
/// `mask` (pass a single-component mask), traced with Moore-neighbour tracing and Jacob's
/// stopping criterion. Points are pixel coordinates in order around the shape. A single
/// isolated pixel yields one point.
pub(crate) fn trace_outer_contour(mask: &[bool], w: usize, h: usize) -> Vec<(i32, i32)> {
    let Some(start) = mask.iter().position(|&m| m) else {
        return Vec::new();
    };
    let at = |x: i32, y: i32| -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && mask[y as usize * w + x as usize]
    };
    // Clockwise neighbour offsets in image coordinates (y down), starting west.
    const DIRS: [(i32, i32); 8] = [
        (-1, 0),
        (-1, -1),
        (0, -1),
        (1, -1),
        (1, 0),
        (1, 1),
        (0, 1),
        (-1, 1),
    ];
    let s = ((start % w) as i32, (start / w) as i32);
    // The start is the first pixel in raster order, so its west neighbour is background: we
    // entered it from the west.
    let mut contour = vec![s];
    let mut cur = s;
    let mut back = 0usize; // index in DIRS of the background pixel we came from
    let limit = 4 * mask.len() + 8;
    let mut first_move: Option<((i32, i32), usize)> = None;
    for _ in 0..limit {
        let mut found = None;
        for k in 1..=8 {
            let d = (back + k) % 8;
            let (nx, ny) = (cur.0 + DIRS[d].0, cur.1 + DIRS[d].1);
            if at(nx, ny) {
                found = Some((d, (nx, ny)));
                break;
            }
        }
        let Some((d, next)) = found else {
            return contour; // isolated pixel
        };
        // The pixel before `d` in the sweep was background; seen from `next` it lies in
        // direction (d + 8 - 1) offset, recomputed relative to next.
        let prev_bg = (d + 7) % 8;
        let bg = (cur.0 + DIRS[prev_bg].0, cur.1 + DIRS[prev_bg].1);
        let rel = (bg.0 - next.0, bg.1 - next.1);
        let new_back = DIRS.iter().position(|&o| o == rel).unwrap_or((d + 4) % 8);
        match first_move {
            None => first_move = Some((next, d)),
            Some((fm, fd)) if cur == s && next == fm && d == fd => {
                contour.pop();
                return contour;
            }
            _ => {}
        }
        contour.push(next);
        cur = next;
        back = new_back;
    }
    contour
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(w: usize, h: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> Vec<bool> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                x >= x0 && x < x1 && y >= y0 && y < y1
            })
            .collect()
    }

    #[test]
    fn open_removes_specks_and_keeps_blocks() {
        let mut m = rect(20, 20, 5, 5, 15, 15);
        m[20 + 1] = true;
        let o = open(&m, 20, 20, 1);
        assert!(!o[21], "speck survived opening");
        // A radius-1 disk is a plus sign: opening keeps the 10x10 block but its 4 corners.
        assert_eq!(o.iter().filter(|&&v| v).count(), 96);
        assert!(o[5 * 20 + 6] && o[10 * 20 + 10] && !o[5 * 20 + 5]);
    }

    #[test]
    fn close_bridges_a_one_pixel_gap() {
        let mut m = rect(20, 10, 2, 2, 18, 8);
        for y in 0..10 {
            m[y * 20 + 10] = false;
        }
        let c = close(&m, 20, 10, 1);
        assert!(c[5 * 20 + 10]);
    }

    #[test]
    fn holes_are_filled_but_border_notches_are_not() {
        let mut m = rect(12, 12, 2, 2, 10, 10);
        m[6 * 12 + 6] = false; // interior hole
        m[2 * 12 + 5] = false; // notch on the edge, open to outside
        let f = fill_holes(&m, 12, 12);
        assert!(f[6 * 12 + 6]);
        assert!(!f[2 * 12 + 5]);
    }

    #[test]
    fn components_are_counted_and_small_ones_dropped() {
        let mut m = rect(30, 10, 1, 1, 9, 9); // 64 px
        for i in rect(30, 10, 12, 1, 19, 9).iter().enumerate() {
            if *i.1 {
                m[i.0] = true; // 56 px
            }
        }
        m[9 * 30 + 28] = true; // 1 px
        let (_, sizes) = components(&m, 30, 10);
        assert_eq!(sizes.len() - 1, 3);
        let k = keep_significant_components(&m, 30, 10, 0.5);
        assert_eq!(k.iter().filter(|&&v| v).count(), 120);
        let l = largest_component(&m, 30, 10);
        assert_eq!(l.iter().filter(|&&v| v).count(), 64);
    }

    #[test]
    fn contour_of_a_rectangle_is_its_perimeter() {
        let m = rect(10, 8, 2, 2, 7, 6); // 5 x 4
        let c = trace_outer_contour(&m, 10, 8);
        // perimeter pixels of a 5x4 block: 2*5 + 2*4 - 4 = 14
        assert_eq!(c.len(), 14);
        assert_eq!(c[0], (2, 2));
        let single = rect(5, 5, 2, 2, 3, 3);
        assert_eq!(trace_outer_contour(&single, 5, 5), vec![(2, 2)]);
    }
}
