//! Conversions between Python objects and the core's plain Rust types: image inputs, vectors,
//! serde structs (to the core's JSON and back). Nothing here decides anything the core decides.

use std::path::PathBuf;

use dupify_core::input::PixelLayout;
use dupify_core::ImageInput;
use numpy::{PyArray3, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView, PyString, PyTuple};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Failure, Result};

/// `base64` text of an encoded image, for callers that hold base64 rather than bytes (a plain
/// `str` is a file path; a `data:image/...;base64,` URL is recognised by its prefix).
#[pyclass(module = "dupify", frozen)]
pub struct Base64 {
    pub text: String,
}

#[pymethods]
impl Base64 {
    /// Wraps base64 text (standard or URL-safe alphabet, padded or not, optionally a `data:`
    /// URL; whitespace is ignored).
    #[new]
    fn new(text: String) -> Self {
        Base64 { text }
    }
    /// The base64 text.
    #[getter]
    fn text(&self) -> &str {
        &self.text
    }
    fn __repr__(&self) -> String {
        format!("Base64({} chars)", self.text.len())
    }
}

fn py_module<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyModule>>,
    name: &str,
) -> PyResult<Bound<'py, PyModule>> {
    Ok(cell
        .get_or_try_init(py, || py.import(name).map(Bound::unbind))?
        .bind(py)
        .clone())
}

/// The `json` module.
fn json(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    static JSON: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    py_module(py, &JSON, "json")
}

/// The core's JSON of `value` (exactly what `serde_json` prints for the Rust API).
pub fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Failure::internal(format!("cannot serialise result: {e}")).into())
}

/// Parses the core's JSON text into one of its types; a malformed text is an
/// `invalid_parameter` naming the type and serde's reason.
pub fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Failure::invalid(what, format!("not its JSON: {e}")).into())
}

/// `json.loads` of the core's JSON: `to_dict()` equals the Rust API's JSON, number for number.
pub fn to_dict<T: Serialize>(py: Python<'_>, value: &T) -> Result<Py<PyAny>> {
    let text = to_json(value)?;
    Ok(json(py)?.call_method1("loads", (text,))?.unbind())
}

/// The serde name of a unit enum variant (`"gold_metallic"`, `"center_crop"`), as in JSON.
pub fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

/// Parses a serde enum from its JSON name (`"pad_to_square"`).
pub fn from_name<T: DeserializeOwned>(name: &str, what: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|e| Failure::invalid(what, format!("`{name}`: {e}")).into())
}

/// Replaces numpy arrays (anything with `tolist`, that is not a str/bytes) by lists, in dicts
/// and lists, so serde can read them.
fn plain<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    if let Ok(d) = obj.cast::<PyDict>() {
        let out = PyDict::new(py);
        for (k, v) in d.iter() {
            out.set_item(k, plain(&v)?)?;
        }
        return Ok(out.into_any());
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'py, PyAny>> = obj
            .try_iter()?
            .map(|i| i.and_then(|v| plain(&v)))
            .collect::<PyResult<_>>()?;
        return Ok(PyList::new(py, items)?.into_any());
    }
    if obj.cast::<PyUntypedArray>().is_ok() {
        return obj.call_method0("tolist");
    }
    Ok(obj.clone())
}

