//! Counter-based random numbers: Philox 4x32-10 (Salmon et al., "Parallel random
//! numbers: as easy as 1, 2, 3", SC'11; the Random123 algorithm) and kiln's mapping
//! from a `Random` node's element to its number. Owns the bit-exact definition every
//! backend (interpreter, CPU JIT, CUDA) must reproduce; it knows nothing of graphs.
//!
//! # kiln's random-element mapping
//!
//! For the element at flat row-major index `i` (a `u64`) of a `Random { dist, stream }`
//! node whose operands hold the i32 scalars `seed` and `step`:
//!
//! ```text
//! counter = [i as u32, (i >> 32) as u32, step as u32, stream]   // `as u32` = two's-complement bits
//! key     = [seed as u32, 0]
//! w       = philox4x32_10(counter, key)
//! u(x)    = ((x >> 8) as f64 + 0.5) * 2^-24        // in the open interval (0, 1)
//! Uniform: u(w[0])
//! Normal:  sqrt(-2 ln u(w[0])) * cos(2π u(w[1]))  // Box–Muller, first output only
//! ```
//!
//! `w[2]` and `w[3]` are unused, so the mapping stays one Philox call per element.
//! Because `u` never returns 0, the logarithm is always finite.

use crate::op::Distribution;

/// Philox round multipliers.
pub const PHILOX_M0: u32 = 0xD251_1F53;
pub const PHILOX_M1: u32 = 0xCD9E_8D57;
/// Weyl-sequence key increments (golden ratio and sqrt(3) - 1).
pub const PHILOX_W0: u32 = 0x9E37_79B9;
pub const PHILOX_W1: u32 = 0xBB67_AE85;
/// Rounds of Philox 4x32-10.
pub const PHILOX_ROUNDS: usize = 10;

/// High and low 32-bit halves of the 64-bit product `a * b`.
#[inline]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox 4x32 with 10 rounds: a bijection of `counter` keyed by `key`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..PHILOX_ROUNDS {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W0);
            k[1] = k[1].wrapping_add(PHILOX_W1);
        }
        let (hi0, lo0) = mulhilo(PHILOX_M0, c[0]);
        let (hi1, lo1) = mulhilo(PHILOX_M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The four Philox words of element `index` of a `Random` node (see the module doc).
pub fn random_words(seed: i32, step: i32, stream: u32, index: u64) -> [u32; 4] {
    let counter = [index as u32, (index >> 32) as u32, step as u32, stream];
    philox4x32_10(counter, [seed as u32, 0])
}

/// `((x >> 8) + 0.5) * 2^-24`: the top 24 bits of `x` as a uniform number in (0, 1).
pub fn uniform_from_u32(x: u32) -> f64 {
    ((x >> 8) as f64 + 0.5) * (1.0 / 16_777_216.0)
}

/// Box–Muller: a standard normal number from two Philox words.
pub fn normal_from_u32(a: u32, b: u32) -> f64 {
    let u1 = uniform_from_u32(a);
    let u2 = uniform_from_u32(b);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Element `index` of a `Random { dist, stream }` node keyed by `seed` and `step`.
pub fn random_f64(dist: Distribution, seed: i32, step: i32, stream: u32, index: u64) -> f64 {
    let w = random_words(seed, step, stream, index);
    match dist {
        Distribution::Uniform => uniform_from_u32(w[0]),
        Distribution::Normal => normal_from_u32(w[0], w[1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
    }

    #[test]
    fn uniform_extremes_stay_open() {
        assert!(uniform_from_u32(0) > 0.0);
        assert!(uniform_from_u32(u32::MAX) < 1.0);
        assert_eq!(uniform_from_u32(0), 0.5 / 16_777_216.0);
        assert!(normal_from_u32(0, 0).is_finite());
    }
}
