//! Algebra-phase rules: reassociation of scalar constants, strength reduction
//! (`x/c`, `a/sqrt b`, `recip`), sign pulling, guarded common factors, and
//! reduce/broadcast algebra (a reduction of a broadcast, of a reduction, of a negation
//! or of a constant multiple; matmul of a constant multiple). Guards follow the float
//! policy in `rewrite/mod.rs`: a constant factor is only moved across a sum, a
//! reduction or a matmul when it is finite and > 0, so NaN/Inf patterns and the signs
//! of zeros survive.

use egg::Id;
use kiln_ir::{BinaryOp, DType, ReduceOp, Shape, TensorType, UnaryOp};

use super::{f32_normal, reduce_kind, reduced_shape, Cx, Phase, Rule};
use crate::rewrite::language::KOp;

use BinaryOp::{Add, Div, Mul, Sub};

fn r(name: &'static str, triggers: &[KOp], body: fn(&mut Cx)) -> Rule {
    Rule::new(name, Phase::Algebra, triggers, body)
}

pub(super) fn rules() -> Vec<Rule> {
    let bin = KOp::Binary;
    let un = KOp::Unary;
    let all_reduces: Vec<KOp> = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min]
        .map(reduce_kind)
        .to_vec();
    vec![
        r("sub-const", &[bin(Sub)], sub_const),
        r("div-const", &[bin(Div)], div_const),
        r("mul-const-assoc", &[bin(Mul)], mul_const_assoc),
        r("add-const-assoc", &[bin(Add)], add_const_assoc),
        r("mul-const-out", &[bin(Mul)], mul_const_out),
        r("mul-neg-const", &[bin(Mul)], mul_neg_const),
        r("add-self", &[bin(Add)], add_self),
        r("neg-out", &[bin(Mul), bin(Div)], neg_out),
        r("sub-neg", &[bin(Sub)], sub_neg),
        r("add-neg", &[bin(Add)], add_neg),
        r("div-sqrt", &[bin(Div)], div_sqrt),
        r("recip-sqrt", &[un(UnaryOp::Recip)], recip_sqrt),
        r("mul-recip", &[bin(Mul)], mul_recip),
        r("div-rsqrt", &[bin(Div)], div_rsqrt),
        r("sqrt-square", &[bin(Mul)], sqrt_square),
        r("factor", &[bin(Add), bin(Sub)], factor),
        r("reduce-expand", &all_reduces, reduce_expand),
        r("reduce-reduce", &all_reduces, reduce_reduce),
        r("reduce-neg", &all_reduces, reduce_neg),
        r("reduce-scale", &all_reduces, reduce_scale),
        r("matmul-scale", &[KOp::MatMul], matmul_scale),
    ]
}

/// Negation of a constant in the dtype's arithmetic (i32 wraps).
fn neg_value(v: f64, dtype: DType) -> f64 {
    if dtype == DType::I32 {
        (v as i32).wrapping_neg() as f64
    } else {
        -v
    }
}

/// The operands of a commutative node as `(x, constant)` pairs, `x` non-constant.
fn split_const(cx: &Cx) -> Vec<(Id, Id, f64)> {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    [(a, b), (b, a)]
        .into_iter()
        .filter_map(|(x, c)| match (cx.konst(x), cx.konst(c)) {
            (None, Some(v)) => Some((x, c, v)),
            _ => None,
        })
        .collect()
}

/// Both orders of the operands of the `Binary(b)` nodes in e-class `id`.
fn binary_any_order(cx: &Cx, id: Id, b: BinaryOp) -> Vec<(Id, Id)> {
    cx.binary_in(id, b).flat_map(|(x, y)| [(x, y), (y, x)]).collect()
}

/// x - c -> x + (-c) (exact).
fn sub_const(cx: &mut Cx) {
    let [x, c] = [cx.args()[0], cx.args()[1]];
    let (None, Some(v)) = (cx.konst(x), cx.konst(c)) else {
        return;
    };
    if v == 0.0 || v.is_nan() {
        return;
    }
    let ty = cx.ty(c).clone();
    let mut r = cx.rhs();
    let t = r.class(x);
    let k = r.constant(neg_value(v, ty.dtype), &ty);
    let out = r.binary(Add, t, k);
    cx.emit(r, out);
}

/// Whether |v| is a power of two (1/v is then exact).
fn power_of_two(v: f64) -> bool {
    let m = v.abs();
    m.is_finite() && m > 0.0 && m == 2f64.powi(m.log2().round() as i32)
}

