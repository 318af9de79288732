//! Guarded views for the kernel builder: `pad`, `unfold2d` and `concat` read their
//! operand only where the index is in bounds (loads carry the guards, so nothing is
//! read out of bounds) and select the fill value elsewhere. No partitioning here.

use kiln_ir::{DType, NodeId};

use super::{Emit, KernelBuilder};
use crate::error::CompileError;
use crate::kernel::{Guard, IndexExpr, ValueId};

impl KernelBuilder<'_> {
    /// `operand[src]` where every guard in `new` holds, else `fill`.
    pub(super) fn guarded(
        &mut self,
        operand: NodeId,
        src: &[IndexExpr],
        guards: &[Guard],
        new: Vec<Guard>,
        fill: f64,
        dtype: DType,
    ) -> Emit<ValueId> {
        let Some(new) = self.live_guards(new) else {
            return Ok(self.konst(fill, dtype));
        };
        if new.is_empty() {
            return self.emit(operand, src, guards);
        }
        let mut all = guards.to_vec();
        all.extend(new.iter().cloned());
        if self.loads(operand) && self.homes.slot.get(&operand).is_none() {
            return self.load(operand, src, &all, fill);
        }
        let cond = self.in_bounds(&new);
        let inner = self.emit(operand, src, &all)?;
        let f = self.konst(fill, dtype);
        Ok(self.select(cond, inner, f))
    }

    pub(super) fn concat(&mut self, n: NodeId, axis: usize, idx: &[IndexExpr], guards: &[Guard]) -> Emit<ValueId> {
        let g = self.g;
        let ins = g.node(n).inputs.clone();
        let mut start = 0i64;
        let mut parts = Vec::new();
        for &i in &ins {
            let len = g.node(i).shape().dims()[axis] as i64;
            parts.push((i, start, len));
            start += len;
        }
        let mut result: Option<ValueId> = None;
        for &(i, start, len) in parts.iter().rev() {
            let mut src = idx.to_vec();
            src[axis] = idx[axis].clone().add(IndexExpr::Const(-start));
            let guard = Guard {
                expr: src[axis].clone(),
                upper: len,
            };
            let Some(live) = self.live_guards(vec![guard]) else {
                continue;
            };
            let mut all = guards.to_vec();
            all.extend(live.iter().cloned());
            let v = if self.loads(i) && self.homes.slot.get(&i).is_none() {
                self.load(i, &src, &all, 0.0)?
            } else {
                self.emit(i, &src, &all)?
            };
            result = Some(match result {
                Some(r) if !live.is_empty() => {
                    let c = self.in_bounds(&live);
                    self.select(c, v, r)
                }
                _ => v,
            });
        }
        result.ok_or_else(|| CompileError::Internal(format!("concat {n} has no operand in range")).into())
    }
}
