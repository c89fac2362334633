import Foundation
import NIOCore
import Testing

@testable import SwitchyardCore

/// A seeded mutation fuzzer over the routes.yaml loader, the request body parser and the SSE
/// parser: random byte flips, insertions, deletions, truncations and splices of valid inputs.
/// Nothing may crash; every rejection must carry a usable position. Bounded for CI; longer:
///   FUZZ_ITERATIONS=200000 FUZZ_SEED=7 swift test --filter FuzzTests
@Suite("Fuzzing (seeded mutations)")
struct FuzzTests {
    /// These loops run for seconds on the test process's cooperative threads, which every other
    /// suite's tasks (the router's accept loop among them) need too: give them a turn.
    static func yieldSometimes(_ iteration: Int) async {
        if iteration % 50 == 0 { await Task.yield() }
    }

    static let iterations = ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 3000
    static let seed = ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap { UInt64($0) } ?? 20261125

    static let tokens: [[UInt8]] = [
        "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "\\ud800", "- ", "\n", "  ", "&a", "*a", "!!", "|", ">", "#", "'", "\t",
        "version: 1", "models:", "routes:", "providers:", "null", "true", "1e999", "-0", "0x10", "99999999999999999999", "\u{0}",
        "é", "\u{FEFF}", "%", "?", "<<:", "---", "...",
    ].map { Array($0.utf8) }

    static func mutate(_ input: [UInt8], using random: inout SeededRandom) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + Int(random.next() % 4)) {
            let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
            switch random.next() % 6 {
            case 0 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: random.next())
            case 1: bytes.insert(contentsOf: tokens[Int(random.next() % UInt64(tokens.count))], at: position)
            case 2 where !bytes.isEmpty: bytes.removeSubrange(position..<min(bytes.count, position + 1 + Int(random.next() % 16)))
            case 3: bytes = Array(bytes.prefix(position))
            case 4 where !bytes.isEmpty:
                let from = Int(random.next() % UInt64(bytes.count))
                let chunk = bytes[from..<min(bytes.count, from + Int(random.next() % 32))]
                bytes.insert(contentsOf: chunk, at: position)
            default: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: position)
            }
        }
        return bytes
    }

    @Test func configLoaderNeverCrashesAndAlwaysPointsAtALine() async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes.yaml").path
        let valid = Array(try String(contentsOfFile: path, encoding: .utf8).utf8)
        let loader = ConfigLoader(environment: ["ANTHROPIC_API_KEY": "k", "SWITCHYARD_ADMIN_TOKEN": "t"], mode: .serve)
        var random = SeededRandom(state: Self.seed)
        var accepted = 0
        for iteration in 0..<Self.iterations {
            await Self.yieldSometimes(iteration)
            let input = Self.mutate(valid, using: &random)
            let text = String(decoding: input, as: UTF8.self)
            do {
                _ = try loader.load(yaml: text, source: "fuzz.yaml")
                accepted += 1
            } catch {
                #expect(!error.problems.isEmpty)
                for problem in error.problems {
                    #expect(problem.line >= 1 && problem.column >= 1, "\(problem)")
                }
            }
        }
        #expect(accepted < Self.iterations, "mutations that break the file are reported")
    }

    @Test func requestParserNeverCrashesAndAgreesWithFoundationOnValidity() async throws {
        let seeds = [
            #"{"model":"default","max_tokens":64,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi \u00e9"}]}],"metadata":{"user_id":"x"},"temperature":0.5}"#,
            #"{"model":"claude-sonnet-4-0","messages":[{"role":"user","content":"a\nb\"c"}],"tools":[{"name":"t","input_schema":{"type":"object"}}]}"#,
        ].map { Array($0.utf8) }
        var random = SeededRandom(state: Self.seed &+ 1)
        var disagreements: [String] = []
        for index in 0..<Self.iterations {
            await Self.yieldSometimes(index)
            let input = Self.mutate(seeds[index % seeds.count], using: &random)
            let ours = (try? JSONSkimmer.skim(input)) != nil
            let foundation = (try? JSONSerialization.jsonObject(with: Data(input), options: [.fragmentsAllowed])) != nil
            // Lone surrogate escapes are accepted on purpose (the upstream judges the text).
            if ours != foundation, !String(decoding: input, as: UTF8.self).contains("\\ud8"), !String(decoding: input, as: UTF8.self).contains("\\udc") {
                disagreements.append(String(decoding: input.prefix(120), as: UTF8.self))
            }
            do {
                let body = try InboundBody.parse(ByteBuffer(bytes: input), requireMessages: true)
                // Whatever was accepted can be patched and still parses.
                let patched = body.withModel(Array(#""x""#.utf8))
                #expect((try? InboundBody.parse(patched, requireMessages: true))?.model == "x")
            } catch {
                #expect(error.status == 400)
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) inputs judged differently from Foundation, e.g. \(disagreements.prefix(3))")
    }

    @Test func sseParserNeverCrashesOnGarbage() async throws {
        let valid = Array(SSEStreams.sample.utf8)
        var random = SeededRandom(state: Self.seed &+ 2)
        for iteration in 0..<Self.iterations {
            await Self.yieldSometimes(iteration)
            var parser = SSEEventParser(maxEventSize: 4096)
            let input = Self.mutate(valid, using: &random)
            var offset = 0
            while offset < input.count {
                let size = 1 + Int(random.next() % 64)
                parser.append(ByteBuffer(bytes: input[offset..<min(input.count, offset + size)]))
                offset += size
                do {
                    while try parser.next() != nil {}
                } catch {
                    break
                }
                _ = parser.takeParsedBytes()
            }
        }
    }
}

enum SSEStreams {
    static let sample = """
        event: message_start
        data: {"type":"message_start","message":{"usage":{"input_tokens":1}}}

        event: ping
        data: {"type":"ping"}

        event: content_block_delta
        data: {"type":"content_block_delta","delta":{"text":"x"}}

        : keep-alive

        event: message_stop
        data: {"type":"message_stop"}


        """
}
