//! Where this process's cgroup is. In a container with its own cgroup namespace (Docker and
//! podman on cgroup v2) that is `/sys/fs/cgroup` itself; where gpubox runs in a cgroup of a
//! shared tree (cgroup v1 without a namespace, a systemd unit), `/proc/self/cgroup` names it and
//! its folder under the mount is read instead, so that the numbers (memory, CPU time, OOM
//! kills) are this container's and not the whole machine's.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const ROOT: &str = "/sys/fs/cgroup";

/// Whether the unified hierarchy (cgroup v2) is mounted at `/sys/fs/cgroup`.
pub fn v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// This process's folder in the hierarchy of `controller` (`""` for v2's unified one): the
/// path `/proc/self/cgroup` names under its mount when that exists, else the mount itself.
fn find(controller: &str, mount: &Path, proc_cgroup: &str) -> PathBuf {
    let path = proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        hit.then(|| path.trim_start_matches('/').to_string())
    });
    // A path that climbs out of the mount (it never should) is not followed.
    let path = path.filter(|p| !p.is_empty() && !p.split('/').any(|c| c == ".."));
    match path.map(|p| mount.join(p)) {
        Some(dir) if dir.is_dir() => dir,
        _ => mount.to_path_buf(),
    }
}

fn self_cgroup() -> String {
    std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default()
}

/// The v2 folder of this process.
pub fn unified() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| find("", Path::new(ROOT), &self_cgroup()))
}

/// The v1 folder of this process for `memory`.
pub fn v1_memory() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| find("memory", &Path::new(ROOT).join("memory"), &self_cgroup()))
}

/// The v1 folder of this process for `cpuacct` (CPU time) and `cpu` (the quota), which are
/// usually mounted together.
pub fn v1_cpu() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mount = ["cpu,cpuacct", "cpuacct,cpu", "cpuacct", "cpu"]
            .iter()
            .map(|m| Path::new(ROOT).join(m))
            .find(|p| p.is_dir())
            .unwrap_or_else(|| Path::new(ROOT).join("cpuacct"));
        find("cpuacct", &mount, &self_cgroup())
    })
}

/// Reads a file of this process's cgroup: v2's when the unified hierarchy is mounted, else
/// v1's (`v1` is the file's folder and name there).
pub fn read(v2_name: &str, v1: Option<(&Path, &str)>) -> Option<String> {
    let text = if v2() {
        std::fs::read_to_string(unified().join(v2_name)).ok()
    } else {
        v1.and_then(|(dir, name)| std::fs::read_to_string(dir.join(name)).ok())
    };
    text.map(|t| t.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_folder_is_used_only_where_it_exists() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("memory/jobs/a")).unwrap();
        let text = "12:cpu,cpuacct:/jobs/a\n4:memory:/jobs/a\n0::/user.slice/x\n";
        assert_eq!(find("memory", &root.path().join("memory"), text), root.path().join("memory/jobs/a"));
        // Docker on v1 names /docker/<id>, which its mount does not have: the mount itself.
        assert_eq!(find("memory", &root.path().join("memory"), "4:memory:/docker/abc\n"), root.path().join("memory"));
        assert_eq!(find("", root.path(), text), root.path(), "no such v2 folder here");
        std::fs::create_dir_all(root.path().join("user.slice/x")).unwrap();
        assert_eq!(find("", root.path(), text), root.path().join("user.slice/x"));
        assert_eq!(find("memory", root.path(), "0::/\n"), root.path());
    }
}
