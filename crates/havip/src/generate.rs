//! What the Debian package installs beside the binary, generated from the binary itself so it
//! cannot drift: the man pages (`havip(8)` and one `havip-COMMAND(8)` per command, from the
//! clap definitions with `clap_mangen`; `havip.toml(5)` from `docs/config.md`, the key
//! reference, rendered to roff) and the shell completions (`clap_complete`).
//!
//! `havip completions SHELL` prints one script; the hidden `havip generate-assets DIR` writes
//! them all with the man pages into `DIR/man` and `DIR/completions`.
//! `packaging/generate.sh` runs it into `packaging/`, where `cargo deb` picks the files up,
//! and `tests/packaging.rs` checks that the committed files are what the binary generates now.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use roff::{bold, italic, roman, Inline, Roff};

use crate::Cli;

/// The key reference, rendered into havip.toml(5).
const CONFIG_REFERENCE: &str = include_str!("../../../docs/config.md");

/// The shells completions are generated for, and where Debian's packages put each script.
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "havip.bash"),
    (Shell::Zsh, "_havip"),
    (Shell::Fish, "havip.fish"),
];

/// Write the completion script for `shell` to `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "havip", out);
}

/// Write every man page and completion script under `dir`; the files written.
pub fn write_assets(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let man = dir.join("man");
    let completions_dir = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions_dir)?;
    let mut written = Vec::new();
    for (name, page) in man_pages()? {
        let path = man.join(name);
        std::fs::write(&path, page)?;
        written.push(path);
    }
    for (shell, name) in COMPLETIONS {
        let mut script = Vec::new();
        completions(shell, &mut script);
        let path = completions_dir.join(name);
        std::fs::write(&path, script)?;
        written.push(path);
    }
    Ok(written)
}

/// Every man page: (file name, roff text).
pub fn man_pages() -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut command = Cli::command();
    // Propagates the global options (--config) into each command's page.
    command.build();
    let mut pages = Vec::new();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("havip {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)?;
    page.extend_from_slice(see_also_commands(&command).as_bytes());
    pages.push(("havip.8".to_string(), page));
    for sub in command.get_subcommands().filter(|c| has_page(c)) {
        let name = format!("havip-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(
            sub.clone()
                .name(name.clone())
                .bin_name(format!("havip {}", sub.get_name())),
        )
        .section("8")
        .manual("System Administration")
        .source(format!("havip {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)?;
        page.extend_from_slice(
            Roff::new()
                .control("SH", ["SEE ALSO"])
                .text([
                    bold("havip"),
                    roman("(8), "),
                    bold("havip.toml"),
                    roman("(5)"),
                ])
                .render()
                .as_bytes(),
        );
        pages.push((format!("{name}.8"), page));
    }
    pages.push(("havip.toml.5".to_string(), config_page().into_bytes()));
    Ok(pages)
}

/// Whether a command gets its own page: not the hidden ones, not clap's `help`.
fn has_page(command: &clap::Command) -> bool {
    !command.is_hide_set() && command.get_name() != "help"
}

/// havip(8)'s SEE ALSO: the command pages and the config page.
fn see_also_commands(command: &clap::Command) -> String {
    let mut refs: Vec<Inline> = Vec::new();
    for sub in command.get_subcommands().filter(|c| has_page(c)) {
        refs.push(bold(format!("havip-{}", sub.get_name())));
        refs.push(roman("(8), "));
    }
    refs.push(bold("havip.toml"));
    refs.push(roman("(5), "));
    refs.push(bold("systemd.service"));
    refs.push(roman("(5)"));
    Roff::new().control("SH", ["SEE ALSO"]).text(refs).render()
}

/// havip.toml(5): docs/config.md as roff.
pub fn config_page() -> String {
    let mut page = Roff::new();
    page.control(
        "TH",
        [
            "HAVIP.TOML",
            "5",
            "",
            &format!("havip {}", env!("CARGO_PKG_VERSION")),
            "File Formats",
        ],
    );
    page.control("SH", ["NAME"])
        .text([roman("havip.toml - the configuration file of havip(8)")]);
    page.control("SH", ["SYNOPSIS"])
        .text([bold("/etc/havip/havip.toml")]);
    page.control("SH", ["DESCRIPTION"]);
    MarkdownToRoff::default().render(CONFIG_REFERENCE, &mut page);
    page.control("SH", ["SEE ALSO"]).text([
        bold("havip"),
        roman("(8), "),
        bold("havip-check"),
        roman("(8), "),
        bold("keepalived.conf"),
        roman("(5)"),
    ]);
    page.render()
}

/// The Markdown that docs/config.md uses (headings, paragraphs, tables, code blocks, lists,
/// inline code and emphasis), as man(7) macros: a table row becomes a tagged paragraph
/// (`.TP`) whose tag is the first cell, the other cells following as "Header: value".
#[derive(Default)]
struct MarkdownToRoff {
    /// The inline text being collected (a paragraph, a heading, a table cell...).
    inline: Vec<Inline>,
    /// Inside `code`, `*emphasis*` or `**strong**`: how to set the next text.
    style: Vec<Style>,
    table_head: Vec<Vec<Inline>>,
    row: Vec<Vec<Inline>>,
    in_head: bool,
    in_code_block: bool,
    code_block: String,
    /// Skip the document's own title (the page has a NAME section instead).
    in_title: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Bold,
    Italic,
}

impl MarkdownToRoff {
    fn text(&mut self, text: &str) {
        let inline = match self.style.last() {
            Some(Style::Bold) => bold(text),
            Some(Style::Italic) => italic(text),
            None => roman(text),
        };
        self.inline.push(inline);
    }

    fn take(&mut self) -> Vec<Inline> {
        std::mem::take(&mut self.inline)
    }

    fn render(mut self, markdown: &str, out: &mut Roff) {
        for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
            self.event(event, out);
        }
    }

    fn event(&mut self, event: Event<'_>, out: &mut Roff) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                self.in_title = level == HeadingLevel::H1;
                self.inline.clear();
            }
            Event::End(TagEnd::Heading(level)) => {
                let text: String = plain(&self.take());
                match level {
                    HeadingLevel::H1 => self.in_title = false,
                    HeadingLevel::H2 => {
                        out.control("SH", [text.to_uppercase().as_str()]);
                    }
                    _ => {
                        out.control("SS", [text.as_str()]);
                    }
                }
            }
            Event::Start(Tag::Paragraph) => self.inline.clear(),
            Event::End(TagEnd::Paragraph) if !self.in_title => {
                let text = self.take();
                out.control("PP", []).text(text);
            }
            Event::Start(Tag::CodeBlock(_)) => {
                self.in_code_block = true;
                self.code_block.clear();
            }
            Event::End(TagEnd::CodeBlock) => {
                self.in_code_block = false;
                out.control("PP", []).control("RS", ["4"]).control("nf", []);
                for line in self.code_block.lines() {
                    out.text([roman(line)]);
                }
                out.control("fi", []).control("RE", []);
            }
            Event::Start(Tag::Item) => self.inline.clear(),
            Event::End(TagEnd::Item) => {
                let text = self.take();
                out.control("IP", ["\\(bu", "2"]).text(text);
            }
            Event::Start(Tag::TableHead) => {
                self.in_head = true;
                self.table_head.clear();
            }
            Event::End(TagEnd::TableHead) => self.in_head = false,
            Event::Start(Tag::TableRow) => self.row.clear(),
            Event::Start(Tag::TableCell) => self.inline.clear(),
            Event::End(TagEnd::TableCell) => {
                let cell = self.take();
                if self.in_head {
                    self.table_head.push(cell);
                } else {
                    self.row.push(cell);
                }
            }
            Event::End(TagEnd::TableRow) => self.table_row(out),
            Event::Start(Tag::Emphasis) => self.style.push(Style::Italic),
            Event::Start(Tag::Strong) => self.style.push(Style::Bold),
            Event::End(TagEnd::Emphasis) | Event::End(TagEnd::Strong) => {
                self.style.pop();
            }
            Event::Code(code) => self.inline.push(bold(code.to_string())),
            Event::Text(text) if self.in_code_block => self.code_block.push_str(&text),
            Event::Text(text) => self.text(&text),
            Event::SoftBreak => self.inline.push(roman(" ")),
            Event::HardBreak => self.inline.push(roff::line_break()),
            _ => {}
        }
    }

    /// A body row: `.TP`, the first cell as the tag, then "Header: value." for the middle
    /// cells and the last cell as the description.
    fn table_row(&mut self, out: &mut Roff) {
        let mut cells = std::mem::take(&mut self.row).into_iter();
        let Some(tag) = cells.next() else { return };
        let rest: Vec<Vec<Inline>> = cells.collect();
        out.control("TP", []).text(tag);
        let last = rest.len().saturating_sub(1);
        let mut body = Vec::new();
        for (index, cell) in rest.into_iter().enumerate() {
            if index < last {
                let header = self
                    .table_head
                    .get(index + 1)
                    .map(|h| plain(h))
                    .unwrap_or_default();
                body.push(italic(format!("{header}:")));
                body.push(roman(" "));
                body.extend(cell);
                body.push(roman(". "));
            } else {
                body.extend(cell);
            }
        }
        out.text(body);
    }
}

