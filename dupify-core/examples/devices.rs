//! Prints the compute devices LibTorch sees, as JSON.
//!
//! ```text
//! $ cargo run -p dupify-core --example devices
//! {"cuda_available":false,"cuda_device_count":0,"cudnn_available":false,"intra_op_threads":2,"auto_device":"cpu"}
//! ```
//! On a CUDA machine (built here, run there with that machine's torch 2.11 libraries) it
//! reports `"cuda_available":true`, which proves `libtorch_cuda` was linked.

fn main() {
    let report = dupify_core::device_report();
    println!(
        "{}",
        serde_json::to_string(&report).expect("a DeviceReport always serialises")
    );
}
