//! Shape and dtype inference: the single place where op validity is decided. Given an
//! op, its operand types and (for ops that need one) a declared result type, it returns
//! the result type or an `IrError` naming the op, the shapes/dtypes and the rule.

use crate::error::{IrError, Result};
use crate::graph::TensorType;
use crate::op::{Op, Window2d};
use crate::{DType, Shape};

fn arity(op: &Op, ops: &[&TensorType], n: usize) -> Result<()> {
    if ops.len() != n {
        return Err(IrError::Arity {
            op: op.name(),
            expected: n.to_string(),
            got: ops.len(),
        });
    }
    Ok(())
}

fn need_declared<'a>(op: &Op, declared: Option<&'a TensorType>) -> Result<&'a TensorType> {
    declared.ok_or_else(|| IrError::Invalid {
        op: op.name(),
        detail: "the result shape/dtype must be given when building this op".into(),
    })
}

fn expect_dtype(op: &Op, idx: usize, got: DType, ok: bool, expected: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(IrError::DType {
            op: op.name(),
            operand: idx,
            got,
            expected: expected.into(),
        })
    }
}

fn same_shapes(op: &Op, ops: &[&TensorType]) -> Result<Shape> {
    let first = &ops[0].shape;
    if ops.iter().any(|t| &t.shape != first) {
        let shapes = ops.iter().map(|t| t.shape.to_string()).collect::<Vec<_>>().join(", ");
        return Err(IrError::ShapeMismatch {
            op: op.name(),
            shapes,
            hint: "IR elementwise ops do not broadcast; the DSL inserts `expand` for you",
        });
    }
    Ok(first.clone())
}

fn check_axes(op: &Op, axes: &[usize], shape: &Shape) -> Result<()> {
    for (i, &a) in axes.iter().enumerate() {
        if a >= shape.rank() {
            return Err(IrError::Axis {
                op: op.name(),
                axis: a,
                shape: shape.clone(),
                rank: shape.rank(),
            });
        }
        if i > 0 && axes[i - 1] >= a {
            return Err(IrError::Invalid {
                op: op.name(),
                detail: format!("axes {axes:?} must be sorted and unique"),
            });
        }
    }
    Ok(())
}

fn no_f16(op: &Op, ops: &[&TensorType]) -> Result<()> {
    for (i, t) in ops.iter().enumerate() {
        if matches!(t.dtype, DType::F16 | DType::BF16) {
            return Err(IrError::DType {
                op: op.name(),
                operand: i,
                got: t.dtype,
                expected: "f32, i32 or bool (f16/bf16 are storage types: cast to f32 first)".into(),
            });
        }
    }
    Ok(())
}

