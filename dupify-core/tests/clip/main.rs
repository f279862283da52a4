//! The image encoders: CLIP (tokenizer, checkpoint loading, parity with the Python reference,
//! int8) and EfficientNet-Lite (parity on the released ImageNet checkpoints).

mod common;
mod efficientnet_parity;
mod int8;
mod load;
mod parity;
mod tokenizer;
