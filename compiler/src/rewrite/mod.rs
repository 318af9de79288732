//! E-graph rewriting of a whole step graph (forward, backward and optimizer update)
//! with egg: algebraic simplification, constant folding, CSE, strength reduction,
//! reduce/broadcast algebra and layout moves, bounded by iterations, e-nodes and wall
//! time. [`rewrite`] never fails: on a limit it extracts the best graph found so far,
//! and on any internal problem it returns the input graph; both are reported in
//! [`RewriteStats`].
//!
//! Pipeline: `translate` (IR → e-graph with one root holding every output and update)
//! → phases of `rules` (simplify → algebra → layout; each phase runs its rules plus
//! those of earlier phases, under egg's `BackoffScheduler`) → `extract` (DAG-aware:
//! shared nodes counted once, costs from `cost`; then divisions by one shared divisor
//! become one reciprocal) → `translate` back (sources, output names and update
//! targets preserved) → a cost check (the result is kept only if it is no dearer than
//! the input).
//!
//! # Float policy
//!
//! The reference is the f64 interpreter on the graph before rewriting. For every
//! input, NaN and ±inf included, each output and update element of the rewritten
//! graph equals the original up to rounding (the tests use 1e-9 relative per rule and
//! 1e-6 in the fuzzer), under these rules (`compiler/tests/rewrite_*.rs` pin them):
//!
//! 1. **NaN/Inf patterns are preserved.** A rewrite never turns a NaN or ±inf element
//!    into a finite one, or the reverse. Hence:
//!    - `x * 0 -> 0` and `x - x -> 0` only when `x` is provably finite (i32/bool
//!      values, masks cast to f32, iota, one_hot, sigmoid/tanh of finite values...;
//!      see `analysis::Data::finite`). For an arbitrary f32 `x` they never fire
//!      (NaN * 0 = NaN, inf - inf = NaN). `x / x` is never rewritten.
//!    - A constant factor is moved across a sum, a reduction or a matmul
//!      (`k*a ± k*b -> k*(a ± b)`, `sum(x*k) -> sum(x)*k`, `(x*k) @ b -> (x@b)*k`)
//!      only when `k` is a finite constant > 0; runtime scalars never move.
//!    - Domain guards: `exp(log x) -> x` only for `x` with no element <= 0;
//!      `pow(x, 0.5) -> sqrt x` and `sqrt(x)*sqrt(x) -> x` only for `x` >= 0;
//!      `pow(x, -0.5) -> rsqrt x` only for `x` > 0 (they differ at -0 and -inf).
//!    - The one accepted exception is overflow/underflow of an intermediate: a
//!      rewritten form may stay finite where the original overflowed (or the
//!      reverse) — `log(exp x) -> x` returns `x` where `exp x` overflowed to inf, and
//!      reassociated constants (guarded to stay finite and normal in f32) move the
//!      point where `x*c1*c2` overflows. The fuzzer skips inputs whose original
//!      evaluation has finite values beyond 1e100.
//! 2. **Signed zeros are preserved** (the IEEE result, as the interpreter computes
//!    it). `x + 0.0` is not an identity for `x = -0.0` (`-0 + +0 = +0`), so
//!    `x + (+0) -> x` fires only where the analysis proves `x` is never -0
//!    (`analysis::Data::no_negzero`: results of sums, matmuls, exp, relu, abs,
//!    casts, i32...), `x + (-0) -> x` always. Likewise `relu/abs x -> x` needs a
//!    non-negative `x` that is never -0, `x * 0 -> 0` a non-negative `x`, and rules whose two sides
//!    differ only by the sign of a zero result get an explicit `+ 0`
//!    (`sum over one element -> x + 0`, `sum(-x) -> -sum(x) + 0`) or are not made
//!    (`-(a - b) -> b - a`, `0 - x -> -x` with +0, `a / recip(b) -> a * b`).
//!    This costs little — the cheap `+ 0` disappears wherever `x` is provably not
//!    -0 — and keeps the interpreter an exact oracle: no test needs a "modulo signed
//!    zero" escape hatch.
//! 3. **Rounding may change** in the last bits where a rewrite reorders arithmetic:
//!    reassociation of scalar constants (`(x*c1)*c2 -> x*(c1*c2)`,
//!    `(x+c1)+c2 -> x+(c1+c2)`), `x / c -> x * (1/c)` (at most one extra rounding; with
//!    `RewriteOptions::reciprocal_constants = false` only for powers of two, where it
//!    is exact), `a / sqrt b -> a * rsqrt b`, `pow(x, n) -> x*x*..` for
//!    `n ∈ {-2,-1,2,3,4}`, `sum(expand x) -> x * count`, merged reductions and moved
//!    constant factors.
//! 4. **Constant folding uses the interpreter's semantics** (`kiln_ir::interp::eval_op`:
//!    f64 arithmetic, wrapping i32, quantising casts, NaN-propagating max/min,
//!    reductions accumulating from +0, the documented values of empty reductions).
//! 5. **No general associativity or commutativity**: only constants are
//!    reassociated, so the e-graph stays small and saturates in a few iterations.

