//! Builds one kernel per partition group: loop kernels for elementwise and reduction
//! groups (stores of every root at its own point), matmul kernels with strided operands
//! and their epilogue, and the readable kernel names (`fused_matmul_add_relu`,
//! `reduce_sum_exp`). Refusals come back as `Fail` for the partitioner; this module
//! decides no fusion itself.

use std::collections::BTreeSet;

use kiln_ir::{Graph, NodeId};

use super::buffers::Alloc;
use super::emit::{Domain, Emit, Fail, Homes, KernelBuilder};
use super::index::{ravel, unravel};
use super::partition::{Kind, LoopDom, Partition};
use super::views::{is_strided_view, Strided};
use crate::error::CompileError;
use crate::kernel::{IndexExpr, Kernel, MatMulKernel, MatOperand};

pub(crate) struct Built {
    pub kernel: Kernel,
    /// Sort key: the kernel's first root.
    pub key: NodeId,
}

fn homes(a: &Alloc) -> Homes<'_> {
    Homes {
        home: &a.home,
        slot: &a.slot,
    }
}

pub(crate) fn build_all(g: &Graph, part: &Partition, a: &Alloc) -> Emit<Vec<Built>> {
    let mut out = Vec::new();
    for (gi, group) in part.groups.iter().enumerate() {
        if group.roots.is_empty() {
            continue;
        }
        let built = match &group.kind {
            Kind::Attached { .. } => continue,
            Kind::Loop(dom) => build_loop(g, a, &group.roots, dom)?,
            Kind::MatMul { epilogue } => {
                let epi = epilogue.map(|e| part.groups[e].roots.as_slice());
                build_matmul(g, a, group.roots[0], epi)?
            }
        };
        debug_assert!(gi < part.groups.len());
        out.push(built);
    }
    Ok(out)
}

fn stores(a: &Alloc, n: NodeId) -> Emit<&[crate::kernel::BufferId]> {
    a.stores
        .get(&n)
        .map(|v| v.as_slice())
        .ok_or_else(|| Fail::Error(CompileError::Internal(format!("root {n} has no buffer"))))
}

fn build_loop(g: &Graph, a: &Alloc, roots: &[NodeId], dom: &LoopDom) -> Emit<Built> {
    let (domain, outer) = match dom {
        LoopDom::Flat(s) => (Domain::Flat, s.dims().to_vec()),
        LoopDom::Fold(n) => (Domain::Fold(*n), g.node(*n).shape().dims().to_vec()),
        LoopDom::Reduce { full, axes } => (
            Domain::Reduce {
                full: full.clone(),
                axes: axes.clone(),
            },
            (0..full.rank())
                .filter(|x| !axes.contains(x))
                .map(|x| full.dims()[x])
                .collect(),
        ),
    };
    let mut b = KernelBuilder::new(g, homes(a), roots, domain, outer.clone());
    let no = outer.len();
    let reduces;
    match dom {
        LoopDom::Flat(_) | LoopDom::Fold(_) => {
            b.open_stage(Vec::new());
            for &r in roots {
                b.store(r, &KernelBuilder::vars(0, no), stores(a, r)?)?;
            }
            reduces = matches!(dom, LoopDom::Fold(_));
        }
        LoopDom::Reduce { full, axes } => {
            reduces = true;
            let (full_roots, row_roots): (Vec<NodeId>, Vec<NodeId>) =
                roots.iter().partition(|&&r| g.node(r).shape() == full);
            if !full_roots.is_empty() {
                b.open_stage(axes.iter().map(|&x| full.dims()[x]).collect());
                let (mut ko, mut ki) = (0, 0);
                let idx: Vec<IndexExpr> = (0..full.rank())
                    .map(|x| {
                        if axes.contains(&x) {
                            ki += 1;
                            IndexExpr::Var(no + ki - 1)
                        } else {
                            ko += 1;
                            IndexExpr::Var(ko - 1)
                        }
                    })
                    .collect();
                for &r in &full_roots {
                    b.store(r, &idx, stores(a, r)?)?;
                }
            }
            if !row_roots.is_empty() {
                b.open_stage(Vec::new());
                let flat = ravel(&KernelBuilder::vars(0, no), &outer);
                for &r in &row_roots {
                    let idx = unravel(&flat, g.node(r).shape().dims());
                    b.store(r, &idx, stores(a, r)?)?;
                }
            }
        }
    }
    let key = roots[0];
    let placeholder = String::new();
    let (mut k, nodes) = b.finish(placeholder);
    k.name = kernel_name(g, &nodes, reduces, false);
    Ok(Built {
        kernel: Kernel::Loop(k),
        key,
    })
}

