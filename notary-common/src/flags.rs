//! Go-style command-line flags.
//!
//! Go's `flag` package accepts long flags with one dash (`-config file`, `-logf=json`,
//! `-debug`). clap only accepts them with two, so [`go_style_args`] rewrites them first.

use std::ffi::OsString;

/// Rewrites single-dash long flags (`-config`, `-logf=json`) to clap's `--` form.
///
/// The first element (the program name) is kept as is. A token is rewritten when it starts
/// with exactly one `-` followed by an ASCII letter and at least one more character before
/// any `=`; one-letter flags (`-h`) and everything after a bare `--` stay untouched. Tokens
/// that are not valid UTF-8 are passed through.
pub fn go_style_args<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut out = Vec::new();
    let mut rest_verbatim = false;
    for (i, arg) in args.into_iter().enumerate() {
        let arg: OsString = arg.into();
        if i == 0 || rest_verbatim {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            rest_verbatim = true;
            out.push(arg);
            continue;
        }
        match arg.to_str() {
            Some(s) if is_single_dash_long(s) => out.push(OsString::from(format!("-{s}"))),
            _ => out.push(arg),
        }
    }
    out
}

fn is_single_dash_long(s: &str) -> bool {
    let Some(body) = s.strip_prefix('-') else {
        return false;
    };
    if body.starts_with('-') {
        return false;
    }
    let name = body.split('=').next().unwrap_or("");
    name.len() >= 2 && name.starts_with(|c: char| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(args: &[&str]) -> Vec<String> {
        go_style_args(args.iter().copied())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn rewrites_single_dash_long_flags() {
        assert_eq!(
            rewrite(&[
                "prog",
                "-config",
                "a.json",
                "-logf=json",
                "-debug",
                "-version"
            ]),
            [
                "prog",
                "--config",
                "a.json",
                "--logf=json",
                "--debug",
                "--version"
            ]
        );
    }

    #[test]
    fn leaves_short_double_dash_and_values_alone() {
        assert_eq!(
            rewrite(&["-prog", "-h", "--config", "x", "-", "-1", "plain"]),
            ["-prog", "-h", "--config", "x", "-", "-1", "plain"]
        );
    }

    #[test]
    fn stops_after_double_dash() {
        assert_eq!(
            rewrite(&["prog", "-debug", "--", "-config"]),
            ["prog", "--debug", "--", "-config"]
        );
    }

    #[test]
    fn subcommand_flags_are_rewritten_too() {
        assert_eq!(
            rewrite(&["prog", "rotate-alias", "-from", "a", "--to", "b"]),
            ["prog", "rotate-alias", "--from", "a", "--to", "b"]
        );
    }
}
