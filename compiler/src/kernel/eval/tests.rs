//! Hand-built kernels checked against the reference interpreter, plus every rule the
//! evaluator enforces (races, uninitialised reads, unwritten outputs, stage scoping).

use kiln_ir::interp::{eval_op, Bindings};
use kiln_ir::{BinaryOp, DType, GraphBuilder, Init, Op, ReduceOp, TensorType, UnaryOp, Value};

use super::*;
use crate::kernel::*;

fn buf(len: usize, dtype: DType, role: BufferRole) -> Buffer {
    Buffer {
        len,
        dtype,
        role,
        storage: Storage::Own,
    }
}

fn v(i: u32) -> ValueId {
    ValueId(i)
}

fn load(b: u32, index: IndexExpr) -> Inst {
    Inst::Load {
        buf: BufferId(b),
        index,
        guards: vec![],
        fill: 0.0,
    }
}

fn row(k: usize, cols: usize) -> IndexExpr {
    IndexExpr::var(0).mul(cols as i64).add(IndexExpr::var(k))
}

fn bind(pairs: &[(&str, Value)]) -> Bindings {
    pairs.iter().map(|(n, v)| (n.to_string(), v.clone())).collect()
}

fn data(rows: usize, cols: usize) -> Vec<f64> {
    (0..rows * cols)
        .map(|i| ((i * 7919) % 23) as f64 * 0.37 - 3.0)
        .collect()
}

/// softmax over rows of x[3, 5] as ONE three-stage kernel, vs the interpreter.
#[test]
fn softmax_row_kernel_matches_interpreter() {
    let (rows, cols) = (3, 5);
    let k = LoopKernel {
        name: "softmax".into(),
        nodes: vec![],
        outer: vec![rows],
        stages: vec![
            Stage {
                inner: vec![cols],
                insts: vec![(v(0), load(0, row(1, cols)))],
                accumulators: vec![Accumulator {
                    id: AccId(0),
                    dtype: DType::F32,
                    reduction: Reduction::Fold {
                        op: ReduceOp::Max,
                        value: v(0),
                    },
                }],
                stores: vec![],
            },
            Stage {
                inner: vec![cols],
                insts: vec![
                    (v(1), load(0, row(1, cols))),
                    (v(2), Inst::Acc(AccId(0))),
                    (
                        v(3),
                        Inst::Binary {
                            op: BinaryOp::Sub,
                            a: v(1),
                            b: v(2),
                        },
                    ),
                    (
                        v(4),
                        Inst::Unary {
                            op: UnaryOp::Exp,
                            x: v(3),
                        },
                    ),
                ],
                accumulators: vec![Accumulator {
                    id: AccId(1),
                    dtype: DType::F32,
                    reduction: Reduction::Fold {
                        op: ReduceOp::Sum,
                        value: v(4),
                    },
                }],
                stores: vec![],
            },
            Stage {
                inner: vec![cols],
                insts: vec![
                    (v(5), load(0, row(1, cols))),
                    (v(6), Inst::Acc(AccId(0))),
                    (
                        v(7),
                        Inst::Binary {
                            op: BinaryOp::Sub,
                            a: v(5),
                            b: v(6),
                        },
                    ),
                    (
                        v(8),
                        Inst::Unary {
                            op: UnaryOp::Exp,
                            x: v(7),
                        },
                    ),
                    (v(9), Inst::Acc(AccId(1))),
                    (
                        v(10),
                        Inst::Binary {
                            op: BinaryOp::Div,
                            a: v(8),
                            b: v(9),
                        },
                    ),
                ],
                accumulators: vec![],
                stores: vec![Store {
                    buf: BufferId(1),
                    index: row(1, cols),
                    value: v(10),
                }],
            },
        ],
    };
    let p = Program {
        buffers: vec![
            buf(rows * cols, DType::F32, BufferRole::Input("x".into())),
            buf(rows * cols, DType::F32, BufferRole::Output("y".into())),
        ],
        kernels: vec![Kernel::Loop(k)],
        ..Default::default()
    };
    let x = Value::new([rows, cols], DType::F32, data(rows, cols)).unwrap();
    let run = eval_program(&p, &bind(&[("x", x.clone())])).unwrap();

    let b = GraphBuilder::new();
    let xt = b.input("x", [rows, cols], DType::F32);
    b.output("y", &xt.softmax(1));
    let g = b.finish().unwrap();
    let want = kiln_ir::evaluate(&g, &bind(&[("x", x)])).unwrap();
    assert_eq!(run.outputs["y"].data, want.output(&g, "y").unwrap().data);
}

