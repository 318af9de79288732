//! Shared set-up of the criterion benches: sizes from the environment (so a quick run can
//! shrink them), short criterion settings (few samples: every case is a whole step of
//! milliseconds to seconds), and compiling a graph through `kiln_benches` exactly as
//! `kiln bench` does. Only set-up; the cases live in each bench file.

use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput};
use kiln_benches::{compile_graph, set_scalars, Compiled};
use kiln_ir::interp::Bindings;
use kiln_ir::Graph;

/// `KILN_BENCH_<NAME>` as a number, else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(format!("KILN_BENCH_{name}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// A benchmark group with 10 samples, 1 s warm-up and 4 s of measurement.
pub fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g
}

/// Compile `graph` (fused or one kernel per op, with the e-graph rewrite), set its
/// scalars, and register one benchmark `id` that runs a step with `inputs`.
pub fn bench_graph(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    graph: &Graph,
    fuse: bool,
    scalars: &[(String, f64)],
    inputs: &Bindings,
    bytes: Option<u64>,
) {
    let Compiled { mut exe, .. } = compile_graph(graph, fuse, true).unwrap_or_else(|e| panic!("compiling {id}: {e:#}"));
    set_scalars(&mut exe, graph, scalars).unwrap_or_else(|e| panic!("setting the scalars of {id}: {e:#}"));
    match bytes {
        Some(b) => g.throughput(Throughput::Bytes(b)),
        None => g.throughput(Throughput::Elements(1)),
    };
    g.bench_function(id, |b| b.iter(|| exe.run(inputs).expect("running the step")));
}
