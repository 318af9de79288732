//! Criterion benches of `kiln bench --suite fusion`: the 20-op elementwise chain, softmax
//! cross-entropy (forward, forward + backward) over `[rows, 1000]` and the MLP
//! 784-256-256-10 forward + backward, fused and unfused, from the same
//! `kiln_benches::fusion::fusion_workload` as the CLI. Sizes: `KILN_BENCH_SIZE` (chain,
//! default 2^24), `KILN_BENCH_ROWS` (default 4096), `KILN_BENCH_BATCH` (default 128).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use kiln_benches::fusion::{fusion_workload, FUSION_CASES, XENT_ROWS};
use kiln_benches::minimal_bytes;

fn fusion(c: &mut Criterion) {
    let size = common::env_usize("SIZE", kiln_benches::DEFAULT_SIZE);
    let rows = common::env_usize("ROWS", XENT_ROWS);
    let batch = common::env_usize("BATCH", 128);
    let mut g = common::group(c, "fusion");
    for case in FUSION_CASES {
        let (name, graph, inputs) =
            fusion_workload(case, size, rows, batch).unwrap_or_else(|e| panic!("{case}: {e:#}"));
        let bytes = Some(minimal_bytes(&graph));
        for fuse in [true, false] {
            let id = format!("{name}/{}", if fuse { "fused" } else { "unfused" });
            common::bench_graph(&mut g, &id, &graph, fuse, &[], &inputs, bytes);
        }
    }
    g.finish();
}

criterion_group!(benches, fusion);
criterion_main!(benches);