pub mod analysis;
pub mod cost;
pub mod extract;
pub mod language;
pub mod rules;
pub mod stats;
pub mod translate;
pub mod verify;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use egg::{BackoffScheduler, Runner};
use kiln_ir::Graph;

pub use rules::Phase;
pub use stats::{PhaseStats, RewriteStats, StopReason};

use language::KAnalysis;
use rules::{all_rules, rules_for, RuleOptions};

/// Options of [`rewrite`]. `Default` is on, with limits sized so a ~500-op step graph
/// rewrites well under 100 ms: the rule set saturates in a few iterations (the MLP +
/// VSGD step: 3 phases, under 10 iterations in all), so the iteration, e-node and time
/// limits are safety nets against pathological graphs, not the normal stop.
#[derive(Clone, Debug, PartialEq)]
pub struct RewriteOptions {
    /// `false`: return the input graph unchanged (stats say so).
    pub enabled: bool,
    /// Saturation iterations per phase.
    pub iter_limit: usize,
    /// Maximum e-nodes in the e-graph.
    pub node_limit: usize,
    /// Wall-time budget for all saturation phases together (translation and
    /// extraction come on top; they are linear-ish and reported separately).
    pub time_limit: Duration,
    /// BackoffScheduler: matches per rule and iteration before the rule is banned.
    pub match_limit: usize,
    /// BackoffScheduler: iterations a banned rule sits out (doubles per ban).
    pub ban_length: usize,
    /// Allow `x / c -> x * (1/c)` when `1/c` is inexact (see the float policy).
    pub reciprocal_constants: bool,
    /// Phases to run, in order.
    pub phases: Vec<Phase>,
    /// If > 0, evaluate the input and the result on this many random binding sets
    /// (half with NaN/±inf/±0) with the reference interpreter and keep the input on
    /// any disagreement beyond 1e-6 relative. Costs interpreter time; off by default.
    pub self_check_seeds: u64,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        RewriteOptions {
            enabled: true,
            iter_limit: 12,
            node_limit: 20_000,
            time_limit: Duration::from_millis(80),
            match_limit: 1_000,
            ban_length: 5,
            reciprocal_constants: true,
            phases: Phase::ALL.to_vec(),
            self_check_seeds: 0,
        }
    }
}

impl RewriteOptions {
    /// Rewriting switched off (for benchmarks and bisecting).
    pub fn disabled() -> Self {
        RewriteOptions {
            enabled: false,
            ..Self::default()
        }
    }
}

