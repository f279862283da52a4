//! JS image arguments → [`ImageInput`].
//!
//! Accepted forms, with no guessing between them:
//! - `Buffer`, `Uint8Array` or `ArrayBuffer`: encoded file bytes;
//! - a string: a file path;
//! - `{ path }`, `{ base64 }` (standard or URL-safe, padded or not, `data:` URLs too),
//!   `{ bytes }`, `{ url }` (refused by the core: URL fetching is not built);
//! - `{ width, height, layout: 'rgb' | 'rgba', data }`: decoded pixels.
//!
//! The bytes are copied out of the JS heap here, on the JS thread, so the worker never
//! touches JS memory.

use std::path::PathBuf;

use dupify_core::{ImageInput, PixelLayout};
use napi::bindgen_prelude::{
    ArrayBuffer, JsObjectValue, JsValue, Object, TypedArray, TypedArrayType, Unknown,
};
use napi::ValueType;

use crate::convert::{from_value, is_nullish, to_json};
use crate::error::{ErrInfo, Res};

const EXPECTED: &str = "expected a Buffer/Uint8Array of image bytes, a file path string, \
                        { path }, { base64 }, { bytes }, { url } or { width, height, layout, data }";

/// Reads one image argument.
pub(crate) fn image(v: Option<&Unknown<'_>>, name: &str) -> Res<ImageInput> {
    let Some(v) = v.filter(|v| !is_nullish(v)) else {
        return Err(ErrInfo::missing(name));
    };
    let ty = v.get_type().map_err(|e| ErrInfo::invalid(name, e.reason))?;
    match ty {
        ValueType::String => {
            let s: String = unsafe { v.cast() }.map_err(|e| ErrInfo::invalid(name, e.reason))?;
            if s.is_empty() {
                return Err(ErrInfo::invalid(name, "the file path is empty"));
            }
            Ok(ImageInput::Path(PathBuf::from(s)))
        }
        ValueType::Object => {
            if let Some(bytes) = bytes_of(v, name)? {
                return Ok(ImageInput::Bytes(bytes));
            }
            let obj: Object = unsafe { v.cast() }.map_err(|e| ErrInfo::invalid(name, e.reason))?;
            let field = |k: &str| -> Res<Option<Unknown<'_>>> {
                let u: Unknown = obj
                    .get_named_property(k)
                    .map_err(|e| ErrInfo::invalid(name, e.reason))?;
                Ok((!is_nullish(&u)).then_some(u))
            };
            if let Some(p) = field("path")? {
                let p = string(&p, &format!("{name}.path"))?;
                return Ok(ImageInput::Path(PathBuf::from(p)));
            }
            if let Some(b) = field("base64")? {
                return Ok(ImageInput::Base64(string(&b, &format!("{name}.base64"))?));
            }
            if let Some(u) = field("url")? {
                return Ok(ImageInput::Url(string(&u, &format!("{name}.url"))?));
            }
            if let Some(b) = field("bytes")? {
                return bytes_of(&b, &format!("{name}.bytes"))?
                    .map(ImageInput::Bytes)
                    .ok_or_else(|| {
                        ErrInfo::invalid(&format!("{name}.bytes"), "must be a Buffer or Uint8Array")
                    });
            }
            if let Some(data) = field("data")? {
                let dn = format!("{name}.data");
                let data = bytes_of(&data, &dn)?
                    .ok_or_else(|| ErrInfo::invalid(&dn, "must be a Buffer or Uint8Array"))?;
                let num = |k: &str| -> Res<u32> {
                    let n = format!("{name}.{k}");
                    let u = field(k)?.ok_or_else(|| ErrInfo::missing(&n))?;
                    from_value(to_json(&u, &n)?, &n)
                };
                let layout_name = format!("{name}.layout");
                let layout: PixelLayout = match field("layout")? {
                    Some(l) => from_value(to_json(&l, &layout_name)?, &layout_name)?,
                    None => return Err(ErrInfo::missing(&layout_name)),
                };
                return Ok(ImageInput::Raw {
                    width: num("width")?,
                    height: num("height")?,
                    layout,
                    data,
                });
            }
            Err(ErrInfo::invalid(name, EXPECTED))
        }
        _ => Err(ErrInfo::invalid(name, EXPECTED)),
    }
}

/// Reads an array of images; errors name the index (`images[3]`).
pub(crate) fn images(v: Option<&Unknown<'_>>, name: &str) -> Res<Vec<ImageInput>> {
    let Some(v) = v.filter(|v| !is_nullish(v)) else {
        return Err(ErrInfo::missing(name));
    };
    if !v.is_array().unwrap_or(false) {
        return Err(ErrInfo::invalid(name, "must be an array of images"));
    }
    let arr: Object = unsafe { v.cast() }.map_err(|e| ErrInfo::invalid(name, e.reason))?;
    let len = arr
        .get_array_length()
        .map_err(|e| ErrInfo::invalid(name, e.reason))?;
    (0..len)
        .map(|i| {
            let item: Unknown = arr
                .get_element(i)
                .map_err(|e| ErrInfo::invalid(name, e.reason))?;
            image(Some(&item), &format!("{name}[{i}]"))
        })
        .collect()
}

/// The bytes of a `Buffer`, `Uint8Array` or `ArrayBuffer`; `None` for other objects.
fn bytes_of(v: &Unknown<'_>, name: &str) -> Res<Option<Vec<u8>>> {
    if v.is_typedarray().unwrap_or(false) {
        let ta: TypedArray = unsafe { v.cast() }.map_err(|e| ErrInfo::invalid(name, e.reason))?;
        if !matches!(
            ta.typed_array_type,
            TypedArrayType::Uint8 | TypedArrayType::Uint8Clamped
        ) {
            return Err(ErrInfo::invalid(
                name,
                format!(
                    "a {}Array is not image bytes; pass a Buffer or Uint8Array",
                    ta.typed_array_type.as_ref()
                ),
            ));
        }
        return Ok(Some(ta.arraybuffer.to_vec()));
    }
    if v.is_arraybuffer().unwrap_or(false) {
        let ab: ArrayBuffer = unsafe { v.cast() }.map_err(|e| ErrInfo::invalid(name, e.reason))?;
        return Ok(Some(ab.to_vec()));
    }
    Ok(None)
}

fn string(v: &Unknown<'_>, name: &str) -> Res<String> {
    match v.get_type() {
        Ok(ValueType::String) => {
            unsafe { v.cast::<String>() }.map_err(|e| ErrInfo::invalid(name, e.reason))
        }
        _ => Err(ErrInfo::invalid(name, "must be a string")),
    }
}
