//! RUNPATH to the LibTorch of the build and `libtorch_cuda` kept (see `dupify-build`).
fn main() {
    dupify_build::LibTorchLink::new().emit();
}
