//! Image input: decoding and its typed errors, fuzzed inputs, preprocessing parity with the
//! Python reference, and (feature `url-fetch`) fetching `image_url`s safely.

mod decode;
mod fuzz;
mod preprocess_parity;
mod reduced;
mod url;
