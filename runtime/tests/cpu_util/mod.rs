//! Shared helpers of the CPU backend tests: a tiny deterministic RNG, hand-built kernel
//! programs, and running a program both on the JIT and on the kernel-IR evaluator.
#![allow(dead_code)]

use std::collections::HashMap;

use kiln_compiler::codegen::clif::ClifOptions;
use kiln_compiler::kernel::eval::eval_program;
use kiln_compiler::kernel::{
    Buffer, BufferId, BufferRole, IndexExpr, Inst, Kernel, LoopKernel, Program, ScalarSlot, Stage, Storage, Store,
    ValueId,
};
use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Value};
use kiln_runtime::compile::compile_program;

/// Sizes that exercise empty-ish, sub-vector, tail and thread-split paths.
pub const ODD_SIZES: [usize; 5] = [1, 3, 17, 783, 4097];

/// Every codegen variant tests must agree across.
pub fn variants() -> Vec<ClifOptions> {
    vec![
        ClifOptions { simd: true, fma: true },
        ClifOptions { simd: false, fma: true },
        ClifOptions { simd: true, fma: false },
    ]
}

/// xorshift64*: deterministic test data without dependencies.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// f32-representable values in [lo, hi).
    pub fn f32s(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.uniform(lo, hi) as f32 as f64).collect()
    }
}

pub fn buffer(len: usize, dtype: DType, role: BufferRole) -> Buffer {
    Buffer {
        len,
        dtype,
        role,
        storage: Storage::Own,
    }
}

pub fn input(name: &str, len: usize, dtype: DType) -> Buffer {
    buffer(len, dtype, BufferRole::Input(name.into()))
}

pub fn output(name: &str, len: usize, dtype: DType) -> Buffer {
    buffer(len, dtype, BufferRole::Output(name.into()))
}

pub fn v(i: u32) -> ValueId {
    ValueId(i)
}

pub fn b(i: u32) -> BufferId {
    BufferId(i)
}

pub fn var(k: usize) -> IndexExpr {
    IndexExpr::Var(k)
}

pub fn load(buf: u32, index: IndexExpr) -> Inst {
    Inst::Load {
        buf: BufferId(buf),
        index,
        guards: vec![],
        fill: 0.0,
    }
}

/// Row-major flat index over `dims` of loop variables `first..first+dims.len()`.
pub fn flat(first: usize, dims: &[usize]) -> IndexExpr {
    let mut e = IndexExpr::Const(0);
    let mut stride = 1i64;
    for (i, &d) in dims.iter().enumerate().rev() {
        e = IndexExpr::Var(first + i).mul(stride).add(e);
        stride *= d as i64;
    }
    e
}

/// A one-stage elementwise kernel over `outer` storing `out` into buffer `out_buf` at
/// the flat index.
pub fn elementwise_kernel(
    name: &str,
    outer: &[usize],
    insts: Vec<(ValueId, Inst)>,
    stores: Vec<(u32, ValueId)>,
) -> LoopKernel {
    let idx = flat(0, outer);
    LoopKernel {
        name: name.into(),
        nodes: vec![],
        outer: outer.to_vec(),
        stages: vec![Stage {
            inner: vec![],
            insts,
            accumulators: vec![],
            stores: stores
                .into_iter()
                .map(|(buf, value)| Store {
                    buf: BufferId(buf),
                    index: idx.clone(),
                    value,
                })
                .collect(),
        }],
    }
}

pub fn program(buffers: Vec<Buffer>, scalars: Vec<(&str, DType)>, kernels: Vec<LoopKernel>) -> Program {
    Program {
        buffers,
        scalars: scalars
            .into_iter()
            .map(|(n, d)| ScalarSlot {
                name: n.into(),
                dtype: d,
            })
            .collect(),
        kernels: kernels.into_iter().map(Kernel::Loop).collect(),
        updates: vec![],
        not_fused: vec![],
    }
}

/// Run `p` on the JIT (with poisoned outputs) under `opts`.
pub fn run_jit(p: &Program, bindings: &Bindings, opts: &ClifOptions) -> HashMap<String, Value> {
    let mut exe = compile_program(p.clone(), opts).unwrap_or_else(|e| panic!("compile failed: {e}\n{p}"));
    exe.set_poison(true);
    let mut inputs = Bindings::new();
    for (name, val) in bindings {
        if p.scalars.iter().any(|s| &s.name == name) {
            exe.set_scalar(name, val.data[0]).unwrap();
        } else if p
            .buffers
            .iter()
            .any(|bb| matches!(&bb.role, BufferRole::Input(n) if n == name))
        {
            inputs.insert(name.clone(), val.clone());
        } else {
            exe.set(name, val).unwrap();
        }
    }
    exe.run(&inputs).unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// The kernel-IR evaluator's outputs (the f64 oracle).
pub fn run_eval(p: &Program, bindings: &Bindings) -> HashMap<String, Value> {
    eval_program(p, bindings)
        .unwrap_or_else(|e| panic!("evaluator rejected the program: {e}\n{p}"))
        .outputs
}

/// Max over elements of |a-b| / (atol + rtol*|b|); NaN must match NaN, inf must match.
pub fn check_close(what: &str, got: &Value, want: &Value, atol: f64, rtol: f64) {
    assert_eq!(got.data.len(), want.data.len(), "{what}: lengths differ");
    assert_eq!(got.dtype, want.dtype, "{what}: dtypes differ");
    for (i, (&g, &w)) in got.data.iter().zip(&want.data).enumerate() {
        let w32 = if want.dtype == DType::F32 { w as f32 as f64 } else { w };
        let ok = if w32.is_nan() {
            g.is_nan()
        } else if w32.is_infinite() {
            g == w32
        } else {
            (g - w).abs() <= atol + rtol * w.abs()
        };
        assert!(ok, "{what}: element {i} of {}: got {g}, want {w}", got.data.len());
    }
}

/// Run `p` under every variant and compare every output with the evaluator.
pub fn check_program(what: &str, p: &Program, bindings: &Bindings, atol: f64, rtol: f64) {
    let want = run_eval(p, bindings);
    for opts in variants() {
        let got = run_jit(p, bindings, &opts);
        for (name, w) in &want {
            let g = &got[name];
            check_close(&format!("{what} [{opts:?}] output {name}"), g, w, atol, rtol);
        }
    }
}

pub fn bind(pairs: Vec<(&str, Value)>) -> Bindings {
    pairs.into_iter().map(|(n, v)| (n.to_string(), v)).collect()
}

pub fn f32_value(data: Vec<f64>) -> Value {
    let n = data.len();
    Value::new(vec![n], DType::F32, data).unwrap()
}

pub fn i32_value(data: Vec<f64>) -> Value {
    let n = data.len();
    Value::new(vec![n], DType::I32, data).unwrap()
}
