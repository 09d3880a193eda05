//! What this machine and node have, for the hello and the heartbeats:
//! capabilities (providers and their features), memory, load and disks.

use std::path::Path;

use crate::node::spec::{installed_version, is_installed};
use crate::protocol::{Capabilities, DiskFree, PROTOCOL_VERSION, ProviderInfo, ProviderKind, Resources};
use crate::provider::acp::{AgentConfig, PRESETS};

/// What the node can do: sent in every hello.
pub(super) fn capabilities() -> Capabilities {
    let (_, total_memory) = memory();
    let git_version =
        std::process::Command::new("git").arg("--version").output().ok().filter(|output| output.status.success()).map(
            |output| String::from_utf8_lossy(&output.stdout).trim().trim_start_matches("git version ").to_string(),
        );
    Capabilities {
        cortex_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: PROTOCOL_VERSION,
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |cpus| cpus.get() as u32),
        memory_bytes: total_memory,
        git_version,
        providers: providers(),
    }
}

/// The providers this node can run: `fake` always, `codex` and `claude`
/// when their binary answers `--version` (`CORTEX_CODEX_BIN`,
/// `CORTEX_CLAUDE_BIN`, else on the PATH), each ACP preset when its
/// program is there (agents a repository declares are its own).
fn providers() -> Vec<ProviderInfo> {
    let info = |kind: ProviderKind, version: Option<String>| ProviderInfo {
        name: kind.as_str().into(),
        version,
        features: kind.features().iter().map(|feature| feature.to_string()).collect(),
    };
    let mut providers = vec![info(ProviderKind::Fake, Some(env!("CARGO_PKG_VERSION").into()))];
    let codex = std::env::var("CORTEX_CODEX_BIN").unwrap_or_else(|_| "codex".into());
    if let Some(version) = installed_version(ProviderKind::Codex, Path::new(&codex)) {
        providers.push(info(ProviderKind::Codex, Some(version.clone())));
        providers.push(info(ProviderKind::CodexExec, Some(version)));
    }
    let claude = std::env::var("CORTEX_CLAUDE_BIN").unwrap_or_else(|_| "claude".into());
    if let Some(version) = installed_version(ProviderKind::Claude, Path::new(&claude)) {
        providers.push(info(ProviderKind::Claude, Some(version)));
    }
    for name in PRESETS {
        let Some(agent) = AgentConfig::preset(name) else { continue };
        if agent.command.first().is_some_and(|program| is_installed(Path::new(program))) {
            providers.push(ProviderInfo { name: name.into(), version: None, features: agent_features(&agent) });
        }
    }
    providers
}

/// What Cortex can count on from an ACP agent: the protocol's own, and
/// what its preset or `[agents.NAME]` adds.
pub(crate) fn agent_features(agent: &AgentConfig) -> Vec<String> {
    let mut features: Vec<String> = ProviderKind::Acp.features().iter().map(|feature| feature.to_string()).collect();
    features.extend(agent.features.iter().filter(|feature| !features.contains(feature)).cloned().collect::<Vec<_>>());
    features
}

/// Load, free memory, and free disk under each workspace root.
pub(super) fn resources(roots: &[String]) -> Resources {
    let (free_memory_bytes, total_memory_bytes) = memory();
    let Ok(disks) = sysinfo::Disks::new_with_refreshed_list() else {
        return Resources { load1: load(), free_memory_bytes, total_memory_bytes, disks: Vec::new() };
    };
    let disks = roots
        .iter()
        .filter_map(|root| {
            let disk = disks
                .iter()
                .filter(|disk| Path::new(root).starts_with(disk.mount_point()))
                .max_by_key(|disk| disk.mount_point().as_os_str().len())?;
            Some(DiskFree { path: root.clone(), free_bytes: disk.available_space(), total_bytes: disk.total_space() })
        })
        .collect();
    Resources { load1: load(), free_memory_bytes, total_memory_bytes, disks }
}

/// Available and total memory in bytes; zeros where the OS will not say.
fn memory() -> (u64, u64) {
    match sysinfo::System::new() {
        Ok(mut system) => {
            system.refresh_memory();
            (system.available_memory(), system.total_memory())
        }
        Err(_) => (0, 0),
    }
}

fn load() -> f64 {
    sysinfo::System::load_average().map_or(0.0, |load| load.one)
}
