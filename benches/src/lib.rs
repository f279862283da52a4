//! Shared fixtures for the Dupify benchmarks.
//!
//! Every path is resolved from [`repo_root`], which is the source checkout the benches were
//! built in, or `DUPIFY_BENCH_ROOT` when set. The override exists for packaged runs: the CUDA
//! packaging script (`scripts/bench_cuda.sh`) copies the bench binaries, the test weights and
//! the photos into a folder with the same layout on another machine, where the build
//! machine's checkout does not exist.

pub mod vectors;

use std::path::{Path, PathBuf};

use dupify_core::input::{decode_bytes, InputLimits, DEFAULT_WORKING_SIDE};
use dupify_core::{Device, WorkingImage};

/// Root of the tree holding `weights/test/` and `dupify-core/tests/assets/`:
/// `$DUPIFY_BENCH_ROOT`, else the checkout these benches were compiled from.
pub fn repo_root() -> PathBuf {
    std::env::var_os("DUPIFY_BENCH_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// The seeded ViT-B/32 test checkpoint made by `scripts/setup.sh` (same architecture and
/// FLOPs as the real openai/clip-vit-base-patch32; random weights do not change the cost).
pub fn vit_b32_dir() -> PathBuf {
    let dir = repo_root().join("weights/test/clip/vit-b-32");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} has no model.safetensors: run scripts/setup.sh (weights/gen_clip.py) first",
        dir.display()
    );
    dir
}

/// Thread count for a benchmark: `DUPIFY_BENCH_THREADS`, else every available core.
/// `benches/run.py` sets it to the same value it gives the peer script.
pub fn bench_threads() -> usize {
    std::env::var("DUPIFY_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Pins LibTorch's process-wide intra-op pool to `n` threads, so the model runs with the
/// thread count the peer gets from `torch.set_num_threads`. (`Extractor` has no thread
/// setting for LibTorch; its CLIP load keeps a host's explicit setting.)
pub fn set_torch_threads(n: usize) {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    // SAFETY: plain setter of LibTorch's global thread-pool size; no pointers involved.
    unsafe { torch_sys::at_set_num_threads(n) };
}

/// The device benches run models on: `DUPIFY_BENCH_DEVICE` (`cpu`, `cuda`, `cuda:N`),
/// default CPU so CPU numbers never silently move to a GPU.
pub fn bench_device() -> Device {
    std::env::var("DUPIFY_BENCH_DEVICE")
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|e| panic!("DUPIFY_BENCH_DEVICE={s}: {e}"))
        })
        .unwrap_or(Device::Cpu)
}

/// Whether a CUDA device is usable in this process (for the `cuda_*` groups).
pub fn cuda_available() -> bool {
    dupify_core::device_report().cuda_available
}

fn jpegs(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            jpegs(&p, out);
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")) {
            out.push(p);
        }
    }
}

/// The committed clothing photos (`dupify-core/tests/assets/clothing/<category>/*.jpg`),
/// sorted.
pub fn fixture_photo_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    jpegs(
        &repo_root().join("dupify-core/tests/assets/clothing"),
        &mut paths,
    );
    assert!(!paths.is_empty(), "no committed clothing photos found");
    paths
}

/// The photo set for throughput benches: every JPEG under `DUPIFY_BENCH_PHOTOS` when set
/// (e.g. `/work/shared/data/clothing-small/test`, 372 photos), else the committed 40.
/// Sorted, so ours and the peers (which apply the same rule) see the same files.
pub fn bench_photo_paths() -> Vec<PathBuf> {
    match std::env::var_os("DUPIFY_BENCH_PHOTOS") {
        Some(dir) => {
            // A relative folder is the repository's (`cargo bench` runs in `benches/`).
            let dir = repo_root().join(dir);
            let mut paths = Vec::new();
            jpegs(&dir, &mut paths);
            assert!(
                !paths.is_empty(),
                "no photos under DUPIFY_BENCH_PHOTOS={}",
                dir.display()
            );
            paths
        }
        None => fixture_photo_paths(),
    }
}

/// The end-to-end work list: [`bench_photo_paths`] cycled to `DUPIFY_BENCH_IMAGES` entries
/// when set (a GPU pass over 412 photos is too short to measure; the peer `e2e.py` applies
/// the same rule), else each photo once.
pub fn bench_image_list() -> Vec<PathBuf> {
    let photos = bench_photo_paths();
    match std::env::var("DUPIFY_BENCH_IMAGES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        Some(n) => photos.iter().cycle().take(n).cloned().collect(),
        None => photos,
    }
}

/// The fixture photos as working images, made the way the extractor makes them (decode, then
/// resize to the default working side).
pub fn fixture_working_images() -> Vec<WorkingImage> {
    fixture_photo_paths()
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).expect("readable fixture");
            decode_bytes(&bytes, &InputLimits::default())
                .and_then(|d| d.working(DEFAULT_WORKING_SIDE))
                .expect("fixture decodes")
        })
        .collect()
}

/// Resets the peak-RSS mark (`VmHWM`) to the current RSS (Linux ≥ 4.0: `5` written to
/// `/proc/self/clear_refs`), so a later [`peak_rss_bytes`] shows the peak of the work after
/// this point rather than a model load's transient peak. False where unsupported.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size of this process so far (`VmHWM` in `/proc/self/status`), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One untimed pass of `extract_batch` that panics on any failed item: a failed item is a fast
/// no-op that would inflate a throughput figure, so end-to-end benches prove first that every
/// photo goes through.
pub fn assert_every_item_extracts(
    extractor: &dupify_core::Extractor,
    inputs: &[dupify_core::ImageInput],
    ops: dupify_core::Ops,
) {
    let first = extractor
        .extract_batch(inputs, ops, &dupify_core::BatchOptions::default())
        .expect("batch");
    for (input, r) in inputs.iter().zip(&first) {
        if let Err(e) = r {
            panic!("{input:?}: {e}");
        }
    }
}
