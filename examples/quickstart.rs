//! The smallest Dupify program: what compute devices this process can use.
//!
//! ```text
//! $ cargo run --example quickstart
//! dupify quickstart: model work will run on cpu (CUDA devices: 0)
//! ```

fn main() -> anyhow::Result<()> {
    let report = dupify_core::device_report();
    println!(
        "dupify quickstart: model work will run on {} (CUDA devices: {})",
        report.auto_device, report.cuda_device_count
    );
    Ok(())
}
