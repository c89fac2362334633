import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SwitchyardCore

#if canImport(Glibc)
import Glibc
#endif

// Requests/s and CPU time per request of AsyncHTTPClient, used the ways it allows one change at a
// time, and of Switchyard's HTTP1Client, all posting the same small Messages request to the same
// local server (a child process of this one, so that its CPU is not counted). Contenders
// alternate within each round; the table gives the median of the rounds.
//
// Swift concurrency runs on NIO's event loops, as in the router. Each worker stands for an
// inbound connection: worker i starts on event loop i mod N and sends requests one after another.
//
//   ClientBench [seconds-per-run] [rounds] [concurrency,...] [contender-id,...]
//   ClientBench server        (the upstream alone; prints its port)
//
// e.g. `swift build -c release --product ClientBench && .build/release/ClientBench 5 3 1,16,64`.
// Progress and the raw runs go to stderr, the tables to stdout. Before each run it waits (up to
// HTTP1BENCH_QUIET_WAIT seconds, default 30) for other processes to leave the cores alone, and
// it reports per run how many cores they took anyway: on a shared machine requests/s swing
// with that; CPU per request much less.
//
// Contenders (ids for the last argument; default: all but 1b):
//   1   AsyncHTTPClient's async API, one client: Switchyard's UpstreamClient today
//   2   delegate API, `.delegateAndChannel(on: caller's loop)`, one client
//   3   2 with one HTTPClient per event loop
//   4   3 with the `HTTPClient.Request` copied from a template (URL parsed once)
//   2d  delegate API, `.delegate(on: caller's loop)`, one client
//   3d  2d with one HTTPClient per event loop
//   4d  3d with the template
//   1b  delegate API, `.indifferent`, one client (the same choices as 2d here)
//   1c  async API, one HTTPClient per event loop
//   5   Switchyard's HTTP1Client, `on:` the caller's loop

let arguments = CommandLine.arguments
if arguments.count > 1, arguments[1] == "server" {
    try await CannedServer.run()
}

guard NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() else {
    fatalError("cannot run Swift concurrency on NIO's event loops")
}

let seconds = arguments.count > 1 ? Double(arguments[1]) ?? 3 : 3
let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 3 : 3
let concurrencies = arguments.count > 3 ? arguments[3].split(separator: ",").compactMap { Int($0) } : [1, 16, 64]
let selected = arguments.count > 4 ? Set(arguments[4].split(separator: ",").map(String.init)) : nil
let runDuration = Duration.milliseconds(Int64(seconds * 1000))
let warmUpDuration = Duration.milliseconds(300)
/// Before each run, wait up to this long for the other processes on the machine to go quiet
/// (HTTP1BENCH_QUIET_WAIT seconds; 0: don't wait).
let quietWait = Double(ProcessInfo.processInfo.environment["HTTP1BENCH_QUIET_WAIT"] ?? "") ?? 30

let server = Process()
server.executableURL = URL(fileURLWithPath: arguments[0])
server.arguments = ["server"]
let output = Pipe()
server.standardOutput = output
try server.run()
let portLine = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
guard let port = Int(portLine) else { fatalError("server did not start: \(portLine)") }

