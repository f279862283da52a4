//! Where model work runs, in our own types: `tch::Device` never appears in
//! the public API, so bindings and host apps parse and print devices without LibTorch types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The compute device for model work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Device {
    /// The first CUDA device when one is usable, otherwise the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device `n`.
    Cuda(usize),
}

impl Device {
    /// Resolves `Auto` and checks that a requested CUDA device exists.
    pub(crate) fn resolve(self) -> Result<tch::Device> {
        match self {
            Device::Cpu => Ok(tch::Device::Cpu),
            Device::Auto => Ok(if tch::Cuda::is_available() {
                tch::Device::Cuda(0)
            } else {
                tch::Device::Cpu
            }),
            Device::Cuda(n) => {
                let count = tch::Cuda::device_count().max(0) as usize;
                if n < count {
                    Ok(tch::Device::Cuda(n))
                } else {
                    Err(Error::invalid(
                        "device",
                        format!("cuda:{n} requested but LibTorch sees {count} CUDA device(s)"),
                    ))
                }
            }
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Auto => f.write_str("auto"),
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;

    /// Accepts `auto`, `cpu`, `cuda` (device 0) and `cuda:N`, case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            _ => match t.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .map(Device::Cuda)
                    .map_err(|_| Error::invalid("device", format!("`{s}`: expected cuda:<index>"))),
                None => Err(Error::invalid(
                    "device",
                    format!("`{s}`: expected auto, cpu, cuda or cuda:<index>"),
                )),
            },
        }
    }
}

/// Numeric precision of model work. The float precisions keep embeddings at cosine ≥ 0.999
/// of fp32 (checked by tests and benchmarks) and are much faster on GPUs and on CPUs with
/// AVX-512 BF16; `Int8` is the CPU option for CPUs without those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit float (the reference).
    #[default]
    F32,
    /// IEEE half precision (CUDA only).
    F16,
    /// bfloat16 (CUDA, or CPUs with AVX-512 BF16 / AMX).
    Bf16,
    /// CPU only: dynamic int8 quantization of every Linear layer, as PyTorch's
    /// `quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)` (int8 weights with one
    /// symmetric scale per checkpoint layer; activations quantized from their min/max, per
    /// image or text; int8 GEMMs with int32 accumulation, fbgemm on x86). Everything else
    /// (patch embedding, LayerNorm, attention) stays f32. Roughly halves the time of the
    /// GEMMs, which are most of a CPU forward pass; embeddings stay at cosine ≥ 0.99 of fp32.
    /// Unlike `quantize_dynamic` over a batch, no scale is shared between the images of a
    /// batch: an image's embedding is what PyTorch gives for it as a batch of one, whatever
    /// it is batched with. The model id does not change with precision: like f16/bf16 ones,
    /// int8 embeddings sit close enough to fp32 to share an index (cosine 0.9996 measured on
    /// ViT-B/32), though they are not bit-equal.
    Int8,
}

impl Precision {
    /// The kind tensors are computed in (`Int8` keeps f32 activations).
    pub(crate) fn kind(self) -> tch::Kind {
        match self {
            Precision::F32 | Precision::Int8 => tch::Kind::Float,
            Precision::F16 => tch::Kind::Half,
            Precision::Bf16 => tch::Kind::BFloat16,
        }
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "int8" | "qint8" | "i8" => Ok(Precision::Int8),
            _ => Err(Error::invalid(
                "precision",
                format!("`{s}`: expected f32, f16, bf16 or int8"),
            )),
        }
    }
}

/// What LibTorch sees on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// Whether a usable CUDA device and driver were found.
    pub cuda_available: bool,
    /// Number of CUDA devices.
    pub cuda_device_count: usize,
    /// Whether cuDNN is available.
    pub cudnn_available: bool,
    /// LibTorch intra-op threads (CPU).
    pub intra_op_threads: i32,
    /// The device `Device::Auto` resolves to, as `cpu` or `cuda:N`.
    pub auto_device: String,
}

/// Reports the devices LibTorch can use in this process.
pub fn device_report() -> DeviceReport {
    let auto = match Device::Auto.resolve() {
        Ok(tch::Device::Cuda(n)) => format!("cuda:{n}"),
        _ => "cpu".to_string(),
    };
    DeviceReport {
        cuda_available: tch::Cuda::is_available(),
        cuda_device_count: tch::Cuda::device_count().max(0) as usize,
        cudnn_available: tch::Cuda::cudnn_is_available(),
        intra_op_threads: tch::get_num_threads(),
        auto_device: auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print() {
        for (s, d) in [
            ("auto", Device::Auto),
            ("CPU", Device::Cpu),
            ("cuda", Device::Cuda(0)),
            (" cuda:3 ", Device::Cuda(3)),
        ] {
            assert_eq!(s.parse::<Device>().unwrap(), d);
        }
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
        for bad in ["", "tpu", "cuda:", "cuda:-1", "cuda:x"] {
            let e = bad.parse::<Device>().unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{bad}");
        }
    }

    #[test]
    fn cpu_always_resolves_and_absent_cuda_is_an_error() {
        assert_eq!(Device::Cpu.resolve().unwrap(), tch::Device::Cpu);
        let n = tch::Cuda::device_count().max(0) as usize;
        assert!(Device::Cuda(n).resolve().is_err());
    }

    #[test]
    fn precision_parses() {
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!("FP16".parse::<Precision>().unwrap(), Precision::F16);
        assert_eq!(" INT8".parse::<Precision>().unwrap(), Precision::Int8);
        assert_eq!(serde_json::to_string(&Precision::Int8).unwrap(), "\"int8\"");
        for bad in ["", "int4", "fp8", "f 32"] {
            assert!(bad.parse::<Precision>().is_err(), "{bad}");
        }
    }
}
