import Foundation
import Testing

/// Runs an independent implementation written in Python (botocore's SigV4, PyJWT, botocore's
/// event-stream parser) so that Switchyard's own signing, tokens and framing are checked against
/// code that is not Switchyard's.
///
/// The interpreter is `SWITCHYARD_TEST_PYTHON` when set (`.ci/run` sets it to its venv), else the
/// venv `.ci/run` creates (`.build/sdk-venv`), else `python3`. A missing module is a test failure
/// with a hint, never a silent skip: the cross-checks must run everywhere.
enum CrossCheckPython {
    /// The package root (this file is Tests/SwitchyardTests/Support/CrossCheckPython.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/crosscheck/`, where the Python halves of the cross-checks live.
    static let scriptsDirectory = packageRoot.appendingPathComponent("Tests/crosscheck")

    static var interpreter: String {
        if let given = ProcessInfo.processInfo.environment["SWITCHYARD_TEST_PYTHON"], !given.isEmpty { return given }
        let venv = packageRoot.appendingPathComponent(".build/sdk-venv/bin/python").path
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        return "/usr/bin/env"
    }

    private static var prefixArguments: [String] { interpreter == "/usr/bin/env" ? ["python3"] : [] }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `script` (a file in Tests/crosscheck) with `arguments`, feeding `input` on stdin.
    static func run(script: String, arguments: [String] = [], input: Data = Data()) async throws -> Output {
        try await BlockingWork.run { try runWaiting(script: script, arguments: arguments, input: input) }
    }

    private static func runWaiting(script: String, arguments: [String], input: Data) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: interpreter)
        process.arguments = prefixArguments + [scriptsDirectory.appendingPathComponent(script).path] + arguments
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Read both pipes while writing, so that a large output cannot block the child.
        let outBox = DataBox()
        let errBox = DataBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            outBox.data = stdout.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            errBox.data = stderr.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        group.wait()
        return Output(
            status: process.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
            stderr: String(decoding: errBox.data, as: UTF8.self)
        )
    }

    /// True when every module imports; otherwise records a failure naming what is missing.
    static func require(modules: [String], sourceLocation: SourceLocation = #_sourceLocation) async -> Bool {
        let imports = prefixArguments + ["-c", modules.map { "import \($0)" }.joined(separator: "; ")]
        let interpreter = self.interpreter
        let status: Int32
        do {
            status = try await BlockingWork.run {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: interpreter)
                process.arguments = imports
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                process.waitUntilExit()
                return process.terminationStatus
            }
        } catch {
            Issue.record(Comment(rawValue: "cannot start \(interpreter): \(error)"), sourceLocation: sourceLocation)
            return false
        }
        guard status == 0 else {
            let hint = "`bash .ci/run` installs them in .build/sdk-venv, or set SWITCHYARD_TEST_PYTHON"
            Issue.record(
                Comment(rawValue: "the cross-check needs the Python modules \(modules.joined(separator: ", ")) (interpreter: \(interpreter)); \(hint)"),
                sourceLocation: sourceLocation
            )
            return false
        }
        return true
    }
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}
