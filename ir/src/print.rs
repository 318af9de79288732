//! Human-readable text and Graphviz DOT renderings of a graph. One line per node:
//! `%7 = matmul(%3, %6) : f32[128, 256]`. Printing never mutates or validates.

use std::fmt::{self, Write};

use petgraph::dot::{Config, Dot};
use petgraph::graph::DiGraph;

use crate::graph::Graph;
use crate::op::{Init, Op};

fn fmt_f64(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn init_str(init: &Init) -> String {
    match init {
        Init::Zeros => "zeros".into(),
        Init::Constant(c) => format!("constant({})", fmt_f64(*c)),
        Init::Uniform { low, high } => format!("uniform({}, {})", fmt_f64(*low), fmt_f64(*high)),
        Init::Normal { mean, std } => format!("normal({}, {})", fmt_f64(*mean), fmt_f64(*std)),
        Init::KaimingUniform { fan_in } => format!("kaiming_uniform(fan_in={fan_in})"),
        Init::KaimingNormal { fan_in } => format!("kaiming_normal(fan_in={fan_in})"),
        Init::XavierUniform { fan_in, fan_out } => format!("xavier_uniform({fan_in}, {fan_out})"),
    }
}

/// The op with its attributes, e.g. `sum[axes=[1], keepdims]` or `param "fc.weight"`.
pub fn op_label(op: &Op) -> String {
    let n = op.name();
    match op {
        Op::Input { name } | Op::Scalar { name } => format!("{n} \"{name}\""),
        Op::Param { name, init } | Op::State { name, init } => format!("{n} \"{name}\" {}", init_str(init)),
        Op::Const { value } => format!("{n} {}", fmt_f64(*value)),
        Op::Iota { axis } => format!("{n}[axis={axis}]"),
        Op::Random { dist, stream } => format!("{n}[{dist:?}, stream={stream}]").to_lowercase(),
        Op::PowConst { exponent } => format!("{n}[{}]", fmt_f64(*exponent)),
        Op::Reduce { axes, keepdims, .. } => {
            format!("{n}[axes={axes:?}{}]", if *keepdims { ", keepdims" } else { "" })
        }
        Op::ArgMax { axis } => format!("{n}[axis={axis}]"),
        Op::Permute { perm } => format!("{n}{perm:?}"),
        Op::Slice { starts, ends, steps } => format!("{n}[{starts:?}..{ends:?} step {steps:?}]"),
        Op::Pad { low, high, value } => format!("{n}[low={low:?}, high={high:?}, value={}]", fmt_f64(*value)),
        Op::Concat { axis } => format!("{n}[axis={axis}]"),
        Op::OneHot { depth } => format!("{n}[depth={depth}]"),
        Op::Unfold2d(w) => format!("{n}[k={:?}, s={:?}, p={:?}]", w.kernel, w.stride, w.padding),
        Op::Fold2d { window: w, size } => {
            format!(
                "{n}[k={:?}, s={:?}, p={:?}, size={size:?}]",
                w.kernel, w.stride, w.padding
            )
        }
        _ => n.to_string(),
    }
}

/// Write the graph as text: nodes, then outputs and updates.
pub fn write_text(g: &Graph, out: &mut impl Write) -> fmt::Result {
    for id in g.ids() {
        let node = g.node(id);
        let args = node.inputs.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        let label = op_label(&node.op);
        if args.is_empty() {
            writeln!(out, "{id} = {label} : {}", node.ty)?;
        } else {
            writeln!(out, "{id} = {label}({args}) : {}", node.ty)?;
        }
    }
    for (name, id) in g.outputs() {
        writeln!(out, "output \"{name}\" = {id}")?;
    }
    for (target, value) in g.updates() {
        let name = g.node(*target).op.source_name().unwrap_or("?");
        writeln!(out, "update \"{name}\" {target} <- {value}")?;
    }
    Ok(())
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(self, f)
    }
}

/// The graph as a petgraph `DiGraph` of labels (for analyses and DOT export).
pub fn to_petgraph(g: &Graph) -> DiGraph<String, ()> {
    let mut pg = DiGraph::new();
    let idx: Vec<_> = g
        .ids()
        .map(|id| pg.add_node(format!("{id} {}\n{}", op_label(&g.node(id).op), g.node(id).ty)))
        .collect();
    for id in g.ids() {
        for i in &g.node(id).inputs {
            pg.add_edge(idx[i.index()], idx[id.index()], ());
        }
    }
    pg
}

/// Graphviz DOT text of the graph.
pub fn to_dot(g: &Graph) -> String {
    let pg = to_petgraph(g);
    format!("{:?}", Dot::with_config(&pg, &[Config::EdgeNoLabel]))
}
