//! Tensor methods and operator overloads of the DSL. Each method builds one IR node
//! (plus the `expand`s NumPy broadcasting needs); validity is checked by `infer`.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::error::IrError;
use crate::graph::TensorType;
use crate::op::{BinaryOp, CompareOp, Distribution, Op, ReduceOp, UnaryOp, Window2d};
use crate::{DType, Shape};

use super::Tensor;

/// Anything usable as the second operand of a binary op: a tensor or a number
/// (numbers become a constant of the tensor's dtype).
pub trait Operand {
    fn to_tensor(&self, like: &Tensor) -> Tensor;
    /// The number, when the operand is a plain number (it then adopts a dtype from context).
    fn as_number(&self) -> Option<f64> {
        None
    }
}

impl Operand for Tensor {
    fn to_tensor(&self, _: &Tensor) -> Tensor {
        self.clone()
    }
}
impl Operand for &Tensor {
    fn to_tensor(&self, _: &Tensor) -> Tensor {
        (*self).clone()
    }
}
macro_rules! number_operand {
    ($($t:ty),*) => {$(
        impl Operand for $t {
            fn to_tensor(&self, like: &Tensor) -> Tensor {
                like.b.constant(*self as f64, like.dtype())
            }
            fn as_number(&self) -> Option<f64> {
                Some(*self as f64)
            }
        }
    )*};
}
number_operand!(f64, f32, i32);

impl Tensor {
    #[track_caller]
    fn unary(&self, u: UnaryOp) -> Tensor {
        self.b.node(Op::Unary(u), &[self], None)
    }

    /// NumPy broadcast of two tensors: both expanded to the common shape.
    #[track_caller]
    pub fn broadcast_pair(&self, other: &Tensor, op: &'static str) -> (Tensor, Tensor) {
        let (sa, sb) = (self.shape(), other.shape());
        if sa == sb || self.id.is_none() || other.id.is_none() {
            return (self.clone(), other.clone());
        }
        match Shape::broadcast(&sa, &sb) {
            Ok(s) => (self.broadcast_to(s.clone()), other.broadcast_to(s)),
            Err((axis, a, b)) => {
                let e = IrError::Broadcast {
                    op,
                    lhs: sa,
                    rhs: sb,
                    axis,
                    a,
                    b,
                };
                let t = self.b.fail(e, std::panic::Location::caller());
                (t.clone(), t)
            }
        }
    }

    #[track_caller]
    fn binary(&self, other: &Tensor, op: BinaryOp) -> Tensor {
        let name = Op::Binary(op).name();
        let (a, b) = self.broadcast_pair(other, name);
        self.b.node(Op::Binary(op), &[&a, &b], None)
    }

    #[track_caller]
    fn compare(&self, other: &Tensor, op: CompareOp) -> Tensor {
        let name = Op::Compare(op).name();
        let (a, b) = self.broadcast_pair(other, name);
        self.b.node(Op::Compare(op), &[&a, &b], None)
    }

