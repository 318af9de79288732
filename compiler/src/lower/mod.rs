//! Lowering a step graph to a kernel [`Program`]: fusion/partitioning, kernel building,
//! scheduling, horizontal fusion of optimizer updates and memory planning.
//!
//! [`lower`] runs, in order:
//! 1. `partition` — decide which nodes get buffers and which kernel computes what
//!    (elementwise DAGs, reductions with prologue and epilogue, multi-stage row kernels
//!    for softmax/cross-entropy, matmul + elementwise epilogue including the optimizer
//!    update of the parameter whose gradient it produces, movement ops as views);
//!    then `merge` folds a kernel into a consumer over the same iteration space that
//!    can compute and store its results too (multi-output fusion);
//! 2. `buffers` — one buffer per source (named by role) and per materialised node;
//! 3. `kernels`/`emit` — build each kernel; a kernel that cannot be built as proposed
//!    (a reduction read away from its row, a reshape of a strided view that needs a
//!    copy, an epilogue that reads the matmul output elsewhere) sends a request back to
//!    step 1, which materialises that node and partitions again;
//! 4. `schedule` — kernel order, readers of a parameter before its update;
//! 5. `memory` — in-place updates of params/state, then `horizontal` (one kernel for
//!    all same-program parameter updates, over arenas), then scratch reuse.
//!
//! With `fuse: false` every op is its own kernel and every intermediate its own buffer:
//! the baseline every benchmark compares against. Every kernel boundary the
//! partitioner keeps is recorded with its reason in `Program::not_fused`. This module
//! does not generate code and never evaluates anything.

mod buffers;
mod emit;
mod horizontal;
mod index;
mod kernels;
pub mod memory;
mod merge;
mod partition;
mod schedule;
mod views;

use std::collections::{BTreeSet, HashMap};

use kiln_ir::{Graph, NodeId};

pub use memory::{memory_report, peak_bytes, MemoryReport};

use crate::error::CompileError;
use crate::kernel::{Kernel, NotFused, Program};
use emit::Fail;
use partition::{Forced, Roles};

/// How to lower a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LowerOptions {
    /// Fuse ops into kernels (false: one kernel per op, the benchmark baseline).
    pub fuse: bool,
    /// Fuse an optimizer update into the kernel producing the gradient (a matmul
    /// epilogue, a reduction's last stage). False keeps updates in kernels of their own,
    /// which the horizontal pass can then merge.
    pub fuse_updates: bool,
    /// Merge same-program parameter updates into one kernel over arenas.
    pub horizontal: bool,
    /// Write new params/state straight into their buffers when legal.
    pub in_place: bool,
    /// Reuse the memory of dead temporaries (scratch arenas).
    pub reuse_memory: bool,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions {
            fuse: true,
            fuse_updates: true,
            horizontal: true,
            in_place: true,
            reuse_memory: true,
        }
    }
}

impl LowerOptions {
    /// Everything on (the default).
    pub fn fused() -> Self {
        Self::default()
    }

    /// One kernel per op, every intermediate in its own buffer; params still updated
    /// in place, as eager frameworks do.
    pub fn unfused() -> Self {
        LowerOptions {
            fuse: false,
            fuse_updates: false,
            horizontal: false,
            in_place: true,
            reuse_memory: false,
        }
    }
}

/// Lower `graph` (its outputs and updates) to a kernel program.
pub fn lower(graph: &Graph, options: &LowerOptions) -> Result<Program, CompileError> {
    let live = graph.live_mask();
    let roles = Roles::new(graph);
    let mut forced = Forced::default();
    for _ in 0..2 * graph.len() + 8 {
        let part = partition::partition(graph, &live, options, &forced);
        let alloc = buffers::allocate(graph, &live, &part, &roles)?;
        let attempt = kernels::build_all(graph, &part, &alloc).and_then(|built| {
            let order = schedule::schedule(&built, &alloc.updates)?;
            Ok((built, order))
        });
        match attempt {
            Ok((built, order)) => {
                let kernels: Vec<Kernel> = {
                    let mut slots: Vec<Option<kernels::Built>> = built.into_iter().map(Some).collect();
                    order
                        .iter()
                        .map(|&i| slots[i].take().expect("each kernel once").kernel)
                        .collect()
                };
                let mut p = Program {
                    buffers: alloc.buffers,
                    scalars: alloc.scalars,
                    kernels,
                    updates: alloc.updates,
                    not_fused: Vec::new(),
                };
                p.not_fused = not_fused(graph, &part.reason, &p.kernels);
                if options.in_place {
                    memory::update_in_place(&mut p);
                }
                if options.fuse && options.horizontal {
                    horizontal::horizontal(&mut p);
                }
                if options.reuse_memory {
                    memory::plan_scratch(&mut p);
                }
                buffers::compact(&mut p);
                return Ok(p);
            }
            Err(Fail::Materialize(n, why)) => {
                if forced.materialise.insert(n, why.clone()).is_some() {
                    return Err(CompileError::Internal(format!(
                        "lowering asked twice to materialise {n} ({}): {why}",
                        graph.node(n).op.name()
                    )));
                }
            }
            Err(Fail::Detach(mm)) => {
                if !forced.no_epilogue.insert(mm) {
                    return Err(CompileError::Internal(format!(
                        "lowering asked twice to detach the epilogue of {mm}"
                    )));
                }
            }
            Err(Fail::Error(e)) => return Err(e),
        }
    }
    Err(CompileError::Internal("partitioning did not converge".into()))
}

/// Every edge from a materialised node into a kernel that does not compute it.
fn not_fused(g: &Graph, reason: &HashMap<NodeId, String>, kernels: &[Kernel]) -> Vec<NotFused> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for k in kernels {
        let nodes: BTreeSet<NodeId> = k.nodes().iter().copied().collect();
        for &u in &nodes {
            for &i in &g.node(u).inputs {
                if nodes.contains(&i) || g.node(i).op.is_source() || !seen.insert((i, u)) {
                    continue;
                }
                if let Some(r) = reason.get(&i) {
                    out.push(NotFused {
                        producer: i,
                        consumer: u,
                        reason: r.clone(),
                    });
                }
            }
        }
    }
    out
}
