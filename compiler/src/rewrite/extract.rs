//! DAG-aware extraction: pick one e-node per needed e-class so that the step graph
//! rooted at the tuple of outputs and updates is cheap, counting every shared e-class
//! ONCE. egg's `Extractor` minimises tree cost, which counts a subterm as many times
//! as it is used and so prefers recomputation over sharing.
//!
//! The algorithm is the greedy DAG extractor of extraction-gym: each e-class keeps the
//! set of e-classes its best term uses (a bitset) and the summed cost of that set;
//! an e-node's cost is its own cost plus the cost of the UNION of its operands' sets,
//! and an e-node whose operands' sets contain its own e-class is a cycle and skipped.
//! A worklist propagates improvements to parents until nothing changes. Memory is
//! quadratic in the number of e-classes, so above `DAG_CLASS_LIMIT` e-classes (or if
//! the worklist does not settle) it falls back to a tree-cost extraction. The result
//! is checked to be acyclic.
//!
//! Per-class choices cannot see sharing ACROSS classes, so one decision is made after
//! extraction: [`share_divisors`] turns k >= 2 divisions by the same non-constant
//! e-class into one reciprocal and k multiplications (`a/s, b/s -> r = 1/s; a*r, b*r`;
//! same NaN/Inf and signed-zero results, one extra rounding; `s/s` stays, it is
//! exact). This module must not build IR graphs.

use std::collections::{HashMap, VecDeque};

use egg::{CostFunction, Extractor, Id, Language};

use super::cost::{enode_cost, enode_cost_inferred};
use kiln_ir::{BinaryOp, UnaryOp};

use super::language::{KGraph, KNode, KOp};

/// Above this many e-classes the per-class bitsets would cost too much memory.
pub const DAG_CLASS_LIMIT: usize = 40_000;

/// How a term was extracted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtractMethod {
    GreedyDag,
    Tree,
}

/// One extracted term: the chosen e-node of every e-class it uses, in topological
/// order (operands before users; the root last), and its DAG cost.
#[derive(Clone, Debug)]
pub struct Extracted {
    pub order: Vec<Id>,
    pub choice: HashMap<Id, KNode>,
    pub cost: f64,
    pub method: ExtractMethod,
}

/// Extract the best term for `root`: greedy DAG extraction, or tree extraction when
/// the e-graph is too large for it or it fails.
pub fn extract(eg: &KGraph, root: Id) -> Option<Extracted> {
    if eg.number_of_classes() <= DAG_CLASS_LIMIT {
        if let Some(x) = extract_greedy_dag(eg, root) {
            return Some(x);
        }
    }
    extract_tree(eg, root)
}

struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> Self {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn union_with(&mut self, o: &BitSet) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }
    fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            let mut b = bits;
            std::iter::from_fn(move || {
                if b == 0 {
                    return None;
                }
                let t = b.trailing_zeros() as usize;
                b &= b - 1;
                Some(w * 64 + t)
            })
        })
    }
}

struct Best {
    node: usize,
    set: BitSet,
    total: f64,
}

/// Greedy DAG extraction (see the module docs). `None` if the root has no acyclic
/// term or the worklist did not settle within its budget.
pub fn extract_greedy_dag(eg: &KGraph, root: Id) -> Option<Extracted> {
    let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
    ids.sort_unstable();
    let index: HashMap<Id, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let n = ids.len();
    // Per class: (own cost, operand class indices) of each node.
    let mut nodes: Vec<Vec<(f64, Vec<usize>)>> = Vec::with_capacity(n);
    let mut parents: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (ci, &id) in ids.iter().enumerate() {
        let class = &eg[id];
        let mut list = Vec::with_capacity(class.nodes.len());
        for (ni, node) in class.nodes.iter().enumerate() {
            let kids: Vec<usize> = node.children().iter().map(|&c| index[&eg.find(c)]).collect();
            for &k in &kids {
                parents[k].push((ci, ni));
            }
            list.push((enode_cost(eg, &class.data.ty, node), kids));
        }
        nodes.push(list);
    }
    let mut best: Vec<Option<Best>> = (0..n).map(|_| None).collect();
    let mut own: Vec<f64> = vec![0.0; n];
    let mut queue: VecDeque<(usize, usize)> = VecDeque::new();
    let mut queued: Vec<Vec<bool>> = nodes.iter().map(|l| vec![false; l.len()]).collect();
    for (ci, list) in nodes.iter().enumerate() {
        for (ni, (_, kids)) in list.iter().enumerate() {
            if kids.is_empty() {
                queue.push_back((ci, ni));
                queued[ci][ni] = true;
            }
        }
    }
    let total_nodes: usize = nodes.iter().map(Vec::len).sum();
    let mut budget = 64 * total_nodes + 10_000;
    while let Some((ci, ni)) = queue.pop_front() {
        queued[ci][ni] = false;
        budget = budget.checked_sub(1)?;
        let (cost, kids) = &nodes[ci][ni];
        if kids
            .iter()
            .any(|&k| best[k].is_none() || best[k].as_ref().is_some_and(|b| b.set.contains(ci)))
        {
            continue;
        }
        let mut set = BitSet::new(n);
        for &k in kids {
            if let Some(b) = &best[k] {
                set.union_with(&b.set);
            }
        }
        let total = *cost + set.ones().map(|k| own[k]).sum::<f64>();
        set.insert(ci);
        let improves = match &best[ci] {
            None => true,
            Some(b) => total < b.total - 1e-9 * b.total.abs().max(1.0),
        };
        if !improves {
            continue;
        }
        best[ci] = Some(Best { node: ni, set, total });
        own[ci] = *cost;
        for &(pc, pn) in &parents[ci] {
            if !queued[pc][pn] {
                queued[pc][pn] = true;
                queue.push_back((pc, pn));
            }
        }
    }
    let choice_of = |id: Id| -> Option<KNode> {
        let ci = *index.get(&eg.find(id))?;
        let b = best[ci].as_ref()?;
        Some(eg[ids[ci]].nodes[b.node].clone())
    };
    build(eg, root, choice_of, ExtractMethod::GreedyDag)
}

