//! The GPUs' readings: NVML (`libnvidia-ml.so.1`, the driver's own library, loaded at run time
//! so that gpubox builds and runs without CUDA), else `nvidia-smi`, else none.
//!
//! NVML's calls, their `_v2` names and its structures are from its header (`nvml.h`, as copied in
//! NVIDIA/go-nvml; docs/research/alerts-idle.md §4). `nvidia-smi`'s CSV: one line per GPU,
//! fields separated by `, `, `[N/A]` or `[Not Supported]` for what a card does not report.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};

use serde::Serialize;

/// One GPU at one moment. `None`: the card does not report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuReading {
    pub index: u32,
    pub name: String,
    /// Percent of the last sample period in which a kernel ran.
    pub utilization: Option<f32>,
    pub memory_used: Option<u64>,
    pub memory_total: Option<u64>,
    /// Degrees Celsius.
    pub temperature: Option<f32>,
    /// Watts.
    pub power: Option<f32>,
}

/// The query `nvidia-smi` is asked, in the order [`parse_smi`] reads.
pub const SMI_QUERY: &str =
    "--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw";

/// `0, NVIDIA H100 80GB HBM3, 3, 1024, 81559, 40, 70.12` per line: MiB for memory, W for power.
pub fn parse_smi(text: &str) -> Vec<GpuReading> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 6 {
                return None;
            }
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<f32>().ok()).filter(|v| v.is_finite());
            let mib = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).map(|m| (m * 1048576.0) as u64);
            Some(GpuReading {
                index: f[0].parse().ok()?,
                name: f[1].to_string(),
                utilization: num(2),
                memory_used: mib(3),
                memory_total: mib(4),
                temperature: num(5),
                power: num(6),
            })
        })
        .collect()
}

type Device = *mut c_void;
type Ret = c_int;

#[repr(C)]
#[derive(Default)]
struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

#[repr(C)]
#[derive(Default)]
struct Memory {
    total: u64,
    free: u64,
    used: u64,
}

/// NVML's functions, looked up in the library once.
#[derive(Clone, Copy)]
struct Fns {
    init: unsafe extern "C" fn() -> Ret,
    shutdown: unsafe extern "C" fn() -> Ret,
    error_string: unsafe extern "C" fn(Ret) -> *const c_char,
    count: unsafe extern "C" fn(*mut c_uint) -> Ret,
    handle: unsafe extern "C" fn(c_uint, *mut Device) -> Ret,
    name: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> Ret,
    utilization: unsafe extern "C" fn(Device, *mut Utilization) -> Ret,
    memory: unsafe extern "C" fn(Device, *mut Memory) -> Ret,
    temperature: unsafe extern "C" fn(Device, c_int, *mut c_uint) -> Ret,
    power: unsafe extern "C" fn(Device, *mut c_uint) -> Ret,
}

impl Fns {
    /// Looks every function up by the name nvml.h gives it (the `_v2` ones where the header's
    /// plain name is a macro for it).
    ///
    /// # Safety
    /// `lib` must be a live handle from dlopen of NVML: each symbol is taken to have the
    /// signature nvml.h declares for it.
    // Each transmute's target is the type of the field it fills, written once in `Fns`.
    #[allow(clippy::missing_transmute_annotations)]
    unsafe fn find(lib: *mut c_void) -> Result<Fns, String> {
        let sym = |name: &CStr| -> Result<*mut c_void, String> {
            // SAFETY: `lib` is live (the caller's promise); the name is NUL-terminated.
            let p = unsafe { libc::dlsym(lib, name.as_ptr()) };
            if p.is_null() {
                Err(format!("libnvidia-ml.so.1 has no {}", name.to_string_lossy()))
            } else {
                Ok(p)
            }
        };
        macro_rules! f {
            ($name:literal) => {
                // SAFETY: the symbol is NVML's function of that name (see above).
                unsafe { std::mem::transmute::<*mut c_void, _>(sym($name)?) }
            };
        }
        Ok(Fns {
            init: f!(c"nvmlInit_v2"),
            shutdown: f!(c"nvmlShutdown"),
            error_string: f!(c"nvmlErrorString"),
            count: f!(c"nvmlDeviceGetCount_v2"),
            handle: f!(c"nvmlDeviceGetHandleByIndex_v2"),
            name: f!(c"nvmlDeviceGetName"),
            utilization: f!(c"nvmlDeviceGetUtilizationRates"),
            memory: f!(c"nvmlDeviceGetMemoryInfo"),
            temperature: f!(c"nvmlDeviceGetTemperature"),
            power: f!(c"nvmlDeviceGetPowerUsage"),
        })
    }

