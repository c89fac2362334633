import Foundation

/// The AWS shared credentials file (`[name]` sections) and config file (`[profile name]` and
/// `[default]` sections), read as the AWS SDKs read them: `key = value` lines, `#` and `;`
/// comment lines, key names case-insensitive, an indented line after a key continuing it
/// (botocore's nested `s3 =` settings), never a key of the profile itself.
struct AWSSharedConfigFiles {
    /// One profile's settings and the file they came from.
    struct Profile {
        var name: String
        var file: String
        var settings: [String: String]

        subscript(key: String) -> String? {
            guard let value = settings[key], !value.isEmpty else { return nil }
            return value
        }
    }

    let credentialsPath: String
    let configPath: String
    /// nil when the file does not exist or cannot be read.
    let credentialsSections: [String: [String: String]]?
    let configSections: [String: [String: String]]?

    init(environment: [String: String]) {
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        func path(_ variable: String, default relative: String) -> String {
            let given = environment[variable].flatMap { $0.isEmpty ? nil : $0 } ?? "~/\(relative)"
            return given.hasPrefix("~/") ? home + given.dropFirst() : given
        }
        credentialsPath = path("AWS_SHARED_CREDENTIALS_FILE", default: ".aws/credentials")
        configPath = path("AWS_CONFIG_FILE", default: ".aws/config")
        credentialsSections = Self.read(credentialsPath)
        configSections = Self.read(configPath)
    }

    /// The profile in the credentials file, where keys are usually kept.
    func credentialsProfile(_ name: String) -> Profile? {
        credentialsSections?[name].map { Profile(name: name, file: credentialsPath, settings: $0) }
    }

    /// The profile in the config file: `[profile name]`, and `[default]` for the default one.
    func configProfile(_ name: String) -> Profile? {
        let settings = configSections?["profile \(name)"] ?? (name == "default" ? configSections?["default"] : nil)
        return settings.map { Profile(name: name, file: configPath, settings: $0) }
    }

    /// Where the files were looked for, for messages: "/home/x/.aws/credentials (missing)".
    var lookedIn: String {
        func state(_ path: String, _ sections: [String: [String: String]]?) -> String {
            sections == nil ? "\(path) (missing)" : path
        }
        return "\(state(credentialsPath, credentialsSections)) and \(state(configPath, configSections))"
    }

    private static func read(_ path: String) -> [String: [String: String]]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return parse(String(decoding: data, as: UTF8.self))
    }

    /// Sections of an INI file. Section names keep their case (`[profile Prod]` is not
    /// `[profile prod]`); inner whitespace collapses (`[profile   prod]`), as botocore reads it.
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        var sectionHasKey = false
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().split(whereSeparator: \.isWhitespace).joined(separator: " ")
                current = name
                sectionHasKey = false
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            guard let section = current else { continue }
            if let first = rawLine.first, first == " " || first == "\t", sectionHasKey { continue }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sectionHasKey = true
            sections[section, default: [:]][key] = value
        }
        return sections
    }
}
