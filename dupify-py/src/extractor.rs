//! `dupify.Extractor`, `dupify.CancelToken` and the module-level helpers around extraction.
//! Every heavy call runs with the GIL released ([`detached`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dupify_core::colors::{ColorOptions, DominantColor};
use dupify_core::extractor::ProgressFn;
use dupify_core::{
    BatchOptions, CancelToken, Device, Extractor, Features, ImageInput, InputLimits, Ops,
    Precision, ResizeMode,
};
use numpy::{PyArray2, PyArrayMethods};
use pyo3::prelude::*;

use crate::convert::{f32_array, f32_vec, from_name, from_py, image_input, image_iter};
use crate::error::{detached, Error, Failure, Result};
use crate::results::{PyColorReport, PyDominantColor, PyFeatures};

/// A cancellation flag for a running batch or ingest; share it with another thread and call
/// `cancel()`: items not yet started finish with a `CancelledError` (`code == "cancelled"`).
#[pyclass(name = "CancelToken", module = "dupify", frozen)]
#[derive(Clone, Default)]
pub struct PyCancelToken(pub CancelToken);

#[pymethods]
impl PyCancelToken {
    /// A fresh, not-cancelled token.
    #[new]
    fn new() -> Self {
        Self::default()
    }
    /// Requests cancellation.
    fn cancel(&self) {
        self.0.cancel();
    }
    /// Whether cancellation was requested.
    #[getter]
    fn cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
    fn __repr__(&self) -> String {
        format!("CancelToken(cancelled={})", self.0.is_cancelled())
    }
}

/// Builds the core's progress callback around an optional Python callable. It also checks for
/// pending signals (Ctrl-C): a raised exception (from the callable or a signal) cancels the
/// batch through `token` and is re-raised by the caller once the core returns.
pub struct Progress {
    pub failure: Arc<Mutex<Option<PyErr>>>,
    pub callback: ProgressFn,
}

impl Progress {
    pub fn new(callable: Option<Py<PyAny>>, token: CancelToken) -> Progress {
        let failure: Arc<Mutex<Option<PyErr>>> = Arc::new(Mutex::new(None));
        let slot = failure.clone();
        let callback: ProgressFn = Arc::new(move |done, total| {
            Python::attach(|py| {
                let r = py.check_signals().and_then(|()| match &callable {
                    Some(f) => f.call1(py, (done, total)).map(drop),
                    None => Ok(()),
                });
                if let Err(e) = r {
                    if let Ok(mut s) = slot.lock() {
                        if s.is_none() {
                            *s = Some(e);
                        }
                    }
                    token.cancel();
                }
            })
        });
        Progress { failure, callback }
    }

    /// The exception raised inside the callback, if any.
    pub fn take_failure(&self) -> Option<PyErr> {
        self.failure.lock().ok().and_then(|mut s| s.take())
    }
}

fn parse_ops(ops: &str) -> Result<Ops> {
    Ok(ops.parse::<Ops>()?)
}

/// The extraction pipeline: CLIP embeddings (image and text), dominant colours, silhouette,
/// cut-out, attributes and quality, for one image or a batch. Thread-safe: share one instance
/// between threads; every call releases the GIL while it works. The CLIP model loads on first
/// use (or with `warm_up()`).
#[pyclass(name = "Extractor", module = "dupify", frozen)]
pub struct PyExtractor {
    pub inner: Extractor,
    model_dir: Option<PathBuf>,
}

impl PyExtractor {
    fn extract_one(&self, py: Python<'_>, image: &Bound<'_, PyAny>, ops: Ops) -> Result<Features> {
        let input = image_input(image)?;
        let x = self.inner.clone();
        detached(py, move || x.extract(&input, ops))
    }

    /// Runs a batch with the progress/cancel plumbing; per-item results.
    pub fn run_batch(
        &self,
        py: Python<'_>,
        inputs: Vec<ImageInput>,
        ops: Ops,
        progress: Option<Py<PyAny>>,
        cancel: Option<&PyCancelToken>,
    ) -> Result<Vec<std::result::Result<Features, dupify_core::Error>>> {
        let token = cancel.map(|c| c.0.clone()).unwrap_or_default();
        let p = Progress::new(progress, token.clone());
        let mut opts = BatchOptions::default().with_cancel(token);
        opts.progress = Some(p.callback.clone());
        let x = self.inner.clone();
        let out = detached(py, move || x.extract_batch(&inputs, ops, &opts));
        if let Some(e) = p.take_failure() {
            return Err(Error::Python(e));
        }
        out
    }
}

