//! Dominant colours: synthetic scenes with known answers, garments composited onto real
//! backgrounds, and real product photos.

mod common;
mod composite;
mod photos;
mod synthetic;
