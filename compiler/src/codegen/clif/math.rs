//! Vectorised f32 transcendentals in CLIF (the same code at scalar and f32x4 width),
//! plus kiln's NaN-propagating max/min and `pow` with a constant exponent.
//!
//! Algorithms (coefficients from Cephes' single-precision library, range reductions
//! made branch-free). Accuracy is measured against f64 libm by
//! `runtime/tests/cpu_math.rs` over ~80k inputs per function at both widths, with and
//! without FMA; the measured maxima (and the bounds that test asserts) are:
//! - `exp`: n = round(x·log2 e) by the 1.5·2^23 trick, Cody–Waite r = x − n·ln2 in two
//!   parts, degree-7 polynomial, scaling by 2^n in two halves so subnormal results and
//!   overflow are right. 0.96 ulp (bound 1.5), subnormal results included; exp(−inf) =
//!   0, exp(x > 88.73) = inf, NaN kept.
//! - `log`: frexp by bit manipulation (subnormals pre-scaled by 2^23), mantissa in
//!   [√½, √2), degree-9 polynomial. 0.77 ulp (bound 1.5); log(±0) = −inf, log(x<0) =
//!   NaN, log(inf) = inf.
//! - `tanh`: odd polynomial for |x| < 0.625, else 1 − 2/(e^{2|x|}+1) with the sign
//!   restored. 1.05 ulp (bound 2); ±1 for large |x|, tanh(±inf) = ±1.
//! - `sigmoid`: e = exp(−|x|), (x ≥ 0 ? 1 : e)/(1 + e), never overflows. 2.03 ulp
//!   (bound 2.5); exactly 0/1 at ∓inf.
//! - `sin`/`cos`: octant reduction with π/4 in three parts (Cephes DP1..DP3) and the
//!   two minimax polynomials, for |x| ≤ [`TRIG_FAST_LIMIT`]; a vector with any lane
//!   beyond it (or inf/NaN) calls the f64 helper for all its lanes (correctly rounded).
//!   1.49 ulp where |result| > 1e-3 (bound 2, 4 without FMA), absolute error ≤ 3e-7
//!   everywhere.
//!
//! It must not know about kernels, buffers or loops.

// Coefficients are quoted verbatim from Cephes (decimal, more digits than f32 holds).
#![allow(clippy::excessive_precision)]

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Value};

use super::abi::{Helper, MathFn};
use super::lanes::{Lanes, Width};

/// Largest |x| the inline sin/cos reduction handles; beyond it the helper is called.
pub const TRIG_FAST_LIMIT: f32 = 8192.0;

/// max(a, b) that returns NaN when either operand is NaN.
pub fn max_nan(l: &mut Lanes, a: Value, b: Value) -> Value {
    // `b < a ? a : b` is one `maxps` on x64 (it yields b when either is NaN) ...
    let lt = l.fcmp(FloatCC::LessThan, b, a);
    let t = l.select(lt, a, b);
    // ... and a NaN in `a` is put back.
    let nan = l.fcmp(FloatCC::Unordered, a, a);
    l.select(nan, a, t)
}

/// min(a, b) that returns NaN when either operand is NaN.
pub fn min_nan(l: &mut Lanes, a: Value, b: Value) -> Value {
    let lt = l.fcmp(FloatCC::LessThan, a, b);
    let t = l.select(lt, a, b);
    let nan = l.fcmp(FloatCC::Unordered, a, a);
    l.select(nan, a, t)
}

/// `cond ? c : x` with a constant `c`.
fn replace_if(l: &mut Lanes, cond: Value, c: f32, x: Value) -> Value {
    let cv = l.f(c);
    l.select(cond, cv, x)
}

/// 2^n for i32 lanes `n` in [-126, 127].
fn pow2i(l: &mut Lanes, n: Value) -> Value {
    let bias = l.i(127);
    let e = l.iadd(n, bias);
    let bits = l.shl(e, 23);
    l.from_bits(bits)
}

