import Foundation

/// One directory for every file the tests write (configurations, keys, stores, audit logs),
/// removed when the test process exits: the tests run on developers' machines as well as in CI,
/// and a run must not leave thousands of files in the temporary directory.
enum TestScratch {
    static let directory: String = {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchyard-tests-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TestScratch.directory) }
        return path
    }()

    /// A new path in the scratch directory, ending in `name`.
    static func path(_ name: String) -> String {
        "\(directory)/\(UUID().uuidString)-\(name)"
    }
}
