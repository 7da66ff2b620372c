//! `basalt version`: the version, and with `--long` / `--json` what the binary was built from.

use std::io::{self, Write};

use crate::build_info::BuildInfo;

/// Arguments of `basalt version`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Args)]
pub struct VersionArgs {
    /// Also print the git commit, rustc version, target, profile and Cargo.lock hash.
    #[arg(long)]
    pub long: bool,
    /// Print all the build information as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The text `basalt version` prints for `args`, newline-terminated.
pub fn render(args: &VersionArgs, info: &BuildInfo) -> String {
    if args.json {
        format!("{}\n", info.to_json())
    } else if args.long {
        info.long_text()
    } else {
        format!("{}\n", info.version)
    }
}

/// Runs `basalt version`: prints [`render`] of this binary's build information to stdout.
pub fn run(args: &VersionArgs) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(render(args, BuildInfo::current()).as_bytes())?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prints_only_the_version() {
        let info = BuildInfo::current();
        let out = render(&VersionArgs::default(), info);
        assert_eq!(out, format!("{}\n", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn long_prints_every_field() {
        let info = BuildInfo::current();
        let long = VersionArgs {
            long: true,
            json: false,
        };
        let out = render(&long, info);
        for (name, value) in info.fields() {
            assert!(out.contains(&format!("{name}: {value}\n")), "{name}");
        }
    }

    #[test]
    fn json_wins_over_long() {
        let info = BuildInfo::current();
        let both = VersionArgs {
            long: true,
            json: true,
        };
        assert_eq!(render(&both, info), format!("{}\n", info.to_json()));
    }
}
