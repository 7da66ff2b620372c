//! Build script of `basalt-node`: embeds deterministic build information.
//!
//! Everything emitted here depends only on the checked-out commit, the toolchain and the build
//! configuration — never on the time, the host name, or the absolute location of the checkout — so
//! two builds of the same commit with the same toolchain embed identical values (see
//! `docs/REPRODUCIBLE_BUILDS.md`). The values reach the crate as `BASALT_BUILD_*` environment
//! variables read by `src/build_info.rs`.
//!
//! Plain `std` only: no build dependencies, so nothing here touches `Cargo.lock`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{self, Command};

/// Placeholder for a value that cannot be determined.
const UNKNOWN: &str = "unknown";

fn main() {
    if let Err(message) = run() {
        eprintln!("error: basalt-node build script: {message}");
        process::exit(1);
    }
}

fn run() -> Result<(), String> {
    sha256_self_test()?;

    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let workspace_root = find_workspace_root(&manifest_dir)?;
    let lock_path = workspace_root.join("Cargo.lock");

    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={}", lock_path.display());
    println!("cargo::rerun-if-env-changed=BASALT_GIT_COMMIT");
    println!("cargo::rerun-if-env-changed=BASALT_GIT_DIRTY");

    let lock =
        fs::read(&lock_path).map_err(|e| format!("cannot read {}: {e}", lock_path.display()))?;
    let lock_sha256 = to_hex(&sha256(&lock));

    let (commit, dirty) = git_info(&workspace_root);
    let rustc = rustc_version();
    let target = env_var("TARGET")?;
    let profile = env_var("PROFILE")?;

    emit("BASALT_BUILD_GIT_COMMIT", &commit)?;
    emit(
        "BASALT_BUILD_GIT_DIRTY",
        if dirty { "true" } else { "false" },
    )?;
    emit("BASALT_BUILD_RUSTC", &rustc)?;
    emit("BASALT_BUILD_TARGET", &target)?;
    emit("BASALT_BUILD_PROFILE", &profile)?;
    emit("BASALT_BUILD_CARGO_LOCK_SHA256", &lock_sha256)?;
    Ok(())
}

fn env_var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|e| format!("environment variable {name} (set by cargo): {e}"))
}

/// Passes one value to the compiler as `env!(name)`.
fn emit(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.contains(['\n', '\r']) {
        return Err(format!("{name} must be one non-empty line, got {value:?}"));
    }
    println!("cargo::rustc-env={name}={value}");
    Ok(())
}

/// The nearest ancestor of the package directory that holds `Cargo.lock`.
fn find_workspace_root(manifest_dir: &Path) -> Result<PathBuf, String> {
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no Cargo.lock above {}", manifest_dir.display()))
}

/// The first line of `$RUSTC -vV`, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
fn rustc_version() -> String {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    match run_stdout(Path::new("."), &rustc, &["-vV"]) {
        Some(out) => out.lines().next().unwrap_or(UNKNOWN).trim().to_owned(),
        None => {
            println!("cargo::warning=could not run `{rustc} -vV`; rustc version is unknown");
            UNKNOWN.to_owned()
        }
    }
}

/// The commit and dirty flag: from git when the workspace root is the top of a git work tree,
/// else from `BASALT_GIT_COMMIT` / `BASALT_GIT_DIRTY` (for builds from a source tarball), else
/// `unknown` / not dirty.
fn git_info(workspace_root: &Path) -> (String, bool) {
    if let Some(commit) = git_commit(workspace_root) {
        watch_git_files(workspace_root);
        // `--no-optional-locks`: never take index.lock, so the build cannot race a parallel commit.
        let dirty = run_stdout(
            workspace_root,
            "git",
            &[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ],
        )
        .is_none_or(|out| !out.trim().is_empty());
        return (commit, dirty);
    }
    let commit = env::var("BASALT_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| is_commit_hash(c))
        .unwrap_or_else(|| UNKNOWN.to_owned());
    let dirty = env::var("BASALT_GIT_DIRTY").is_ok_and(|d| d.trim() == "true");
    (commit, dirty)
}

/// `git rev-parse HEAD`, if `workspace_root` is the top level of a git work tree (and not, say, a
/// source tarball unpacked inside some unrelated repository).
fn git_commit(workspace_root: &Path) -> Option<String> {
    let top = run_stdout(workspace_root, "git", &["rev-parse", "--show-toplevel"])?;
    let top = fs::canonicalize(top.trim()).ok()?;
    if top != fs::canonicalize(workspace_root).ok()? {
        return None;
    }
    let commit = run_stdout(workspace_root, "git", &["rev-parse", "HEAD"])?;
    let commit = commit.trim().to_ascii_lowercase();
    is_commit_hash(&commit).then_some(commit)
}

/// Reruns this script when HEAD moves (checkout, commit, reset) or the index changes (staging).
/// Only existing files are named: cargo reruns on every build for a path that does not exist.
fn watch_git_files(workspace_root: &Path) {
    let mut git_paths = vec![
        "HEAD".to_owned(),
        "logs/HEAD".to_owned(),
        "packed-refs".to_owned(),
        "index".to_owned(),
    ];
    if let Some(reference) = run_stdout(workspace_root, "git", &["symbolic-ref", "-q", "HEAD"]) {
        git_paths.push(reference.trim().to_owned());
    }
    for git_path in git_paths {
        let Some(path) = run_stdout(
            workspace_root,
            "git",
            &["rev-parse", "--git-path", &git_path],
        ) else {
            continue;
        };
        let path = workspace_root.join(path.trim());
        if path.is_file() {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }
}

fn is_commit_hash(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs `program args` in `dir`; its stdout if it succeeded and printed UTF-8.
fn run_stdout(dir: &Path, program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the SHA-256 below against FIPS 180-2 test vectors before trusting it.
fn sha256_self_test() -> Result<(), String> {
    let vectors: [(&[u8], &str); 3] = [
        (
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            b"abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
    ];
    for (input, expected) in vectors {
        let got = to_hex(&sha256(input));
        if got != expected {
            return Err(format!("SHA-256 self-test failed: {got} != {expected}"));
        }
    }
    Ok(())
}

/// SHA-256 (FIPS 180-4), so that the build needs no extra crate.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());

    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(add);
        }
    }

    let mut digest = [0u8; 32];
    for (chunk, word) in digest.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    digest
}
