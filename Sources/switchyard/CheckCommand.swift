import ArgumentParser
import SwitchyardCore

#if canImport(Glibc)
import Glibc
#endif

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate routes.yaml and print the resolved routing table; exit 0 when valid, 1 otherwise."
    )

    @OptionGroup var configFile: ConfigFileOption

    @Flag(name: .long, help: "Treat unset environment variables as errors, as serve does.")
    var strict = false

    func run() throws {
        do {
            let loaded = try ConfigLoader(mode: strict ? .serve : .check).load(path: configFile.config)
            for warning in loaded.warnings {
                printError(warning.description)
            }
            print(RoutingTableDescription.render(loaded.config))
        } catch {
            for problem in error.problems {
                printError(problem.description)
            }
            printError("\(configFile.config): \(error.problems.filter { $0.severity == .error }.count) problem(s)")
            throw ExitCode(1)
        }
    }
}

func printError(_ text: String) {
    var line = text
    line.append("\n")
    var bytes = Array(line.utf8)
    bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
            if written <= 0 { break }
            offset += written
        }
    }
}
