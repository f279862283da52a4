//! The one deterministic pseudo-random source of the tests and benchmarks (xorshift64,
//! Marsaglia 2003): independent of the code under test, reproducible from a seed, no crate
//! needed. The benchmarks include this file by path (`benches/benches/catalog.rs`).

#![allow(dead_code)] // each test binary uses a different part

/// xorshift64 with the (13, 7, 17) triple. The state must not be zero.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn unif(&mut self) -> f32 {
        (self.next_u64() >> 11) as f32 / (1u64 << 53) as f32
    }

    /// Uniform in [0, 1) from the top 24 bits (textures: one value per pixel, exact in f32).
    pub fn unif24(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Approximately standard normal (sum of 4 uniforms, rescaled).
    pub fn gauss(&mut self) -> f32 {
        let s: f32 = (0..4).map(|_| self.unif()).sum();
        (s - 2.0) * 1.732
    }

    /// A unit vector of `dim` centred uniforms.
    pub fn unit(&mut self, dim: usize) -> Vec<f32> {
        normalised((0..dim).map(|_| self.unif() - 0.5).collect())
    }
}

/// `v / |v|`.
pub fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// A unit vector for `seed` (the seed is spread by a Weyl constant, so nearby seeds give
/// unrelated vectors).
pub fn unit_vector(seed: u64, dim: usize) -> Vec<f32> {
    XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).unit(dim)
}
