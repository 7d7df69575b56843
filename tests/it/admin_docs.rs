//! `ledgerhook-admin completions SHELL` and `ledgerhook-admin man [--dir DIR]`,
//! run as the real binary with `DATABASE_URL` and `AMQP_URL` at a closed port
//! and no operator: each exits 0 with nothing on stderr, so nothing was
//! connected to (a connection attempt fails and says so on stderr).
//!
//! The subcommands are read off `ledgerhook-admin --help`, so a subcommand
//! missing from the completions or the pages fails here. Bash completion is
//! exercised for real: the script is sourced in `bash` and its completion
//! function called as bash would. zsh and fish scripts are checked with
//! `zsh -n` / `fish -n` where those shells are installed. Pages are rendered
//! with `man -l` (man-db) with warnings on, or `groff`, `mandoc` or `nroff`,
//! whichever is installed; without any, their roff structure is checked.
//!
//! Needs the binaries built (`cargo build --workspace --bins`); no services.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ledgerhook_tests::offline;

const ADMIN: &str = "ledgerhook-admin";

/// The subcommands `complete` lists for `ledgerhook-admin re<TAB>`.
const RE: &[&str] = &[
    "redrive",
    "replay",
    "revoke",
    "reconcile",
    "resume",
    "retention",
];

/// Runs `command`, killed after 20 s.
fn run_with_timeout(command: Command, what: &str) -> Output {
    offline::output_within(command, Duration::from_secs(20), what)
}

/// `ledgerhook-admin args` with the database and the broker at a closed
/// port and no operator; its standard output, once it exited 0 with an
/// empty standard error.
fn admin(args: &[&str]) -> String {
    let path = ledgerhook_tests::harness::processes::bin_dir()
        .expect("the binaries' folder")
        .join(ADMIN);
    let mut command = Command::new(&path);
    offline::without_services(&mut command)
        .args(args)
        .env_remove("LEDGERHOOK_OPERATOR");
    let what = format!(
        "{} {} (cargo build --workspace --bins)",
        path.display(),
        args.join(" ")
    );
    let output = run_with_timeout(command, &what);
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{ADMIN} {args:?} exited {:?}: {stdout}{stderr}",
        output.status
    );
    assert!(
        stderr.is_empty(),
        "{ADMIN} {args:?} wrote to stderr: {stderr}"
    );
    stdout
}

/// The subcommands `ledgerhook-admin --help` lists (but `help`).
fn subcommands() -> Vec<String> {
    let help = admin(&["--help"]);
    let listed = help
        .split("\nCommands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Commands: section in {help}"));
    let names: Vec<String> = listed
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    // The parsing found the list: the runbooks' commands and the new ones.
    for name in RE
        .iter()
        .chain(&["parked", "expire-credits", "migrate", "completions", "man"])
    {
        assert!(
            names.iter().any(|n| n == name),
            "{name} not read off --help: {names:?}\n{help}"
        );
    }
    names
}