/// A one-stage elementwise kernel `out[i] = f(in[i])` over `n` points.
fn map_kernel(n: usize, out_index: IndexExpr, inst: Inst) -> Program {
    Program {
        buffers: vec![
            buf(n, DType::F32, BufferRole::Input("x".into())),
            buf(n, DType::F32, BufferRole::Output("y".into())),
        ],
        kernels: vec![Kernel::Loop(LoopKernel {
            name: "map".into(),
            nodes: vec![],
            outer: vec![n],
            stages: vec![Stage {
                inner: vec![],
                insts: vec![(v(0), load(0, IndexExpr::var(0))), (v(1), inst)],
                accumulators: vec![],
                stores: vec![Store {
                    buf: BufferId(1),
                    index: out_index,
                    value: v(1),
                }],
            }],
        })],
        ..Default::default()
    }
}

#[test]
fn detects_races_unwritten_outputs_and_uninitialised_reads() {
    let x = bind(&[("x", Value::full(1.0, [4], DType::F32))]);
    let neg = Inst::Unary {
        op: UnaryOp::Neg,
        x: v(0),
    };
    assert!(eval_program(&map_kernel(4, IndexExpr::var(0), neg.clone()), &x).is_ok());
    // every point writes element 0
    let e = eval_program(&map_kernel(4, IndexExpr::Const(0), neg.clone()), &x).unwrap_err();
    assert!(matches!(e, EvalError::Race { .. }), "{e}");
    // two points per element
    let e = eval_program(&map_kernel(4, IndexExpr::var(0).div(2), neg.clone()), &x).unwrap_err();
    assert!(matches!(e, EvalError::Race { .. }), "{e}");
    let mut p = map_kernel(4, IndexExpr::var(0), neg.clone());
    let Kernel::Loop(k) = &mut p.kernels[0] else {
        unreachable!()
    };
    k.outer = vec![2];
    let e = eval_program(&p, &x).unwrap_err();
    assert!(matches!(e, EvalError::Unwritten { index: 2, .. }), "{e}");
    // reading a temp nobody wrote
    let mut p = map_kernel(4, IndexExpr::var(0), neg.clone());
    p.buffers[0].role = BufferRole::Temp;
    let e = eval_program(&p, &x).unwrap_err();
    assert!(matches!(e, EvalError::UninitRead { .. }), "{e}");
    // out of bounds
    let p = map_kernel(4, IndexExpr::var(0).add(IndexExpr::Const(1)), neg);
    let e = eval_program(&p, &x).unwrap_err();
    assert!(matches!(e, EvalError::OutOfBounds { index: 4, .. }), "{e}");
    // ill-typed: an i32 value stored into an f32 buffer
    let p = map_kernel(
        4,
        IndexExpr::var(0),
        Inst::Const {
            value: 1.0,
            dtype: DType::I32,
        },
    );
    let e = eval_program(&p, &x).unwrap_err();
    assert!(matches!(e, EvalError::Malformed { .. }), "{e}");
    // missing binding
    let e = eval_program(&map_kernel(4, IndexExpr::var(0), Inst::LoopVar(0)), &Bindings::new()).unwrap_err();
    assert!(matches!(e, EvalError::MissingBinding { .. }), "{e}");
}

