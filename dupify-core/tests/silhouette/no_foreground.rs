//! No photo is refused for lack of a clear foreground: on five real photos where the classical
//! segmenter finds none, every operation returns (the silhouette says it is a centre prior,
//! with a low confidence), catalog ingest stores every product (without the shape channel,
//! which a prior cannot give), and search finds them.
//!
//! Uses the seeded tiny CLIP (the model is not what is tested here); needs `scripts/setup.sh`.

use std::path::PathBuf;

use dupify_core::catalog::{
    Catalog, CatalogOptions, Environment, IngestItem, IngestOptions, Namespace, NewProduct,
    ProductFeatures, SearchQuery,
};
use dupify_core::extractor::Ops;
use dupify_core::raster::WorkingImage;
use dupify_core::silhouette::{ClassicalSegmenter, Segmenter, SilhouetteSource};
use dupify_core::{Device, Extractor, ImageInput};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn photos() -> Vec<PathBuf> {
    let dir = root().join("dupify-core/tests/assets/no_foreground");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 5);
    v
}

fn extractor() -> Extractor {
    let model = root().join("weights/test/clip/tiny");
    assert!(
        model.join("model.safetensors").is_file(),
        "{} missing: run scripts/setup.sh",
        model.display()
    );
    Extractor::builder()
        .model_dir(model)
        .device(Device::Cpu)
        .threads(2)
        .build()
        .unwrap()
}

#[test]
fn the_segmenter_alone_finds_no_foreground_in_these_photos() {
    // The premise of the other tests: without the fallback these photos fail.
    for p in photos() {
        let d = dupify_core::decode(&ImageInput::Path(p.clone()), &Default::default()).unwrap();
        let w: WorkingImage = d.working(256).unwrap();
        let e = ClassicalSegmenter::default().segment(&w).unwrap_err();
        assert_eq!(e.code(), "image_processing_failed", "{}: {e}", p.display());
    }
}

#[test]
fn every_operation_returns_with_a_centre_prior() {
    let x = extractor();
    for p in photos() {
        let f = x.extract(&ImageInput::Path(p.clone()), Ops::ALL).unwrap();
        let s = f.silhouette.as_ref().unwrap();
        assert_eq!(
            s.foreground,
            SilhouetteSource::CenterPrior,
            "{}",
            p.display()
        );
        assert!(
            s.confidence <= 0.1,
            "{}: confidence {}",
            p.display(),
            s.confidence
        );
        assert!(s.area_fraction > 0.1 && s.area_fraction < 0.9);
        assert!(f.colors.as_ref().is_some_and(|c| !c.colors.is_empty()));
        assert!(f.quality.is_some() && f.cutout_png.is_some() && f.embedding.is_some());
        // The catalog form leaves the prior's shape out.
        assert!(ProductFeatures::from(&f).shape.is_none());
    }
}

#[test]
fn they_are_indexed_and_found() {
    let x = extractor();
    let cat = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let ns = Namespace::new("shop", Environment::Test).unwrap();
    let items: Vec<IngestItem> = photos()
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            IngestItem::new(NewProduct::new(name), ImageInput::Path(p.clone()))
        })
        .collect();
    let report = cat
        .ingest(&ns, &x, items, &IngestOptions::default())
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(cat.count(&ns, &Default::default()).unwrap(), 5);
    for p in photos() {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let stored = cat.get_by_external_id(&ns, &name).unwrap();
        assert!(stored.features.clip.is_some() && stored.features.shape.is_none());
        // Searching with the photo itself finds the product first; its shape channel is
        // absent and the ranking uses the channels both sides have.
        let hits = cat
            .search_image(
                &ns,
                &x,
                &ImageInput::Path(p.clone()),
                SearchQuery::default(),
            )
            .unwrap();
        assert_eq!(hits[0].product.external_id, name);
        assert!(hits[0].scores.shape.is_none());
        assert!(hits[0].scores.clip.unwrap() > 0.999);
    }
}
