//! Shared build script for every crate in this workspace that produces something linked
//! against LibTorch (tests, examples, benches, the Python and Node extensions).
//!
//! Why it exists: `torch-sys` tells rustc where LibTorch is (`-L`) but not where to find it at
//! run time, and the linker drops `libtorch_cuda.so` as "unneeded" because nothing references
//! it by symbol — which makes `tch::Cuda::is_available()` false on a GPU machine. So this
//! script adds:
//! * an RPATH to the LibTorch the build used (`DEP_TCH_LIBTORCH_LIB`, exported by torch-sys),
//!   so binaries run without `LD_LIBRARY_PATH`; the Python extension passes an
//!   `$ORIGIN`-relative entry instead (see `dupify-py/build.rs`), so the installed wheel finds
//!   the `torch` package it depends on and never a second LibTorch;
//! * `-Wl,--no-as-needed -ltorch_cuda` when that library exists.
//!
//! A package uses it with `build = "../build/torch_link.rs"` and a direct `torch-sys`
//! dependency (only direct dependents of a `links` crate see its `DEP_*` variables).

use std::path::PathBuf;

#[allow(dead_code)]
pub fn main() {
    emit(None);
}

/// Emits the link flags; `origin_rpath`, when given, is searched before the absolute LibTorch
/// directory of the build.
pub fn emit(origin_rpath: Option<&str>) {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        println!("cargo:warning=torch-sys exported no LibTorch lib dir; no rpath added");
        return;
    };
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "linux" {
        return;
    }
    if let Some(entry) = origin_rpath {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{entry}");
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