fn exp_inline(l: &mut Lanes, x: Value) -> Value {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
                                     // Clamp so that n stays in [-150, 128] (NaN passes through: compares are false).
    let hi = l.f(88.8);
    let gt = l.fcmp(FloatCC::GreaterThan, x, hi);
    let x = l.select(gt, hi, x);
    let lo = l.f(-104.0);
    let lt = l.fcmp(FloatCC::LessThan, x, lo);
    let x = l.select(lt, lo, x);

    let log2e = l.f(std::f32::consts::LOG2_E);
    let t = l.mul_add_c(x, log2e, MAGIC);
    let magic = l.f(MAGIC);
    let nf = l.sub(t, magic);
    let tb = l.to_bits(t);
    let mb = l.i(MAGIC.to_bits() as i32);
    let n = l.isub(tb, mb);

    let c1 = l.f(-0.693_359_375);
    let r = l.mul_add(nf, c1, x);
    let c2 = l.f(2.121_944_4e-4);
    let r = l.mul_add(nf, c2, r);

    let z = l.mul(r, r);
    let p = l.horner(
        r,
        &[
            1.987_569_15e-4,
            1.398_199_950_7e-3,
            8.333_451_907_3e-3,
            4.166_579_589_4e-2,
            1.666_666_545_9e-1,
            5.000_000_120_1e-1,
        ],
    );
    let y = l.mul_add(p, z, r);
    let one = l.f(1.0);
    let y = l.add(y, one);

    let n1 = l.sshr(n, 1);
    let n2 = l.isub(n, n1);
    let s1 = pow2i(l, n1);
    let s2 = pow2i(l, n2);
    let y = l.mul(y, s1);
    l.mul(y, s2)
}

fn log_inline(l: &mut Lanes, x: Value) -> Value {
    let min_normal = l.f(f32::MIN_POSITIVE);
    let small = l.fcmp(FloatCC::LessThan, x, min_normal);
    let scale = l.f(8_388_608.0); // 2^23
    let scaled = l.mul(x, scale);
    let xs = l.select(small, scaled, x);
    let (m23, zero_i) = (l.i(-23), l.i(0));
    let eadj = l.select(small, m23, zero_i);

    let bits = l.to_bits(xs);
    let e = l.ushr(bits, 23);
    let bias = l.i(126);
    let e = l.isub(e, bias);
    let e = l.iadd(e, eadj);
    let mant = l.and_c(bits, 0x007F_FFFF);
    let half = l.i(0x3F00_0000);
    let mbits = l.or(mant, half);
    let m = l.from_bits(mbits); // [0.5, 1)

    let sqrth = l.f(std::f32::consts::FRAC_1_SQRT_2);
    let lt = l.fcmp(FloatCC::LessThan, m, sqrth);
    let dec = l.bool_to_i01(lt);
    let e = l.isub(e, dec);
    let m2 = l.add(m, m);
    let m = l.select(lt, m2, m);
    let one = l.f(1.0);
    let m = l.sub(m, one);
    let ef = l.i2f(e);

    let z = l.mul(m, m);
    let y = l.horner(
        m,
        &[
            7.037_683_629_2e-2,
            -1.151_461_031_0e-1,
            1.167_699_874_0e-1,
            -1.242_014_084_6e-1,
            1.424_932_278_7e-1,
            -1.666_805_766_5e-1,
            2.000_071_476_5e-1,
            -2.499_999_399_3e-1,
            3.333_333_117_4e-1,
        ],
    );
    let y = l.mul(y, m);
    let y = l.mul(y, z);
    let c2 = l.f(-2.121_944_4e-4);
    let y = l.mul_add(ef, c2, y);
    let mhalf = l.f(-0.5);
    let y = l.mul_add(z, mhalf, y);
    let r = l.add(m, y);
    let c1 = l.f(0.693_359_375);
    let r = l.mul_add(ef, c1, r);

    let inf = l.f(f32::INFINITY);
    let is_inf = l.fcmp(FloatCC::Equal, x, inf);
    let r = l.select(is_inf, inf, r);
    let zero = l.f(0.0);
    let is_zero = l.fcmp(FloatCC::Equal, x, zero);
    let r = replace_if(l, is_zero, f32::NEG_INFINITY, r);
    let bad = l.fcmp(FloatCC::UnorderedOrLessThan, x, zero);
    replace_if(l, bad, f32::NAN, r)
}