/// The text of inlines without their styles (headings, table headers).
fn plain(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|inline| match inline {
            Inline::Roman(s) | Inline::Italic(s) | Inline::Bold(s) => s.as_str(),
            Inline::LineBreak => " ",
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_page_has_every_key_table_as_tagged_paragraphs() {
        let page = config_page();
        assert!(page.contains(".TH HAVIP.TOML 5"), "{page}");
        assert!(
            page.contains(".SH [[VRRP]]\n"),
            "sections from the ## headings"
        );
        assert!(page.contains(".SS [vrrp.notify]\n"), "subsections from ###");
        // The vrrp table: key as the tag, keepalived's name and the default as fields.
        assert!(page.contains(".TP\n\\fBvrid\\fR\n"), "a key as a tag");
        assert!(
            page.contains("\\fIkeepalived:\\fR \\fBvirtual_router_id\\fR. "),
            "middle cells as Header: value"
        );
        assert!(
            !page.contains("havip configuration reference"),
            "the title is dropped"
        );
        assert!(!page.contains("| key"), "no table left as text");
    }

    #[test]
    fn every_visible_command_has_a_page_and_the_main_page_lists_them() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for expected in [
            "havip.8",
            "havip-run.8",
            "havip-check.8",
            "havip-import.8",
            "havip-manifest.8",
            "havip-completions.8",
            "havip.toml.5",
        ] {
            assert!(names.contains(&expected), "{names:?}");
        }
        assert!(!names
            .iter()
            .any(|n| n.contains("demo-backend") || n.contains("generate")));
        let main = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(main.contains(".TH havip 8"), "{main}");
        assert!(main.contains("\\fBhavip\\-check\\fR(8)"), "{main}");
        let check = String::from_utf8(
            pages
                .iter()
                .find(|(n, _)| n == "havip-check.8")
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert!(
            check.contains("\\-\\-config"),
            "global options on each page: {check}"
        );
    }

    #[test]
    fn completions_know_the_commands() {
        for (shell, _) in COMPLETIONS {
            let mut script = Vec::new();
            completions(shell, &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains("static-pod"), "{shell}: {script}");
        }
    }
}
