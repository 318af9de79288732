//! Generated elementwise kernels == the kernel-IR evaluator, for every unary, binary,
//! compare, select, cast and pow op, on odd sizes (SIMD main loop + scalar tail), with
//! SIMD on/off and FMA on/off, outputs poisoned before every run.

mod cpu_util;

use cpu_util::*;
use kiln_compiler::kernel::{IndexExpr, Inst};
use kiln_ir::{BinaryOp, CompareOp, DType, UnaryOp, Value};

fn unary_program(n: usize, op: UnaryOp, dtype: DType) -> kiln_compiler::kernel::Program {
    let k = elementwise_kernel(
        "unary",
        &[n],
        vec![(v(0), load(0, var(0))), (v(1), Inst::Unary { op, x: v(0) })],
        vec![(1, v(1))],
    );
    program(vec![input("x", n, dtype), output("y", n, dtype)], vec![], vec![k])
}

/// Inputs for `op`: mostly its natural domain plus special values.
fn unary_inputs(op: UnaryOp, n: usize, rng: &mut Rng) -> Vec<f64> {
    let (lo, hi) = match op {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt => (1e-3, 50.0),
        UnaryOp::Exp => (-30.0, 30.0),
        UnaryOp::Sin | UnaryOp::Cos => (-20.0, 20.0),
        _ => (-8.0, 8.0),
    };
    let mut x = rng.f32s(n, lo, hi);
    let specials = [0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.0, -1.0, 1e-40];
    for (i, s) in specials.iter().enumerate() {
        if n > 8 && i * 7 < n {
            x[i * 7] = *s;
        }
    }
    x
}

#[test]
fn every_unary_op_on_odd_sizes() {
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Recip,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Sin,
        UnaryOp::Cos,
    ];
    let mut rng = Rng::new(1);
    for op in ops {
        for n in ODD_SIZES {
            let p = unary_program(n, op, DType::F32);
            let x = unary_inputs(op, n, &mut rng);
            let bindings = bind(vec![("x", f32_value(x))]);
            check_program(&format!("{op:?} n={n}"), &p, &bindings, 1e-6, 4e-6);
        }
    }
}

#[test]
fn integer_unary_ops_wrap_like_i32() {
    let mut rng = Rng::new(2);
    for op in [UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign, UnaryOp::Relu] {
        for n in [3, 17, 783] {
            let p = unary_program(n, op, DType::I32);
            let mut x: Vec<f64> = (0..n).map(|_| (rng.below(2001) as i64 - 1000) as f64).collect();
            x[0] = i32::MIN as f64;
            x[1] = 0.0;
            let bindings = bind(vec![("x", i32_value(x))]);
            check_program(&format!("i32 {op:?} n={n}"), &p, &bindings, 0.0, 0.0);
        }
    }
}

fn binary_program(n: usize, op: BinaryOp, dtype: DType, broadcast_b: bool) -> kiln_compiler::kernel::Program {
    let bidx = if broadcast_b { IndexExpr::Const(0) } else { var(0) };
    let k = elementwise_kernel(
        "binary",
        &[n],
        vec![
            (v(0), load(0, var(0))),
            (v(1), load(1, bidx)),
            (v(2), Inst::Binary { op, a: v(0), b: v(1) }),
        ],
        vec![(2, v(2))],
    );
    let blen = if broadcast_b { 1 } else { n };
    program(
        vec![input("a", n, dtype), input("b", blen, dtype), output("y", n, dtype)],
        vec![],
        vec![k],
    )
}

