//! `Extractor` and `CancelToken` for JavaScript: argument conversion around
//! [`dupify_core::Extractor`], every model or image call on a worker thread.

use std::sync::Arc;

use dupify_core::colors::ColorOptions;
use dupify_core::{
    BatchOptions, Device, Features, ImageInput, InputLimits, Ops, Precision, ResizeMode,
};
use napi::bindgen_prelude::{
    AsyncTask, ClassInstance, FnArgs, Function, JsObjectValue, Object, Unknown,
};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::{Env, ValueType};
use napi_derive::napi;
use serde::Deserialize;

use crate::convert::{arg, arg_or_default, from_value, is_nullish, string_arg, to_json, Js};
use crate::error::{sync, ErrInfo, Res};
use crate::input;
use crate::task::Job;

/// Options of `new Extractor(options)`; every field optional, defaults as in the core's
/// `ExtractorConfig`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExtractorOptions {
    model_dir: Option<String>,
    device: Option<String>,
    precision: Option<String>,
    threads: Option<usize>,
    limits: Option<LimitOptions>,
    resize_mode: Option<ResizeMode>,
    working_side: Option<u32>,
    /// How large photos decode: 1 (default) at 1/2, 1/4 or 1/8 scale while every view still
    /// fits, 2 at twice that size, 0 always at full size.
    reduced_decode_margin: Option<u32>,
    batch_size: Option<usize>,
    cache_capacity: Option<usize>,
    /// The core's `ColorOptions` JSON (missing fields take their defaults).
    color_options: Option<ColorOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LimitOptions {
    max_bytes: Option<u64>,
    max_pixels: Option<u64>,
    max_side: Option<u32>,
}

/// A cancellation flag for `extractBatch` and `Catalog.ingest`: items not started when
/// `cancel()` is called finish with a `cancelled` error.
#[napi]
#[derive(Clone, Default)]
pub struct CancelToken {
    pub(crate) inner: dupify_core::CancelToken,
}

#[napi]
impl CancelToken {
    /// A fresh, not-cancelled token.
    #[napi(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation.
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether cancellation was requested.
    #[napi(getter)]
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

/// The extraction pipeline (CLIP embeddings, colours, silhouette, cut-out, attributes,
/// quality), shared by every call. The model loads lazily on the first call that needs it.
#[napi]
pub struct Extractor {
    pub(crate) inner: dupify_core::Extractor,
}

#[napi]
impl Extractor {
    /// Builds an extractor. Cheap: no model is loaded until a call needs it (or `warmUp`).
    /// Throws `invalid_parameter` for bad options and `model_error` for a missing model
    /// directory.
    #[napi(constructor, ts_args_type = "options?: ExtractorOptions")]
    pub fn new(env: Env, options: Option<Unknown>) -> napi::Result<Self> {
        sync(&env, || {
            let o: ExtractorOptions = arg_or_default(options.as_ref(), "options")?;
            let mut b = dupify_core::Extractor::builder();
            if let Some(d) = o.model_dir {
                b = b.model_dir(d);
            }
            if let Some(d) = o.device {
                b = b.device(d.parse::<Device>()?);
            }
            if let Some(p) = o.precision {
                b = b.precision(p.parse::<Precision>()?);
            }
            if let Some(t) = o.threads {
                b = b.threads(t);
            }
            if let Some(l) = o.limits {
                let d = InputLimits::default();
                b = b.limits(InputLimits::try_new(
                    l.max_bytes.unwrap_or(d.max_bytes),
                    l.max_pixels.unwrap_or(d.max_pixels),
                    l.max_side.unwrap_or(d.max_side),
                )?);
            }
            if let Some(m) = o.resize_mode {
                b = b.resize_mode(m);
            }
            if let Some(w) = o.working_side {
                b = b.working_side(w);
            }
            if let Some(m) = o.reduced_decode_margin {
                b = b.reduced_decode_margin(m);
            }
            if let Some(n) = o.batch_size {
                b = b.batch_size(n);
            }
            if let Some(n) = o.cache_capacity {
                b = b.cache_capacity(n);
            }
            if let Some(c) = o.color_options {
                b = b.color_options(c);
            }
            Ok(Extractor { inner: b.build()? })
        })
    }