#[pymethods]
impl PyExtractor {
    /// Creates an extractor.
    ///
    /// `model_dir` is a CLIP checkpoint directory (`config.json` + `model.safetensors`),
    /// needed for `embed`, `attributes` and text embeddings; colours, silhouette, cut-out and
    /// quality work without it. `device` is `auto`, `cpu`, `cuda` or `cuda:N`; `precision`
    /// `f32`, `f16`, `bf16` or `int8` (CPU only); `resize_mode` `center_crop` or `pad_to_square`;
    /// `color_options` a dict of the core's colour options (`num_colors`, `min_share`, …);
    /// `reduced_decode_margin` how large photos decode (1: at 1/2, 1/4 or 1/8 scale while
    /// every view still fits, PIL's draft rule; 2: twice that size; 0: always full size).
    /// Byte/pixel/side limits default to 25 MB, 50 MP and 20,000 px.
    #[new]
    #[pyo3(signature = (model_dir=None, *, device="auto", precision="f32", threads=None,
        batch_size=32, cache_capacity=0, working_side=256, resize_mode="center_crop",
        max_bytes=None, max_pixels=None, max_side=None, color_options=None,
        reduced_decode_margin=1))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        model_dir: Option<PathBuf>,
        device: &str,
        precision: &str,
        threads: Option<usize>,
        batch_size: usize,
        cache_capacity: usize,
        working_side: u32,
        resize_mode: &str,
        max_bytes: Option<u64>,
        max_pixels: Option<u64>,
        max_side: Option<u32>,
        color_options: Option<&Bound<'_, PyAny>>,
        reduced_decode_margin: u32,
    ) -> Result<Self> {
        let mut limits = InputLimits::default();
        if let Some(v) = max_bytes {
            limits = limits.with_max_bytes(v);
        }
        if let Some(v) = max_pixels {
            limits = limits.with_max_pixels(v);
        }
        if let Some(v) = max_side {
            limits = limits.with_max_side(v);
        }
        limits.validate()?;
        let mut b = Extractor::builder()
            .device(device.parse::<Device>()?)
            .precision(precision.parse::<Precision>()?)
            .batch_size(batch_size)
            .cache_capacity(cache_capacity)
            .working_side(working_side)
            .reduced_decode_margin(reduced_decode_margin)
            .resize_mode(from_name::<ResizeMode>(resize_mode, "resize_mode")?)
            .limits(limits);
        if let Some(t) = threads {
            b = b.threads(t);
        }
        if let Some(c) = color_options {
            let opts: ColorOptions = from_py(c, "color_options")?;
            opts.validate()?;
            b = b.color_options(opts);
        }
        if let Some(d) = &model_dir {
            b = b.model_dir(d);
        }
        Ok(PyExtractor {
            inner: b.build()?,
            model_dir,
        })
    }

    /// Loads the CLIP model and the attribute heads now instead of on first use.
    fn warm_up(&self, py: Python<'_>) -> Result<()> {
        let x = self.inner.clone();
        detached(py, move || x.warm_up())
    }

    /// Content hash of the loaded model (loads it if needed).
    #[getter]
    fn model_id(&self, py: Python<'_>) -> Result<String> {
        let x = self.inner.clone();
        detached(py, move || x.model_id())
    }

    /// What the loaded model is (loads it if needed): `architecture` (`clip` or
    /// `efficientnet_lite`), `name`, `content_hash`, `dimensions`, `image_size`,
    /// `has_text_tower`, as the core's JSON.
    fn model_info(&self, py: Python<'_>) -> Result<Py<PyAny>> {
        let x = self.inner.clone();
        let info = detached(py, move || x.model_info())?;
        crate::convert::to_dict(py, &info)
    }

    /// Dimension of image embeddings (loads the model if needed).
    #[getter]
    fn embed_dim(&self, py: Python<'_>) -> Result<usize> {
        let x = self.inner.clone();
        detached(py, move || x.embed_dim())
    }

    /// The model directory given at construction.
    #[getter]
    fn model_dir(&self) -> Option<PathBuf> {
        self.model_dir.clone()
    }

    /// The device model work runs on, as configured (`auto`, `cpu`, `cuda:N`).
    #[getter]
    fn device(&self) -> String {
        self.inner.config().device.to_string()
    }

    /// Runs `ops` (comma-separated: `embed`, `colors`, `silhouette`, `cutout`, `attributes`,
    /// `quality`, or `all`) on one image and returns its `Features`.
    #[pyo3(signature = (image, ops="embed"))]
    fn extract(&self, py: Python<'_>, image: &Bound<'_, PyAny>, ops: &str) -> Result<PyFeatures> {
        let ops = parse_ops(ops)?;
        self.extract_one(py, image, ops).map(PyFeatures)
    }

    /// Runs `ops` on every image: decoded once each, CPU work in parallel, model work batched.
    /// Returns one entry per image, in order: a `Features`, or the `DupifyError` instance for
    /// an image that failed (one bad image, or an object that is not an image, never fails the
    /// batch). `progress(done, total)` is
    /// called after each item on this thread; if it raises, the batch is cancelled and the
    /// exception re-raised. `cancel` is a `CancelToken` another thread may trigger.
    #[pyo3(signature = (images, ops="embed", *, progress=None, cancel=None))]
    fn extract_batch(
        &self,
        py: Python<'_>,
        images: &Bound<'_, PyAny>,
        ops: &str,
        progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, PyCancelToken>>,
    ) -> Result<Vec<Py<PyAny>>> {
        let ops = parse_ops(ops)?;
        // An object that is not an image at all fails its own item, like a corrupt file.
        let mut converted = Vec::new();
        for item in image_iter(images)? {
            converted.push(match image_input(&item?) {
                Ok(input) => Ok(input),
                Err(Error::Native(f)) => Err(f),
                Err(e) => return Err(e),
            });
        }
        let inputs: Vec<ImageInput> = converted
            .iter()
            .filter_map(|c| c.as_ref().ok().cloned())
            .collect();
        let mut results = self
            .run_batch(py, inputs, ops, progress, cancel.as_deref())?
            .into_iter();
        let mut out = Vec::with_capacity(converted.len());
        for c in converted {
            let r = match c {
                Err(f) => Err(f),
                Ok(_) => match results.next() {
                    Some(r) => r.map_err(Failure::from),
                    None => Err(Failure::internal("batch returned too few results")),
                },
            };
            out.push(match r {
                Ok(f) => Py::new(py, PyFeatures(f))?.into_any(),
                Err(f) => f.to_exception(py)?.unbind(),
            });
        }
        Ok(out)
    }

    /// CLIP image embedding of one image (L2-normalised float32 array).
    fn embed(&self, py: Python<'_>, image: &Bound<'_, PyAny>) -> Result<Py<PyAny>> {
        let f = self.extract_one(py, image, Ops::EMBED)?;
        let e = f
            .embedding
            .ok_or_else(|| Failure::internal("embed returned no embedding"))?;
        Ok(f32_array(py, &e).into_any().unbind())
    }

    /// CLIP text embedding (L2-normalised float32 array), for text→image search.
    fn embed_text(&self, py: Python<'_>, text: String) -> Result<Py<PyAny>> {
        let x = self.inner.clone();
        let v = detached(py, move || x.embed_text(&text))?;
        Ok(f32_array(py, &v).into_any().unbind())
    }

    /// CLIP text embeddings of several texts, as an `(n, dim)` float32 array.
    fn embed_texts(&self, py: Python<'_>, texts: Vec<String>) -> Result<Py<PyAny>> {
        let x = self.inner.clone();
        let rows = detached(py, move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            x.embed_texts(&refs)
        })?;
        let dim = rows.first().map_or(0, Vec::len);
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let arr = numpy::PyArray1::from_vec(py, flat)
            .reshape([rows.len(), dim])
            .map_err(|e| Failure::internal(e.to_string()))?;
        let arr: Bound<'_, PyArray2<f32>> = arr;
        Ok(arr.into_any().unbind())
    }

    /// Dominant colours of the product in one image.
    fn colors(&self, py: Python<'_>, image: &Bound<'_, PyAny>) -> Result<PyColorReport> {
        let f = self.extract_one(py, image, "colors".parse()?)?;
        f.colors
            .map(PyColorReport)
            .ok_or_else(|| Failure::internal("colors returned nothing").into())
    }

    /// Silhouette (bounding box, area, confidence, shape embedding) of one image.
    fn silhouette(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
    ) -> Result<crate::results::PySilhouette> {
        let f = self.extract_one(py, image, "silhouette".parse()?)?;
        f.silhouette
            .map(crate::results::PySilhouette)
            .ok_or_else(|| Failure::internal("silhouette returned nothing").into())
    }

    /// Cut-out of one image: PNG bytes of the product on a transparent background.
    fn cutout<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'_, PyAny>,
    ) -> Result<Bound<'py, pyo3::types::PyBytes>> {
        let f = self.extract_one(py, image, "cutout".parse()?)?;
        let png = f
            .cutout_png
            .ok_or_else(|| Failure::internal("cutout returned nothing"))?;
        Ok(pyo3::types::PyBytes::new(py, &png))
    }

    /// Product attributes of one image.
    fn attributes(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
    ) -> Result<crate::results::PyAttributeReport> {
        let f = self.extract_one(py, image, "attributes".parse()?)?;
        f.attributes
            .map(crate::results::PyAttributeReport)
            .ok_or_else(|| Failure::internal("attributes returned nothing").into())
    }

    /// Image quality of one image.
    fn quality(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
    ) -> Result<crate::results::PyQualityScore> {
        let f = self.extract_one(py, image, "quality".parse()?)?;
        f.quality
            .map(crate::results::PyQualityScore)
            .ok_or_else(|| Failure::internal("quality returned nothing").into())
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "Extractor(model_dir={:?}, device='{}', batch_size={}, threads={})",
            self.model_dir, c.device, c.batch_size, c.threads
        )
    }
}

