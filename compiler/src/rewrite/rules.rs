//! The rewrite rules as egg `Rewrite`s, grouped in phases (simplify → algebra →
//! layout), and the small framework they are written in.
//!
//! A rule is a Rust function that looks at one e-node (and, through the e-graph, at
//! its operands' e-classes and analysis data) and proposes equivalent terms for its
//! e-class, built with [`Rhs`]. Every proposed term is type-checked with the IR's own
//! inference before it can reach the e-graph, and refused unless its type equals the
//! e-class's type: a rewrite can never change a result type, whatever a rule's guard
//! says. Proposals already present in the e-class are dropped while searching, so the
//! runner's saturation test and the scheduler's match counts see only new work.
//!
//! This module owns the framework and the phase lists; the rule bodies live in
//! `simplify`, `algebra` and `layout`. The float policy they follow is documented in
//! `rewrite/mod.rs`. It must not translate graphs, cost terms or run the e-graph.

mod algebra;
mod layout;
mod simplify;

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use egg::{Applier, ENodeOrVar, Id, Language, PatternAst, RecExpr, Rewrite, SearchMatches, Searcher, Subst, Var};
use kiln_ir::{BinaryOp, DType, ReduceOp, Shape, TensorType, UnaryOp};

use super::language::{float_bits, infer_type, Data, KAnalysis, KGraph, KNode, KOp};

/// The phases rules are grouped in. Each phase runs its own rules together with the
/// rules of the phases before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Identities, constant folding, movement compositions: shrink the graph.
    Simplify,
    /// Reassociation of constants, strength reduction, reduce/broadcast algebra,
    /// guarded common factors.
    Algebra,
    /// Broadcast sinking and transposes around matmuls.
    Layout,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Simplify, Phase::Algebra, Phase::Layout];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Simplify => "simplify",
            Phase::Algebra => "algebra",
            Phase::Layout => "layout",
        }
    }
}

/// Options the rules' guards read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleOptions {
    /// Allow `x / c -> x * (1/c)` when `1/c` is not exact (at most one extra rounding).
    pub reciprocal_constants: bool,
}

/// A proposed term: a pattern whose variables are existing e-classes.
pub struct Proposal {
    ast: PatternAst<KNode>,
    subst: Subst,
}

/// Builder of one proposed term. Handles are template positions (`Id`s into the
/// pattern), not e-classes. Any ill-typed node poisons the whole proposal.
pub struct Rhs<'a> {
    eg: &'a KGraph,
    ast: RecExpr<ENodeOrVar<KNode>>,
    types: Vec<TensorType>,
    subst: Subst,
    vars: u32,
    ok: bool,
}

fn poison_type() -> TensorType {
    TensorType::new(Shape::scalar(), DType::Bool)
}

impl<'a> Rhs<'a> {
    fn new(eg: &'a KGraph) -> Self {
        Rhs {
            eg,
            ast: RecExpr::default(),
            types: Vec::new(),
            subst: Subst::with_capacity(3),
            vars: 0,
            ok: true,
        }
    }

    /// An existing e-class.
    pub fn class(&mut self, id: Id) -> Id {
        let var = Var::from_u32(self.vars);
        self.vars += 1;
        self.subst.insert(var, id);
        self.types.push(self.eg[id].data.ty.clone());
        self.ast.add(ENodeOrVar::Var(var))
    }

    /// A new node over template positions; checked by the IR's type inference.
    pub fn node(&mut self, op: KOp, kids: &[Id]) -> Id {
        let tys: Vec<&TensorType> = kids.iter().map(|k| &self.types[usize::from(*k)]).collect();
        let ty = infer_type(&op, &tys, &self.eg.analysis.sources);
        let ty = ty.unwrap_or_else(|| {
            self.ok = false;
            poison_type()
        });
        self.types.push(ty);
        self.ast.add(ENodeOrVar::ENode(KNode::new(op, kids.to_vec())))
    }

    pub fn unary(&mut self, u: UnaryOp, a: Id) -> Id {
        self.node(KOp::Unary(u), &[a])
    }

    pub fn binary(&mut self, b: BinaryOp, x: Id, y: Id) -> Id {
        self.node(KOp::Binary(b), &[x, y])
    }

    /// A constant `value` of type `ty` (quantised to the dtype like the interpreter).
    pub fn constant(&mut self, value: f64, ty: &TensorType) -> Id {
        let op = KOp::Const {
            bits: float_bits(ty.dtype.quantize(value)),
            shape: ty.shape.clone(),
            dtype: ty.dtype,
        };
        self.node(op, &[])
    }

    /// The type of a template position.
    pub fn ty(&self, t: Id) -> &TensorType {
        &self.types[usize::from(t)]
    }
}

