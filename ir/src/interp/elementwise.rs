//! Interpreter semantics of the generated-value ops (`iota`, `random`) and the
//! elementwise ops (`unary`, `binary`, `compare`, `select`). Each function returns the
//! output data in row-major order; operands already have the node's shape. No graph
//! logic here.

use crate::graph::TensorType;
use crate::op::{BinaryOp, CompareOp, Distribution, UnaryOp};
use crate::philox::random_f64;
use crate::value::Value;
use crate::DType;

use super::index::for_each_index;

pub(super) fn iota(ty: &TensorType, axis: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(ty.shape.numel());
    for_each_index(ty.shape.dims(), |_, idx| out.push(idx[axis] as f64));
    out
}

pub(super) fn random(ty: &TensorType, dist: Distribution, stream: u32, seed: &Value, step: &Value) -> Vec<f64> {
    // Both operands are i32 scalars, stored exactly.
    let seed = seed.data[0] as i32;
    let step = step.data[0] as i32;
    (0..ty.shape.numel() as u64)
        .map(|i| random_f64(dist, seed, step, stream, i))
        .collect()
}

/// max(x, 0) that keeps NaN.
fn relu(x: f64) -> f64 {
    if x.is_nan() || x > 0.0 {
        x
    } else {
        0.0
    }
}

/// 1 / (1 + e^-x) without overflow for large |x|.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else if x == 0.0 {
        0.0
    } else {
        x // NaN
    }
}

fn unary_f(u: UnaryOp, x: f64) -> f64 {
    match u {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Sign => sign(x),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Relu => relu(x),
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
    }
}

/// i32 unary ops (only the ones `infer` admits for i32), wrapping like i32.
fn unary_i(u: UnaryOp, x: i32) -> i32 {
    match u {
        UnaryOp::Neg => x.wrapping_neg(),
        UnaryOp::Abs => x.wrapping_abs(),
        UnaryOp::Sign => x.signum(),
        UnaryOp::Relu => x.max(0),
        _ => unreachable!("infer admits only neg/abs/sign/relu on i32"),
    }
}

pub(super) fn unary(u: UnaryOp, x: &Value) -> Vec<f64> {
    if x.dtype == DType::I32 {
        x.data.iter().map(|&v| unary_i(u, v as i32) as f64).collect()
    } else {
        x.data.iter().map(|&v| unary_f(u, v)).collect()
    }
}

/// max that propagates NaN (also used by `reduce_max`).
pub(super) fn max_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// min that propagates NaN (also used by `reduce_min`).
pub(super) fn min_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn binary_f(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => max_nan(a, b),
        BinaryOp::Min => min_nan(a, b),
    }
}

fn binary_i(op: BinaryOp, a: i32, b: i32) -> i32 {
    match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::Div => unreachable!("infer rejects div on i32"),
    }
}

pub(super) fn binary(op: BinaryOp, a: &Value, b: &Value) -> Vec<f64> {
    let pairs = a.data.iter().zip(&b.data);
    if a.dtype == DType::I32 {
        pairs.map(|(&x, &y)| binary_i(op, x as i32, y as i32) as f64).collect()
    } else {
        pairs.map(|(&x, &y)| binary_f(op, x, y)).collect()
    }
}

pub(super) fn compare(op: CompareOp, a: &Value, b: &Value) -> Vec<f64> {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| {
            let r = match op {
                CompareOp::Lt => x < y,
                CompareOp::Le => x <= y,
                CompareOp::Gt => x > y,
                CompareOp::Ge => x >= y,
                CompareOp::Eq => x == y,
                CompareOp::Ne => x != y,
            };
            r as u8 as f64
        })
        .collect()
}

pub(super) fn select(cond: &Value, on_true: &Value, on_false: &Value) -> Vec<f64> {
    cond.data
        .iter()
        .zip(on_true.data.iter().zip(&on_false.data))
        .map(|(&c, (&t, &f))| if c != 0.0 { t } else { f })
        .collect()
}
