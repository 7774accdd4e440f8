// mimalloc: the fetch task allocates each page's offers and the writer thread frees them; glibc's
// arenas serialize those cross-thread frees on a lock (measured: ~8% of a sync in lock waits).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    offersync::cli::main()
}
