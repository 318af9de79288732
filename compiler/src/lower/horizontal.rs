//! Horizontal fusion of optimizer updates: when several kernels run the SAME flat
//! elementwise program, each over one parameter (θ, its gradient and its optimizer
//! state, all read and written at the point's own element), they become ONE loop
//! kernel over all parameters. Every buffer position of the program (a "slot": the
//! parameters, the gradients, each state) gets a contiguous arena, and each
//! parameter's buffer becomes a view into its slot's arena at that parameter's offset,
//! so the merged kernel is one flat loop and the kernels producing the gradients write
//! straight into the gradient arena. Kernels that draw random numbers are left alone
//! (their element index is per parameter). It changes buffer placement and the kernel
//! list only.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::buffers::{reads_writes, rename_loop};
use super::index::{ravel, simplify};
use crate::kernel::{Buffer, BufferId, BufferRole, IndexExpr, Inst, Kernel, LoopKernel, Program, Storage};

/// A kernel's flat program with buffers replaced by slot numbers, if it qualifies.
struct Candidate {
    pos: usize,
    slots: Vec<BufferId>,
    numel: usize,
    signature: String,
    reads: BTreeSet<BufferId>,
    writes: BTreeSet<BufferId>,
}

fn candidate(p: &Program, pos: usize, update_bufs: &BTreeSet<BufferId>) -> Option<Candidate> {
    let Kernel::Loop(l) = &p.kernels[pos] else { return None };
    let [st] = l.stages.as_slice() else { return None };
    if !st.inner.is_empty() || !st.accumulators.is_empty() {
        return None;
    }
    let numel: usize = l.outer.iter().product();
    let flat = simplify(
        &ravel(&(0..l.outer.len()).map(IndexExpr::Var).collect::<Vec<_>>(), &l.outer),
        &l.outer,
    );
    let mut slots: Vec<BufferId> = Vec::new();
    let slot_of = |b: BufferId, slots: &mut Vec<BufferId>| match slots.iter().position(|&x| x == b) {
        Some(i) => i,
        None => {
            slots.push(b);
            slots.len() - 1
        }
    };
    let mut sig = String::new();
    for (v, inst) in &st.insts {
        match inst {
            Inst::Load {
                buf,
                index,
                guards,
                fill,
            } => {
                if !guards.is_empty() || *index != flat {
                    return None;
                }
                let s = slot_of(*buf, &mut slots);
                sig.push_str(&format!("{v}=load s{s} fill {fill};"));
            }
            Inst::LoopVar(_) | Inst::Index(_) | Inst::Random { .. } | Inst::Acc(_) => return None,
            other => sig.push_str(&format!("{v}={other:?};")),
        }
    }
    for w in &st.stores {
        if w.index != flat || !update_bufs.contains(&w.buf) {
            return None;
        }
        let s = slot_of(w.buf, &mut slots);
        sig.push_str(&format!("store s{s}={};", w.value));
    }
    for &b in &slots {
        let buf = &p.buffers[b.0 as usize];
        if buf.len != numel || buf.storage != Storage::Own {
            return None;
        }
        sig.push_str(&format!("{}|", buf.dtype));
    }
    let (reads, writes) = reads_writes(&p.kernels[pos]);
    Some(Candidate {
        pos,
        slots,
        numel,
        signature: sig,
        reads,
        writes,
    })
}

/// Merge every class of at least two kernels with the same flat update program.
pub(crate) fn horizontal(p: &mut Program) {
    let update_bufs: BTreeSet<BufferId> = p.updates.iter().flat_map(|&(t, v)| [t, v]).collect();
    let cands: Vec<Candidate> = (0..p.kernels.len())
        .filter_map(|k| candidate(p, k, &update_bufs))
        .collect();
    let mut classes: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for c in cands {
        classes.entry(c.signature.clone()).or_default().push(c);
    }
    let rw: Vec<(BTreeSet<BufferId>, BTreeSet<BufferId>)> = p.kernels.iter().map(reads_writes).collect();
    let mut taken: BTreeSet<BufferId> = BTreeSet::new();
    let mut merged: Vec<(usize, Vec<usize>, LoopKernel)> = Vec::new();
    for (_, mut members) in classes {
        // Move every member to the last one's position: nothing in between may touch
        // what it writes or write what it reads.
        while let Some(last) = members.iter().map(|c| c.pos).max() {
            let in_class: BTreeSet<usize> = members.iter().map(|c| c.pos).collect();
            let before = members.len();
            members.retain(|c| {
                (c.pos + 1..=last).filter(|j| !in_class.contains(j)).all(|j| {
                    let (r, w) = &rw[j];
                    c.writes.iter().all(|b| !r.contains(b) && !w.contains(b)) && c.reads.iter().all(|b| !w.contains(b))
                })
            });
            if members.len() == before {
                break;
            }
        }
        let all: Vec<BufferId> = members.iter().flat_map(|c| c.slots.iter().copied()).collect();
        let distinct: BTreeSet<BufferId> = all.iter().copied().collect();
        if members.len() < 2 || distinct.len() != all.len() || all.iter().any(|b| taken.contains(b)) {
            continue;
        }
        taken.extend(distinct);
        members.sort_by_key(|c| c.pos);
        let total: usize = members.iter().map(|c| c.numel).sum();
        let nslots = members[0].slots.len();
        let mut arenas = Vec::with_capacity(nslots);
        for s in 0..nslots {
            let dtype = p.buffers[members[0].slots[s].0 as usize].dtype;
            p.buffers.push(Buffer {
                len: total,
                dtype,
                role: BufferRole::Temp,
                storage: Storage::Own,
            });
            let arena = BufferId(p.buffers.len() as u32 - 1);
            arenas.push(arena);
            let mut offset = 0;
            for c in &members {
                p.buffers[c.slots[s].0 as usize].storage = Storage::View { base: arena, offset };
                offset += c.numel;
            }
        }
        let Kernel::Loop(first) = &p.kernels[members[0].pos] else {
            unreachable!("candidates are loop kernels")
        };
        let mut k = first.clone();
        let slot_bufs = members[0].slots.clone();
        rename_loop(&mut k, &|b| {
            arenas[slot_bufs.iter().position(|&x| x == b).expect("every buffer has a slot")]
        });
        for st in &mut k.stages {
            for (_, inst) in &mut st.insts {
                if let Inst::Load { index, .. } = inst {
                    *index = IndexExpr::Var(0);
                }
            }
            for w in &mut st.stores {
                w.index = IndexExpr::Var(0);
            }
        }
        k.outer = vec![total];
        let mut nodes: BTreeSet<_> = BTreeSet::new();
        for c in &members {
            if let Kernel::Loop(l) = &p.kernels[c.pos] {
                nodes.extend(l.nodes.iter().copied());
            }
        }
        k.nodes = nodes.into_iter().collect();
        k.name = format!("horizontal_{}x_{}", members.len(), k.name);
        let last = members.last().expect("at least two members").pos;
        merged.push((last, members.iter().map(|c| c.pos).collect(), k));
    }
    if merged.is_empty() {
        return;
    }
    let mut remove: BTreeSet<usize> = BTreeSet::new();
    let mut replace: HashMap<usize, LoopKernel> = HashMap::new();
    for (last, positions, k) in merged {
        remove.extend(positions);
        replace.insert(last, k);
    }
    let old = std::mem::take(&mut p.kernels);
    for (i, kernel) in old.into_iter().enumerate() {
        if let Some(k) = replace.remove(&i) {
            p.kernels.push(Kernel::Loop(k));
        } else if !remove.contains(&i) {
            p.kernels.push(kernel);
        }
    }
}
