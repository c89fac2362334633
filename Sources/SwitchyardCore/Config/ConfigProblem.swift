/// One thing wrong with a routes.yaml file, located precisely enough for an editor to jump to it.
public struct ConfigProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Severity: Sendable, Equatable {
        case error
        /// Does not stop `check`; `serve` treats it as an error (missing environment variables).
        case warning
    }

    public var file: String
    public var line: Int
    public var column: Int
    /// Dotted path of the offending key, e.g. `routes.default.models[2]`.
    public var path: String
    public var message: String
    public var severity: Severity

    public init(file: String, line: Int, column: Int, path: String, message: String, severity: Severity = .error) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
        self.severity = severity
    }

    /// `routes.yaml:14:7: routes.default.models[2]: unknown model 'gpt-5' (known: sonnet, haiku)`
    public var description: String {
        let location = "\(file):\(line):\(column)"
        let prefix = severity == .warning ? "warning: " : ""
        return path.isEmpty ? "\(location): \(prefix)\(message)" : "\(location): \(prefix)\(path): \(message)"
    }
}

/// Every problem found in a configuration file; thrown only after the whole file was read.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
