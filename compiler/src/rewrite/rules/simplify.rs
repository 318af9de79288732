//! Simplify-phase rules: identities (`x+0`, `x*1`, `--x`, ...), guarded annihilators
//! (`x*0`, `x-x` only for finite `x`), idempotent ops, small integer powers, exp/log
//! pairs, and compositions/identities of movement ops and trivial reductions. Every
//! rule here removes work; the guards follow the float policy in `rewrite/mod.rs`
//! (NaN/Inf patterns and signed zeros are kept).
//! Constant folding itself is done by the analysis (`language.rs`), not here.

use kiln_ir::{BinaryOp, DType, ReduceOp, UnaryOp};

use super::{reduce_kind, reduced_shape, Cx, Phase, Rule};
use crate::rewrite::language::KOp;

use BinaryOp::{Add, Div, Max, Min, Mul, Sub};

fn r(name: &'static str, triggers: &[KOp], body: fn(&mut Cx)) -> Rule {
    Rule::new(name, Phase::Simplify, triggers, body)
}

pub(super) fn rules() -> Vec<Rule> {
    let bin = KOp::Binary;
    let un = KOp::Unary;
    let reduces: Vec<KOp> = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min]
        .map(reduce_kind)
        .to_vec();
    vec![
        r("add-zero", &[bin(Add)], add_zero),
        r("sub-zero", &[bin(Sub)], sub_zero),
        r("zero-sub", &[bin(Sub)], zero_sub),
        r("mul-one", &[bin(Mul)], mul_one),
        r("mul-neg-one", &[bin(Mul)], mul_neg_one),
        r("mul-zero", &[bin(Mul)], mul_zero),
        r("div-one", &[bin(Div)], div_one),
        r("sub-self", &[bin(Sub)], sub_self),
        r("minmax-self", &[bin(Max), bin(Min)], minmax_self),
        r("neg-neg", &[un(UnaryOp::Neg)], neg_neg),
        r("idempotent", &[un(UnaryOp::Abs), un(UnaryOp::Relu)], idempotent),
        r("abs-neg", &[un(UnaryOp::Abs)], abs_neg),
        r("nonneg-id", &[un(UnaryOp::Abs), un(UnaryOp::Relu)], nonneg_id),
        r("select-same", &[KOp::Select], select_same),
        r("select-const", &[KOp::Select], select_const),
        r("cast-same", &[KOp::Cast(DType::F32)], cast_same),
        r("cast-bool-roundtrip", &[KOp::Cast(DType::F32)], cast_bool_roundtrip),
        r("pow-int", &[KOp::Pow(0)], pow_int),
        r("exp-log", &[un(UnaryOp::Exp)], exp_log),
        r("log-exp", &[un(UnaryOp::Log)], log_exp),
        r("reshape-reshape", &[KOp::Reshape(Default::default())], reshape_reshape),
        r("expand-expand", &[KOp::Expand(Default::default())], expand_expand),
        r("permute-permute", &[KOp::Permute(Vec::new())], permute_permute),
        r("movement-id", &movement_kinds(), movement_id),
        r("reduce-trivial", &reduces, reduce_trivial),
    ]
}

fn movement_kinds() -> Vec<KOp> {
    vec![
        KOp::Reshape(Default::default()),
        KOp::Expand(Default::default()),
        KOp::Permute(Vec::new()),
        KOp::Slice {
            starts: vec![],
            ends: vec![],
            steps: vec![],
        },
        KOp::Pad {
            low: vec![],
            high: vec![],
            value: 0,
        },
        KOp::Concat(0),
    ]
}

/// `(x, c)` pairs of a commutative node's operands where `c` is the constant `v`.
fn with_const(cx: &Cx, v: f64) -> Vec<(egg::Id, egg::Id)> {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    [(a, b), (b, a)]
        .into_iter()
        .filter(|&(_, c)| cx.konst(c) == Some(v))
        .collect()
}

fn is_neg_zero(v: Option<f64>) -> bool {
    v.is_some_and(|v| v.to_bits() == (-0.0f64).to_bits())
}

