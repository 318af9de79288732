//! The kernel IR: what fusion produces and every code generator consumes.
//!
//! A [`Program`] is a list of buffers and an ordered list of kernels. It contains no
//! CPU- or CUDA-specific concept: a kernel is an iteration space with scalar programs,
//! loads and stores through index expressions. The Cranelift backend maps the outer
//! (parallel) loop onto worker threads and SIMD lanes; the CUDA backend maps it onto
//! threads/blocks. This module owns the data types only (plus small helpers); lowering
//! from the graph lives in `lower`/`fusion`, code generation in `codegen`.
//!
//! ## Execution model of a [`LoopKernel`]
//! ```text
//! for each point o in outer (parallel, any order):          // loop vars 0..outer.len()
//!     for stage in stages (in order):
//!         init the stage's accumulators (identity of their ReduceOp)
//!         for each point r in stage.inner (sequential, row-major): // vars outer.len()..
//!             evaluate stage.insts in order (SSA values)
//!             fold each reduction's value into its accumulator
//!             perform stage.stores
//!         // accumulators are now readable by later stages via Inst::Acc
//! ```
//! An elementwise kernel has one stage with `inner = []` (a single iteration). A
//! softmax row kernel has `outer = [rows]` and three stages over `inner = [cols]`: max,
//! sum of exp, and the normalised store. A reduction over non-trailing axes simply uses
//! index expressions that stride across the input.
//!
//! Rules every producer of kernels keeps (the evaluator in [`eval`] checks them):
//! - an instruction uses only values defined earlier in the SAME stage; results of
//!   earlier stages reach later ones only through accumulators (`Inst::Acc`);
//! - a `Mean` accumulator yields sum / (number of inner points of its stage);
//! - different outer points never touch the same element when one of them writes it
//!   (outer points may run in any order, in parallel);
//! - a matmul epilogue's point `o` reads `out` only at element `o`, and the epilogue
//!   never writes what the matmul reads (it runs block by block, interleaved with it).
//!
//! ## Index expressions
//! Every view (broadcast, permute, slice, reshape, pad, concat, unfold, gather) composes
//! into an [`IndexExpr`] tree over loop variables (plus, for gathers, a loaded value).
//! Backends may vectorise along the innermost loop variable whenever every index is
//! affine in it with coefficient 0 or 1 (see [`IndexExpr::affine_in`]).

use std::fmt;

use kiln_ir::{BinaryOp, CompareOp, DType, Distribution, NodeId, ReduceOp, UnaryOp};

mod display;
pub mod eval;

/// Index of a buffer in [`Program::buffers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(pub u32);

/// Index of an SSA value inside one kernel (all stages share one numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

/// Index of an accumulator inside one kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccId(pub u32);

/// What a buffer holds and who provides it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BufferRole {
    /// Batch data bound by name each step.
    Input(String),
    /// A parameter (persistent; updated in place when the graph updates it).
    Param(String),
    /// Optimizer state (persistent; updated in place).
    State(String),
    /// A named output of the step, read back after the run.
    Output(String),
    /// An intermediate; the memory planner decides where it lives.
    Temp,
}

/// Where a buffer's elements live.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Storage {
    /// Its own allocation.
    Own,
    /// A window `[offset, offset+len)` of another buffer (arenas for horizontal kernels,
    /// reuse by the memory planner).
    View { base: BufferId, offset: usize },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    pub len: usize,
    /// Storage type: F32 and I32 are 4 bytes, Bool is stored as one 4-byte 0/1 value
    /// (u32) so every buffer has 4-byte elements and SIMD lanes line up.
    pub dtype: DType,
    pub role: BufferRole,
    pub storage: Storage,
}

/// A runtime scalar argument (learning rate, step, seed), passed to every kernel by value.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarSlot {
    pub name: String,
    pub dtype: DType,
}