/// Rewrite `graph` with equality saturation. Never fails: returns the rewritten graph,
/// or the input graph (with `stats.fallback` saying why) when rewriting is off, finds
/// nothing cheaper, or runs into an internal problem.
pub fn rewrite(graph: &Graph, options: &RewriteOptions) -> (Graph, RewriteStats) {
    let start = Instant::now();
    let (nodes_before, ops_before) = stats::count(graph);
    let cost_before = cost::graph_cost(graph);
    let mut st = RewriteStats {
        enabled: options.enabled,
        nodes_before,
        ops_before,
        nodes_after: nodes_before,
        ops_after: ops_before,
        cost_before,
        cost_after: cost_before,
        ..RewriteStats::default()
    };
    if !options.enabled {
        st.total_time = start.elapsed();
        return (graph.clone(), st);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| run(graph, options, &mut st)));
    let result = match outcome {
        Ok(Ok(g)) => {
            let cost_after = cost::graph_cost(&g);
            if cost_after > cost_before * (1.0 + 1e-12) {
                Err(format!(
                    "the rewritten graph costs more ({cost_after:.0} > {cost_before:.0})"
                ))
            } else {
                st.cost_after = cost_after;
                Ok(g)
            }
        }
        Ok(Err(why)) => Err(why),
        Err(panic) => Err(format!(
            "internal panic: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
    };
    let out = match result {
        Ok(g) => {
            (st.nodes_after, st.ops_after) = stats::count(&g);
            g
        }
        Err(why) => {
            st.fallback = Some(why);
            st.cost_after = cost_before;
            graph.clone()
        }
    };
    st.total_time = start.elapsed();
    (out, st)
}

/// The rewriting proper; `Err` carries why the input must be kept.
fn run(graph: &Graph, options: &RewriteOptions, st: &mut RewriteStats) -> Result<Graph, String> {
    let t0 = Instant::now();
    let translate::Translated { mut egraph, root } = translate::to_egraph(graph)?;
    st.translate_time = t0.elapsed();

    let rules = all_rules(RuleOptions {
        reciprocal_constants: options.reciprocal_constants,
    });
    let saturation_start = Instant::now();
    let mut skip: Option<String> = None;
    for &phase in &options.phases {
        if let Some(why) = &skip {
            st.phases.push(PhaseStats {
                phase: phase.name(),
                iterations: 0,
                stop_reason: StopReason::NotRun(why.clone()),
                egraph_nodes: egraph.total_size(),
                egraph_classes: egraph.number_of_classes(),
                time: Duration::ZERO,
                applied: Vec::new(),
            });
            continue;
        }
        let left = options.time_limit.saturating_sub(saturation_start.elapsed());
        let rewrites: Vec<_> = rules_for(&rules, phase).into_iter().map(|r| r.to_rewrite()).collect();
        let scheduler = BackoffScheduler::default()
            .with_initial_match_limit(options.match_limit)
            .with_ban_length(options.ban_length);
        let t = Instant::now();
        let runner = Runner::<_, _, ()>::new(KAnalysis::default())
            .with_egraph(egraph)
            .with_iter_limit(options.iter_limit)
            .with_node_limit(options.node_limit)
            .with_time_limit(left)
            .with_scheduler(scheduler)
            .run(&rewrites);
        let stop = runner
            .stop_reason
            .as_ref()
            .map_or(StopReason::Other("unknown".into()), StopReason::from_egg);
        let per_iteration: Vec<Vec<(String, usize)>> = runner
            .iterations
            .iter()
            .map(|it| it.applied.iter().map(|(k, v)| (k.to_string(), *v)).collect())
            .collect();
        let applied = stats::merge_applications(per_iteration.iter().map(Vec::as_slice));
        egraph = runner.egraph;
        if matches!(stop, StopReason::NodeLimit(_) | StopReason::TimeLimit(_)) {
            skip = Some(format!("phase {} stopped on the {stop}", phase.name()));
        }
        st.phases.push(PhaseStats {
            phase: phase.name(),
            iterations: runner.iterations.len(),
            stop_reason: stop,
            egraph_nodes: egraph.total_size(),
            egraph_classes: egraph.number_of_classes(),
            time: t.elapsed(),
            applied,
        });
    }
    st.rule_applications = stats::merge_applications(st.phases.iter().map(|p| p.applied.as_slice()));
    st.rejected_proposals = rules.iter().map(|r| r.rejected()).sum();
    if egraph.analysis.type_errors > 0 {
        return Err(format!(
            "{} e-class type conflict(s) in the e-graph (a rule bug)",
            egraph.analysis.type_errors
        ));
    }

    let t1 = Instant::now();
    let mut extracted = extract::extract(&egraph, root).ok_or("no acyclic term could be extracted")?;
    if let Some((shared, n)) = extract::share_divisors(&mut egraph, &extracted) {
        if shared.cost < extracted.cost {
            extracted = shared;
            st.shared_divisors = n;
        }
    }
    st.extraction = match extracted.method {
        extract::ExtractMethod::GreedyDag => "greedy-dag".into(),
        extract::ExtractMethod::Tree => "tree".into(),
    };
    let out = translate::from_extracted(graph, &egraph, &extracted)?;
    st.extract_time = t1.elapsed();
    if options.self_check_seeds > 0 {
        verify::check(graph, &out, options.self_check_seeds, 1e-6).map_err(|e| format!("self-check failed: {e}"))?;
    }
    Ok(out)
}
