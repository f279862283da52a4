//! The wheel is installed on other machines, so the extension carries no path of the build
//! machine. `dupify/__init__.py` finds the installed `torch` package, checks its version and
//! loads its LibTorch (and `libtorch_cuda` when that wheel has it) before importing the
//! extension, whose load-time dependencies then resolve to those already-loaded libraries:
//! exactly one LibTorch per process, the one `import torch` uses. `$ORIGIN/../torch/lib`
//! stays as the entry for a loader that imports `_dupify` directly from site-packages.
fn main() {
    dupify_build::LibTorchLink::new()
        .origin_rpath("$ORIGIN/../torch/lib")
        .absolute_rpath(false)
        .link_cuda(false)
        .emit();
}
