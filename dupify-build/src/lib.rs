//! Link flags for crates that link LibTorch through `tch`, emitted from a build script.
//!
//! `torch-sys` tells rustc where LibTorch is (`-L`) but not where to find it at run time, and
//! the linker drops `libtorch_cuda.so` as "unneeded" because nothing references it by symbol,
//! which makes `tch::Cuda::is_available()` false on a GPU machine. [`LibTorchLink`] adds what
//! is missing for the kind of artefact being built:
//!
//! * binaries, tests and examples run on the machine that built them: a RUNPATH to the LibTorch
//!   of the build (`DEP_TCH_LIBTORCH_LIB`, exported by torch-sys) and `libtorch_cuda` kept;
//! * extension modules that are installed elsewhere (a Python wheel, an npm addon) must never
//!   point at the build machine: they take an `$ORIGIN`-relative entry, or none, and their
//!   loader finds LibTorch at import time.
//!
//! The calling crate needs a direct `torch-sys` dependency: only direct dependents of a
//! `links` crate see its `DEP_*` variables.

use std::path::PathBuf;

/// What a build script emits for LibTorch. Defaults: absolute RUNPATH on, no `$ORIGIN`
/// entry, `libtorch_cuda` linked when the build's LibTorch has it.
#[derive(Debug, Clone)]
pub struct LibTorchLink {
    origin_rpath: Option<String>,
    absolute_rpath: bool,
    link_cuda: bool,
}

impl Default for LibTorchLink {
    fn default() -> Self {
        Self::new()
    }
}

impl LibTorchLink {
    /// The defaults for binaries, tests and examples that run where they were built.
    pub fn new() -> Self {
        Self {
            origin_rpath: None,
            absolute_rpath: true,
            link_cuda: true,
        }
    }

    /// A RUNPATH entry relative to the artefact (for example `$ORIGIN/../torch/lib` for a
    /// Python extension installed next to the `torch` package), searched first.
    pub fn origin_rpath(mut self, entry: &str) -> Self {
        self.origin_rpath = Some(entry.to_owned());
        self
    }

    /// Whether to add a RUNPATH to the LibTorch directory of the build. Off for artefacts that
    /// are shipped to other machines.
    pub fn absolute_rpath(mut self, on: bool) -> Self {
        self.absolute_rpath = on;
        self
    }

    /// Whether to keep `libtorch_cuda` as a load-time dependency when the build's LibTorch has
    /// it. Off for artefacts whose loader loads it (when present) before them, so that one
    /// binary loads with a CPU-only LibTorch too.
    pub fn link_cuda(mut self, on: bool) -> Self {
        self.link_cuda = on;
        self
    }

    /// Prints the `cargo:` instructions.
    pub fn emit(self) {
        println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
        let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
            println!("cargo:warning=torch-sys exported no LibTorch lib dir; no rpath added");
            return;
        };
        if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
            return;
        }
        if let Some(entry) = &self.origin_rpath {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{entry}");
        }
        if self.absolute_rpath {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        }
        if self.link_cuda && lib.join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}
