//! `ledgerhook-admin completions SHELL` and `ledgerhook-admin man [--dir DIR]`:
//! shell completion scripts and manual pages, generated from the command line
//! the binary parses ([`cli::command`]), so they take exactly what it takes.
//! Both work from the command line alone: no environment, no database, no
//! broker, no audit row.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, roman};
use serde_json::json;

use super::Printout;
use super::cli;

/// The binary's name, as the shell completes it and the pages are named.
const BIN: &str = "ledgerhook-admin";

/// The manual the pages belong to (the header's middle).
const MANUAL: &str = "ledgerhook";

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> anyhow::Result<Printout> {
    let script = match shell {
        Shell::Bash => bash_script()?,
        _ => generate(shell, BIN)?,
    };
    Ok(Printout::done(
        json!({"shell": shell.to_string(), "script": script}),
        script,
    ))
}

/// `shell`'s script for the command line, named `bin`.
fn generate(shell: Shell, bin: &str) -> anyhow::Result<String> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli::command(), bin, &mut script);
    String::from_utf8(script).context("the completion script is not UTF-8")
}

/// The bash script. clap_complete's bash script completes no subcommand's
/// options when the binary's name has a hyphen (clap-rs/clap#6421, open in
/// clap_complete 4.6.11): it spells the state `ledgerhook__admin__subcmd__x`
/// where it sets it and `ledgerhook__subcmd__admin__subcmd__x` where it
/// reads it. So it is generated for a name without one, and only the
/// `complete` lines, which name the command bash completes, say the real
/// name; the script's first word may be anything (`$1`).
fn bash_script() -> anyhow::Result<String> {
    const STAND_IN: &str = "ledgerhook_admin";
    let script = generate(Shell::Bash, STAND_IN)?;
    let (from, to) = (format!(" {STAND_IN}\n"), format!(" {BIN}\n"));
    let registrations = script
        .lines()
        .filter(|line| line.trim_start().starts_with("complete ") && line.ends_with(STAND_IN))
        .count();
    anyhow::ensure!(
        registrations > 0 && script.matches(&from).count() == registrations,
        "the bash script's `complete` lines are not as expected"
    );
    Ok(script.replace(&from, &to))
}

/// Without `dir`, the top page in roff; with it, every page written there
/// (made if missing) and the paths written.
pub fn man(dir: Option<&Path>) -> anyhow::Result<Printout> {
    let mut pages = pages()?.into_iter();
    let Some(dir) = dir else {
        let (name, roff) = pages.next().context("the top page")?;
        return Ok(Printout::done(json!({"page": name, "roff": roff}), roff));
    };
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    let mut written: Vec<PathBuf> = Vec::new();
    for (name, roff) in pages {
        let path = dir.join(name);
        std::fs::write(&path, roff).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    let text = written
        .iter()
        .map(|path| format!("{}\n", path.display()))
        .collect();
    Ok(Printout::done(json!({"written": written}), text))
}

/// Every page, file name and roff: `ledgerhook-admin.1` first (the
/// description, the options, each subcommand named), then one per
/// subcommand in the help's order. Each carries the version; a
/// subcommand's page its own long help and a pointer to the top page.
fn pages() -> anyhow::Result<Vec<(String, String)>> {
    // No `help` subcommand: it has no page of its own.
    let mut top = cli::command().disable_help_subcommand(true);
    // Names the subcommands `ledgerhook-admin-<sub>` and their usage
    // `ledgerhook-admin <sub>`, and gives them the global options.
    top.build();
    let source = format!("{BIN} {}", cli::VERSION);
    let mut pages = vec![render(top.clone(), &source, None)?];
    for sub in top.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        // Built already: the version shows on the page without adding a
        // --version option the subcommand does not take.
        let sub = sub.clone().version(cli::VERSION);
        pages.push(render(sub, &source, Some(BIN))?);
    }
    Ok(pages)
}

/// One page: its file name and roff, with `SEE ALSO parent(1)` when it has
/// a parent.
fn render(
    command: clap::Command,
    source: &str,
    parent: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let title = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_owned();
    let man = Man::new(command).source(source).manual(MANUAL);
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    if let Some(parent) = parent {
        let mut see_also = Roff::default();
        see_also.control("SH", ["SEE ALSO"]);
        see_also.text([roman(format!(
            "{parent}(1): the environment it reads, the audit row and the exit status"
        ))]);
        see_also.to_writer(&mut roff)?;
    }
    let roff = String::from_utf8(roff).context("the manual page is not UTF-8")?;
    Ok((man.get_filename(), with_title(&roff, &title, source)))
}

/// `roff` with its `.TH` line written again: clap_mangen writes an empty
/// date as nothing at all, not as `""`, so the source would land in the
/// date's place (the footer's middle) and the manual in the source's.
fn with_title(roff: &str, title: &str, source: &str) -> String {
    roff.lines()
        .map(|line| {
            if line.starts_with(".TH ") {
                format!(".TH {title} 1 \"\" \"{source}\" \"{MANUAL}\"\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{BIN, pages};

    #[test]
    fn every_page_has_the_version_and_its_description() {
        let pages = pages().unwrap();
        let (name, top) = &pages[0];
        assert_eq!(name, &format!("{BIN}.1"));
        assert!(
            top.contains(&format!(
                "\n.TH {BIN} 1 \"\" \"{BIN} {}\" \"ledgerhook\"\n",
                super::cli::VERSION
            )),
            "{top}"
        );
        assert!(top.contains(super::cli::VERSION), "{top}");
        // The long about, not only the one-line one.
        assert!(top.contains("Exit status"), "{top}");
        assert!(!top.contains("ledgerhook\\-admin\\-help"), "{top}");
        let (name, man) = pages
            .iter()
            .find(|(name, _)| name == "ledgerhook-admin-man.1")
            .expect("a page for man");
        assert!(man.contains(super::cli::VERSION), "{name}: {man}");
        assert!(man.contains("one per subcommand"), "{name}: {man}");
        assert!(man.contains("SEE ALSO"), "{name}: {man}");
        assert!(!man.contains("\\-\\-version"), "{name}: {man}");
        assert!(!pages.iter().any(|(name, _)| name.contains("help")));
    }
}