#[test]
fn every_binary_op_with_nan_and_broadcast() {
    let mut rng = Rng::new(3);
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ];
    for op in ops {
        for n in ODD_SIZES {
            for broadcast in [false, true] {
                let p = binary_program(n, op, DType::F32, broadcast);
                let mut a = rng.f32s(n, -4.0, 4.0);
                let mut bv = rng.f32s(if broadcast { 1 } else { n }, -4.0, 4.0);
                if n > 5 {
                    a[1] = f64::NAN;
                    a[4] = f64::INFINITY;
                    if !broadcast {
                        bv[2] = f64::NAN;
                        bv[3] = f64::NAN;
                        a[3] = f64::NAN;
                        bv[5] = 0.0;
                    }
                }
                let bindings = bind(vec![("a", f32_value(a)), ("b", f32_value(bv))]);
                check_program(&format!("{op:?} n={n} bcast={broadcast}"), &p, &bindings, 1e-7, 1e-6);
            }
        }
    }
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Max,
        BinaryOp::Min,
    ] {
        let n = 783;
        let p = binary_program(n, op, DType::I32, false);
        let mut a: Vec<f64> = (0..n).map(|_| (rng.below(1 << 20) as i64 - (1 << 19)) as f64).collect();
        let bv: Vec<f64> = (0..n).map(|_| (rng.below(1 << 20) as i64 - (1 << 19)) as f64).collect();
        a[0] = i32::MAX as f64;
        let bindings = bind(vec![("a", i32_value(a)), ("b", i32_value(bv))]);
        check_program(&format!("i32 {op:?}"), &p, &bindings, 0.0, 0.0);
    }
}

#[test]
fn fused_multiply_add_chains() {
    // y = a*b + c, z = c - a*b, w = (a*b)*c + a : FMA contraction must stay correct.
    let n = 4097;
    let k = elementwise_kernel(
        "fma",
        &[n],
        vec![
            (v(0), load(0, var(0))),
            (v(1), load(1, var(0))),
            (v(2), load(2, IndexExpr::Const(0))),
            (
                v(3),
                Inst::Binary {
                    op: BinaryOp::Mul,
                    a: v(0),
                    b: v(1),
                },
            ),
            (
                v(4),
                Inst::Binary {
                    op: BinaryOp::Add,
                    a: v(3),
                    b: v(2),
                },
            ),
            (
                v(5),
                Inst::Binary {
                    op: BinaryOp::Mul,
                    a: v(0),
                    b: v(1),
                },
            ),
            (
                v(6),
                Inst::Binary {
                    op: BinaryOp::Sub,
                    a: v(2),
                    b: v(5),
                },
            ),
            (
                v(7),
                Inst::Binary {
                    op: BinaryOp::Mul,
                    a: v(0),
                    b: v(1),
                },
            ),
            (
                v(8),
                Inst::Binary {
                    op: BinaryOp::Mul,
                    a: v(7),
                    b: v(2),
                },
            ),
            (
                v(9),
                Inst::Binary {
                    op: BinaryOp::Add,
                    a: v(8),
                    b: v(0),
                },
            ),
            (
                v(10),
                Inst::Binary {
                    op: BinaryOp::Sub,
                    a: v(3),
                    b: v(0),
                },
            ),
        ],
        vec![(3, v(4)), (4, v(6)), (5, v(9))],
    );
    let p = program(
        vec![
            input("a", n, DType::F32),
            input("b", n, DType::F32),
            input("c", 1, DType::F32),
            output("y", n, DType::F32),
            output("z", n, DType::F32),
            output("w", n, DType::F32),
        ],
        vec![],
        vec![k],
    );
    let mut rng = Rng::new(4);
    let bindings = bind(vec![
        ("a", f32_value(rng.f32s(n, -3.0, 3.0))),
        ("b", f32_value(rng.f32s(n, -3.0, 3.0))),
        ("c", f32_value(vec![0.75])),
    ]);
    check_program("fma chains", &p, &bindings, 1e-6, 1e-6);
}

