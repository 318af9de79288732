//! Hand-built kernel-IR programs that exercise every CUDA code path (float4 and scalar
//! elementwise, warp/block/thread reductions, argmax, gathers with padding guards,
//! Philox, i32 arithmetic, matmuls with fused epilogues, views), with bindings of odd
//! sizes. Shared by the CUDA snapshot, host-emulation and NVRTC tests (the runtime's
//! tests include this file by path).

#![allow(dead_code)]

use kiln_ir::interp::Bindings;
use kiln_ir::{BinaryOp, CompareOp, DType, Distribution, ReduceOp, UnaryOp, Value};

use kiln_compiler::kernel::*;

pub fn buf(len: usize, dtype: DType, role: BufferRole) -> Buffer {
    Buffer {
        len,
        dtype,
        role,
        storage: Storage::Own,
    }
}

pub fn f32_buf(len: usize, role: BufferRole) -> Buffer {
    buf(len, DType::F32, role)
}

pub fn input(n: &str) -> BufferRole {
    BufferRole::Input(n.into())
}
pub fn output(n: &str) -> BufferRole {
    BufferRole::Output(n.into())
}

/// Builds the instructions of one kernel with a shared SSA numbering.
#[derive(Default)]
pub struct Insts {
    next: u32,
    pub list: Vec<(ValueId, Inst)>,
}

impl Insts {
    pub fn push(&mut self, inst: Inst) -> ValueId {
        let id = ValueId(self.next);
        self.next += 1;
        self.list.push((id, inst));
        id
    }
    /// Take the instructions collected so far (for one stage), keeping the numbering.
    pub fn take(&mut self) -> Vec<(ValueId, Inst)> {
        std::mem::take(&mut self.list)
    }
    pub fn load(&mut self, b: u32, index: IndexExpr) -> ValueId {
        self.push(Inst::Load {
            buf: BufferId(b),
            index,
            guards: vec![],
            fill: 0.0,
        })
    }
    pub fn bin(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
        self.push(Inst::Binary { op, a, b })
    }
    pub fn un(&mut self, op: UnaryOp, x: ValueId) -> ValueId {
        self.push(Inst::Unary { op, x })
    }
    pub fn c(&mut self, value: f64) -> ValueId {
        self.push(Inst::Const {
            value,
            dtype: DType::F32,
        })
    }
    pub fn scalar(&mut self, slot: usize) -> ValueId {
        self.push(Inst::Scalar { slot })
    }
}

fn var(k: usize) -> IndexExpr {
    IndexExpr::var(k)
}

fn row(cols: usize) -> IndexExpr {
    var(0).mul(cols as i64).add(var(1))
}

fn store(b: u32, index: IndexExpr, value: ValueId) -> Store {
    Store {
        buf: BufferId(b),
        index,
        value,
    }
}

fn fold(id: u32, op: ReduceOp, value: ValueId) -> Accumulator {
    Accumulator {
        id: AccId(id),
        dtype: DType::F32,
        reduction: Reduction::Fold { op, value },
    }
}

fn stage(inner: Vec<usize>, insts: Vec<(ValueId, Inst)>, accumulators: Vec<Accumulator>, stores: Vec<Store>) -> Stage {
    Stage {
        inner,
        insts,
        accumulators,
        stores,
    }
}

fn lk(name: &str, outer: Vec<usize>, stages: Vec<Stage>) -> Kernel {
    Kernel::Loop(LoopKernel {
        name: name.into(),
        nodes: vec![],
        outer,
        stages,
    })
}

/// Deterministic pseudo-random data in [-3, 3) (with a few exact zeros).
pub fn data(n: usize, salt: u64) -> Vec<f64> {
    let mut s = salt.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let x = ((s >> 40) as f64 / (1u64 << 24) as f64) * 6.0 - 3.0;
            (x * 64.0).round() / 64.0
        })
        .collect()
}

fn f32v(n: usize, salt: u64) -> Value {
    Value::new([n], DType::F32, data(n, salt)).unwrap()
}

fn bind(pairs: Vec<(&str, Value)>) -> Bindings {
    pairs.into_iter().map(|(n, v)| (n.to_string(), v)).collect()
}