/// Decodes an image with the core's decoder (limits checked, EXIF orientation applied) into a
/// numpy uint8 array: H×W×3, or H×W×4 when the image has alpha.
#[pyfunction]
pub fn decode(py: Python<'_>, image: &Bound<'_, PyAny>) -> Result<Py<PyAny>> {
    let input = image_input(image)?;
    let (w, h, channels, data) = detached(py, move || {
        let d = dupify_core::decode(&input, &InputLimits::default())?;
        let (w, h) = (d.width() as usize, d.height() as usize);
        Ok::<_, dupify_core::Error>(match d.alpha() {
            Some(_) => (w, h, 4usize, d.rgba_bytes()),
            None => (w, h, 3usize, d.rgb().to_vec()),
        })
    })?;
    let arr = numpy::PyArray1::from_vec(py, data)
        .reshape([h, w, channels])
        .map_err(|e| Failure::internal(e.to_string()))?;
    Ok(arr.into_any().unbind())
}

fn palette(obj: &Bound<'_, PyAny>) -> Result<Vec<DominantColor>> {
    if let Ok(r) = obj.cast::<PyColorReport>() {
        return Ok(r.get().0.colors.clone());
    }
    if let Ok(f) = obj.cast::<PyFeatures>() {
        return f
            .get()
            .0
            .colors
            .as_ref()
            .map(|r| r.colors.clone())
            .ok_or_else(|| Failure::invalid("palette", "these features have no colors").into());
    }
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let c = item.cast::<PyDominantColor>().map_err(|_| {
            Failure::invalid(
                "palette",
                "must be a ColorReport, Features or a list of DominantColor",
            )
        })?;
        out.push(c.get().0.clone());
    }
    Ok(out)
}