/// x + (-0) -> x always; x + (+0) -> x only when x is never -0 (-0 + +0 = +0).
fn add_zero(cx: &mut Cx) {
    for (x, z) in with_const(cx, 0.0) {
        if is_neg_zero(cx.konst(z)) || cx.data(x).no_negzero {
            cx.emit_class(x);
        }
    }
}

/// x - (+0) -> x always; x - (-0) -> x only when x is never -0.
fn sub_zero(cx: &mut Cx) {
    let [x, z] = [cx.args()[0], cx.args()[1]];
    let k = cx.konst(z);
    if k == Some(0.0) && (!is_neg_zero(k) || cx.data(x).no_negzero) {
        cx.emit_class(x);
    }
}

/// (-0) - x -> -x (with +0 it is wrong for x = +0: +0 - +0 = +0 but -(+0) = -0).
fn zero_sub(cx: &mut Cx) {
    let [z, x] = [cx.args()[0], cx.args()[1]];
    if is_neg_zero(cx.konst(z)) && cx.konst(x).is_none() {
        let mut r = cx.rhs();
        let t = r.class(x);
        let n = r.unary(UnaryOp::Neg, t);
        cx.emit(r, n);
    }
}

/// x * 1 -> x, 1 * x -> x.
fn mul_one(cx: &mut Cx) {
    for (x, _) in with_const(cx, 1.0) {
        cx.emit_class(x);
    }
}

/// x * -1 -> -x.
fn mul_neg_one(cx: &mut Cx) {
    for (x, _) in with_const(cx, -1.0) {
        if cx.konst(x).is_none() {
            let mut r = cx.rhs();
            let t = r.class(x);
            let n = r.unary(UnaryOp::Neg, t);
            cx.emit(r, n);
        }
    }
}

/// x * 0 -> 0 for i32, and for f32 only when x is provably finite (NaN * 0 and
/// inf * 0 are NaN) and never negative or -0 (-1 * +0 = -0): masks, counts, iota.
fn mul_zero(cx: &mut Cx) {
    for (x, z) in with_const(cx, 0.0) {
        let d = cx.data(x);
        if d.ty.dtype == DType::I32 || (d.finite && d.nonneg && d.no_negzero) {
            cx.emit_class(z);
        }
    }
}

/// x / 1 -> x, x / -1 -> -x.
fn div_one(cx: &mut Cx) {
    let [x, d] = [cx.args()[0], cx.args()[1]];
    match cx.konst(d) {
        Some(1.0) => cx.emit_class(x),
        Some(-1.0) => {
            let mut r = cx.rhs();
            let t = r.class(x);
            let n = r.unary(UnaryOp::Neg, t);
            cx.emit(r, n);
        }
        _ => {}
    }
}

/// x - x -> 0, only for finite x (inf - inf is NaN).
fn sub_self(cx: &mut Cx) {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    if cx.same(a, b) && cx.data(a).finite {
        let mut r = cx.rhs();
        let z = r.constant(0.0, cx.ty(a));
        cx.emit(r, z);
    }
}

/// max(x, x) -> x, min(x, x) -> x.
fn minmax_self(cx: &mut Cx) {
    let [a, b] = [cx.args()[0], cx.args()[1]];
    if cx.same(a, b) {
        cx.emit_class(a);
    }
}

/// --x -> x.
fn neg_neg(cx: &mut Cx) {
    let inner: Vec<_> = cx.unary_in(cx.args()[0], UnaryOp::Neg).collect();
    for x in inner {
        cx.emit_class(x);
    }
}

/// abs(abs x) -> abs x, relu(relu x) -> relu x.
fn idempotent(cx: &mut Cx) {
    let KOp::Unary(u) = cx.node.op else { return };
    let y = cx.args()[0];
    if cx.unary_in(y, u).next().is_some() {
        cx.emit_class(y);
    }
}

/// abs(-x) -> abs x.
fn abs_neg(cx: &mut Cx) {
    let inner: Vec<_> = cx.unary_in(cx.args()[0], UnaryOp::Neg).collect();
    for x in inner {
        let mut r = cx.rhs();
        let t = r.class(x);
        let a = r.unary(UnaryOp::Abs, t);
        cx.emit(r, a);
    }
}

