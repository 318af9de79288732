//! Multi-output fusion after partitioning: a loop kernel whose results are read by
//! another loop kernel over the same iteration space is merged INTO that consumer,
//! which then computes and stores them too (one pass over the data instead of two).
//! This is how cross-entropy's max row, sum-of-exp row, picked log-probability and the
//! backward row end up in one multi-stage kernel although each of them is also read by
//! other kernels. A merge that would make two kernels wait on each other is skipped, as
//! are nodes a failed kernel build asked to keep separate. It changes group membership
//! only.

use std::collections::{BTreeSet, HashMap};

use kiln_ir::{Graph, NodeId};

use super::partition::{Forced, Kind, LoopDom, Partition, Roles};
use super::LowerOptions;

/// The group that runs group `g` (an epilogue runs inside its matmul's kernel).
fn unit(p: &Partition, g: usize) -> usize {
    match p.groups[g].kind {
        Kind::Attached { matmul } => matmul,
        _ => g,
    }
}

/// For each kernel, the kernels that read one of its roots.
fn consumers(g: &Graph, p: &Partition) -> Vec<BTreeSet<usize>> {
    let mut root_group: HashMap<NodeId, usize> = HashMap::new();
    for (gi, gr) in p.groups.iter().enumerate() {
        for &r in &gr.roots {
            root_group.insert(r, unit(p, gi));
        }
    }
    let mut out = vec![BTreeSet::new(); p.groups.len()];
    for (u, groups) in p.group_of.iter().enumerate() {
        for &i in &g.nodes()[u].inputs {
            let Some(&a) = root_group.get(&i) else { continue };
            for &b in groups {
                let b = unit(p, b);
                if a != b {
                    out[a].insert(b);
                }
            }
        }
    }
    out
}

/// Whether `to` is reachable from `from` through a kernel other than `to` itself.
fn reaches_through_other(edges: &[BTreeSet<usize>], from: usize, to: usize) -> bool {
    let mut stack: Vec<usize> = edges[from].iter().copied().filter(|&c| c != to).collect();
    let mut seen = BTreeSet::new();
    while let Some(c) = stack.pop() {
        if c == to {
            return true;
        }
        if seen.insert(c) {
            stack.extend(edges[c].iter().copied());
        }
    }
    false
}

fn kept_numel(full: &kiln_ir::Shape, axes: &[usize]) -> usize {
    (0..full.rank())
        .filter(|a| !axes.contains(a))
        .map(|a| full.dims()[a])
        .product()
}

/// The iteration space of `b` after absorbing `a`, if they can share one kernel.
fn merged_dom(g: &Graph, p: &Partition, a: usize, b: usize) -> Option<LoopDom> {
    let (Kind::Loop(da), Kind::Loop(db)) = (&p.groups[a].kind, &p.groups[b].kind) else {
        return None;
    };
    let fits = |roots: &[NodeId], full: &kiln_ir::Shape, axes: &[usize]| {
        roots.iter().all(|&r| {
            let s = g.node(r).shape();
            s == full || s.numel() == kept_numel(full, axes)
        })
    };
    match (da, db) {
        (LoopDom::Flat(sa), LoopDom::Flat(sb)) if sa == sb => Some(db.clone()),
        (LoopDom::Flat(_), LoopDom::Reduce { full, axes }) if fits(&p.groups[a].roots, full, axes) => Some(db.clone()),
        (LoopDom::Reduce { full, axes }, LoopDom::Flat(_)) if fits(&p.groups[b].roots, full, axes) => Some(da.clone()),
        (LoopDom::Reduce { .. }, LoopDom::Reduce { .. }) if da == db => Some(db.clone()),
        _ => None,
    }
}

/// Merge producer kernels into consumer kernels until nothing changes.
pub(crate) fn merge_producers(g: &Graph, p: &mut Partition, roles: &Roles, opts: &LowerOptions, forced: &Forced) {
    if !opts.fuse {
        return;
    }
    let has_update = |p: &Partition, gi: usize| p.groups[gi].roots.iter().any(|r| roles.update_of.contains_key(r));
    loop {
        let edges = consumers(g, p);
        let mut order: Vec<usize> = (0..p.groups.len()).filter(|&a| !p.groups[a].roots.is_empty()).collect();
        order.sort_by_key(|&a| p.groups[a].roots.iter().min().copied());
        let mut pick = None;
        'search: for a in order {
            if p.groups[a].roots.iter().any(|r| forced.materialise.contains_key(r)) {
                continue;
            }
            for &b in &edges[a] {
                if p.groups[b].roots.is_empty() || (!opts.fuse_updates && has_update(p, a) != has_update(p, b)) {
                    continue;
                }
                if let Some(dom) = merged_dom(g, p, a, b) {
                    if !reaches_through_other(&edges, a, b) {
                        pick = Some((a, b, dom));
                        break 'search;
                    }
                }
            }
        }
        let Some((a, b, dom)) = pick else {
            drop_internal_roots(g, p, roles, forced);
            return;
        };
        let roots = std::mem::take(&mut p.groups[a].roots);
        p.groups[b].roots.extend(roots);
        p.groups[b].kind = Kind::Loop(dom);
        for groups in &mut p.group_of {
            if groups.contains(&a) {
                groups.retain(|&x| x != a);
                if !groups.contains(&b) {
                    groups.push(b);
                }
            }
        }
    }
}

/// After merging, a root every user of which sits in its own kernel needs no buffer:
/// it goes back to being computed inline (e.g. softmax's max row once the kernel that
/// read it from memory computes it itself).
fn drop_internal_roots(g: &Graph, p: &mut Partition, roles: &Roles, forced: &Forced) {
    let users = g.users();
    for gi in 0..p.groups.len() {
        if !matches!(p.groups[gi].kind, Kind::Loop(_)) {
            continue;
        }
        let roots = p.groups[gi].roots.clone();
        let keep: Vec<NodeId> = roots
            .iter()
            .copied()
            .filter(|&r| {
                let needed = roles.outputs.contains_key(&r)
                    || roles.update_of.contains_key(&r)
                    || forced.materialise.contains_key(&r)
                    || g.node(r).op.is_source()
                    || matches!(g.node(r).op, kiln_ir::Op::Fold2d { .. });
                needed
                    || users[r.index()]
                        .iter()
                        .any(|u| p.group_of[u.index()].iter().any(|&x| x != gi) || p.group_of[u.index()].is_empty())
            })
            .collect();
        if keep.is_empty() {
            continue;
        }
        for r in roots.iter().filter(|r| !keep.contains(r)) {
            p.reason.remove(r);
        }
        p.groups[gi].roots = keep;
    }
}
