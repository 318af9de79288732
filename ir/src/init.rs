//! Initial values of parameters and optimizer state, deterministic from (seed, name):
//! the same seed and name give bit-identical values on every machine and every run,
//! independent of graph order, so adding a layer never changes another layer's init.
//! Owns the mapping from `Init` to numbers; it must not depend on graph evaluation.
//!
//! Mapping: `k = FNV-1a("kiln.init", seed, name)` (`crate::hash::StableHasher`),
//! Philox key `[k as u32, (k >> 32) as u32]`; element at flat row-major index `i` uses
//! `w = philox4x32_10([i as u32, (i >> 32) as u32, 0, 0], key)`. A uniform draw is
//! `uniform_from_u32(w[0])` in (0, 1) and a normal draw is `normal_from_u32(w[0], w[1])`
//! (Box–Muller), as in `crate::philox`. Every value is rounded to f32 because params
//! and state are f32 tensors: a backend that loads them holds exactly these numbers.
//! A fan of 0 is treated as 1 (it only occurs for tensors without elements).

use crate::graph::{Graph, SourceKind};
use crate::hash::StableHasher;
use crate::interp::Bindings;
use crate::op::{Init, Op};
use crate::philox::{normal_from_u32, philox4x32_10, uniform_from_u32};
use crate::value::Value;
use crate::{DType, Shape};

/// The Philox key of parameter/state `name` under `seed`.
pub fn init_key(seed: u64, name: &str) -> [u32; 2] {
    let mut h = StableHasher::default();
    h.str("kiln.init");
    h.u64(seed);
    h.str(name);
    let k = h.finish();
    [k as u32, (k >> 32) as u32]
}

fn words(key: [u32; 2], i: usize) -> [u32; 4] {
    let i = i as u64;
    philox4x32_10([i as u32, (i >> 32) as u32, 0, 0], key)
}

/// `n` draws of U(low, high).
fn uniform(key: [u32; 2], n: usize, low: f64, high: f64) -> Vec<f64> {
    (0..n)
        .map(|i| low + (high - low) * uniform_from_u32(words(key, i)[0]))
        .collect()
}

/// `n` draws of N(mean, std^2).
fn normal(key: [u32; 2], n: usize, mean: f64, std: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let w = words(key, i);
            mean + std * normal_from_u32(w[0], w[1])
        })
        .collect()
}

/// The initial f32 value of a param/state named `name` of `shape` (see the module doc).
pub fn init_value(init: &Init, shape: &Shape, seed: u64, name: &str) -> Value {
    let n = shape.numel();
    let key = init_key(seed, name);
    let fan = |f: usize| f.max(1) as f64;
    let data = match *init {
        Init::Zeros => vec![0.0; n],
        Init::Constant(c) => vec![c; n],
        Init::Uniform { low, high } => uniform(key, n, low, high),
        Init::Normal { mean, std } => normal(key, n, mean, std),
        Init::KaimingUniform { fan_in } => {
            let b = 1.0 / fan(fan_in).sqrt();
            uniform(key, n, -b, b)
        }
        Init::KaimingNormal { fan_in } => normal(key, n, 0.0, (2.0 / fan(fan_in)).sqrt()),
        Init::XavierUniform { fan_in, fan_out } => {
            let b = (6.0 / fan(fan_in + fan_out)).sqrt();
            uniform(key, n, -b, b)
        }
    };
    Value {
        shape: shape.clone(),
        dtype: DType::F32,
        data: data.into_iter().map(|x| x as f32 as f64).collect(),
    }
}

/// Bindings holding the initial value of every param and state of `graph`.
pub fn initial_bindings(graph: &Graph, seed: u64) -> Bindings {
    let mut b = Bindings::new();
    for kind in [SourceKind::Param, SourceKind::State] {
        for id in graph.sources_of(kind) {
            let node = graph.node(id);
            if let Op::Param { name, init } | Op::State { name, init } = &node.op {
                b.insert(name.clone(), init_value(init, node.shape(), seed, name));
            }
        }
    }
    b
}
