//! Loop structure of a generated kernel: the entry block (buffer pointers, scalars),
//! the split of the flat outer range `[begin, end)` into rows of the innermost outer
//! dimension, the f32x4 main loop with its scalar tail (or the scalar loop alone), and
//! the sequential inner loops of each stage with their accumulators.
//!
//! ```text
//! for q in begin/L ..= (end-1)/L:               // rows; prefix vars = unravel(q)
//!     j in [jb, je) of this row                  // clipped to [begin, end)
//!     vector: for j step 4 while j+4 <= je: point(X4, j..j+4)
//!     tail:   for j while j < je:               point(scalar, j)
//! point: for each stage: init accs; for inner points: insts, folds, stores; finish accs
//! ```

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, Block, InstBuilder, Value};

use super::emit::{Emitter, Env, Point, Val};
use super::index::VarVal;
use super::lanes::Width;
use super::reduce::AccSlot;
use crate::kernel::{AccId, Inst, Stage};

/// An open counted loop: `iv` runs from its start while `iv + step <= end`.
pub struct OpenLoop {
    header: Block,
    exit: Block,
    iv: Value,
    step: i64,
}

impl<'a, 'f> Emitter<'a, 'f> {
    /// Start a loop; the builder is left in its body.
    pub fn loop_begin(&mut self, start: Value, end: Value, step: i64) -> OpenLoop {
        let header = self.b.create_block();
        let body = self.b.create_block();
        let exit = self.b.create_block();
        self.b.append_block_param(header, types::I64);
        self.b.ins().jump(header, &[start.into()]);
        self.b.switch_to_block(header);
        let iv = self.b.block_params(header)[0];
        // Branch to the exit on the *taken* edge and fall into the body: Cranelift's
        // egraph elaboration then visits the body before the exit in the dominator
        // tree. The other order pops the loop off its loop stack before the body is
        // elaborated, which disables LICM for everything in it (the previous stage's
        // horizontal reductions and a row's `log` were recomputed per iteration).
        let done = if step == 1 {
            self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, iv, end)
        } else {
            let last = self.b.ins().iadd_imm_s(iv, step);
            self.b.ins().icmp(IntCC::SignedGreaterThan, last, end)
        };
        self.b.ins().brif(done, exit, &[], body, &[]);
        self.b.switch_to_block(body);
        OpenLoop { header, exit, iv, step }
    }

    /// Close a loop; the builder continues after it.
    pub fn loop_end(&mut self, l: OpenLoop) {
        let next = self.b.ins().iadd_imm_s(l.iv, l.step);
        self.b.ins().jump(l.header, &[next.into()]);
        self.b.switch_to_block(l.exit);
    }

    /// The whole kernel body, from the entry parameters `begin`/`end`.
    pub fn emit_outer(&mut self, begin: Value, end: Value) {
        let outer = self.k.outer.clone();
        let total: usize = outer.iter().product();
        let done = self.b.create_block();
        if total == 0 {
            self.b.ins().jump(done, &[]);
            self.b.switch_to_block(done);
            self.b.ins().return_(&[]);
            return;
        }
        let dims: Vec<usize> = if outer.is_empty() { vec![1] } else { outer.clone() };
        let row = *dims.last().expect("non-empty") as i64;
        let work = self.b.create_block();
        let nonempty = self.b.ins().icmp(IntCC::SignedLessThan, begin, end);
        self.b.ins().brif(nonempty, work, &[], done, &[]);
        self.b.switch_to_block(work);

        let rowv = self.b.ins().iconst(types::I64, row);
        let q0 = self.b.ins().udiv(begin, rowv);
        let q0r = self.b.ins().imul(q0, rowv);
        let j0 = self.b.ins().isub(begin, q0r);
        let last = self.b.ins().iadd_imm_s(end, -1);
        let q1 = self.b.ins().udiv(last, rowv);
        let q1r = self.b.ins().imul(q1, rowv);
        let jl = self.b.ins().isub(last, q1r);
        let jl = self.b.ins().iadd_imm_s(jl, 1);
        let q_end = self.b.ins().iadd_imm_s(q1, 1);

        let rows = self.loop_begin(q0, q_end, 1);
        let q = rows.iv;
        let zero = self.b.ins().iconst(types::I64, 0);
        let first = self.b.ins().icmp(IntCC::Equal, q, q0);
        let jb = self.b.ins().select(first, j0, zero);
        let is_last = self.b.ins().icmp(IntCC::Equal, q, q1);
        let je = self.b.ins().select(is_last, jl, rowv);

        // Prefix variables from the row index (row-major).
        let n = outer.len();
        let mut prefix = vec![zero; n.saturating_sub(1)];
        let mut r = q;
        for d in (0..n.saturating_sub(1)).rev() {
            let dv = self.b.ins().iconst(types::I64, dims[d] as i64);
            prefix[d] = self.b.ins().urem(r, dv);
            r = self.b.ins().udiv(r, dv);
        }
        let mut vars: Vec<VarVal> = prefix.into_iter().map(VarVal::Uniform).collect();

        let tail_start = if self.plan.is_vector() {
            let len = self.b.ins().isub(je, jb);
            let vlen = self.b.ins().band_imm_s(len, !3);
            let jv = self.b.ins().iadd(jb, vlen);
            let vl = self.loop_begin(jb, jv, 4);
            vars.push(VarVal::Lanes(vl.iv));
            self.emit_point(Width::X4, &vars);
            vars.pop();
            self.loop_end(vl);
            jv
        } else {
            jb
        };
        let sl = self.loop_begin(tail_start, je, 1);
        if n > 0 {
            vars.push(VarVal::Uniform(sl.iv));
        }
        // The tail of a vector loop is cold: transcendentals there call the program's
        // support functions instead of repeating their expansion (see `support`).
        self.helpers.outline = self.plan.is_vector();
        self.emit_point(Width::Scalar, &vars);
        self.helpers.outline = false;
        if n > 0 {
            vars.pop();
        }
        self.loop_end(sl);
        self.loop_end(rows);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        self.b.ins().return_(&[]);
    }

    /// One outer point (or four, at width X4): every stage in order.
    fn emit_point(&mut self, w: Width, outer_vars: &[VarVal]) {
        let k = self.k;
        let mut finished: HashMap<AccId, Val> = HashMap::new();
        for (si, stage) in k.stages.iter().enumerate() {
            let mut pt = Point {
                w,
                vars: outer_vars.to_vec(),
                extents: k.outer.clone(),
            };
            pt.extents.extend(stage.inner.iter().copied());
            if self.plan.stage_vector.get(si).copied().flatten().is_some() && w == Width::Scalar {
                self.emit_inner_vector_stage(stage, pt, &mut finished);
                continue;
            }
            let slots: Vec<_> = stage.accumulators.iter().map(|a| self.acc_init(a, w)).collect();
            let mut loops = Vec::new();
            for &extent in &stage.inner {
                let zero = self.b.ins().iconst(types::I64, 0);
                let end = self.b.ins().iconst(types::I64, extent as i64);
                let l = self.loop_begin(zero, end, 1);
                pt.vars.push(VarVal::Uniform(l.iv));
                loops.push(l);
            }
            self.emit_body(stage, &pt, &slots, &finished);
            while let Some(l) = loops.pop() {
                self.loop_end(l);
            }
            let count: usize = stage.inner.iter().product();
            for (a, slot) in stage.accumulators.iter().zip(&slots) {
                let v = self.acc_finish(a, slot, count);
                finished.insert(a.id, v);
            }
        }
    }

    /// One inner point (or four): instructions, accumulator folds, stores.
    fn emit_body(&mut self, stage: &Stage, pt: &Point, slots: &[AccSlot], finished: &HashMap<AccId, Val>) {
        let mut env: Env = HashMap::new();
        for (id, inst) in &stage.insts {
            if self.plan.fused_muls.contains(id) {
                continue;
            }
            let v = match inst {
                Inst::Acc(a) => finished[a],
                _ => self.inst(pt, &env, inst),
            };
            env.insert(*id, v);
        }
        for (a, slot) in stage.accumulators.iter().zip(slots) {
            self.acc_fold(a, slot, &env);
        }
        for st in &stage.stores {
            self.store(pt, &env, st);
        }
    }

    /// A stage whose innermost inner loop runs in f32x4 lanes (the outer point is
    /// scalar): accumulators keep partial lanes plus a scalar tail, combined at the end.
    fn emit_inner_vector_stage(&mut self, stage: &Stage, mut pt: Point, finished: &mut HashMap<AccId, Val>) {
        let partial: Vec<AccSlot> = stage
            .accumulators
            .iter()
            .map(|a| self.acc_init_at(a, Width::X4))
            .collect();
        let tail: Vec<AccSlot> = stage
            .accumulators
            .iter()
            .map(|a| self.acc_init_at(a, Width::Scalar))
            .collect();
        let (&last, rest) = stage
            .inner
            .split_last()
            .expect("inner-vectorised stages have inner loops");
        let mut loops = Vec::new();
        for &extent in rest {
            let zero = self.b.ins().iconst(types::I64, 0);
            let end = self.b.ins().iconst(types::I64, extent as i64);
            let l = self.loop_begin(zero, end, 1);
            pt.vars.push(VarVal::Uniform(l.iv));
            loops.push(l);
        }
        let zero = self.b.ins().iconst(types::I64, 0);
        let jv = self.b.ins().iconst(types::I64, (last & !3) as i64);
        let end = self.b.ins().iconst(types::I64, last as i64);
        let vl = self.loop_begin(zero, jv, 4);
        pt.vars.push(VarVal::Lanes(vl.iv));
        pt.w = Width::X4;
        self.emit_body(stage, &pt, &partial, finished);
        pt.vars.pop();
        self.loop_end(vl);
        let tl = self.loop_begin(jv, end, 1);
        pt.vars.push(VarVal::Uniform(tl.iv));
        pt.w = Width::Scalar;
        self.helpers.outline = true;
        self.emit_body(stage, &pt, &tail, finished);
        self.helpers.outline = false;
        pt.vars.pop();
        self.loop_end(tl);
        while let Some(l) = loops.pop() {
            self.loop_end(l);
        }
        let count: usize = stage.inner.iter().product();
        for ((a, p), t) in stage.accumulators.iter().zip(&partial).zip(&tail) {
            let v = self.acc_combine(a, p, t, count);
            finished.insert(a.id, v);
        }
    }
}
