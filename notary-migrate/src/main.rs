fn main() -> std::process::ExitCode {
    notary_migrate::run()
}
