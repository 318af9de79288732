//! Reductions owned by a kernel: each becomes an accumulator filled by its own stage
//! (over the reduced axes, or the kernel taps of a `fold2d`) and read back with
//! `Inst::Acc` at the kernel's outer point; anything else is refused so that the
//! partitioner gives the reduction a buffer.

use kiln_ir::{BinaryOp, CompareOp, DType, Graph, NodeId, Op, ReduceOp, Shape};

use super::{Domain, Emit, Fail, KernelBuilder, StageB};
use crate::error::CompileError;
use crate::kernel::{AccId, Accumulator, Guard, IndexExpr, Inst, Reduction, ValueId};

impl KernelBuilder<'_> {
    /// The input shape and axes a reduction node reduces.
    pub(crate) fn reduction_domain(g: &Graph, n: NodeId) -> Option<(Shape, Vec<usize>)> {
        let node = g.node(n);
        let full = g.node(*node.inputs.first()?).shape().clone();
        match &node.op {
            Op::Reduce { axes, .. } => Some((full, axes.clone())),
            Op::ArgMax { axis } => Some((full, vec![*axis])),
            _ => None,
        }
    }

    pub(super) fn reduction(&mut self, n: NodeId, idx: &[IndexExpr]) -> Emit<ValueId> {
        let (full, axes) = Self::reduction_domain(self.g, n).expect("called for reductions");
        let node = self.g.node(n);
        let own = matches!(&self.domain, Domain::Reduce { full: f, axes: a } if *f == full && *a == axes);
        if !own {
            let why = format!(
                "{} over axes {axes:?} of {full} cannot join a kernel that iterates {}",
                node.op.name(),
                match &self.domain {
                    Domain::Reduce { full, axes } => format!("{full} reducing axes {axes:?}"),
                    _ => "elementwise".to_string(),
                }
            );
            return Err(Fail::Materialize(n, why));
        }
        // Its own element at this outer point: kept axes are the outer variables.
        let keep = matches!(node.op, Op::Reduce { keepdims: true, .. });
        let mut canon = Vec::new();
        let mut k = 0;
        for a in 0..full.rank() {
            if !axes.contains(&a) {
                canon.push(IndexExpr::Var(k));
                k += 1;
            } else if keep {
                canon.push(IndexExpr::Const(0));
            }
        }
        let canon: Vec<IndexExpr> = canon.iter().map(|e| self.simp(e)).collect();
        if canon != idx {
            return Err(Fail::Materialize(
                n,
                format!("{} is read away from its own row", node.op.name()),
            ));
        }
        let acc = self.reduce_acc(n, &full, &axes)?;
        let v = self.push(Inst::Acc(acc), node.dtype());
        if let Op::Reduce { op: ReduceOp::Mean, .. } = node.op {
            let count: usize = axes.iter().map(|&a| full.dims()[a]).product();
            let c = self.konst(count as f64, DType::F32);
            return Ok(self.push(
                Inst::Binary {
                    op: BinaryOp::Div,
                    a: v,
                    b: c,
                },
                DType::F32,
            ));
        }
        Ok(v)
    }

    /// The accumulator of reduction `n`, computing it in a new stage on first use.
    pub(super) fn reduce_acc(&mut self, n: NodeId, full: &Shape, axes: &[usize]) -> Emit<AccId> {
        if let Some(&a) = self.accs.get(&n) {
            return Ok(a);
        }
        let node = self.g.node(n);
        let inner: Vec<usize> = axes.iter().map(|&a| full.dims()[a]).collect();
        let saved = std::mem::replace(&mut self.cur, StageB::new(inner));
        let no = self.outer.len();
        let (mut ko, mut ki) = (0, 0);
        let fidx: Vec<IndexExpr> = (0..full.rank())
            .map(|a| {
                if axes.contains(&a) {
                    ki += 1;
                    IndexExpr::Var(no + ki - 1)
                } else {
                    ko += 1;
                    IndexExpr::Var(ko - 1)
                }
            })
            .collect();
        let x = self.emit(node.inputs[0], &fidx, &[])?;
        let id = AccId(self.next_acc);
        self.next_acc += 1;
        let xt = self.ty(x);
        let (reduction, dtype) = match &node.op {
            Op::Reduce { op, .. } => {
                let op = if *op == ReduceOp::Mean { ReduceOp::Sum } else { *op };
                (Reduction::Fold { op, value: x }, xt)
            }
            _ => {
                let index = self.index_value(&IndexExpr::Var(no));
                (Reduction::ArgMax { value: x, index }, DType::I32)
            }
        };
        self.cur.accumulators.push(Accumulator { id, dtype, reduction });
        let stage = std::mem::replace(&mut self.cur, saved);
        self.done.push(stage.finish());
        self.accs.insert(n, id);
        Ok(id)
    }

    /// The window sum of `Fold2d` node `n` at the outer point (n, c, ih, iw): a stage over
    /// the taps (kh, kw) adding the column entries whose window covers the pixel.
    pub(super) fn fold_acc(&mut self, n: NodeId) -> Emit<AccId> {
        if let Some(&a) = self.accs.get(&n) {
            return Ok(a);
        }
        let node = self.g.node(n);
        let Op::Fold2d { window: w, size } = &node.op else {
            unreachable!("called for fold2d")
        };
        let [oh_n, ow_n] = w
            .output_size(size[0], size[1])
            .ok_or_else(|| CompileError::Internal("fold2d window does not fit".into()))?;
        let saved = std::mem::replace(&mut self.cur, StageB::new(w.kernel.to_vec()));
        let (kh_n, kw_n) = (w.kernel[0] as i64, w.kernel[1] as i64);
        let (c, ih, iw, kh, kw) = (
            IndexExpr::Var(1),
            IndexExpr::Var(2),
            IndexExpr::Var(3),
            IndexExpr::Var(4),
            IndexExpr::Var(5),
        );
        // q = pixel + pad - tap must be a multiple of the stride: window q / stride.
        let qh = ih.add(IndexExpr::Const(w.padding[0] as i64)).add(kh.clone().mul(-1));
        let qw = iw.add(IndexExpr::Const(w.padding[1] as i64)).add(kw.clone().mul(-1));
        let (sh, sw) = (w.stride[0] as i64, w.stride[1] as i64);
        let (oh, ow) = (qh.clone().div(sh), qw.clone().div(sw));
        let row = c.mul(kh_n).add(kh).mul(kw_n).add(kw);
        let col = oh.clone().mul(ow_n as i64).add(ow.clone());
        let src = vec![IndexExpr::Var(0), row, col];
        // A negative q floors to a negative window, so the window guards cover it.
        let guards = vec![
            Guard {
                expr: oh,
                upper: oh_n as i64,
            },
            Guard {
                expr: ow,
                upper: ow_n as i64,
            },
        ];
        let mut v = self.guarded(node.inputs[0], &src, &[], guards, 0.0, DType::F32)?;
        for (q, s) in [(qh, sh), (qw, sw)] {
            if s > 1 {
                let r = self.index_value(&q.rem(s));
                let zero = self.konst(0.0, DType::I32);
                let ok = self.push(
                    Inst::Compare {
                        op: CompareOp::Eq,
                        a: r,
                        b: zero,
                    },
                    DType::Bool,
                );
                let z = self.konst(0.0, DType::F32);
                v = self.select(ok, v, z);
            }
        }
        let id = AccId(self.next_acc);
        self.next_acc += 1;
        self.cur.accumulators.push(Accumulator {
            id,
            dtype: DType::F32,
            reduction: Reduction::Fold {
                op: ReduceOp::Sum,
                value: v,
            },
        });
        let stage = std::mem::replace(&mut self.cur, saved);
        self.done.push(stage.finish());
        self.accs.insert(n, id);
        Ok(id)
    }
}