/// Integer index arithmetic over loop variables (and loaded values, for gathers).
/// Division and modulo are floor division by a positive constant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IndexExpr {
    /// Loop variable `k`: outer vars first, then the current stage's inner vars.
    Var(usize),
    Const(i64),
    Add(Box<IndexExpr>, Box<IndexExpr>),
    /// Multiplication by a constant.
    Mul(Box<IndexExpr>, i64),
    Div(Box<IndexExpr>, i64),
    Mod(Box<IndexExpr>, i64),
    /// The value of an I32 SSA value (data-dependent index, e.g. gather).
    Value(ValueId),
}

impl IndexExpr {
    /// Append the kernel values this index reads (data-dependent indices) to `out`.
    pub fn values_into(&self, out: &mut Vec<ValueId>) {
        match self {
            IndexExpr::Value(v) => out.push(*v),
            IndexExpr::Var(_) | IndexExpr::Const(_) => {}
            IndexExpr::Add(a, b) => {
                a.values_into(out);
                b.values_into(out);
            }
            IndexExpr::Mul(a, _) | IndexExpr::Div(a, _) | IndexExpr::Mod(a, _) => a.values_into(out),
        }
    }

    pub fn var(k: usize) -> Self {
        IndexExpr::Var(k)
    }
    pub fn add(self, o: IndexExpr) -> Self {
        match (&self, &o) {
            (IndexExpr::Const(0), _) => o,
            (_, IndexExpr::Const(0)) => self,
            (IndexExpr::Const(a), IndexExpr::Const(b)) => IndexExpr::Const(a + b),
            _ => IndexExpr::Add(Box::new(self), Box::new(o)),
        }
    }
    pub fn mul(self, c: i64) -> Self {
        match self {
            _ if c == 0 => IndexExpr::Const(0),
            _ if c == 1 => self,
            IndexExpr::Const(a) => IndexExpr::Const(a * c),
            e => IndexExpr::Mul(Box::new(e), c),
        }
    }
    pub fn div(self, c: i64) -> Self {
        match self {
            _ if c == 1 => self,
            IndexExpr::Const(a) => IndexExpr::Const(a.div_euclid(c)),
            e => IndexExpr::Div(Box::new(e), c),
        }
    }
    pub fn rem(self, c: i64) -> Self {
        match self {
            _ if c == 1 => IndexExpr::Const(0),
            IndexExpr::Const(a) => IndexExpr::Const(a.rem_euclid(c)),
            e => IndexExpr::Mod(Box::new(e), c),
        }
    }

    /// If the expression is `base + coef * Var(var)` where `base` does not depend on
    /// `var`, returns `coef` (0 when `var` does not occur). `None` when `var` occurs
    /// under a div/mod or inside a data-dependent part.
    pub fn affine_in(&self, var: usize) -> Option<i64> {
        match self {
            IndexExpr::Var(k) => Some((*k == var) as i64),
            IndexExpr::Const(_) | IndexExpr::Value(_) => Some(0),
            IndexExpr::Add(a, b) => Some(a.affine_in(var)? + b.affine_in(var)?),
            IndexExpr::Mul(a, c) => Some(a.affine_in(var)? * c),
            IndexExpr::Div(a, _) | IndexExpr::Mod(a, _) => {
                if a.mentions(var) {
                    None
                } else {
                    Some(0)
                }
            }
        }
    }

    /// Whether loop variable `var` occurs anywhere in the expression.
    pub fn mentions(&self, var: usize) -> bool {
        match self {
            IndexExpr::Var(k) => *k == var,
            IndexExpr::Const(_) | IndexExpr::Value(_) => false,
            IndexExpr::Add(a, b) => a.mentions(var) || b.mentions(var),
            IndexExpr::Mul(a, _) | IndexExpr::Div(a, _) | IndexExpr::Mod(a, _) => a.mentions(var),
        }
    }