#[test]
fn compare_select_and_casts() {
    let n = 783;
    let mut insts = vec![
        (v(0), load(0, var(0))),
        (v(1), load(1, var(0))),
        (v(2), load(2, var(0))),
    ];
    let cmps = [
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Eq,
        CompareOp::Ne,
    ];
    let mut stores = Vec::new();
    let mut id = 3;
    let mut bufs = vec![
        input("a", n, DType::F32),
        input("b", n, DType::F32),
        input("i", n, DType::I32),
    ];
    for (ci, op) in cmps.iter().enumerate() {
        // f32 compare -> select -> stored f32; i32 compare stored as bool.
        insts.push((
            v(id),
            Inst::Compare {
                op: *op,
                a: v(0),
                b: v(1),
            },
        ));
        insts.push((
            v(id + 1),
            Inst::Select {
                cond: v(id),
                on_true: v(0),
                on_false: v(1),
            },
        ));
        bufs.push(output(&format!("sel{ci}"), n, DType::F32));
        stores.push((bufs.len() as u32 - 1, v(id + 1)));
        insts.push((
            v(id + 2),
            Inst::Compare {
                op: *op,
                a: v(2),
                b: v(2),
            },
        ));
        insts.push((
            v(id + 3),
            Inst::Compare {
                op: *op,
                a: v(id),
                b: v(id + 2),
            },
        ));
        bufs.push(output(&format!("bool{ci}"), n, DType::Bool));
        stores.push((bufs.len() as u32 - 1, v(id + 3)));
        id += 4;
    }
    let casts = [
        (DType::F32, DType::I32, 0u32),
        (DType::F32, DType::Bool, 0),
        (DType::I32, DType::F32, 2),
        (DType::I32, DType::Bool, 2),
    ];
    for (ci, (_, to, src)) in casts.iter().enumerate() {
        insts.push((v(id), Inst::Cast { x: v(*src), to: *to }));
        bufs.push(output(&format!("cast{ci}"), n, *to));
        stores.push((bufs.len() as u32 - 1, v(id)));
        if *to == DType::Bool {
            for (bi, to2) in [DType::F32, DType::I32].iter().enumerate() {
                insts.push((v(id + 1 + bi as u32), Inst::Cast { x: v(id), to: *to2 }));
                bufs.push(output(&format!("cast{ci}_{bi}"), n, *to2));
                stores.push((bufs.len() as u32 - 1, v(id + 1 + bi as u32)));
            }
        }
        id += 3;
    }
    let k = elementwise_kernel("cmp", &[n], insts, stores);
    let p = program(bufs, vec![], vec![k]);
    let mut rng = Rng::new(5);
    let mut a = rng.f32s(n, -3.0, 3.0);
    let mut bb: Vec<f64> = a
        .iter()
        .map(|&x| {
            if rng.below(3) == 0 {
                x
            } else {
                rng.uniform(-3.0, 3.0) as f32 as f64
            }
        })
        .collect();
    a[0] = f64::NAN;
    bb[1] = f64::NAN;
    a[2] = 3e9;
    a[3] = -3e9;
    a[4] = -2.7f32 as f64;
    bb[5] = -0.0;
    a[5] = 0.0;
    let iv: Vec<f64> = (0..n).map(|_| (rng.below(5) as i64 - 2) as f64).collect();
    let bindings = bind(vec![("a", f32_value(a)), ("b", f32_value(bb)), ("i", i32_value(iv))]);
    check_program("compare/select/cast", &p, &bindings, 0.0, 0.0);
}

#[test]
fn pow_with_constant_exponents() {
    let mut rng = Rng::new(6);
    for e in [
        0.0,
        1.0,
        2.0,
        3.0,
        4.0,
        -1.0,
        -2.0,
        0.5,
        -0.5,
        1.5,
        2.5,
        -0.25,
        1.0 / 3.0,
    ] {
        let n = 783;
        let k = elementwise_kernel(
            "pow",
            &[n],
            vec![(v(0), load(0, var(0))), (v(1), Inst::PowConst { x: v(0), exponent: e })],
            vec![(1, v(1))],
        );
        let p = program(
            vec![input("x", n, DType::F32), output("y", n, DType::F32)],
            vec![],
            vec![k],
        );
        let mut x = rng.f32s(n, 0.01, 5.0);
        for (i, s) in [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -2.0, -0.5]
            .iter()
            .enumerate()
        {
            x[i] = *s;
        }
        let bindings = bind(vec![("x", f32_value(x))]);
        check_program(&format!("pow {e}"), &p, &bindings, 1e-30, 1e-6);
    }
}