/// An Adam-like in-place update of `n` parameters: p, m, v updated through views
/// (p' aliases p), g read-only; scalars lr, b1, b2, eps.
pub fn adam_like(n: usize) -> (Program, Bindings) {
    let mut i = Insts::default();
    let p = i.load(0, var(0));
    let g = i.load(1, var(0));
    let m = i.load(2, var(0));
    let v = i.load(3, var(0));
    let lr = i.scalar(0);
    let b1 = i.scalar(1);
    let b2 = i.scalar(2);
    let eps = i.scalar(3);
    let one = i.c(1.0);
    let omb1 = i.bin(BinaryOp::Sub, one, b1);
    let omb2 = i.bin(BinaryOp::Sub, one, b2);
    let t0 = i.bin(BinaryOp::Mul, b1, m);
    let t1 = i.bin(BinaryOp::Mul, omb1, g);
    let m2 = i.bin(BinaryOp::Add, t0, t1);
    let gg = i.bin(BinaryOp::Mul, g, g);
    let t2 = i.bin(BinaryOp::Mul, b2, v);
    let t3 = i.bin(BinaryOp::Mul, omb2, gg);
    let v2 = i.bin(BinaryOp::Add, t2, t3);
    let sq = i.un(UnaryOp::Sqrt, v2);
    let den = i.bin(BinaryOp::Max, sq, eps);
    let step = i.bin(BinaryOp::Div, m2, den);
    let upd = i.bin(BinaryOp::Mul, lr, step);
    let p2 = i.bin(BinaryOp::Sub, p, upd);
    let k = lk(
        "adam_update",
        vec![n],
        vec![stage(
            vec![],
            i.take(),
            vec![],
            vec![store(4, var(0), p2), store(5, var(0), m2), store(6, var(0), v2)],
        )],
    );
    let view = |base: u32, role: BufferRole| Buffer {
        len: n,
        dtype: DType::F32,
        role,
        storage: Storage::View {
            base: BufferId(base),
            offset: 0,
        },
    };
    let prog = Program {
        buffers: vec![
            f32_buf(n, BufferRole::Param("w".into())),
            f32_buf(n, input("g")),
            f32_buf(n, BufferRole::State("m".into())),
            f32_buf(n, BufferRole::State("v".into())),
            view(0, BufferRole::Temp),
            view(2, BufferRole::Temp),
            view(3, BufferRole::Temp),
        ],
        scalars: ["lr", "b1", "b2", "eps"]
            .iter()
            .map(|s| ScalarSlot {
                name: s.to_string(),
                dtype: DType::F32,
            })
            .collect(),
        kernels: vec![k],
        updates: vec![
            (BufferId(0), BufferId(4)),
            (BufferId(2), BufferId(5)),
            (BufferId(3), BufferId(6)),
        ],
        not_fused: vec![],
    };
    let v = Value::new([n], DType::F32, data(n, 4).iter().map(|x| x.abs()).collect()).unwrap();
    let b = bind(vec![
        ("w", f32v(n, 1)),
        ("g", f32v(n, 2)),
        ("m", f32v(n, 3)),
        ("v", v),
        ("lr", Value::scalar(0.01, DType::F32)),
        ("b1", Value::scalar(0.9, DType::F32)),
        ("b2", Value::scalar(0.999, DType::F32)),
        ("eps", Value::scalar(1e-8, DType::F32)),
    ]);
    (prog, b)
}

/// y[r, c] = relu(x[r, c] + bias[c]) (broadcast bias, NaN-propagating max with 0).
pub fn bias_relu(rows: usize, cols: usize) -> (Program, Bindings) {
    let mut i = Insts::default();
    let x = i.load(0, row(cols));
    let b = i.load(1, var(1));
    let s = i.bin(BinaryOp::Add, x, b);
    let zero = i.c(0.0);
    let y = i.bin(BinaryOp::Max, s, zero);
    let prog = Program {
        buffers: vec![
            f32_buf(rows * cols, input("x")),
            f32_buf(cols, input("bias")),
            f32_buf(rows * cols, output("y")),
        ],
        kernels: vec![lk(
            "add_relu",
            vec![rows, cols],
            vec![stage(vec![], i.take(), vec![], vec![store(2, row(cols), y)])],
        )],
        ..Default::default()
    };
    let mut xd = data(rows * cols, 5);
    xd[0] = f64::NAN;
    let b = bind(vec![
        ("x", Value::new([rows * cols], DType::F32, xd).unwrap()),
        ("bias", f32v(cols, 6)),
    ]);
    (prog, b)
}

