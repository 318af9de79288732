//! Soundness fuzzing: random well-formed graphs (elementwise chains with constants that
//! trigger the rules, broadcasts, reductions, reshapes, transposes, matmuls, selects,
//! i32 arithmetic, an in-place update) are rewritten and evaluated by the reference
//! interpreter before and after, on random inputs with and without NaN/±inf/±0. Every
//! output and update must agree within 1e-6 relative, NaN for NaN, inf for inf and
//! zero for zero of the same sign.
//!
//! Inputs that drive the original into overflow/underflow territory (values beyond
//! 1e±100, `exp` of arguments beyond ±700) are skipped: there an intermediate may
//! overflow in one form and not the other, which the float policy accepts (see
//! `rewrite/mod.rs`).

use std::time::Duration;

use kiln_compiler::rewrite::{rewrite, verify, RewriteOptions};
use kiln_ir::interp::evaluate;
use kiln_ir::{DType, Graph, GraphBuilder, Init, Op, Shape, Tensor, UnaryOp};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    Unary(u8, u8),
    Chain(u8, u8, u8),
    Binary(u8, u8, u8),
    ConstBinary(u8, u8, u8, bool),
    Pow(u8, u8),
    Reduce(u8, u8, u8, bool),
    Broadcast(u8, u8),
    Reshape(u8, u8),
    Transpose(u8),
    MatMul(u8, u8),
    Select(u8, u8, u8),
    Int(u8, u8),
}

const CONSTS: [f64; 14] = [
    0.0,
    1.0,
    -1.0,
    2.0,
    0.5,
    3.0,
    -0.0,
    1e-3,
    4.0,
    0.25,
    -2.0,
    -0.5,
    f64::INFINITY,
    f64::NAN,
];
const POWS: [f64; 10] = [0.0, 1.0, 2.0, 3.0, 4.0, -1.0, -2.0, 0.5, -0.5, 2.5];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(o, a)| Step::Unary(o, a)),
        3 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(o, p, a)| Step::Chain(o, p, a)),
        3 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(o, a, b)| Step::Binary(o, a, b)),
        4 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(o, a, c, l)| Step::ConstBinary(o, a, c, l)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(e, a)| Step::Pow(e, a)),
        3 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(o, a, m, k)| Step::Reduce(o, a, m, k)),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(a, t)| Step::Broadcast(a, t)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, t)| Step::Reshape(a, t)),
        1 => any::<u8>().prop_map(Step::Transpose),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Step::MatMul(a, b)),
        1 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(o, a, b)| Step::Select(o, a, b)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(o, c)| Step::Int(o, c)),
    ]
}

/// An operand: half the time one of the three newest tensors (so chains like
/// `exp(log(..))` and `(x*c1)*c2` form), otherwise any tensor of the pool.
fn pick(pool: &[Tensor], i: u8) -> Tensor {
    let n = pool.len();
    if i & 0x80 != 0 {
        pool[n - 1 - (i as usize % 3).min(n - 1)].clone()
    } else {
        pool[i as usize % n].clone()
    }
}

fn small(shape: &Shape) -> bool {
    shape.rank() <= 3 && shape.numel() <= 96
}

fn unary(o: u8, a: &Tensor) -> Tensor {
    match o % 13 {
        0 => a.neg(),
        1 => a.exp(),
        2 => a.log(),
        3 => a.sqrt(),
        4 => a.rsqrt(),
        5 => a.recip(),
        6 => a.abs(),
        7 => a.sign(),
        8 => a.tanh(),
        9 => a.sigmoid(),
        10 => a.relu(),
        11 => a.sin(),
        _ => a.cos(),
    }
}

