import Foundation
import Yams

/// Reads routes.yaml into a ``SwitchyardConfig``, reporting every problem at once.
public struct ConfigLoader: Sendable {
    public enum Mode: Sendable {
        /// Missing environment variables are errors: the router cannot run without them.
        case serve
        /// Missing environment variables are warnings: `check` often runs where secrets are absent.
        case check
    }

    public struct Loaded: Sendable {
        public var config: SwitchyardConfig
        public var warnings: [ConfigProblem]
    }

    public var environment: [String: String]
    public var mode: Mode

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, mode: Mode = .serve) {
        self.environment = environment
        self.mode = mode
    }

    public func load(path: String) throws(ConfigError) -> Loaded {
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw ConfigError(problems: [ConfigProblem(file: path, line: 1, column: 1, path: "", message: "file is not valid UTF-8")])
            }
            text = decoded
        } catch let error as ConfigError {
            throw error
        } catch {
            let reason = (error as NSError).localizedDescription
            throw ConfigError(problems: [ConfigProblem(file: path, line: 1, column: 1, path: "", message: "cannot read file: \(reason)")])
        }
        return try load(yaml: text, source: path)
    }

    public func load(yaml: String, source: String) throws(ConfigError) -> Loaded {
        let reader = ConfigReader(file: source)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(problems: [ConfigProblem(file: source, line: 1, column: 1, path: "", message: "file is empty")])
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(problems: [Self.problem(fromYAMLError: error, file: source)])
        }
        let config = ConfigSchema(reader: reader, environment: environment, mode: mode).read(root, source: source)
        let errors = reader.problems.filter { $0.severity == .error }
        guard let config, errors.isEmpty else {
            throw ConfigError(problems: reader.problems.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        return Loaded(config: config, warnings: reader.problems)
    }

    static func problem(fromYAMLError error: any Error, file: String) -> ConfigProblem {
        guard let yamlError = error as? YamlError else {
            return ConfigProblem(file: file, line: 1, column: 1, path: "", message: "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text): \(problem)" } ?? problem
            return ConfigProblem(file: file, line: mark.line, column: mark.column, path: "", message: "invalid YAML: \(detail)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigProblem(
                file: file, line: context.mark.line, column: context.mark.column, path: "",
                message: "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in one mapping"
            )
        case .reader(let problem, _, _, _):
            return ConfigProblem(file: file, line: 1, column: 1, path: "", message: "invalid YAML: \(problem)")
        default:
            return ConfigProblem(file: file, line: 1, column: 1, path: "", message: "invalid YAML: \(yamlError)")
        }
    }
}
