//! Generated loop kernels with structure == the kernel-IR evaluator: reductions along
//! contiguous and strided axes (sum, mean, max/min with NaN, argmax ties and NaN, i32
//! wrap-around), multi-stage softmax, gathers (uniform and per-lane), guarded padding,
//! transposes (the scalar fallback), arenas of views with in-place and copied updates,
//! rank-0 kernels, and thread splits of large kernels. Outputs are poisoned before
//! every run, so every element must be written.

mod cpu_util;

use cpu_util::*;
use kiln_compiler::codegen::clif::ClifOptions;
use kiln_compiler::kernel::{
    AccId, Accumulator, Buffer, BufferId, BufferRole, Guard, IndexExpr, Inst, LoopKernel, Reduction, Stage, Storage,
    Store,
};
use kiln_ir::{BinaryOp, DType, ReduceOp, UnaryOp, Value};
use kiln_runtime::compile::compile_program;
use kiln_runtime::cpu::JitCode;

fn acc(id: u32, dtype: DType, reduction: Reduction) -> Accumulator {
    Accumulator {
        id: AccId(id),
        dtype,
        reduction,
    }
}

fn store(buf: u32, index: IndexExpr, value: u32) -> Store {
    Store {
        buf: BufferId(buf),
        index,
        value: v(value),
    }
}

/// Reduce a `[rows, cols]` input along `axis` with `op` into out (length of the kept axis).
fn reduce_kernel(rows: usize, cols: usize, axis: usize, op: Option<ReduceOp>, dtype: DType) -> LoopKernel {
    let (outer, inner) = if axis == 1 { (rows, cols) } else { (cols, rows) };
    let index = if axis == 1 {
        var(0).mul(cols as i64).add(var(1))
    } else {
        var(1).mul(cols as i64).add(var(0))
    };
    let (acc_dtype, reduction) = match op {
        Some(op) => (dtype, Reduction::Fold { op, value: v(0) }),
        None => (
            DType::I32,
            Reduction::ArgMax {
                value: v(0),
                index: v(1),
            },
        ),
    };
    LoopKernel {
        name: "reduce".into(),
        nodes: vec![],
        outer: vec![outer],
        stages: vec![
            Stage {
                inner: vec![inner],
                insts: vec![(v(0), load(0, index)), (v(1), Inst::LoopVar(1))],
                accumulators: vec![acc(0, acc_dtype, reduction)],
                stores: vec![],
            },
            Stage {
                inner: vec![],
                insts: vec![(v(2), Inst::Acc(AccId(0)))],
                accumulators: vec![],
                stores: vec![store(1, var(0), 2)],
            },
        ],
    }
}

