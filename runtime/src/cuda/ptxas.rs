//! Reading the ptxas report (`--ptxas-options=-v`) out of an NVRTC program log: per
//! kernel, the registers, spill stores/loads, stack frame and shared memory. Owns the
//! parsing only; it never runs a compiler.
//!
//! The lines it understands (NVRTC 12.x and ptxas agree):
//! ```text
//! ptxas info    : Compiling entry function 'k0_adam' for 'sm_90'
//! ptxas info    : Function properties for k0_adam
//!     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
//! ptxas info    : Used 32 registers, used 0 barriers, 380 bytes cmem[0]
//! ptxas info    : Used 40 registers, 8704 bytes smem, 400 bytes cmem[0]
//! ```

/// Resource use of one compiled kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub name: String,
    pub registers: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
    pub stack_frame: u32,
    pub shared_bytes: u32,
}

/// The number right before `unit` in `s` (e.g. `number_before("Used 32 registers", "registers")`).
fn number_before(s: &str, unit: &str) -> Option<u32> {
    let at = s.find(unit)?;
    s[..at].split_whitespace().next_back()?.parse().ok()
}

fn quoted_or_last_word(s: &str) -> String {
    if let Some(a) = s.find('\'') {
        if let Some(b) = s[a + 1..].find('\'') {
            return s[a + 1..a + 1 + b].to_string();
        }
    }
    s.split_whitespace().last().unwrap_or("").to_string()
}

/// Every entry function the log reports on, in log order.
pub fn parse_ptxas_log(log: &str) -> Vec<KernelStats> {
    let mut out: Vec<KernelStats> = Vec::new();
    // The function the next "Used N registers" line belongs to, and the one the next
    // "bytes stack frame" line belongs to (they differ for non-inlined device functions).
    let mut entry: Option<usize> = None;
    let mut props: Option<usize> = None;
    let find_or_add = |out: &mut Vec<KernelStats>, name: String| -> usize {
        match out.iter().position(|k| k.name == name) {
            Some(i) => i,
            None => {
                out.push(KernelStats {
                    name,
                    ..Default::default()
                });
                out.len() - 1
            }
        }
    };
    for line in log.lines() {
        let l = line.trim();
        if let Some(rest) = l.split("Compiling entry function").nth(1) {
            let name = quoted_or_last_word(rest.split(" for ").next().unwrap_or(rest));
            entry = Some(find_or_add(&mut out, name));
        } else if let Some(rest) = l.split("Function properties for").nth(1) {
            let name = rest.trim().to_string();
            // Non-entry (device) functions get properties too; they are not kernels.
            props = out.iter().position(|k| k.name == name);
        } else if l.contains("bytes stack frame") {
            if let Some(i) = props.take() {
                let k = &mut out[i];
                k.stack_frame = number_before(l, "bytes stack frame").unwrap_or(0);
                k.spill_stores = number_before(l, "bytes spill stores").unwrap_or(0);
                k.spill_loads = number_before(l, "bytes spill loads").unwrap_or(0);
            }
        } else if l.contains("Used") && l.contains("registers") {
            if let Some(i) = entry {
                let k = &mut out[i];
                k.registers = number_before(l, "registers").unwrap_or(0);
                k.shared_bytes = number_before(l, "bytes smem").unwrap_or(0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_spills_and_smem() {
        let log = "ptxas info    : 0 bytes gmem\n\
ptxas info    : Compiling entry function 'k0_adam' for 'sm_90'\n\
ptxas info    : Function properties for k0_adam\n\
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
ptxas info    : Used 32 registers, used 0 barriers, 380 bytes cmem[0]\n\
ptxas info    : Compiling entry function 'k1_mm' for 'sm_90'\n\
ptxas info    : Function properties for k1_mm\n\
    16 bytes stack frame, 36 bytes spill stores, 32 bytes spill loads\n\
ptxas info    : Used 24 registers, used 1 barriers, 8320 bytes smem, 400 bytes cmem[0]\n";
        let s = parse_ptxas_log(log);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            KernelStats {
                name: "k0_adam".into(),
                registers: 32,
                ..Default::default()
            }
        );
        assert_eq!((s[1].registers, s[1].spill_stores, s[1].spill_loads), (24, 36, 32));
        assert_eq!((s[1].stack_frame, s[1].shared_bytes), (16, 8320));
    }

    #[test]
    fn device_function_properties_do_not_leak_into_kernels() {
        let log = "ptxas info    : Function properties for helper\n\
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\n\
ptxas info    : Compiling entry function 'k0' for 'sm_90'\n\
ptxas info    : Function properties for k0\n\
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
ptxas info    : Used 10 registers\n";
        let s = parse_ptxas_log(log);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].registers, s[0].spill_stores), (10, 0));
    }
}