    /// Loads the CLIP model and attribute heads now instead of on first use.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn warm_up(&self) -> AsyncTask<Job> {
        let x = self.inner.clone();
        Job::run(move || {
            x.warm_up()?;
            Ok(Js::Undefined)
        })
    }

    /// Content hash of the loaded model (loads it if needed): the `model` field of results.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn model_id(&self) -> AsyncTask<Job> {
        let x = self.inner.clone();
        Job::run(move || Ok(Js::Str(x.model_id()?)))
    }

    /// What the loaded model is (loads it if needed): architecture (`clip` or
    /// `efficientnet_lite`), name, content hash, dimensions, image size, text tower.
    #[napi(ts_return_type = "Promise<ModelInfo>")]
    pub fn model_info(&self) -> AsyncTask<Job> {
        let x = self.inner.clone();
        Job::run(move || Js::from_serde(&x.model_info()?))
    }

    /// Dimension of image embeddings (loads the model if needed).
    #[napi(ts_return_type = "Promise<number>")]
    pub fn embed_dim(&self) -> AsyncTask<Job> {
        let x = self.inner.clone();
        Job::run(move || Ok(Js::Num(x.embed_dim()? as f64)))
    }

    /// CLIP text embedding (L2-normalised), for text→image search.
    #[napi(
        ts_args_type = "text: string",
        ts_return_type = "Promise<Float32Array>"
    )]
    pub fn embed_text(&self, text: Option<Unknown>) -> AsyncTask<Job> {
        let x = self.inner.clone();
        Job::try_run(string_arg(text.as_ref(), "text"), move |t| {
            Ok(Js::F32(x.embed_text(&t)?))
        })
    }

    /// CLIP text embeddings of several texts, in order.
    #[napi(
        ts_args_type = "texts: string[]",
        ts_return_type = "Promise<Float32Array[]>"
    )]
    pub fn embed_texts(&self, texts: Option<Unknown>) -> AsyncTask<Job> {
        let x = self.inner.clone();
        Job::try_run(arg::<Vec<String>>(texts.as_ref(), "texts"), move |t| {
            let refs: Vec<&str> = t.iter().map(String::as_str).collect();
            Ok(Js::Arr(
                x.embed_texts(&refs)?.into_iter().map(Js::F32).collect(),
            ))
        })
    }

    /// Runs `ops` (`"embed,colors"`, `["embed", "colors"]` or `"all"`) on one image.
    #[napi(
        ts_args_type = "image: ImageInput, ops: Ops",
        ts_return_type = "Promise<Features>"
    )]
    pub fn extract(&self, image: Option<Unknown>, ops: Option<Unknown>) -> AsyncTask<Job> {
        let x = self.inner.clone();
        let args =
            input::image(image.as_ref(), "image").and_then(|i| Ok((i, parse_ops(ops.as_ref())?)));
        Job::try_run(args, move |(image, ops)| {
            features_js(x.extract(&image, ops)?)
        })
    }

    /// Runs `ops` on every image, batched. Resolves to one entry per image, in order: its
    /// `Features`, or an `Error` (with `.code`) for an image that failed. Rejects only for
    /// problems of the whole call (no operation, model unavailable).
    #[napi(
        ts_args_type = "images: ImageInput[], ops: Ops, options?: BatchOptions",
        ts_return_type = "Promise<Array<Features | DupifyError>>"
    )]
    pub fn extract_batch(
        &self,
        images: Option<Unknown>,
        ops: Option<Unknown>,
        options: Option<Unknown>,
    ) -> AsyncTask<Job> {
        let x = self.inner.clone();
        let args = (|| {
            let images = input::images(images.as_ref(), "images")?;
            let ops = parse_ops(ops.as_ref())?;
            let opts = batch_options(options.as_ref())?;
            Ok((images, ops, opts))
        })();
        Job::try_run(
            args,
            move |(images, ops, opts): (Vec<ImageInput>, Ops, BatchOptions)| {
                let results = x.extract_batch(&images, ops, &opts)?;
                let items = results
                    .into_iter()
                    .map(|r| match r {
                        Ok(f) => features_js(f),
                        Err(e) => Ok(Js::Err(e.into())),
                    })
                    .collect::<Res<Vec<Js>>>()?;
                Ok(Js::Arr(items))
            },
        )
    }
}

