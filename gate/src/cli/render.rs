//! Rendering diagnostics for a terminal or a log.

use std::io::IsTerminal;

use countersign_engine::PolicyError;
use miette::{GraphicalReportHandler, GraphicalTheme};

/// Renders every diagnostic of `err` (source snippet, underline, help) to a
/// string. Colour only when stderr is a terminal and `NO_COLOR` is unset.
pub fn diagnostics(err: &PolicyError) -> String {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    for d in err.diagnostics() {
        // The plain `file:line:col: message` line first: greppable, and what
        // editors jump to.
        out.push_str("error: ");
        out.push_str(&d.to_plain());
        out.push('\n');
        if d.location().is_some() {
            let mut rendered = String::new();
            if handler.render_report(&mut rendered, d).is_ok() {
                out.push_str(&rendered);
            }
        }
        out.push('\n');
    }
    out
}

/// Prints the diagnostics and a closing count to stderr.
pub fn print_policy_error(err: &PolicyError) {
    eprint!("{}", diagnostics(err));
    let n = err.diagnostics().len();
    eprintln!("error: {n} problem{} found", if n == 1 { "" } else { "s" });
}