/// softmax over the rows of x[rows, cols] in one three-stage kernel.
pub fn softmax(rows: usize, cols: usize) -> (Program, Bindings) {
    let ix = || var(0).mul(cols as i64).add(var(1));
    let mut i = Insts::default();
    let a = i.load(0, ix());
    let s0 = stage(vec![cols], i.take(), vec![fold(0, ReduceOp::Max, a)], vec![]);
    let x = i.load(0, ix());
    let mx = i.push(Inst::Acc(AccId(0)));
    let d = i.bin(BinaryOp::Sub, x, mx);
    let e = i.un(UnaryOp::Exp, d);
    let s1 = stage(vec![cols], i.take(), vec![fold(1, ReduceOp::Sum, e)], vec![]);
    let x = i.load(0, ix());
    let mx = i.push(Inst::Acc(AccId(0)));
    let d = i.bin(BinaryOp::Sub, x, mx);
    let e = i.un(UnaryOp::Exp, d);
    let sum = i.push(Inst::Acc(AccId(1)));
    let y = i.bin(BinaryOp::Div, e, sum);
    let s2 = stage(vec![cols], i.take(), vec![], vec![store(1, ix(), y)]);
    let prog = Program {
        buffers: vec![f32_buf(rows * cols, input("x")), f32_buf(rows * cols, output("y"))],
        kernels: vec![lk("softmax", vec![rows], vec![s0, s1, s2])],
        ..Default::default()
    };
    (prog, bind(vec![("x", f32v(rows * cols, 7))]))
}

/// Per-row cross-entropy: logsumexp(x[r, :]) - x[r, label[r]] (a gather through an i32
/// label), then the mean over rows in a second (block-per-point) kernel.
pub fn cross_entropy(rows: usize, cols: usize) -> (Program, Bindings) {
    let ix = || var(0).mul(cols as i64).add(var(1));
    let mut i = Insts::default();
    let a = i.load(0, ix());
    let s0 = stage(vec![cols], i.take(), vec![fold(0, ReduceOp::Max, a)], vec![]);
    let x = i.load(0, ix());
    let mx = i.push(Inst::Acc(AccId(0)));
    let d = i.bin(BinaryOp::Sub, x, mx);
    let e = i.un(UnaryOp::Exp, d);
    let s1 = stage(vec![cols], i.take(), vec![fold(1, ReduceOp::Sum, e)], vec![]);
    let label = i.load(1, var(0));
    let picked = i.push(Inst::Load {
        buf: BufferId(0),
        index: var(0).mul(cols as i64).add(IndexExpr::Value(label)),
        guards: vec![Guard {
            expr: IndexExpr::Value(label),
            upper: cols as i64,
        }],
        fill: 0.0,
    });
    let sum = i.push(Inst::Acc(AccId(1)));
    let mx = i.push(Inst::Acc(AccId(0)));
    let ls = i.un(UnaryOp::Log, sum);
    let lse = i.bin(BinaryOp::Add, ls, mx);
    let loss = i.bin(BinaryOp::Sub, lse, picked);
    let s2 = stage(vec![], i.take(), vec![], vec![store(2, var(0), loss)]);
    let k0 = lk("log_softmax_nll", vec![rows], vec![s0, s1, s2]);
    let mut j = Insts::default();
    let l = j.load(2, var(0));
    let t0 = stage(vec![rows], j.take(), vec![fold(2, ReduceOp::Mean, l)], vec![]);
    let m = j.push(Inst::Acc(AccId(2)));
    let t1 = stage(vec![], j.take(), vec![], vec![store(3, IndexExpr::Const(0), m)]);
    let k1 = lk("mean_loss", vec![], vec![t0, t1]);
    let prog = Program {
        buffers: vec![
            f32_buf(rows * cols, input("logits")),
            buf(rows, DType::I32, input("labels")),
            f32_buf(rows, BufferRole::Temp),
            f32_buf(1, output("loss")),
        ],
        kernels: vec![k0, k1],
        ..Default::default()
    };
    let labels: Vec<f64> = (0..rows).map(|r| ((r * 7 + 3) % cols) as f64).collect();
    let b = bind(vec![
        ("logits", f32v(rows * cols, 8)),
        ("labels", Value::new([rows], DType::I32, labels).unwrap()),
    ]);
    (prog, b)
}