/// abs x -> x and relu x -> x when no element of x is negative or -0.
fn nonneg_id(cx: &mut Cx) {
    let x = cx.args()[0];
    if cx.data(x).nonneg && cx.data(x).no_negzero {
        cx.emit_class(x);
    }
}

/// select(c, x, x) -> x.
fn select_same(cx: &mut Cx) {
    let [_, t, f] = [cx.args()[0], cx.args()[1], cx.args()[2]];
    if cx.same(t, f) {
        cx.emit_class(t);
    }
}

/// select(true, a, b) -> a, select(false, a, b) -> b.
fn select_const(cx: &mut Cx) {
    let [c, t, f] = [cx.args()[0], cx.args()[1], cx.args()[2]];
    match cx.konst(c) {
        Some(v) if v != 0.0 => cx.emit_class(t),
        Some(_) => cx.emit_class(f),
        None => {}
    }
}

fn cast_target(cx: &Cx) -> Option<DType> {
    match cx.node.op {
        KOp::Cast(d) => Some(d),
        _ => None,
    }
}

/// cast to the operand's own dtype -> the operand.
fn cast_same(cx: &mut Cx) {
    let x = cx.args()[0];
    if cast_target(cx) == Some(cx.ty(x).dtype) {
        cx.emit_class(x);
    }
}

/// cast(cast(b: bool) -> i32/f32) -> bool  ==  b (0/1 survive both casts exactly).
fn cast_bool_roundtrip(cx: &mut Cx) {
    if cast_target(cx) != Some(DType::Bool) {
        return;
    }
    let y = cx.args()[0];
    let inner: Vec<_> = cx
        .nodes(y)
        .iter()
        .filter(|n| matches!(n.op, KOp::Cast(_)))
        .map(|n| n.children[0])
        .filter(|&x| cx.ty(x).dtype == DType::Bool)
        .collect();
    for x in inner {
        cx.emit_class(x);
    }
}

/// pow(x, n) for small integers n -> multiplications (and 1, x, 1/x, 1/(x*x));
/// pow(x, 0.5) -> sqrt x for x >= 0 that is never -0; pow(x, -0.5) -> rsqrt x for
/// x > 0 (-0 and -inf are where powf and sqrt/rsqrt disagree).
fn pow_int(cx: &mut Cx) {
    let KOp::Pow(bits) = cx.node.op else { return };
    let e = f64::from_bits(bits);
    let x = cx.args()[0];
    let data = cx.data(x);
    let mut r = cx.rhs();
    let t = r.class(x);
    let out = if e == 1.0 {
        t
    } else if e == 0.0 {
        r.constant(1.0, cx.ty(x))
    } else if e == 2.0 {
        r.binary(Mul, t, t)
    } else if e == 3.0 {
        let sq = r.binary(Mul, t, t);
        r.binary(Mul, sq, t)
    } else if e == 4.0 {
        let sq = r.binary(Mul, t, t);
        r.binary(Mul, sq, sq)
    } else if e == -1.0 {
        r.unary(UnaryOp::Recip, t)
    } else if e == -2.0 {
        let sq = r.binary(Mul, t, t);
        r.unary(UnaryOp::Recip, sq)
    } else if e == 0.5 && data.nonneg && data.no_negzero {
        r.unary(UnaryOp::Sqrt, t)
    } else if e == -0.5 && data.positive {
        r.unary(UnaryOp::Rsqrt, t)
    } else {
        return;
    };
    cx.emit(r, out);
}

/// exp(log x) -> x, only for x with no element <= 0 (log of those is NaN or -inf).
fn exp_log(cx: &mut Cx) {
    let inner: Vec<_> = cx.unary_in(cx.args()[0], UnaryOp::Log).collect();
    for x in inner {
        if cx.data(x).positive {
            cx.emit_class(x);
        }
    }
}

/// log(exp x) -> x for x never -0 (log(exp(-0)) = +0). Exact where exp does not
/// overflow/underflow; elsewhere the rewritten value is the mathematically right one
/// (see the float policy).
fn log_exp(cx: &mut Cx) {
    let inner: Vec<_> = cx.unary_in(cx.args()[0], UnaryOp::Exp).collect();
    for x in inner {
        if cx.data(x).no_negzero {
            cx.emit_class(x);
        }
    }
}

