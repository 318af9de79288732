//! Memory planning of a scheduled program: parameters and optimizer state donated and
//! updated in place (the kernel that computes a new value writes it straight into the
//! target when it is the last reader of the old value and reads it only at the elements
//! it writes), liveness-based reuse of temporaries (each becomes a view into a shared
//! scratch arena per dtype, first-fit by size, lifetimes over kernel positions), and
//! the byte counts the planner reports. It never reorders kernels or changes values.

use std::collections::BTreeSet;

use kiln_ir::DType;

use super::buffers::{reads_writes, rename};
use crate::kernel::{Buffer, BufferId, BufferRole, Inst, Kernel, LoopKernel, Program, Storage};

/// Scratch offsets are multiples of this many elements (64 bytes: aligned SIMD rows).
pub const SCRATCH_ALIGN: usize = 16;

/// Bytes the runtime allocates for one step: every buffer with its own storage, at 4
/// bytes per element (the kernel IR's storage size). After memory planning
/// the temporaries contribute only their scratch arenas, i.e. the peak of what is live
/// at once (plus alignment), so this is the step's peak memory.
pub fn peak_bytes(p: &Program) -> usize {
    p.buffers
        .iter()
        .filter(|b| b.storage == Storage::Own)
        .map(|b| b.len * 4)
        .sum()
}

/// Where a program's bytes go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// [`peak_bytes`].
    pub peak_bytes: usize,
    /// Bytes of temporaries before reuse (each in its own allocation).
    pub temp_bytes_unplanned: usize,
    /// Bytes of scratch arenas after reuse.
    pub scratch_bytes: usize,
    /// Updates written in place / copied by the runtime after the step.
    pub in_place_updates: usize,
    pub copied_updates: usize,
}

/// The byte report of a lowered program.
pub fn memory_report(p: &Program) -> MemoryReport {
    let is_scratch = |i: usize| {
        p.buffers
            .iter()
            .any(|b| matches!(b.storage, Storage::View { base, .. } if base.0 as usize == i))
    };
    let mut r = MemoryReport {
        peak_bytes: peak_bytes(p),
        ..Default::default()
    };
    for (i, b) in p.buffers.iter().enumerate() {
        if b.role == BufferRole::Temp {
            match b.storage {
                Storage::Own if is_scratch(i) => r.scratch_bytes += b.len * 4,
                Storage::Own => r.temp_bytes_unplanned += b.len * 4,
                Storage::View { .. } => r.temp_bytes_unplanned += b.len * 4,
            }
        }
    }
    for &(t, v) in &p.updates {
        if t == v {
            r.in_place_updates += 1;
        } else {
            r.copied_updates += 1;
        }
    }
    r
}

/// Whether, within loop kernel `l`, every read of `t` happens at an element the same
/// point writes to `v`, before that write (so `v` may share `t`'s storage).
fn loop_in_place(l: &LoopKernel, t: BufferId, v: BufferId) -> bool {
    let mut store: Option<(usize, &crate::kernel::IndexExpr)> = None;
    for (s, st) in l.stages.iter().enumerate() {
        for w in st.stores.iter().filter(|w| w.buf == v) {
            match store {
                None => store = Some((s, &w.index)),
                Some((s0, e)) if s0 == s && *e == w.index => {}
                _ => return false,
            }
        }
    }
    let Some((sv, ev)) = store else { return false };
    for (s, st) in l.stages.iter().enumerate() {
        if st.stores.iter().any(|w| w.buf == t) {
            return false;
        }
        for (_, inst) in &st.insts {
            if let Inst::Load { buf, index, guards, .. } = inst {
                if *buf != t {
                    continue;
                }
                let same_space = s == sv || st.inner == l.stages[sv].inner;
                if s > sv || !same_space || index != ev || !guards.is_empty() {
                    return false;
                }
            }
        }
    }
    true
}

fn kernel_in_place(k: &Kernel, t: BufferId, v: BufferId) -> bool {
    match k {
        Kernel::Loop(l) => loop_in_place(l, t, v),
        Kernel::MatMul(m) => {
            if m.a.buf == t || m.b.buf == t {
                return false;
            }
            match &m.epilogue {
                Some(e) if m.out != v => loop_in_place(e, t, v),
                Some(e) => !reads_writes(&Kernel::Loop(e.clone())).0.contains(&t),
                None => m.out == v,
            }
        }
    }
}