/// Column sums and column maxima of x[rows, cols] (a column-like reduction), plus the
/// argmax of every row (first maximum wins) and an i32 row sum of a bool mask.
pub fn column_and_argmax(rows: usize, cols: usize) -> (Program, Bindings) {
    let mut i = Insts::default();
    let x = i.load(0, var(1).mul(cols as i64).add(var(0)));
    let s0 = stage(
        vec![rows],
        i.take(),
        vec![fold(0, ReduceOp::Sum, x), fold(1, ReduceOp::Max, x)],
        vec![],
    );
    let s = i.push(Inst::Acc(AccId(0)));
    let m = i.push(Inst::Acc(AccId(1)));
    let s1 = stage(vec![], i.take(), vec![], vec![store(1, var(0), s), store(2, var(0), m)]);
    let k0 = lk("column_sum_max", vec![cols], vec![s0, s1]);

    let mut j = Insts::default();
    let x = j.load(0, row(cols));
    let c = j.push(Inst::LoopVar(1));
    let zero = j.c(0.0);
    let pos = j.push(Inst::Compare {
        op: CompareOp::Gt,
        a: x,
        b: zero,
    });
    let pos_i = j.push(Inst::Cast { x: pos, to: DType::I32 });
    let t0 = stage(
        vec![cols],
        j.take(),
        vec![
            Accumulator {
                id: AccId(0),
                dtype: DType::I32,
                reduction: Reduction::ArgMax { value: x, index: c },
            },
            Accumulator {
                id: AccId(1),
                dtype: DType::I32,
                reduction: Reduction::Fold {
                    op: ReduceOp::Sum,
                    value: pos_i,
                },
            },
        ],
        vec![],
    );
    let am = j.push(Inst::Acc(AccId(0)));
    let cnt = j.push(Inst::Acc(AccId(1)));
    let t1 = stage(
        vec![],
        j.take(),
        vec![],
        vec![store(3, var(0), am), store(4, var(0), cnt)],
    );
    let k1 = lk("argmax_count_rows", vec![rows], vec![t0, t1]);
    let prog = Program {
        buffers: vec![
            f32_buf(rows * cols, input("x")),
            f32_buf(cols, output("colsum")),
            f32_buf(cols, output("colmax")),
            buf(rows, DType::I32, output("argmax")),
            buf(rows, DType::I32, output("positives")),
        ],
        kernels: vec![k0, k1],
        ..Default::default()
    };
    let mut xd = data(rows * cols, 9);
    // ties and a NaN: the first maximum / the first NaN wins.
    if cols > 3 && rows > 2 {
        xd[cols] = 2.9;
        xd[cols + 2] = 2.9;
        xd[2 * cols + 1] = f64::NAN;
    }
    (
        prog,
        bind(vec![("x", Value::new([rows * cols], DType::F32, xd).unwrap())]),
    )
}

/// im2col-style gather with zero padding: y[c, oy, ox] = x[c, oy - 1, ox - 1] (guarded),
/// plus a floor-mod index that can be negative, and i32 arithmetic.
pub fn pad_gather(ch: usize, h: usize, w: usize) -> (Program, Bindings) {
    let (oh, ow) = (h + 2, w + 2);
    let mut i = Insts::default();
    let yy = var(1).add(IndexExpr::Const(-1));
    let xx = var(2).add(IndexExpr::Const(-1));
    let v = i.push(Inst::Load {
        buf: BufferId(0),
        index: var(0).mul((h * w) as i64).add(yy.clone().mul(w as i64)).add(xx.clone()),
        guards: vec![
            Guard {
                expr: yy.clone(),
                upper: h as i64,
            },
            Guard {
                expr: xx.clone(),
                upper: w as i64,
            },
        ],
        fill: 0.0,
    });
    // A guard with only a lower bound (an upper bound beyond every index type).
    let lower_only = i.push(Inst::Load {
        buf: BufferId(0),
        index: var(0).mul((h * w) as i64).add(xx.clone()),
        guards: vec![Guard {
            expr: xx.clone(),
            upper: i64::MAX,
        }],
        fill: 0.5,
    });
    let v = i.bin(BinaryOp::Add, v, lower_only);
    let wrapped = i.push(Inst::Index(xx.rem(3)));
    let shifted = i.push(Inst::Index(yy.div(2)));
    let isum = i.bin(BinaryOp::Add, wrapped, shifted);
    let ineg = i.un(UnaryOp::Neg, isum);
    let out_ix = var(0).mul((oh * ow) as i64).add(var(1).mul(ow as i64)).add(var(2));
    let k = lk(
        "pad_gather",
        vec![ch, oh, ow],
        vec![stage(
            vec![],
            i.take(),
            vec![],
            vec![store(1, out_ix.clone(), v), store(2, out_ix, ineg)],
        )],
    );
    let prog = Program {
        buffers: vec![
            f32_buf(ch * h * w, input("x")),
            f32_buf(ch * oh * ow, output("y")),
            buf(ch * oh * ow, DType::I32, output("ids")),
        ],
        kernels: vec![k],
        ..Default::default()
    };
    (prog, bind(vec![("x", f32v(ch * h * w, 10))]))
}