#[test]
fn scalars_constants_and_loop_values() {
    // y = x * lr + step (cast) + i0 (iota via LoopVar) + index expression value.
    let dims = [7usize, 9];
    let n = 63;
    let k = elementwise_kernel(
        "scalars",
        &dims,
        vec![
            (v(0), load(0, flat(0, &dims))),
            (v(1), Inst::Scalar { slot: 0 }),
            (v(2), Inst::Scalar { slot: 1 }),
            (
                v(3),
                Inst::Cast {
                    x: v(2),
                    to: DType::F32,
                },
            ),
            (
                v(4),
                Inst::Binary {
                    op: BinaryOp::Mul,
                    a: v(0),
                    b: v(1),
                },
            ),
            (
                v(5),
                Inst::Binary {
                    op: BinaryOp::Add,
                    a: v(4),
                    b: v(3),
                },
            ),
            (v(6), Inst::LoopVar(1)),
            (
                v(7),
                Inst::Index(IndexExpr::Var(0).mul(3).add(IndexExpr::Var(1).rem(4))),
            ),
            (
                v(8),
                Inst::Binary {
                    op: BinaryOp::Add,
                    a: v(6),
                    b: v(7),
                },
            ),
            (
                v(9),
                Inst::Cast {
                    x: v(8),
                    to: DType::F32,
                },
            ),
            (
                v(10),
                Inst::Binary {
                    op: BinaryOp::Add,
                    a: v(5),
                    b: v(9),
                },
            ),
            (
                v(11),
                Inst::Const {
                    value: 0.25,
                    dtype: DType::F32,
                },
            ),
            (
                v(12),
                Inst::Binary {
                    op: BinaryOp::Sub,
                    a: v(10),
                    b: v(11),
                },
            ),
        ],
        vec![(1, v(12)), (2, v(8))],
    );
    let p = program(
        vec![
            input("x", n, DType::F32),
            output("y", n, DType::F32),
            output("iv", n, DType::I32),
        ],
        vec![("lr", DType::F32), ("step", DType::I32)],
        vec![k],
    );
    let mut rng = Rng::new(7);
    let bindings = bind(vec![
        ("x", f32_value(rng.f32s(n, -1.0, 1.0))),
        ("lr", Value::scalar(0.125, DType::F32)),
        ("step", Value::scalar(41.0, DType::I32)),
    ]);
    check_program("scalars", &p, &bindings, 1e-6, 1e-6);
}

#[test]
fn half_precision_casts_inside_a_kernel_are_unrounded_like_the_evaluator() {
    let n = 17;
    let k = elementwise_kernel(
        "f16_roundtrip",
        &[n],
        vec![
            (v(0), load(0, var(0))),
            (
                v(1),
                Inst::Cast {
                    x: v(0),
                    to: DType::F16,
                },
            ),
            (
                v(2),
                Inst::Cast {
                    x: v(1),
                    to: DType::BF16,
                },
            ),
            (
                v(3),
                Inst::Cast {
                    x: v(2),
                    to: DType::F32,
                },
            ),
            (
                v(4),
                Inst::Binary {
                    op: BinaryOp::Mul,
                    a: v(3),
                    b: v(0),
                },
            ),
        ],
        vec![(1, v(4))],
    );
    let p = program(
        vec![input("x", n, DType::F32), output("y", n, DType::F32)],
        vec![],
        vec![k],
    );
    let mut rng = Rng::new(8);
    let bindings = bind(vec![("x", f32_value(rng.f32s(n, -3.0, 3.0)))]);
    check_program("f16 cast round trip", &p, &bindings, 0.0, 1e-7);
}