#[test]
fn values_do_not_cross_stages() {
    let mut p = map_kernel(
        3,
        IndexExpr::var(0),
        Inst::Unary {
            op: UnaryOp::Neg,
            x: v(0),
        },
    );
    let Kernel::Loop(k) = &mut p.kernels[0] else {
        unreachable!()
    };
    let mut second = k.stages[0].clone();
    k.stages[0].stores.clear();
    second.insts = vec![(
        v(2),
        Inst::Unary {
            op: UnaryOp::Neg,
            x: v(0),
        },
    )];
    second.stores[0].value = v(2);
    k.stages.push(second);
    let e = eval_program(&p, &bind(&[("x", Value::full(1.0, [3], DType::F32))])).unwrap_err();
    assert!(e.to_string().contains("before it is defined in this stage"), "{e}");
}

/// Guards, `Index`, argmax, mean and wrapping i32 sums in one reduction kernel.
#[test]
fn reductions_and_guards() {
    // x: i32 [2, 3]; per row: argmax, wrapping sum, mean of the f32 cast, and the sum
    // of x padded by one element of value 100 on the left (guarded load at i1 - 1).
    let xs = [3.0, 9.0, 9.0, f64::from(i32::MAX), 1.0, -4.0];
    let x = Value::new([2, 3], DType::I32, xs.to_vec()).unwrap();
    let ld = |k: usize| load(0, row(k, 3));
    let stage0 = Stage {
        inner: vec![3],
        insts: vec![
            (v(0), ld(1)),
            (v(1), Inst::LoopVar(1)),
            (
                v(2),
                Inst::Cast {
                    x: v(0),
                    to: DType::F32,
                },
            ),
            (v(3), Inst::Index(IndexExpr::var(1).add(IndexExpr::Const(-1)))),
        ],
        accumulators: vec![
            Accumulator {
                id: AccId(0),
                dtype: DType::I32,
                reduction: Reduction::ArgMax {
                    value: v(0),
                    index: v(1),
                },
            },
            Accumulator {
                id: AccId(1),
                dtype: DType::I32,
                reduction: Reduction::Fold {
                    op: ReduceOp::Sum,
                    value: v(0),
                },
            },
            Accumulator {
                id: AccId(2),
                dtype: DType::F32,
                reduction: Reduction::Fold {
                    op: ReduceOp::Mean,
                    value: v(2),
                },
            },
        ],
        stores: vec![],
    };
    // padded row: [100, x0, x1, x2] summed via guards on (i1 - 1)
    let padded = Stage {
        inner: vec![4],
        insts: vec![(
            v(10),
            Inst::Load {
                buf: BufferId(0),
                index: IndexExpr::var(0)
                    .mul(3)
                    .add(IndexExpr::var(1))
                    .add(IndexExpr::Const(-1)),
                guards: vec![Guard {
                    expr: IndexExpr::var(1).add(IndexExpr::Const(-1)),
                    upper: 3,
                }],
                fill: 100.0,
            },
        )],
        accumulators: vec![Accumulator {
            id: AccId(3),
            dtype: DType::I32,
            reduction: Reduction::Fold {
                op: ReduceOp::Sum,
                value: v(10),
            },
        }],
        stores: vec![],
    };
    let last = Stage {
        inner: vec![],
        insts: vec![
            (v(20), Inst::Acc(AccId(0))),
            (v(21), Inst::Acc(AccId(1))),
            (v(22), Inst::Acc(AccId(2))),
            (v(23), Inst::Acc(AccId(3))),
        ],
        accumulators: vec![],
        stores: (0..4)
            .map(|i| Store {
                buf: BufferId(1 + i),
                index: IndexExpr::var(0),
                value: v(20 + i),
            })
            .collect(),
    };
    let p = Program {
        buffers: vec![
            buf(6, DType::I32, BufferRole::Input("x".into())),
            buf(2, DType::I32, BufferRole::Output("argmax".into())),
            buf(2, DType::I32, BufferRole::Output("sum".into())),
            buf(2, DType::F32, BufferRole::Output("mean".into())),
            buf(2, DType::I32, BufferRole::Output("padded".into())),
        ],
        kernels: vec![Kernel::Loop(LoopKernel {
            name: "rows".into(),
            nodes: vec![],
            outer: vec![2],
            stages: vec![stage0, padded, last],
        })],
        ..Default::default()
    };
    let run = eval_program(&p, &bind(&[("x", x)])).unwrap();
    assert_eq!(run.outputs["argmax"].data, vec![1.0, 0.0]);
    let wrapped = i32::MAX.wrapping_add(1).wrapping_add(-4);
    assert_eq!(run.outputs["sum"].data, vec![21.0, f64::from(wrapped)]);
    assert_eq!(run.outputs["mean"].data, vec![7.0, (f64::from(i32::MAX) - 3.0) / 3.0]);
    assert_eq!(
        run.outputs["padded"].data,
        vec![121.0, f64::from(100i32.wrapping_add(wrapped))]
    );
}

