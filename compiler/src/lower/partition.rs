//! Fusion decisions: which nodes get a buffer ("materialised") and which kernel
//! computes each of them. Owns the rules; building the kernels (and refusing a
//! proposal that cannot be built) is `kernels`/`emit`'s job.
//!
//! Nodes are visited consumers-first. A node whose users all sit in ONE kernel joins
//! it (inlined); a cheap node (a view, one-hot, a one-element computation) used by
//! several kernels is recomputed in each; anything else used by several kernels gets a
//! buffer. Nodes that must be materialised (outputs, update values, matmul results and
//! non-view matmul operands, fold2d results, and whatever a failed build asked for) can
//! still be *computed* by their single consumer kernel, which then also stores them
//! (multi-output fusion: Adam's `m'`, `v'` and `θ'` in one kernel). A reduction joins
//! its consumer kernel when that kernel can iterate the reduction's domain (its full
//! shape, or one element per reduced row); a matmul takes its elementwise consumer
//! kernel over its output as epilogue. Every materialised node records why.

use std::collections::{BTreeMap, HashMap, HashSet};

use kiln_ir::{Graph, NodeId, Op, Shape};

use super::views::is_strided_view;
use super::LowerOptions;

/// What a loop kernel iterates.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LoopDom {
    /// Elementwise over this shape.
    Flat(Shape),
    /// Outer = the axes of `full` not in `axes`, reductions over `axes`.
    Reduce { full: Shape, axes: Vec<usize> },
    /// The window sums of one fold2d node.
    Fold(NodeId),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    Loop(LoopDom),
    /// A matmul (its root) with an optional epilogue group.
    MatMul {
        epilogue: Option<usize>,
    },
    /// An elementwise group run as the epilogue of this matmul group.
    Attached {
        matmul: usize,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    /// Materialised nodes this kernel computes and stores.
    pub roots: Vec<NodeId>,
    pub kind: Kind,
}

/// Decisions forced by failed kernel builds.
#[derive(Clone, Debug, Default)]
pub(crate) struct Forced {
    pub materialise: BTreeMap<NodeId, String>,
    pub no_epilogue: HashSet<NodeId>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Partition {
    pub groups: Vec<Group>,
    /// Why each materialised node has a buffer.
    pub reason: HashMap<NodeId, String>,
    /// The groups computing each node (several for a cheap node recomputed in each).
    pub group_of: Vec<Vec<usize>>,
}

/// Graph facts the rules need.
pub(crate) struct Roles {
    pub outputs: HashMap<NodeId, Vec<String>>,
    /// Update value -> target, for updates that need a computed value.
    pub update_of: HashMap<NodeId, NodeId>,
}

impl Roles {
    pub(crate) fn new(g: &Graph) -> Self {
        let mut outputs: HashMap<NodeId, Vec<String>> = HashMap::new();
        for (name, id) in g.outputs() {
            outputs.entry(*id).or_default().push(name.clone());
        }
        let update_of = g
            .updates()
            .iter()
            .filter(|(t, v)| t != v && !matches!(g.node(*v).op, Op::Input { .. } | Op::Param { .. } | Op::State { .. }))
            .map(|&(t, v)| (v, t))
            .collect();
        Roles { outputs, update_of }
    }
}

/// Recomputing an elementwise node in another kernel is cheaper than storing it and
/// loading it back when it takes at most this many ops from loads (memory-bound
/// kernels: a few flops per element cost less than 8 bytes of traffic).
pub(crate) const RECOMPUTE_OPS: usize = 8;

/// Nodes cheap enough to recompute in every kernel that needs them: views, one-hot,
/// constants, one-element values, and small elementwise expressions of loads.
fn cheap(g: &Graph, id: NodeId) -> bool {
    let n = g.node(id);
    n.op.is_movement()
        || matches!(n.op, Op::Iota { .. } | Op::OneHot { .. } | Op::Const { .. })
        || (n.shape().numel() <= 1 && n.op.is_elementwise())
        || (n.op.is_elementwise() && inline_ops(g, id, &mut HashSet::new()) <= RECOMPUTE_OPS)
}

/// Ops in the elementwise expression under `id` (stopping at sources, reductions,
/// matmuls and other nodes that end up in buffers), capped past the limit.
fn inline_ops(g: &Graph, id: NodeId, seen: &mut HashSet<NodeId>) -> usize {
    let n = g.node(id);
    let stops =
        n.op.is_source() || n.op.is_reduction() || matches!(n.op, Op::MatMul | Op::Fold2d { .. } | Op::Random { .. });
    if stops || !seen.insert(id) {
        return 0;
    }
    let mut total = usize::from(!n.op.is_movement() && !matches!(n.op, Op::Const { .. }));
    for &i in &n.inputs {
        if total > RECOMPUTE_OPS {
            break;
        }
        total += inline_ops(g, i, seen);
    }
    total
}

struct Ctx<'a> {
    g: &'a Graph,
    opts: &'a LowerOptions,
    roles: &'a Roles,
    p: Partition,
}

