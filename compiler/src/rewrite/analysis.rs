//! The e-class analysis of the rewriter (`KAnalysis`, `Data`): every e-class carries
//! its result type, its value when all elements are one known constant, and the
//! value-range facts the rules' guards need (finite, non-negative, positive, never
//! -0). Constant folding happens here, with the reference interpreter's own scalar
//! semantics (`kiln_ir::interp::eval_op`), and a constant e-class gains its `const`
//! e-node.
//!
//! Every fact is a guarantee for ALL inputs, on every backend: `finite` allows for f32
//! overflow (a sum of finite f32 values may be inf), `positive` for underflow (a
//! product of positive values may be 0). This module must not rewrite: apart from the
//! `const` e-node of a constant class it never adds or merges anything.

use egg::{Analysis, DidMerge, Id};
use kiln_ir::interp::eval_op;
use kiln_ir::{BinaryOp, DType, Distribution, NodeId, ReduceOp, Shape, TensorType, UnaryOp, Value};

use super::language::{float_bits, infer_type, root_type, KGraph, KNode, KOp};

/// What the analysis knows about one e-class.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    /// Shape and dtype (every node of the class has it; rewrites never change it).
    pub ty: TensorType,
    /// Every element equals this value (NaN canonical, -0 kept).
    pub constant: Option<f64>,
    /// No element is NaN or ±inf.
    pub finite: bool,
    /// No element is < 0 (NaN and -0 allowed).
    pub nonneg: bool,
    /// No element is <= 0 (NaN allowed).
    pub positive: bool,
    /// No element is -0.0 (the signed-zero guard of `x + 0 -> x` and friends).
    pub no_negzero: bool,
}

/// The range facts of a value (see `Data`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Facts {
    finite: bool,
    nonneg: bool,
    positive: bool,
    no_negzero: bool,
}

impl Facts {
    fn of(d: &Data) -> Facts {
        Facts {
            finite: d.finite,
            nonneg: d.nonneg,
            positive: d.positive,
            no_negzero: d.no_negzero,
        }
    }

    /// Facts that hold for every element of a value whose dtype is `dtype`.
    fn of_dtype(dtype: DType) -> Facts {
        match dtype {
            DType::I32 => Facts {
                finite: true,
                no_negzero: true,
                ..Facts::default()
            },
            DType::Bool => Facts {
                finite: true,
                nonneg: true,
                no_negzero: true,
                ..Facts::default()
            },
            _ => Facts::default(),
        }
    }

    fn or(self, o: Facts) -> Facts {
        Facts {
            finite: self.finite || o.finite,
            nonneg: self.nonneg || o.nonneg || self.positive || o.positive,
            positive: self.positive || o.positive,
            no_negzero: self.no_negzero || o.no_negzero,
        }
    }

    fn and(self, o: Facts) -> Facts {
        Facts {
            finite: self.finite && o.finite,
            nonneg: self.nonneg && o.nonneg,
            positive: self.positive && o.positive,
            no_negzero: self.no_negzero && o.no_negzero,
        }
    }

    fn of_value(c: f64) -> Facts {
        Facts {
            finite: c.is_finite(),
            nonneg: c >= 0.0 || c.is_nan(),
            positive: c > 0.0 || c.is_nan(),
            no_negzero: float_bits(c) != float_bits(-0.0),
        }
    }
}

fn data(ty: TensorType, constant: Option<f64>, f: Facts) -> Data {
    Data {
        ty,
        constant,
        finite: f.finite,
        nonneg: f.nonneg || f.positive,
        positive: f.positive,
        no_negzero: f.no_negzero,
    }
}

/// The graph's sources (indexed by `KOp::Source`) and bookkeeping for the analysis.
#[derive(Clone, Debug, Default)]
pub struct KAnalysis {
    /// Type of each source, by source-table index.
    pub sources: Vec<TensorType>,
    /// The original node of each source, by source-table index.
    pub source_nodes: Vec<NodeId>,
    /// Nodes added whose type the IR rejected, or merges of differently typed
    /// e-classes (always 0 unless a rule is wrong; the rewriter then keeps its input).
    pub type_errors: usize,
}