/// Operands of the movement nodes of e-class `y` whose op satisfies `pred`.
fn inner_of(cx: &Cx, y: egg::Id, pred: fn(&KOp) -> bool) -> Vec<(KOp, egg::Id)> {
    cx.nodes(y)
        .iter()
        .filter(|n| pred(&n.op))
        .map(|n| (n.op.clone(), n.children[0]))
        .collect()
}

/// reshape(reshape x) -> reshape x (or x when the shapes agree).
fn reshape_reshape(cx: &mut Cx) {
    let KOp::Reshape(shape) = &cx.node.op else { return };
    for (_, x) in inner_of(cx, cx.args()[0], |o| matches!(o, KOp::Reshape(_))) {
        if cx.ty(x).shape == *shape {
            cx.emit_class(x);
        } else {
            let mut r = cx.rhs();
            let t = r.class(x);
            let n = r.node(KOp::Reshape(shape.clone()), &[t]);
            cx.emit(r, n);
        }
    }
}

/// expand(expand x) -> expand x (NumPy broadcasts compose).
fn expand_expand(cx: &mut Cx) {
    let KOp::Expand(shape) = &cx.node.op else { return };
    for (_, x) in inner_of(cx, cx.args()[0], |o| matches!(o, KOp::Expand(_))) {
        let mut r = cx.rhs();
        let t = r.class(x);
        let n = r.node(KOp::Expand(shape.clone()), &[t]);
        cx.emit(r, n);
    }
}

/// permute(permute(x, p2), p1) -> permute(x, p2 ∘ p1) (or x for the identity).
fn permute_permute(cx: &mut Cx) {
    let KOp::Permute(p1) = &cx.node.op else { return };
    for (inner, x) in inner_of(cx, cx.args()[0], |o| matches!(o, KOp::Permute(_))) {
        let KOp::Permute(p2) = inner else { continue };
        let composed: Vec<usize> = p1.iter().map(|&i| p2[i]).collect();
        if composed.iter().enumerate().all(|(i, &p)| i == p) {
            cx.emit_class(x);
        } else {
            let mut r = cx.rhs();
            let t = r.class(x);
            let n = r.node(KOp::Permute(composed), &[t]);
            cx.emit(r, n);
        }
    }
}

/// Movement ops that do nothing: reshape/expand to the same shape, identity permute,
/// full slice, zero padding, concat of one operand.
fn movement_id(cx: &mut Cx) {
    let x = cx.args()[0];
    let dims = cx.ty(x).shape.dims().to_vec();
    let identity = match &cx.node.op {
        KOp::Reshape(s) | KOp::Expand(s) => *s == cx.ty(x).shape,
        KOp::Permute(p) => p.iter().enumerate().all(|(i, &q)| i == q),
        KOp::Slice { starts, ends, steps } => {
            starts.iter().all(|&s| s == 0) && *ends == dims && steps.iter().all(|&s| s == 1)
        }
        KOp::Pad { low, high, .. } => low.iter().chain(high).all(|&p| p == 0),
        KOp::Concat(_) => cx.args().len() == 1,
        _ => false,
    };
    if identity {
        cx.emit_class(x);
    }
}

/// A reduction over no axes or only size-1 axes: max/min -> the operand, sum/mean
/// -> `operand + 0` (exactly what accumulating one element from +0 computes; the
/// `+ 0` goes away when the operand is never -0). Reshaped when axes are dropped.
fn reduce_trivial(cx: &mut Cx) {
    let KOp::Reduce { op, axes, keepdims } = &cx.node.op else {
        return;
    };
    let x = cx.args()[0];
    let shape = cx.ty(x).shape.clone();
    if !axes.iter().all(|&a| shape.dims()[a] == 1) {
        return;
    }
    let mut r = cx.rhs();
    let mut t = r.class(x);
    if !*keepdims && !axes.is_empty() {
        t = r.node(KOp::Reshape(reduced_shape(&shape, axes, false)), &[t]);
    }
    if matches!(op, ReduceOp::Sum | ReduceOp::Mean) && !cx.data(x).no_negzero {
        let ty = r.ty(t).clone();
        let zero = r.constant(0.0, &ty);
        t = r.binary(Add, t, zero);
    }
    cx.emit(r, t);
}
