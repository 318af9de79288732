//! Property test: random well-formed expression graphs built from the op set
//! (elementwise, broadcasting binaries, reductions, movement ops, matmul, select,
//! composites) are gradchecked w.r.t. all their leaves. Cases are small (a few leaves
//! of at most 12 elements, up to 7 ops) so the whole property runs in seconds.
//!
//! Each op is applied in a domain-safe form (log/sqrt/rsqrt/recip of `x² + 0.5`,
//! `exp` of `tanh`), so values stay O(1) and every function is finite and smooth away
//! from the relu/abs/max kinks, which random inputs miss with probability ~1e-6.

use kiln_ir::{DType, GraphBuilder, Shape, Tensor};
use proptest::prelude::*;

use crate::gradcheck::{bindings_for, check, probe_loss};

const LEAF_SHAPES: [&[usize]; 6] = [&[3], &[2, 3], &[2, 1], &[1, 3], &[2, 2, 3], &[]];

#[derive(Clone, Debug)]
enum Step {
    Unary(u8, usize),
    Binary(u8, usize, usize),
    Reduce(u8, usize, usize, bool),
    Movement(u8, usize),
    MatMul(usize, usize),
    Select(usize, usize, usize),
    Composite(u8, usize),
}

fn step() -> impl Strategy<Value = Step> {
    let i = 0usize..16;
    prop_oneof![
        (0u8..14, i.clone()).prop_map(|(k, a)| Step::Unary(k, a)),
        (0u8..6, i.clone(), i.clone()).prop_map(|(k, a, b)| Step::Binary(k, a, b)),
        (0u8..4, i.clone(), 0usize..3, any::<bool>()).prop_map(|(k, a, ax, kd)| Step::Reduce(k, a, ax, kd)),
        (0u8..7, i.clone()).prop_map(|(k, a)| Step::Movement(k, a)),
        (i.clone(), i.clone()).prop_map(|(a, b)| Step::MatMul(a, b)),
        (i.clone(), i.clone(), i.clone()).prop_map(|(c, a, b)| Step::Select(c, a, b)),
        (0u8..4, i).prop_map(|(k, a)| Step::Composite(k, a)),
    ]
}

fn unary(k: u8, x: &Tensor) -> Tensor {
    let pos = || x * x + 0.5;
    match k {
        0 => x.neg(),
        1 => x.tanh().exp(),
        2 => pos().log(),
        3 => pos().sqrt(),
        4 => pos().rsqrt(),
        5 => pos().recip(),
        6 => x.abs(),
        7 => x.tanh(),
        8 => x.sigmoid(),
        9 => x.relu(),
        10 => x.sin(),
        11 => x.cos(),
        12 => x.powf(3.0),
        _ => pos().powf(-0.5),
    }
}

/// Make `b` broadcast-compatible with `a`: keep it if NumPy broadcasting works,
/// otherwise reduce it to a scalar.
fn compatible(a: &Tensor, b: &Tensor) -> Tensor {
    if Shape::broadcast(&a.shape(), &b.shape()).is_ok() {
        b.clone()
    } else {
        b.mean_all()
    }
}

fn binary(k: u8, a: &Tensor, b: &Tensor) -> Tensor {
    let b = compatible(a, b);
    match k {
        0 => a + &b,
        1 => a - &b,
        2 => a * &b,
        3 => a / &(&b * &b + 0.5),
        4 => a.maximum(&b),
        _ => a.minimum(&b),
    }
}

fn reduce(k: u8, a: &Tensor, axis: usize, keepdims: bool) -> Tensor {
    if a.rank() == 0 {
        return a * 2.0;
    }
    let ax = [axis % a.rank()];
    match k {
        0 => a.sum(&ax, keepdims),
        1 => a.mean(&ax, keepdims),
        2 => a.max(&ax, keepdims),
        _ => a.min(&ax, keepdims),
    }
}