/// Dropout-like masking with Philox: keep = uniform(seed, step, i) >= rate, plus a
/// normal draw, written as f32 and as a bool mask.
pub fn dropout(n: usize) -> (Program, Bindings) {
    let mut i = Insts::default();
    let x = i.load(0, var(0));
    let seed = i.scalar(0);
    let step = i.scalar(1);
    let rate = i.scalar(2);
    let s3 = i.push(Inst::Const {
        value: 3.0,
        dtype: DType::I32,
    });
    let s4 = i.push(Inst::Const {
        value: 4.0,
        dtype: DType::I32,
    });
    let u = i.push(Inst::Random {
        dist: Distribution::Uniform,
        stream: s3,
        seed,
        step,
        index: var(0),
    });
    let z = i.push(Inst::Random {
        dist: Distribution::Normal,
        stream: s4,
        seed,
        step,
        index: var(0),
    });
    let keep = i.push(Inst::Compare {
        op: CompareOp::Ge,
        a: u,
        b: rate,
    });
    let zero = i.c(0.0);
    let y = i.push(Inst::Select {
        cond: keep,
        on_true: x,
        on_false: zero,
    });
    let k = lk(
        "dropout_noise",
        vec![n],
        vec![stage(
            vec![],
            i.take(),
            vec![],
            vec![store(1, var(0), y), store(2, var(0), z), store(3, var(0), keep)],
        )],
    );
    let prog = Program {
        buffers: vec![
            f32_buf(n, input("x")),
            f32_buf(n, output("y")),
            f32_buf(n, output("z")),
            buf(n, DType::Bool, output("mask")),
        ],
        scalars: vec![
            ScalarSlot {
                name: "seed".into(),
                dtype: DType::I32,
            },
            ScalarSlot {
                name: "step".into(),
                dtype: DType::I32,
            },
            ScalarSlot {
                name: "rate".into(),
                dtype: DType::F32,
            },
        ],
        kernels: vec![k],
        ..Default::default()
    };
    let b = bind(vec![
        ("x", f32v(n, 11)),
        ("seed", Value::scalar(-12345.0, DType::I32)),
        ("step", Value::scalar(7.0, DType::I32)),
        ("rate", Value::scalar(0.25, DType::F32)),
    ]);
    (prog, b)
}

/// out = a @ b + bias (broadcast over rows), then relu — the matmul epilogue reads
/// `out` at its own element and the bias through an index.
pub fn matmul_bias_relu(m: usize, k: usize, n: usize) -> (Program, Bindings) {
    let mut i = Insts::default();
    let o = i.load(2, row(n));
    let b = i.load(3, var(1));
    let s = i.bin(BinaryOp::Add, o, b);
    let r = i.un(UnaryOp::Relu, s);
    let epi = LoopKernel {
        name: "bias_relu".into(),
        nodes: vec![],
        outer: vec![m, n],
        stages: vec![stage(vec![], i.take(), vec![], vec![store(4, row(n), r)])],
    };
    let mm = MatMulKernel {
        name: "matmul_bias_relu".into(),
        nodes: vec![],
        batch: vec![],
        m,
        n,
        k,
        a: MatOperand {
            buf: BufferId(0),
            offset: 0,
            batch_strides: vec![],
            row_stride: k as isize,
            col_stride: 1,
        },
        b: MatOperand {
            buf: BufferId(1),
            offset: 0,
            batch_strides: vec![],
            row_stride: n as isize,
            col_stride: 1,
        },
        out: BufferId(2),
        epilogue: Some(epi),
    };
    let prog = Program {
        buffers: vec![
            f32_buf(m * k, input("a")),
            f32_buf(k * n, input("b")),
            f32_buf(m * n, BufferRole::Temp),
            f32_buf(n, input("bias")),
            f32_buf(m * n, output("y")),
        ],
        kernels: vec![Kernel::MatMul(mm)],
        ..Default::default()
    };
    let b = bind(vec![
        ("a", f32v(m * k, 12)),
        ("b", f32v(k * n, 13)),
        ("bias", f32v(n, 14)),
    ]);
    (prog, b)
}

