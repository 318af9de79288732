//! Philox 4x32-10 in CLIF, bit-identical to `kiln_ir::philox::philox4x32_10`, and
//! kiln's element mapping (documented in `kiln_ir::philox`):
//! counter = [i as u32, (i >> 32) as u32, step as u32, stream], key = [seed as u32, 0];
//! Uniform = ((w0 >> 8) + 0.5)·2^-24, Normal = sqrt(−2 ln u(w0))·cos(2π u(w1)).
//!
//! The words and the uniform draw are bit-identical to the reference (the uniform is
//! computed as the exact integer 2·(w0>>8)+1 converted once to f32, times 2^-25, which
//! is the reference's f64 value rounded to f32). The normal draw uses the f32 `log` and
//! `cos` of `math` and so agrees to a few ulp. At width 4 the 32×32→64-bit products
//! use `pmuludq`-style widening multiplies. Knows nothing of kernels or loops.

use cranelift_codegen::ir::{types, ConstantData, InstBuilder, Value};
use kiln_ir::philox::{PHILOX_M0, PHILOX_M1, PHILOX_ROUNDS, PHILOX_W0, PHILOX_W1};
use kiln_ir::Distribution;

use super::lanes::{Lanes, Width};
use super::math;

/// High and low halves of `a * m` per lane.
fn mulhilo(l: &mut Lanes, a: Value, m: u32) -> (Value, Value) {
    match l.w {
        Width::Scalar => {
            let wide = l.b.ins().uextend(types::I64, a);
            let mv = l.b.ins().iconst(types::I64, m as i64);
            let p = l.b.ins().imul(wide, mv);
            let lo = l.b.ins().ireduce(types::I32, p);
            let sh = l.b.ins().ushr_imm_u(p, 32);
            let hi = l.b.ins().ireduce(types::I32, sh);
            (hi, lo)
        }
        Width::X4 => {
            let mv = l.i(m as i32);
            let lo = l.b.ins().imul(a, mv);
            let (al, ml) = (l.b.ins().uwiden_low(a), l.b.ins().uwiden_low(mv));
            let even = l.b.ins().imul(al, ml); // lanes 0, 1 as u64
            let (ah, mh) = (l.b.ins().uwiden_high(a), l.b.ins().uwiden_high(mv));
            let odd = l.b.ins().imul(ah, mh); // lanes 2, 3 as u64
            let e8 = l.reinterpret(types::I8X16, even);
            let o8 = l.reinterpret(types::I8X16, odd);
            // High words: bytes 4..8 and 12..16 of `even`, then of `odd` (16 + ...).
            let mask: Vec<u8> = [4u8, 12, 20, 28].iter().flat_map(|&s| s..s + 4).collect();
            let imm = l.b.func.dfg.immediates.push(ConstantData::from(mask));
            let h8 = l.b.ins().shuffle(e8, o8, imm);
            let hi = l.reinterpret(types::I32X4, h8);
            (hi, lo)
        }
    }
}

/// Philox 4x32-10 of `counter` under `key`, lane-wise (i32/i32x4 words).
pub fn philox4x32_10(l: &mut Lanes, counter: [Value; 4], key: [Value; 2]) -> [Value; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..PHILOX_ROUNDS {
        if round > 0 {
            let w0 = l.i(PHILOX_W0 as i32);
            let w1 = l.i(PHILOX_W1 as i32);
            k[0] = l.iadd(k[0], w0);
            k[1] = l.iadd(k[1], w1);
        }
        let (hi0, lo0) = mulhilo(l, c[0], PHILOX_M0);
        let (hi1, lo1) = mulhilo(l, c[2], PHILOX_M1);
        let x0 = l.xor(hi1, c[1]);
        let x0 = l.xor(x0, k[0]);
        let x2 = l.xor(hi0, c[3]);
        let x2 = l.xor(x2, k[1]);
        c = [x0, lo1, x2, lo0];
    }
    c
}

/// `((w >> 8) + 0.5) * 2^-24` as f32 (see the module doc for exactness).
pub fn uniform_from_u32(l: &mut Lanes, w: Value) -> Value {
    let top = l.ushr(w, 8);
    let twice = l.shl(top, 1);
    let one = l.i(1);
    let odd = l.or(twice, one);
    let f = l.i2f(odd);
    let scale = l.f(1.0 / 33_554_432.0); // 2^-25
    l.mul(f, scale)
}

/// The draw of kiln's `Random { dist, stream }` for element index `(lo, hi)` words
/// (`stream` is an i32 value holding the stream's bits).
pub fn random(
    l: &mut Lanes,
    dist: Distribution,
    stream: Value,
    seed: Value,
    step: Value,
    lo: Value,
    hi: Value,
) -> Value {
    let zero = l.i(0);
    let w = philox4x32_10(l, [lo, hi, step, stream], [seed, zero]);
    match dist {
        Distribution::Uniform => uniform_from_u32(l, w[0]),
        Distribution::Normal => {
            let u1 = uniform_from_u32(l, w[0]);
            let u2 = uniform_from_u32(l, w[1]);
            let ln = math::log(l, u1);
            let m2 = l.f(-2.0);
            let r2 = l.mul(ln, m2);
            let r = l.b.ins().sqrt(r2);
            let tau = l.f(std::f32::consts::TAU);
            let th = l.mul(u2, tau);
            let c = math::cos(l, th);
            l.mul(r, c)
        }
    }
}