/// A folder of the test's own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("admin-docs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Whether `program` is on the PATH.
fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// What bash's completion offers for the command line `words` (the last
/// one being completed): `script` sourced, the function `complete -p
/// ledgerhook-admin` names called as bash calls it (command, current word,
/// previous word).
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let driver = r#"
        set -u
        source "$1"
        shift
        spec=$(complete -p ledgerhook-admin) || exit 3
        function=$(sed -E 's/.* -F ([^ ]+) .*/\1/' <<<"$spec")
        [ -n "$function" ] && [ "$function" != "$spec" ] || { echo "no -F in: $spec" >&2; exit 4; }
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        "$function" ledgerhook-admin "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let mut command = Command::new("bash");
    command
        .args(["--norc", "--noprofile", "-c", driver, "bash"])
        .arg(script)
        .args(words);
    let output = run_with_timeout(command, &format!("bash completing {words:?}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "bash completing {words:?}: {:?} {stderr}",
        output.status
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_options() {
    let scratch = Scratch::new();
    let script = scratch.0.join(ADMIN);
    std::fs::write(&script, admin(&["completions", "bash"])).unwrap();

    let offered = bash_completes(&script, &[ADMIN, "re"]);
    for name in RE {
        assert!(
            offered.iter().any(|o| o == name),
            "`{ADMIN} re` does not offer {name}: {offered:?}"
        );
    }
    assert!(
        offered.iter().all(|o| o.starts_with("re")),
        "`{ADMIN} re` offers {offered:?}"
    );
    assert!(!offered.iter().any(|o| o == "parked"), "{offered:?}");

    // Every subcommand --help lists, at the first word.
    let offered = bash_completes(&script, &[ADMIN, ""]);
    for name in subcommands() {
        assert!(
            offered.contains(&name),
            "`{ADMIN} ` does not offer {name}: {offered:?}"
        );
    }

    // A subcommand's own options: replay's --from, reconcile's
    // --older-than, and a hyphenated subcommand's (global) --json.
    assert_eq!(
        bash_completes(&script, &[ADMIN, "replay", "--fr"]),
        ["--from"]
    );
    assert_eq!(
        bash_completes(&script, &[ADMIN, "reconcile", "--older"]),
        ["--older-than"]
    );
    assert_eq!(
        bash_completes(&script, &[ADMIN, "expire-credits", "--js"]),
        ["--json"]
    );
    // And the shells completions takes.
    let offered = bash_completes(&script, &[ADMIN, "completions", ""]);
    for shell in ["bash", "elvish", "fish", "powershell", "zsh"] {
        assert!(offered.iter().any(|o| o == shell), "{offered:?}");
    }
}

#[test]
fn every_shell_gets_a_script_naming_every_subcommand() {
    let subcommands = subcommands();
    let scratch = Scratch::new();
    // How each script names a subcommand it offers.
    type Naming = fn(&str) -> String;
    let shells: [(&str, Naming); 5] = [
        ("bash", |sub| format!(" {sub} ")),
        ("zsh", |sub| format!("'{sub}:")),
        ("fish", |sub| format!("-a \"{sub}\"")),
        ("elvish", |sub| format!("cand {sub} '")),
        ("powershell", |sub| {
            format!("[CompletionResult]::new('{sub}',")
        }),
    ];
    for (shell, naming) in shells {
        let script = admin(&["completions", shell]);
        for sub in &subcommands {
            assert!(
                script.contains(&naming(sub)),
                "the {shell} script does not offer {sub} ({:?})",
                naming(sub)
            );
        }
        let file = scratch.0.join(format!("{ADMIN}.{shell}"));
        std::fs::write(&file, &script).unwrap();
        // Syntax, by the shell itself where it is installed.
        let check = match shell {
            "bash" => Some("bash"),
            "zsh" if installed("zsh") => Some("zsh"),
            "fish" if installed("fish") => Some("fish"),
            _ => None,
        };
        if let Some(program) = check {
            let mut command = Command::new(program);
            command.arg("-n").arg(&file);
            let output = run_with_timeout(command, &format!("{program} -n"));
            assert!(
                output.status.success() && output.stderr.is_empty(),
                "{program} -n on the {shell} script: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        } else {
            eprintln!(
                "{shell}: not installed here; its script is checked for its subcommands only"
            );
        }
    }
    assert!(
        admin(&["completions", "zsh"]).starts_with(&format!("#compdef {ADMIN}")),
        "zsh's script is not a completion function for {ADMIN}"
    );
}

/// `page` rendered to text by what is installed: man-db's `man -l` with
/// groff's warnings on, else `groff`, `mandoc` or `nroff`; fails on an
/// error or a warning. None where no renderer is installed.
fn render(page: &Path) -> Option<String> {
    let command = if installed("man") && installed("groff") {
        let mut command = Command::new("man");
        // No hyphenation, no justification: words stay whole and findable.
        command
            .args(["--warnings", "--nh", "--nj", "-l"])
            .arg(page)
            .env("MANWIDTH", "200")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat");
        command
    } else if installed("groff") {
        let mut command = Command::new("groff");
        command
            .args(["-man", "-Tutf8", "-ww", "-rLL=200n"])
            .arg(page);
        command
    } else if installed("mandoc") {
        let mut command = Command::new("mandoc");
        command.args(["-Tutf8", "-Wwarning,stop"]).arg(page);
        command
    } else if installed("nroff") {
        let mut command = Command::new("nroff");
        command.args(["-man", "-ww"]).arg(page);
        command
    } else {
        return None;
    };
    let output = run_with_timeout(command, &format!("rendering {}", page.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "rendering {}: {:?} {stderr}",
        page.display(),
        output.status
    );
    // Overstrike bold and underline (nroff without a pager's help) undone.
    let text = String::from_utf8_lossy(&output.stdout);
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    Some(plain)
}

#[test]
fn man_writes_a_page_for_the_command_and_each_subcommand() {
    let subcommands = subcommands();
    let scratch = Scratch::new();
    // A folder that does not exist yet: man makes it.
    let dir = scratch.0.join("man").join("man1");
    let printed = admin(&["man", "--dir", dir.to_str().unwrap()]);

    let top = format!("{ADMIN}.1");
    let expected: BTreeSet<String> = std::iter::once(top.clone())
        .chain(subcommands.iter().map(|sub| format!("{ADMIN}-{sub}.1")))
        .collect();
    let written: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written, expected, "the pages written in {}", dir.display());
    // It prints each path it wrote, the top page first.
    let paths: Vec<PathBuf> = printed.lines().map(PathBuf::from).collect();
    assert_eq!(paths.first(), Some(&dir.join(&top)), "{printed}");
    assert_eq!(
        paths.iter().cloned().collect::<BTreeSet<_>>(),
        expected.iter().map(|name| dir.join(name)).collect(),
        "{printed}"
    );

    // Without --dir, the top page itself.
    let top_roff = std::fs::read_to_string(dir.join(&top)).unwrap();
    assert_eq!(admin(&["man"]), top_roff);

    // Every page is a man(7) page of section 1 with the version in its title
    // line.
    let version = env!("CARGO_PKG_VERSION");
    for name in &expected {
        let roff = std::fs::read_to_string(dir.join(name)).unwrap();
        let title = name.trim_end_matches(".1");
        let th = format!(".TH {title} 1 \"\" \"{ADMIN} {version}\" \"ledgerhook\"");
        assert!(
            roff.lines().any(|line| line == th),
            "{name} has no {th:?}:\n{roff}"
        );
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH VERSION"] {
            assert!(
                roff.lines().any(|line| line == section),
                "{name} has no {section}"
            );
        }
    }

    let Some(rendered) = render(&dir.join(&top)) else {
        eprintln!("no man, groff, mandoc or nroff here: pages checked as roff only");
        for sub in &subcommands {
            let named = format!("{ADMIN}-{sub}(1)").replace('-', "\\-");
            assert!(
                top_roff.contains(&named),
                "the top page does not name {sub}"
            );
        }
        return;
    };
    // The top page: every subcommand named, the long about and the version.
    for sub in &subcommands {
        assert!(
            rendered.contains(&format!("{ADMIN}-{sub}(1)")),
            "the rendered top page does not name {sub}:\n{rendered}"
        );
    }
    assert!(rendered.contains("Exit status: 0 done"), "{rendered}");
    assert!(rendered.contains(&format!("v{version}")), "{rendered}");
    assert!(rendered.contains("LEDGERHOOK_OPERATOR"), "{rendered}");
    // Each subcommand's page renders too; replay's has its options, the
    // global ones, and man's its long about.
    for sub in &subcommands {
        let page = render(&dir.join(format!("{ADMIN}-{sub}.1"))).unwrap();
        assert!(
            page.contains(&format!("{ADMIN} {sub}")) && page.contains(&format!("v{version}")),
            "{sub}'s page:\n{page}"
        );
        assert!(page.contains("--json"), "{sub}'s page:\n{page}");
        assert!(
            page.contains(&format!("{ADMIN}(1)")),
            "{sub}'s page does not point at the top page:\n{page}"
        );
        match sub.as_str() {
            "replay" => assert!(
                page.contains("--from") && page.contains("--no-wait"),
                "{page}"
            ),
            "man" => assert!(page.contains("one per subcommand"), "{page}"),
            _ => {}
        }
    }
}

#[test]
fn json_says_what_was_written() {
    let scratch = Scratch::new();
    let printed = admin(&["--json", "man", "--dir", scratch.0.to_str().unwrap()]);
    let document: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let written = document["written"].as_array().expect("written: [...]");
    assert_eq!(written.len(), subcommands().len() + 1, "{printed}");
    for path in written {
        assert!(Path::new(path.as_str().unwrap()).is_file(), "{path}");
    }
    let printed = admin(&["--json", "completions", "fish"]);
    let document: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(document["shell"], "fish");
    assert!(
        document["script"]
            .as_str()
            .unwrap()
            .contains("complete -c ledgerhook-admin")
    );
}
