use std::process::ExitCode;

fn main() -> ExitCode {
    stackctl::cli::main()
}