    // ----- unary -----
    #[track_caller]
    pub fn neg(&self) -> Tensor {
        self.unary(UnaryOp::Neg)
    }
    #[track_caller]
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp)
    }
    #[track_caller]
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log)
    }
    #[track_caller]
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt)
    }
    #[track_caller]
    pub fn rsqrt(&self) -> Tensor {
        self.unary(UnaryOp::Rsqrt)
    }
    #[track_caller]
    pub fn recip(&self) -> Tensor {
        self.unary(UnaryOp::Recip)
    }
    #[track_caller]
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs)
    }
    #[track_caller]
    pub fn sign(&self) -> Tensor {
        self.unary(UnaryOp::Sign)
    }
    #[track_caller]
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh)
    }
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor {
        self.unary(UnaryOp::Sigmoid)
    }
    #[track_caller]
    pub fn relu(&self) -> Tensor {
        self.unary(UnaryOp::Relu)
    }
    #[track_caller]
    pub fn sin(&self) -> Tensor {
        self.unary(UnaryOp::Sin)
    }
    #[track_caller]
    pub fn cos(&self) -> Tensor {
        self.unary(UnaryOp::Cos)
    }
    /// `self ^ exponent` for a compile-time exponent.
    #[track_caller]
    pub fn powf(&self, exponent: f64) -> Tensor {
        self.b.node(Op::PowConst { exponent }, &[self], None)
    }
    #[track_caller]
    pub fn square(&self) -> Tensor {
        self.binary(self, BinaryOp::Mul)
    }

    // ----- binary (NumPy broadcasting) -----
    #[track_caller]
    pub fn add(&self, o: impl Operand) -> Tensor {
        self.binary(&o.to_tensor(self), BinaryOp::Add)
    }
    #[track_caller]
    pub fn sub(&self, o: impl Operand) -> Tensor {
        self.binary(&o.to_tensor(self), BinaryOp::Sub)
    }
    #[track_caller]
    pub fn mul(&self, o: impl Operand) -> Tensor {
        self.binary(&o.to_tensor(self), BinaryOp::Mul)
    }
    #[track_caller]
    pub fn div(&self, o: impl Operand) -> Tensor {
        self.binary(&o.to_tensor(self), BinaryOp::Div)
    }
    #[track_caller]
    pub fn maximum(&self, o: impl Operand) -> Tensor {
        self.binary(&o.to_tensor(self), BinaryOp::Max)
    }
    #[track_caller]
    pub fn minimum(&self, o: impl Operand) -> Tensor {
        self.binary(&o.to_tensor(self), BinaryOp::Min)
    }

    // ----- comparisons (bool result) -----
    #[track_caller]
    pub fn lt(&self, o: impl Operand) -> Tensor {
        self.compare(&o.to_tensor(self), CompareOp::Lt)
    }
    #[track_caller]
    pub fn le(&self, o: impl Operand) -> Tensor {
        self.compare(&o.to_tensor(self), CompareOp::Le)
    }
    #[track_caller]
    pub fn gt(&self, o: impl Operand) -> Tensor {
        self.compare(&o.to_tensor(self), CompareOp::Gt)
    }
    #[track_caller]
    pub fn ge(&self, o: impl Operand) -> Tensor {
        self.compare(&o.to_tensor(self), CompareOp::Ge)
    }
    #[track_caller]
    pub fn eq(&self, o: impl Operand) -> Tensor {
        self.compare(&o.to_tensor(self), CompareOp::Eq)
    }
    #[track_caller]
    pub fn ne(&self, o: impl Operand) -> Tensor {
        self.compare(&o.to_tensor(self), CompareOp::Ne)
    }

    /// `where(self, on_true, on_false)`; `self` is the bool condition. All three broadcast.
    #[track_caller]
    pub fn select(&self, on_true: impl Operand, on_false: impl Operand) -> Tensor {
        // A plain number takes the dtype of the other branch (f32 when both are numbers).
        let (t, f) = match (on_true.as_number(), on_false.as_number()) {
            (Some(a), Some(c)) => (self.b.constant(a, DType::F32), self.b.constant(c, DType::F32)),
            (Some(_), None) => {
                let f = on_false.to_tensor(self);
                (on_true.to_tensor(&f), f)
            }
            _ => {
                let t = on_true.to_tensor(self);
                (t.clone(), on_false.to_tensor(&t))
            }
        };
        let (c, t2) = self.broadcast_pair(&t, "select");
        let (c, f2) = c.broadcast_pair(&f, "select");
        let (t3, f3) = t2.broadcast_pair(&f2, "select");
        let (c, t3) = c.broadcast_pair(&t3, "select");
        self.b.node(Op::Select, &[&c, &t3, &f3], None)
    }

    #[track_caller]
    pub fn cast(&self, dtype: DType) -> Tensor {
        if self.id.is_some() && self.dtype() == dtype {
            return self.clone();
        }
        self.b
            .node(Op::Cast, &[self], Some(TensorType::new(self.shape(), dtype)))
    }

    // ----- reductions -----
    #[track_caller]
    fn reduce(&self, op: ReduceOp, axes: &[usize], keepdims: bool) -> Tensor {
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        self.b.node(Op::Reduce { op, axes, keepdims }, &[self], None)
    }
    #[track_caller]
    pub fn sum(&self, axes: &[usize], keepdims: bool) -> Tensor {
        self.reduce(ReduceOp::Sum, axes, keepdims)
    }
    #[track_caller]
    pub fn mean(&self, axes: &[usize], keepdims: bool) -> Tensor {
        self.reduce(ReduceOp::Mean, axes, keepdims)
    }
    #[track_caller]
    pub fn max(&self, axes: &[usize], keepdims: bool) -> Tensor {
        self.reduce(ReduceOp::Max, axes, keepdims)
    }
    #[track_caller]
    pub fn min(&self, axes: &[usize], keepdims: bool) -> Tensor {
        self.reduce(ReduceOp::Min, axes, keepdims)
    }
    /// Sum of all elements, shape [].
    #[track_caller]
    pub fn sum_all(&self) -> Tensor {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.reduce(ReduceOp::Sum, &axes, false)
    }
    /// Mean of all elements, shape [].
    #[track_caller]
    pub fn mean_all(&self) -> Tensor {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.reduce(ReduceOp::Mean, &axes, false)
    }
    #[track_caller]
    pub fn argmax(&self, axis: usize) -> Tensor {
        self.b.node(Op::ArgMax { axis }, &[self], None)
    }

    // ----- movement -----
    #[track_caller]
    pub fn reshape(&self, shape: impl Into<Shape>) -> Tensor {
        let shape = shape.into();
        if self.id.is_some() && self.shape() == shape {
            return self.clone();
        }
        self.b
            .node(Op::Reshape, &[self], Some(TensorType::new(shape, self.dtype())))
    }
    /// NumPy broadcast to `shape` (an `expand` node; no-op if already that shape).
    #[track_caller]
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Tensor {
        let shape = shape.into();
        if self.id.is_some() && self.shape() == shape {
            return self.clone();
        }
        self.b
            .node(Op::Expand, &[self], Some(TensorType::new(shape, self.dtype())))
    }
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        self.b.node(Op::Permute { perm: perm.to_vec() }, &[self], None)
    }
    /// Swap two axes.
    #[track_caller]
    pub fn transpose(&self, a: usize, b: usize) -> Tensor {
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        if a < perm.len() && b < perm.len() {
            perm.swap(a, b);
        }
        self.permute(&perm)
    }
    /// Swap the last two axes (matrix transpose, batched).
    #[track_caller]
    pub fn t(&self) -> Tensor {
        let r = self.rank();
        if r < 2 {
            return self.b.fail(
                IrError::Shape {
                    op: "permute",
                    detail: format!("t() needs rank >= 2, got {}", self.shape()),
                },
                std::panic::Location::caller(),
            );
        }
        self.transpose(r - 2, r - 1)
    }
    #[track_caller]
    pub fn slice(&self, starts: &[usize], ends: &[usize], steps: &[usize]) -> Tensor {
        let op = Op::Slice {
            starts: starts.to_vec(),
            ends: ends.to_vec(),
            steps: steps.to_vec(),
        };
        self.b.node(op, &[self], None)
    }
    /// `len` elements of `axis` starting at `start`.
    #[track_caller]
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        let dims = self.dims();
        let mut starts = vec![0; dims.len()];
        let mut ends = dims.clone();
        if axis < dims.len() {
            starts[axis] = start;
            ends[axis] = start + len;
        }
        self.slice(&starts, &ends, &vec![1; dims.len()])
    }
    #[track_caller]
    pub fn pad(&self, low: &[usize], high: &[usize], value: f64) -> Tensor {
        self.b.node(
            Op::Pad {
                low: low.to_vec(),
                high: high.to_vec(),
                value,
            },
            &[self],
            None,
        )
    }
    /// Join `self` and `others` along `axis`.
    #[track_caller]
    pub fn concat(&self, others: &[&Tensor], axis: usize) -> Tensor {
        let mut all = vec![self];
        all.extend_from_slice(others);
        self.b.node(Op::Concat { axis }, &all, None)
    }

    // ----- contractions, indexing, windows, randomness -----
    /// Batched matmul `[..., m, k] @ [..., k, n]` with broadcast batch dims.
    #[track_caller]
    pub fn matmul(&self, rhs: &Tensor) -> Tensor {
        self.b.node(Op::MatMul, &[self, rhs], None)
    }
    /// Rows of `self` (axis 0) picked by i32 `indices`.
    #[track_caller]
    pub fn gather(&self, indices: &Tensor) -> Tensor {
        self.b.node(Op::Gather, &[self, indices], None)
    }
    /// f32 one-hot encoding of i32 class indices.
    #[track_caller]
    pub fn one_hot(&self, depth: usize) -> Tensor {
        self.b.node(Op::OneHot { depth }, &[self], None)
    }
    #[track_caller]
    pub fn unfold2d(&self, window: Window2d) -> Tensor {
        self.b.node(Op::Unfold2d(window), &[self], None)
    }
    #[track_caller]
    pub fn fold2d(&self, window: Window2d, size: [usize; 2]) -> Tensor {
        self.b.node(Op::Fold2d { window, size }, &[self], None)
    }

    /// 2-D convolution, NCHW input, weight `[O, C, KH, KW]`, as unfold + matmul.
    #[track_caller]
    pub fn conv2d(&self, weight: &Tensor, stride: [usize; 2], padding: [usize; 2]) -> Tensor {
        let wd = weight.dims();
        let xd = self.dims();
        if wd.len() != 4 || xd.len() != 4 || wd[1] != xd[1] {
            return self.b.fail(
                IrError::Shape {
                    op: "conv2d",
                    detail: format!(
                        "expects input [N, C, H, W] and weight [O, C, KH, KW] with equal C, got {} and {}",
                        self.shape(),
                        weight.shape()
                    ),
                },
                std::panic::Location::caller(),
            );
        }
        let window = Window2d {
            kernel: [wd[2], wd[3]],
            stride,
            padding,
        };
        let Some([oh, ow]) = window.output_size(xd[2], xd[3]) else {
            return self.unfold2d(window); // reports the geometry error
        };
        let cols = self.unfold2d(window); // [N, C*KH*KW, OH*OW]
        let w2 = weight.reshape([wd[0], wd[1] * wd[2] * wd[3]]);
        w2.matmul(&cols).reshape([xd[0], wd[0], oh, ow])
    }

    /// Random numbers of `shape` keyed by i32 scalars `seed` and `step` (Philox 4x32-10).
    #[track_caller]
    pub fn random(seed: &Tensor, step: &Tensor, shape: impl Into<Shape>, dist: Distribution, stream: u32) -> Tensor {
        seed.b.node(
            Op::Random { dist, stream },
            &[seed, step],
            Some(TensorType::new(shape, DType::F32)),
        )
    }
}

macro_rules! bin_trait {
    ($tr:ident, $m:ident) => {
        impl<R: Operand> $tr<R> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: R) -> Tensor {
                Tensor::$m(self, rhs)
            }
        }
        impl<R: Operand> $tr<R> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: R) -> Tensor {
                Tensor::$m(&self, rhs)
            }
        }
        impl $tr<&Tensor> for f64 {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Tensor) -> Tensor {
                Tensor::$m(&rhs.b.constant(self, rhs.dtype()), rhs)
            }
        }
        impl $tr<Tensor> for f64 {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: Tensor) -> Tensor {
                Tensor::$m(&rhs.b.constant(self, rhs.dtype()), &rhs)
            }
        }
    };
}
bin_trait!(Add, add);
bin_trait!(Sub, sub);
bin_trait!(Mul, mul);
bin_trait!(Div, div);

impl Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}
impl Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
