import ArgumentParser
import SwitchyardCore

/// `switchyard replay`: rehearse a routes.yaml change on a recorded incident. The audit log's
/// requests and upstream answers go through the candidate's breakers, selection and retry rules
/// on the recorded clock; what would have happened is printed beside what did.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay an audit log through a candidate routes.yaml and compare with what happened.",
        discussion: """
            Each upstream's answers over time are read from the audit log's attempts; the recorded requests \
            arrive at their recorded times and walk the candidate's routes with the server's own decisions. \
            A model the recording never tried is reported as unknown. Replaying with the configuration that \
            wrote the log reproduces its counts.
            """
    )

    @Option(name: .long, help: "The candidate configuration file.")
    var config: String

    @Argument(help: "The audit log (JSON lines, as serve writes it).")
    var audit: String

    @Flag(name: .long, help: "Print one JSON object instead of the table.")
    var json = false

    @Option(name: .long, help: "Seed of the backoff jitter (the same seed gives the same replay).")
    var seed: UInt64 = 1

    func run() throws {
        let loaded: ConfigLoader.Loaded
        do {
            // Secrets are not needed to replay: unset variables are warnings, as for `check`.
            loaded = try ConfigLoader(mode: .check).load(path: config)
        } catch {
            for problem in error.problems where problem.severity == .error { printError(problem.description) }
            printError("switchyard replay: \(config) is not a valid configuration")
            throw ExitCode(1)
        }
        let recording: AuditRecording
        do {
            recording = try AuditRecording(path: audit)
            guard !recording.requests.isEmpty else { throw ReplayError.nothingToReplay }
        } catch {
            printError("switchyard replay: \(audit): \(error)")
            throw ExitCode(1)
        }
        let report = ReplayReport(recording: recording, config: loaded.config, seed: seed, auditSource: audit, configSource: config)
        print(json ? report.json() : report.table(), terminator: json ? "\n" : "")
    }
}
