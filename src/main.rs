//! The `kiln` command-line tool. Each subcommand lives in its own file under src/cli/.

mod cli;

fn main() {
    if let Err(e) = cli::run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