/// What a rule function sees: the e-graph, the e-class and the e-node it matched.
pub struct Cx<'a> {
    pub eg: &'a KGraph,
    pub class: Id,
    pub node: &'a KNode,
    pub opts: &'a RuleOptions,
    out: Vec<Proposal>,
    rejected: usize,
}

impl<'a> Cx<'a> {
    pub fn data(&self, id: Id) -> &'a Data {
        &self.eg[id].data
    }

    pub fn ty(&self, id: Id) -> &'a TensorType {
        &self.eg[id].data.ty
    }

    /// The splat constant of an e-class, if known.
    pub fn konst(&self, id: Id) -> Option<f64> {
        self.eg[id].data.constant
    }

    /// The class's constant if it is finite and nonzero (the guard of every rule that
    /// moves a constant factor across a NaN/Inf-sensitive boundary).
    pub fn safe_factor(&self, id: Id) -> Option<f64> {
        self.konst(id).filter(|c| c.is_finite() && *c != 0.0)
    }

    pub fn same(&self, a: Id, b: Id) -> bool {
        self.eg.find(a) == self.eg.find(b)
    }

    /// The matched node's operand e-classes.
    pub fn args(&self) -> &'a [Id] {
        &self.node.children
    }

    /// The nodes of an e-class.
    pub fn nodes(&self, id: Id) -> &'a [KNode] {
        &self.eg[id].nodes
    }

    /// Operands of every `Unary(u)` node in e-class `id`.
    pub fn unary_in(&self, id: Id, u: UnaryOp) -> impl Iterator<Item = Id> + 'a {
        let op = KOp::Unary(u);
        self.nodes(id).iter().filter(move |n| n.op == op).map(|n| n.children[0])
    }

    /// Operand pairs of every `Binary(b)` node in e-class `id`.
    pub fn binary_in(&self, id: Id, b: BinaryOp) -> impl Iterator<Item = (Id, Id)> + 'a {
        let op = KOp::Binary(b);
        self.nodes(id)
            .iter()
            .filter(move |n| n.op == op)
            .map(|n| (n.children[0], n.children[1]))
    }

    pub fn rhs(&self) -> Rhs<'a> {
        Rhs::new(self.eg)
    }

    /// Propose `root` (a position of `rhs`) as equal to the matched e-class.
    pub fn emit(&mut self, rhs: Rhs<'a>, root: Id) {
        let class_ty = &self.eg[self.class].data.ty;
        if !rhs.ok || rhs.types[usize::from(root)] != *class_ty {
            self.rejected += 1;
            return;
        }
        // Keep only the part of the template the root uses (a rule may have built
        // positions it then abandoned).
        let ast = rhs.ast.extract_root(root);
        if already_present(self.eg, self.class, &ast, &rhs.subst) {
            return;
        }
        self.out.push(Proposal { ast, subst: rhs.subst });
    }

    /// Shorthand: propose an existing e-class.
    pub fn emit_class(&mut self, id: Id) {
        let mut r = self.rhs();
        let t = r.class(id);
        self.emit(r, t);
    }
}

/// Template subexpression rooted at `root` (template positions are topological).
trait ExtractRoot {
    fn extract_root(&self, root: Id) -> Self;
}

impl ExtractRoot for RecExpr<ENodeOrVar<KNode>> {
    fn extract_root(&self, root: Id) -> Self {
        let n = usize::from(root) + 1;
        let mut keep = vec![false; n];
        keep[n - 1] = true;
        for i in (0..n).rev() {
            if keep[i] {
                if let ENodeOrVar::ENode(node) = &self[Id::from(i)] {
                    for &c in node.children() {
                        keep[usize::from(c)] = true;
                    }
                }
            }
        }
        let mut map = vec![Id::from(0usize); n];
        let mut out = RecExpr::default();
        for i in 0..n {
            if keep[i] {
                let node = self[Id::from(i)].clone().map_children(|c| map[usize::from(c)]);
                map[i] = out.add(node);
            }
        }
        out
    }
}

/// Whether the instantiated template already exists in `class` (nothing to add).
fn already_present(eg: &KGraph, class: Id, ast: &PatternAst<KNode>, subst: &Subst) -> bool {
    let mut ids: Vec<Id> = Vec::with_capacity(ast.len());
    for node in ast.iter() {
        let id = match node {
            ENodeOrVar::Var(v) => match subst.get(*v) {
                Some(&id) => eg.find(id),
                None => return false,
            },
            ENodeOrVar::ENode(n) => {
                let n = n.clone().map_children(|c| ids[usize::from(c)]);
                match eg.lookup(n) {
                    Some(id) => id,
                    None => return false,
                }
            }
        };
        ids.push(id);
    }
    ids.last().is_some_and(|&id| id == eg.find(class))
}

type RuleFn = fn(&mut Cx);

/// One rule: a name, the op kinds it is triggered by, and its body.
#[derive(Clone)]
pub struct Rule {
    pub name: &'static str,
    pub phase: Phase,
    kinds: Vec<u16>,
    body: RuleFn,
    opts: RuleOptions,
    rejected: Arc<AtomicUsize>,
}

