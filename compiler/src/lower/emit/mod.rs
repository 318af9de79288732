//! The loop-kernel builder: turns graph nodes into SSA instructions "at an index".
//!
//! `emit(node, idx)` yields the value of `node` at the multi-index `idx` (index
//! expressions over the kernel's loop variables): a load when the node lives in a
//! buffer, otherwise the node's scalar op applied to its operands emitted at the mapped
//! indices, so every movement op is a view (pad/concat/unfold/gather through guards and
//! selects). A reduction the kernel owns becomes an accumulator filled by an earlier
//! stage and read back with `Inst::Acc`; it is legal only when the kernel iterates that
//! reduction's domain and the read is at the kernel's own outer point. Anything else is
//! refused with [`Fail::Materialize`], and the partitioner gives that node a buffer.
//! This module decides nothing about partitioning and allocates no buffers.

mod guards;
mod reduce;

use std::collections::{BTreeSet, HashMap, HashSet};

use kiln_ir::{CompareOp, DType, Graph, NodeId, Op, Shape};

use super::index::{bounds, ravel, simplify};
use super::views::operand_index;
use crate::error::CompileError;
use crate::kernel::{AccId, Accumulator, BufferId, Guard, IndexExpr, Inst, LoopKernel, Stage, Store, ValueId};

/// Why a kernel could not be built as the partitioner proposed.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Give this node its own buffer, for this reason, and partition again.
    Materialize(NodeId, String),
    /// Do not fuse an epilogue into this matmul.
    Detach(NodeId),
    Error(CompileError),
}

impl From<CompileError> for Fail {
    fn from(e: CompileError) -> Self {
        Fail::Error(e)
    }
}

pub(crate) type Emit<T> = Result<T, Fail>;

/// What a kernel iterates, which decides the reductions it may own.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Domain {
    /// Elementwise: no reductions.
    Flat,
    /// `outer` = the axes of `full` not in `axes`; reductions over exactly these axes.
    Reduce { full: Shape, axes: Vec<usize> },
    /// The window sum of this `Fold2d` node at each of its output elements.
    Fold(NodeId),
}

/// Where materialised nodes live (read-only for the builder).
pub(crate) struct Homes<'a> {
    pub home: &'a HashMap<NodeId, BufferId>,
    pub slot: &'a HashMap<NodeId, usize>,
}

struct StageB {
    inner: Vec<usize>,
    insts: Vec<(ValueId, Inst)>,
    accumulators: Vec<Accumulator>,
    stores: Vec<Store>,
    inst_memo: HashMap<String, ValueId>,
    node_memo: HashMap<String, ValueId>,
    types: HashMap<ValueId, DType>,
}

impl StageB {
    fn new(inner: Vec<usize>) -> Self {
        StageB {
            inner,
            insts: Vec::new(),
            accumulators: Vec::new(),
            stores: Vec::new(),
            inst_memo: HashMap::new(),
            node_memo: HashMap::new(),
            types: HashMap::new(),
        }
    }
    fn finish(self) -> Stage {
        Stage {
            inner: self.inner,
            insts: self.insts,
            accumulators: self.accumulators,
            stores: self.stores,
        }
    }
}

pub(crate) struct KernelBuilder<'a> {
    g: &'a Graph,
    homes: Homes<'a>,
    /// Materialised nodes this kernel computes (and stores) instead of loading.
    here: HashSet<NodeId>,
    domain: Domain,
    outer: Vec<usize>,
    done: Vec<Stage>,
    cur: StageB,
    next_value: u32,
    next_acc: u32,
    accs: HashMap<NodeId, AccId>,
    /// In a matmul epilogue: the matmul, whose `out` may be read only at the own point.
    epilogue_of: Option<NodeId>,
    /// Graph nodes computed by this kernel.
    pub nodes: BTreeSet<NodeId>,
}

impl<'a> KernelBuilder<'a> {
    pub(crate) fn new(g: &'a Graph, homes: Homes<'a>, here: &[NodeId], domain: Domain, outer: Vec<usize>) -> Self {
        KernelBuilder {
            g,
            homes,
            here: here.iter().copied().collect(),
            domain,
            outer,
            done: Vec::new(),
            cur: StageB::new(Vec::new()),
            next_value: 0,
            next_acc: 0,
            accs: HashMap::new(),
            epilogue_of: None,
            nodes: BTreeSet::new(),
        }
    }

    pub(crate) fn set_epilogue_of(&mut self, mm: NodeId) {
        self.epilogue_of = Some(mm);
    }