/// x / c -> x * (1/c) for finite nonzero c with a normal f32 reciprocal; when
/// `reciprocal_constants` is off, only where 1/c is exact (c a power of two).
fn div_const(cx: &mut Cx) {
    let [x, c] = [cx.args()[0], cx.args()[1]];
    let (None, Some(v)) = (cx.konst(x), cx.konst(c)) else {
        return;
    };
    let inv = 1.0 / v;
    if v.abs() == 1.0 || !f32_normal(v) || !f32_normal(inv) {
        return;
    }
    if !cx.opts.reciprocal_constants && !power_of_two(v) {
        return;
    }
    let ty = cx.ty(c).clone();
    let mut r = cx.rhs();
    let t = r.class(x);
    let k = r.constant(inv, &ty);
    let out = r.binary(Mul, t, k);
    cx.emit(r, out);
}

/// Folded constant of `op(c1, c2)` for reassociation, or `None` when the guard fails:
/// floats must stay finite, nonzero (for products) and within the f32 normal range.
fn fold_pair(op: BinaryOp, c1: f64, c2: f64, dtype: DType) -> Option<f64> {
    if dtype == DType::I32 {
        let (a, b) = (c1 as i32, c2 as i32);
        return Some(match op {
            Mul => a.wrapping_mul(b),
            _ => a.wrapping_add(b),
        } as f64);
    }
    if !(c1.is_finite() && c2.is_finite()) {
        return None;
    }
    match op {
        Mul => {
            let p = c1 * c2;
            (c1 != 0.0 && c2 != 0.0 && f32_normal(p)).then_some(p)
        }
        _ => {
            let s = c1 + c2;
            (s.abs() <= f32::MAX as f64).then_some(s)
        }
    }
}

/// (x op c1) op c2 -> x op (c1 op c2) for op in {*, +}.
fn const_assoc(cx: &mut Cx, op: BinaryOp) {
    for (y, c2_class, c2) in split_const(cx) {
        let dtype = cx.ty(c2_class).dtype;
        for (x, c1_class) in binary_any_order(cx, y, op) {
            let (None, Some(c1)) = (cx.konst(x), cx.konst(c1_class)) else {
                continue;
            };
            let Some(k) = fold_pair(op, c1, c2, dtype) else {
                continue;
            };
            let ty = cx.ty(c2_class).clone();
            let mut r = cx.rhs();
            let t = r.class(x);
            let kc = r.constant(k, &ty);
            let out = r.binary(op, t, kc);
            cx.emit(r, out);
        }
    }
}

fn mul_const_assoc(cx: &mut Cx) {
    const_assoc(cx, Mul)
}

fn add_const_assoc(cx: &mut Cx) {
    const_assoc(cx, Add)
}

/// (x * c) * y -> (x * y) * c for a finite nonzero constant c and non-constant y:
/// constants move outwards past runtime factors so `mul-const-assoc` can fold them
/// (`m * 10 * t * 0.001 -> m * t * 0.01`). Only constants move, so this cannot
/// cycle or blow up.
fn mul_const_out(cx: &mut Cx) {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    for (inner, y) in [(a, b), (b, a)] {
        if cx.konst(y).is_some() {
            continue;
        }
        for (x, c) in binary_any_order(cx, inner, Mul) {
            if cx.konst(x).is_some() || cx.safe_factor(c).is_none() {
                continue;
            }
            let mut r = cx.rhs();
            let (tx, ty, tc) = (r.class(x), r.class(y), r.class(c));
            let xy = r.binary(Mul, tx, ty);
            let out = r.binary(Mul, xy, tc);
            cx.emit(r, out);
        }
    }
}

/// (-x) * c -> x * (-c) (exact).
fn mul_neg_const(cx: &mut Cx) {
    for (y, c_class, c) in split_const(cx) {
        let negs: Vec<Id> = cx.unary_in(y, UnaryOp::Neg).collect();
        for x in negs {
            let ty = cx.ty(c_class).clone();
            let mut r = cx.rhs();
            let t = r.class(x);
            let k = r.constant(neg_value(c, ty.dtype), &ty);
            let out = r.binary(Mul, t, k);
            cx.emit(r, out);
        }
    }
}

/// x + x -> x * 2 (exact).
fn add_self(cx: &mut Cx) {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    if cx.same(a, b) && cx.konst(a).is_none() {
        let ty = cx.ty(a).clone();
        let mut r = cx.rhs();
        let t = r.class(a);
        let two = r.constant(2.0, &ty);
        let out = r.binary(Mul, t, two);
        cx.emit(r, out);
    }
}

