//! Counter-based randomness on the CPU backend: the CLIF Philox 4x32-10 is bit-identical
//! to `kiln_ir::philox` at both widths, uniform draws of `Random` kernels are the
//! reference values rounded to f32 (bit-identical), normal draws agree to a few ulp —
//! including element indices that cross 2^32 inside one vector.

mod cpu_util;

use cpu_util::*;
use kiln_compiler::codegen::clif::probe::{philox_probe, PhiloxProbeFn};
use kiln_compiler::codegen::clif::{native_isa, ClifOptions};
use kiln_compiler::kernel::{IndexExpr, Inst};
use kiln_ir::philox::{philox4x32_10, random_f64};
use kiln_ir::{DType, Distribution, Value};
use kiln_runtime::cpu::jit_function;

#[test]
fn philox_words_are_bit_identical() {
    let mut rng = Rng::new(21);
    let n = 1027; // vector body plus a 3-element tail
    let mut ctr = vec![0u32; 4 * n];
    for (i, c) in ctr.iter_mut().enumerate() {
        *c = match i % 97 {
            0 => 0,
            1 => u32::MAX,
            _ => rng.next_u64() as u32,
        };
    }
    for key in [[0u32, 0], [u32::MAX, 7], [rng.next_u64() as u32, rng.next_u64() as u32]] {
        for simd in [true, false] {
            let isa = native_isa(&ClifOptions::default()).unwrap();
            let f = philox_probe(isa.as_ref(), simd).unwrap();
            let (_module, ptr) = jit_function(f, isa).unwrap();
            // SAFETY: the probe has exactly this signature; `_module` outlives the call.
            let probe = unsafe { std::mem::transmute::<*const u8, PhiloxProbeFn>(ptr) };
            let mut out = vec![0u32; 4 * n];
            unsafe { probe(ctr.as_ptr(), key.as_ptr(), out.as_mut_ptr(), n as i64) };
            for i in 0..n {
                let c = [ctr[i], ctr[n + i], ctr[2 * n + i], ctr[3 * n + i]];
                let want = philox4x32_10(c, key);
                let got = [out[i], out[n + i], out[2 * n + i], out[3 * n + i]];
                assert_eq!(got, want, "element {i} counter {c:x?} key {key:x?} simd={simd}");
            }
        }
    }
}

/// A kernel drawing `Random { dist, stream }` at flat index `offset + o`.
fn random_program(n: usize, dist: Distribution, stream: u32, offset: i64) -> kiln_compiler::kernel::Program {
    let dims = [3usize, n];
    let k = elementwise_kernel(
        "random",
        &dims,
        vec![
            (v(0), Inst::Scalar { slot: 0 }),
            (v(1), Inst::Scalar { slot: 1 }),
            (
                v(2),
                Inst::Const {
                    value: f64::from(stream as i32),
                    dtype: DType::I32,
                },
            ),
            (
                v(3),
                Inst::Random {
                    dist,
                    stream: v(2),
                    seed: v(0),
                    step: v(1),
                    index: flat(0, &dims).add(IndexExpr::Const(offset)),
                },
            ),
        ],
        vec![(0, v(3))],
    );
    program(
        vec![output("r", 3 * n, DType::F32)],
        vec![("seed", DType::I32), ("step", DType::I32)],
        vec![k],
    )
}

#[test]
fn random_kernels_match_the_reference_mapping() {
    for (dist, stream) in [(Distribution::Uniform, 0u32), (Distribution::Normal, 3)] {
        for n in [1usize, 17, 783] {
            for offset in [0i64, (1i64 << 32) - 5] {
                for (seed, step) in [(0i32, 0i32), (-7, 123_456), (i32::MAX, -1)] {
                    let p = random_program(n, dist, stream, offset);
                    let bindings = bind(vec![
                        ("seed", Value::scalar(seed as f64, DType::I32)),
                        ("step", Value::scalar(step as f64, DType::I32)),
                    ]);
                    for o in variants() {
                        let got = &run_jit(&p, &bindings, &o)["r"];
                        for (i, &g) in got.data.iter().enumerate() {
                            let w = random_f64(dist, seed, step, stream, offset as u64 + i as u64);
                            match dist {
                                Distribution::Uniform => assert_eq!(
                                    (g as f32).to_bits(),
                                    (w as f32).to_bits(),
                                    "uniform element {i} (offset {offset}) seed {seed} step {step} {o:?}"
                                ),
                                Distribution::Normal => assert!(
                                    (g - w).abs() <= 2e-6 * (1.0 + w.abs()),
                                    "normal element {i} (offset {offset}): got {g}, want {w}, {o:?}"
                                ),
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn random_kernels_agree_with_the_evaluator() {
    let p = random_program(97, Distribution::Normal, 1, 11);
    let bindings = bind(vec![
        ("seed", Value::scalar(5.0, DType::I32)),
        ("step", Value::scalar(2.0, DType::I32)),
    ]);
    check_program("normal draws", &p, &bindings, 2e-6, 2e-6);
}
