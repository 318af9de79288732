//! What a rewrite did, for inspection and benchmarks: node/op counts and costs before
//! and after, per phase the iterations, stop reason, e-graph size and time, the rules
//! that fired most, and why the input was kept if it was. Plain data plus a printer;
//! it must not run anything.

use std::fmt;
use std::time::Duration;

use kiln_ir::{Graph, Op};

/// Why a phase's equality saturation stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum StopReason {
    /// No rule could add anything new: the phase reached its fixpoint.
    Saturated,
    /// The per-phase iteration limit was reached.
    IterationLimit(usize),
    /// The e-graph grew past the node limit.
    NodeLimit(usize),
    /// The time budget ran out (seconds spent by the phase).
    TimeLimit(f64),
    /// The phase did not run (an earlier phase hit a limit, or the budget was spent).
    NotRun(String),
    /// Anything else egg reported.
    Other(String),
}

impl StopReason {
    pub fn from_egg(r: &egg::StopReason) -> StopReason {
        match r {
            egg::StopReason::Saturated => StopReason::Saturated,
            egg::StopReason::IterationLimit(n) => StopReason::IterationLimit(*n),
            egg::StopReason::NodeLimit(n) => StopReason::NodeLimit(*n),
            egg::StopReason::TimeLimit(t) => StopReason::TimeLimit(*t),
            egg::StopReason::Other(s) => StopReason::Other(s.clone()),
        }
    }

    /// Whether a limit (rather than a fixpoint) ended the phase.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            StopReason::IterationLimit(_) | StopReason::NodeLimit(_) | StopReason::TimeLimit(_)
        )
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Saturated => write!(f, "saturated"),
            StopReason::IterationLimit(n) => write!(f, "iteration limit ({n})"),
            StopReason::NodeLimit(n) => write!(f, "node limit ({n} e-nodes)"),
            StopReason::TimeLimit(t) => write!(f, "time limit ({:.1} ms)", t * 1e3),
            StopReason::NotRun(why) => write!(f, "not run: {why}"),
            StopReason::Other(s) => write!(f, "{s}"),
        }
    }
}

/// One saturation phase.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseStats {
    pub phase: &'static str,
    pub iterations: usize,
    pub stop_reason: StopReason,
    /// E-graph size when the phase ended.
    pub egraph_nodes: usize,
    pub egraph_classes: usize,
    pub time: Duration,
    /// Effective applications (new e-nodes or unions) per rule, most first.
    pub applied: Vec<(String, usize)>,
}

/// Everything `rewrite` reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RewriteStats {
    /// False when rewriting was switched off (the graph was returned unchanged).
    pub enabled: bool,
    /// Live nodes (sources and constants included) before and after.
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Live operations (everything but sources and constants) before and after.
    pub ops_before: usize,
    pub ops_after: usize,
    /// Cost-model cost (see `cost.rs`) before and after.
    pub cost_before: f64,
    pub cost_after: f64,
    pub phases: Vec<PhaseStats>,
    pub translate_time: Duration,
    pub extract_time: Duration,
    pub total_time: Duration,
    /// Effective applications per rule over all phases, most first (ties by name).
    pub rule_applications: Vec<(String, usize)>,
    /// Rule proposals refused by the type check (0 unless a rule's guard is wrong).
    pub rejected_proposals: usize,
    /// "greedy-dag" or "tree".
    pub extraction: String,
    /// Divisions replaced by multiplications with a shared reciprocal.
    pub shared_divisors: usize,
    /// Why the input graph was returned instead of a rewritten one, if it was.
    pub fallback: Option<String>,
}

impl RewriteStats {
    /// The `n` rules that fired most.
    pub fn top_rules(&self, n: usize) -> &[(String, usize)] {
        &self.rule_applications[..n.min(self.rule_applications.len())]
    }

    /// How often `rule` fired (0 if never).
    pub fn applications(&self, rule: &str) -> usize {
        self.rule_applications
            .iter()
            .find(|(r, _)| r == rule)
            .map_or(0, |(_, n)| *n)
    }

    /// Whether any phase stopped on a limit or was skipped.
    pub fn hit_limit(&self) -> bool {
        self.phases
            .iter()
            .any(|p| p.stop_reason.is_limit() || matches!(p.stop_reason, StopReason::NotRun(_)))
    }

    /// Total saturation iterations over all phases.
    pub fn iterations(&self) -> usize {
        self.phases.iter().map(|p| p.iterations).sum()
    }
}

/// `(live nodes, live ops)` of a graph: ops exclude sources and constants.
pub fn count(graph: &Graph) -> (usize, usize) {
    let live = graph.live_mask();
    let mut nodes = 0;
    let mut ops = 0;
    for id in graph.ids().filter(|id| live[id.index()]) {
        nodes += 1;
        let op = &graph.node(id).op;
        if !op.is_source() && !matches!(op, Op::Const { .. }) {
            ops += 1;
        }
    }
    (nodes, ops)
}

/// Merge per-phase application counts into one list, most first, ties by name.
pub fn merge_applications<'a>(lists: impl IntoIterator<Item = &'a [(String, usize)]>) -> Vec<(String, usize)> {
    let mut all: Vec<(String, usize)> = Vec::new();
    for list in lists {
        for (name, n) in list {
            match all.iter_mut().find(|(r, _)| r == name) {
                Some(e) => e.1 += n,
                None => all.push((name.clone(), *n)),
            }
        }
    }
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all
}

impl fmt::Display for RewriteStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.enabled {
            return writeln!(f, "rewrite: off ({} ops, unchanged)", self.ops_before);
        }
        writeln!(
            f,
            "rewrite: ops {} -> {}, nodes {} -> {}, cost {:.0} -> {:.0}, {:.2} ms",
            self.ops_before,
            self.ops_after,
            self.nodes_before,
            self.nodes_after,
            self.cost_before,
            self.cost_after,
            self.total_time.as_secs_f64() * 1e3
        )?;
        for p in &self.phases {
            writeln!(
                f,
                "  {:<8} {:>2} iterations, {}, {} e-nodes / {} e-classes, {:.2} ms",
                p.phase,
                p.iterations,
                p.stop_reason,
                p.egraph_nodes,
                p.egraph_classes,
                p.time.as_secs_f64() * 1e3
            )?;
        }
        writeln!(
            f,
            "  translate {:.2} ms, extract ({}) {:.2} ms, {} division(s) share a reciprocal",
            self.translate_time.as_secs_f64() * 1e3,
            self.extraction,
            self.extract_time.as_secs_f64() * 1e3,
            self.shared_divisors
        )?;
        if !self.rule_applications.is_empty() {
            let top: Vec<String> = self.top_rules(8).iter().map(|(r, n)| format!("{r} x{n}")).collect();
            writeln!(f, "  top rules: {}", top.join(", "))?;
        }
        if self.rejected_proposals > 0 {
            writeln!(f, "  refused ill-typed proposals: {}", self.rejected_proposals)?;
        }
        if let Some(why) = &self.fallback {
            writeln!(f, "  kept the input graph: {why}")?;
        }
        Ok(())
    }
}