#[test]
fn reductions_along_both_axes() {
    let mut rng = Rng::new(31);
    let ops = [
        Some(ReduceOp::Sum),
        Some(ReduceOp::Mean),
        Some(ReduceOp::Max),
        Some(ReduceOp::Min),
        None,
    ];
    for (rows, cols) in [(1usize, 1usize), (3, 17), (17, 3), (33, 783), (5, 4097), (0, 5), (6, 0)] {
        for axis in [0usize, 1] {
            for op in ops {
                let kept = if axis == 1 { rows } else { cols };
                let out_t = if op.is_none() { DType::I32 } else { DType::F32 };
                let k = reduce_kernel(rows, cols, axis, op, DType::F32);
                if op.is_none() && (rows == 0 || cols == 0) {
                    continue; // argmax over an empty axis is rejected by the IR
                }
                let p = program(
                    vec![input("x", rows * cols, DType::F32), output("y", kept, out_t)],
                    vec![],
                    vec![k],
                );
                let mut x = rng.f32s(rows * cols, -2.0, 2.0);
                // Ties for argmax, a NaN in a few rows/columns.
                for (i, e) in x.iter_mut().enumerate() {
                    if i % 11 == 0 {
                        *e = 1.5;
                    }
                    if i % 157 == 5 {
                        *e = f64::NAN;
                    }
                }
                let bindings = bind(vec![("x", f32_value(x))]);
                check_program(
                    &format!("{op:?} axis {axis} of [{rows}, {cols}]"),
                    &p,
                    &bindings,
                    1e-5,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn integer_reductions_wrap() {
    let (rows, cols) = (9usize, 37usize);
    for axis in [0usize, 1] {
        for op in [Some(ReduceOp::Sum), Some(ReduceOp::Max), Some(ReduceOp::Min), None] {
            let kept = if axis == 1 { rows } else { cols };
            let p = program(
                vec![input("x", rows * cols, DType::I32), output("y", kept, DType::I32)],
                vec![],
                vec![reduce_kernel(rows, cols, axis, op, DType::I32)],
            );
            let mut rng = Rng::new(32);
            let x: Vec<f64> = (0..rows * cols)
                .map(|i| {
                    if i % 5 == 0 {
                        i32::MAX as f64
                    } else {
                        (rng.below(7) as i64 - 3) as f64
                    }
                })
                .collect();
            check_program(
                &format!("i32 {op:?} axis {axis}"),
                &p,
                &bind(vec![("x", i32_value(x))]),
                0.0,
                0.0,
            );
        }
    }
}

/// Softmax over the contiguous axis (`axis = 1`, scalar loop) or the strided one.
fn softmax_kernel(rows: usize, cols: usize, axis: usize) -> LoopKernel {
    let (outer, inner) = if axis == 1 { (rows, cols) } else { (cols, rows) };
    let idx = || {
        if axis == 1 {
            var(0).mul(cols as i64).add(var(1))
        } else {
            var(1).mul(cols as i64).add(var(0))
        }
    };
    let exp_of_shifted = |base: u32| {
        vec![
            (v(base), load(0, idx())),
            (v(base + 1), Inst::Acc(AccId(0))),
            (
                v(base + 2),
                Inst::Binary {
                    op: BinaryOp::Sub,
                    a: v(base),
                    b: v(base + 1),
                },
            ),
            (
                v(base + 3),
                Inst::Unary {
                    op: UnaryOp::Exp,
                    x: v(base + 2),
                },
            ),
        ]
    };
    let mut last = exp_of_shifted(20);
    last.push((v(24), Inst::Acc(AccId(1))));
    last.push((
        v(25),
        Inst::Binary {
            op: BinaryOp::Div,
            a: v(23),
            b: v(24),
        },
    ));
    LoopKernel {
        name: "softmax".into(),
        nodes: vec![],
        outer: vec![outer],
        stages: vec![
            Stage {
                inner: vec![inner],
                insts: vec![(v(0), load(0, idx()))],
                accumulators: vec![acc(
                    0,
                    DType::F32,
                    Reduction::Fold {
                        op: ReduceOp::Max,
                        value: v(0),
                    },
                )],
                stores: vec![],
            },
            Stage {
                inner: vec![inner],
                insts: exp_of_shifted(10),
                accumulators: vec![acc(
                    1,
                    DType::F32,
                    Reduction::Fold {
                        op: ReduceOp::Sum,
                        value: v(13),
                    },
                )],
                stores: vec![],
            },
            Stage {
                inner: vec![inner],
                insts: last,
                accumulators: vec![],
                stores: vec![store(1, idx(), 25)],
            },
        ],
    }
}

#[test]
fn three_stage_softmax() {
    let mut rng = Rng::new(33);
    for (rows, cols) in [(1usize, 3usize), (17, 783), (4, 1000), (783, 17)] {
        for axis in [0usize, 1] {
            let p = program(
                vec![
                    input("x", rows * cols, DType::F32),
                    output("y", rows * cols, DType::F32),
                ],
                vec![],
                vec![softmax_kernel(rows, cols, axis)],
            );
            let x = rng.f32s(rows * cols, -10.0, 10.0);
            check_program(
                &format!("softmax axis {axis} [{rows}, {cols}]"),
                &p,
                &bind(vec![("x", f32_value(x))]),
                1e-7,
                2e-5,
            );
            // Strided softmax vectorises the outer loop; row softmax its three inner loops.
            let exe = compile_program(p, &ClifOptions::default()).unwrap();
            let JitCode::Loop(k) = &exe.compiled().unwrap().code.kernels[0] else {
                unreachable!()
            };
            let (outer, inner) = if axis == 1 { (rows, cols) } else { (cols, rows) };
            let want = match (axis, outer >= 4, inner >= 4) {
                (0, true, _) => (4, 0),
                (_, _, true) => (1, 3),
                _ => (1, 0),
            };
            assert_eq!(
                (k.abi.lanes, k.abi.vector_stages),
                want,
                "axis {axis} [{rows}, {cols}]: {:?}",
                k.abi
            );
        }
    }
}

#[test]
fn gathers_uniform_and_per_lane_with_guards() {
    let (rows, d, batch) = (11usize, 9usize, 37usize);
    let guard = |e: IndexExpr| Guard {
        expr: e,
        upper: rows as i64,
    };
    // Embedding: out[b, j] = table[idx[b], j] (uniform index in the vector variable j).
    let emb = elementwise_kernel(
        "embedding",
        &[batch, d],
        vec![
            (v(0), load(1, var(0))),
            (
                v(1),
                Inst::Load {
                    buf: BufferId(0),
                    index: IndexExpr::Value(v(0)).mul(d as i64).add(var(1)),
                    guards: vec![guard(IndexExpr::Value(v(0)))],
                    fill: 0.0,
                },
            ),
        ],
        vec![(2, v(1))],
    );
    // Column pick: out2[b] = table[idx[b], b % d] (per-lane index).
    let pick = elementwise_kernel(
        "pick",
        &[batch],
        vec![
            (v(0), load(1, var(0))),
            (
                v(1),
                Inst::Load {
                    buf: BufferId(0),
                    index: IndexExpr::Value(v(0)).mul(d as i64).add(var(0).rem(d as i64)),
                    guards: vec![guard(IndexExpr::Value(v(0)))],
                    fill: -3.5,
                },
            ),
        ],
        vec![(3, v(1))],
    );
    let p = program(
        vec![
            input("table", rows * d, DType::F32),
            input("idx", batch, DType::I32),
            output("emb", batch * d, DType::F32),
            output("pick", batch, DType::F32),
        ],
        vec![],
        vec![emb, pick],
    );
    let mut rng = Rng::new(34);
    let idx: Vec<f64> = (0..batch)
        .map(|_| (rng.below(rows as u64 + 4) as i64 - 2) as f64)
        .collect();
    let bindings = bind(vec![
        ("table", f32_value(rng.f32s(rows * d, -1.0, 1.0))),
        ("idx", i32_value(idx)),
    ]);
    check_program("gathers", &p, &bindings, 0.0, 0.0);
}

#[test]
fn guarded_padding_and_transpose_fallback() {
    let (r, c) = (13usize, 21usize);
    // y[i, j] = x[i-1, j-2] inside, 7.25 in the border: shape [r+3, c+5].
    let (pr, pc) = (r + 3, c + 5);
    let ie = var(0).add(IndexExpr::Const(-1));
    let je = var(1).add(IndexExpr::Const(-2));
    let pad = elementwise_kernel(
        "pad",
        &[pr, pc],
        vec![(
            v(0),
            Inst::Load {
                buf: BufferId(0),
                index: ie.clone().mul(c as i64).add(je.clone()),
                guards: vec![
                    Guard {
                        expr: ie,
                        upper: r as i64,
                    },
                    Guard {
                        expr: je,
                        upper: c as i64,
                    },
                ],
                fill: 7.25,
            },
        )],
        vec![(1, v(0))],
    );
    // t[j, i] = x[i, j]: the load strides by c in the vector variable -> scalar loop.
    let transpose = elementwise_kernel(
        "transpose",
        &[c, r],
        vec![(v(0), load(0, var(1).mul(c as i64).add(var(0))))],
        vec![(2, v(0))],
    );
    let p = program(
        vec![
            input("x", r * c, DType::F32),
            output("pad", pr * pc, DType::F32),
            output("t", r * c, DType::F32),
        ],
        vec![],
        vec![pad, transpose],
    );
    let mut rng = Rng::new(35);
    let bindings = bind(vec![("x", f32_value(rng.f32s(r * c, -1.0, 1.0)))]);
    check_program("pad + transpose", &p, &bindings, 0.0, 0.0);
    let exe = compile_program(p, &ClifOptions::default()).unwrap();
    let lanes: Vec<(usize, Option<String>)> = exe
        .compiled()
        .unwrap()
        .code
        .kernels
        .iter()
        .map(|k| match k {
            JitCode::Loop(k) => (k.abi.lanes, k.abi.scalar_reason.clone()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(lanes[0].0, 4, "pad vectorises (per-lane guards): {lanes:?}");
    assert_eq!(lanes[1].0, 1, "transpose falls back to scalar: {lanes:?}");
    assert!(lanes[1].1.as_deref().unwrap_or("").contains("Affine(21)"), "{lanes:?}");
}

fn view(len: usize, base: u32, offset: usize, role: BufferRole) -> Buffer {
    Buffer {
        len,
        dtype: DType::F32,
        role,
        storage: Storage::View {
            base: BufferId(base),
            offset,
        },
    }
}

#[test]
fn arenas_views_and_updates() {
    // Two params in one arena updated by ONE horizontal SGD kernel; w1 in place, w2 via
    // a separate new-value arena and a copying update.
    let (n1, n2) = (5usize, 13usize);
    let n = n1 + n2;
    let buffers = vec![
        buffer(n, DType::F32, BufferRole::Temp),         // b0 param arena
        view(n1, 0, 0, BufferRole::Param("w1".into())),  // b1
        view(n2, 0, n1, BufferRole::Param("w2".into())), // b2
        buffer(n, DType::F32, BufferRole::Temp),         // b3 grad arena
        view(n1, 3, 0, BufferRole::Input("g1".into())),  // b4
        view(n2, 3, n1, BufferRole::Input("g2".into())), // b5
        buffer(n, DType::F32, BufferRole::Temp),         // b6 new values
        view(n2, 6, n1, BufferRole::Temp),               // b7 new w2
        output("norm", 1, DType::F32),                   // b8
    ];
    let sgd = LoopKernel {
        name: "sgd_all".into(),
        nodes: vec![],
        outer: vec![n],
        stages: vec![Stage {
            inner: vec![],
            insts: vec![
                (v(0), load(0, var(0))),
                (v(1), load(3, var(0))),
                (v(2), Inst::Scalar { slot: 0 }),
                (
                    v(3),
                    Inst::Binary {
                        op: BinaryOp::Mul,
                        a: v(1),
                        b: v(2),
                    },
                ),
                (
                    v(4),
                    Inst::Binary {
                        op: BinaryOp::Sub,
                        a: v(0),
                        b: v(3),
                    },
                ),
            ],
            accumulators: vec![],
            stores: vec![store(6, var(0), 4)],
        }],
    };
    // Copy new w1 back in place (same arena memory), then a norm over the new arena.
    let back = elementwise_kernel("w1_back", &[n1], vec![(v(0), load(6, var(0)))], vec![(1, v(0))]);
    let norm = LoopKernel {
        name: "norm".into(),
        nodes: vec![],
        outer: vec![],
        stages: vec![
            Stage {
                inner: vec![n],
                insts: vec![
                    (v(0), load(6, var(0))),
                    (
                        v(1),
                        Inst::Binary {
                            op: BinaryOp::Mul,
                            a: v(0),
                            b: v(0),
                        },
                    ),
                ],
                accumulators: vec![acc(
                    0,
                    DType::F32,
                    Reduction::Fold {
                        op: ReduceOp::Sum,
                        value: v(1),
                    },
                )],
                stores: vec![],
            },
            Stage {
                inner: vec![],
                insts: vec![(v(2), Inst::Acc(AccId(0)))],
                accumulators: vec![],
                stores: vec![store(8, IndexExpr::Const(0), 2)],
            },
        ],
    };
    let mut p = program(buffers, vec![("lr", DType::F32)], vec![sgd, back, norm]);
    p.updates = vec![(BufferId(1), BufferId(1)), (BufferId(2), BufferId(7))];
    let mut rng = Rng::new(36);
    let w1 = rng.f32s(n1, -1.0, 1.0);
    let w2 = rng.f32s(n2, -1.0, 1.0);
    let mut bindings = bind(vec![
        ("w1", f32_value(w1)),
        ("w2", f32_value(w2)),
        ("lr", Value::scalar(0.5, DType::F32)),
    ]);
    for o in variants() {
        let mut exe = compile_program(p.clone(), &o).unwrap();
        exe.set_poison(true);
        exe.set_scalar("lr", 0.5).unwrap();
        exe.set("w1", &bindings["w1"]).unwrap();
        exe.set("w2", &bindings["w2"]).unwrap();
        let mut reference = bindings.clone();
        for step in 0..3 {
            let g1 = f32_value(rng.f32s(n1, -1.0, 1.0));
            let g2 = f32_value(rng.f32s(n2, -1.0, 1.0));
            reference.insert("g1".into(), g1.clone());
            reference.insert("g2".into(), g2.clone());
            let want = kiln_compiler::kernel::eval::eval_program(&p, &reference).unwrap();
            want.apply_updates(&mut reference);
            let got = exe.run(&bind(vec![("g1", g1), ("g2", g2)])).unwrap();
            check_close(
                &format!("norm step {step} {o:?}"),
                &got["norm"],
                &want.outputs["norm"],
                1e-6,
                1e-6,
            );
            for name in ["w1", "w2"] {
                check_close(
                    &format!("{name} step {step} {o:?}"),
                    &exe.get(name).unwrap(),
                    &reference[name],
                    1e-7,
                    1e-6,
                );
            }
        }
    }
    bindings.clear();
}

#[test]
fn large_kernels_split_across_threads_write_everything() {
    // Big enough that the executor splits them over the pool (if it has > 1 thread).
    let n = 300_007;
    let k = elementwise_kernel(
        "big",
        &[n],
        vec![
            (v(0), load(0, var(0))),
            (
                v(1),
                Inst::Unary {
                    op: UnaryOp::Tanh,
                    x: v(0),
                },
            ),
            (
                v(2),
                Inst::Unary {
                    op: UnaryOp::Exp,
                    x: v(1),
                },
            ),
        ],
        vec![(1, v(2))],
    );
    let (rows, cols) = (1001usize, 517usize);
    let p = program(
        vec![
            input("x", n, DType::F32),
            output("y", n, DType::F32),
            input("m", rows * cols, DType::F32),
            output("rs", rows, DType::F32),
            output("cs", cols, DType::F32),
        ],
        vec![],
        vec![k],
    );
    let mut p = p;
    let mut rk = reduce_kernel(rows, cols, 1, Some(ReduceOp::Sum), DType::F32);
    let mut ck = reduce_kernel(rows, cols, 0, Some(ReduceOp::Sum), DType::F32);
    for (kk, out) in [(&mut rk, 3u32), (&mut ck, 4u32)] {
        if let Inst::Load { buf, .. } = &mut kk.stages[0].insts[0].1 {
            *buf = BufferId(2);
        }
        kk.stages[1].stores[0].buf = BufferId(out);
    }
    p.kernels.push(kiln_compiler::kernel::Kernel::Loop(rk));
    p.kernels.push(kiln_compiler::kernel::Kernel::Loop(ck));
    let mut rng = Rng::new(37);
    let bindings = bind(vec![
        ("x", f32_value(rng.f32s(n, -3.0, 3.0))),
        ("m", f32_value(rng.f32s(rows * cols, -1.0, 1.0))),
    ]);
    check_program("large split", &p, &bindings, 2e-4, 1e-5);
}
