//! Value conversions between JavaScript and the core's serde types.
//!
//! Results leave Rust as the core's own JSON (`serde_json::to_value` of the core struct, so
//! every field the core adds shows up here without binding changes), re-shaped for JS in two
//! documented ways: numeric vectors under the keys in [`VECTOR_KEYS`] become `Float32Array`s
//! (exact: an `f32` widened to JSON's `f64` narrows back losslessly), and byte payloads become
//! `Buffer`s. The tree ([`Js`]) is built off the JS thread and turned into JS values on it.
//!
//! Arguments arrive as JS values and are read into `serde_json::Value` ([`to_json`]) —
//! accepting `Float32Array`/`Float64Array`/integer typed arrays wherever the core expects a
//! list of numbers — then deserialised into the core type; any mismatch is an
//! `invalid_parameter` error naming the argument, never a panic.

use std::ptr;

use napi::bindgen_prelude::{
    Buffer, Float32Array, JsObjectValue, JsValue, Object, ToNapiValue, TypedArray, TypedArrayType,
    Unknown,
};
use napi::{sys, ValueType};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ErrInfo, Res};

/// Keys whose numeric arrays are embeddings, returned as `Float32Array`: `embedding`
/// (features, silhouette), `clip` and `shape` (a product's stored features).
pub(crate) const VECTOR_KEYS: [&str; 3] = ["embedding", "clip", "shape"];

/// Deepest nesting accepted from JavaScript (a guard against cyclic or hostile objects).
const MAX_DEPTH: usize = 64;

/// A JS value under construction, `Send` so worker threads can build it.
#[derive(Debug, Clone, PartialEq)]
pub enum Js {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Js>),
    Obj(Vec<(String, Js)>),
    F32(Vec<f32>),
    Bytes(Vec<u8>),
    /// A coded `Error` object (per-item failures in batches).
    Err(ErrInfo),
}

impl Js {
    /// The core's JSON of `value`, shaped for JS (see the module docs).
    pub fn from_serde<T: Serialize>(value: &T) -> Res<Js> {
        let v = serde_json::to_value(value)
            .map_err(|e| ErrInfo::internal(format!("cannot serialise a result: {e}")))?;
        Ok(Js::from_json(v, None))
    }

    /// Converts JSON, turning number arrays under [`VECTOR_KEYS`] into `Float32Array`s.
    pub fn from_json(v: Value, key: Option<&str>) -> Js {
        match v {
            Value::Null => Js::Null,
            Value::Bool(b) => Js::Bool(b),
            Value::Number(n) => Js::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Js::Str(s),
            Value::Array(items) => {
                let is_vector = key.is_some_and(|k| VECTOR_KEYS.contains(&k))
                    && items.iter().all(Value::is_number);
                if is_vector {
                    Js::F32(
                        items
                            .iter()
                            .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                            .collect(),
                    )
                } else {
                    Js::Arr(items.into_iter().map(|x| Js::from_json(x, None)).collect())
                }
            }
            Value::Object(map) => Js::Obj(
                map.into_iter()
                    .map(|(k, v)| {
                        let js = Js::from_json(v, Some(&k));
                        (k, js)
                    })
                    .collect(),
            ),
        }
    }

    /// Sets (or replaces) `key` on an object; no effect on other variants.
    pub fn set(&mut self, key: &str, value: Js) {
        if let Js::Obj(fields) = self {
            match fields.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => fields.push((key.to_string(), value)),
            }
        }
    }
}