/// Perceptual distance between two palettes (earth mover's distance in CIEDE2000 units; 0 for
/// identical palettes). Each argument is a `ColorReport`, a `Features` with colours, or a list
/// of `DominantColor`.
#[pyfunction]
pub fn palette_distance(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> Result<f32> {
    let (a, b) = (palette(a)?, palette(b)?);
    Ok(dupify_core::colors::palette_distance(&a, &b))
}

/// CIEDE2000 colour difference between two CIELAB triples.
#[pyfunction]
pub fn delta_e2000(lab1: (f32, f32, f32), lab2: (f32, f32, f32)) -> f32 {
    dupify_core::colors::delta_e2000([lab1.0, lab1.1, lab1.2], [lab2.0, lab2.1, lab2.2])
}

/// Cosine similarity of two silhouette shape embeddings.
#[pyfunction]
pub fn shape_similarity(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> Result<f32> {
    let (a, b) = (f32_vec(a, "a")?, f32_vec(b, "b")?);
    if a.len() != b.len() {
        return Err(
            Failure::invalid("b", format!("has length {}, `a` has {}", b.len(), a.len())).into(),
        );
    }
    Ok(dupify_core::silhouette::shape_cosine(&a, &b))
}

/// The default model directory under `root` (default: the working directory), as the CLI
/// and server choose it (`dupify_core::find_default_model`): a real CLIP checkpoint in
/// `weights/real/clip-vit-base-patch32`, else the pretrained EfficientNet-Lite2 that the
/// project's setup installs; `None` when neither is there.
#[pyfunction]
#[pyo3(signature = (root=None))]
pub fn default_model_dir(root: Option<PathBuf>) -> Option<PathBuf> {
    dupify_core::find_default_model(&[root.unwrap_or_default()])
}

/// What LibTorch sees in this process (CUDA availability, device count, the `auto` device),
/// as the core's JSON.
#[pyfunction]
pub fn device_report(py: Python<'_>) -> Result<Py<PyAny>> {
    crate::convert::to_dict(py, &dupify_core::device_report())
}