    /// Loop variables `from..from+n` as index expressions.
    pub(crate) fn vars(from: usize, n: usize) -> Vec<IndexExpr> {
        (from..from + n).map(IndexExpr::Var).collect()
    }

    /// Finish the current stage (if it does anything) and open one over `inner`.
    pub(crate) fn open_stage(&mut self, inner: Vec<usize>) {
        let old = std::mem::replace(&mut self.cur, StageB::new(inner));
        if !old.insts.is_empty() || !old.stores.is_empty() || !old.accumulators.is_empty() {
            self.done.push(old.finish());
        }
    }

    pub(crate) fn finish(mut self, name: String) -> (LoopKernel, BTreeSet<NodeId>) {
        self.open_stage(Vec::new());
        let k = LoopKernel {
            name,
            nodes: self.nodes.iter().copied().collect(),
            outer: self.outer,
            stages: self.done,
        };
        (k, self.nodes)
    }

    fn extents(&self) -> Vec<usize> {
        let mut e = self.outer.clone();
        e.extend(&self.cur.inner);
        e
    }

    fn simp(&self, e: &IndexExpr) -> IndexExpr {
        simplify(e, &self.extents())
    }

    fn push(&mut self, inst: Inst, dtype: DType) -> ValueId {
        let key = format!("{inst:?}");
        if let Some(&v) = self.cur.inst_memo.get(&key) {
            return v;
        }
        let v = ValueId(self.next_value);
        self.next_value += 1;
        self.cur.insts.push((v, inst));
        self.cur.inst_memo.insert(key, v);
        self.cur.types.insert(v, dtype);
        v
    }

    fn ty(&self, v: ValueId) -> DType {
        self.cur.types[&v]
    }

    fn konst(&mut self, value: f64, dtype: DType) -> ValueId {
        self.push(Inst::Const { value, dtype }, dtype)
    }

    fn index_value(&mut self, e: &IndexExpr) -> ValueId {
        let e = self.simp(e);
        match e {
            IndexExpr::Var(k) => self.push(Inst::LoopVar(k), DType::I32),
            e => self.push(Inst::Index(e), DType::I32),
        }
    }

    /// Store the value of `n` at `idx` (in `n`'s shape) into each of `bufs`.
    pub(crate) fn store(&mut self, n: NodeId, idx: &[IndexExpr], bufs: &[BufferId]) -> Emit<()> {
        let v = self.emit(n, idx, &[])?;
        let index = self.simp(&ravel(idx, self.g.node(n).shape().dims()));
        for &buf in bufs {
            self.cur.stores.push(Store {
                buf,
                index: index.clone(),
                value: v,
            });
        }
        Ok(())
    }

    /// Guards that can fail over the current loop extents; `None` if one always fails.
    fn live_guards(&self, guards: Vec<Guard>) -> Option<Vec<Guard>> {
        let ext = self.extents();
        let mut out = Vec::new();
        for g in guards {
            let expr = simplify(&g.expr, &ext);
            match bounds(&expr, &ext) {
                Some((lo, hi)) if lo >= 0 && hi < g.upper => {}
                Some((lo, hi)) if hi < 0 || lo >= g.upper => return None,
                _ => out.push(Guard { expr, upper: g.upper }),
            }
        }
        Some(out)
    }

    /// A Bool value: every guard holds.
    fn in_bounds(&mut self, guards: &[Guard]) -> ValueId {
        let t = self.konst(1.0, DType::Bool);
        let f = self.konst(0.0, DType::Bool);
        let zero = self.konst(0.0, DType::I32);
        let mut acc = t;
        for g in guards {
            let e = self.index_value(&g.expr);
            let upper = self.konst(g.upper as f64, DType::I32);
            let lo = self.push(
                Inst::Compare {
                    op: CompareOp::Ge,
                    a: e,
                    b: zero,
                },
                DType::Bool,
            );
            let hi = self.push(
                Inst::Compare {
                    op: CompareOp::Lt,
                    a: e,
                    b: upper,
                },
                DType::Bool,
            );
            let both = self.push(
                Inst::Select {
                    cond: lo,
                    on_true: hi,
                    on_false: f,
                },
                DType::Bool,
            );
            acc = if acc == t {
                both
            } else {
                self.push(
                    Inst::Select {
                        cond: acc,
                        on_true: both,
                        on_false: f,
                    },
                    DType::Bool,
                )
            };
        }
        acc
    }

    fn select(&mut self, cond: ValueId, a: ValueId, b: ValueId) -> ValueId {
        let t = self.ty(a);
        self.push(
            Inst::Select {
                cond,
                on_true: a,
                on_false: b,
            },
            t,
        )
    }

