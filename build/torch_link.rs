//! Shared build script for every crate in this workspace that produces something linked
//! against LibTorch (tests, examples, benches, the Python and Node extensions).
//!
//! Why it exists: `torch-sys` tells rustc where LibTorch is (`-L`) but not where to find it at
//! run time, and the linker drops `libtorch_cuda.so` as "unneeded" because nothing references
//! it by symbol — which makes `tch::Cuda::is_available()` false on a GPU machine. So this
//! script adds:
//! * an RPATH to the LibTorch the build used (`DEP_TCH_LIBTORCH_LIB`, exported by torch-sys),
//!   so binaries run without `LD_LIBRARY_PATH`; and, when `DUPIFY_RPATH_ORIGIN` is set (the
//!   Python wheel), `$ORIGIN`-relative entries instead, so the wheel finds the `torch`
//!   package it depends on;
//! * `-Wl,--no-as-needed -ltorch_cuda` when that library exists (DESIGN.md §4).
//!
//! A package uses it with `build = "../build/torch_link.rs"` and a direct `torch-sys`
//! dependency (only direct dependents of a `links` crate see its `DEP_*` variables).

use std::path::PathBuf;

pub fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=DUPIFY_RPATH_ORIGIN");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        println!("cargo:warning=torch-sys exported no LibTorch lib dir; no rpath added");
        return;
    };
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "linux" {
        return;
    }
    match std::env::var("DUPIFY_RPATH_ORIGIN") {
        // e.g. "$ORIGIN/../torch/lib" for a module installed at site-packages/dupify/.
        Ok(origin) if !origin.is_empty() => {
            for entry in origin.split(':') {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{entry}");
            }
        }
        _ => println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display()),
    }
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
