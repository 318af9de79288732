//! [`MatMulKernel`] as a tiled shared-memory matmul with register blocking, whose
//! epilogue (the fused elementwise tail, e.g. bias + activation or a weight's optimizer
//! update) runs on each output element while it is still in a register. Owns the
//! matmul template; the epilogue's stages are emitted by `loops::emit_stages`.
//!
//! Tiling: a block of 256 threads computes a 64x64 output tile, stepping through k in
//! slices of 16 staged in shared memory (`As[k][row]`, `Bs[k][col]`, padded by one
//! column against bank conflicts); each thread accumulates a 4x4 register tile at rows
//! `ty + 16*i` and columns `tx + 16*j`, so output stores and epilogue loads are
//! coalesced along columns. Operands are arbitrary strided views (transposes need no
//! copy); tile loads walk the operand's contiguous dimension across threads. Blocks
//! grid-stride over tiles (grid x) and batch entries (grid y). Accumulation is f32 in
//! k order per thread (fmaf), which differs from the f64 reference only by rounding.
//! Tensor-core (mma) tiles are not generated.

use std::fmt::Write as _;

use kiln_ir::DType;

use super::body::Body;
use super::launch::{blocks_for, params, signature, Launch};
use super::loops::{emit_stages, unravel, Spread};
use super::plan::{check_buffers, index_type, Mode, Usage};
use super::types::ValueTypes;
use super::writer::Code;
use super::{comment_text, CudaCodegenError, CudaOptions};
use crate::kernel::{LoopKernel, MatMulKernel, MatOperand, Program};

/// Output tile rows / columns, k slice, threads per block, register tile side.
pub const TILE_M: usize = 64;
pub const TILE_N: usize = 64;
pub const TILE_K: usize = 16;
pub const THREADS: u32 = 256;
/// Blocks per SM requested through `__launch_bounds__`: without it ptxas keeps large
/// fused epilogues (SVRG, IVON-PoCo updates) at ~48-64 registers and spills a few bytes;
/// with it they get up to 128 registers and do not spill (NVRTC 12.9, sm_90).
pub const MIN_BLOCKS: u32 = 2;
const REG: usize = 4;
/// Threads along one side of the 16x16 thread grid.
const SIDE: usize = TILE_M / REG;

/// A short description of the tiling for cache keys and the launch table.
pub fn tiling() -> String {
    format!("tile {TILE_M}x{TILE_N}x{TILE_K}, {THREADS} threads x {MIN_BLOCKS} blocks/SM, {REG}x{REG} per thread")
}

fn signed(x: isize) -> String {
    if x < 0 {
        format!("({x})")
    } else {
        x.to_string()
    }
}

/// `var * stride` (just `var` for a unit stride).
fn scaled(var: &str, stride: isize) -> String {
    if stride == 1 {
        var.to_string()
    } else {
        format!("{var} * {}", signed(stride))
    }
}

/// `offset + Σ stride_d * i_d` over the batch variables.
fn batch_base(op: &MatOperand) -> String {
    let mut s = op.offset.to_string();
    for (d, &st) in op.batch_strides.iter().enumerate() {
        if st != 0 {
            let _ = write!(s, " + i{d} * {}", signed(st));
        }
    }
    s
}

