//! `KILN_DEBUG=1..4`: run-time diagnostics for any program using kiln, read from the
//! environment when the first step is compiled (not at build time). Owns the level and
//! the messages (to stderr); it never changes what runs.
//!
//! - 1: one line per step run: kernels launched and wall time;
//! - 2: plus the step's bytes moved and effective bandwidth, and each kernel's wall time
//!   and bandwidth (CPU backend);
//! - 3: at each compile, the kernel list and every fusion boundary with its reason;
//! - 4: at each compile, the generated kernel IR.

use std::sync::OnceLock;
use std::time::Duration;

use kiln_compiler::kernel::{BufferId, Inst, Kernel, LoopKernel, Program};

/// The level from `KILN_DEBUG` (0 when unset or not a number; clamped to 4).
pub fn level() -> u8 {
    static LEVEL: OnceLock<u8> = OnceLock::new();
    *LEVEL.get_or_init(|| parse_level(std::env::var("KILN_DEBUG").ok().as_deref()))
}

/// `KILN_DEBUG`'s value as a level.
pub fn parse_level(v: Option<&str>) -> u8 {
    v.and_then(|s| s.trim().parse::<u32>().ok())
        .map(|n| n.min(4) as u8)
        .unwrap_or(0)
}

fn loop_buffers(k: &LoopKernel, reads: &mut Vec<BufferId>, writes: &mut Vec<BufferId>) {
    for s in &k.stages {
        reads.extend(s.insts.iter().filter_map(|(_, i)| match i {
            Inst::Load { buf, .. } => Some(*buf),
            _ => None,
        }));
        writes.extend(s.stores.iter().map(|st| st.buf));
    }
}

/// Bytes a step moves: every buffer each kernel reads, once per kernel, plus every
/// buffer it writes, 4 bytes per element (the count of `kiln inspect --stage fusion`).
pub fn step_bytes(p: &Program) -> u64 {
    p.kernels.iter().map(|k| kernel_bytes(p, k)).sum()
}

/// Bytes one kernel moves: each buffer it reads once, plus each buffer it writes.
pub fn kernel_bytes(p: &Program, k: &Kernel) -> u64 {
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    match k {
        Kernel::Loop(l) => loop_buffers(l, &mut reads, &mut writes),
        Kernel::MatMul(m) => {
            reads.extend([m.a.buf, m.b.buf]);
            writes.push(m.out);
            if let Some(e) = &m.epilogue {
                loop_buffers(e, &mut reads, &mut writes);
            }
            reads.retain(|&b| b != m.out);
        }
    }
    let mut total = 0u64;
    for ids in [&mut reads, &mut writes] {
        ids.sort();
        ids.dedup();
        total += ids.iter().map(|&b| p.buffer(b).len as u64 * 4).sum::<u64>();
    }
    total
}

/// Called once per compiled program made runnable (levels 3 and 4).
pub fn on_compile(p: &Program) {
    let lv = level();
    if lv >= 3 {
        eprintln!("[kiln] compiled step: {} kernels", p.launches());
        for (i, k) in p.kernels.iter().enumerate() {
            eprintln!("[kiln]   kernel {i}: {} ({} nodes)", k.name(), k.nodes().len());
        }
        for n in &p.not_fused {
            eprintln!(
                "[kiln]   not fused %{} -> %{}: {}",
                n.producer.index(),
                n.consumer.index(),
                n.reason
            );
        }
    }
    if lv >= 4 {
        eprintln!("[kiln] kernel IR:\n{p}");
    }
}

/// Called after each kernel of a step (level 2): its wall time and bandwidth.
pub fn on_kernel(p: &Program, index: usize, elapsed: Duration) {
    let k = &p.kernels[index];
    let bytes = kernel_bytes(p, k);
    let s = elapsed.as_secs_f64().max(1e-12);
    eprintln!(
        "[kiln]   kernel {index:>3} {:<44} {:>9.3} ms {:>8.2} GB/s",
        k.name(),
        s * 1e3,
        bytes as f64 / s / 1e9
    );
}

/// Called after every step run (levels 1 and 2).
pub fn on_run(p: &Program, elapsed: Duration) {
    let lv = level();
    if lv >= 1 {
        let ms = elapsed.as_secs_f64() * 1e3;
        if lv >= 2 {
            let bytes = step_bytes(p);
            let gbps = bytes as f64 / elapsed.as_secs_f64().max(1e-12) / 1e9;
            eprintln!(
                "[kiln] step: {} kernels, {ms:.3} ms, {bytes} bytes, {gbps:.2} GB/s",
                p.launches()
            );
        } else {
            eprintln!("[kiln] step: {} kernels, {ms:.3} ms", p.launches());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_clamp() {
        assert_eq!(parse_level(None), 0);
        assert_eq!(parse_level(Some("")), 0);
        assert_eq!(parse_level(Some("x")), 0);
        assert_eq!(parse_level(Some("2")), 2);
        assert_eq!(parse_level(Some(" 3 ")), 3);
        assert_eq!(parse_level(Some("9")), 4);
    }

    #[test]
    fn empty_program_moves_nothing() {
        assert_eq!(step_bytes(&Program::default()), 0);
    }
}
