//! Horizontal fusion of optimizer updates: when several kernels run the SAME flat
//! elementwise program, each over one parameter (θ, its gradient and its optimizer
//! state, all read and written at the point's own element), they become ONE loop
//! kernel over all parameters. Every buffer position of the program (a "slot": the
//! parameters, the gradients, each state) gets a contiguous arena, and each
//! parameter's buffer becomes a view into its slot's arena at that parameter's offset,
//! so the merged kernel is one flat loop and the kernels producing the gradients write
//! straight into the gradient arena.
//!
//! Updates that draw random numbers (IVON's regenerated noise) merge too, although each
//! parameter's draws are keyed by its own stream and its own element index: the programs
//! must agree up to the constant stream of each `Random`, and the merged kernel computes,
//! per element of the arena, which parameter it belongs to (compares against the
//! parameters' offsets), that parameter's element index (arena index − offset) and its
//! stream, so every element draws exactly the number it drew in its own kernel. It
//! changes buffer placement and the kernel list only.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kiln_ir::{BinaryOp, CompareOp, DType};

use super::buffers::{reads_writes, rename_loop};
use super::index::{ravel, simplify};
use crate::kernel::{
    Buffer, BufferId, BufferRole, IndexExpr, Inst, Kernel, LoopKernel, Program, Stage, Storage, ValueId,
};

/// A kernel's flat program with buffers replaced by slot numbers, if it qualifies.
struct Candidate {
    pos: usize,
    slots: Vec<BufferId>,
    numel: usize,
    signature: String,
    reads: BTreeSet<BufferId>,
    writes: BTreeSet<BufferId>,
    /// The stream of each `Random` of the program, in instruction order.
    streams: Vec<u32>,
}

/// The constants used only as the stream of `Random` instructions, with their values.
fn stream_constants(st: &Stage) -> HashMap<ValueId, u32> {
    let streams: BTreeSet<ValueId> = st
        .insts
        .iter()
        .filter_map(|(_, inst)| match inst {
            Inst::Random { stream, .. } => Some(*stream),
            _ => None,
        })
        .collect();
    let mut consts: HashMap<ValueId, u32> = st
        .insts
        .iter()
        .filter_map(|(v, inst)| match inst {
            Inst::Const {
                value,
                dtype: DType::I32,
            } if streams.contains(v) => Some((*v, *value as i32 as u32)),
            _ => None,
        })
        .collect();
    // A constant with any other use keeps its value in the signature.
    for (_, inst) in &st.insts {
        let mut other_uses = Vec::new();
        match inst {
            Inst::Random { seed, step, index, .. } => {
                other_uses.extend([*seed, *step]);
                index.values_into(&mut other_uses);
            }
            other => other.operands_into(&mut other_uses),
        }
        for v in other_uses {
            consts.remove(&v);
        }
    }
    for w in &st.stores {
        consts.remove(&w.value);
    }
    consts
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
    let stream_consts = stream_constants(st);
    let mut streams = Vec::new();
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
            Inst::Const { .. } if stream_consts.contains_key(v) => sig.push_str(&format!("{v}=stream;")),
            Inst::Random {
                dist,
                stream,
                seed,
                step,
                index,
            } => {
                if *index != flat {
                    return None;
                }
                streams.push(*stream_consts.get(stream)?);
                sig.push_str(&format!("{v}=random {dist:?} stream={stream} seed={seed} step={step};"));
            }
            Inst::LoopVar(_) | Inst::Index(_) | Inst::Acc(_) => return None,
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
        streams,
    })
}

/// Key the merged kernel's `Random` draws per member: member `m` covers the arena
/// elements from `offsets[m]` on and drew with stream `streams[m][r]` at its own element
/// index. New instructions (fresh ids, placed first) compute the member's offset and
/// stream from the arena index.
fn key_draws_per_member(k: &mut LoopKernel, offsets: &[usize], streams: &[Vec<u32>]) {
    let st = &mut k.stages[0];
    let randoms: Vec<usize> = (0..st.insts.len())
        .filter(|&i| matches!(st.insts[i].1, Inst::Random { .. }))
        .collect();
    if randoms.is_empty() {
        return;
    }
    let mut next = st.insts.iter().map(|(v, _)| v.0 + 1).max().unwrap_or(0);
    let mut head: Vec<(ValueId, Inst)> = Vec::new();
    let mut push = |inst: Inst| {
        let v = ValueId(next);
        next += 1;
        head.push((v, inst));
        v
    };
    let i32c = |value: i64| Inst::Const {
        value: value as f64,
        dtype: DType::I32,
    };
    let at = push(Inst::Index(IndexExpr::Var(0)));
    // in_member[m - 1]: the element belongs to member m or a later one.
    let in_member: Vec<ValueId> = offsets[1..]
        .iter()
        .map(|&o| {
            let c = push(i32c(o as i64));
            push(Inst::Compare {
                op: CompareOp::Ge,
                a: at,
                b: c,
            })
        })
        .collect();
    // The per-member value of `values` at the current element.
    let mut chain = |values: &[i64]| {
        let mut acc = push(i32c(values[0]));
        for (m, &cond) in in_member.iter().enumerate() {
            if values[m + 1] != values[m] {
                let c = push(i32c(values[m + 1]));
                acc = push(Inst::Select {
                    cond,
                    on_true: c,
                    on_false: acc,
                });
            }
        }
        acc
    };
    let base = chain(&offsets.iter().map(|&o| o as i64).collect::<Vec<_>>());
    let keyed: Vec<ValueId> = (0..randoms.len())
        .map(|r| chain(&streams.iter().map(|s| i64::from(s[r] as i32)).collect::<Vec<_>>()))
        .collect();
    let local = push(Inst::Binary {
        op: BinaryOp::Sub,
        a: at,
        b: base,
    });
    for (r, &i) in randoms.iter().enumerate() {
        if let Inst::Random { stream, index, .. } = &mut st.insts[i].1 {
            *stream = keyed[r];
            *index = IndexExpr::Value(local);
        }
    }
    head.append(&mut st.insts);
    st.insts = head;
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
        let total: usize = members.iter().map(|c| c.numel).sum();
        // Per-member draws compute element indices in i32.
        if !members[0].streams.is_empty() && i32::try_from(total).is_err() {
            continue;
        }
        taken.extend(distinct);
        members.sort_by_key(|c| c.pos);
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
        let offsets: Vec<usize> = members
            .iter()
            .scan(0, |off, c| {
                let o = *off;
                *off += c.numel;
                Some(o)
            })
            .collect();
        let streams: Vec<Vec<u32>> = members.iter().map(|c| c.streams.clone()).collect();
        key_draws_per_member(&mut k, &offsets, &streams);
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
