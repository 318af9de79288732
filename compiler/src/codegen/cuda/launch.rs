//! The launch table: for every generated kernel, its grid, block and the arguments the
//! runtime passes, in order. Also renders the matching C parameter list, so the two
//! can never disagree. Owns the kernel ABI; it emits no kernel bodies.
//!
//! ABI: every kernel takes, in order, one pointer per buffer it touches (ascending
//! `BufferId`; the pointer is the buffer's element 0, i.e. a view's base pointer plus
//! its offset; elements are 4 bytes: f32, i32, bool as u32 0/1), then one value per
//! runtime scalar it reads (ascending slot; f32 as `float`, i32 as `int`, bool as
//! `unsigned int` 0/1). Buffers the kernel only reads are `const`; `__restrict__` is
//! used unless two of its buffers share storage. Shared memory is static (no dynamic
//! bytes). A launch whose grid has a zero extent does no work and must be skipped.

use kiln_ir::DType;

use super::plan::{root_of, Usage};
use super::types::mem_type;
use super::CudaCodegenError;
use crate::kernel::{BufferId, Program};

/// One argument of a kernel launch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KernelArg {
    /// Device pointer to element 0 of the buffer; `writes` when the kernel stores to it.
    Buffer { id: BufferId, writes: bool },
    /// A runtime scalar passed by value (4 bytes).
    Scalar { slot: usize, dtype: DType },
}

/// How to launch one kernel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Launch {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub dynamic_shared_bytes: u32,
    pub args: Vec<KernelArg>,
}

impl Launch {
    /// Whether the launch does no work (and must not be issued).
    pub fn is_empty(&self) -> bool {
        self.grid.contains(&0)
    }
}

/// Arguments and C parameter declarations of a kernel using `usage`.
pub(crate) fn params(
    p: &Program,
    kernel: &str,
    usage: &Usage,
) -> Result<(Vec<KernelArg>, Vec<String>), CudaCodegenError> {
    let mut args = Vec::new();
    let mut decls = Vec::new();
    let spans: Vec<(BufferId, BufferId, usize, usize)> = usage
        .buffers
        .keys()
        .map(|&b| {
            let (root, off) = root_of(p, b);
            (b, root, off, p.buffers[b.0 as usize].len)
        })
        .collect();
    for (&b, &writes) in &usage.buffers {
        let buf = &p.buffers[b.0 as usize];
        let ty = mem_type(kernel, buf.dtype)?;
        let (_, root, off, len) = spans.iter().find(|s| s.0 == b).copied().unwrap_or((b, b, 0, 0));
        let aliased = spans
            .iter()
            .any(|&(o, r, oo, ol)| o != b && r == root && oo < off + len && off < oo + ol);
        let constness = if writes { "" } else { "const " };
        let restrict = if aliased { "" } else { "__restrict__ " };
        decls.push(format!("{constness}{ty}* {restrict}{b}  /* {:?} */", buf.role));
        args.push(KernelArg::Buffer { id: b, writes });
    }
    for &slot in &usage.scalars {
        let s = &p.scalars[slot];
        let ty = match s.dtype {
            DType::F32 => "float",
            DType::I32 => "int",
            DType::Bool => "unsigned int",
            t => {
                return Err(CudaCodegenError::Unsupported {
                    kernel: kernel.to_string(),
                    what: format!("runtime scalar `{}` of dtype {t}", s.name),
                })
            }
        };
        decls.push(format!("const {ty} s{slot}  /* {} */", s.name));
        args.push(KernelArg::Scalar { slot, dtype: s.dtype });
    }
    Ok((args, decls))
}

/// `ceil(items / per_block)` blocks, at most `max_blocks` (kernels are grid-stride).
pub(crate) fn blocks_for(items: u64, per_block: u64, max_blocks: u32) -> u32 {
    items.div_ceil(per_block.max(1)).min(max_blocks as u64) as u32
}

/// The kernel signature: `extern "C" __global__ void __launch_bounds__(N[, M]) name(...)`;
/// `min_blocks` (M) asks ptxas to fit that many blocks per SM (a register budget it
/// otherwise picks itself, sometimes spilling a few bytes in large matmul epilogues).
pub(crate) fn signature(name: &str, threads: u32, min_blocks: Option<u32>, decls: &[String]) -> String {
    let bounds = match min_blocks {
        Some(m) => format!("{threads}, {m}"),
        None => threads.to_string(),
    };
    if decls.is_empty() {
        return format!("extern \"C\" __global__ void __launch_bounds__({bounds}) {name}()");
    }
    let mut s = format!("extern \"C\" __global__ void __launch_bounds__({bounds}) {name}(\n");
    for (i, d) in decls.iter().enumerate() {
        s.push_str("    ");
        s.push_str(d);
        if i + 1 < decls.len() {
            s.push(',');
        }
        s.push('\n');
    }
    s.push(')');
    s
}
