//! The compiled-kernel cache: in memory (per process) and on disk (across runs), so a
//! second run skips NVRTC. Owns keys, files and lookups; compiling is the caller's
//! closure.
//!
//! Key: a stable hash of the CUDA source, the target arch, the NVRTC version, kiln's
//! version, the codegen fingerprint (`CudaOptions::fingerprint`) and the NVRTC options.
//! A disk entry is `<hash>.cu` (the source), `<hash>.key` (the key's description),
//! `<hash>.ptx`, optional `<hash>.cubin` and `<hash>.log`; a hit requires the stored
//! source and description to equal the request, so hash collisions and truncated
//! entries fall back to compiling. Files are written to a temporary name and renamed
//! (concurrent runs never see half an entry).
//!
//! Location: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln/cuda`, else
//! `$HOME/.cache/kiln/cuda`. `KILN_NO_CACHE=1` bypasses both caches. `kiln_runtime::compile`
//! uses [`KernelCache::global`] (configured from the environment once), or a disabled
//! cache when `CompileOptions::kernel_cache` is false (`kiln train --no-kernel-cache`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use kiln_ir::hash::StableHasher;

use super::error::{CudaError, Result};
use super::nvrtc::{CompileOptions, Compiled};
use super::ptxas::parse_ptxas_log;

/// Identifies one compile.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// 32 hex digits.
    pub hash: String,
    /// Every input but the source, in words.
    pub description: String,
    pub source: String,
}

impl CacheKey {
    pub fn new(source: &str, opts: &CompileOptions, nvrtc_version: (i32, i32), codegen_fingerprint: &str) -> Self {
        let description = format!(
            "kiln {}; nvrtc {}.{}; arch {}; nvrtc options {:?}; codegen: {codegen_fingerprint}",
            env!("CARGO_PKG_VERSION"),
            nvrtc_version.0,
            nvrtc_version.1,
            opts.arch,
            opts.args()
        );
        let mut a = StableHasher::default();
        a.str(&description);
        a.str(source);
        let mut b = StableHasher::default();
        b.str("kiln-cuda-cache");
        b.str(source);
        b.str(&description);
        CacheKey {
            hash: format!("{:016x}{:016x}", a.finish(), b.finish()),
            description,
            source: source.to_string(),
        }
    }
}

/// Where a result came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Memory,
    Disk,
    /// Compiled now (and stored).
    Compiled,
    /// Compiled now; caching is off.
    Bypassed,
}

/// In-memory and on-disk kernel cache.
pub struct KernelCache {
    dir: Option<PathBuf>,
    enabled: bool,
    memory: Mutex<HashMap<String, Arc<Compiled>>>,
}