/// Reads a serde struct from a Python mapping, refusing keys the struct does not have (a typo
/// must not silently drop a filter); keys not given take the struct's `Default` values.
pub fn from_py<T>(obj: &Bound<'_, PyAny>, what: &str) -> Result<T>
where
    T: DeserializeOwned + Serialize + Default,
{
    let d = obj
        .cast::<PyDict>()
        .map_err(|_| Failure::invalid(what, "must be a dict"))?;
    if let Ok(serde_json::Value::Object(known)) = serde_json::to_value(T::default()) {
        for k in d.keys() {
            let k: String = k
                .extract()
                .map_err(|_| Failure::invalid(what, "keys must be strings"))?;
            if !known.contains_key(&k) {
                let mut names: Vec<&String> = known.keys().collect();
                names.sort();
                return Err(Failure::invalid(
                    what,
                    format!(
                        "unknown field `{k}` (known: {})",
                        names
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .into());
            }
        }
    }
    // Fields not given keep the core's documented defaults.
    let plain = plain(obj)?;
    let given: serde_json::Value =
        pythonize::depythonize(&plain).map_err(|e| Failure::invalid(what, e))?;
    let mut value = serde_json::to_value(T::default())
        .map_err(|e| Failure::internal(format!("default {what}: {e}")))?;
    if let (serde_json::Value::Object(base), serde_json::Value::Object(given)) = (&mut value, given)
    {
        base.extend(given);
    }
    serde_json::from_value(value).map_err(|e| Failure::invalid(what, e).into())
}

/// A float vector from a numpy array or any sequence of numbers.
pub fn f32_vec(obj: &Bound<'_, PyAny>, what: &str) -> Result<Vec<f32>> {
    if let Ok(a) = obj.cast::<numpy::PyArray1<f32>>() {
        let ro = a.readonly();
        return Ok(ro.as_array().iter().copied().collect());
    }
    if obj.cast::<PyString>().is_ok() || obj.cast::<PyBytes>().is_ok() {
        return Err(Failure::invalid(what, "must be a sequence of numbers").into());
    }
    let plain = plain(obj)?;
    plain
        .extract::<Vec<f32>>()
        .map_err(|_| Failure::invalid(what, "must be a 1-d sequence of numbers").into())
}

/// Converts any accepted image object into an [`ImageInput`] (copying the data, so the GIL
/// can be released while the core works on it):
///
/// * `bytes`, `bytearray`, `memoryview`: encoded file bytes;
/// * `str` / `os.PathLike`: a file path; a `str` starting with `data:` is a base64 data URL,
///   one starting with `http://`/`https://` an image URL (refused by the core, `not_available`);
/// * [`Base64`]: base64 text;
/// * a numpy `uint8` array H×W×3 (RGB) or H×W×4 (RGBA);
/// * a PIL image (pixels used as they are; other modes converted to RGB/RGBA by Pillow).
pub fn image_input(obj: &Bound<'_, PyAny>) -> Result<ImageInput> {
    let py = obj.py();
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(ImageInput::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(ImageInput::Bytes(b.to_vec()));
    }
    if obj.cast::<PyMemoryView>().is_ok() {
        let b: Vec<u8> = obj.call_method0("tobytes")?.extract()?;
        return Ok(ImageInput::Bytes(b));
    }
    if let Ok(b) = obj.cast::<Base64>() {
        return Ok(ImageInput::Base64(b.get().text.clone()));
    }
    if obj.cast::<PyString>().is_ok() {
        let s: String = obj.extract()?;
        let s = s.as_str();
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("data:") {
            return Ok(ImageInput::Base64(s.to_string()));
        }
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(ImageInput::Url(s.to_string()));
        }
        return Ok(ImageInput::Path(PathBuf::from(s)));
    }
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return array_input(a);
    }
    if is_pil_image(py, obj)? {
        return pil_input(obj);
    }
    if obj.hasattr("__fspath__")? {
        let p: PathBuf = obj.extract()?;
        return Ok(ImageInput::Path(p));
    }
    let ty = obj.get_type().name()?.to_string();
    Err(Failure::invalid(
        "image",
        format!(
            "unsupported type `{ty}`: expected bytes, a path, dupify.Base64, a numpy uint8 \
             H×W×3/H×W×4 array or a PIL image"
        ),
    )
    .into())
}

fn array_input(a: &Bound<'_, PyUntypedArray>) -> Result<ImageInput> {
    let shape = a.shape().to_vec();
    let dtype = a.dtype().to_string();
    let arr = a.cast::<PyArray3<u8>>().map_err(|_| {
        Failure::invalid(
            "image",
            format!("numpy array must be uint8 H×W×3 or H×W×4, got {dtype} with shape {shape:?}"),
        )
    })?;
    let (h, w, c) = (shape[0], shape[1], shape[2]);
    let layout = match c {
        3 => PixelLayout::Rgb,
        4 => PixelLayout::Rgba,
        _ => {
            return Err(Failure::invalid(
                "image",
                format!("numpy array must have 3 (RGB) or 4 (RGBA) channels, got shape {shape:?}"),
            )
            .into())
        }
    };
    let (width, height) = match (u32::try_from(w), u32::try_from(h)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => {
            return Err(
                Failure::invalid("image", format!("array shape {shape:?} is too large")).into(),
            )
        }
    };
    let ro = arr.readonly();
    // `as_slice` also accepts Fortran order, whose memory is not row-major: copy by index
    // unless the array is C-contiguous.
    let data: Vec<u8> = match ro.as_slice() {
        Ok(s) if arr.is_c_contiguous() => s.to_vec(),
        _ => ro.as_array().iter().copied().collect(),
    };
    Ok(ImageInput::Raw {
        width,
        height,
        layout,
        data,
    })
}

/// True for a `PIL.Image.Image`; never imports Pillow (an image object implies it is loaded).
fn is_pil_image(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let modules = py.import("sys")?.getattr("modules")?;
    let Some(pil) = modules.get_item("PIL.Image").ok() else {
        return Ok(false);
    };
    let class = pil.getattr("Image")?;
    obj.is_instance(&class)
}

fn pil_input(obj: &Bound<'_, PyAny>) -> Result<ImageInput> {
    let mode: String = obj.getattr("mode")?.extract()?;
    let has_alpha = mode.contains('A')
        || obj
            .getattr("info")?
            .cast::<PyDict>()
            .map(|d| d.contains("transparency"))
            .unwrap_or(Ok(false))?;
    let (img, layout) = match mode.as_str() {
        "RGB" => (obj.clone(), PixelLayout::Rgb),
        "RGBA" => (obj.clone(), PixelLayout::Rgba),
        _ if has_alpha => (obj.call_method1("convert", ("RGBA",))?, PixelLayout::Rgba),
        _ => (obj.call_method1("convert", ("RGB",))?, PixelLayout::Rgb),
    };
    let (width, height): (u32, u32) = img.getattr("size")?.extract()?;
    let data: Vec<u8> = img.call_method0("tobytes")?.extract()?;
    Ok(ImageInput::Raw {
        width,
        height,
        layout,
        data,
    })
}

/// The items of an iterable of images (refusing a single str/bytes image by mistake).
pub fn image_iter<'py>(objs: &Bound<'py, PyAny>) -> Result<Bound<'py, pyo3::types::PyIterator>> {
    if objs.cast::<PyString>().is_ok() || objs.cast::<PyBytes>().is_ok() {
        return Err(Failure::invalid("images", "must be a list of images, not one image").into());
    }
    objs.try_iter()
        .map_err(|_| Failure::invalid("images", "must be an iterable of images").into())
}

/// A Python float32 array (copy) of a vector.
pub fn f32_array<'py>(py: Python<'py>, v: &[f32]) -> Bound<'py, numpy::PyArray1<f32>> {
    numpy::PyArray1::from_slice(py, v)
}

/// A compact `Name(field=value, …)` representation from the core's JSON: scalars shown,
/// lists and objects summarised.
pub fn repr_of<T: Serialize>(name: &str, value: &T) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(value) else {
        return format!("{name}(…)");
    };
    let fields: Vec<String> = map
        .iter()
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::Array(a) => format!("[{} items]", a.len()),
                serde_json::Value::Object(o) => format!("{{{} fields}}", o.len()),
                serde_json::Value::String(s) if s.chars().count() > 40 => {
                    let head: String = s.chars().take(16).collect();
                    format!("'{head}…'")
                }
                serde_json::Value::String(s) => format!("'{s}'"),
                other => other.to_string(),
            };
            format!("{k}={shown}")
        })
        .collect();
    format!("{name}({})", fields.join(", "))
}