let group = MultiThreadedEventLoopGroup.singleton
let loops = Array(group.makeIterator())
let workers = loops.indices.map { WorkerLoop(index: $0, eventLoop: loops[$0]) }
let maxConnections = 128
let request = BenchRequest(
    baseURL: "http://127.0.0.1:\(port)",
    path: "/v1/messages",
    headers: ["host": "127.0.0.1:\(port)", "content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "sk-bench"],
    body: ByteBuffer(string: #"{"model":"claude-bench","max_tokens":64,"messages":[{"role":"user","content":"Hello there, how are you today?"}]}"#)
)

func makeContender(_ id: String) throws -> any Contender {
    func clients(perLoop: Bool) -> AHCClients {
        AHCClients(perLoop: perLoop, loops: loops, group: group, maxConnections: maxConnections)
    }
    func delegateAPI(_ label: String, perLoop: Bool, _ preference: DelegateAPI.Preference, template: Bool = false) throws -> DelegateAPI {
        try DelegateAPI(id: id, label: label, clients: clients(perLoop: perLoop), request: request, preference: preference, useTemplate: template)
    }
    switch id {
    case "1": return AsyncAPI(id: id, label: "AHC async API, one client (the router today)", clients: clients(perLoop: false), request: request)
    case "1b": return try delegateAPI("(extra) AHC delegate API, .indifferent, one client", perLoop: false, .indifferent)
    case "2": return try delegateAPI("AHC delegate API, .delegateAndChannel(on: caller's loop), one client", perLoop: false, .delegateAndChannel)
    case "3": return try delegateAPI("2 + one HTTPClient per loop", perLoop: true, .delegateAndChannel)
    case "4": return try delegateAPI("3 + request template (URL parsed once)", perLoop: true, .delegateAndChannel, template: true)
    case "2d": return try delegateAPI("AHC delegate API, .delegate(on: caller's loop), one client", perLoop: false, .delegate)
    case "3d": return try delegateAPI("2d + one HTTPClient per loop", perLoop: true, .delegate)
    case "4d": return try delegateAPI("3d + request template (URL parsed once)", perLoop: true, .delegate, template: true)
    case "1c": return AsyncAPI(id: id, label: "(extra) AHC async API, one HTTPClient per loop", clients: clients(perLoop: true), request: request)
    case "5":
        let client = try HTTP1Client(
            configuration: .init(
                host: "127.0.0.1", port: port, tls: false, connectTimeout: .seconds(5), idleTimeout: .seconds(30), maxConnections: maxConnections
            ),
            eventLoopGroup: group
        )
        return OwnClient(id: id, label: "HTTP1Client, on: caller's loop", client: client, request: request)
    default:
        fatalError("unknown contender \(id)")
    }
}

/// 1b is left out unless named: with the caller on one of the client's loops, `.indifferent`
/// makes the same choices as `.delegate(on: that loop)` (the task's loop is `group.any()`, the
/// current loop, and a request prefers its task's loop), so it measures 2d again.
let allIDs = ["1", "1b", "2", "3", "4", "2d", "3d", "4d", "1c", "5"]
let defaultIDs = allIDs.filter { $0 != "1b" }
let contenders = try allIDs.filter { selected?.contains($0) ?? defaultIDs.contains($0) }.map(makeContender)

struct Run {
    var requests: Int
    /// CPU the server used per request.
    var serverCPU: Double?
    /// Cores kept busy by other processes during the run, on average.
    var otherCores: Double?
    /// Connections opened during the run (nil: not known on this system).
    var connectionsOpened: Int?
    /// Requests after which the worker's task was no longer on its own loop.
    var offLoop: Int
    var wall: Double
    var cpu: Double
    var rps: Double { Double(requests) / wall }
    var cpuPerRequest: Double { cpu / Double(requests) }
}

/// `concurrency` workers sending requests one after another for `duration`.
func measure(_ contender: any Contender, concurrency: Int, duration: Duration) async throws -> Run {
    let answerLength = CannedServer.answer.utf8.count
    let opensBefore = tcpActiveOpens()
    let machineBefore = machineBusySeconds()
    let serverBefore = processCPUSeconds(server.processIdentifier)
    let cpuBefore = cpuSeconds()
    let start = ContinuousClock.now
    let end = start + duration
    let (requests, offLoop) = try await withThrowingTaskGroup(of: (Int, Int).self) { tasks in
        for index in 0..<concurrency {
            let worker = workers[index % workers.count]
            tasks.addTask {
                // Start on the worker's loop, as a connection handler's task does: a future
                // completed there resumes the task there (the global executor stays on the
                // current loop).
                try await worker.eventLoop.submit {}.get()
                var count = 0
                var offLoop = 0
                while ContinuousClock.now < end {
                    let bytes = try await contender.send(from: worker)
                    precondition(bytes == answerLength, "\(contender.id): \(bytes) bytes, expected \(answerLength)")
                    count += 1
                    if !worker.eventLoop.inEventLoop { offLoop += 1 }
                }
                return (count, offLoop)
            }
        }
        var total = (0, 0)
        for try await (count, offLoop) in tasks {
            total.0 += count
            total.1 += offLoop
        }
        return total
    }
    let wall = ContinuousClock.now - start
    let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
    let cpu = cpuSeconds() - cpuBefore
    let serverCPU = processCPUSeconds(server.processIdentifier).flatMap { after in serverBefore.map { after - $0 } }
    let machine = machineBusySeconds().flatMap { after in machineBefore.map { after - $0 } }
    let others = machine.flatMap { machine in serverCPU.map { max(0, machine - cpu - $0) / wallSeconds } }
    let opened = tcpActiveOpens().flatMap { after in opensBefore.map { after - $0 } }
    return Run(
        requests: requests, serverCPU: serverCPU.map { $0 / Double(requests) }, otherCores: others, connectionsOpened: opened,
        offLoop: offLoop, wall: wallSeconds, cpu: cpu
    )
}

/// Waits until other processes keep less than 0.15 cores busy over half a second, or `limit`
/// seconds have passed; returns the seconds waited (nil: no /proc to tell).
func waitForQuiet(limit: Double) async throws -> Double? {
    let start = ContinuousClock.now
    while true {
        guard let machineBefore = machineBusySeconds(), let serverBefore = processCPUSeconds(server.processIdentifier) else { return nil }
        let cpuBefore = cpuSeconds()
        try await Task.sleep(for: .milliseconds(500))
        guard let machine = machineBusySeconds(), let serverAfter = processCPUSeconds(server.processIdentifier) else { return nil }
        let others = (machine - machineBefore) - (cpuSeconds() - cpuBefore) - (serverAfter - serverBefore)
        let waited = ContinuousClock.now - start
        let waitedSeconds = Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18
        if others / 0.5 < 0.15 || waitedSeconds >= limit { return waitedSeconds }
    }
}

func log(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

struct Summary {
    var rps: Double
    var cpuPerRequest: Double
    var rpsRange: ClosedRange<Double>
    var offLoopShare: Double
    /// New connections per 1,000 requests.
    var connectionsPerThousand: Double?
    var serverCPU: Double?
    /// The most any of the rounds had.
    var otherCores: Double?
}

log("loopback, \(loops.count) event loops, \(seconds) s per run, \(rounds) rounds, concurrency \(concurrencies), contenders alternating")
var summaries: [Int: [String: Summary]] = [:]
for concurrency in concurrencies {
    var runs: [String: [Run]] = [:]
    for round in 1...rounds {
        for contender in contenders {
            if quietWait > 0, let waited = try await waitForQuiet(limit: quietWait), waited > 1 {
                log(String(format: "waited %.0f s for other processes to quieten", waited))
            }
            _ = try await measure(contender, concurrency: concurrency, duration: warmUpDuration)  // fill the pools
            let run = try await measure(contender, concurrency: concurrency, duration: runDuration)
            runs[contender.id, default: []].append(run)
            log(String(format: "c=%d round %d %@: %.0f req/s, %.1f µs CPU/req, %d requests, %d off-loop, %d connections opened; server %.1f µs CPU/req; other processes %.2f cores", concurrency, round, contender.id, run.rps, run.cpuPerRequest * 1e6, run.requests, run.offLoop, run.connectionsOpened ?? -1, (run.serverCPU ?? .nan) * 1e6, run.otherCores ?? .nan))
        }
    }
    for contender in contenders {
        let list = runs[contender.id]!
        let rps = list.map(\.rps)
        summaries[concurrency, default: [:]][contender.id] = Summary(
            rps: median(rps), cpuPerRequest: median(list.map(\.cpuPerRequest)), rpsRange: rps.min()!...rps.max()!,
            offLoopShare: Double(list.map(\.offLoop).reduce(0, +)) / Double(list.map(\.requests).reduce(0, +)),
            connectionsPerThousand: list.allSatisfy { $0.connectionsOpened != nil }
                ? 1000 * Double(list.map { $0.connectionsOpened! }.reduce(0, +)) / Double(list.map(\.requests).reduce(0, +)) : nil,
            serverCPU: list.allSatisfy { $0.serverCPU != nil } ? median(list.map { $0.serverCPU! }) : nil,
            otherCores: list.compactMap(\.otherCores).max()
        )
    }
}

print("loopback, 2 shared cores, \(loops.count) client event loops, server a child process (1 event loop); \(seconds) s per run, \(rounds) rounds alternating, medians")
print()
print("| # | contender | conc. | requests/s | range | CPU µs/request | server CPU µs/request | ended off the worker's loop | new connections per 1k requests | other processes, cores (max) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for concurrency in concurrencies {
    for contender in contenders {
        let s = summaries[concurrency]![contender.id]!
        let connections = s.connectionsPerThousand.map { String(format: "%.1f", $0) } ?? "?"
        print(String(format: "| %@ | %@ | %d | %.0f | %.0f–%.0f | %.1f | %.1f | %.0f %% | %@ | %.2f |", contender.id, contender.label, concurrency, s.rps, s.rpsRange.lowerBound, s.rpsRange.upperBound, s.cpuPerRequest * 1e6, (s.serverCPU ?? .nan) * 1e6, s.offLoopShare * 100, connections, s.otherCores ?? .nan))
    }
}
if let baseline = contenders.first {
    print()
    print("Against \(baseline.id) (requests/s ×, CPU per request ×):")
    print()
    print("| # | contender |" + concurrencies.map { " c=\($0) req/s | c=\($0) CPU |" }.joined())
    print("|---|---|" + String(repeating: "---:|---:|", count: concurrencies.count))
    for contender in contenders {
        var line = "| \(contender.id) | \(contender.label) |"
        for concurrency in concurrencies {
            let s = summaries[concurrency]![contender.id]!
            let b = summaries[concurrency]![baseline.id]!
            line += String(format: " ×%.2f | ×%.2f |", s.rps / b.rps, s.cpuPerRequest / b.cpuPerRequest)
        }
        print(line)
    }
}

for contender in contenders { try await contender.shutdown() }
server.terminate()
server.waitUntilExit()