/// (-a) * b -> -(a * b), a * (-b) -> -(a * b), and the same for `/` (exact).
fn neg_out(cx: &mut Cx) {
    let KOp::Binary(op) = cx.node.op else { return };
    let [a, b] = [cx.args()[0], cx.args()[1]];
    let left: Vec<(Id, Id)> = cx.unary_in(a, UnaryOp::Neg).map(|x| (x, b)).collect();
    let right: Vec<(Id, Id)> = cx.unary_in(b, UnaryOp::Neg).map(|y| (a, y)).collect();
    for (x, y) in left.into_iter().chain(right) {
        let mut r = cx.rhs();
        let (tx, ty) = (r.class(x), r.class(y));
        let m = r.binary(op, tx, ty);
        let out = r.unary(UnaryOp::Neg, m);
        cx.emit(r, out);
    }
}

/// a - (-b) -> a + b.
fn sub_neg(cx: &mut Cx) {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    let inner: Vec<Id> = cx.unary_in(b, UnaryOp::Neg).collect();
    for y in inner {
        let mut r = cx.rhs();
        let (ta, ty) = (r.class(a), r.class(y));
        let out = r.binary(Add, ta, ty);
        cx.emit(r, out);
    }
}

/// a + (-b) -> a - b, (-a) + b -> b - a.
fn add_neg(cx: &mut Cx) {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    let right: Vec<(Id, Id)> = cx.unary_in(b, UnaryOp::Neg).map(|y| (a, y)).collect();
    let left: Vec<(Id, Id)> = cx.unary_in(a, UnaryOp::Neg).map(|x| (b, x)).collect();
    for (p, q) in right.into_iter().chain(left) {
        let mut r = cx.rhs();
        let (tp, tq) = (r.class(p), r.class(q));
        let out = r.binary(Sub, tp, tq);
        cx.emit(r, out);
    }
}

/// a / sqrt(b) -> a * rsqrt(b).
fn div_sqrt(cx: &mut Cx) {
    let [a, d] = [cx.args()[0], cx.args()[1]];
    let inner: Vec<Id> = cx.unary_in(d, UnaryOp::Sqrt).collect();
    for b in inner {
        let mut r = cx.rhs();
        let (ta, tb) = (r.class(a), r.class(b));
        let rs = r.unary(UnaryOp::Rsqrt, tb);
        let out = r.binary(Mul, ta, rs);
        cx.emit(r, out);
    }
}

/// 1 / sqrt(b) -> rsqrt(b) (the interpreter's definition of rsqrt).
fn recip_sqrt(cx: &mut Cx) {
    let inner: Vec<Id> = cx.unary_in(cx.args()[0], UnaryOp::Sqrt).collect();
    for b in inner {
        let mut r = cx.rhs();
        let tb = r.class(b);
        let out = r.unary(UnaryOp::Rsqrt, tb);
        cx.emit(r, out);
    }
}

/// a * recip(b) -> a / b (same NaN/Inf pattern: b = 0 and b = inf agree).
fn mul_recip(cx: &mut Cx) {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    let mut pairs: Vec<(Id, Id)> = cx.unary_in(b, UnaryOp::Recip).map(|y| (a, y)).collect();
    pairs.extend(cx.unary_in(a, UnaryOp::Recip).map(|y| (b, y)));
    for (x, y) in pairs {
        let mut r = cx.rhs();
        let (tx, ty) = (r.class(x), r.class(y));
        let out = r.binary(Div, tx, ty);
        cx.emit(r, out);
    }
}

/// a / rsqrt(b) -> a * sqrt(b) (b = 0 and b = inf agree). Not `a / recip(b) -> a * b`:
/// for b = -inf that one relies on `1/-inf` being -0, which the policy does not keep.
fn div_rsqrt(cx: &mut Cx) {
    let [a, d] = [cx.args()[0], cx.args()[1]];
    let rsqrts: Vec<Id> = cx.unary_in(d, UnaryOp::Rsqrt).collect();
    for b in rsqrts {
        let mut r = cx.rhs();
        let (ta, tb) = (r.class(a), r.class(b));
        let s = r.unary(UnaryOp::Sqrt, tb);
        let out = r.binary(Mul, ta, s);
        cx.emit(r, out);
    }
}

/// sqrt(x) * sqrt(x) -> x for x with no negative element and no -0 (sqrt(-0)^2 = +0).
fn sqrt_square(cx: &mut Cx) {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    if !cx.same(a, b) {
        return;
    }
    let inner: Vec<Id> = cx.unary_in(a, UnaryOp::Sqrt).collect();
    for x in inner {
        if cx.data(x).nonneg && cx.data(x).no_negzero {
            cx.emit_class(x);
        }
    }
}

