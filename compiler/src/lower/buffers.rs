//! Buffers of a lowered program: one per graph source (named by role), one per
//! materialised node (its `home`, an `Output` buffer when it is a step output, else a
//! temporary), the runtime scalar slots and the update pairs; plus the small utilities
//! later passes share (who reads/writes which buffer, renaming, dropping unused
//! buffers). It makes no fusion or placement decisions.

use std::collections::{BTreeSet, HashMap};

use kiln_ir::{DType, Graph, NodeId, Op};

use super::partition::{Partition, Roles};
use crate::error::CompileError;
use crate::kernel::{Buffer, BufferId, BufferRole, Inst, Kernel, LoopKernel, Program, ScalarSlot, Storage};

pub(crate) struct Alloc {
    pub buffers: Vec<Buffer>,
    /// Where consumers load each materialised node (and each source) from.
    pub home: HashMap<NodeId, BufferId>,
    /// Where the kernel computing a materialised node stores it.
    pub stores: HashMap<NodeId, Vec<BufferId>>,
    pub slot: HashMap<NodeId, usize>,
    pub scalars: Vec<ScalarSlot>,
    pub updates: Vec<(BufferId, BufferId)>,
}

impl Alloc {
    fn add(&mut self, g: &Graph, n: NodeId, role: BufferRole) -> Result<BufferId, CompileError> {
        let node = g.node(n);
        if !matches!(node.dtype(), DType::F32 | DType::I32 | DType::Bool) {
            return Err(CompileError::UnsupportedDType {
                node: n,
                op: node.op.name(),
                dtype: node.dtype(),
            });
        }
        self.buffers.push(Buffer {
            len: node.shape().numel(),
            dtype: node.dtype(),
            role,
            storage: Storage::Own,
        });
        Ok(BufferId(self.buffers.len() as u32 - 1))
    }
}

pub(crate) fn allocate(g: &Graph, live: &[bool], part: &Partition, roles: &Roles) -> Result<Alloc, CompileError> {
    let mut a = Alloc {
        buffers: Vec::new(),
        home: HashMap::new(),
        stores: HashMap::new(),
        slot: HashMap::new(),
        scalars: Vec::new(),
        updates: Vec::new(),
    };
    for id in g.ids().filter(|i| live[i.index()]) {
        let node = g.node(id);
        let role = match &node.op {
            Op::Input { name } => BufferRole::Input(name.clone()),
            Op::Param { name, .. } => BufferRole::Param(name.clone()),
            Op::State { name, .. } => BufferRole::State(name.clone()),
            Op::Scalar { name } => {
                if !matches!(node.dtype(), DType::F32 | DType::I32 | DType::Bool) {
                    return Err(CompileError::UnsupportedScalar {
                        name: name.clone(),
                        dtype: node.dtype(),
                    });
                }
                a.slot.insert(id, a.scalars.len());
                a.scalars.push(ScalarSlot {
                    name: name.clone(),
                    dtype: node.dtype(),
                });
                continue;
            }
            _ => continue,
        };
        let b = a.add(g, id, role)?;
        a.home.insert(id, b);
    }
    let mut roots: Vec<NodeId> = part.groups.iter().flat_map(|gr| gr.roots.iter().copied()).collect();
    roots.sort_unstable();
    for r in roots {
        let mut outs = Vec::new();
        for name in roles.outputs.get(&r).into_iter().flatten() {
            outs.push(a.add(g, r, BufferRole::Output(name.clone()))?);
        }
        if matches!(g.node(r).op, Op::Input { .. } | Op::Param { .. } | Op::State { .. }) {
            a.stores.insert(r, outs);
            continue;
        }
        let home = match outs.first() {
            Some(&b) => b,
            None => {
                let b = a.add(g, r, BufferRole::Temp)?;
                outs.push(b);
                b
            }
        };
        a.home.insert(r, home);
        a.stores.insert(r, outs);
    }
    for &(t, v) in g.updates() {
        if t == v {
            // `p <- p`: nothing to compute or copy, listed for completeness.
            if let Some(&tb) = a.home.get(&t) {
                a.updates.push((tb, tb));
            }
            continue;
        }
        let (Some(&tb), Some(&vb)) = (a.home.get(&t), a.home.get(&v)) else {
            return Err(CompileError::Internal(format!("update {t} <- {v} has no buffers")));
        };
        a.updates.push((tb, vb));
    }
    Ok(a)
}

