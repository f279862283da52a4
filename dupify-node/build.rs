//! napi-rs setup; LibTorch is found at load time, never at a path of the build machine.
//!
//! The addon is packed and installed elsewhere, so it carries no RUNPATH and does not keep
//! `libtorch_cuda` as a load-time dependency: `loader.js` finds a LibTorch (see its docs),
//! loads its libraries (with `libtorch_cuda` when present) and then requires the addon, whose
//! `libc10.so` / `libtorch_cpu.so` dependencies resolve to the libraries already loaded.
fn main() {
    napi_build::setup();
    dupify_build::LibTorchLink::new()
        .absolute_rpath(false)
        .link_cuda(false)
        .emit();
}
