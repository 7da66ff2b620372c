//! What the running binary was built from, embedded at compile time by `node/build.rs`.
//!
//! The values are deterministic for a given commit and toolchain (no timestamps, no absolute paths),
//! so they are part of what a reproducible build reproduces (see `docs/REPRODUCIBLE_BUILDS.md`).
//! One [`BuildInfo`] feeds every place that reports it: `basalt version --long`, the `/status` RPC
//! and the `build_info` metric (whose labels are [`BuildInfo::fields`]).

use std::fmt::{self, Write as _};

/// The placeholder for a value that could not be determined at build time.
pub const UNKNOWN: &str = "unknown";

/// What the binary was built from. Obtain it with [`BuildInfo::current`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// The package version, e.g. `0.1.0`.
    pub version: &'static str,
    /// The full git commit hash (lower-case hex), or [`UNKNOWN`].
    pub git_commit: &'static str,
    /// Whether tracked files differed from `git_commit` when the build script last ran.
    pub git_dirty: bool,
    /// The compiler, as the first line of `rustc -vV`, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
    pub rustc: &'static str,
    /// The target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub target: &'static str,
    /// The cargo profile's base: `release` or `debug`.
    pub profile: &'static str,
    /// SHA-256 of the workspace's `Cargo.lock` (64 lower-case hex digits, as `sha256sum` prints).
    pub cargo_lock_sha256: &'static str,
}

/// The number of entries [`BuildInfo::fields`] returns.
pub const FIELD_COUNT: usize = 7;

impl BuildInfo {
    /// The build information of this binary.
    pub const CURRENT: BuildInfo = BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        git_commit: env!("BASALT_BUILD_GIT_COMMIT"),
        git_dirty: str_eq(env!("BASALT_BUILD_GIT_DIRTY"), "true"),
        rustc: env!("BASALT_BUILD_RUSTC"),
        target: env!("BASALT_BUILD_TARGET"),
        profile: env!("BASALT_BUILD_PROFILE"),
        cargo_lock_sha256: env!("BASALT_BUILD_CARGO_LOCK_SHA256"),
    };

    /// The build information of this binary.
    pub const fn current() -> &'static BuildInfo {
        &Self::CURRENT
    }

    /// The first 12 hex digits of the commit (or [`UNKNOWN`]), for human-facing one-liners.
    pub fn git_commit_short(&self) -> &'static str {
        self.git_commit.get(..12).unwrap_or(self.git_commit)
    }

    /// The fields as `(name, value)` pairs, in a fixed order. The names are the keys of
    /// `basalt version --long` and `--json`, and the labels of the `build_info` metric.
    pub fn fields(&self) -> [(&'static str, &'static str); FIELD_COUNT] {
        [
            ("version", self.version),
            ("git_commit", self.git_commit),
            ("git_dirty", if self.git_dirty { "true" } else { "false" }),
            ("rustc", self.rustc),
            ("target", self.target),
            ("profile", self.profile),
            ("cargo_lock_sha256", self.cargo_lock_sha256),
        ]
    }

    /// One `name: value` line per field (the output of `basalt version --long`).
    pub fn long_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in self.fields() {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{name}: {value}");
        }
        out
    }

    /// A single-line JSON object of the fields (the output of `basalt version --json`); `git_dirty`
    /// is a JSON boolean, everything else a string.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (name, value)) in self.fields().into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, name);
            out.push(':');
            if name == "git_dirty" {
                out.push_str(value);
            } else {
                push_json_string(&mut out, value);
            }
        }
        out.push('}');
        out
    }
}

impl fmt::Display for BuildInfo {
    /// `0.1.0 (0123456789ab, rustc 1.95.0 (…), x86_64-unknown-linux-gnu, release)`, with `-dirty`
    /// after the commit when the tree was dirty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dirty = if self.git_dirty { "-dirty" } else { "" };
        write!(
            f,
            "{} ({}{dirty}, {}, {}, {})",
            self.version,
            self.git_commit_short(),
            self.rustc,
            self.target,
            self.profile
        )
    }
}

/// `a == b` in a const context.
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Appends `s` as a JSON string literal (RFC 8259 escaping).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_lower_hex(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    #[test]
    fn cargo_lock_hash_is_sha256_hex() {
        let hash = BuildInfo::current().cargo_lock_sha256;
        assert_eq!(hash.len(), 64, "{hash}");
        assert!(is_lower_hex(hash), "{hash}");
    }

    #[test]
    fn git_commit_is_full_hex_or_unknown() {
        let info = BuildInfo::current();
        let commit = info.git_commit;
        assert!(
            commit == UNKNOWN
                || ((commit.len() == 40 || commit.len() == 64) && is_lower_hex(commit)),
            "{commit}"
        );
        if commit == UNKNOWN {
            assert_eq!(info.git_commit_short(), UNKNOWN);
        } else {
            assert_eq!(info.git_commit_short().len(), 12);
            assert!(commit.starts_with(info.git_commit_short()));
        }
    }

    #[test]
    fn toolchain_target_and_profile_are_known() {
        let info = BuildInfo::current();
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(info.rustc.starts_with("rustc "), "{}", info.rustc);
        assert!(info.target.split('-').count() >= 3, "{}", info.target);
        assert!(
            ["debug", "release"].contains(&info.profile),
            "{}",
            info.profile
        );
    }

    #[test]
    fn no_value_is_empty_or_multiline() {
        for (name, value) in BuildInfo::current().fields() {
            assert!(!value.is_empty(), "{name}");
            assert!(!value.contains(['\n', '\r']), "{name}: {value:?}");
        }
    }

    fn sample() -> BuildInfo {
        BuildInfo {
            version: "1.2.3",
            git_commit: "0123456789abcdef0123456789abcdef01234567",
            git_dirty: true,
            rustc: "rustc 1.95.0 (59807616e 2026-04-14)",
            target: "x86_64-unknown-linux-gnu",
            profile: "release",
            cargo_lock_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        }
    }

    #[test]
    fn long_text_has_one_line_per_field() {
        let text = sample().long_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), FIELD_COUNT);
        assert_eq!(lines[0], "version: 1.2.3");
        assert_eq!(
            lines[1],
            "git_commit: 0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(lines[2], "git_dirty: true");
        assert_eq!(lines[3], "rustc: rustc 1.95.0 (59807616e 2026-04-14)");
    }

    #[test]
    fn json_is_flat_object_with_boolean_dirty_flag() {
        let json = sample().to_json();
        assert!(json.starts_with("{\"version\":\"1.2.3\",\"git_commit\":\"0123"));
        assert!(json.contains(",\"git_dirty\":true,"));
        assert!(json.ends_with("\"profile\":\"release\",\"cargo_lock_sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}"));
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}");
        assert_eq!(out, r#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn display_is_a_one_liner() {
        assert_eq!(
            sample().to_string(),
            "1.2.3 (0123456789ab-dirty, rustc 1.95.0 (59807616e 2026-04-14), \
             x86_64-unknown-linux-gnu, release)"
        );
    }

    #[test]
    fn const_str_eq() {
        assert!(str_eq("true", "true"));
        assert!(!str_eq("true", "false"));
        assert!(!str_eq("true", "tru"));
    }
}
