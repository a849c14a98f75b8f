//! The `countersign` command: policy tools (`check`, `test`, `bench`, `eval`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
