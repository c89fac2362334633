import ArgumentParser
import Logging
import ServiceLifecycle
import SwitchyardCore
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the router."
    )

    @OptionGroup var configFile: ConfigFileOption

    @Option(name: .long, help: "Address to listen on, HOST:PORT (overrides server.listen).")
    var listen: String?

    func run() async throws {
        let loaded: ConfigLoader.Loaded
        do {
            loaded = try ConfigLoader(mode: .serve).load(path: configFile.config)
        } catch {
            for problem in error.problems { printError(problem.description) }
            printError("switchyard: not starting: \(configFile.config) has \(error.problems.count) problem(s)")
            throw ExitCode(1)
        }
        var listenOverride: HostPort?
        if let listen {
            guard let parsed = HostPort.parse(listen) else { throw ValidationError("invalid --listen '\(listen)' (expected HOST:PORT)") }
            listenOverride = parsed
        }
        let logger = makeLogger(level: loaded.config.logging.level)
        let audit: AuditLog
        do {
            switch loaded.config.logging.audit {
            case .stdout: audit = try AuditLog(destination: .stdout)
            case .file(let path): audit = try AuditLog(destination: .file(path))
            }
        } catch {
            printError("switchyard: \(error)")
            throw ExitCode(1)
        }
        for warning in loaded.warnings { logger.warning("\(warning.description)") }
        let runtime = RouterRuntime(config: loaded.config, audit: audit, logger: logger, configPath: configFile.config)
        let (hangups, hangupSink) = AsyncStream<Void>.makeStream()
        let hangupSignals = await UnixSignalsSequence(trapping: .sighup)
        Task {
            for await _ in hangupSignals { hangupSink.yield() }
        }
        let reloader = HangupReloader(runtime: runtime, signals: hangups)
        var companions: [any Service] = [BatchService(runtime: runtime)]
        if let fleet = loaded.config.fleet, let outbox = runtime.fleet {
            companions.append(FleetLink(runtime: runtime, settings: fleet, outbox: outbox))
        }
        let service = RouterService(runtime: runtime, configPath: configFile.config, listen: listenOverride, companions: companions)
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: service), .init(service: reloader)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // In-flight requests and the batch service's hand-back get drain_timeout, together; then
        // whatever is left is cancelled, and the audit log is still flushed before exit.
        configuration.maximumGracefulShutdownDuration = loaded.config.server.drainTimeout
        configuration.maximumCancellationDuration = .seconds(5)
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch {
            logger.warning("shutdown: \(error)")
        }
        await audit.flush()
    }
}

func makeLogger(level: String) -> Logger {
    let logLevel = Logger.Level(rawValue: level) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = logLevel
        return handler
    }
    var logger = Logger(label: "switchyard")
    logger.logLevel = logLevel
    return logger
}

/// Waits for SIGINT or SIGTERM.
func waitForTermination() async {
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    for await _ in signals { return }
}
