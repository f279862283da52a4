//! Heavy calls run as napi `AsyncTask`s on libuv's worker pool: the JS thread only converts
//! the arguments and, later, the result, so the event loop keeps turning while Dupify works.

use napi::bindgen_prelude::{AsyncTask, ToNapiValue, TypeName};
use napi::{Env, Task};

use crate::convert::Js;
use crate::error::{guard, ErrInfo, Res};

type Work = Box<dyn FnOnce() -> Res<Js> + Send>;

/// One unit of off-thread work producing a [`Js`] tree.
pub struct Job {
    work: Option<Work>,
}

impl Job {
    /// Wraps `f`, which runs on a worker thread under the panic [`guard`].
    pub(crate) fn run(f: impl FnOnce() -> Res<Js> + Send + 'static) -> AsyncTask<Job> {
        AsyncTask::new(Job {
            work: Some(Box::new(f)),
        })
    }

    /// A promise rejected with `e` (argument errors found on the JS thread): callers of an
    /// async method always get a promise, never a synchronous throw.
    pub(crate) fn fail(e: ErrInfo) -> AsyncTask<Job> {
        Job::run(move || Err(e))
    }

    /// `Job::run` when the arguments converted, else `Job::fail`.
    pub(crate) fn try_run<A: Send + 'static>(
        args: Res<A>,
        f: impl FnOnce(A) -> Res<Js> + Send + 'static,
    ) -> AsyncTask<Job> {
        match args {
            Ok(a) => Job::run(move || f(a)),
            Err(e) => Job::fail(e),
        }
    }
}

impl Task for Job {
    type Output = Res<Js>;
    type JsValue = Js;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let work = self.work.take();
        Ok(guard(move || match work {
            Some(f) => f(),
            None => Err(ErrInfo::internal("a task ran twice")),
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Js> {
        output.map_err(|e| e.into_napi(&env))
    }
}

/// A class instance opened off the JS thread.
pub enum Opened {
    Catalog(crate::catalog::Catalog),
    KeyStore(crate::keys::KeyStore),
}

impl TypeName for Opened {
    fn type_name() -> &'static str {
        "object"
    }
    fn value_type() -> napi::ValueType {
        napi::ValueType::Object
    }
}

impl ToNapiValue for Opened {
    unsafe fn to_napi_value(
        env: napi::sys::napi_env,
        val: Self,
    ) -> napi::Result<napi::sys::napi_value> {
        unsafe {
            match val {
                Opened::Catalog(c) => ToNapiValue::to_napi_value(env, c),
                Opened::KeyStore(k) => ToNapiValue::to_napi_value(env, k),
            }
        }
    }
}

/// Off-thread work producing a class instance (a catalog or key store being opened).
pub struct Opener {
    work: Option<Box<dyn FnOnce() -> Res<Opened> + Send>>,
}

impl Opener {
    /// Runs `f(args)` on a worker thread when the arguments converted, else rejects.
    pub(crate) fn try_run<A: Send + 'static>(
        args: Res<A>,
        f: impl FnOnce(A) -> Res<Opened> + Send + 'static,
    ) -> AsyncTask<Opener> {
        let work: Box<dyn FnOnce() -> Res<Opened> + Send> = match args {
            Ok(a) => Box::new(move || f(a)),
            Err(e) => Box::new(move || Err(e)),
        };
        AsyncTask::new(Opener { work: Some(work) })
    }
}

impl Task for Opener {
    type Output = Res<Opened>;
    type JsValue = Opened;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let work = self.work.take();
        Ok(guard(move || match work {
            Some(f) => f(),
            None => Err(ErrInfo::internal("a task ran twice")),
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Opened> {
        output.map_err(|e| e.into_napi(&env))
    }
}