impl Rule {
    fn new(name: &'static str, phase: Phase, triggers: &[KOp], body: RuleFn) -> Rule {
        Rule {
            name,
            phase,
            kinds: triggers.iter().map(KOp::kind).collect(),
            body,
            opts: RuleOptions {
                reciprocal_constants: true,
            },
            rejected: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Proposals this rule built but refused because they were ill-typed or changed
    /// the e-class's type (0 unless a guard is wrong).
    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The egg rewrite running this rule.
    pub fn to_rewrite(&self) -> Rewrite<KNode, KAnalysis> {
        Rewrite::new(self.name, self.clone(), self.clone()).expect("framework rules bind no pattern variables")
    }

    fn proposals(&self, eg: &KGraph, class: Id, node: &KNode) -> Vec<Proposal> {
        let mut cx = Cx {
            eg,
            class,
            node,
            opts: &self.opts,
            out: Vec::new(),
            rejected: 0,
        };
        (self.body)(&mut cx);
        if cx.rejected > 0 {
            self.rejected.fetch_add(cx.rejected, Ordering::Relaxed);
        }
        cx.out
    }
}

fn to_matches(class: Id, props: Vec<Proposal>) -> impl Iterator<Item = SearchMatches<'static, KNode>> {
    props.into_iter().map(move |p| SearchMatches {
        eclass: class,
        substs: vec![p.subst],
        ast: Some(Cow::Owned(p.ast)),
    })
}

impl Searcher<KNode, KAnalysis> for Rule {
    fn search_eclass_with_limit(&self, eg: &KGraph, eclass: Id, limit: usize) -> Option<SearchMatches<'_, KNode>> {
        let mut found = Vec::new();
        for node in eg[eclass].nodes.iter().filter(|n| self.kinds.contains(&n.op.kind())) {
            found.extend(self.proposals(eg, eclass, node));
            if found.len() >= limit {
                break;
            }
        }
        // One `SearchMatches` carries one template; report the first.
        to_matches(eg.find(eclass), found).next()
    }

    fn search_with_limit(&self, eg: &KGraph, limit: usize) -> Vec<SearchMatches<'_, KNode>> {
        let mut out = Vec::new();
        for kind in &self.kinds {
            let Some(classes) = eg.classes_for_op(kind) else {
                continue;
            };
            for class in classes {
                for node in eg[class].nodes.iter().filter(|n| n.op.kind() == *kind) {
                    out.extend(to_matches(class, self.proposals(eg, class, node)));
                    if out.len() >= limit {
                        return out;
                    }
                }
            }
        }
        out
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

impl Applier<KNode, KAnalysis> for Rule {
    fn apply_matches(&self, eg: &mut KGraph, matches: &[SearchMatches<KNode>], _rule: egg::Symbol) -> Vec<Id> {
        let mut changed = Vec::new();
        for m in matches {
            let Some(ast) = m.ast.as_deref() else { continue };
            for subst in &m.substs {
                let id = eg.add_instantiation(ast, subst);
                if eg.union(m.eclass, id) {
                    changed.push(id);
                }
            }
        }
        changed
    }

    fn apply_one(&self, _: &mut KGraph, _: Id, _: &Subst, _: Option<&PatternAst<KNode>>, _: egg::Symbol) -> Vec<Id> {
        // Every match carries its own template; `apply_matches` handles them.
        Vec::new()
    }
}

/// Every rule of the rewriter, in phase order.
pub fn all_rules(opts: RuleOptions) -> Vec<Rule> {
    let mut rules = simplify::rules();
    rules.extend(algebra::rules());
    rules.extend(layout::rules());
    for r in &mut rules {
        r.opts = opts;
    }
    rules
}

/// The rules that run in `phase` (its own and those of earlier phases).
pub fn rules_for(all: &[Rule], phase: Phase) -> Vec<&Rule> {
    all.iter().filter(|r| r.phase <= phase).collect()
}

// ----- small helpers shared by the rule bodies -----

/// `Reduce` prototype for trigger lists (payload ignored by `KOp::kind`).
fn reduce_kind(op: ReduceOp) -> KOp {
    KOp::Reduce {
        op,
        axes: Vec::new(),
        keepdims: false,
    }
}

/// Whether an f32 value stays a normal, finite f32 (guards for folded constants).
fn f32_normal(v: f64) -> bool {
    let a = v.abs();
    a.is_finite() && (f32::MIN_POSITIVE as f64..=f32::MAX as f64).contains(&a)
}

/// Shape with `axes` removed (or set to 1 with keepdims).
fn reduced_shape(s: &Shape, axes: &[usize], keepdims: bool) -> Shape {
    Shape(kiln_ir::infer::reduced_dims(s, axes, keepdims))
}
