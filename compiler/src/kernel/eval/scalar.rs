//! The scalar semantics of kernel instructions, mirroring the reference interpreter
//! (`kiln_ir::interp`) rule for rule: f64 arithmetic for f32, wrapping i32 arithmetic,
//! NaN-propagating max/min, the overflow-free sigmoid. Pure functions on typed values.

use kiln_ir::{BinaryOp, CompareOp, DType, UnaryOp};

use super::{malformed, Result, V};

/// max that propagates NaN (the interpreter's rule).
pub(super) fn max_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

pub(super) fn min_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

pub(super) fn unary(k: &str, op: UnaryOp, v: V) -> Result<V> {
    let x = v.x;
    let r = match v.t {
        DType::I32 => {
            let i = x as i32;
            let r = match op {
                UnaryOp::Neg => i.wrapping_neg(),
                UnaryOp::Abs => i.wrapping_abs(),
                UnaryOp::Sign => i.signum(),
                UnaryOp::Relu => i.max(0),
                _ => return Err(malformed(k, format!("{op:?} of an i32 value"))),
            };
            r as f64
        }
        DType::F32 => match op {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => 1.0 / x.sqrt(),
            UnaryOp::Recip => 1.0 / x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else if x == 0.0 {
                    0.0
                } else {
                    x
                }
            }
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            UnaryOp::Relu => {
                if x.is_nan() || x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
        },
        t => return Err(malformed(k, format!("{op:?} of a {t} value"))),
    };
    Ok(V { x: r, t: v.t })
}

pub(super) fn binary(k: &str, op: BinaryOp, a: V, b: V) -> Result<V> {
    if a.t != b.t {
        return Err(malformed(k, format!("{op:?} of {} and {}", a.t, b.t)));
    }
    let r = match a.t {
        DType::I32 => {
            let (x, y) = (a.x as i32, b.x as i32);
            let r = match op {
                BinaryOp::Add => x.wrapping_add(y),
                BinaryOp::Sub => x.wrapping_sub(y),
                BinaryOp::Mul => x.wrapping_mul(y),
                BinaryOp::Max => x.max(y),
                BinaryOp::Min => x.min(y),
                BinaryOp::Div => return Err(malformed(k, "Div of i32 values")),
            };
            r as f64
        }
        DType::F32 => match op {
            BinaryOp::Add => a.x + b.x,
            BinaryOp::Sub => a.x - b.x,
            BinaryOp::Mul => a.x * b.x,
            BinaryOp::Div => a.x / b.x,
            BinaryOp::Max => max_nan(a.x, b.x),
            BinaryOp::Min => min_nan(a.x, b.x),
        },
        t => return Err(malformed(k, format!("{op:?} of {t} values"))),
    };
    Ok(V { x: r, t: a.t })
}

pub(super) fn compare(k: &str, op: CompareOp, a: V, b: V) -> Result<V> {
    if a.t != b.t {
        return Err(malformed(k, format!("{op:?} of {} and {}", a.t, b.t)));
    }
    let (x, y) = (a.x, b.x);
    let r = match op {
        CompareOp::Lt => x < y,
        CompareOp::Le => x <= y,
        CompareOp::Gt => x > y,
        CompareOp::Ge => x >= y,
        CompareOp::Eq => x == y,
        CompareOp::Ne => x != y,
    };
    Ok(V {
        x: r as u8 as f64,
        t: DType::Bool,
    })
}
