//! The fusion plan as a picture: the lowered graph in DOT with every node filled in the
//! colour of the kernel that computes it (grey: sources and views no kernel claims),
//! rendered to SVG in-process with `layout-rs` (no system Graphviz).

use std::collections::HashMap;
use std::fmt::Write;

use kiln_compiler::kernel::Program;
use kiln_ir::print::op_label;
use kiln_ir::Graph;

const PALETTE: &[&str] = &[
    "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5", "#bc80bd", "#ccebc5",
    "#ffed6f", "#a6cee3", "#b2df8a", "#fb9a99", "#cab2d6",
];

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "'")
}

/// DOT of the live part of `g`, nodes coloured by the kernel of `p` that computes them
/// and labelled `%id op` plus the kernel index.
pub fn fusion_dot(g: &Graph, p: &Program) -> String {
    let mut kernel_of: HashMap<usize, usize> = HashMap::new();
    for (i, k) in p.kernels.iter().enumerate() {
        for n in k.nodes() {
            kernel_of.entry(n.index()).or_insert(i);
        }
    }
    let live = g.live_mask();
    let mut s = String::from("digraph fusion {\n");
    for id in g.ids() {
        if !live[id.index()] {
            continue;
        }
        let label = escape(&op_label(&g.node(id).op));
        match kernel_of.get(&id.index()) {
            Some(&k) => {
                let _ = writeln!(
                    s,
                    "  n{} [label=\"%{} {label} [k{k}]\", shape=box, style=filled, fillcolor=\"{}\"];",
                    id.index(),
                    id.index(),
                    PALETTE[k % PALETTE.len()]
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "  n{} [label=\"%{} {label}\", shape=box, style=filled, fillcolor=\"#e0e0e0\"];",
                    id.index(),
                    id.index()
                );
            }
        }
    }
    for id in g.ids() {
        if !live[id.index()] {
            continue;
        }
        for i in &g.node(id).inputs {
            let _ = writeln!(s, "  n{} -> n{};", i.index(), id.index());
        }
    }
    s.push_str("}\n");
    s
}

/// Render DOT to SVG with `layout-rs`.
pub fn render_svg(dot: &str) -> anyhow::Result<String> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};
    let mut parser = DotParser::new(dot);
    let ast = parser
        .process()
        .map_err(|e| anyhow::anyhow!("parsing the fusion DOT for SVG rendering: {e}"))?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&ast);
    let mut vg = builder.get();
    let mut svg = SVGWriter::new();
    // Skip the crossing-minimisation pass: it dominates the time on step graphs of a few
    // hundred nodes (tens of seconds) while the ranks already show the data flow.
    vg.do_it(false, true, false, &mut svg);
    Ok(svg.finalize())
}