/// k*b ± k*c -> k*(b ± c) for a finite constant k > 0 (for any other k the NaN
/// pattern changes: inf*0 + inf*1 is NaN but inf*(0+1) is not; and for k < 0 the
/// sign of a zero: -1*1 + -1*-1 = +0 but -1*(1 + -1) = -0).
fn factor(cx: &mut Cx) {
    let KOp::Binary(op) = cx.node.op else { return };
    let [l, rr] = [cx.args()[0], cx.args()[1]];
    let lefts = binary_any_order(cx, l, Mul);
    let rights = binary_any_order(cx, rr, Mul);
    for &(k, b) in &lefts {
        if !cx.safe_factor(k).is_some_and(|v| v > 0.0) {
            continue;
        }
        for &(k2, c) in &rights {
            if !cx.same(k, k2) {
                continue;
            }
            let mut r = cx.rhs();
            let (tb, tc, tk) = (r.class(b), r.class(c), r.class(k));
            let s = r.binary(op, tb, tc);
            let out = r.binary(Mul, s, tk);
            cx.emit(r, out);
        }
    }
}

fn reduce_payload(op: &KOp) -> Option<(ReduceOp, Vec<usize>, bool)> {
    match op {
        KOp::Reduce { op, axes, keepdims } => Some((*op, axes.clone(), *keepdims)),
        _ => None,
    }
}

/// reduce_R(expand(x)): reduce x over the axes of R it really has, broadcast the
/// result over the rest, and multiply a sum by the number of copies it added up
/// (`+ 0` keeps the sign of a zero result when x itself may be -0).
fn reduce_expand(cx: &mut Cx) {
    let Some((op, axes, keepdims)) = reduce_payload(&cx.node.op) else {
        return;
    };
    let y = cx.args()[0];
    let out_shape = cx.ty(y).shape.clone();
    if axes.is_empty() || out_shape.numel() == 0 {
        return;
    }
    let inner: Vec<(Shape, Id)> = cx
        .nodes(y)
        .iter()
        .filter_map(|n| match &n.op {
            KOp::Expand(s) => Some((s.clone(), n.children[0])),
            _ => None,
        })
        .collect();
    for (s_out, x) in inner {
        let s_in = cx.ty(x).shape.clone();
        let rank = s_out.rank();
        let mut pad = vec![1; rank - s_in.rank()];
        pad.extend_from_slice(s_in.dims());
        let broadcast = |i: usize| pad[i] == 1 && s_out.dims()[i] != 1;
        let r1: Vec<usize> = axes.iter().copied().filter(|&i| broadcast(i)).collect();
        let r2: Vec<usize> = axes.iter().copied().filter(|&i| !broadcast(i)).collect();
        let copies: usize = r1.iter().map(|&i| s_out.dims()[i]).product();

        let mut r = cx.rhs();
        let mut t = r.class(x);
        if pad != s_in.dims() {
            t = r.node(KOp::Reshape(Shape(pad.clone())), &[t]);
        }
        if !r2.is_empty() {
            let red = KOp::Reduce {
                op,
                axes: r2.clone(),
                keepdims: true,
            };
            t = r.node(red, &[t]);
        }
        let keep = reduced_shape(&s_out, &axes, true);
        if r.ty(t).shape != keep {
            t = r.node(KOp::Expand(keep), &[t]);
        }
        let final_shape = reduced_shape(&s_out, &axes, keepdims);
        if r.ty(t).shape != final_shape {
            t = r.node(KOp::Reshape(final_shape), &[t]);
        }
        if op == ReduceOp::Sum && copies > 1 {
            let ty = r.ty(t).clone();
            let n = r.constant(copies as f64, &ty);
            t = r.binary(Mul, t, n);
        }
        // A sum or mean accumulates from +0 and is never -0; x itself may be.
        if matches!(op, ReduceOp::Sum | ReduceOp::Mean) && r2.is_empty() && !cx.data(x).no_negzero {
            let ty = r.ty(t).clone();
            let zero = r.constant(0.0, &ty);
            t = r.binary(Add, t, zero);
        }
        cx.emit(r, t);
    }
}

