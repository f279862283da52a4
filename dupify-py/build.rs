//! The extension module is installed at `site-packages/dupify/_dupify*.so` next to the `torch`
//! package it depends on, so it finds LibTorch at `$ORIGIN/../torch/lib`: exactly one LibTorch
//! per process, the same one `import torch` uses. The build's own LibTorch directory follows
//! as a fallback for the editable `maturin develop` install, whose module sits in the source
//! tree (it is the same venv torch, so still one LibTorch).
#[path = "../build/torch_link.rs"]
mod torch_link;

fn main() {
    torch_link::emit(Some("$ORIGIN/../torch/lib"));
}
