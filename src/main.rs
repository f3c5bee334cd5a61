use std::process::ExitCode;

fn main() -> ExitCode {
    rtb_trustpcl::cli::main()
}