    /// Evaluate with loop variable values `vars` and data-dependent values `value`.
    pub fn eval(&self, vars: &[i64], value: &dyn Fn(ValueId) -> i64) -> i64 {
        match self {
            IndexExpr::Var(k) => vars[*k],
            IndexExpr::Const(c) => *c,
            IndexExpr::Add(a, b) => a.eval(vars, value) + b.eval(vars, value),
            IndexExpr::Mul(a, c) => a.eval(vars, value) * c,
            IndexExpr::Div(a, c) => a.eval(vars, value).div_euclid(*c),
            IndexExpr::Mod(a, c) => a.eval(vars, value).rem_euclid(*c),
            IndexExpr::Value(v) => value(*v),
        }
    }
}

/// A bounds condition `0 <= expr < upper`; a guarded load whose guards fail yields its
/// `fill` value instead of touching memory (padding, out-of-range gathers).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Guard {
    pub expr: IndexExpr,
    pub upper: i64,
}

/// One SSA instruction. Its result is `ValueId(position in the kernel's instruction
/// numbering)`; see [`LoopKernel::stages`]. Value types: F32, I32 or Bool.
#[derive(Clone, Debug, PartialEq)]
pub enum Inst {
    Load {
        buf: BufferId,
        index: IndexExpr,
        guards: Vec<Guard>,
        fill: f64,
    },
    /// Runtime scalar slot `Program::scalars[slot]`.
    Scalar {
        slot: usize,
    },
    Const {
        value: f64,
        dtype: DType,
    },
    /// Value of a loop variable (I32), e.g. for iota, one-hot and argmax.
    LoopVar(usize),
    /// Value of an index expression (I32): iota, one-hot and pad/concat conditions seen
    /// through views (a reshape turns a coordinate into div/mod of loop variables).
    Index(IndexExpr),
    /// An accumulator finished by an earlier stage.
    Acc(AccId),
    Unary {
        op: UnaryOp,
        x: ValueId,
    },
    Binary {
        op: BinaryOp,
        a: ValueId,
        b: ValueId,
    },
    PowConst {
        x: ValueId,
        exponent: f64,
    },
    Compare {
        op: CompareOp,
        a: ValueId,
        b: ValueId,
    },
    Select {
        cond: ValueId,
        on_true: ValueId,
        on_false: ValueId,
    },
    Cast {
        x: ValueId,
        to: DType,
    },
    /// Philox draw for element `index` (see `kiln_ir::philox` for the exact mapping);
    /// `stream`, `seed` and `step` are I32 values (the stream's bits are the graph's u32
    /// stream: a constant, or per element where a horizontal kernel spans parameters).
    Random {
        dist: Distribution,
        stream: ValueId,
        seed: ValueId,
        step: ValueId,
        index: IndexExpr,
    },
}

impl Inst {
    /// Append every value this instruction reads, its index expressions included.
    pub fn operands_into(&self, v: &mut Vec<ValueId>) {
        match self {
            Inst::Load { index, guards, .. } => {
                index.values_into(v);
                for g in guards {
                    g.expr.values_into(v);
                }
            }
            Inst::Index(e) => e.values_into(v),
            Inst::Scalar { .. } | Inst::Const { .. } | Inst::LoopVar(_) | Inst::Acc(_) => {}
            Inst::Unary { x, .. } | Inst::PowConst { x, .. } | Inst::Cast { x, .. } => v.push(*x),
            Inst::Binary { a, b, .. } | Inst::Compare { a, b, .. } => v.extend([*a, *b]),
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => v.extend([*cond, *on_true, *on_false]),
            Inst::Random {
                stream,
                seed,
                step,
                index,
                ..
            } => {
                v.extend([*stream, *seed, *step]);
                index.values_into(v);
            }
        }
    }

    /// Every value this instruction reads.
    pub fn operands(&self) -> Vec<ValueId> {
        let mut v = Vec::new();
        self.operands_into(&mut v);
        v
    }
}