/// Buffers a kernel reads and writes.
pub(crate) fn reads_writes(k: &Kernel) -> (BTreeSet<BufferId>, BTreeSet<BufferId>) {
    let (mut r, mut w) = (BTreeSet::new(), BTreeSet::new());
    let loop_rw = |l: &LoopKernel, r: &mut BTreeSet<BufferId>, w: &mut BTreeSet<BufferId>| {
        for st in &l.stages {
            for (_, inst) in &st.insts {
                if let Inst::Load { buf, .. } = inst {
                    r.insert(*buf);
                }
            }
            for s in &st.stores {
                w.insert(s.buf);
            }
        }
    };
    match k {
        Kernel::Loop(l) => loop_rw(l, &mut r, &mut w),
        Kernel::MatMul(m) => {
            r.insert(m.a.buf);
            r.insert(m.b.buf);
            w.insert(m.out);
            if let Some(e) = &m.epilogue {
                loop_rw(e, &mut r, &mut w);
            }
        }
    }
    (r, w)
}

/// Apply `f` to every buffer id a loop kernel mentions.
pub(crate) fn rename_loop(l: &mut LoopKernel, f: &dyn Fn(BufferId) -> BufferId) {
    for st in &mut l.stages {
        for (_, inst) in &mut st.insts {
            if let Inst::Load { buf, .. } = inst {
                *buf = f(*buf);
            }
        }
        for s in &mut st.stores {
            s.buf = f(s.buf);
        }
    }
}

/// Apply `f` to every buffer id a kernel mentions.
pub(crate) fn rename(k: &mut Kernel, f: &dyn Fn(BufferId) -> BufferId) {
    match k {
        Kernel::Loop(l) => rename_loop(l, f),
        Kernel::MatMul(m) => {
            m.a.buf = f(m.a.buf);
            m.b.buf = f(m.b.buf);
            m.out = f(m.out);
            if let Some(e) = &mut m.epilogue {
                rename_loop(e, f);
            }
        }
    }
}

/// Drop buffers nothing refers to (keeping every named one) and renumber.
pub(crate) fn compact(p: &mut Program) {
    let mut used = vec![false; p.buffers.len()];
    for k in &p.kernels {
        let (r, w) = reads_writes(k);
        for b in r.into_iter().chain(w) {
            used[b.0 as usize] = true;
        }
    }
    for &(t, v) in &p.updates {
        used[t.0 as usize] = true;
        used[v.0 as usize] = true;
    }
    for (i, b) in p.buffers.iter().enumerate() {
        if !matches!(b.role, BufferRole::Temp) {
            used[i] = true;
        }
    }
    // Bases of used views are used.
    for i in (0..p.buffers.len()).rev() {
        let mut cur = i;
        while used[cur] {
            match p.buffers[cur].storage {
                Storage::View { base, .. } if !used[base.0 as usize] => {
                    used[base.0 as usize] = true;
                    cur = base.0 as usize;
                }
                _ => break,
            }
        }
    }
    let mut map = vec![BufferId(u32::MAX); p.buffers.len()];
    let mut kept = Vec::new();
    for (i, b) in p.buffers.iter().enumerate() {
        if used[i] {
            map[i] = BufferId(kept.len() as u32);
            kept.push(b.clone());
        }
    }
    for b in &mut kept {
        if let Storage::View { base, .. } = &mut b.storage {
            *base = map[base.0 as usize];
        }
    }
    let f = |b: BufferId| map[b.0 as usize];
    for k in &mut p.kernels {
        rename(k, &f);
    }
    for (t, v) in &mut p.updates {
        *t = f(*t);
        *v = f(*v);
    }
    p.buffers = kept;
}
