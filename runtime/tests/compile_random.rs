//! Random graphs (proptest, small case counts): elementwise DAGs with broadcasting,
//! reductions (kept and broadcast back), transposes and reshapes over odd shapes, run
//! fused, unfused, rewritten and scalar-only on the CPU backend and compared with the
//! reference interpreter.

mod compile_util;

use compile_util::*;
use kiln_ir::{DType, GraphBuilder, Tensor};
use proptest::prelude::*;

/// One step of a random program over a stack of [r, c] tensors.
#[derive(Clone, Debug)]
enum Step {
    Unary(u8, usize),
    Binary(u8, usize, usize),
    /// Combine with a row vector ([c]) or column ([r, 1]) broadcast.
    Broadcast(u8, usize, bool),
    /// Reduce over an axis (keepdims) and broadcast back against another value.
    Reduce(u8, usize, usize, usize),
    /// Transpose through reshape-compatible square-free path: x.t().t().
    Transpose(usize),
    /// Reshape to [c, r] and back.
    Reshape(usize),
    Compare(u8, usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..9, 0usize..8).prop_map(|(o, a)| Step::Unary(o, a)),
        (0u8..6, 0usize..8, 0usize..8).prop_map(|(o, a, b)| Step::Binary(o, a, b)),
        (0u8..4, 0usize..8, any::<bool>()).prop_map(|(o, a, row)| Step::Broadcast(o, a, row)),
        (0u8..4, 0usize..2, 0usize..8, 0usize..8).prop_map(|(o, ax, a, b)| Step::Reduce(o, ax, a, b)),
        (0usize..8).prop_map(Step::Transpose),
        (0usize..8).prop_map(Step::Reshape),
        (0u8..3, 0usize..8, 0usize..8).prop_map(|(o, a, b)| Step::Compare(o, a, b)),
    ]
}

fn build(r: usize, c: usize, steps: &[Step]) -> kiln_ir::Graph {
    let b = GraphBuilder::new();
    let x = b.input("x", [r, c], DType::F32);
    let y = b.input("y", [r, c], DType::F32);
    let row = b.input("row", [c], DType::F32);
    let col = b.input("col", [r, 1], DType::F32);
    let mut stack: Vec<Tensor> = vec![x, y];
    let pick = |stack: &Vec<Tensor>, i: usize| stack[i % stack.len()].clone();
    for s in steps {
        let t = match s {
            Step::Unary(o, a) => {
                let v = pick(&stack, *a);
                match o {
                    0 => v.exp().minimum(1e3),
                    1 => (v.abs() + 0.5).log(),
                    2 => v.tanh(),
                    3 => v.sigmoid(),
                    4 => v.relu(),
                    5 => (v.abs() + 0.1).sqrt(),
                    6 => v.sin(),
                    7 => v.neg(),
                    _ => (v.abs() + 1.0).recip(),
                }
            }
            Step::Binary(o, a, bb) => {
                let (p, q) = (pick(&stack, *a), pick(&stack, *bb));
                match o {
                    0 => &p + &q,
                    1 => &p - &q,
                    2 => &p * &q,
                    3 => &p / &(q.abs() + 1.0),
                    4 => p.maximum(&q),
                    _ => p.minimum(&q),
                }
            }
            Step::Broadcast(o, a, use_row) => {
                let v = pick(&stack, *a);
                let other = if *use_row { row.clone() } else { col.clone() };
                match o {
                    0 => &v + &other,
                    1 => &v * &other,
                    2 => &v - &other,
                    _ => v.maximum(&other),
                }
            }
            Step::Reduce(o, axis, a, bb) => {
                let v = pick(&stack, *a);
                let red = match o {
                    0 => v.sum(&[*axis], true),
                    1 => v.max(&[*axis], true),
                    2 => v.mean(&[*axis], true),
                    _ => v.min(&[*axis], true),
                };
                &pick(&stack, *bb) - &red
            }
            Step::Transpose(a) => pick(&stack, *a).t().exp().t(),
            Step::Reshape(a) => (pick(&stack, *a).reshape([c, r]) * 0.5).reshape([r, c]),
            Step::Compare(o, a, bb) => {
                let (p, q) = (pick(&stack, *a), pick(&stack, *bb));
                let cond = match o {
                    0 => p.lt(&q),
                    1 => p.ge(&q),
                    _ => p.ne(&q),
                };
                cond.select(&p, &(&q * 2.0))
            }
        };
        stack.push(t);
    }
    let n = stack.len();
    b.output("out", &stack[n - 1]);
    b.output("mid", &stack[n / 2].sum(&[0], false));
    b.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_agree_with_the_interpreter(
        shape in prop_oneof![Just((1usize, 1usize)), Just((3, 17)), Just((17, 3)), Just((5, 33)), Just((2, 131))],
        steps in prop::collection::vec(step(), 1..10),
        seed in 0u64..1000,
    ) {
        let (r, c) = shape;
        let g = build(r, c, &steps);
        check_graph(&format!("random graph {r}x{c} {steps:?}"), &g, &random_inputs(&g, seed, 10), 1, 2e-5);
    }
}
