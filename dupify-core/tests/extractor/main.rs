//! The unified extractor and what it adds on top of the channels: attribute heads and the
//! quality score.

mod attribute_heads;
mod quality_scores;
mod unified;
