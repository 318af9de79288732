//! Criterion benches of `kiln bench --suite step`: the whole training step (forward,
//! backward, optimizer update) of the MLP 784-256-256-10 with SGD, Adam and VSGD, fused
//! and unfused, from the same `kiln::inspect::bench_step::step_workload` as the CLI.
//! Batch: `KILN_BENCH_BATCH` (default 128); models: `KILN_BENCH_MODELS` (comma-separated,
//! default `mlp`).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::inspect::bench_step::step_workload;

fn train_step(c: &mut Criterion) {
    let batch = common::env_usize("BATCH", 128);
    let models = std::env::var("KILN_BENCH_MODELS").unwrap_or_else(|_| "mlp".into());
    let mut g = common::group(c, "step");
    for model in models.split(',').filter(|m| !m.is_empty()) {
        for name in ["sgd", "adam", "vsgd"] {
            let w = step_workload(model, name, batch).unwrap_or_else(|e| panic!("{model}/{name}: {e:#}"));
            for fuse in [true, false] {
                let id = format!("{model}/{name}/b{batch}/{}", if fuse { "fused" } else { "unfused" });
                common::bench_graph(&mut g, &id, &w.graph, fuse, &w.scalars, &w.inputs, None);
            }
        }
    }
    g.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
