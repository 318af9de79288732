//! Shared helpers of the graph-level CPU tests: random bindings for a graph's inputs,
//! and the three-way check "compiled fused == compiled unfused == reference
//! interpreter" over several steps (outputs and every updated param/state).
#![allow(dead_code)]

use kiln_compiler::codegen::clif::ClifOptions;
use kiln_ir::interp::{apply_updates, evaluate, Bindings};
use kiln_ir::{DType, Graph, SourceKind, Value};
use kiln_runtime::compile::{CompileCache, CompileOptions};

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Random values for every input of `g`: f32 in [-1, 1), i32 in [0, int_range), bool.
pub fn random_inputs(g: &Graph, seed: u64, int_range: u64) -> Bindings {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut b = Bindings::new();
    for id in g.sources_of(SourceKind::Input) {
        let n = g.node(id);
        let data: Vec<f64> = (0..n.shape().numel())
            .map(|_| match n.dtype() {
                DType::I32 => rng.below(int_range) as f64,
                DType::Bool => rng.below(2) as f64,
                _ => rng.uniform(-1.0, 1.0) as f32 as f64,
            })
            .collect();
        b.insert(
            n.op.source_name().unwrap().to_string(),
            Value::new(n.shape().clone(), n.dtype(), data).unwrap(),
        );
    }
    b
}

/// Normwise agreement: max |got - want| <= tol * max(1, max |want|); NaN/inf patterns equal.
pub fn assert_close(what: &str, got: &Value, want: &Value, tol: f64) {
    assert_eq!(got.shape, want.shape, "{what}: shapes differ");
    assert_eq!(got.dtype, want.dtype, "{what}: dtypes differ");
    let scale = want
        .data
        .iter()
        .filter(|x| x.is_finite())
        .fold(1.0f64, |m, &x| m.max(x.abs()));
    for (i, (&g, &w)) in got.data.iter().zip(&want.data).enumerate() {
        let w32 = if want.dtype == DType::F32 { w as f32 as f64 } else { w };
        let ok = if w32.is_nan() {
            g.is_nan()
        } else if w32.is_infinite() {
            g == w32
        } else if want.dtype == DType::F32 {
            (g - w).abs() <= tol * scale
        } else {
            g == w
        };
        assert!(
            ok,
            "{what}: element {i} of {}: got {g}, want {w} (scale {scale})",
            want.data.len()
        );
    }
}

/// The compile configurations every graph is checked under.
pub fn configs() -> Vec<(&'static str, CompileOptions)> {
    let base = CompileOptions {
        rewrite: false,
        seed: 5,
        ..CompileOptions::default()
    };
    vec![
        ("fused", base.clone()),
        (
            "unfused",
            CompileOptions {
                fuse: false,
                ..base.clone()
            },
        ),
        (
            "fused+rewrite",
            CompileOptions {
                rewrite: true,
                ..base.clone()
            },
        ),
        (
            "fused scalar no-fma",
            CompileOptions {
                codegen: ClifOptions {
                    simd: false,
                    fma: false,
                },
                ..base
            },
        ),
    ]
}

/// Run `steps` steps of `g` on the interpreter and compiled under every config, with the
/// same inputs (and runtime scalars) each step, comparing outputs and updated
/// params/state after every step. The fused kernel program is also run once on the
/// kernel-IR evaluator: codegen == evaluator == interpreter.
pub fn check_graph(what: &str, g: &Graph, inputs: &Bindings, steps: usize, tol: f64) {
    let mut first = kiln_ir::init::initial_bindings(g, 5);
    first.extend(inputs.clone());
    let want = evaluate(g, &first).unwrap_or_else(|e| panic!("{what}: interpreter failed: {e}"));
    let program = kiln_compiler::lower::lower(g, &kiln_compiler::lower::LowerOptions::fused())
        .unwrap_or_else(|e| panic!("{what}: lowering failed: {e}"));
    let run = kiln_compiler::kernel::eval::eval_program(&program, &first)
        .unwrap_or_else(|e| panic!("{what}: kernel-IR evaluator failed: {e}"));
    for (out, _) in g.outputs() {
        let w = want.output(g, out).unwrap();
        let mut got = run.outputs[out].clone();
        got.shape = w.shape.clone();
        assert_close(&format!("{what} [kernel-IR evaluator] output {out}"), &got, w, 1e-9);
    }
    let cache = CompileCache::new();
    for (name, opts) in configs() {
        let mut exe = cache
            .compile(g, &opts)
            .unwrap_or_else(|e| panic!("{what} [{name}]: compile failed: {e}"));
        exe.set_poison(true);
        let mut reference = kiln_ir::init::initial_bindings(g, opts.seed);
        reference.extend(inputs.clone());
        for step in 0..steps {
            let eval = evaluate(g, &reference).unwrap_or_else(|e| panic!("{what}: interpreter failed: {e}"));
            let got = exe
                .run(inputs)
                .unwrap_or_else(|e| panic!("{what} [{name}] step {step}: run failed: {e}"));
            for (out, _) in g.outputs() {
                let want = eval.output(g, out).unwrap();
                assert_close(
                    &format!("{what} [{name}] step {step} output {out}"),
                    &got[out],
                    want,
                    tol,
                );
            }
            apply_updates(g, &eval, &mut reference);
            for id in g
                .sources_of(SourceKind::Param)
                .into_iter()
                .chain(g.sources_of(SourceKind::State))
            {
                let pname = g.node(id).op.source_name().unwrap();
                let got = exe.get(pname).unwrap();
                assert_close(
                    &format!("{what} [{name}] step {step} param/state {pname}"),
                    &got,
                    &reference[pname],
                    tol,
                );
            }
        }
    }
}