/// `y = relu(a @ b^T + bias)` with b stored transposed and the epilogue fused; the
/// param `b` lives in an arena and is updated in place by a second kernel.
#[test]
fn matmul_with_epilogue_and_views() {
    let (m, n, k) = (3, 4, 5);
    let a = Value::new([m, k], DType::F32, data(m, k)).unwrap();
    let bt = Value::new([n, k], DType::F32, data(n, k).iter().map(|x| x * 0.5).collect()).unwrap();
    let bias = Value::new([n], DType::F32, vec![0.5, -1.0, 2.0, 0.0]).unwrap();
    let operand = |buf, rs, cs| MatOperand {
        buf: BufferId(buf),
        offset: 0,
        batch_strides: vec![],
        row_stride: rs,
        col_stride: cs,
    };
    let epilogue = LoopKernel {
        name: "bias_relu".into(),
        nodes: vec![],
        outer: vec![m, n],
        stages: vec![Stage {
            inner: vec![],
            insts: vec![
                (v(0), load(3, row(1, n))),
                (v(1), load(2, IndexExpr::var(1))),
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
            ],
            accumulators: vec![],
            stores: vec![Store {
                buf: BufferId(4),
                index: row(1, n),
                value: v(3),
            }],
        }],
    };
    let mm = MatMulKernel {
        name: "fused_matmul_add_relu".into(),
        nodes: vec![],
        batch: vec![],
        m,
        n,
        k,
        a: operand(0, k as isize, 1),
        b: operand(1, 1, k as isize),
        out: BufferId(3),
        epilogue: Some(epilogue),
    };
    // b' = b * 2 in place, after the matmul read it
    let scale = map_kernel(
        n * k,
        IndexExpr::var(0),
        Inst::Binary {
            op: BinaryOp::Add,
            a: v(0),
            b: v(0),
        },
    );
    let Kernel::Loop(mut scale) = scale.kernels[0].clone() else {
        unreachable!()
    };
    for st in &mut scale.stages {
        st.insts[0].1 = load(1, IndexExpr::var(0));
        st.stores[0].buf = BufferId(1);
    }
    let mut arena = buf(n * k + 3, DType::F32, BufferRole::Temp);
    arena.storage = Storage::Own;
    let mut b_buf = buf(n * k, DType::F32, BufferRole::Param("b".into()));
    b_buf.storage = Storage::View {
        base: BufferId(5),
        offset: 3,
    };
    let p = Program {
        buffers: vec![
            buf(m * k, DType::F32, BufferRole::Input("a".into())),
            b_buf,
            buf(n, DType::F32, BufferRole::Input("bias".into())),
            buf(m * n, DType::F32, BufferRole::Temp),
            buf(m * n, DType::F32, BufferRole::Output("y".into())),
            arena,
        ],
        kernels: vec![Kernel::MatMul(mm.clone()), Kernel::Loop(scale)],
        updates: vec![(BufferId(1), BufferId(1))],
        ..Default::default()
    };
    let binds = bind(&[("a", a.clone()), ("b", bt.clone()), ("bias", bias.clone())]);
    let run = eval_program(&p, &binds).unwrap();

    let g = GraphBuilder::new();
    let (at, btt, biast) = (
        g.input("a", [m, k], DType::F32),
        g.param("b", [n, k], Init::Zeros),
        g.input("bias", [n], DType::F32),
    );
    g.output("y", &(at.matmul(&btt.t()) + &biast).relu());
    g.update(&btt, &(&btt + &btt));
    let graph = g.finish().unwrap();
    let want = kiln_ir::evaluate(&graph, &binds).unwrap();
    assert_eq!(run.outputs["y"].data, want.output(&graph, "y").unwrap().data);
    assert_eq!(run.updates["b"].data, want.updated(&graph, "b").unwrap().data);
    let mut after = binds.clone();
    run.apply_updates(&mut after);
    assert_eq!(after["b"].shape, bt.shape);

    // An epilogue that reads `out` at another element is rejected.
    let mut bad = p.clone();
    let Kernel::MatMul(mm) = &mut bad.kernels[0] else {
        unreachable!()
    };
    let e = mm.epilogue.as_mut().unwrap();
    e.stages[0].insts[0].1 = load(3, IndexExpr::var(0).mul(n as i64));
    let err = eval_program(&bad, &binds).unwrap_err();
    assert!(err.to_string().contains("away from its own element"), "{err}");
}

