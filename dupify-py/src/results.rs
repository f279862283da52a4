//! Typed, immutable result objects. Each wraps the core's serde struct: attribute getters for
//! Python code, `to_dict()` / `to_json()` that are exactly the core's JSON, `__repr__`, and
//! `__eq__` with the core's equality.

use dupify_core::attributes::{AttributePrediction, AttributeReport, LabelScore};
use dupify_core::colors::{ColorReport, DominantColor};
use dupify_core::extractor::SilhouetteFeatures;
use dupify_core::silhouette::BoundingBox;
use dupify_core::{Features, QualityScore};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::{f32_array, serde_name};

/// Declares a Python class wrapping a core result type. Each getter is written as
/// `name(value, py) -> Type { body }` where `value` is the wrapped core value.
macro_rules! result_class {
    (
        $(#[$cm:meta])*
        $name:ident = $pyname:literal ($inner:ty) {
            $(
                $(#[$fm:meta])*
                $field:ident($v:ident, $py:ident) -> $ret:ty $body:block
            )*
        }
        $(methods { $($extra:tt)* })?
    ) => {
        $(#[$cm])*
        #[pyclass(name = $pyname, module = "dupify", frozen)]
        #[derive(Clone)]
        pub struct $name(pub $inner);

        #[pymethods]
        impl $name {
            $(
                $(#[$fm])*
                #[getter]
                #[allow(unused_variables)]
                fn $field(&self, $py: Python<'_>) -> PyResult<$ret> {
                    let $v = &self.0;
                    let out: $ret = $body;
                    Ok(out)
                }
            )*

            $($($extra)*)?

            /// The result as plain Python objects: exactly the core's JSON (`json.loads`).
            fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                Ok(crate::convert::to_dict(py, &self.0)?)
            }

            /// The result as the core's JSON text.
            fn to_json(&self) -> PyResult<String> {
                Ok(crate::convert::to_json(&self.0)?)
            }

            fn __repr__(&self) -> String {
                crate::convert::repr_of($pyname, &self.0)
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
                match other.cast::<$name>() {
                    Ok(o) => crate::results::PyEq::py_eq(&self.0, &o.get().0),
                    Err(_) => false,
                }
            }
        }
    };
}
pub(crate) use result_class;

/// Equality of wrapped results for `__eq__`: the core's `PartialEq` where it has one (for
/// `Features` it ignores `processing_time_ms`), else equal JSON.
pub trait PyEq {
    fn py_eq(&self, other: &Self) -> bool;
}

macro_rules! py_eq_partial {
    ($($t:ty),*) => {$(
        impl PyEq for $t {
            fn py_eq(&self, other: &Self) -> bool {
                self == other
            }
        }
    )*};
}

py_eq_partial!(
    Features,
    ColorReport,
    DominantColor,
    SilhouetteFeatures,
    BoundingBox,
    QualityScore,
    AttributeReport,
    AttributePrediction,
    LabelScore,
    dupify_core::catalog::Product,
    dupify_core::catalog::SearchHit,
    dupify_core::catalog::ChannelScores,
    dupify_core::catalog::ListPage,
    dupify_core::catalog::IndexReport,
    dupify_keys::KeyRecord,
    dupify_keys::RateHeaders,
    dupify_keys::RateDecision,
    dupify_keys::UsageCounts,
    dupify_keys::KeyUsage
);

macro_rules! py_eq_json {
    ($($t:ty),*) => {$(
        impl PyEq for $t {
            fn py_eq(&self, other: &Self) -> bool {
                matches!(
                    (serde_json::to_value(self), serde_json::to_value(other)),
                    (Ok(a), Ok(b)) if a == b
                )
            }
        }
    )*};
}

py_eq_json!(
    dupify_core::catalog::IngestReport,
    dupify_core::catalog::IngestFailure
);

result_class! {
    /// Everything extracted from one image; fields are `None` for operations not requested.
    PyFeatures = "Features" (Features) {
        /// SHA-256 (hex) of the image bytes (for raw pixels: of the geometry and pixels).
        content_hash(f, py) -> String { f.content_hash.clone() }
        /// Width in pixels (after EXIF orientation).
        width(f, py) -> u32 { f.width }
        /// Height in pixels (after EXIF orientation).
        height(f, py) -> u32 { f.height }
        /// CLIP image embedding (L2-normalised) as a float32 numpy array.
        embedding(f, py) -> Option<Py<PyAny>> {
            f.embedding.as_deref().map(|e| f32_array(py, e).into_any().unbind())
        }
        /// Length of `embedding` (the hosted API's `dimensions`).
        dimensions(f, py) -> Option<usize> { f.dimensions }
        /// Dominant colours.
        colors(f, py) -> Option<PyColorReport> { f.colors.clone().map(PyColorReport) }
        /// Silhouette: bounding box, area, confidence, shape embedding.
        silhouette(f, py) -> Option<PySilhouette> { f.silhouette.clone().map(PySilhouette) }
        /// Cut-out PNG (the product on a transparent background).
        cutout_png(f, py) -> Option<Py<PyBytes>> {
            f.cutout_png.as_deref().map(|b| PyBytes::new(py, b).unbind())
        }
        /// Product attributes.
        attributes(f, py) -> Option<PyAttributeReport> {
            f.attributes.clone().map(PyAttributeReport)
        }
        /// Image quality.
        quality(f, py) -> Option<PyQualityScore> { f.quality.map(PyQualityScore) }
        /// Content hash of the model that made `embedding`/`attributes`.
        model(f, py) -> Option<String> { f.model_id.clone() }
        /// True when these features came from the extractor's cache.
        cached(f, py) -> bool { f.cached }
        /// Wall time of this item in milliseconds.
        processing_time_ms(f, py) -> f64 { f.processing_time_ms }
    }
    methods {
        /// Features from the core's JSON text (what `to_json()` writes), such as the rows
        /// `dupify.ray` stores in Parquet, handed back to `Catalog.upsert` without extracting
        /// again.
        #[staticmethod]
        fn from_json(text: &str) -> PyResult<Self> {
            Ok(Self(crate::convert::from_json(text, "Features")?))
        }
    }
}

result_class! {
    /// Dominant colours of the product (and of the background).
    PyColorReport = "ColorReport" (ColorReport) {
        /// Product colours, largest share first.
        colors(r, py) -> Vec<PyDominantColor> {
            r.colors.iter().cloned().map(PyDominantColor).collect()
        }
        /// Background colours, largest share first.
        background(r, py) -> Vec<PyDominantColor> {
            r.background.iter().cloned().map(PyDominantColor).collect()
        }
        /// Fraction of the frame that is product, 0..1.
        product_fraction(r, py) -> f32 { r.product_fraction }
        /// The product's colour family (`None` when the image has no opaque pixel).
        family(r, py) -> Option<String> { r.family.as_ref().map(serde_name) }
        /// Which pixels were taken as product (`mask`, `alpha`, `border_model`, `whole_image`).
        foreground(r, py) -> String { serde_name(&r.foreground) }
        /// Percent of the product region removed as skin.
        skin_share(r, py) -> f32 { r.skin_share }
    }
}

result_class! {
    /// One dominant colour.
    PyDominantColor = "DominantColor" (DominantColor) {
        /// Percent of the product's (or background's) pixels.
        share(c, py) -> f32 { c.share }
        /// `#rrggbb`.
        hex(c, py) -> String { c.hex.clone() }
        /// sRGB triple.
        rgb(c, py) -> (u8, u8, u8) { (c.rgb[0], c.rgb[1], c.rgb[2]) }
        /// CIELAB (D65) triple.
        lab(c, py) -> (f32, f32, f32) { (c.lab[0], c.lab[1], c.lab[2]) }
        /// Nearest CSS named colour.
        name(c, py) -> String { c.name.clone() }
        /// CIEDE2000 between `lab` and the named colour.
        name_distance(c, py) -> f32 { c.name_distance }
        /// Fashion colour family.
        family(c, py) -> String { serde_name(&c.family) }
    }
}

result_class! {
    /// Silhouette features of one image.
    PySilhouette = "Silhouette" (SilhouetteFeatures) {
        /// Bounding box of the product in original-image pixels.
        bbox(s, py) -> PyBoundingBox { PyBoundingBox(s.bbox) }
        /// Product area / frame area, 0..1.
        area_fraction(s, py) -> f32 { s.area_fraction }
        /// Segmentation confidence, 0..1.
        confidence(s, py) -> f32 { s.confidence }
        /// What found the product: `segmenter`, or `center_prior` when it found none.
        foreground(s, py) -> String { serde_name(&s.foreground) }
        /// Shape embedding (L2-normalised, compare by cosine) as a float32 numpy array.
        embedding(s, py) -> Py<PyAny> { f32_array(py, &s.embedding).into_any().unbind() }
    }
}

result_class! {
    /// An axis-aligned box in pixels (`x`, `y` = top-left corner).
    PyBoundingBox = "BoundingBox" (BoundingBox) {
        /// Left edge.
        x(b, py) -> u32 { b.x }
        /// Top edge.
        y(b, py) -> u32 { b.y }
        /// Width.
        width(b, py) -> u32 { b.width }
        /// Height.
        height(b, py) -> u32 { b.height }
    }
}

result_class! {
    /// Image quality; every score in 0..1, higher is better.
    PyQualityScore = "QualityScore" (QualityScore) {
        /// `0.4·sharpness + 0.3·brightness + 0.3·composition`.
        overall(q, py) -> f32 { q.overall }
        /// Sharpness from the luma Laplacian variance.
        sharpness(q, py) -> f32 { q.sharpness }
        /// Exposure of the product.
        brightness(q, py) -> f32 { q.brightness }
        /// Centring, fill and margin of the product silhouette.
        composition(q, py) -> f32 { q.composition }
    }
}

result_class! {
    /// All attributes predicted for one image.
    PyAttributeReport = "AttributeReport" (AttributeReport) {
        /// Category label that decided which attributes apply.
        category(r, py) -> String { r.category.clone() }
        /// The category's group.
        group(r, py) -> String { serde_name(&r.group) }
        /// `predicted` or `given`.
        category_source(r, py) -> String { serde_name(&r.category_source) }
        /// Every applicable attribute's prediction.
        attributes(r, py) -> Vec<PyAttributePrediction> {
            r.attributes.iter().cloned().map(PyAttributePrediction).collect()
        }
    }
}

result_class! {
    /// One attribute's prediction: top label, its probability and the full distribution.
    PyAttributePrediction = "AttributePrediction" (AttributePrediction) {
        /// Attribute name (`pattern`, `sleeve_length`, …).
        attribute(p, py) -> String { p.attribute.clone() }
        /// The most probable label.
        label(p, py) -> String { p.label.clone() }
        /// Probability of `label`.
        probability(p, py) -> f32 { p.probability }
        /// Every label with its probability, in head order.
        distribution(p, py) -> Vec<PyLabelScore> {
            p.distribution.iter().cloned().map(PyLabelScore).collect()
        }
        /// `zero_shot` or `linear`.
        head(p, py) -> String { serde_name(&p.head) }
    }
}

result_class! {
    /// One label and its probability.
    PyLabelScore = "LabelScore" (LabelScore) {
        /// The label.
        label(l, py) -> String { l.label.clone() }
        /// Probability in 0..1.
        probability(l, py) -> f32 { l.probability }
    }
}
