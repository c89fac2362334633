import Yams

/// Walks a composed YAML tree, turning shapes and scalars into typed values and collecting every
/// problem with its position instead of stopping at the first one.
final class ConfigReader {
    let file: String
    private(set) var problems: [ConfigProblem] = []

    init(file: String) {
        self.file = file
    }

    func report(_ message: String, at node: Node?, path: String, severity: ConfigProblem.Severity = .error) {
        let mark = node?.mark
        problems.append(
            ConfigProblem(
                file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, path: path, message: message, severity: severity
            )
        )
    }

    var hasErrors: Bool { problems.contains { $0.severity == .error } }

    /// A mapping's fields; unknown keys are reported right away.
    func fields(_ node: Node, path: String, known: [String]) -> Fields? {
        guard case .mapping(let mapping) = node else {
            report("expected a mapping with keys \(known.joined(separator: ", ")), found \(node.shapeDescription)", at: node, path: path)
            return nil
        }
        var values: [String: (key: Node, value: Node)] = [:]
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                report("keys must be plain strings", at: keyNode, path: path)
                continue
            }
            let key = scalar.string
            guard known.contains(key) else {
                report(unknownKeyMessage(key, known: known), at: keyNode, path: Self.join(path, key))
                continue
            }
            values[key] = (keyNode, valueNode)
        }
        return Fields(reader: self, mapping: node, path: path, values: values)
    }

    /// A mapping whose keys are names the user chooses (`providers:`, `models:`, `routes:`), in file order.
    func namedEntries(_ node: Node, path: String) -> [(name: String, keyNode: Node, value: Node)] {
        guard case .mapping(let mapping) = node else {
            report("expected a mapping of names to definitions, found \(node.shapeDescription)", at: node, path: path)
            return []
        }
        var entries: [(String, Node, Node)] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode, !scalar.string.isEmpty else {
                report("names must be non-empty strings", at: keyNode, path: path)
                continue
            }
            entries.append((scalar.string, keyNode, valueNode))
        }
        return entries
    }

    func string(_ node: Node, path: String) -> String? {
        guard case .scalar(let scalar) = node, !node.isNull else {
            report("expected a string, found \(node.shapeDescription)", at: node, path: path)
            return nil
        }
        return scalar.string
    }

    func int(_ node: Node, path: String, min: Int, max: Int = Int.max) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string.trimmingWhitespace()) else {
            report("expected a whole number, found \(node.shapeDescription)", at: node, path: path)
            return nil
        }
        guard value >= min, value <= max else {
            report(max == Int.max ? "must be at least \(min), found \(value)" : "must be between \(min) and \(max), found \(value)", at: node, path: path)
            return nil
        }
        return value
    }

    func double(_ node: Node, path: String, minimum: Double) -> Double? {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string.trimmingWhitespace()), value.isFinite else {
            report("expected a number, found \(node.shapeDescription)", at: node, path: path)
            return nil
        }
        guard value >= minimum else {
            report("must be at least \(minimum), found \(value)", at: node, path: path)
            return nil
        }
        return value
    }

    func parsed<T>(_ node: Node, path: String, _ parse: (String) -> Result<T, ConfigValues.Reason>) -> T? {
        guard case .scalar(let scalar) = node else {
            report("expected a scalar value, found \(node.shapeDescription)", at: node, path: path)
            return nil
        }
        switch parse(scalar.string) {
        case .success(let value): return value
        case .failure(let reason):
            report(reason.message, at: node, path: path)
            return nil
        }
    }

    func stringList(_ node: Node, path: String) -> [(value: String, node: Node)]? {
        guard case .sequence(let sequence) = node else {
            report("expected a list, found \(node.shapeDescription)", at: node, path: path)
            return nil
        }
        var values: [(String, Node)] = []
        for (index, item) in sequence.enumerated() {
            if let value = string(item, path: "\(path)[\(index)]") {
                values.append((value, item))
            }
        }
        return values
    }

    func oneOf<T: RawRepresentable>(_ node: Node, path: String, _ type: T.Type, allowed: [T]) -> T? where T.RawValue == String {
        guard let text = string(node, path: path) else { return nil }
        guard let value = T(rawValue: text), allowed.contains(where: { $0.rawValue == value.rawValue }) else {
            report("unknown value '\(text)' (expected one of: \(allowed.map(\.rawValue).joined(separator: ", ")))", at: node, path: path)
            return nil
        }
        return value
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    private func unknownKeyMessage(_ key: String, known: [String]) -> String {
        if known.contains("\(key)_env") {
            return "secrets may not be written in routes.yaml; put it in an environment variable and name that with '\(key)_env'"
        }
        if let suggestion = known.min(by: { editDistance(key, $0) < editDistance(key, $1) }), editDistance(key, suggestion) <= 2 {
            return "unknown key '\(key)' (did you mean '\(suggestion)'?)"
        }
        return "unknown key '\(key)' (known: \(known.joined(separator: ", ")))"
    }

    struct Fields {
        let reader: ConfigReader
        let mapping: Node
        let path: String
        let values: [String: (key: Node, value: Node)]

        subscript(key: String) -> Node? {
            guard let value = values[key]?.value else { return nil }
            return value.isNull ? nil : value
        }

        func path(_ key: String) -> String { ConfigReader.join(path, key) }

        func keyNode(_ key: String) -> Node? { values[key]?.key }

        func isExplicitNull(_ key: String) -> Bool {
            values[key]?.value.isNull ?? false
        }

        /// A required field: reported at the mapping's start when absent.
        func required(_ key: String) -> Node? {
            if let node = self[key] { return node }
            reader.report("missing required key '\(key)'", at: mapping, path: path)
            return nil
        }
    }
}

private func editDistance(_ lhs: String, _ rhs: String) -> Int {
    let a = Array(lhs.utf8)
    let b = Array(rhs.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

extension Node {
    var shapeDescription: String {
        switch self {
        case .scalar(let scalar):
            return isNull ? "nothing" : "'\(scalar.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// `key:`, `key: ~` and `key: null` all leave a value out.
    var isNull: Bool {
        guard case .scalar = self else { return false }
        return tag.description == Tag.Name.null.rawValue
    }
}