fn special_f32() -> Vec<f64> {
    vec![
        0.0,
        -0.0,
        1.5,
        -2.25,
        1e-30,
        88.0,
        -100.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        0.5,
    ]
}

fn special_i32() -> Vec<f64> {
    vec![0.0, 1.0, -7.0, 12.0, f64::from(i32::MAX), f64::from(i32::MIN)]
}

fn scalar_op(op: &Op, ty: DType, args: &[V]) -> Option<Value> {
    let vals: Vec<Value> = args.iter().map(|a| Value::scalar(a.x, a.t)).collect();
    let refs: Vec<&Value> = vals.iter().collect();
    eval_op(op, &TensorType::new([], ty), &refs).ok()
}

fn same(a: f64, b: f64) -> bool {
    a == b && a.is_sign_negative() == b.is_sign_negative() || (a.is_nan() && b.is_nan())
}

/// Every unary, binary and compare rule agrees bit for bit with the interpreter's.
#[test]
fn scalar_semantics_match_the_interpreter() {
    use kiln_ir::{BinaryOp::*, CompareOp::*, UnaryOp::*};
    let unaries = [
        Neg, Exp, Log, Sqrt, Rsqrt, Recip, Abs, Sign, Tanh, Sigmoid, Relu, Sin, Cos,
    ];
    let binaries = [Add, Sub, Mul, Div, Max, Min];
    let compares = [Lt, Le, Gt, Ge, Eq, Ne];
    let mut checked = 0;
    for (t, vals) in [(DType::F32, special_f32()), (DType::I32, special_i32())] {
        for &x in &vals {
            let a = V { x, t };
            for u in unaries {
                match (scalar_op(&Op::Unary(u), t, &[a]), scalar::unary("t", u, a)) {
                    (Some(want), Ok(got)) => {
                        assert!(
                            same(want.data[0], got.x),
                            "{u:?}({x}) : {t}: {} vs {}",
                            want.data[0],
                            got.x
                        );
                        checked += 1;
                    }
                    (None, Err(_)) => {}
                    (w, g) => panic!("{u:?} on {t}: interpreter {w:?}, eval {g:?}"),
                }
            }
            for &y in &vals {
                let b = V { x: y, t };
                for op in binaries {
                    match (scalar_op(&Op::Binary(op), t, &[a, b]), scalar::binary("t", op, a, b)) {
                        (Some(want), Ok(got)) => {
                            assert!(same(want.data[0], got.x), "{op:?}({x}, {y}) : {t}");
                            checked += 1;
                        }
                        (None, Err(_)) => {}
                        (w, g) => panic!("{op:?} on {t}: interpreter {w:?}, eval {g:?}"),
                    }
                }
                for op in compares {
                    let want = scalar_op(&Op::Compare(op), DType::Bool, &[a, b]).unwrap();
                    assert_eq!(
                        want.data[0],
                        scalar::compare("t", op, a, b).unwrap().x,
                        "{op:?}({x}, {y})"
                    );
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} cases compared");
}