/// reduce_A(reduce_B(x)) with the same op -> one reduction over A ∪ B (then a
/// reshape to the final shape). Mean of means is the mean: the groups are equal.
fn reduce_reduce(cx: &mut Cx) {
    let Some((op, outer, _)) = reduce_payload(&cx.node.op) else {
        return;
    };
    let y = cx.args()[0];
    let final_ty = cx.ty(cx.class).clone();
    let inner: Vec<(Vec<usize>, bool, Id)> = cx
        .nodes(y)
        .iter()
        .filter_map(|n| match reduce_payload(&n.op) {
            Some((iop, axes, kd)) if iop == op => Some((axes, kd, n.children[0])),
            _ => None,
        })
        .collect();
    for (inner_axes, keep_inner, x) in inner {
        let xs = cx.ty(x).shape.clone();
        if xs.numel() == 0 {
            continue;
        }
        let kept: Vec<usize> = (0..xs.rank()).filter(|a| !inner_axes.contains(a)).collect();
        let mapped: Vec<usize> = outer.iter().map(|&j| if keep_inner { j } else { kept[j] }).collect();
        let mut total: Vec<usize> = inner_axes.iter().chain(&mapped).copied().collect();
        total.sort_unstable();
        total.dedup();
        let mut r = cx.rhs();
        let t = r.class(x);
        let red = KOp::Reduce {
            op,
            axes: total,
            keepdims: true,
        };
        let mut t = r.node(red, &[t]);
        if r.ty(t).shape != final_ty.shape {
            t = r.node(KOp::Reshape(final_ty.shape.clone()), &[t]);
        }
        cx.emit(r, t);
    }
}

/// sum(-x) -> -sum(x) + 0 (the `+ 0`: a sum of zeros is +0, its negation -0);
/// max(-x) -> -min(x); min(-x) -> -max(x) (exact). Not for mean: a tiny mean can
/// underflow to either zero.
fn reduce_neg(cx: &mut Cx) {
    let Some((op, axes, keepdims)) = reduce_payload(&cx.node.op) else {
        return;
    };
    let flipped = match op {
        ReduceOp::Max => ReduceOp::Min,
        ReduceOp::Min => ReduceOp::Max,
        ReduceOp::Sum => ReduceOp::Sum,
        ReduceOp::Mean => return,
    };
    let out_ty: TensorType = cx.ty(cx.class).clone();
    let inner: Vec<Id> = cx.unary_in(cx.args()[0], UnaryOp::Neg).collect();
    for x in inner {
        let mut r = cx.rhs();
        let t = r.class(x);
        let red = r.node(
            KOp::Reduce {
                op: flipped,
                axes: axes.clone(),
                keepdims,
            },
            &[t],
        );
        let mut out = r.unary(UnaryOp::Neg, red);
        if op == ReduceOp::Sum {
            let zero = r.constant(0.0, &out_ty);
            out = r.binary(Add, out, zero);
        }
        cx.emit(r, out);
    }
}

/// A positive constant multiple of an operand, `(x, c)`, with c finite and > 0 (a
/// negative factor would flip the sign of zero results and swap max and min).
fn scaled_in(cx: &Cx, id: Id) -> Vec<(Id, f64)> {
    binary_any_order(cx, id, Mul)
        .into_iter()
        .filter_map(|(x, c)| match cx.konst(x) {
            None => cx.safe_factor(c).filter(|v| *v > 0.0).map(|v| (x, v)),
            Some(_) => None,
        })
        .collect()
}

/// reduce(x * c) -> reduce(x) * c for a finite constant c > 0 (sum, mean, max, min;
/// scaling by c > 0 is monotone, so max/min are exact).
fn reduce_scale(cx: &mut Cx) {
    let out_ty: TensorType = cx.ty(cx.class).clone();
    for (x, c) in scaled_in(cx, cx.args()[0]) {
        let mut r = cx.rhs();
        let t = r.class(x);
        let red = r.node(cx.node.op.clone(), &[t]);
        let k = r.constant(c, &out_ty);
        let out = r.binary(Mul, red, k);
        cx.emit(r, out);
    }
}

/// (x * c) @ b -> (x @ b) * c and a @ (x * c) -> (a @ x) * c for finite c > 0.
fn matmul_scale(cx: &mut Cx) {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    let out_ty: TensorType = cx.ty(cx.class).clone();
    let left: Vec<(Id, Id, f64)> = scaled_in(cx, a).into_iter().map(|(x, c)| (x, b, c)).collect();
    let right: Vec<(Id, Id, f64)> = scaled_in(cx, b).into_iter().map(|(x, c)| (a, x, c)).collect();
    for (p, q, c) in left.into_iter().chain(right) {
        let mut r = cx.rhs();
        let (tp, tq) = (r.class(p), r.class(q));
        let mm = r.node(KOp::MatMul, &[tp, tq]);
        let k = r.constant(c, &out_ty);
        let out = r.binary(Mul, mm, k);
        cx.emit(r, out);
    }
}