/// The buffer and strides of a matmul operand: a chain of strided views over a buffer.
fn operand(g: &Graph, a: &Alloc, x: NodeId, batch_rank: usize) -> Emit<(MatOperand, Vec<NodeId>)> {
    let mut chain = Vec::new();
    let mut cur = x;
    while !a.home.contains_key(&cur) {
        let node = g.node(cur);
        if !is_strided_view(&node.op) {
            // A runtime scalar cannot be materialised: the view above it is.
            let what = if a.slot.contains_key(&cur) {
                *chain
                    .last()
                    .ok_or_else(|| CompileError::Internal("matmul operand is a scalar".into()))?
            } else {
                cur
            };
            return Err(Fail::Materialize(
                what,
                "matmul operands are read as strided buffers".into(),
            ));
        }
        chain.push(cur);
        cur = node.inputs[0];
    }
    let mut lay = Strided::contiguous(g.node(cur).shape());
    for &v in chain.iter().rev() {
        let node = g.node(v);
        lay = lay
            .apply(&node.op, node.shape(), g.node(node.inputs[0]).shape())
            .ok_or_else(|| Fail::Materialize(v, format!("this {} of a strided view needs a copy", node.op.name())))?;
    }
    let dims = g.node(x).shape().dims().to_vec();
    let r = dims.len();
    let xb = r - 2;
    let batch_strides = (0..batch_rank)
        .map(|i| {
            let j = i as isize - (batch_rank as isize - xb as isize);
            if j < 0 || dims[j as usize] == 1 {
                0
            } else {
                lay.strides[j as usize] as isize
            }
        })
        .collect();
    let op = MatOperand {
        buf: a.home[&cur],
        offset: usize::try_from(lay.offset).map_err(|_| CompileError::Internal("negative view offset".into()))?,
        batch_strides,
        row_stride: lay.strides[r - 2] as isize,
        col_stride: lay.strides[r - 1] as isize,
    };
    Ok((op, chain))
}

fn build_matmul(g: &Graph, a: &Alloc, mm: NodeId, epilogue: Option<&[NodeId]>) -> Emit<Built> {
    let node = g.node(mm);
    let out_dims = node.shape().dims().to_vec();
    let r = out_dims.len();
    let batch = out_dims[..r - 2].to_vec();
    let kdim = *g
        .node(node.inputs[0])
        .shape()
        .dims()
        .last()
        .expect("matmul operands have rank >= 2");
    let (opa, chain_a) = operand(g, a, node.inputs[0], batch.len())?;
    let (opb, chain_b) = operand(g, a, node.inputs[1], batch.len())?;
    let mm_stores = stores(a, mm)?;
    let out = mm_stores[0];
    let mut nodes: BTreeSet<NodeId> = chain_a.into_iter().chain(chain_b).collect();
    nodes.insert(mm);
    let roots = epilogue.unwrap_or(&[]);
    let epi = if roots.is_empty() && mm_stores.len() == 1 {
        None
    } else {
        let mut b = KernelBuilder::new(g, homes(a), roots, Domain::Flat, out_dims.clone());
        b.set_epilogue_of(mm);
        b.open_stage(Vec::new());
        let vars = KernelBuilder::vars(0, r);
        if mm_stores.len() > 1 {
            b.store(mm, &vars, &mm_stores[1..])?;
        }
        for &root in roots {
            b.store(root, &vars, stores(a, root)?)?;
        }
        let (k, enodes) = b.finish(String::new());
        nodes.extend(enodes);
        Some(k)
    };
    let name = kernel_name(g, &nodes, false, true);
    let epilogue = epi.map(|mut k| {
        k.name = format!("{name}_epilogue");
        k
    });
    Ok(Built {
        kernel: Kernel::MatMul(MatMulKernel {
            name,
            nodes: nodes.iter().copied().collect(),
            batch,
            m: out_dims[r - 2],
            n: out_dims[r - 1],
            k: kdim,
            a: opa,
            b: opb,
            out,
            epilogue,
        }),
        key: mm,
    })
}

/// A readable kernel name from the ops it computes: a single op keeps its name;
/// otherwise `reduce_` (kernels with reductions, reductions named first) or `fused_`
/// followed by the distinct op names in graph order, views left out.
pub(crate) fn kernel_name(g: &Graph, nodes: &BTreeSet<NodeId>, reduces: bool, matmul: bool) -> String {
    let ops: Vec<&kiln_ir::Op> = nodes.iter().map(|&n| &g.node(n).op).collect();
    let computing: Vec<&kiln_ir::Op> = ops
        .iter()
        .copied()
        .filter(|op| !op.is_movement() && !matches!(op, kiln_ir::Op::Const { .. }))
        .collect();
    let shown = if computing.is_empty() { ops.clone() } else { computing };
    if shown.len() == 1 {
        return shown[0].name().to_string();
    }
    let mut names: Vec<&str> = Vec::new();
    let first: Vec<&kiln_ir::Op> = if matmul {
        shown
            .iter()
            .copied()
            .filter(|op| matches!(op, kiln_ir::Op::MatMul))
            .collect()
    } else {
        shown
            .iter()
            .copied()
            .filter(|op| op.is_reduction() || matches!(op, kiln_ir::Op::Fold2d { .. }))
            .collect()
    };
    for op in first.iter().chain(shown.iter()) {
        let name = op.name().strip_prefix("reduce_").unwrap_or(op.name());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let more = names.len() > 6;
    names.truncate(6);
    let prefix = if reduces && !matmul { "reduce" } else { "fused" };
    let mut s = format!("{prefix}_{}", names.join("_"));
    if more {
        s.push_str("_etc");
    }
    s
}
