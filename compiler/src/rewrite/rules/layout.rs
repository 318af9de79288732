//! Layout-phase rules: sink broadcasts below elementwise ops (compute on the small
//! tensor, broadcast once) and move transposes across matmuls. All of them are exact;
//! whether the rewritten form is better is left to the cost model.

use egg::Id;
use kiln_ir::{BinaryOp, CompareOp, Shape, UnaryOp};

use super::{Cx, Phase, Rule};
use crate::rewrite::language::KOp;

fn r(name: &'static str, triggers: &[KOp], body: fn(&mut Cx)) -> Rule {
    Rule::new(name, Phase::Layout, triggers, body)
}

pub(super) fn rules() -> Vec<Rule> {
    use UnaryOp::*;
    let mut unary: Vec<KOp> = [
        Neg, Exp, Log, Sqrt, Rsqrt, Recip, Abs, Sign, Tanh, Sigmoid, Relu, Sin, Cos,
    ]
    .map(KOp::Unary)
    .to_vec();
    unary.extend([KOp::Pow(0), KOp::Cast(kiln_ir::DType::F32)]);
    let mut binary: Vec<KOp> = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ]
    .map(KOp::Binary)
    .to_vec();
    binary.extend(
        [
            CompareOp::Lt,
            CompareOp::Le,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Eq,
            CompareOp::Ne,
        ]
        .map(KOp::Compare),
    );
    vec![
        r("unary-expand", &unary, unary_expand),
        r("binary-expand", &binary, binary_expand),
        r("transpose-matmul", &[KOp::Permute(Vec::new())], transpose_matmul),
        r("matmul-transposes", &[KOp::MatMul], matmul_transposes),
    ]
}

/// `(target shape, operand)` of the `Expand` nodes of e-class `id`.
fn expands_in(cx: &Cx, id: Id) -> Vec<(Shape, Id)> {
    cx.nodes(id)
        .iter()
        .filter_map(|n| match &n.op {
            KOp::Expand(s) => Some((s.clone(), n.children[0])),
            _ => None,
        })
        .collect()
}

/// op(expand x) -> expand(op x) for unary ops, pow and casts.
fn unary_expand(cx: &mut Cx) {
    let y = cx.args()[0];
    if cx.konst(y).is_some() {
        return;
    }
    for (s, x) in expands_in(cx, y) {
        let mut r = cx.rhs();
        let t = r.class(x);
        let inner = r.node(cx.node.op.clone(), &[t]);
        let out = r.node(KOp::Expand(s), &[inner]);
        cx.emit(r, out);
    }
}

/// op(expand a, expand b) -> expand(op(a, b)) when a and b have one shape, and
/// op(expand a, c) -> expand(op(a, c')) for a constant c (either side).
fn binary_expand(cx: &mut Cx) {
    let [l, rr] = [cx.args()[0], cx.args()[1]];
    let op = cx.node.op.clone();
    let (lc, rc) = (cx.konst(l), cx.konst(rr));
    if lc.is_some() && rc.is_some() {
        return;
    }
    let (le, re) = (expands_in(cx, l), expands_in(cx, rr));
    for (s, a) in &le {
        for (_, b) in &re {
            if cx.ty(*a).shape == cx.ty(*b).shape {
                let mut r = cx.rhs();
                let (ta, tb) = (r.class(*a), r.class(*b));
                let inner = r.node(op.clone(), &[ta, tb]);
                let out = r.node(KOp::Expand(s.clone()), &[inner]);
                cx.emit(r, out);
            }
        }
    }
    // One side broadcast, the other a constant: shrink the constant instead.
    // (expands of one side, the other side's constant and class, expand on the left)
    for (expands, konst, const_class, expand_left) in [(le, rc, rr, true), (re, lc, l, false)] {
        let Some(c) = konst else { continue };
        for (s, a) in expands {
            let small = kiln_ir::TensorType::new(cx.ty(a).shape.clone(), cx.ty(const_class).dtype);
            let mut r = cx.rhs();
            let ta = r.class(a);
            let tc = r.constant(c, &small);
            let kids = if expand_left { [ta, tc] } else { [tc, ta] };
            let inner = r.node(op.clone(), &kids);
            let out = r.node(KOp::Expand(s), &[inner]);
            cx.emit(r, out);
        }
    }
}

/// The permutation swapping the last two of `rank` axes.
fn swap_last(rank: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..rank).collect();
    p.swap(rank - 2, rank - 1);
    p
}

fn is_swap_last(p: &[usize]) -> bool {
    p.len() >= 2 && p == swap_last(p.len()).as_slice()
}

/// transpose(a @ b) -> transpose(b) @ transpose(a) (last two axes; batch dims kept).
fn transpose_matmul(cx: &mut Cx) {
    let KOp::Permute(p) = &cx.node.op else { return };
    if !is_swap_last(p) {
        return;
    }
    let mms: Vec<(Id, Id)> = cx
        .nodes(cx.args()[0])
        .iter()
        .filter(|n| n.op == KOp::MatMul)
        .map(|n| (n.children[0], n.children[1]))
        .collect();
    for (a, b) in mms {
        let (ra, rb) = (cx.ty(a).shape.rank(), cx.ty(b).shape.rank());
        let mut r = cx.rhs();
        let (ta, tb) = (r.class(a), r.class(b));
        let bt = r.node(KOp::Permute(swap_last(rb)), &[tb]);
        let at = r.node(KOp::Permute(swap_last(ra)), &[ta]);
        let out = r.node(KOp::MatMul, &[bt, at]);
        cx.emit(r, out);
    }
}

/// Operands of the last-two-axes transposes in e-class `id`.
fn transposed_in(cx: &Cx, id: Id) -> Vec<Id> {
    cx.nodes(id)
        .iter()
        .filter(|n| matches!(&n.op, KOp::Permute(p) if is_swap_last(p)))
        .map(|n| n.children[0])
        .collect()
}

/// transpose(a) @ transpose(b) -> transpose(b @ a).
fn matmul_transposes(cx: &mut Cx) {
    let [l, rr] = [cx.args()[0], cx.args()[1]];
    let out_rank = cx.ty(cx.class).shape.rank();
    let (ls, rs) = (transposed_in(cx, l), transposed_in(cx, rr));
    for &a in &ls {
        for &b in &rs {
            let mut r = cx.rhs();
            let (ta, tb) = (r.class(a), r.class(b));
            let mm = r.node(KOp::MatMul, &[tb, ta]);
            let out = r.node(KOp::Permute(swap_last(out_rank)), &[mm]);
            cx.emit(r, out);
        }
    }
}
