//! napi-rs setup plus the workspace's LibTorch rpath/CUDA link flags.
fn main() {
    napi_build::setup();
    dupify_build::LibTorchLink::new().emit();
}