fn same_bits(a: f64, b: f64) -> bool {
    float_bits(a) == float_bits(b)
}

/// Value of the splat `op` on scalar operands, with the interpreter's semantics.
fn fold_scalar(op: &KOp, ty: &TensorType, args: &[f64], arg_types: &[&TensorType]) -> Option<f64> {
    let ir = op.to_op()?;
    let values: Vec<Value> = args
        .iter()
        .zip(arg_types)
        .map(|(&v, t)| Value::scalar(v, t.dtype))
        .collect();
    let refs: Vec<&Value> = values.iter().collect();
    let out = eval_op(&ir, &TensorType::new(Shape::scalar(), ty.dtype), &refs).ok()?;
    out.data.first().copied()
}

/// Splat value of a node whose operands are known, following `kiln_ir::interp`
/// (reductions accumulate from +0 in f64; i32 sums wrap; empty reductions give the
/// documented values).
fn fold(op: &KOp, ty: &TensorType, kids: &[&Data]) -> Option<f64> {
    let c = |i: usize| kids.get(i).and_then(|d| d.constant);
    let arg_types: Vec<&TensorType> = kids.iter().map(|d| &d.ty).collect();
    match op {
        KOp::Const { bits, .. } => Some(f64::from_bits(*bits)),
        KOp::Unary(_) | KOp::Binary(_) | KOp::Pow(_) | KOp::Compare(_) | KOp::Select | KOp::Cast(_) => {
            let args: Option<Vec<f64>> = (0..kids.len()).map(c).collect();
            fold_scalar(op, ty, &args?, &arg_types)
        }
        KOp::Reshape(_) | KOp::Expand(_) | KOp::Permute(_) | KOp::Slice { .. } => c(0),
        KOp::Reduce { op: r, axes, .. } => {
            let v = c(0)?;
            let dims = kids[0].ty.shape.dims();
            let n: usize = axes.iter().map(|&a| dims[a]).product();
            let int = ty.dtype == DType::I32;
            Some(match (r, n) {
                (ReduceOp::Sum, _) if int => (v as i32 as u32).wrapping_mul(n as u32) as i32 as f64,
                // Accumulating from +0: a sum is never -0.
                (ReduceOp::Sum, _) => 0.0 + v * n as f64,
                (ReduceOp::Mean, 0) => f64::NAN,
                (ReduceOp::Mean, _) => 0.0 + v,
                (ReduceOp::Max, 0) if int => i32::MIN as f64,
                (ReduceOp::Max, 0) => f64::NEG_INFINITY,
                (ReduceOp::Min, 0) if int => i32::MAX as f64,
                (ReduceOp::Min, 0) => f64::INFINITY,
                (ReduceOp::Max | ReduceOp::Min, _) => v,
            })
        }
        KOp::ArgMax(_) => c(0).map(|_| 0.0),
        KOp::Pad { low, high, value } => {
            let v = c(0)?;
            let no_pad = low.iter().chain(high).all(|&p| p == 0);
            (no_pad || same_bits(v, f64::from_bits(*value))).then_some(v)
        }
        KOp::Concat(_) => {
            let v = c(0)?;
            (0..kids.len())
                .all(|i| c(i).is_some_and(|w| same_bits(v, w)))
                .then_some(v)
        }
        KOp::MatMul => {
            let (a, b) = (c(0)?, c(1)?);
            let k = kids[0].ty.shape.dims().last().copied()?;
            Some(if k == 0 { 0.0 } else { 0.0 + a * b * k as f64 })
        }
        KOp::Unfold2d(w) => {
            let v = c(0)?;
            (w.padding == [0, 0] || same_bits(v, 0.0)).then_some(v)
        }
        KOp::Fold2d { .. } | KOp::Gather => {
            let v = c(0)?;
            same_bits(v, 0.0).then_some(v)
        }
        _ => None,
    }
    .map(|v| ty.dtype.quantize(v))
}

