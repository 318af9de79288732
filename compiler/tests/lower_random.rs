//! Random graphs (proptest picks a seed and a length; the graph is built from a pool of
//! tensors with random ops: elementwise with broadcasting, reductions, argmax, every
//! movement op, matmuls, casts, selects, params with updates) lowered in every mode and
//! compared exactly with the reference interpreter.

mod lower_util;

use kiln_ir::{DType, Graph, GraphBuilder, Init, Tensor};
use lower_util::{check, Rng};
use proptest::prelude::*;

const DIMS: [usize; 5] = [1, 2, 3, 5, 7];

fn pick<'a>(rng: &mut Rng, pool: &'a [Tensor]) -> &'a Tensor {
    &pool[rng.below(pool.len() as u64) as usize]
}

/// A random subset of `0..rank` (sorted, possibly empty).
fn axes(rng: &mut Rng, rank: usize) -> Vec<usize> {
    (0..rank).filter(|_| rng.below(2) == 0).collect()
}

fn random_op(rng: &mut Rng, pool: &[Tensor]) -> Option<Tensor> {
    let t = pick(rng, pool).clone();
    let dims = t.dims();
    let r = dims.len();
    Some(match rng.below(16) {
        0 => match rng.below(6) {
            0 => t.exp().neg(),
            1 => t.tanh(),
            2 => t.abs().sqrt(),
            3 => t.sigmoid(),
            4 => t.relu(),
            _ => t.powf(2.0),
        },
        1 | 2 => {
            // a partner that broadcasts against t
            let partners: Vec<Tensor> = pool
                .iter()
                .filter(|u| u.dtype() == t.dtype() && kiln_ir::Shape::broadcast(&u.shape(), &t.shape()).is_ok())
                .cloned()
                .collect();
            let u = pick(rng, &partners);
            let u = if rng.below(3) == 0 {
                t.max(&axes(rng, r), true)
            } else {
                u.clone()
            };
            match rng.below(5) {
                0 => &t + &u,
                1 => &t * &u,
                2 => &t - &u,
                3 => t.maximum(&u),
                _ => &t / &(u.abs() + 1.0),
            }
        }
        3 | 4 => {
            let ax = axes(rng, r);
            let keep = rng.below(2) == 0;
            match rng.below(4) {
                0 => t.sum(&ax, keep),
                1 => t.mean(&ax, keep),
                2 => t.max(&ax, keep),
                _ => t.min(&ax, keep),
            }
        }
        5 if r > 0 => {
            let a = rng.below(r as u64) as usize;
            if dims[a] == 0 {
                return None;
            }
            t.argmax(a).cast(DType::F32)
        }
        6 => t.reshape([t.numel()]),
        7 if r >= 1 => {
            // split the last axis or merge the first two
            if r >= 2 && rng.below(2) == 0 {
                let mut d = vec![dims[0] * dims[1]];
                d.extend_from_slice(&dims[2..]);
                t.reshape(d)
            } else {
                let mut d = dims[..r - 1].to_vec();
                d.extend([1, dims[r - 1]]);
                t.reshape(d)
            }
        }
        8 if r >= 2 => {
            let mut perm: Vec<usize> = (0..r).collect();
            for i in (1..r).rev() {
                perm.swap(i, rng.below(i as u64 + 1) as usize);
            }
            t.permute(&perm)
        }
        9 if r >= 1 => {
            let starts: Vec<usize> = dims.iter().map(|&d| rng.below(d as u64) as usize).collect();
            let ends: Vec<usize> = dims
                .iter()
                .zip(&starts)
                .map(|(&d, &s)| s + 1 + rng.below((d - s) as u64) as usize)
                .collect();
            let steps: Vec<usize> = dims.iter().map(|_| 1 + rng.below(2) as usize).collect();
            t.slice(&starts, &ends, &steps)
        }
        10 => {
            let low: Vec<usize> = dims.iter().map(|_| rng.below(2) as usize).collect();
            let high: Vec<usize> = dims.iter().map(|_| rng.below(2) as usize).collect();
            t.pad(&low, &high, rng.uniform(-1.0, 1.0))
        }
        11 if r >= 1 => {
            let a = rng.below(r as u64) as usize;
            let other = pool.iter().find(|u| {
                u.rank() == r && (0..r).all(|i| i == a || u.dims()[i] == dims[i]) && u.dtype() == t.dtype()
            })?;
            t.concat(&[&other.exp()], a)
        }
        12 if r == 2 => {
            if rng.below(2) == 0 {
                t.matmul(&t.t())
            } else {
                t.t().matmul(&(&t + 1.0))
            }
        }
        13 => {
            let mut d = vec![DIMS[rng.below(3) as usize + 1]];
            d.extend_from_slice(&dims);
            t.broadcast_to(d) * 0.5
        }
        14 => (t.cast(DType::I32) * 3).cast(DType::F32),
        _ => t.gt(0.0).select(&t, t.cos()),
    })
}

fn random_graph(seed: u64, len: usize) -> Graph {
    let mut rng = Rng(seed);
    let b = GraphBuilder::new();
    let (m, n) = (DIMS[rng.below(5) as usize], DIMS[rng.below(5) as usize]);
    let x = b.input("x", [m, n], DType::F32);
    let y = b.input("y", [n], DType::F32);
    let p = b.param("p", [m, n], Init::Zeros);
    let mut pool = vec![x.clone(), y, p.clone(), &x * &p];
    for _ in 0..len {
        if let Some(t) = random_op(&mut rng, &pool) {
            if t.check().is_ok() && t.rank() <= 4 && t.numel() <= 4096 {
                pool.push(t);
            }
        }
    }
    let last = pool.last().unwrap().clone();
    b.output("last", &last);
    b.output("other", pick(&mut rng, &pool));
    // an update of p from something of its shape
    if let Some(u) = pool.iter().rev().find(|t| t.shape() == p.shape()) {
        b.update(&p, &(&p - &(u * 0.1)));
    }
    b.finish().unwrap_or_else(|e| panic!("seed {seed}: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_graphs_match_the_interpreter(seed in any::<u64>(), len in 1usize..14) {
        let g = random_graph(seed, len);
        check(&g, seed ^ 0x5EED);
    }
}
