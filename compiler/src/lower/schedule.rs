//! Kernel order: a topological order of the kernels by the buffers they exchange
//! (each buffer has one writer before memory planning), preferring to run every reader
//! of a parameter's old value before the kernel that computes its new value, so the
//! memory planner can update it in place. A cycle (only possible when an epilogue reads
//! something that itself needs the matmul) is reported as `Fail::Detach`. It moves no
//! buffers.

use std::collections::{BTreeSet, HashMap};

use super::buffers::reads_writes;
use super::emit::{Emit, Fail};
use super::kernels::Built;
use crate::error::CompileError;
use crate::kernel::{BufferId, Kernel};

/// Indices into `built` in execution order.
pub(crate) fn schedule(built: &[Built], updates: &[(BufferId, BufferId)]) -> Emit<Vec<usize>> {
    let n = built.len();
    let rw: Vec<(BTreeSet<BufferId>, BTreeSet<BufferId>)> = built.iter().map(|b| reads_writes(&b.kernel)).collect();
    let mut writer: HashMap<BufferId, usize> = HashMap::new();
    for (k, (_, w)) in rw.iter().enumerate() {
        for &b in w {
            writer.insert(b, k);
        }
    }
    let deps: Vec<BTreeSet<usize>> = rw
        .iter()
        .enumerate()
        .map(|(k, (r, _))| {
            r.iter()
                .filter_map(|b| writer.get(b).copied())
                .filter(|&w| w != k)
                .collect()
        })
        .collect();
    // The targets whose new value each kernel computes, and how many pending kernels
    // still read each target's old value.
    let mut targets_of: Vec<Vec<BufferId>> = vec![Vec::new(); n];
    for &(t, v) in updates {
        if let Some(&k) = writer.get(&v) {
            targets_of[k].push(t);
        }
    }
    let mut pending_readers: HashMap<BufferId, usize> = HashMap::new();
    for (r, _) in &rw {
        for &(t, _) in updates {
            if r.contains(&t) {
                *pending_readers.entry(t).or_insert(0) += 1;
            }
        }
    }
    let mut missing: Vec<usize> = deps.iter().map(|d| d.len()).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, d) in deps.iter().enumerate() {
        for &x in d {
            users[x].push(k);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&k| missing[k] == 0).collect();
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    while order.len() < n {
        if ready.is_empty() {
            return Err(cycle(built, &done, &deps));
        }
        // Defer a kernel that overwrites a target other pending kernels still read.
        let blocked = |k: usize| {
            targets_of[k].iter().any(|t| {
                let own = usize::from(rw[k].0.contains(t));
                pending_readers.get(t).copied().unwrap_or(0) > own
            })
        };
        let pick = ready
            .iter()
            .copied()
            .min_by_key(|&k| (blocked(k), built[k].key))
            .expect("ready is not empty");
        ready.remove(&pick);
        for t in rw[pick].0.iter() {
            if let Some(c) = pending_readers.get_mut(t) {
                *c -= 1;
            }
        }
        for &u in &users[pick] {
            missing[u] -= 1;
            if missing[u] == 0 {
                ready.insert(u);
            }
        }
        done[pick] = true;
        order.push(pick);
    }
    Ok(order)
}

/// The epilogue to detach when the kernels left cannot be ordered: a pending matmul
/// with an epilogue that waits on another pending kernel.
fn cycle(built: &[Built], done: &[bool], deps: &[BTreeSet<usize>]) -> Fail {
    for (k, b) in built.iter().enumerate() {
        if let (false, Kernel::MatMul(m)) = (done[k], &b.kernel) {
            if m.epilogue.is_some() && deps[k].iter().any(|&d| !done[d]) {
                return Fail::Detach(b.key);
            }
        }
    }
    Fail::Error(CompileError::Internal(
        "the kernels depend on each other in a cycle".into(),
    ))
}
