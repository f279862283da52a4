//! napi-rs setup plus the workspace's LibTorch rpath/CUDA link flags.
#[path = "../build/torch_link.rs"]
mod torch_link;

fn main() {
    napi_build::setup();
    torch_link::main();
}
