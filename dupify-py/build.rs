//! The extension module is installed at `site-packages/dupify/_dupify*.so` next to the `torch`
//! package it depends on, so it finds LibTorch at `$ORIGIN/../torch/lib`; the build's own
//! LibTorch directory follows as a fallback for the editable `maturin develop` install.
fn main() {
    dupify_build::LibTorchLink::new()
        .origin_rpath("$ORIGIN/../torch/lib")
        .emit();
}