/// How an accumulator folds values. `ArgMax` keeps (max value, index of first max)
/// and yields the index (I32); `index` is the I32 value to record.
#[derive(Clone, Debug, PartialEq)]
pub enum Reduction {
    Fold { op: ReduceOp, value: ValueId },
    ArgMax { value: ValueId, index: ValueId },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Accumulator {
    pub id: AccId,
    pub dtype: DType,
    pub reduction: Reduction,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    pub buf: BufferId,
    pub index: IndexExpr,
    pub value: ValueId,
}

/// One sequential loop nest inside an outer point.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// Extents of the stage's inner loop variables (`[]`: a single iteration).
    pub inner: Vec<usize>,
    /// Instructions evaluated per inner point, as `(result id, instruction)`.
    pub insts: Vec<(ValueId, Inst)>,
    /// Accumulators folded per inner point; readable (`Inst::Acc`) in later stages.
    pub accumulators: Vec<Accumulator>,
    pub stores: Vec<Store>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoopKernel {
    /// Readable name after the fused ops, e.g. `fused_mul_add_relu`.
    pub name: String,
    /// Graph nodes this kernel implements (for inspection and snapshot comments).
    pub nodes: Vec<NodeId>,
    /// Parallel loop extents.
    pub outer: Vec<usize>,
    pub stages: Vec<Stage>,
}

/// A strided matrix operand: element (batch b, row i, col j) lives at
/// `offset + Σ batch_strides[d]*b[d] + i*row_stride + j*col_stride` of `buf`.
/// Transposed views need no copy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MatOperand {
    pub buf: BufferId,
    pub offset: usize,
    pub batch_strides: Vec<isize>,
    pub row_stride: isize,
    pub col_stride: isize,
}

/// `out[b, i, j] = Σ_k a[b, i, k] * b[b, k, j]`, then the optional epilogue.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulKernel {
    pub name: String,
    pub nodes: Vec<NodeId>,
    /// Batch extents (after broadcasting), then m, n, k.
    pub batch: Vec<usize>,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: MatOperand,
    pub b: MatOperand,
    /// Row-major contiguous `[batch.., m, n]`.
    pub out: BufferId,
    /// Elementwise tail over the output's index space `outer = [batch.., m, n]`, run on
    /// each output block while it is hot (it may read `out` and other buffers).
    pub epilogue: Option<LoopKernel>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    Loop(LoopKernel),
    MatMul(MatMulKernel),
}

impl Kernel {
    pub fn name(&self) -> &str {
        match self {
            Kernel::Loop(k) => &k.name,
            Kernel::MatMul(k) => &k.name,
        }
    }
    pub fn nodes(&self) -> &[NodeId] {
        match self {
            Kernel::Loop(k) => &k.nodes,
            Kernel::MatMul(k) => &k.nodes,
        }
    }
}

/// A kernel boundary the partitioner kept, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct NotFused {
    pub producer: NodeId,
    pub consumer: NodeId,
    pub reason: String,
}

/// A compiled step: buffers, scalars, kernels in execution order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    pub buffers: Vec<Buffer>,
    pub scalars: Vec<ScalarSlot>,
    pub kernels: Vec<Kernel>,
    /// `(param/state buffer, buffer holding its new value)`: the runtime copies or,
    /// when the planner aliased them, nothing (in-place update).
    pub updates: Vec<(BufferId, BufferId)>,
    pub not_fused: Vec<NotFused>,
}

impl Program {
    pub fn buffer(&self, id: BufferId) -> &Buffer {
        &self.buffers[id.0 as usize]
    }

    /// The buffer with this role, if any.
    pub fn find(&self, role: &BufferRole) -> Option<BufferId> {
        self.buffers
            .iter()
            .position(|b| &b.role == role)
            .map(|i| BufferId(i as u32))
    }

    /// Number of kernel launches per step.
    pub fn launches(&self) -> usize {
        self.kernels.len()
    }
}

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}", self.0)
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl fmt::Display for AccId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "acc{}", self.0)
    }
}