impl KernelCache {
    /// A cache in `dir` (`None`: memory only).
    pub fn new(dir: Option<PathBuf>) -> Self {
        KernelCache {
            dir,
            enabled: true,
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// A cache that never stores or finds anything.
    pub fn disabled() -> Self {
        KernelCache {
            dir: None,
            enabled: false,
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// Configured from the environment (see the module doc).
    pub fn from_env() -> Self {
        if std::env::var("KILN_NO_CACHE").is_ok_and(|v| !v.is_empty() && v != "0") {
            return Self::disabled();
        }
        Self::new(default_dir())
    }

    /// The process-wide cache configured from the environment on first use (what
    /// `kiln_runtime::compile` uses unless told to bypass caching).
    pub fn global() -> &'static KernelCache {
        static CACHE: OnceLock<KernelCache> = OnceLock::new();
        CACHE.get_or_init(KernelCache::from_env)
    }

    /// Whether lookups and stores happen at all (`false` for [`KernelCache::disabled`]).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cached result for `key`, or `compile()`'s (then stored).
    pub fn get_or_compile(
        &self,
        key: &CacheKey,
        compile: impl FnOnce() -> Result<Compiled>,
    ) -> Result<(Arc<Compiled>, CacheOutcome)> {
        if !self.enabled {
            return Ok((Arc::new(compile()?), CacheOutcome::Bypassed));
        }
        if let Some(c) = self.memory.lock().unwrap_or_else(|e| e.into_inner()).get(&key.hash) {
            return Ok((c.clone(), CacheOutcome::Memory));
        }
        if let Some(dir) = &self.dir {
            if let Some(c) = read_entry(dir, key) {
                let c = Arc::new(c);
                self.remember(key, &c);
                return Ok((c, CacheOutcome::Disk));
            }
        }
        let c = Arc::new(compile()?);
        if let Some(dir) = &self.dir {
            write_entry(dir, key, &c)?;
        }
        self.remember(key, &c);
        Ok((c, CacheOutcome::Compiled))
    }

    fn remember(&self, key: &CacheKey, c: &Arc<Compiled>) {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.hash.clone(), c.clone());
    }
}

/// `KILN_CACHE_DIR`, `$XDG_CACHE_HOME/kiln/cuda` or `$HOME/.cache/kiln/cuda`.
pub fn default_dir() -> Option<PathBuf> {
    let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("KILN_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("kiln").join("cuda")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("kiln").join("cuda")))
}

fn read_entry(dir: &Path, key: &CacheKey) -> Option<Compiled> {
    let f = |ext: &str| dir.join(format!("{}.{ext}", key.hash));
    if std::fs::read_to_string(f("key")).ok()? != key.description {
        return None;
    }
    if std::fs::read_to_string(f("cu")).ok()? != key.source {
        return None;
    }
    let ptx = std::fs::read_to_string(f("ptx")).ok()?;
    let log = std::fs::read_to_string(f("log")).unwrap_or_default();
    let cubin = std::fs::read(f("cubin")).ok();
    Some(Compiled {
        ptx,
        cubin,
        stats: parse_ptxas_log(&log),
        log,
    })
}

fn write_entry(dir: &Path, key: &CacheKey, c: &Compiled) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CudaError::Cache { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let put = |ext: &str, bytes: &[u8]| -> Result<()> {
        let path = dir.join(format!("{}.{ext}", key.hash));
        let tmp = dir.join(format!("{}.{ext}.tmp{}", key.hash, std::process::id()));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    };
    // The key goes last: an entry without it (an interrupted write) is never a hit.
    put("cu", key.source.as_bytes())?;
    put("ptx", c.ptx.as_bytes())?;
    put("log", c.log.as_bytes())?;
    if let Some(b) = &c.cubin {
        put("cubin", b)?;
    }
    put("key", key.description.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(ptx: &str) -> Compiled {
        Compiled {
            ptx: ptx.into(),
            cubin: Some(vec![1, 2, 3]),
            log: "ptxas info    : Compiling entry function 'k' for 'sm_90'\nptxas info    : Used 7 registers\n".into(),
            stats: vec![],
        }
    }

    #[test]
    fn keys_depend_on_every_input() {
        let o = CompileOptions::for_arch("sm_90");
        let k = CacheKey::new("src", &o, (12, 9), "flags");
        assert_eq!(k, CacheKey::new("src", &o, (12, 9), "flags"));
        assert_eq!(k.hash.len(), 32);
        assert_ne!(k.hash, CacheKey::new("src2", &o, (12, 9), "flags").hash);
        assert_ne!(
            k.hash,
            CacheKey::new("src", &CompileOptions::for_arch("sm_80"), (12, 9), "flags").hash
        );
        assert_ne!(k.hash, CacheKey::new("src", &o, (12, 8), "flags").hash);
        assert_ne!(k.hash, CacheKey::new("src", &o, (12, 9), "flags2").hash);
        let fast = CompileOptions {
            fast_math: true,
            ..o.clone()
        };
        assert_ne!(k.hash, CacheKey::new("src", &fast, (12, 9), "flags").hash);
    }

    #[test]
    fn memory_then_disk_then_bypass() {
        let dir = tempfile::tempdir().unwrap();
        let key = CacheKey::new("src", &CompileOptions::for_arch("sm_90"), (12, 9), "f");
        let cache = KernelCache::new(Some(dir.path().to_path_buf()));
        let (c, how) = cache.get_or_compile(&key, || Ok(fake("ptx1"))).unwrap();
        assert_eq!((c.ptx.as_str(), how), ("ptx1", CacheOutcome::Compiled));
        let (_, how) = cache.get_or_compile(&key, || panic!("must not compile")).unwrap();
        assert_eq!(how, CacheOutcome::Memory);
        // a fresh process: only the disk entry is left
        let cache2 = KernelCache::new(Some(dir.path().to_path_buf()));
        let (c, how) = cache2.get_or_compile(&key, || panic!("must not compile")).unwrap();
        assert_eq!(how, CacheOutcome::Disk);
        assert_eq!(c.cubin.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(c.stats.len(), 1);
        assert_eq!(c.stats[0].registers, 7);
        // a corrupted entry (different stored source) is a miss, not a wrong hit
        std::fs::write(dir.path().join(format!("{}.cu", key.hash)), "other").unwrap();
        let cache3 = KernelCache::new(Some(dir.path().to_path_buf()));
        let (c, how) = cache3.get_or_compile(&key, || Ok(fake("ptx2"))).unwrap();
        assert_eq!((c.ptx.as_str(), how), ("ptx2", CacheOutcome::Compiled));
        let off = KernelCache::disabled();
        let (_, how) = off.get_or_compile(&key, || Ok(fake("ptx3"))).unwrap();
        assert_eq!(how, CacheOutcome::Bypassed);
        let (_, how) = off.get_or_compile(&key, || Ok(fake("ptx3"))).unwrap();
        assert_eq!(how, CacheOutcome::Bypassed);
    }

    #[test]
    fn compile_errors_are_not_cached() {
        let key = CacheKey::new("bad", &CompileOptions::for_arch("sm_90"), (12, 9), "f");
        let cache = KernelCache::new(None);
        let e = cache.get_or_compile(&key, || Err(CudaError::NoDriver));
        assert!(e.is_err());
        let (_, how) = cache.get_or_compile(&key, || Ok(fake("p"))).unwrap();
        assert_eq!(how, CacheOutcome::Compiled);
    }
}