fn movement(k: u8, a: &Tensor) -> Tensor {
    let d = a.dims();
    let r = d.len();
    if r == 0 {
        return a.broadcast_to([2]);
    }
    match k {
        0 => a.reshape([a.numel()]),
        1 => a.permute(&(0..r).rev().collect::<Vec<_>>()),
        2 => {
            // every 2nd element of axis 0 from 0 (steps are the interesting case)
            let mut steps = vec![1; r];
            steps[0] = 2;
            a.slice(&vec![0; r], &d, &steps)
        }
        3 => a.pad(&vec![1; r], &vec![0; r], 0.25),
        4 => a.concat(&[&a.neg()], r - 1),
        5 => {
            let mut s = vec![2];
            s.extend(&d);
            a.broadcast_to(s)
        }
        _ => a.narrow(r - 1, d[r - 1] / 2, d[r - 1] - d[r - 1] / 2),
    }
}

fn matmul(a: &Tensor, b: &Tensor) -> Tensor {
    let as2 = |t: &Tensor| {
        if t.rank() >= 2 {
            t.clone()
        } else {
            t.reshape([1, t.numel()])
        }
    };
    let a = as2(a);
    // b: reshape to [k, n] matching a's inner dim, or use aᵀ-like fallback.
    let k = a.dims()[a.rank() - 1];
    if b.numel() > 0 && b.numel().is_multiple_of(k) {
        a.matmul(&b.reshape([k, b.numel() / k]))
    } else {
        a.matmul(&a.t())
    }
}

fn composite(k: u8, a: &Tensor) -> Tensor {
    if a.rank() == 0 {
        return a.tanh();
    }
    let last = a.rank() - 1;
    match k {
        0 => a.softmax(last),
        1 => a.log_softmax(0),
        2 => a.logsumexp(&[last], true),
        _ => a.gelu(),
    }
}

fn run_case(leaf_shapes: &[usize], steps: &[Step], seed: u64) {
    let b = GraphBuilder::new();
    let leaves: Vec<Tensor> = leaf_shapes
        .iter()
        .enumerate()
        .map(|(i, &s)| b.input(&format!("leaf{i}"), LEAF_SHAPES[s].to_vec(), DType::F32))
        .collect();
    let mut pool = leaves.clone();
    for s in steps {
        let pick = |i: usize| pool[i % pool.len()].clone();
        let t = match *s {
            Step::Unary(k, a) => unary(k, &pick(a)),
            Step::Binary(k, a, c) => binary(k, &pick(a), &pick(c)),
            Step::Reduce(k, a, ax, kd) => reduce(k, &pick(a), ax, kd),
            Step::Movement(k, a) => movement(k, &pick(a)),
            Step::MatMul(a, c) => matmul(&pick(a), &pick(c)),
            Step::Select(c, a, d) => {
                let (x, y) = (pick(a), pick(d));
                let y = compatible(&x, &y);
                let joint = Shape::broadcast(&x.shape(), &y.shape()).expect("made compatible");
                // The condition comes from a leaf (|v| >= 0.1), never from an intermediate
                // that may be exactly 0 by construction (mean of concat(a, -a)): a
                // perturbation would flip it and finite differences would see a jump.
                let leaf = &leaves[c % leaves.len()];
                let cond = if Shape::broadcast(&joint, &leaf.shape()).is_ok() {
                    leaf.clone()
                } else {
                    leaf.reshape([leaf.numel()]).narrow(0, 0, 1).reshape([])
                };
                cond.gt(0.0).select(&x, &y)
            }
            Step::Composite(k, a) => composite(k, &pick(a)),
        };
        if let Err(e) = t.check() {
            panic!("the generator built an invalid graph: {e}\nsteps: {steps:?}");
        }
        pool.push(t);
    }
    // The loss touches the last result and every leaf (so every wrt is live).
    let mut loss = probe_loss(pool.last().unwrap());
    for l in &leaves {
        loss = loss + &l.sin().sum_all();
    }
    let bind = bindings_for(&loss, seed);
    let refs: Vec<&Tensor> = leaves.iter().collect();
    check(&loss, &refs, &bind);
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    // 256 cases by default (well under a second); PROPTEST_CASES=n overrides for stress runs.
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_graphs_pass_gradcheck(
        leaves in prop::collection::vec(0usize..LEAF_SHAPES.len(), 1..4),
        steps in prop::collection::vec(step(), 1..8),
        seed in any::<u64>(),
    ) {
        run_case(&leaves, &steps, seed);
    }
}
