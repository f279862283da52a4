//! Loads shared libraries for the `dupify` Node addon before the addon itself is loaded.
//!
//! The addon needs `libc10.so` and `libtorch_cpu.so` at load time but carries no path to
//! them: it is installed on machines where LibTorch lives wherever the user put it. The JS
//! entry (`loader.js`) finds that LibTorch and calls [`preload`] with its libraries; once they
//! are in the process, the dynamic linker satisfies the addon's dependencies with them by
//! their `SONAME`, so the addon loads with exactly that LibTorch. Node's `process.dlopen` only
//! loads addons (it unloads any other library again), hence this small addon with no LibTorch
//! dependency of its own.

use napi::{Error, Result, Status};
use napi_derive::napi;

/// Loads each library (absolute paths, in order: dependencies first) with `RTLD_NOW |
/// RTLD_LOCAL` and keeps it loaded for the life of the process. Stops at the first library
/// that fails, with the dynamic linker's message.
#[cfg(unix)]
#[napi]
pub fn preload(paths: Vec<String>) -> Result<()> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    for path in paths {
        // SAFETY: loading a library runs its initialisers; these are LibTorch's own
        // libraries, the same ones the addon would make the dynamic linker load.
        let lib = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| Error::new(Status::GenericFailure, format!("{path}: {e}")))?;
        // Never unloaded: the addon and LibTorch's registries point into it.
        let _ = lib.into_raw();
    }
    Ok(())
}