fn tanh_inline(l: &mut Lanes, x: Value) -> Value {
    let a = l.b.ins().fabs(x);
    // Small |x|: x + x^3 P(x^2).
    let z = l.mul(x, x);
    let p = l.horner(
        z,
        &[
            -5.704_988_727_45e-3,
            2.063_908_879_54e-2,
            -5.373_971_555_31e-2,
            1.333_144_220_36e-1,
            -3.333_328_194_22e-1,
        ],
    );
    let xz = l.mul(x, z);
    let small = l.mul_add(xz, p, x);
    // Large |x|: 1 - 2 / (e^{2|x|} + 1), sign of x.
    let two_a = l.add(a, a);
    let e = exp_inline(l, two_a);
    let one = l.f(1.0);
    let d = l.add(e, one);
    let two = l.f(2.0);
    let q = l.div(two, d);
    let big = l.sub(one, q);
    let big = l.with_sign_of(big, x);
    let lim = l.f(0.625);
    let is_small = l.fcmp(FloatCC::LessThan, a, lim);
    l.select(is_small, small, big)
}

fn sigmoid_inline(l: &mut Lanes, x: Value) -> Value {
    let a = l.b.ins().fabs(x);
    let na = l.b.ins().fneg(a);
    let e = exp_inline(l, na);
    let one = l.f(1.0);
    let zero = l.f(0.0);
    let nonneg = l.fcmp(FloatCC::GreaterThanOrEqual, x, zero);
    let num = l.select(nonneg, one, e);
    let den = l.add(one, e);
    l.div(num, den)
}

/// The fast sin (`cos = false`) or cos of `x`, valid for |x| <= TRIG_FAST_LIMIT.
fn trig_fast(l: &mut Lanes, x: Value, cos: bool) -> Value {
    const FOPI: f32 = 1.273_239_5; // 4/pi
    let a = l.b.ins().fabs(x);
    let fopi = l.f(FOPI);
    let s = l.mul(a, fopi);
    let j = l.f2i_sat(s);
    let one_i = l.i(1);
    let j = l.iadd(j, one_i);
    let j = l.and_c(j, !1);
    let y = l.i2f(j);
    let dp1 = l.f(-0.785_156_25);
    let r = l.mul_add(y, dp1, a);
    let dp2 = l.f(-2.418_756_484_985_351_562_5e-4);
    let r = l.mul_add(y, dp2, r);
    let dp3 = l.f(-3.774_894_977_445_941_08e-8);
    let r = l.mul_add(y, dp3, r);

    // Quadrant of |x| (multiples of pi/2); cos(x) = sin(|x| + pi/2).
    let q = l.sshr(j, 1);
    let q = if cos { l.iadd(q, one_i) } else { q };

    let z = l.mul(r, r);
    let ps = l.horner(z, &[-1.951_529_589_1e-4, 8.332_160_873_6e-3, -1.666_665_461_1e-1]);
    let t = l.mul(ps, z);
    let sinp = l.mul_add(t, r, r);
    let pc = l.horner(
        z,
        &[
            2.443_315_711_809_948e-5,
            -1.388_731_625_493_765e-3,
            4.166_664_568_298_827e-2,
        ],
    );
    let t = l.mul(pc, z);
    let one = l.f(1.0);
    let mhalf = l.f(-0.5);
    let u = l.mul_add(z, mhalf, one);
    let cosp = l.mul_add(t, z, u);

    let odd = l.and_c(q, 1);
    let use_cos = l.int_to_bool(odd);
    let poly = l.select(use_cos, cosp, sinp);
    let q2 = l.and_c(q, 2);
    let mut sign = l.shl(q2, 30);
    if !cos {
        let xb = l.to_bits(x);
        let xs = l.and_c(xb, i32::MIN);
        sign = l.xor(sign, xs);
    }
    let pb = l.to_bits(poly);
    let rb = l.xor(pb, sign);
    l.from_bits(rb)
}