pub(crate) fn emit_matmul_kernel(
    p: &Program,
    m: &MatMulKernel,
    name: &str,
    o: &CudaOptions,
) -> Result<(String, Launch), CudaCodegenError> {
    let bad = |detail: String| CudaCodegenError::Malformed {
        kernel: m.name.clone(),
        detail,
    };
    for (what, op) in [("a", &m.a), ("b", &m.b)] {
        if op.batch_strides.len() != m.batch.len() {
            return Err(bad(format!(
                "operand {what} has {} batch strides for {} batch dims",
                op.batch_strides.len(),
                m.batch.len()
            )));
        }
    }
    let mut usage = Usage::default();
    if let Some(e) = &m.epilogue {
        usage.add_kernel(e);
        let mut want = m.batch.clone();
        want.extend([m.m, m.n]);
        if e.outer != want {
            return Err(bad(format!(
                "epilogue outer {:?} differs from the output space {want:?}",
                e.outer
            )));
        }
    }
    usage.buffers.entry(m.a.buf).or_insert(false);
    usage.buffers.entry(m.b.buf).or_insert(false);
    usage.buffers.insert(m.out, true);
    check_buffers(p, &m.name, &usage)?;
    for id in [m.a.buf, m.b.buf, m.out] {
        let dt = p.buffers[id.0 as usize].dtype;
        if dt != DType::F32 {
            return Err(CudaCodegenError::Unsupported {
                kernel: m.name.clone(),
                what: format!("a matmul over {dt} buffer {id} (f32 only)"),
            });
        }
    }
    let (args, decls) = params(p, &m.name, &usage)?;

    // The index type must hold every operand offset as well as the output space.
    let shape_kernel = LoopKernel {
        name: m.name.clone(),
        nodes: vec![],
        outer: m.batch.iter().copied().chain([m.m, m.n, m.k]).collect(),
        stages: vec![],
    };
    let mut idx = index_type(p, &shape_kernel, &usage);
    if let Some(e) = &m.epilogue {
        if index_type(p, e, &usage) != "int" {
            idx = "long long";
        }
    }
    let reach = |op: &MatOperand, rows: usize, cols: usize| -> i128 {
        let mut hi = op.offset as i128;
        for (s, d) in op.batch_strides.iter().zip(&m.batch) {
            hi += (*s as i128).abs() * (*d as i128);
        }
        hi + (op.row_stride as i128).abs() * rows as i128 + (op.col_stride as i128).abs() * cols as i128
    };
    if reach(&m.a, m.m, m.k).max(reach(&m.b, m.k, m.n)) + (1 << 28) > i32::MAX as i128 {
        idx = "long long";
    }

    let nb = m.batch.len();
    let batch_total: u128 = m.batch.iter().map(|&d| d as u128).product();
    let tiles_m = m.m.div_ceil(TILE_M);
    let tiles_n = m.n.div_ceil(TILE_N);
    let tiles = (tiles_m * tiles_n) as u64;
    let (dm, dn, dk) = (m.m, m.n, m.k);

    let mut c = Code::new();
    let nodes = m.nodes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ");
    c.comment(format!(
        "matmul {}: out {} [batch {:?}, {dm} x {dn}] = a [{dm} x {dk}] @ b [{dk} x {dn}]   // implements {nodes}",
        comment_text(&m.name),
        m.out,
        m.batch
    ));
    c.comment(format!(
        "a = {}+{} (row stride {}, col stride {}), b = {}+{} (row stride {}, col stride {})",
        m.a.buf, m.a.offset, m.a.row_stride, m.a.col_stride, m.b.buf, m.b.offset, m.b.row_stride, m.b.col_stride
    ));
    c.comment(format!("mapping: {}", tiling()));
    if let Some(e) = &m.epilogue {
        c.comment("fused epilogue, run per output element:");
        c.comment(comment_text(&e.to_string()));
    }
    c.open(signature(name, THREADS, Some(MIN_BLOCKS), &decls));
    c.line(format!("__shared__ float As[{TILE_K}][{}];  // As[k][row]", TILE_M + 1));
    c.line(format!("__shared__ float Bs[{TILE_K}][{}];  // Bs[k][col]", TILE_N + 1));
    c.line(format!(
        "const int tx = threadIdx.x % {SIDE}, ty = threadIdx.x / {SIDE};"
    ));
    c.open(format!(
        "for ({idx} bz = blockIdx.y; bz < {batch_total}; bz += gridDim.y)"
    ));
    unravel(&mut c, idx, "bz", &m.batch, 0);
    c.line(format!("const {idx} a_base = {};", batch_base(&m.a)));
    c.line(format!("const {idx} b_base = {};", batch_base(&m.b)));
    c.open(format!("for ({idx} t = blockIdx.x; t < {tiles}; t += gridDim.x)"));
    c.line(format!(
        "const {idx} row0 = (t / {tiles_n}) * {TILE_M}, col0 = (t % {tiles_n}) * {TILE_N};"
    ));
    c.line(format!("float acc[{REG}][{REG}];"));
    c.line("#pragma unroll");
    c.open(format!("for (int i = 0; i < {REG}; ++i)"));
    c.line("#pragma unroll");
    c.line(format!("for (int j = 0; j < {REG}; ++j) acc[i][j] = 0.0f;"));
    c.close();
    c.open(format!("for ({idx} k0 = 0; k0 < {dk}; k0 += {TILE_K})"));
    // A tile: TILE_M rows x TILE_K columns; walk A's contiguous dimension across threads.
    let (ar, ak) = if m.a.col_stride == 1 {
        (format!("l / {TILE_K}"), format!("l % {TILE_K}"))
    } else {
        (format!("l % {TILE_M}"), format!("l / {TILE_M}"))
    };
    c.open(format!(
        "for (int l = threadIdx.x; l < {}; l += {THREADS})",
        TILE_M * TILE_K
    ));
    c.line(format!("const int r = {ar}, kk = {ak};"));
    c.line(format!("const {idx} gr = row0 + r, gk = k0 + kk;"));
    c.line(format!(
        "As[kk][r] = (gr < {dm} && gk < {dk}) ? {}[a_base + {} + {}] : 0.0f;",
        m.a.buf,
        scaled("gr", m.a.row_stride),
        scaled("gk", m.a.col_stride)
    ));
    c.close();
    let (bk, bc) = if m.b.col_stride == 1 {
        (format!("l / {TILE_N}"), format!("l % {TILE_N}"))
    } else {
        (format!("l % {TILE_K}"), format!("l / {TILE_K}"))
    };
    c.open(format!(
        "for (int l = threadIdx.x; l < {}; l += {THREADS})",
        TILE_N * TILE_K
    ));
    c.line(format!("const int kk = {bk}, cc = {bc};"));
    c.line(format!("const {idx} gk = k0 + kk, gc = col0 + cc;"));
    c.line(format!(
        "Bs[kk][cc] = (gk < {dk} && gc < {dn}) ? {}[b_base + {} + {}] : 0.0f;",
        m.b.buf,
        scaled("gk", m.b.row_stride),
        scaled("gc", m.b.col_stride)
    ));
    c.close();
    c.line("__syncthreads();");
    c.line("#pragma unroll");
    c.open(format!("for (int kk = 0; kk < {TILE_K}; ++kk)"));
    c.line(format!("float ar[{REG}], br[{REG}];"));
    c.line("#pragma unroll");
    c.line(format!(
        "for (int i = 0; i < {REG}; ++i) ar[i] = As[kk][ty + {SIDE} * i];"
    ));
    c.line("#pragma unroll");
    c.line(format!(
        "for (int j = 0; j < {REG}; ++j) br[j] = Bs[kk][tx + {SIDE} * j];"
    ));
    c.line("#pragma unroll");
    c.open(format!("for (int i = 0; i < {REG}; ++i)"));
    c.line("#pragma unroll");
    c.line(format!(
        "for (int j = 0; j < {REG}; ++j) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);"
    ));
    c.close();
    c.close();
    c.line("__syncthreads();");
    c.close();
    c.comment("write the tile (and run the fused epilogue on each element while it is in a register)");
    c.line("#pragma unroll");
    c.open(format!("for (int i = 0; i < {REG}; ++i)"));
    c.line("#pragma unroll");
    c.open(format!("for (int j = 0; j < {REG}; ++j)"));
    c.line(format!(
        "const {idx} row = row0 + ty + {SIDE} * i, col = col0 + tx + {SIDE} * j;"
    ));
    c.open(format!("if (row < {dm} && col < {dn})"));
    c.line("const float res = acc[i][j];");
    c.line(format!("{}[(bz * {dm} + row) * {dn} + col] = res;", m.out));
    if let Some(e) = &m.epilogue {
        let types = ValueTypes::infer(p, e)?;
        let body = Body {
            p,
            kernel: &e.name,
            types: &types,
            idx,
            forward: Some((m.out, "res".to_string())),
        };
        c.line(format!("const {idx} i{nb} = row, i{} = col;", nb + 1));
        emit_stages(
            &mut c,
            p,
            e,
            &body,
            Spread {
                mode: Mode::Thread,
                group: 1,
            },
        )?;
    }
    c.close();
    c.close();
    c.close();
    c.close();
    c.close();
    c.close();
    let launch = Launch {
        grid: [blocks_for(tiles, 1, o.max_blocks), batch_total.min(65_535) as u32, 1],
        block: [THREADS, 1, 1],
        dynamic_shared_bytes: 0,
        args,
    };
    Ok((c.finish(), launch))
}