/// Range facts of a node from its operands' facts. `square`: the node's two operands
/// are the same e-class (`x * x` is never < 0).
fn facts(op: &KOp, ty: &TensorType, kids: &[&Data], square: bool) -> Facts {
    let k: Vec<Facts> = kids.iter().map(|d| Facts::of(d)).collect();
    let f0 = k.first().copied().unwrap_or_default();
    let all = k.iter().fold(
        Facts {
            finite: true,
            nonneg: true,
            positive: true,
            no_negzero: true,
        },
        |acc, f| acc.and(*f),
    );
    let fact = |finite, nonneg, positive, no_negzero| Facts {
        finite,
        nonneg,
        positive,
        no_negzero,
    };
    let computed = match op {
        KOp::Iota { .. } | KOp::OneHot(_) | KOp::ArgMax(_) | KOp::Compare(_) => fact(true, true, false, true),
        KOp::Random { dist, .. } => {
            let uniform = *dist == Distribution::Uniform;
            fact(true, uniform, uniform, true)
        }
        KOp::Unary(u) => match u {
            UnaryOp::Neg => fact(f0.finite, false, false, false),
            UnaryOp::Exp => fact(false, true, false, true),
            UnaryOp::Log => fact(false, false, false, true),
            UnaryOp::Sqrt => fact(f0.finite && f0.nonneg, true, f0.positive, f0.no_negzero),
            UnaryOp::Rsqrt => fact(false, f0.positive, false, true),
            UnaryOp::Recip => fact(false, f0.positive, false, f0.nonneg && f0.no_negzero),
            UnaryOp::Abs => fact(f0.finite, true, f0.positive, true),
            UnaryOp::Sign => fact(f0.finite, f0.nonneg, f0.positive, true),
            UnaryOp::Tanh | UnaryOp::Sin => fact(f0.finite, f0.nonneg && *u == UnaryOp::Tanh, false, f0.no_negzero),
            UnaryOp::Sigmoid => fact(f0.finite, true, false, true),
            UnaryOp::Relu => fact(f0.finite, true, f0.positive, true),
            UnaryOp::Cos => fact(f0.finite, false, false, true),
        },
        KOp::Binary(b) => {
            let (a, c) = (k[0], k[1]);
            let unsigned = |f: Facts| f.nonneg && f.no_negzero;
            match b {
                BinaryOp::Add => fact(
                    false,
                    a.nonneg && c.nonneg,
                    (a.positive && c.nonneg) || (a.nonneg && c.positive),
                    a.no_negzero || c.no_negzero,
                ),
                // a - b is -0 only for a = -0, b = +0.
                BinaryOp::Sub => fact(false, false, false, a.no_negzero),
                BinaryOp::Mul => fact(
                    false,
                    square || (a.nonneg && c.nonneg),
                    false,
                    square || (unsigned(a) && unsigned(c)),
                ),
                BinaryOp::Div => fact(false, a.nonneg && c.positive, false, unsigned(a) && unsigned(c)),
                BinaryOp::Max => fact(
                    a.finite && c.finite,
                    a.nonneg || c.nonneg,
                    a.positive || c.positive,
                    a.no_negzero && c.no_negzero,
                ),
                BinaryOp::Min => fact(
                    a.finite && c.finite,
                    a.nonneg && c.nonneg,
                    a.positive && c.positive,
                    a.no_negzero && c.no_negzero,
                ),
            }
        }
        KOp::Pow(e) => {
            let e = f64::from_bits(*e);
            let even = e.fract() == 0.0 && (e / 2.0).fract() == 0.0;
            // An odd power of a tiny negative number underflows to -0.
            fact(false, f0.nonneg || even, false, (f0.nonneg && f0.no_negzero) || even)
        }
        KOp::Select => k[1].and(k[2]),
        KOp::Cast(_) => {
            let from_int = !kids[0].ty.dtype.is_float();
            fact(
                f0.finite || from_int,
                f0.nonneg,
                f0.positive && ty.dtype.is_float(),
                f0.no_negzero || from_int,
            )
        }
        KOp::Reduce { op: r, axes, .. } => {
            let dims = kids[0].ty.shape.dims();
            let n: usize = axes.iter().map(|&a| dims[a]).product();
            match r {
                // Accumulated from +0: a sum is never -0; a mean of a tiny negative
                // sum can underflow to -0.
                ReduceOp::Sum => fact(false, f0.nonneg, false, true),
                ReduceOp::Mean => fact(false, f0.nonneg, false, f0.nonneg),
                ReduceOp::Max | ReduceOp::Min => {
                    let some = n > 0;
                    fact(f0.finite && some, f0.nonneg && some, f0.positive && some, f0.no_negzero)
                }
            }
        }
        KOp::Reshape(_) | KOp::Expand(_) | KOp::Permute(_) | KOp::Slice { .. } => f0,
        KOp::Pad { value, .. } => f0.and(Facts::of_value(f64::from_bits(*value))),
        KOp::Concat(_) => all,
        KOp::MatMul => fact(false, all.nonneg, false, true),
        KOp::Gather => fact(f0.finite, f0.nonneg, false, f0.no_negzero),
        KOp::Unfold2d(w) => fact(f0.finite, f0.nonneg, f0.positive && w.padding == [0, 0], f0.no_negzero),
        // col2im accumulates from +0.
        KOp::Fold2d { .. } => fact(false, f0.nonneg, false, true),
        KOp::Source(_) | KOp::Const { .. } | KOp::Root => Facts::default(),
    };
    computed.or(Facts::of_dtype(ty.dtype))
}

