//! Merging adjacent outer loop dimensions before code generation, so an elementwise
//! kernel over `[4096, 10]` runs as one vector loop over 40960 points instead of 4096
//! rows of two vectors and a scalar tail. Two dimensions `d, d+1` merge when every
//! index of the kernel is linear in both with `coef(d) == coef(d+1) * extent(d+1)`
//! (neither under a div/mod), or when `extent(d+1) == 1`, and no instruction reads
//! either loop variable as a value. The flat numbering of outer points is unchanged, so
//! the runtime's ranges (and matmul epilogue blocks) mean the same points.

use crate::kernel::{IndexExpr, Inst, LoopKernel};

/// Every index expression of the kernel, mutably.
fn for_each_index(k: &mut LoopKernel, f: &mut dyn FnMut(&mut IndexExpr)) {
    for s in &mut k.stages {
        for (_, inst) in &mut s.insts {
            match inst {
                Inst::Load { index, guards, .. } => {
                    f(index);
                    for g in guards {
                        f(&mut g.expr);
                    }
                }
                Inst::Index(e) | Inst::Random { index: e, .. } => f(e),
                _ => {}
            }
        }
        for st in &mut s.stores {
            f(&mut st.index);
        }
    }
}

fn reads_loop_var(k: &LoopKernel, var: usize) -> bool {
    k.stages
        .iter()
        .flat_map(|s| &s.insts)
        .any(|(_, i)| matches!(i, Inst::LoopVar(v) if *v == var))
}

/// Rewrite variables: `Var(d) -> Const(0)` when `zero_d`, `Var(d+1) -> Var(d)` (or 0
/// when `zero_next`), every `Var(k > d+1) -> Var(k-1)`; LoopVar instructions likewise.
fn substitute(e: &IndexExpr, d: usize, zero_d: bool, zero_next: bool) -> IndexExpr {
    match e {
        IndexExpr::Var(k) if *k == d && zero_d => IndexExpr::Const(0),
        IndexExpr::Var(k) if *k == d + 1 => {
            if zero_next {
                IndexExpr::Const(0)
            } else {
                IndexExpr::Var(d)
            }
        }
        IndexExpr::Var(k) if *k > d + 1 => IndexExpr::Var(k - 1),
        IndexExpr::Var(k) => IndexExpr::Var(*k),
        IndexExpr::Const(c) => IndexExpr::Const(*c),
        IndexExpr::Value(v) => IndexExpr::Value(*v),
        IndexExpr::Add(a, b) => IndexExpr::Add(
            Box::new(substitute(a, d, zero_d, zero_next)),
            Box::new(substitute(b, d, zero_d, zero_next)),
        ),
        IndexExpr::Mul(a, c) => IndexExpr::Mul(Box::new(substitute(a, d, zero_d, zero_next)), *c),
        IndexExpr::Div(a, c) => IndexExpr::Div(Box::new(substitute(a, d, zero_d, zero_next)), *c),
        IndexExpr::Mod(a, c) => IndexExpr::Mod(Box::new(substitute(a, d, zero_d, zero_next)), *c),
    }
}

/// Try to merge outer dimensions `d` and `d + 1` of `k` in place.
fn merge(k: &mut LoopKernel, d: usize) -> bool {
    if reads_loop_var(k, d) || reads_loop_var(k, d + 1) {
        return false;
    }
    let inner = k.outer[d + 1];
    let drop_next = inner == 1;
    if !drop_next {
        let mut ok = true;
        for_each_index(k, &mut |e: &mut IndexExpr| match (e.affine_in(d), e.affine_in(d + 1)) {
            (Some(cd), Some(cn)) if cd == cn * inner as i64 => {}
            _ => ok = false,
        });
        if !ok {
            return false;
        }
    }
    // Extent 1: the next variable is always 0 and disappears; otherwise `d` is folded
    // into the merged variable, which takes `d + 1`'s place.
    let (zero_d, zero_next) = if drop_next { (false, true) } else { (true, false) };
    for_each_index(k, &mut |e: &mut IndexExpr| *e = substitute(e, d, zero_d, zero_next));
    for s in &mut k.stages {
        for (_, inst) in &mut s.insts {
            if let Inst::LoopVar(v) = inst {
                if *v > d + 1 {
                    *v -= 1;
                }
            }
        }
    }
    k.outer[d] *= inner;
    k.outer.remove(d + 1);
    true
}

/// `k` with as many adjacent outer dimensions merged as its indices allow.
pub fn collapse(k: &LoopKernel) -> LoopKernel {
    let mut k = k.clone();
    // First drop unit dimensions (folded into their left neighbour) ...
    let mut d = k.outer.len();
    while d >= 2 {
        d -= 1;
        if k.outer[d] == 1 {
            merge(&mut k, d - 1);
        }
    }
    // ... then merge pairs from the innermost outwards; a merged dimension stays in
    // place and is tried again with its left neighbour.
    let mut d = k.outer.len();
    while d >= 2 {
        d -= 1;
        merge(&mut k, d - 1);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{BufferId, Stage, Store, ValueId};

    fn kernel(outer: Vec<usize>, load_index: IndexExpr, store_index: IndexExpr) -> LoopKernel {
        LoopKernel {
            name: "k".into(),
            nodes: vec![],
            outer,
            stages: vec![Stage {
                inner: vec![],
                insts: vec![(
                    ValueId(0),
                    Inst::Load {
                        buf: BufferId(0),
                        index: load_index,
                        guards: vec![],
                        fill: 0.0,
                    },
                )],
                accumulators: vec![],
                stores: vec![Store {
                    buf: BufferId(1),
                    index: store_index,
                    value: ValueId(0),
                }],
            }],
        }
    }

    fn v(k: usize) -> IndexExpr {
        IndexExpr::Var(k)
    }

    #[test]
    fn contiguous_dims_merge_and_broadcasts_block() {
        let flat = v(0).mul(50).add(v(1).mul(10)).add(v(2));
        let k = collapse(&kernel(vec![4, 5, 10], flat.clone(), flat.clone()));
        assert_eq!(k.outer, vec![200]);
        // Every flat point still maps to the same elements.
        for o in 0..200i64 {
            let (a, b, c) = (o / 50, (o / 10) % 5, o % 10);
            let want = flat.eval(&[a, b, c], &|_| 0);
            let got = k.stages[0].stores[0].index.eval(&[o], &|_| 0);
            assert_eq!(got, want);
        }
        // A bias broadcast along dim 0 (coefficient 0) blocks merging dims 0 and 1.
        let k = collapse(&kernel(vec![4, 10], v(1), v(0).mul(10).add(v(1))));
        assert_eq!(k.outer, vec![4, 10]);
        // A transpose blocks merging.
        let k = collapse(&kernel(vec![3, 7], v(1).mul(3).add(v(0)), v(0).mul(7).add(v(1))));
        assert_eq!(k.outer, vec![3, 7]);
    }

    #[test]
    fn unit_dims_disappear_even_under_div_mod() {
        let load = v(0).mul(6).add(v(1).div(2)).add(v(2));
        let k = collapse(&kernel(vec![3, 1, 6], load.clone(), load.clone()));
        assert_eq!(k.outer, vec![18]);
        for a in 0..3i64 {
            for c in 0..6i64 {
                let o = a * 6 + c;
                let want = load.eval(&[a, 0, c], &|_| 0);
                let got = match &k.stages[0].insts[0].1 {
                    Inst::Load { index, .. } => index.eval(&[o], &|_| 0),
                    _ => unreachable!(),
                };
                assert_eq!(got, want);
            }
        }
    }
}