/// Infer (and thereby validate) the result type of `op` applied to operands `ops`.
pub fn infer(op: &Op, ops: &[&TensorType], declared: Option<&TensorType>) -> Result<TensorType> {
    let name = op.name();
    if !matches!(op, Op::Cast) {
        no_f16(op, ops)?;
    }
    let ty = match op {
        Op::Input { .. } | Op::Scalar { .. } | Op::Param { .. } | Op::State { .. } | Op::Const { .. } => {
            arity(op, ops, 0)?;
            let d = need_declared(op, declared)?.clone();
            if matches!(op, Op::Scalar { .. }) && d.shape.rank() != 0 {
                return Err(IrError::Shape {
                    op: name,
                    detail: format!("runtime scalars have shape [], not {}", d.shape),
                });
            }
            if matches!(op, Op::Param { .. } | Op::State { .. }) && d.dtype != DType::F32 {
                return Err(IrError::DType {
                    op: name,
                    operand: 0,
                    got: d.dtype,
                    expected: "f32".into(),
                });
            }
            if let Op::Const { value } = op {
                if d.dtype == DType::Bool && *value != 0.0 && *value != 1.0 {
                    return Err(IrError::Invalid {
                        op: name,
                        detail: format!("bool constant must be 0 or 1, got {value}"),
                    });
                }
            }
            d
        }
        Op::Iota { axis } => {
            arity(op, ops, 0)?;
            let d = need_declared(op, declared)?.clone();
            if *axis >= d.shape.rank() {
                return Err(IrError::Axis {
                    op: name,
                    axis: *axis,
                    shape: d.shape.clone(),
                    rank: d.shape.rank(),
                });
            }
            expect_dtype(op, 0, d.dtype, d.dtype.is_numeric(), "i32 or f32")?;
            d
        }
        Op::Random { .. } => {
            arity(op, ops, 2)?;
            for (i, t) in ops.iter().enumerate() {
                expect_dtype(op, i, t.dtype, t.dtype == DType::I32, "i32 (seed and step)")?;
                if t.shape.rank() != 0 {
                    return Err(IrError::Shape {
                        op: name,
                        detail: format!("seed and step must be scalars, operand {i} has shape {}", t.shape),
                    });
                }
            }
            let d = need_declared(op, declared)?.clone();
            expect_dtype(op, 0, d.dtype, d.dtype == DType::F32, "f32 result")?;
            d
        }
        Op::Unary(_) | Op::PowConst { .. } => {
            arity(op, ops, 1)?;
            let t = ops[0];
            let ok = if op.needs_float() {
                t.dtype == DType::F32
            } else {
                t.dtype.is_numeric()
            };
            expect_dtype(op, 0, t.dtype, ok, if op.needs_float() { "f32" } else { "f32 or i32" })?;
            t.clone()
        }
        Op::Binary(_) => {
            arity(op, ops, 2)?;
            let shape = same_shapes(op, ops)?;
            let want = if op.needs_float() { "f32" } else { "f32 or i32" };
            for (i, t) in ops.iter().enumerate() {
                let ok = if op.needs_float() {
                    t.dtype == DType::F32
                } else {
                    t.dtype.is_numeric()
                };
                expect_dtype(op, i, t.dtype, ok, want)?;
            }
            expect_dtype(
                op,
                1,
                ops[1].dtype,
                ops[1].dtype == ops[0].dtype,
                &format!("{} (same as operand 0)", ops[0].dtype),
            )?;
            TensorType {
                shape,
                dtype: ops[0].dtype,
            }
        }
        Op::Compare(_) => {
            arity(op, ops, 2)?;
            let shape = same_shapes(op, ops)?;
            expect_dtype(
                op,
                1,
                ops[1].dtype,
                ops[1].dtype == ops[0].dtype,
                &format!("{} (same as operand 0)", ops[0].dtype),
            )?;
            TensorType {
                shape,
                dtype: DType::Bool,
            }
        }
        Op::Select => {
            arity(op, ops, 3)?;
            let shape = same_shapes(op, ops)?;
            expect_dtype(op, 0, ops[0].dtype, ops[0].dtype == DType::Bool, "bool (the condition)")?;
            expect_dtype(
                op,
                2,
                ops[2].dtype,
                ops[2].dtype == ops[1].dtype,
                &format!("{} (same as operand 1)", ops[1].dtype),
            )?;
            TensorType {
                shape,
                dtype: ops[1].dtype,
            }
        }
        Op::Cast => {
            arity(op, ops, 1)?;
            let d = need_declared(op, declared)?;
            if d.shape != ops[0].shape {
                return Err(IrError::Shape {
                    op: name,
                    detail: format!("cast keeps the shape {}, got {}", ops[0].shape, d.shape),
                });
            }
            d.clone()
        }
        Op::Reduce { axes, keepdims, .. } => {
            arity(op, ops, 1)?;
            let t = ops[0];
            check_axes(op, axes, &t.shape)?;
            expect_dtype(op, 0, t.dtype, t.dtype.is_numeric(), "f32 or i32")?;
            if matches!(
                op,
                Op::Reduce {
                    op: crate::op::ReduceOp::Mean,
                    ..
                }
            ) {
                expect_dtype(op, 0, t.dtype, t.dtype == DType::F32, "f32")?;
            }
            let dims = reduced_dims(&t.shape, axes, *keepdims);
            TensorType {
                shape: Shape(dims),
                dtype: t.dtype,
            }
        }
        Op::ArgMax { axis } => {
            arity(op, ops, 1)?;
            let t = ops[0];
            check_axes(op, &[*axis], &t.shape)?;
            if t.shape.dims()[*axis] == 0 {
                return Err(IrError::Shape {
                    op: name,
                    detail: format!("cannot take argmax over empty axis {axis} of {}", t.shape),
                });
            }
            expect_dtype(op, 0, t.dtype, t.dtype.is_numeric(), "f32 or i32")?;
            TensorType {
                shape: Shape(reduced_dims(&t.shape, &[*axis], false)),
                dtype: DType::I32,
            }
        }
        Op::Reshape => {
            arity(op, ops, 1)?;
            let d = need_declared(op, declared)?;
            if d.shape.numel() != ops[0].shape.numel() {
                return Err(IrError::Shape {
                    op: name,
                    detail: format!(
                        "cannot reshape {} ({} elements) to {} ({} elements)",
                        ops[0].shape,
                        ops[0].shape.numel(),
                        d.shape,
                        d.shape.numel()
                    ),
                });
            }
            TensorType {
                shape: d.shape.clone(),
                dtype: ops[0].dtype,
            }
        }
        Op::Expand => {
            arity(op, ops, 1)?;
            let d = need_declared(op, declared)?;
            if !ops[0].shape.broadcasts_to(&d.shape) {
                return Err(IrError::Shape {
                    op: name,
                    detail: format!(
                        "cannot broadcast {} to {} (NumPy rule: align right; each size must equal the target's or be 1)",
                        ops[0].shape, d.shape
                    ),
                });
            }
            TensorType {
                shape: d.shape.clone(),
                dtype: ops[0].dtype,
            }
        }
        Op::Permute { perm } => {
            arity(op, ops, 1)?;
            let t = ops[0];
            let mut seen = vec![false; t.shape.rank()];
            let valid = perm.len() == t.shape.rank()
                && perm
                    .iter()
                    .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
            if !valid {
                return Err(IrError::Invalid {
                    op: name,
                    detail: format!(
                        "{perm:?} is not a permutation of the {} axes of {}",
                        t.shape.rank(),
                        t.shape
                    ),
                });
            }
            TensorType {
                shape: Shape(perm.iter().map(|&p| t.shape.dims()[p]).collect()),
                dtype: t.dtype,
            }
        }
        Op::Slice { starts, ends, steps } => {
            arity(op, ops, 1)?;
            let t = ops[0];
            let r = t.shape.rank();
            if starts.len() != r || ends.len() != r || steps.len() != r {
                return Err(IrError::Invalid {
                    op: name,
                    detail: format!("needs one start/end/step per axis of {} (rank {r})", t.shape),
                });
            }
            let mut dims = Vec::with_capacity(r);
            for i in 0..r {
                let n = t.shape.dims()[i];
                if steps[i] == 0 || starts[i] > ends[i] || ends[i] > n {
                    return Err(IrError::Invalid {
                        op: name,
                        detail: format!(
                            "axis {i} of {}: range {}..{} step {} is invalid (need start <= end <= {n}, step >= 1)",
                            t.shape, starts[i], ends[i], steps[i]
                        ),
                    });
                }
                dims.push((ends[i] - starts[i]).div_ceil(steps[i]));
            }
            TensorType {
                shape: Shape(dims),
                dtype: t.dtype,
            }
        }
        Op::Pad { low, high, .. } => {
            arity(op, ops, 1)?;
            let t = ops[0];
            if low.len() != t.shape.rank() || high.len() != t.shape.rank() {
                return Err(IrError::Invalid {
                    op: name,
                    detail: format!("needs low/high padding for each axis of {}", t.shape),
                });
            }
            let dims = t
                .shape
                .dims()
                .iter()
                .zip(low.iter().zip(high))
                .map(|(d, (l, h))| d + l + h)
                .collect();
            TensorType {
                shape: Shape(dims),
                dtype: t.dtype,
            }
        }
        Op::Concat { axis } => {
            if ops.is_empty() {
                return Err(IrError::Arity {
                    op: name,
                    expected: "at least 1".into(),
                    got: 0,
                });
            }
            let first = ops[0];
            check_axes(op, &[*axis], &first.shape)?;
            let mut total = 0;
            for (i, t) in ops.iter().enumerate() {
                expect_dtype(op, i, t.dtype, t.dtype == first.dtype, &format!("{}", first.dtype))?;
                let compatible = t.shape.rank() == first.shape.rank()
                    && (0..t.shape.rank()).all(|a| a == *axis || t.shape.dims()[a] == first.shape.dims()[a]);
                if !compatible {
                    return Err(IrError::Shape {
                        op: name,
                        detail: format!(
                            "operand {i} has shape {}, incompatible with {} outside axis {axis}",
                            t.shape, first.shape
                        ),
                    });
                }
                total += t.shape.dims()[*axis];
            }
            let mut dims = first.shape.dims().to_vec();
            dims[*axis] = total;
            TensorType {
                shape: Shape(dims),
                dtype: first.dtype,
            }
        }
        Op::MatMul => {
            arity(op, ops, 2)?;
            let (a, b) = (ops[0], ops[1]);
            for (i, t) in ops.iter().enumerate() {
                expect_dtype(op, i, t.dtype, t.dtype == DType::F32, "f32")?;
                if t.shape.rank() < 2 {
                    return Err(IrError::Shape {
                        op: name,
                        detail: format!("operand {i} has shape {}; matmul needs rank >= 2 ([..., m, k] @ [..., k, n]); reshape vectors first", t.shape),
                    });
                }
            }
            let (ra, rb) = (a.shape.rank(), b.shape.rank());
            let (m, k1) = (a.shape.dims()[ra - 2], a.shape.dims()[ra - 1]);
            let (k2, n) = (b.shape.dims()[rb - 2], b.shape.dims()[rb - 1]);
            if k1 != k2 {
                return Err(IrError::Shape {
                    op: name,
                    detail: format!(
                        "inner dimensions differ: lhs {} has k={k1} but rhs {} has k={k2} (expected [..., m, k] @ [..., k, n])",
                        a.shape, b.shape
                    ),
                });
            }
            let batch_a = Shape(a.shape.dims()[..ra - 2].to_vec());
            let batch_b = Shape(b.shape.dims()[..rb - 2].to_vec());
            let batch = Shape::broadcast(&batch_a, &batch_b).map_err(|(axis, x, y)| IrError::Broadcast {
                op: name,
                lhs: a.shape.clone(),
                rhs: b.shape.clone(),
                axis,
                a: x,
                b: y,
            })?;
            let mut dims = batch.0;
            dims.extend([m, n]);
            TensorType {
                shape: Shape(dims),
                dtype: DType::F32,
            }
        }
        Op::Gather => {
            arity(op, ops, 2)?;
            let (table, idx) = (ops[0], ops[1]);
            expect_dtype(op, 1, idx.dtype, idx.dtype == DType::I32, "i32 (indices)")?;
            if table.shape.rank() == 0 {
                return Err(IrError::Shape {
                    op: name,
                    detail: "the table must have rank >= 1 (rows along axis 0)".into(),
                });
            }
            let mut dims = idx.shape.dims().to_vec();
            dims.extend_from_slice(&table.shape.dims()[1..]);
            TensorType {
                shape: Shape(dims),
                dtype: table.dtype,
            }
        }
        Op::OneHot { depth } => {
            arity(op, ops, 1)?;
            expect_dtype(op, 0, ops[0].dtype, ops[0].dtype == DType::I32, "i32 (class indices)")?;
            if *depth == 0 {
                return Err(IrError::Invalid {
                    op: name,
                    detail: "depth must be at least 1".into(),
                });
            }
            let mut dims = ops[0].shape.dims().to_vec();
            dims.push(*depth);
            TensorType {
                shape: Shape(dims),
                dtype: DType::F32,
            }
        }
        Op::Unfold2d(w) => {
            arity(op, ops, 1)?;
            let t = ops[0];
            let [n, c, h, wd] = nchw(op, &t.shape)?;
            let [oh, ow] = window_out(op, w, h, wd)?;
            TensorType {
                shape: Shape(vec![n, c * w.kernel[0] * w.kernel[1], oh * ow]),
                dtype: t.dtype,
            }
        }
        Op::Fold2d { window, size } => {
            arity(op, ops, 1)?;
            let t = ops[0];
            let [oh, ow] = window_out(op, window, size[0], size[1])?;
            let kk = window.kernel[0] * window.kernel[1];
            let d = t.shape.dims();
            if t.shape.rank() != 3 || d[1] % kk != 0 || d[2] != oh * ow {
                return Err(IrError::Shape {
                    op: name,
                    detail: format!(
                        "expects [N, C*{kk}, {}] (kernel {:?}, output {:?}), got {}",
                        oh * ow,
                        window.kernel,
                        size,
                        t.shape
                    ),
                });
            }
            TensorType {
                shape: Shape(vec![d[0], d[1] / kk, size[0], size[1]]),
                dtype: t.dtype,
            }
        }
    };
    if let Some(d) = declared {
        if *d != ty {
            return Err(IrError::Invalid {
                op: name,
                detail: format!("declared result {d} but the operands give {ty}"),
            });
        }
    }
    Ok(ty)
}

/// Dimensions after reducing `axes` (sorted) with or without keepdims.
pub fn reduced_dims(shape: &Shape, axes: &[usize], keepdims: bool) -> Vec<usize> {
    shape
        .dims()
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| {
            if axes.contains(&i) {
                keepdims.then_some(1)
            } else {
                Some(d)
            }
        })
        .collect()
}

fn nchw(op: &Op, s: &Shape) -> Result<[usize; 4]> {
    match s.dims() {
        &[n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(IrError::Shape {
            op: op.name(),
            detail: format!("expects an NCHW tensor of rank 4, got {s}"),
        }),
    }
}

fn window_out(op: &Op, w: &Window2d, h: usize, wd: usize) -> Result<[usize; 2]> {
    w.output_size(h, wd).ok_or_else(|| IrError::Shape {
        op: op.name(),
        detail: format!(
            "kernel {:?} with stride {:?} and padding {:?} does not fit a {h}x{wd} image",
            w.kernel, w.stride, w.padding
        ),
    })
}