/// Build the graph; steps that do not fit the operands' shapes are skipped.
fn build(steps: &[Step], out_pick: u8) -> Graph {
    let b = GraphBuilder::new();
    let p = b.param("p", [2, 3], Init::Zeros);
    let m = b.state("m", [2, 3], Init::Zeros);
    let mut pool = vec![
        b.input("x", [2, 3], DType::F32),
        b.input("y", [2, 3], DType::F32),
        b.input("v", [3], DType::F32),
        b.scalar("s", DType::F32),
        b.input("z", [3, 2], DType::F32),
        p.clone(),
        m.clone(),
    ];
    let mut int = b.input("i", [2, 3], DType::I32);
    let k = |i: u8| CONSTS[i as usize % CONSTS.len()];
    for st in steps {
        let next = match st {
            Step::Unary(o, a) => Some(unary(*o, &pick(&pool, *a))),
            Step::Chain(o, p, a) => Some(unary(*p, &unary(*o, &pick(&pool, *a)))),
            Step::Binary(o, a, c) => {
                let (a, c) = (pick(&pool, *a), pick(&pool, *c));
                match Shape::broadcast(&a.shape(), &c.shape()) {
                    Ok(s) if small(&s) => Some(match o % 6 {
                        0 => &a + &c,
                        1 => &a - &c,
                        2 => &a * &c,
                        3 => &a / &c,
                        4 => a.maximum(&c),
                        _ => a.minimum(&c),
                    }),
                    _ => None,
                }
            }
            Step::ConstBinary(o, a, c, left) => {
                let a = pick(&pool, *a);
                let c = k(*c);
                Some(match (o % 4, left) {
                    (0, false) => &a + c,
                    (0, true) => c + &a,
                    (1, false) => &a - c,
                    (1, true) => c - &a,
                    (2, false) => &a * c,
                    (2, true) => c * &a,
                    (_, false) => &a / c,
                    (_, true) => c / &a,
                })
            }
            Step::Pow(e, a) => Some(pick(&pool, *a).powf(POWS[*e as usize % POWS.len()])),
            Step::Reduce(o, a, mask, keepdims) => {
                let a = pick(&pool, *a);
                let axes: Vec<usize> = (0..a.rank()).filter(|i| mask >> i & 1 == 1).collect();
                Some(match o % 4 {
                    0 => a.sum(&axes, *keepdims),
                    1 => a.mean(&axes, *keepdims),
                    2 => a.max(&axes, *keepdims),
                    _ => a.min(&axes, *keepdims),
                })
            }
            Step::Broadcast(a, t) => {
                let a = pick(&pool, *a);
                let targets = [vec![2, 3], vec![4, 2, 3], vec![3, 3], vec![2, 1, 3], vec![3, 2]];
                let t = Shape::from(targets[*t as usize % targets.len()].clone());
                a.shape().broadcasts_to(&t).then(|| a.broadcast_to(t))
            }
            Step::Reshape(a, t) => {
                let a = pick(&pool, *a);
                let n = a.numel();
                let mut cands = vec![vec![n], vec![1, n], vec![n, 1]];
                if n.is_multiple_of(2) {
                    cands.push(vec![2, n / 2]);
                }
                if n.is_multiple_of(3) {
                    cands.push(vec![n / 3, 3]);
                }
                Some(a.reshape(cands[*t as usize % cands.len()].clone()))
            }
            Step::Transpose(a) => {
                let a = pick(&pool, *a);
                match a.rank() {
                    2 => Some(a.t()),
                    3 => Some(a.permute(&[2, 0, 1])),
                    _ => None,
                }
            }
            Step::MatMul(a, c) => {
                let (a, c) = (pick(&pool, *a), pick(&pool, *c));
                let (da, dc) = (a.dims(), c.dims());
                if da.len() == 2 && dc.len() == 2 && da[1] == dc[0] {
                    Some(a.matmul(&c))
                } else if da.len() == 2 && dc.len() == 2 && da[1] == dc[1] {
                    Some(a.matmul(&c.t()))
                } else {
                    None
                }
            }
            Step::Select(o, a, c) => {
                let (a, c) = (pick(&pool, *a), pick(&pool, *c));
                match Shape::broadcast(&a.shape(), &c.shape()) {
                    Ok(s) if small(&s) => {
                        let cond = if o % 2 == 0 { a.lt(&c) } else { a.ge(&c) };
                        Some(cond.select(&a, &c))
                    }
                    _ => None,
                }
            }
            Step::Int(o, c) => {
                let c = [0, 1, -1, 2, 3][*c as usize % 5];
                int = match o % 6 {
                    0 => int.mul(c),
                    1 => int.add(c),
                    2 => int.sub(&int),
                    3 => int.neg(),
                    4 => int.maximum(c),
                    _ => int.sub(c),
                };
                Some(int.cast(DType::F32))
            }
        };
        if let Some(t) = next {
            pool.push(t);
        }
    }
    let n = pool.len();
    b.output("last", &pool[n - 1]);
    b.output("second", &pool[n - 2]);
    b.output("picked", &pick(&pool, out_pick));
    if let Some(new_p) = pool.iter().rev().find(|t| t.dims() == [2, 3]) {
        b.update(&p, new_p);
    }
    let m2 = &m * 0.9 + pool[n - 1].sum_all() * 0.1;
    b.update(&m, &m2);
    b.finish().expect("the generator only builds valid graphs")
}

/// Whether the original runs into overflow/underflow territory, where the float
/// policy allows the forms to differ: a finite value beyond 1e100 or a nonzero one
/// below 1e-100 anywhere, an `exp` of a finite argument beyond ±700 (which
/// overflows to inf or underflows to 0 in f64), or `sin`/`cos` of an argument beyond
/// 1e4 (where rounding differences are amplified beyond any tolerance).
fn extreme(g: &Graph, bindings: &kiln_ir::Bindings) -> bool {
    let Ok(eval) = evaluate(g, bindings) else { return true };
    let extreme_value = |x: f64| x.is_finite() && x != 0.0 && !(1e-100..=1e100).contains(&x.abs());
    g.ids().any(|id| {
        let Some(v) = eval.value(id) else { return false };
        if v.data.iter().any(|&x| extreme_value(x)) {
            return true;
        }
        let node = g.node(id);
        // exp overflows/underflows; sin/cos of a large argument turn a last-bit
        // difference into a different value.
        let limit = match node.op {
            Op::Unary(UnaryOp::Exp) => 700.0,
            Op::Unary(UnaryOp::Sin | UnaryOp::Cos) => 1e4,
            _ => return false,
        };
        eval.value(node.inputs[0])
            .is_some_and(|a| a.data.iter().any(|x| x.is_finite() && x.abs() > limit))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rewriting_preserves_semantics(
        steps in prop::collection::vec(step(), 1..16),
        out_pick in any::<u8>(),
        seed in any::<u64>(),
    ) {
        let g = build(&steps, out_pick);
        let opts = RewriteOptions { time_limit: Duration::from_secs(20), ..RewriteOptions::default() };
        let (out, st) = rewrite(&g, &opts);
        prop_assert!(st.fallback.is_none() || st.fallback.as_deref().is_some_and(|f| f.contains("costs more")),
            "fell back: {st}");
        prop_assert_eq!(st.rejected_proposals, 0);
        prop_assert!(st.cost_after <= st.cost_before, "{}", st);
        for special in [false, true] {
            let bindings = verify::random_bindings(&g, seed, special);
            if extreme(&g, &bindings) {
                continue;
            }
            if let Err(e) = verify::compare(&g, &out, &bindings, 1e-6) {
                prop_assert!(false, "{e}\nspecial values: {special}\nbefore:\n{g}\nafter:\n{out}\n{st}");
            }
        }
    }
}
