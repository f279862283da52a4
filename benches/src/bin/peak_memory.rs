//! Peak memory of a 1,000-image batch: the batch API streams (decodes one chunk of
//! `batch_size` images at a time), so its peak should not grow with the batch.
//!
//! ```text
//! cargo run --release -p dupify-benches --bin peak_memory -- [--images 1000] [--ops embed] [--model DIR]
//! ```
//!
//! Runs two child processes of itself (peak RSS, `VmHWM`, is per process and never goes
//! down), each on the same list of `--images` paths cycled from the bench photo set
//! (`DUPIFY_BENCH_PHOTOS`, else the 40 committed photos), with the seeded ViT-B/32 loaded:
//! * `streamed`: one `Extractor::extract_batch` call over all paths (`--ops`, default
//!   `embed`), results kept, as a host would;
//! * `decode_all_first`: the naive alternative, every image decoded and CLIP-preprocessed
//!   into one pixel buffer before any forward pass. Its figure is taken before the forward
//!   passes, so it is a lower bound for that approach.
//!
//! Each child reports `VmHWM` after loading the model, then resets the mark and reports the
//! peak of the batch work alone (`hwm_end_mib`); the program prints a
//! table and, as its last line, a JSON object (the `benches/run.py` memory row reads it).

use std::process::Command;
use std::time::Instant;

use dupify_benches::{
    bench_photo_paths, bench_threads, peak_rss_bytes, reset_peak_rss, set_torch_threads,
    vit_b32_dir,
};
use dupify_core::{
    decode, BatchOptions, ClipPreprocess, Device, Extractor, ImageInput, InputLimits, Ops,
};

const MIB: f64 = 1024.0 * 1024.0;

struct Args {
    images: usize,
    ops: Ops,
    mode: Option<String>,
    /// Model directory; default the seeded ViT-B/32. The streaming behaviour measured here
    /// does not depend on the model, so a smaller one (`weights/test/clip/tiny`) gives the
    /// same batch peak in a fraction of the time.
    model: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        images: 1000,
        ops: Ops::EMBED,
        mode: None,
        model: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--images" => {
                args.images = value("--images")?
                    .parse()
                    .map_err(|e| format!("--images: {e}"))?
            }
            "--ops" => args.ops = value("--ops")?.parse().map_err(|e| format!("--ops: {e}"))?,
            "--mode" => args.mode = Some(value("--mode")?),
            "--model" => args.model = Some(value("--model")?.into()),
            // Tolerate the flags cargo bench / criterion pass to every target.
            "--bench" => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.images == 0 {
        return Err("--images must be at least 1".into());
    }
    Ok(args)
}

fn mib(bytes: Option<u64>) -> f64 {
    bytes.map_or(f64::NAN, |b| b as f64 / MIB)
}

/// One measurement, in a fresh process. Prints `{"mode":…}` as its last line.
fn child(mode: &str, args: &Args) -> Result<(), String> {
    let threads = bench_threads();
    set_torch_threads(threads);
    let photos = bench_photo_paths();
    let paths: Vec<_> = photos.iter().cycle().take(args.images).cloned().collect();
    let extractor = Extractor::builder()
        .model_dir(args.model.clone().unwrap_or_else(vit_b32_dir))
        .device(Device::Cpu)
        .threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    extractor.warm_up().map_err(|e| e.to_string())?;
    let loaded = peak_rss_bytes();
    // The model load's transient peak would hide the batch's own: measure from here.
    if !reset_peak_rss() {
        return Err("cannot reset the peak-RSS mark (/proc/self/clear_refs)".into());
    }
    let t = Instant::now();
    let items = match mode {
        "streamed" => {
            let inputs: Vec<ImageInput> = paths.into_iter().map(ImageInput::Path).collect();
            let out = extractor
                .extract_batch(&inputs, args.ops, &BatchOptions::default())
                .map_err(|e| e.to_string())?;
            let failed = out.iter().filter(|r| r.is_err()).count();
            if failed > 0 {
                return Err(format!("{failed} items failed"));
            }
            out.len()
        }
        "decode_all_first" => {
            let limits = InputLimits::default();
            let pre = ClipPreprocess::new(224);
            let decoded = paths
                .iter()
                .map(|p| decode(&ImageInput::Path(p.clone()), &limits))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let mut pixels = Vec::with_capacity(decoded.len() * pre.tensor_len());
            for d in &decoded {
                pixels.extend(pre.preprocess(d).map_err(|e| e.to_string())?);
            }
            std::hint::black_box(&pixels);
            decoded.len()
        }
        other => return Err(format!("unknown mode `{other}`")),
    };
    let secs = t.elapsed().as_secs_f64();
    let peak = peak_rss_bytes();
    println!(
        "{{\"mode\":\"{mode}\",\"images\":{items},\"seconds\":{secs:.3},\
         \"hwm_after_load_mib\":{:.1},\"hwm_end_mib\":{:.1}}}",
        mib(loaded),
        mib(peak)
    );
    Ok(())
}

fn run_child(mode: &str, args: &Args) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args([
            "--mode",
            mode,
            "--images",
            &args.images.to_string(),
            "--ops",
            &args.ops.to_string(),
        ])
        .args(
            args.model
                .iter()
                .flat_map(|m| [std::ffi::OsStr::new("--model"), m.as_os_str()]),
        )
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{mode} child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .map(str::to_string)
        .ok_or_else(|| format!("{mode} child printed no result"))
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("peak_memory: {e}");
        std::process::exit(2);
    });
    if let Some(mode) = &args.mode {
        if let Err(e) = child(mode, &args) {
            eprintln!("peak_memory: {e}");
            std::process::exit(1);
        }
        return;
    }
    let mut rows = Vec::new();
    for mode in ["streamed", "decode_all_first"] {
        match run_child(mode, &args) {
            Ok(line) => {
                eprintln!("{line}");
                rows.push(line);
            }
            Err(e) => {
                eprintln!("peak_memory: {e}");
                std::process::exit(1);
            }
        }
    }
    println!(
        "{{\"images\":{},\"ops\":\"{}\",\"threads\":{},\"runs\":[{}]}}",
        args.images,
        args.ops,
        bench_threads(),
        rows.join(",")
    );
}
