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

/// Off-thread work producing a class instance `T` (a catalog or key store being opened).
/// Generic over the class, so this module knows nothing of the classes it opens.
pub struct Opener<T> {
    work: Option<Box<dyn FnOnce() -> Res<T> + Send>>,
}

impl<T: ToNapiValue + TypeName + Send + 'static> Opener<T> {
    /// Runs `f(args)` on a worker thread when the arguments converted, else rejects.
    pub(crate) fn try_run<A: Send + 'static>(
        args: Res<A>,
        f: impl FnOnce(A) -> Res<T> + Send + 'static,
    ) -> AsyncTask<Opener<T>> {
        let work: Box<dyn FnOnce() -> Res<T> + Send> = match args {
            Ok(a) => Box::new(move || f(a)),
            Err(e) => Box::new(move || Err(e)),
        };
        AsyncTask::new(Opener { work: Some(work) })
    }
}

impl<T: ToNapiValue + TypeName + Send + 'static> Task for Opener<T> {
    type Output = Res<T>;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let work = self.work.take();
        Ok(guard(move || match work {
            Some(f) => f(),
            None => Err(ErrInfo::internal("a task ran twice")),
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<T> {
        output.map_err(|e| e.into_napi(&env))
    }
}