    /// Whether `n` is read from a buffer here (not computed).
    fn loads(&self, n: NodeId) -> bool {
        let op = &self.g.node(n).op;
        matches!(op, Op::Input { .. } | Op::Param { .. } | Op::State { .. })
            || (self.homes.home.contains_key(&n) && !self.here.contains(&n))
    }

    fn load(&mut self, n: NodeId, idx: &[IndexExpr], guards: &[Guard], fill: f64) -> Emit<ValueId> {
        let node = self.g.node(n);
        let buf =
            *self.homes.home.get(&n).ok_or_else(|| {
                CompileError::Internal(format!("node {n} ({}) has no buffer to load", node.op.name()))
            })?;
        let index = self.simp(&ravel(idx, node.shape().dims()));
        if self.epilogue_of == Some(n) {
            let own = self.simp(&ravel(&Self::vars(0, self.outer.len()), &self.outer));
            if index != own || !guards.is_empty() {
                return Err(Fail::Detach(n));
            }
        }
        let Some(guards) = self.live_guards(guards.to_vec()) else {
            return Ok(self.konst(fill, node.dtype()));
        };
        Ok(self.push(
            Inst::Load {
                buf,
                index,
                guards,
                fill,
            },
            node.dtype(),
        ))
    }

    /// The value of node `n` at `idx`; `guards` are the bounds conditions of enclosing
    /// pads/concats (loads under them are guarded so they never go out of bounds).
    pub(crate) fn emit(&mut self, n: NodeId, idx: &[IndexExpr], guards: &[Guard]) -> Emit<ValueId> {
        let idx: Vec<IndexExpr> = idx.iter().map(|e| self.simp(e)).collect();
        let key = format!("{}|{idx:?}|{guards:?}", n.0);
        if let Some(&v) = self.cur.node_memo.get(&key) {
            return Ok(v);
        }
        let v = self.emit_uncached(n, &idx, guards)?;
        self.cur.node_memo.insert(key, v);
        Ok(v)
    }