impl Analysis<KNode> for KAnalysis {
    type Data = Data;

    fn make(egraph: &mut KGraph, enode: &KNode, _id: Id) -> Data {
        let kids: Vec<&Data> = enode.children.iter().map(|&c| &egraph[c].data).collect();
        let types: Vec<&TensorType> = kids.iter().map(|d| &d.ty).collect();
        let Some(ty) = infer_type(&enode.op, &types, &egraph.analysis.sources) else {
            // Unreachable for translated graphs and checked rule output; recorded so
            // the rewriter can refuse the result instead of producing a bad graph.
            egraph.analysis.type_errors += 1;
            return data(root_type(), None, Facts::default());
        };
        if matches!(enode.op, KOp::Source(_) | KOp::Root) {
            let f = Facts::of_dtype(ty.dtype);
            return data(ty, None, f);
        }
        if let Some(c) = fold(&enode.op, &ty, &kids) {
            let c = f64::from_bits(float_bits(c));
            return data(ty, Some(c), Facts::of_value(c));
        }
        let square = matches!(enode.children.as_slice(), [a, b] if egraph.find(*a) == egraph.find(*b));
        let f = facts(&enode.op, &ty, &kids, square);
        data(ty, None, f)
    }

    fn merge(&mut self, to: &mut Data, from: Data) -> DidMerge {
        if to.ty != from.ty {
            // Rules are type-checked before they touch the e-graph; a mismatch means a
            // bug. Keep `to` and count it so the result is refused.
            self.type_errors += 1;
            return DidMerge(false, true);
        }
        let mut changed_to = false;
        let mut changed_from = false;
        match (to.constant, from.constant) {
            (None, Some(c)) => {
                to.constant = Some(c);
                changed_to = true;
            }
            (Some(_), None) => changed_from = true,
            (Some(a), Some(b)) => changed_from |= !same_bits(a, b),
            (None, None) => {}
        }
        let (old, new) = (Facts::of(to), Facts::of(&from));
        let merged = old.or(new);
        changed_to |= merged != old;
        changed_from |= merged != new;
        to.finite = merged.finite;
        to.nonneg = merged.nonneg;
        to.positive = merged.positive;
        to.no_negzero = merged.no_negzero;
        DidMerge(changed_to, changed_from)
    }

    fn modify(egraph: &mut KGraph, id: Id) {
        let data = &egraph[id].data;
        let Some(c) = data.constant else { return };
        let op = KOp::Const {
            bits: float_bits(c),
            shape: data.ty.shape.clone(),
            dtype: data.ty.dtype,
        };
        if egraph[id].nodes.iter().any(|n| n.op == op) {
            return;
        }
        let added = egraph.add(KNode::new(op, vec![]));
        egraph.union(id, added);
    }
}