pub(crate) fn partition(g: &Graph, live: &[bool], opts: &LowerOptions, forced: &Forced) -> Partition {
    let roles = Roles::new(g);
    let users = g.users();
    let mut cx = Ctx {
        g,
        opts,
        roles: &roles,
        p: Partition {
            groups: Vec::new(),
            reason: HashMap::new(),
            group_of: vec![Vec::new(); g.len()],
        },
    };
    for i in (0..g.len()).rev() {
        let id = NodeId(i as u32);
        if !live[i] {
            continue;
        }
        let op = &g.node(id).op;
        let mut ug: Vec<usize> = users[i]
            .iter()
            .filter(|u| live[u.index()])
            .flat_map(|u| cx.p.group_of[u.index()].iter().copied())
            .collect();
        ug.sort_unstable();
        ug.dedup();
        if op.is_source() {
            // Sources live in their own buffers; one that is a step output is copied.
            if roles.outputs.contains_key(&id) && !matches!(op, Op::Scalar { .. }) {
                cx.new_group(id, "a step output that is a graph source is copied".into());
            } else if matches!(op, Op::Scalar { .. })
                && (roles.outputs.contains_key(&id) || roles.update_of.contains_key(&id))
            {
                cx.new_group(id, "a runtime scalar stored as a tensor".into());
            }
            continue;
        }
        if let Some(why) = cx.must_materialise(id, &ug, forced) {
            let operand = why.starts_with("matmul operands");
            let join = opts.fuse
                && !operand
                && !matches!(op, Op::MatMul | Op::Fold2d { .. })
                && !forced.materialise.contains_key(&id)
                && ug.len() == 1
                && cx.root_fits(ug[0], id);
            if join {
                cx.p.groups[ug[0]].roots.push(id);
                cx.p.group_of[i] = vec![ug[0]];
                cx.p.reason.insert(id, why);
            } else {
                let gi = cx.new_group(id, why);
                if matches!(op, Op::MatMul) && opts.fuse && !forced.no_epilogue.contains(&id) {
                    cx.attach_epilogue(gi, id, &ug);
                }
            }
            continue;
        }
        if op.is_reduction() {
            if opts.fuse && ug.len() == 1 && cx.reduction_fits(ug[0], id) {
                cx.p.group_of[i] = vec![ug[0]];
            } else {
                let why = if ug.len() > 1 {
                    format!("{} is used by {} kernels", op.name(), ug.len())
                } else {
                    format!("{} iterates a different domain than its consumer kernel", op.name())
                };
                cx.new_group(id, why);
            }
            continue;
        }
        let inline = match ug.len() {
            1 => cx.injective_fits(ug[0], id),
            _ => cheap(g, id) && ug.iter().all(|&gi| cx.injective_fits(gi, id)),
        };
        if inline {
            cx.p.group_of[i] = ug;
        } else {
            let why = format!(
                "{} is used by {} kernels and is not cheap to recompute",
                op.name(),
                ug.len()
            );
            cx.new_group(id, why);
        }
    }
    super::merge::merge_producers(g, &mut cx.p, &roles, opts, forced);
    cx.p
}