/// A batched matmul of a transposed, offset view (`a` read as [batch, m, k] from a
/// [batch, k, m] buffer) with a weight shared across the batch, whose epilogue applies
/// an SGD-style update `w2 = w - lr * out` into another buffer.
pub fn matmul_transposed_sgd(batch: usize, m: usize, k: usize, n: usize) -> (Program, Bindings) {
    let mut i = Insts::default();
    let g = i.load(2, var(0).mul((m * n) as i64).add(var(1).mul(n as i64)).add(var(2)));
    let w = i.load(3, var(0).mul((m * n) as i64).add(var(1).mul(n as i64)).add(var(2)));
    let lr = i.scalar(0);
    let d = i.bin(BinaryOp::Mul, lr, g);
    let w2 = i.bin(BinaryOp::Sub, w, d);
    let out_ix = var(0).mul((m * n) as i64).add(var(1).mul(n as i64)).add(var(2));
    let epi = LoopKernel {
        name: "sgd".into(),
        nodes: vec![],
        outer: vec![batch, m, n],
        stages: vec![stage(vec![], i.take(), vec![], vec![store(4, out_ix, w2)])],
    };
    let off = 3;
    let mm = MatMulKernel {
        name: "matmul_t_sgd".into(),
        nodes: vec![],
        batch: vec![batch],
        m,
        n,
        k,
        a: MatOperand {
            buf: BufferId(0),
            offset: off,
            batch_strides: vec![(k * m) as isize],
            row_stride: 1,
            col_stride: m as isize,
        },
        b: MatOperand {
            buf: BufferId(1),
            offset: 0,
            batch_strides: vec![0],
            row_stride: n as isize,
            col_stride: 1,
        },
        out: BufferId(2),
        epilogue: Some(epi),
    };
    let total = batch * m * n;
    let prog = Program {
        buffers: vec![
            f32_buf(off + batch * k * m, input("a")),
            f32_buf(k * n, input("b")),
            f32_buf(total, output("grad")),
            f32_buf(total, input("w")),
            f32_buf(total, output("w_new")),
        ],
        scalars: vec![ScalarSlot {
            name: "lr".into(),
            dtype: DType::F32,
        }],
        kernels: vec![Kernel::MatMul(mm)],
        ..Default::default()
    };
    let b = bind(vec![
        ("a", f32v(off + batch * k * m, 15)),
        ("b", f32v(k * n, 16)),
        ("w", f32v(total, 17)),
        ("lr", Value::scalar(0.5, DType::F32)),
    ]);
    (prog, b)
}

/// Every sample program with a short name, at odd sizes that hit every code path.
pub fn all() -> Vec<(&'static str, Program, Bindings)> {
    let mut v = Vec::new();
    let mut add = |name: &'static str, (p, b): (Program, Bindings)| v.push((name, p, b));
    add("adam_vec", adam_like(4100));
    add("adam_odd", adam_like(4097));
    add("bias_relu", bias_relu(3, 20));
    add("softmax_warp", softmax(17, 10));
    add("softmax_block", softmax(3, 1500));
    add("softmax_thread", softmax(5, 3));
    add("cross_entropy", cross_entropy(33, 10));
    add("column_argmax", column_and_argmax(13, 1031));
    add("pad_gather", pad_gather(2, 3, 5));
    add("dropout", dropout(783));
    add("matmul_bias_relu", matmul_bias_relu(37, 29, 45));
    add("matmul_t_sgd", matmul_transposed_sgd(2, 65, 17, 3));
    add("matmul_k0", matmul_bias_relu(5, 0, 7));
    v
}
