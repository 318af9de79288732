//! Shared helpers of the lowering tests: deterministic random bindings for any graph,
//! and the differential check `eval(lower(g, options))` == the reference interpreter
//! for every lowering mode.

#![allow(dead_code)]

use kiln_compiler::kernel::eval::eval_program;
use kiln_compiler::kernel::Program;
use kiln_compiler::lower::{lower, LowerOptions};
use kiln_ir::interp::{evaluate, Bindings};
use kiln_ir::{DType, Graph, Op, Value};

/// A small deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Random values for every input, param, state and scalar of `g`: floats in [-2, 2]
/// (f32 values rounded to f32), i32 in [-1, 6] (some indices out of range), bools.
pub fn bindings(g: &Graph, seed: u64) -> Bindings {
    let mut rng = Rng(seed);
    let mut b = Bindings::new();
    for id in g.ids() {
        let node = g.node(id);
        let Some(name) = node.op.source_name() else { continue };
        let n = node.shape().numel();
        let data: Vec<f64> = (0..n)
            .map(|_| match node.dtype() {
                DType::I32 => rng.below(8) as f64 - 1.0,
                DType::Bool => rng.below(2) as f64,
                _ => rng.uniform(-2.0, 2.0) as f32 as f64,
            })
            .collect();
        let data = if matches!(node.op, Op::Scalar { .. }) && node.dtype() == DType::I32 {
            vec![rng.below(5) as f64 + 1.0]
        } else {
            data
        };
        b.insert(
            name.to_string(),
            Value::new(node.shape().clone(), node.dtype(), data).unwrap(),
        );
    }
    b
}

/// Every lowering mode the differential tests run.
pub fn modes() -> Vec<(&'static str, LowerOptions)> {
    let fused = LowerOptions::fused();
    vec![
        ("fused", fused.clone()),
        ("unfused", LowerOptions::unfused()),
        (
            "fused, separate updates",
            LowerOptions {
                fuse_updates: false,
                ..fused.clone()
            },
        ),
        (
            "fused, no planning",
            LowerOptions {
                horizontal: false,
                in_place: false,
                reuse_memory: false,
                ..fused
            },
        ),
    ]
}

/// Largest difference, scaled by max(1, |want|); NaN on one side only is infinite.
pub fn rel_diff(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    got.iter()
        .zip(want)
        .map(|(&a, &b)| match (a.is_nan(), b.is_nan()) {
            (true, true) => 0.0,
            (true, false) | (false, true) => f64::INFINITY,
            _ if a == b => 0.0,
            _ => (a - b).abs() / b.abs().max(1.0),
        })
        .fold(0.0, f64::max)
}

/// Lower `g` in `mode` and compare every output and update with the interpreter.
pub fn check_mode(g: &Graph, b: &Bindings, what: &str, opts: &LowerOptions, tol: f64) -> Program {
    let want = evaluate(g, b).unwrap_or_else(|e| panic!("interpreter: {e}"));
    let p = lower(g, opts).unwrap_or_else(|e| panic!("{what}: lower failed: {e}"));
    let run = eval_program(&p, b).unwrap_or_else(|e| panic!("{what}: eval failed: {e}\n{p}"));
    for (name, id) in g.outputs() {
        let w = want.value(*id).unwrap();
        let got = &run.outputs[name];
        let d = rel_diff(&got.data, &w.data);
        assert!(
            d <= tol,
            "{what}: output `{name}` differs by {d}\n got {got}\nwant {w}\n{p}"
        );
    }
    for (t, _) in g.updates() {
        let name = g.node(*t).op.source_name().unwrap();
        let w = want.updated(g, name).unwrap();
        let got = run
            .updates
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no update of `{name}`\n{p}"));
        let d = rel_diff(&got.data, &w.data);
        assert!(d <= tol, "{what}: update of `{name}` differs by {d}\n{p}");
    }
    p
}

/// [`check_mode`] in every mode; returns the (fused, unfused) programs.
pub fn check(g: &Graph, seed: u64) -> (Program, Program) {
    let b = bindings(g, seed);
    let mut progs = Vec::new();
    for (what, opts) in modes() {
        progs.push(check_mode(g, &b, what, &opts, 0.0));
    }
    let unfused = progs.swap_remove(1);
    (progs.swap_remove(0), unfused)
}