    fn emit_uncached(&mut self, n: NodeId, idx: &[IndexExpr], guards: &[Guard]) -> Emit<ValueId> {
        let g = self.g;
        let node = g.node(n);
        let dtype = node.dtype();
        if let Some(&slot) = self.homes.slot.get(&n) {
            return Ok(self.push(Inst::Scalar { slot }, dtype));
        }
        if self.loads(n) {
            return self.load(n, idx, guards, 0.0);
        }
        self.nodes.insert(n);
        let ins = &node.inputs;
        let shape_of = |i: NodeId| g.node(i).shape().clone();
        Ok(match &node.op {
            Op::Input { .. } | Op::Param { .. } | Op::State { .. } | Op::Scalar { .. } => {
                return Err(CompileError::Internal(format!("source {n} has neither buffer nor slot")).into())
            }
            Op::Const { value } => self.konst(*value, dtype),
            Op::Iota { axis } => {
                let i = self.index_value(&idx[*axis]);
                if dtype == DType::I32 {
                    i
                } else {
                    self.push(Inst::Cast { x: i, to: dtype }, dtype)
                }
            }
            Op::Random { dist, stream } => {
                let seed = self.emit(ins[0], &[], guards)?;
                let step = self.emit(ins[1], &[], guards)?;
                let index = self.simp(&ravel(idx, node.shape().dims()));
                // The stream's u32 bits as an i32 constant.
                let stream = self.konst(f64::from(*stream as i32), DType::I32);
                self.push(
                    Inst::Random {
                        dist: *dist,
                        stream,
                        seed,
                        step,
                        index,
                    },
                    DType::F32,
                )
            }
            Op::Unary(op) => {
                let x = self.emit(ins[0], idx, guards)?;
                self.push(Inst::Unary { op: *op, x }, dtype)
            }
            Op::Binary(op) => {
                let a = self.emit(ins[0], idx, guards)?;
                let b = self.emit(ins[1], idx, guards)?;
                self.push(Inst::Binary { op: *op, a, b }, dtype)
            }
            Op::PowConst { exponent } => {
                let x = self.emit(ins[0], idx, guards)?;
                self.push(Inst::PowConst { x, exponent: *exponent }, dtype)
            }
            Op::Compare(op) => {
                let a = self.emit(ins[0], idx, guards)?;
                let b = self.emit(ins[1], idx, guards)?;
                self.push(Inst::Compare { op: *op, a, b }, DType::Bool)
            }
            Op::Select => {
                let c = self.emit(ins[0], idx, guards)?;
                let a = self.emit(ins[1], idx, guards)?;
                let b = self.emit(ins[2], idx, guards)?;
                self.select(c, a, b)
            }
            Op::Cast => {
                let x = self.emit(ins[0], idx, guards)?;
                if self.ty(x) == dtype {
                    x
                } else {
                    self.push(Inst::Cast { x, to: dtype }, dtype)
                }
            }
            Op::Reshape | Op::Expand | Op::Permute { .. } | Op::Slice { .. } => {
                let src = operand_index(&node.op, node.shape(), &shape_of(ins[0]), idx)
                    .ok_or_else(|| CompileError::Internal(format!("{} is not a view", node.op.name())))?;
                self.emit(ins[0], &src, guards)?
            }
            Op::Pad { low, value, .. } => {
                let in_shape = shape_of(ins[0]);
                let src: Vec<IndexExpr> = idx
                    .iter()
                    .zip(low)
                    .map(|(e, &l)| e.clone().add(IndexExpr::Const(-(l as i64))))
                    .collect();
                let new: Vec<Guard> = src
                    .iter()
                    .zip(in_shape.dims())
                    .map(|(e, &d)| Guard {
                        expr: e.clone(),
                        upper: d as i64,
                    })
                    .collect();
                self.guarded(ins[0], &src, guards, new, *value, dtype)?
            }
            Op::Concat { axis } => self.concat(n, *axis, idx, guards)?,
            Op::Gather => {
                let ri = g.node(ins[1]).shape().rank();
                let iv = self.emit(ins[1], &idx[..ri], guards)?;
                if !self.loads(ins[0]) {
                    return Err(Fail::Materialize(ins[0], "gather reads whole rows of a buffer".into()));
                }
                let rows = shape_of(ins[0]).dims()[0] as i64;
                let mut src = vec![IndexExpr::Value(iv)];
                src.extend_from_slice(&idx[ri..]);
                let mut gs = guards.to_vec();
                gs.push(Guard {
                    expr: IndexExpr::Value(iv),
                    upper: rows,
                });
                self.load(ins[0], &src, &gs, 0.0)?
            }
            Op::OneHot { .. } => {
                let r = g.node(ins[0]).shape().rank();
                let iv = self.emit(ins[0], &idx[..r], guards)?;
                let d = self.index_value(&idx[r]);
                let eq = self.push(
                    Inst::Compare {
                        op: CompareOp::Eq,
                        a: iv,
                        b: d,
                    },
                    DType::Bool,
                );
                self.push(Inst::Cast { x: eq, to: DType::F32 }, DType::F32)
            }
            Op::Unfold2d(w) => {
                let dims = shape_of(ins[0]);
                let [_, _, h, wd] = <[usize; 4]>::try_from(dims.dims())
                    .map_err(|_| CompileError::Internal("unfold2d operand is not NCHW".into()))?;
                let [kh, kw] = w.kernel.map(|k| k as i64);
                let ow = w.output_size(h, wd).map_or(1, |o| o[1]) as i64;
                let (row, col) = (&idx[1], &idx[2]);
                let c = row.clone().div(kh * kw);
                let th = row.clone().div(kw).rem(kh);
                let tw = row.clone().rem(kw);
                let ih = col
                    .clone()
                    .div(ow)
                    .mul(w.stride[0] as i64)
                    .add(th)
                    .add(IndexExpr::Const(-(w.padding[0] as i64)));
                let iw = col
                    .clone()
                    .rem(ow)
                    .mul(w.stride[1] as i64)
                    .add(tw)
                    .add(IndexExpr::Const(-(w.padding[1] as i64)));
                let src = vec![idx[0].clone(), c, ih.clone(), iw.clone()];
                let new = vec![
                    Guard {
                        expr: ih,
                        upper: h as i64,
                    },
                    Guard {
                        expr: iw,
                        upper: wd as i64,
                    },
                ];
                self.guarded(ins[0], &src, guards, new, 0.0, dtype)?
            }
            Op::Reduce { .. } | Op::ArgMax { .. } => self.reduction(n, idx)?,
            Op::Fold2d { .. } => {
                if self.domain != Domain::Fold(n) || *idx != Self::vars(0, self.outer.len()) {
                    return Err(Fail::Materialize(
                        n,
                        "fold2d sums overlapping windows in its own kernel".into(),
                    ));
                }
                let acc = self.fold_acc(n)?;
                self.push(Inst::Acc(acc), dtype)
            }
            Op::MatMul => {
                return Err(Fail::Materialize(
                    n,
                    "a matmul result is written by its GEMM kernel".into(),
                ))
            }
        })
    }
}
