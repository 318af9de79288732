//! The fusion plan of a lowered step as a report: per kernel the graph nodes it fuses,
//! the buffers it reads and writes, bytes moved and flops; per step the launches, bytes
//! and peak memory; every kernel boundary the partitioner kept with its reason. Text
//! and the documented JSON format. Read-only over the graph and the program.

use std::collections::BTreeSet;
use std::fmt;

use kiln_compiler::kernel::{BufferId, BufferRole, Inst, Kernel, LoopKernel, Program};
use kiln_compiler::lower::peak_bytes;
use kiln_ir::{Graph, NodeId, Op};
use serde_json::{json, Value as Json};

/// One kernel of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelReport {
    pub name: String,
    /// Graph node indices (into the lowered graph).
    pub nodes: Vec<usize>,
    /// Names of the buffers read / written.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Bytes read plus bytes written (every distinct buffer once, 4 bytes per element).
    pub bytes: u64,
    /// Floating-point operations (2·m·n·k per matmul, one per element per elementwise
    /// op, one per reduced input element).
    pub flops: u64,
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq)]
pub struct FusionReport {
    pub kernels: Vec<KernelReport>,
    pub launches_per_step: usize,
    pub bytes_per_step: u64,
    pub peak_bytes: u64,
    /// `(producer, consumer, reason)` of every boundary kept.
    pub not_fused: Vec<(usize, usize, String)>,
}

/// A readable buffer name: its role's name, or `tmp<id>` for temporaries.
pub fn buffer_name(p: &Program, id: BufferId) -> String {
    match &p.buffer(id).role {
        BufferRole::Input(n) => format!("input:{n}"),
        BufferRole::Param(n) => format!("param:{n}"),
        BufferRole::State(n) => format!("state:{n}"),
        BufferRole::Output(n) => format!("output:{n}"),
        BufferRole::Temp => format!("tmp{}", id.0),
    }
}

fn loop_accesses(k: &LoopKernel, reads: &mut BTreeSet<BufferId>, writes: &mut BTreeSet<BufferId>) {
    for s in &k.stages {
        for (_, inst) in &s.insts {
            if let Inst::Load { buf, .. } = inst {
                reads.insert(*buf);
            }
        }
        for st in &s.stores {
            writes.insert(st.buf);
        }
    }
}

/// Buffers a kernel reads and writes (a matmul's epilogue reading its own output does
/// not count as an input).
pub fn accesses(k: &Kernel) -> (BTreeSet<BufferId>, BTreeSet<BufferId>) {
    let (mut reads, mut writes) = (BTreeSet::new(), BTreeSet::new());
    match k {
        Kernel::Loop(l) => loop_accesses(l, &mut reads, &mut writes),
        Kernel::MatMul(m) => {
            reads.insert(m.a.buf);
            reads.insert(m.b.buf);
            writes.insert(m.out);
            if let Some(e) = &m.epilogue {
                loop_accesses(e, &mut reads, &mut writes);
            }
            reads.remove(&m.out);
        }
    }
    (reads, writes)
}

/// Flops of one graph node (see [`KernelReport::flops`]).
pub fn node_flops(g: &Graph, id: NodeId) -> u64 {
    let n = g.node(id);
    let out = n.shape().numel() as u64;
    match &n.op {
        Op::MatMul => {
            let a = g.node(n.inputs[0]).shape();
            let k = a.dims().last().copied().unwrap_or(1) as u64;
            2 * out * k
        }
        Op::Unary(_) | Op::Binary(_) | Op::PowConst { .. } | Op::Compare(_) | Op::Select | Op::Random { .. } => out,
        Op::Reduce { .. } | Op::ArgMax { .. } => g.node(n.inputs[0]).shape().numel() as u64,
        _ => 0,
    }
}

impl FusionReport {
    pub fn new(g: &Graph, p: &Program) -> FusionReport {
        let mut kernels = Vec::with_capacity(p.kernels.len());
        for k in &p.kernels {
            let (reads, writes) = accesses(k);
            let len = |ids: &BTreeSet<BufferId>| ids.iter().map(|&b| p.buffer(b).len as u64 * 4).sum::<u64>();
            kernels.push(KernelReport {
                name: k.name().to_string(),
                nodes: k.nodes().iter().map(|n| n.index()).collect(),
                inputs: reads.iter().map(|&b| buffer_name(p, b)).collect(),
                outputs: writes.iter().map(|&b| buffer_name(p, b)).collect(),
                bytes: len(&reads) + len(&writes),
                flops: k
                    .nodes()
                    .iter()
                    .filter(|n| n.index() < g.len())
                    .map(|&n| node_flops(g, n))
                    .sum(),
            });
        }
        FusionReport {
            launches_per_step: p.launches(),
            bytes_per_step: kernels.iter().map(|k| k.bytes).sum(),
            peak_bytes: peak_bytes(p) as u64,
            not_fused: p
                .not_fused
                .iter()
                .map(|n| (n.producer.index(), n.consumer.index(), n.reason.clone()))
                .collect(),
            kernels,
        }
    }

    /// Total flops of the step.
    pub fn flops(&self) -> u64 {
        self.kernels.iter().map(|k| k.flops).sum()
    }

    /// The documented JSON format: `{"kernels":[{"name","nodes","inputs","outputs",
    /// "bytes","flops"}],"launches_per_step","bytes_per_step","peak_bytes",
    /// "not_fused":[{"between":[producer,consumer],"reason"}]}`.
    pub fn to_json(&self) -> Json {
        json!({
            "kernels": self.kernels.iter().map(|k| json!({
                "name": k.name,
                "nodes": k.nodes,
                "inputs": k.inputs,
                "outputs": k.outputs,
                "bytes": k.bytes,
                "flops": k.flops,
            })).collect::<Vec<_>>(),
            "launches_per_step": self.launches_per_step,
            "bytes_per_step": self.bytes_per_step,
            "peak_bytes": self.peak_bytes,
            "not_fused": self.not_fused.iter().map(|(a, b, r)| json!({"between": [a, b], "reason": r})).collect::<Vec<_>>(),
        })
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.2} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

impl fmt::Display for FusionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in self.kernels.iter().enumerate() {
            writeln!(
                f,
                "kernel {i}: {}  ({} nodes, {}, {} flop)",
                k.name,
                k.nodes.len(),
                human(k.bytes),
                k.flops
            )?;
            let nodes: Vec<String> = k.nodes.iter().map(|n| format!("%{n}")).collect();
            writeln!(f, "  nodes:   {}", nodes.join(" "))?;
            writeln!(f, "  reads:   {}", k.inputs.join(", "))?;
            writeln!(f, "  writes:  {}", k.outputs.join(", "))?;
        }
        if !self.not_fused.is_empty() {
            writeln!(f, "\nnot fused:")?;
            for (a, b, r) in &self.not_fused {
                writeln!(f, "  %{a} -> %{b}: {r}")?;
            }
        }
        writeln!(f, "\nlaunches per step: {}", self.launches_per_step)?;
        writeln!(
            f,
            "bytes per step:    {} ({})",
            self.bytes_per_step,
            human(self.bytes_per_step)
        )?;
        writeln!(f, "peak bytes:        {} ({})", self.peak_bytes, human(self.peak_bytes))?;
        writeln!(f, "flops per step:    {}", self.flops())
    }
}
