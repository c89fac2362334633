/// Hot reload (SIGHUP, `POST /admin/reload`): a valid file replaces the configuration atomically;
/// an invalid one changes nothing and is logged with every problem.
/// What a reload did.
public enum ReloadResult: Sendable {
    case reloaded(routes: [String], keptBreakers: [String], notes: [String])
    case failed(problems: [ConfigProblem])
    case unavailable(String)
}

extension RouterRuntime {
    @discardableResult
    public func reload(trigger: String) async -> ReloadResult {
        guard let configPath else { return .unavailable("this router was started without a configuration file") }
        let loaded: ConfigLoader.Loaded
        do {
            loaded = try ConfigLoader(environment: environment(), mode: .serve).load(path: configPath)
        } catch {
            let problems = error.problems
            await audit.append(
                AuditEvent.lifecycle(
                    "config.reload_failed",
                    fields: [
                        ("config", .string(configPath)), ("trigger", .string(trigger)),
                        ("errors", .strings(problems.filter { $0.severity == .error }.map(\.description))),
                    ]
                )
            )
            logger.error("reload of \(configPath) failed; the running configuration is unchanged", metadata: ["problems": "\(problems.count)"])
            for problem in problems { logger.error("\(problem.description)") }
            return .failed(problems: problems)
        }
        let old = table
        var notes: [String] = []
        let newServer = loaded.config.server
        if newServer.listen != old.config.server.listen {
            notes.append("server.listen changed to \(newServer.listen); it applies at the next restart")
        }
        if loaded.config.telemetry != old.config.telemetry {
            notes.append("telemetry changed; it applies at the next restart")
        }
        if loaded.config.fleet != old.config.fleet {
            notes.append("fleet changed; it applies at the next restart")
        }
        install(loaded.config)
        let current = table
        let kept = current.models.filter { model in old.models.contains { $0.health === model.health } }.map(\.name)
        await audit.append(
            AuditEvent.lifecycle(
                "config.reloaded",
                fields: [
                    ("config", .string(configPath)), ("trigger", .string(trigger)), ("routes", .strings(current.routeNames)),
                    ("breakers_kept", .strings(kept)), ("notes", .strings(notes)),
                ]
            )
        )
        logger.notice("configuration reloaded from \(configPath) (\(trigger)); routes: \(current.routeNames.joined(separator: ", "))")
        for note in notes { logger.warning("\(note)") }
        return .reloaded(routes: current.routeNames, keptBreakers: kept, notes: notes)
    }
}