/// `Features` as the core's JSON, with the cut-out as a `Buffer` instead of base64.
pub(crate) fn features_js(mut f: Features) -> Res<Js> {
    let cutout = f.cutout_png.take();
    let mut js = Js::from_serde(&f)?;
    if let Some(png) = cutout {
        js.set("cutout_png", Js::Bytes(png));
    }
    Ok(js)
}

/// `ops`: a comma-separated string or an array of names, parsed by the core.
pub(crate) fn parse_ops(v: Option<&Unknown<'_>>) -> Res<Ops> {
    let names: Vec<String> = match v {
        Some(v) if !is_nullish(v) => match to_json(v, "ops")? {
            serde_json::Value::String(s) => vec![s],
            other => from_value(other, "ops")?,
        },
        _ => return Err(ErrInfo::missing("ops")),
    };
    Ok(names.join(",").parse::<Ops>()?)
}

/// `{ progress?: (done, total) => void, cancel?: CancelToken }`.
pub(crate) fn batch_options(v: Option<&Unknown<'_>>) -> Res<BatchOptions> {
    let mut out = BatchOptions::default();
    let Some(v) = v.filter(|v| !is_nullish(v)) else {
        return Ok(out);
    };
    if !matches!(v.get_type(), Ok(ValueType::Object)) {
        return Err(ErrInfo::invalid("options", "must be an object"));
    }
    let obj: Object = unsafe { v.cast() }.map_err(|e| ErrInfo::invalid("options", e.reason))?;
    let progress: Unknown = obj
        .get_named_property("progress")
        .map_err(|e| ErrInfo::invalid("options.progress", e.reason))?;
    if !is_nullish(&progress) {
        if !matches!(progress.get_type(), Ok(ValueType::Function)) {
            return Err(ErrInfo::invalid("options.progress", "must be a function"));
        }
        let f: Function<FnArgs<(u32, u32)>, Unknown<'static>> = unsafe { progress.cast() }
            .map_err(|e| ErrInfo::invalid("options.progress", e.reason))?;
        let tsfn = f
            .build_threadsafe_function::<FnArgs<(u32, u32)>>()
            .build()
            .map_err(|e| ErrInfo::internal(format!("cannot wrap the progress callback: {e}")))?;
        // Each report waits until the callback has run on the JS thread: every progress call
        // is delivered before the promise settles (a queued call could otherwise land after
        // it). The wait ends without a call if the environment is shutting down (the queued
        // closure, and with it the sender, is dropped). The callback's return value and any
        // exception it throws are ignored: progress reporting never fails the work.
        out.progress = Some(Arc::new(move |done: usize, total: usize| {
            let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
            let status = tsfn.call_with_return_value(
                FnArgs::from((clamp(done), clamp(total))),
                ThreadsafeFunctionCallMode::NonBlocking,
                move |_returned, _env| {
                    let _ = tx.send(());
                    Ok(())
                },
            );
            if status == napi::Status::Ok {
                let _ = rx.recv();
            }
        }));
    }
    let cancel: Unknown = obj
        .get_named_property("cancel")
        .map_err(|e| ErrInfo::invalid("options.cancel", e.reason))?;
    if !is_nullish(&cancel) {
        let token: ClassInstance<CancelToken> = unsafe { cancel.cast() }
            .map_err(|_| ErrInfo::invalid("options.cancel", "must be a CancelToken"))?;
        out.cancel = Some(token.inner.clone());
    }
    Ok(out)
}