impl Ctx<'_> {
    fn must_materialise(&self, id: NodeId, ug: &[usize], forced: &Forced) -> Option<String> {
        let g = self.g;
        let op = &g.node(id).op;
        if !self.opts.fuse {
            return Some("unfused mode: every op is its own kernel".into());
        }
        if let Some(why) = forced.materialise.get(&id) {
            return Some(why.clone());
        }
        if let Some(names) = self.roles.outputs.get(&id) {
            return Some(format!("step output `{}`", names[0]));
        }
        if let Some(t) = self.roles.update_of.get(&id) {
            return Some(format!("new value of `{}`", g.node(*t).op.source_name().unwrap_or("?")));
        }
        match op {
            Op::MatMul => return Some("a matmul result is written by its GEMM kernel".into()),
            Op::Fold2d { .. } => return Some("fold2d sums overlapping windows in its own kernel".into()),
            _ => {}
        }
        let feeds_matmul = ug
            .iter()
            .any(|&gi| matches!(self.p.groups[gi].kind, Kind::MatMul { .. }));
        if feeds_matmul && !is_strided_view(op) {
            return Some("matmul operands are read as strided buffers".into());
        }
        None
    }

    fn new_group(&mut self, id: NodeId, why: String) -> usize {
        let g = self.g;
        let node = g.node(id);
        let kind = match &node.op {
            Op::MatMul => Kind::MatMul { epilogue: None },
            Op::Fold2d { .. } => Kind::Loop(LoopDom::Fold(id)),
            Op::Reduce { axes, .. } => Kind::Loop(LoopDom::Reduce {
                full: g.node(node.inputs[0]).shape().clone(),
                axes: axes.clone(),
            }),
            Op::ArgMax { axis } => Kind::Loop(LoopDom::Reduce {
                full: g.node(node.inputs[0]).shape().clone(),
                axes: vec![*axis],
            }),
            _ => Kind::Loop(LoopDom::Flat(node.shape().clone())),
        };
        self.p.groups.push(Group { roots: vec![id], kind });
        let gi = self.p.groups.len() - 1;
        self.p.group_of[id.index()] = vec![gi];
        self.p.reason.insert(id, why);
        gi
    }

    fn has_update_root(&self, gi: usize) -> bool {
        self.p.groups[gi]
            .roots
            .iter()
            .any(|r| self.roles.update_of.contains_key(r))
    }

    /// `fuse_updates = false` keeps optimizer updates in kernels of their own.
    fn update_rule_ok(&self, gi: usize, id: NodeId) -> bool {
        self.opts.fuse_updates || self.has_update_root(gi) == self.roles.update_of.contains_key(&id)
    }

    fn dom(&self, gi: usize) -> Option<&LoopDom> {
        match &self.p.groups[gi].kind {
            Kind::Loop(d) => Some(d),
            Kind::Attached { .. } => None,
            Kind::MatMul { .. } => None,
        }
    }

    /// Can materialised node `id` be computed and stored by group `gi`?
    fn root_fits(&self, gi: usize, id: NodeId) -> bool {
        let shape = self.g.node(id).shape();
        if !self.update_rule_ok(gi, id) {
            return false;
        }
        match &self.p.groups[gi].kind {
            Kind::Loop(LoopDom::Flat(s)) => s == shape,
            Kind::Attached { matmul } => {
                Some(shape) == self.p.groups[*matmul].roots.first().map(|m| self.g.node(*m).shape())
            }
            Kind::Loop(LoopDom::Reduce { full, axes }) => {
                let kept: usize = (0..full.rank())
                    .filter(|a| !axes.contains(a))
                    .map(|a| full.dims()[a])
                    .product();
                shape == full || shape.numel() == kept
            }
            _ => false,
        }
    }

    /// Can reduction `id` be computed by group `gi` (its only consumer)?
    fn reduction_fits(&mut self, gi: usize, id: NodeId) -> bool {
        let g = self.g;
        let node = g.node(id);
        let full = g.node(node.inputs[0]).shape().clone();
        let axes = match &node.op {
            Op::Reduce { axes, .. } => axes.clone(),
            Op::ArgMax { axis } => vec![*axis],
            _ => return false,
        };
        if !self.opts.fuse_updates && self.has_update_root(gi) {
            return false;
        }
        let new = match self.dom(gi) {
            Some(LoopDom::Flat(s)) if *s == full || s.numel() == node.shape().numel() => LoopDom::Reduce { full, axes },
            Some(LoopDom::Reduce { full: f, axes: a }) if *f == full && *a == axes => return true,
            _ => return false,
        };
        self.p.groups[gi].kind = Kind::Loop(new);
        true
    }

    /// Can non-materialised injective node `id` be inlined into group `gi`?
    fn injective_fits(&self, gi: usize, id: NodeId) -> bool {
        match self.p.groups[gi].kind {
            Kind::MatMul { .. } => is_strided_view(&self.g.node(id).op),
            _ => true,
        }
    }

    fn attach_epilogue(&mut self, mm_group: usize, mm: NodeId, ug: &[usize]) {
        let shape = self.g.node(mm).shape();
        for &gi in ug {
            let ok = matches!(&self.p.groups[gi].kind, Kind::Loop(LoopDom::Flat(s)) if s == shape)
                && (self.opts.fuse_updates || !self.has_update_root(gi));
            if ok {
                self.p.groups[gi].kind = Kind::Attached { matmul: mm_group };
                self.p.groups[mm_group].kind = Kind::MatMul { epilogue: Some(gi) };
                return;
            }
        }
    }
}