impl napi::bindgen_prelude::TypeName for Js {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for Js {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        unsafe {
            match val {
                Js::Undefined => <()>::to_napi_value(env, ()),
                Js::Null => {
                    napi::bindgen_prelude::Null::to_napi_value(env, napi::bindgen_prelude::Null)
                }
                Js::Bool(b) => bool::to_napi_value(env, b),
                Js::Num(n) => f64::to_napi_value(env, n),
                Js::Str(s) => String::to_napi_value(env, s),
                Js::F32(v) => Float32Array::to_napi_value(env, Float32Array::new(v)),
                Js::Bytes(b) => Buffer::to_napi_value(env, Buffer::from(b)),
                Js::Err(e) => e.to_js(env),
                Js::Arr(items) => {
                    let mut arr = ptr::null_mut();
                    napi::check_status!(
                        sys::napi_create_array_with_length(env, items.len(), &mut arr),
                        "cannot create an array"
                    )?;
                    for (i, item) in items.into_iter().enumerate() {
                        let v = Js::to_napi_value(env, item)?;
                        napi::check_status!(
                            sys::napi_set_element(env, arr, i as u32, v),
                            "cannot set an array element"
                        )?;
                    }
                    Ok(arr)
                }
                Js::Obj(fields) => {
                    let mut obj = ptr::null_mut();
                    napi::check_status!(
                        sys::napi_create_object(env, &mut obj),
                        "cannot create an object"
                    )?;
                    for (k, v) in fields {
                        let key = String::to_napi_value(env, k)?;
                        let v = Js::to_napi_value(env, v)?;
                        napi::check_status!(
                            sys::napi_set_property(env, obj, key, v),
                            "cannot set a property"
                        )?;
                    }
                    Ok(obj)
                }
            }
        }
    }
}

/// Whether a JS argument is absent (`undefined` or `null`).
pub(crate) fn is_nullish(v: &Unknown<'_>) -> bool {
    matches!(v.get_type(), Ok(ValueType::Undefined) | Ok(ValueType::Null))
}

/// Reads a JS value as JSON. `undefined` object properties are left out (as JSON.stringify
/// does); typed arrays become arrays of numbers; functions, symbols and bigints are refused.
pub(crate) fn to_json(v: &Unknown<'_>, name: &str) -> Res<Value> {
    to_json_at(v, name, 0)
}

fn to_json_at(v: &Unknown<'_>, name: &str, depth: usize) -> Res<Value> {
    if depth > MAX_DEPTH {
        return Err(ErrInfo::invalid(name, "is nested too deeply (or cyclic)"));
    }
    let bad = |what: &str| ErrInfo::invalid(name, format!("cannot read a JS value: {what}"));
    let ty = v.get_type().map_err(|e| bad(&e.reason))?;
    match ty {
        ValueType::Undefined | ValueType::Null => Ok(Value::Null),
        ValueType::Boolean => {
            let b: bool = unsafe { v.cast() }.map_err(|e| bad(&e.reason))?;
            Ok(Value::Bool(b))
        }
        ValueType::Number => {
            let n: f64 = unsafe { v.cast() }.map_err(|e| bad(&e.reason))?;
            number(n).ok_or_else(|| ErrInfo::invalid(name, "contains NaN or an infinity"))
        }
        ValueType::String => {
            let s: String = unsafe { v.cast() }.map_err(|e| bad(&e.reason))?;
            Ok(Value::String(s))
        }
        ValueType::Object => {
            if v.is_typedarray().unwrap_or(false) {
                let ta: TypedArray = unsafe { v.cast() }.map_err(|e| bad(&e.reason))?;
                return typed_numbers(&ta)
                    .ok_or_else(|| ErrInfo::invalid(name, "unsupported or non-finite typed array"))
                    .map(Value::Array);
            }
            let obj: Object = unsafe { v.cast() }.map_err(|e| bad(&e.reason))?;
            if v.is_array().unwrap_or(false) {
                let len = obj.get_array_length().map_err(|e| bad(&e.reason))?;
                let mut out = Vec::with_capacity(len as usize);
                for i in 0..len {
                    let item: Unknown = obj.get_element(i).map_err(|e| bad(&e.reason))?;
                    out.push(to_json_at(&item, name, depth + 1)?);
                }
                return Ok(Value::Array(out));
            }
            let mut map = serde_json::Map::new();
            for key in Object::keys(&obj).map_err(|e| bad(&e.reason))? {
                let item: Unknown = obj.get_named_property(&key).map_err(|e| bad(&e.reason))?;
                if matches!(item.get_type(), Ok(ValueType::Undefined)) {
                    continue;
                }
                let val = to_json_at(&item, name, depth + 1)?;
                map.insert(key, val);
            }
            Ok(Value::Object(map))
        }
        other => Err(ErrInfo::invalid(
            name,
            format!("a {other:?} value cannot be passed here"),
        )),
    }
}