    fn error(&self, r: Ret) -> String {
        // SAFETY: nvmlErrorString returns a static string for any code.
        let p = unsafe { (self.error_string)(r) };
        if p.is_null() {
            format!("error {r}")
        } else {
            // SAFETY: non-null, NUL-terminated, static.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }
}

/// NVML, loaded and initialised; shut down and let go when dropped.
pub struct Nvml {
    lib: *mut c_void,
    f: Fns,
}

// SAFETY: NVML's calls are thread-safe (its documentation says so); the handle and the function
// pointers are plain addresses. gpubox calls it from one sampling task at a time anyway.
unsafe impl Send for Nvml {}
unsafe impl Sync for Nvml {}

const LIBRARY: &CStr = c"libnvidia-ml.so.1";

impl Nvml {
    /// Loads and initialises NVML; why not, when it cannot (no driver here is the usual case).
    pub fn load() -> Result<Nvml, String> {
        // SAFETY: dlopen with a constant, NUL-terminated name; the result is checked.
        let lib = unsafe { libc::dlopen(LIBRARY.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if lib.is_null() {
            return Err("libnvidia-ml.so.1 is not installed (no NVIDIA driver in this container)".into());
        }
        // SAFETY: `lib` is the live handle just opened.
        let started = unsafe { Fns::find(lib) }.and_then(|f| {
            // SAFETY: NVML's init, no arguments.
            match unsafe { (f.init)() } {
                0 => Ok(f),
                r => Err(format!("NVML did not start: {}", f.error(r))),
            }
        });
        match started {
            Ok(f) => Ok(Nvml { lib, f }),
            Err(e) => {
                // SAFETY: nothing of the library is kept (NVML was not initialised).
                unsafe { libc::dlclose(lib) };
                Err(e)
            }
        }
    }

    /// Every GPU's readings now; an error only when the count itself cannot be read.
    pub fn read(&self) -> Result<Vec<GpuReading>, String> {
        let mut n: c_uint = 0;
        // SAFETY: a valid out-pointer.
        let f = &self.f;
        let r = unsafe { (f.count)(&mut n) };
        if r != 0 {
            return Err(format!("NVML could not count the GPUs: {}", f.error(r)));
        }
        let mut out = Vec::new();
        for i in 0..n.min(64) {
            let mut dev: Device = std::ptr::null_mut();
            // SAFETY: valid out-pointers throughout; buffers sized as passed.
            unsafe {
                if (f.handle)(i, &mut dev) != 0 {
                    continue;
                }
                let mut buf = [0u8; 96];
                let named = (f.name)(dev, buf.as_mut_ptr().cast::<c_char>(), buf.len() as c_uint) == 0;
                // Read up to its NUL, within the buffer whatever the library wrote.
                let name = match CStr::from_bytes_until_nul(&buf) {
                    Ok(n) if named => n.to_string_lossy().into_owned(),
                    _ => format!("GPU {i}"),
                };
                let mut u = Utilization::default();
                let util = ((f.utilization)(dev, &mut u) == 0).then_some(u.gpu as f32);
                let mut m = Memory::default();
                let mem = ((f.memory)(dev, &mut m) == 0).then_some((m.used, m.total));
                let mut t: c_uint = 0;
                let temp = ((f.temperature)(dev, 0, &mut t) == 0).then_some(t as f32);
                let mut p: c_uint = 0;
                let power = ((f.power)(dev, &mut p) == 0).then_some(p as f32 / 1000.0);
                out.push(GpuReading {
                    index: i,
                    name,
                    utilization: util,
                    memory_used: mem.map(|m| m.0),
                    memory_total: mem.map(|m| m.1),
                    temperature: temp,
                    power,
                });
            }
        }
        Ok(out)
    }
}

impl Drop for Nvml {
    fn drop(&mut self) {
        // SAFETY: initialised once in `load`, shut down once here; the library outlives the call.
        unsafe {
            (self.f.shutdown)();
            libc::dlclose(self.lib);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smi_lines_parse_with_n_a_and_not_supported_fields() {
        let g = parse_smi(
            "0, NVIDIA H100 80GB HBM3, 37, 1234, 81559, 45, 70.12\n\
             1, NVIDIA A100, [N/A], 0, 40960, 35, [Not Supported]\n\
             2, Old card, 5, 10, 20, 30\n\
             bad line\n",
        );
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].utilization, Some(37.0));
        assert_eq!(g[0].memory_used, Some(1234 << 20));
        assert_eq!(g[0].power, Some(70.12));
        assert_eq!((g[1].utilization, g[1].power, g[1].temperature), (None, None, Some(35.0)));
        assert_eq!((g[2].name.as_str(), g[2].power), ("Old card", None));
    }

    #[test]
    fn without_a_driver_nvml_says_why() {
        // This machine has no NVIDIA driver; where one is, the readings must make sense.
        match Nvml::load() {
            Err(e) => assert!(e.contains("libnvidia-ml") || e.contains("NVML"), "{e}"),
            Ok(nvml) => {
                for g in nvml.read().unwrap() {
                    assert!(g.memory_used <= g.memory_total);
                }
            }
        }
    }
}
