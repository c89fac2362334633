import ArgumentParser

/// `--config`, as `check` and `serve` both take it: the two must read the same file by default,
/// so that what `check` validates is what `serve` runs.
struct ConfigFileOption: ParsableArguments {
    @Option(name: .long, help: "Path to the configuration file.")
    var config = "routes.yaml"
}