/// A JSON number: integral values as integers (so they deserialise into integer fields),
/// others as floats. `None` for NaN and infinities (JSON cannot carry them).
fn number(n: f64) -> Option<Value> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        return Some(Value::from(n as i64));
    }
    serde_json::Number::from_f64(n).map(Value::Number)
}

fn typed_numbers(ta: &TypedArray<'_>) -> Option<Vec<Value>> {
    let bytes: &[u8] = &ta.arraybuffer;
    let floats: Vec<f64> = match ta.typed_array_type {
        TypedArrayType::Float32 => bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        TypedArrayType::Float64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        TypedArrayType::Uint8 | TypedArrayType::Uint8Clamped => {
            bytes.iter().map(|b| f64::from(*b)).collect()
        }
        TypedArrayType::Int8 => bytes.iter().map(|b| f64::from(*b as i8)).collect(),
        TypedArrayType::Int16 => bytes
            .chunks_exact(2)
            .map(|c| f64::from(i16::from_ne_bytes([c[0], c[1]])))
            .collect(),
        TypedArrayType::Uint16 => bytes
            .chunks_exact(2)
            .map(|c| f64::from(u16::from_ne_bytes([c[0], c[1]])))
            .collect(),
        TypedArrayType::Int32 => bytes
            .chunks_exact(4)
            .map(|c| f64::from(i32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        TypedArrayType::Uint32 => bytes
            .chunks_exact(4)
            .map(|c| f64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => return None,
    };
    floats.into_iter().map(number).collect()
}

/// Deserialises a required argument into a core type.
pub(crate) fn arg<T: DeserializeOwned>(v: Option<&Unknown<'_>>, name: &str) -> Res<T> {
    match v {
        Some(v) if !is_nullish(v) => from_value(to_json(v, name)?, name),
        _ => Err(ErrInfo::missing(name)),
    }
}

/// Deserialises an optional argument; absent means `T::default()`.
pub(crate) fn arg_or_default<T: DeserializeOwned + Default>(
    v: Option<&Unknown<'_>>,
    name: &str,
) -> Res<T> {
    match v {
        Some(v) if !is_nullish(v) => from_value(to_json(v, name)?, name),
        _ => Ok(T::default()),
    }
}

/// `{ efSearch: 1 }` → `{ ef_search: 1 }`, in every nested object: option objects are
/// written in JavaScript's camelCase and deserialised into the core's own (snake_case)
/// option types, so the binding restates none of their fields.
pub(crate) fn snake_case_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut snake = String::with_capacity(k.len() + 4);
                    for c in k.chars() {
                        if c.is_ascii_uppercase() {
                            snake.push('_');
                            snake.push(c.to_ascii_lowercase());
                        } else {
                            snake.push(c);
                        }
                    }
                    (snake, snake_case_keys(v))
                })
                .collect(),
        ),
        other => other,
    }
}

/// Deserialises JSON into a core type; errors name the argument and the serde path.
pub(crate) fn from_value<T: DeserializeOwned>(v: Value, name: &str) -> Res<T> {
    serde_json::from_value(v).map_err(|e| ErrInfo::invalid(name, e))
}

/// A required string argument.
pub(crate) fn string_arg(v: Option<&Unknown<'_>>, name: &str) -> Res<String> {
    match v {
        Some(v) if !is_nullish(v) => match v.get_type() {
            Ok(ValueType::String) => {
                unsafe { v.cast::<String>() }.map_err(|e| ErrInfo::invalid(name, e.reason))
            }
            _ => Err(ErrInfo::invalid(name, "must be a string")),
        },
        _ => Err(ErrInfo::missing(name)),
    }
}