/// Donate params/state: rewrite each update whose value can live in its target, so the
/// runtime has nothing to copy (the pair becomes `(t, t)`).
pub(crate) fn update_in_place(p: &mut Program) {
    while let Some((t, v)) = next_in_place(p) {
        let f = |b: BufferId| if b == v { t } else { b };
        for k in &mut p.kernels {
            rename(k, &f);
        }
        for (t2, v2) in &mut p.updates {
            *t2 = f(*t2);
            *v2 = f(*v2);
        }
    }
}

/// The first update `(t, v)` whose value may be written straight into its target.
fn next_in_place(p: &Program) -> Option<(BufferId, BufferId)> {
    let rw: Vec<(BTreeSet<BufferId>, BTreeSet<BufferId>)> = p.kernels.iter().map(reads_writes).collect();
    p.updates.iter().copied().find(|&(t, v)| {
        let vb = &p.buffers[v.0 as usize];
        if t == v || vb.role != BufferRole::Temp || vb.storage != Storage::Own {
            return false;
        }
        // The old value of the target must not be copied into another target.
        if p.updates.iter().any(|&(t2, v2)| v2 == t && t2 != t) {
            return false;
        }
        let writers: Vec<usize> = (0..p.kernels.len()).filter(|&k| rw[k].1.contains(&v)).collect();
        let [kv] = writers[..] else { return false };
        let touched_later = (kv + 1..p.kernels.len()).any(|j| rw[j].0.contains(&t) || rw[j].1.contains(&t));
        let value_read_before = (0..kv).any(|j| rw[j].0.contains(&v));
        !touched_later && !value_read_before && kernel_in_place(&p.kernels[kv], t, v)
    })
}

/// Liveness-based reuse: every temporary with its own storage becomes a view into a
/// scratch arena of its dtype; temporaries whose lifetimes (first to last kernel that
/// touches them; update values live to the end of the step) overlap never share bytes.
pub(crate) fn plan_scratch(p: &mut Program) {
    let n = p.kernels.len();
    let is_base: BTreeSet<usize> = p
        .buffers
        .iter()
        .filter_map(|b| match b.storage {
            Storage::View { base, .. } => Some(base.0 as usize),
            Storage::Own => None,
        })
        .collect();
    let mut life: Vec<Option<(usize, usize)>> = vec![None; p.buffers.len()];
    for (k, kernel) in p.kernels.iter().enumerate() {
        let (r, w) = reads_writes(kernel);
        for b in r.into_iter().chain(w) {
            let l = &mut life[b.0 as usize];
            *l = Some(l.map_or((k, k), |(s, _)| (s, k)));
        }
    }
    for &(_, v) in &p.updates {
        if let Some((s, _)) = life[v.0 as usize] {
            life[v.0 as usize] = Some((s, n));
        }
    }
    for dtype in [DType::F32, DType::I32, DType::Bool] {
        let mut cands: Vec<(usize, usize, (usize, usize))> = p
            .buffers
            .iter()
            .enumerate()
            .filter(|(i, b)| {
                b.role == BufferRole::Temp && b.storage == Storage::Own && b.dtype == dtype && !is_base.contains(i)
            })
            .filter_map(|(i, b)| life[i].map(|l| (i, b.len, l)))
            .collect();
        if cands.len() < 2 {
            continue;
        }
        cands.sort_by_key(|&(i, len, _)| (std::cmp::Reverse(len), i));
        let mut placed: Vec<(usize, usize, (usize, usize))> = Vec::new(); // (offset, len, life)
        let mut offsets = Vec::new();
        for &(i, len, l) in &cands {
            let mut busy: Vec<(usize, usize)> = placed
                .iter()
                .filter(|(_, _, pl)| pl.0 <= l.1 && l.0 <= pl.1)
                .map(|&(o, ln, _)| (o, o + ln))
                .collect();
            busy.sort_unstable();
            let mut off = 0;
            for (s, e) in busy {
                if off + len <= s {
                    break;
                }
                off = off.max(e.div_ceil(SCRATCH_ALIGN) * SCRATCH_ALIGN);
            }
            placed.push((off, len, l));
            offsets.push((i, off));
        }
        let total = placed.iter().map(|(o, l, _)| o + l).max().unwrap_or(0);
        p.buffers.push(Buffer {
            len: total,
            dtype,
            role: BufferRole::Temp,
            storage: Storage::Own,
        });
        let scratch = BufferId(p.buffers.len() as u32 - 1);
        for (i, off) in offsets {
            p.buffers[i].storage = Storage::View {
                base: scratch,
                offset: off,
            };
        }
    }
}
