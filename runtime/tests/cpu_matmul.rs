//! Matmul kernels on the CPU (matrixmultiply on row blocks + the generated epilogue on
//! each block) == the kernel-IR evaluator: odd sizes, transposed operands through
//! strides (no copies), broadcast batch dimensions, k = 0, and fused epilogues that
//! read the output at their own element plus other buffers.

mod cpu_util;

use cpu_util::*;
use kiln_compiler::kernel::{BufferId, Inst, Kernel, LoopKernel, MatMulKernel, MatOperand, Program, Stage, Store};
use kiln_ir::{BinaryOp, DType, UnaryOp};

struct Case {
    batch: Vec<usize>,
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    /// Operand b shared by every batch (batch stride 0).
    broadcast_b: bool,
    epilogue: bool,
}

/// a: [batch.., m, k] (or its transpose stored [batch.., k, m]); b likewise.
fn matmul_program(c: &Case) -> Program {
    let nb: usize = c.batch.iter().product();
    let (m, n, k) = (c.m, c.n, c.k);
    let strides = |per: usize, dims: &[usize], zero: bool| -> Vec<isize> {
        let mut s = vec![0isize; dims.len()];
        let mut acc = per as isize;
        for i in (0..dims.len()).rev() {
            s[i] = if zero { 0 } else { acc };
            acc *= dims[i] as isize;
        }
        s
    };
    let a = MatOperand {
        buf: BufferId(0),
        offset: 0,
        batch_strides: strides(m * k, &c.batch, false),
        row_stride: if c.trans_a { 1 } else { k as isize },
        col_stride: if c.trans_a { m as isize } else { 1 },
    };
    let b = MatOperand {
        buf: BufferId(1),
        offset: 3, // operands need not start at element 0
        batch_strides: strides(k * n, &c.batch, c.broadcast_b),
        row_stride: if c.trans_b { 1 } else { n as isize },
        col_stride: if c.trans_b { k as isize } else { 1 },
    };
    let mut outer = c.batch.clone();
    outer.extend([m, n]);
    let rank = outer.len();
    let epilogue = c.epilogue.then(|| LoopKernel {
        name: "bias_relu".into(),
        nodes: vec![],
        outer: outer.clone(),
        stages: vec![Stage {
            inner: vec![],
            insts: vec![
                (v(0), load(2, flat(0, &outer))),
                (v(1), load(3, var(rank - 1))),
                (
                    v(2),
                    Inst::Binary {
                        op: BinaryOp::Add,
                        a: v(0),
                        b: v(1),
                    },
                ),
                (
                    v(3),
                    Inst::Unary {
                        op: UnaryOp::Relu,
                        x: v(2),
                    },
                ),
                (v(4), Inst::Scalar { slot: 0 }),
                (
                    v(5),
                    Inst::Binary {
                        op: BinaryOp::Mul,
                        a: v(3),
                        b: v(4),
                    },
                ),
            ],
            accumulators: vec![],
            stores: vec![Store {
                buf: BufferId(4),
                index: flat(0, &outer),
                value: v(5),
            }],
        }],
    });
    let b_len = 3 + if c.broadcast_b { k * n } else { nb * k * n };
    let mut buffers = vec![
        input("a", nb * m * k, DType::F32),
        input("b", b_len, DType::F32),
        output("c", nb * m * n, DType::F32),
        input("bias", n, DType::F32),
        output("y", nb * m * n, DType::F32),
    ];
    if !c.epilogue {
        buffers.truncate(3);
    }
    let mut p = program(buffers, vec![("scale", DType::F32)], vec![]);
    if !c.epilogue {
        p.scalars.clear();
    }
    p.kernels.push(Kernel::MatMul(MatMulKernel {
        name: "mm".into(),
        nodes: vec![],
        batch: c.batch.clone(),
        m,
        n,
        k,
        a,
        b,
        out: BufferId(2),
        epilogue,
    }));
    p
}

fn check(c: Case, seed: u64) {
    let p = matmul_program(&c);
    let mut rng = Rng::new(seed);
    let mut pairs = vec![];
    for buf in &p.buffers {
        if let kiln_compiler::kernel::BufferRole::Input(name) = &buf.role {
            pairs.push((name.as_str(), f32_value(rng.f32s(buf.len, -1.0, 1.0))));
        }
    }
    if c.epilogue {
        pairs.push(("scale", kiln_ir::Value::scalar(1.5, DType::F32)));
    }
    let what = format!(
        "matmul batch {:?} m {} n {} k {} ta {} tb {} bb {}",
        c.batch, c.m, c.n, c.k, c.trans_a, c.trans_b, c.broadcast_b
    );
    check_program(&what, &p, &bind(pairs), 1e-5, 1e-5);
}

#[test]
fn plain_and_transposed_odd_sizes() {
    let mut seed = 40;
    for (m, n, k) in [
        (1, 1, 1),
        (3, 17, 5),
        (17, 3, 33),
        (33, 19, 17),
        (130, 7, 5),
        (5, 130, 1),
    ] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            seed += 1;
            check(
                Case {
                    batch: vec![],
                    m,
                    n,
                    k,
                    trans_a: ta,
                    trans_b: tb,
                    broadcast_b: false,
                    epilogue: seed % 2 == 0,
                },
                seed,
            );
        }
    }
}

#[test]
fn batched_with_broadcast_and_epilogue() {
    for (batch, bb) in [(vec![2usize], false), (vec![3, 2], true), (vec![1], true)] {
        check(
            Case {
                batch,
                m: 9,
                n: 11,
                k: 7,
                trans_a: false,
                trans_b: true,
                broadcast_b: bb,
                epilogue: true,
            },
            50,
        );
    }
}

#[test]
fn empty_reduction_dimension_gives_zeros() {
    check(
        Case {
            batch: vec![2],
            m: 5,
            n: 6,
            k: 0,
            trans_a: false,
            trans_b: false,
            broadcast_b: false,
            epilogue: true,
        },
        51,
    );
}

#[test]
fn large_matmul_splits_into_row_blocks_with_epilogues() {
    // 2*300*96*128 flops: several row blocks over the pool, each with its epilogue.
    check(
        Case {
            batch: vec![],
            m: 300,
            n: 96,
            k: 128,
            trans_a: false,
            trans_b: true,
            broadcast_b: false,
            epilogue: true,
        },
        52,
    );
}