/// `fast`, with the lanes set in `slow` replaced by the helper's result (computed only
/// when some lane needs it).
fn with_slow_path(l: &mut Lanes, slow: Value, fast: Value, helper: Helper, x: Value) -> Value {
    let ty = l.fty();
    let any = l.any(slow);
    let slow_b = l.b.create_block();
    let join = l.b.create_block();
    l.b.append_block_param(join, ty);
    l.b.ins().brif(any, slow_b, &[], join, &[fast.into()]);
    l.b.switch_to_block(slow_b);
    let r = l.call_helper(helper as usize, x, &[]);
    let r = l.select(slow, r, fast);
    l.b.ins().jump(join, &[r.into()]);
    l.b.switch_to_block(join);
    l.b.block_params(join)[0]
}

fn trig_inline(l: &mut Lanes, x: Value, cos: bool) -> Value {
    let fast = trig_fast(l, x, cos);
    let a = l.b.ins().fabs(x);
    let lim = l.f(TRIG_FAST_LIMIT);
    let slow = l.fcmp(FloatCC::UnorderedOrGreaterThan, a, lim);
    let h = if cos { Helper::Cos } else { Helper::Sin };
    with_slow_path(l, slow, fast, h, x)
}

/// The inline expansion of `f` (what support functions and vector bodies run).
pub fn inline(l: &mut Lanes, f: MathFn, x: Value) -> Value {
    match f {
        MathFn::Exp => exp_inline(l, x),
        MathFn::Log => log_inline(l, x),
        MathFn::Tanh => tanh_inline(l, x),
        MathFn::Sigmoid => sigmoid_inline(l, x),
        MathFn::Sin => trig_inline(l, x, false),
        MathFn::Cos => trig_inline(l, x, true),
    }
}

/// `f(x)`: a call of the program's support function in outlined scalar code, else the
/// inline expansion (bit-identical either way).
pub fn apply(l: &mut Lanes, f: MathFn, x: Value) -> Value {
    if l.helpers.outline && l.w == Width::Scalar {
        l.call_support(f, x)
    } else {
        inline(l, f, x)
    }
}

pub fn exp(l: &mut Lanes, x: Value) -> Value {
    apply(l, MathFn::Exp, x)
}

pub fn log(l: &mut Lanes, x: Value) -> Value {
    apply(l, MathFn::Log, x)
}

pub fn tanh(l: &mut Lanes, x: Value) -> Value {
    apply(l, MathFn::Tanh, x)
}

pub fn sigmoid(l: &mut Lanes, x: Value) -> Value {
    apply(l, MathFn::Sigmoid, x)
}

pub fn sin(l: &mut Lanes, x: Value) -> Value {
    apply(l, MathFn::Sin, x)
}

pub fn cos(l: &mut Lanes, x: Value) -> Value {
    apply(l, MathFn::Cos, x)
}

/// sqrt(x) with pow's conventions: +0 for ±0, +inf for -inf.
fn pow_half(l: &mut Lanes, x: Value) -> Value {
    let s = l.b.ins().sqrt(x);
    let zero = l.f(0.0);
    let s = l.add(s, zero);
    let ninf = l.f(f32::NEG_INFINITY);
    let is_ninf = l.fcmp(FloatCC::Equal, x, ninf);
    replace_if(l, is_ninf, f32::INFINITY, s)
}

/// `x^e` for a compile-time exponent: exact expansions for e in {0, ±1, 2, 3, 4, -2,
/// ±0.5} (with `powf`'s special values), the f64 helper otherwise.
pub fn pow_const(l: &mut Lanes, x: Value, e: f64) -> Value {
    let recip = |l: &mut Lanes, v: Value| {
        let one = l.f(1.0);
        l.div(one, v)
    };
    match e {
        _ if e == 0.0 => l.f(1.0),
        _ if e == 1.0 => x,
        _ if e == 2.0 => l.mul(x, x),
        _ if e == 3.0 => {
            let x2 = l.mul(x, x);
            l.mul(x2, x)
        }
        _ if e == 4.0 => {
            let x2 = l.mul(x, x);
            l.mul(x2, x2)
        }
        _ if e == -1.0 => recip(l, x),
        _ if e == -2.0 => {
            let x2 = l.mul(x, x);
            recip(l, x2)
        }
        _ if e == 0.5 => pow_half(l, x),
        _ if e == -0.5 => {
            let s = pow_half(l, x);
            recip(l, s)
        }
        _ => {
            let ev = l.b.ins().f64const(e);
            l.call_helper(Helper::Pow as usize, x, &[ev])
        }
    }
}
