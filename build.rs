//! Stamps the version (package version + git revision when available).
//! Later issues embed `web-ui/` and `sounds/` here too.
use std::process::Command;

fn main() {
    let pkg = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let version = match rev {
        Some(r) => format!("{pkg}+{r}"),
        None => pkg,
    };
    println!("cargo:rustc-env=HAKODEN_VERSION={version}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    // HEAD names a branch; the branch's ref file is what changes on every commit.
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{r}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