/// Tree-cost extraction with the same per-node costs (egg's `Extractor`).
pub fn extract_tree(eg: &KGraph, root: Id) -> Option<Extracted> {
    struct TreeCost<'a>(&'a KGraph);
    impl CostFunction<KNode> for TreeCost<'_> {
        type Cost = f64;
        fn cost<C: FnMut(Id) -> f64>(&mut self, enode: &KNode, mut costs: C) -> f64 {
            let own = enode_cost_inferred(self.0, enode);
            enode.children.iter().fold(own, |acc, &c| acc + costs(c))
        }
    }
    let extractor = Extractor::new(eg, TreeCost(eg));
    build(
        eg,
        root,
        |id| Some(extractor.find_best_node(id).clone()),
        ExtractMethod::Tree,
    )
}

/// Follow the choices from the root (depth first, operands in order), checking that
/// they form a DAG, and sum the cost of every used e-class once.
fn build(eg: &KGraph, root: Id, choice_of: impl Fn(Id) -> Option<KNode>, method: ExtractMethod) -> Option<Extracted> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: HashMap<Id, Mark> = HashMap::new();
    let mut choice: HashMap<Id, KNode> = HashMap::new();
    let mut order = Vec::new();
    // Explicit stack: (class, next operand to visit).
    let mut stack: Vec<(Id, usize)> = vec![(eg.find(root), 0)];
    marks.insert(eg.find(root), Mark::Open);
    choice.insert(eg.find(root), canonical(eg, choice_of(root)?));
    while let Some(&(id, next)) = stack.last() {
        let node = &choice[&id];
        if next < node.children.len() {
            let child = node.children[next];
            stack.last_mut()?.1 += 1;
            match marks.get(&child) {
                Some(Mark::Open) => return None, // a cycle
                Some(Mark::Done) => {}
                None => {
                    choice.insert(child, canonical(eg, choice_of(child)?));
                    marks.insert(child, Mark::Open);
                    stack.push((child, 0));
                }
            }
        } else {
            marks.insert(id, Mark::Done);
            order.push(id);
            stack.pop();
        }
    }
    let cost = order
        .iter()
        .map(|&id| enode_cost(eg, &eg[id].data.ty, &choice[&id]))
        .sum();
    Some(Extracted {
        order,
        choice,
        cost,
        method,
    })
}

fn canonical(eg: &KGraph, node: KNode) -> KNode {
    node.map_children(|c| eg.find(c))
}

/// Replace every group of two or more extracted divisions by the same non-constant
/// e-class with one reciprocal and multiplications (see the module docs). The new
/// e-nodes are added to `eg` and unioned with the divisions they replace, so the result
/// is still a term of the e-graph. Returns the new term and how many divisions were
/// replaced, or `None` when there was nothing to share.
pub fn share_divisors(eg: &mut KGraph, x: &Extracted) -> Option<(Extracted, usize)> {
    let div = KOp::Binary(BinaryOp::Div);
    let mut groups: Vec<(Id, Vec<Id>)> = Vec::new();
    for &c in &x.order {
        let node = &x.choice[&c];
        if node.op != div {
            continue;
        }
        // `s / s` is exactly 1 (or NaN); `s * (1/s)` is not always: keep it.
        let (num, den) = (node.children[0], node.children[1]);
        if eg[den].data.constant.is_some() || eg.find(num) == eg.find(den) {
            continue;
        }
        match groups.iter_mut().find(|(d, _)| *d == den) {
            Some((_, users)) => users.push(c),
            None => groups.push((den, vec![c])),
        }
    }
    groups.retain(|(_, users)| users.len() >= 2);
    if groups.is_empty() {
        return None;
    }
    let mut replaced: Vec<(Id, KNode)> = Vec::new();
    let mut recips: Vec<(Id, KNode)> = Vec::new();
    let mut count = 0;
    for (s, users) in &groups {
        let recip = KNode::new(KOp::Unary(UnaryOp::Recip), vec![*s]);
        let r = eg.add(recip.clone());
        recips.push((r, recip));
        for &d in users {
            let a = x.choice[&d].children[0];
            let mul = KNode::new(KOp::Binary(BinaryOp::Mul), vec![a, r]);
            let m = eg.add(mul.clone());
            eg.union(d, m);
            replaced.push((d, mul));
            count += 1;
        }
    }
    eg.rebuild();
    let mut choice: HashMap<Id, KNode> = HashMap::new();
    for (&c, node) in &x.choice {
        choice.insert(eg.find(c), canonical(eg, node.clone()));
    }
    for (c, node) in replaced.into_iter().chain(recips) {
        choice.insert(eg.find(c), canonical(eg, node));
    }
    let root = *x.order.last()?;
    let out = build(eg, root, |id| choice.get(&eg.find(id)).cloned(), x.method)?;
    Some((out, count))
}
