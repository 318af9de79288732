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
    // Kernel k computes the new value of target t: (k, t).
    let update_writes: Vec<(usize, BufferId)> = updates
        .iter()
        .filter_map(|&(t, v)| writer.get(&v).map(|&k| (k, t)))
        .collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let ready: Vec<usize> = (0..n)
            .filter(|&k| !done[k] && deps[k].iter().all(|&d| done[d]))
            .collect();
        if ready.is_empty() {
            return Err(cycle(built, &done));
        }
        // Defer a kernel that overwrites a target other pending kernels still read.
        let blocked = |k: usize| {
            update_writes
                .iter()
                .any(|&(w, t)| w == k && (0..n).any(|j| j != k && !done[j] && rw[j].0.contains(&t)))
        };
        let pick = ready
            .iter()
            .copied()
            .min_by_key(|&k| (blocked(k), built[k].key))
            .expect("ready is not empty");
        done[pick] = true;
        order.push(pick);
    }
    Ok(order)
}

fn cycle(built: &[Built], done: &[bool]) -> Fail {
    for (k, b) in built.iter().enumerate() {
        if let (false, Kernel::MatMul(m)) = (done[k], &b.kernel) {
            if m.epilogue.is_some() {
                return Fail::Detach(b.key);
            }
        }
    }
    Fail::Error(CompileError::Internal(
        "the kernels depend on each other in a cycle".into(),
    ))
}
